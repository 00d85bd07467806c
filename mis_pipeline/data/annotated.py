"""Supervised fine-tuning samples from annotated masks, with the ``sample(index, epoch)`` contract.

:class:`AnnotatedDataset` wraps any evaluation-style dataset (:mod:`mis_pipeline.evaluate.datasets`:
``folder`` with ``pairs.csv``, ``sbd``, ``voc``, ``grabcut``, ...; or :class:`CocoDataset` for a
COCO JSON file) and turns each annotated object into training samples exactly as
:class:`~mis_pipeline.data.ProposalDataset` turns proposals into them: the same seeded
augmentation, the same re-draw rule when the object vanishes, the same clicks. A ``data_ratio``
below 1 keeps a seeded random subset of the objects (the "x % of the labels" experiments).
"""

from __future__ import annotations

import json
import os
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DataConfig
from ..errors import DatasetError, SampleError
from ..evaluate.datasets import Dataset, Sample, read_rgb
from .dataset import SampleSource, _check_seed, _perm_cache_entries, _resolve, sample_fields
from .seeding import epoch_permutation, sample_seeds, subset_rng

__all__ = ["AnnotatedDataset", "CocoDataset", "rasterize_polygons"]


# --------------------------------------------------------------------------- COCO JSON
def rasterize_polygons(polygons: list[list[float]], hw: tuple[int, int]) -> np.ndarray:
    """``(H, W) bool`` mask of COCO polygons (each ``[x0, y0, x1, y1, ...]`` in pixels).

    Filled with Pillow's polygon fill (outline included); pycocotools' rasteriser can differ
    by a pixel along the boundary.
    """
    from PIL import Image, ImageDraw

    h, w = int(hw[0]), int(hw[1])
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for poly in polygons:
        xy = [(float(poly[k]), float(poly[k + 1])) for k in range(0, len(poly) - 1, 2)]
        if len(xy) >= 3:
            draw.polygon(xy, fill=1, outline=1)
    return np.asarray(canvas, dtype=bool)


class CocoDataset(Dataset):
    """One sample per non-crowd annotation of a COCO JSON file.

    ``root`` is the image folder (``images[].file_name`` is relative to it); ``annotations``
    the JSON path (default ``root/annotations.json``). Sample ids are ``"<file stem>#<ann id>"``;
    segmentations are polygons (:func:`rasterize_polygons`) or RLE, compressed or not
    (:func:`mis_pipeline.annotate.rle.coco_rle_decode`). ``mis annotate`` writes such a file
    (``MASKS/annotations.json`` with ``root`` the annotated image folder).
    """

    name = "coco"

    def __init__(self, root: str | Path, annotations: str | Path | None = None) -> None:
        super().__init__(root)
        path = Path(annotations) if annotations is not None else self.root / "annotations.json"
        if not path.is_file():
            raise DatasetError(f"coco: annotation file {str(path)!r} is missing")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            images = {int(im["id"]): im for im in data["images"]}
            anns = data["annotations"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"coco: {str(path)!r} is not a COCO annotation file ({exc!r})") from exc
        self._items: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        for ann in sorted(anns, key=lambda a: (int(a["image_id"]), int(a["id"]))):
            if ann.get("iscrowd") or not ann.get("segmentation"):
                continue
            im = images.get(int(ann["image_id"]))
            if im is None:
                raise DatasetError(f"coco: annotation {ann['id']} refers to unknown image id {ann['image_id']}")
            self._items.append((f"{Path(im['file_name']).stem}#{int(ann['id'])}", im, ann))
        if not self._items:
            raise DatasetError(f"coco: {str(path)!r} has no non-crowd annotation with a segmentation")
        self._by_image: dict[int, list[int]] = {}
        for k, (_, im, _) in enumerate(self._items):
            self._by_image.setdefault(int(im["id"]), []).append(k)

    @property
    def ids(self) -> list[str]:
        return [sid for sid, _, _ in self._items]

    def annotation_id(self, index: int) -> int:
        return int(self._items[index][2]["id"])

    def load(self, index: int) -> Sample:
        self._check_index(index)
        sid, im, ann = self._items[index]
        image = read_rgb(self.root / im["file_name"])
        return Sample(sid, image, self._mask(index, image.shape[:2]), None)

    def _mask(self, index: int, hw: tuple[int, int]) -> np.ndarray:
        sid, _, ann = self._items[index]
        seg = ann["segmentation"]
        if isinstance(seg, dict):
            from ..annotate.rle import coco_rle_decode

            try:
                gt = coco_rle_decode(seg)
            except (KeyError, TypeError, ValueError) as exc:
                raise DatasetError(f"coco: annotation {ann['id']} has an unreadable RLE segmentation: {exc}") from exc
        else:
            gt = rasterize_polygons(seg, hw)
        if gt.shape != tuple(hw):
            raise DatasetError(f"coco: sample {sid!r}: mask is {gt.shape} but the image is {tuple(hw)} (rows x cols)")
        return gt

    def other_mask(self, index: int, hw: tuple[int, int]) -> np.ndarray | None:
        """``(H, W) bool`` union of the other (non-crowd) annotations of sample ``index``'s
        image, or None when it has no other."""
        self._check_index(index)
        image_id = int(self._items[index][1]["id"])
        others = [k for k in self._by_image[image_id] if k != index]
        if not others:
            return None
        out = np.zeros(tuple(hw), dtype=bool)
        for k in others:
            out |= self._mask(k, hw)
        return out


# --------------------------------------------------------------------------- the dataset
def _other_objects(source: Dataset, index: int, hw: tuple[int, int]) -> np.ndarray | None:
    """``(H, W) bool`` union of the other annotated objects of the image of object ``index``
    (RITM's "other" negatives of a multi-object sample), or None when there is none or the
    layout keeps one object per image row (``folder``, GrabCut-like pairs)."""
    from ..evaluate.datasets import _InstanceDataset

    if isinstance(source, CocoDataset):
        return source.other_mask(index, hw)
    if isinstance(source, _InstanceDataset):  # SBD / VOC: every instance is in one label map
        name, inst = source._items[index]
        labels = source._labels(name)
        other = (labels != 0) & (labels != inst)
        if source.ignore_value is not None:
            other &= labels != source.ignore_value
        return other if other.any() and other.shape == tuple(hw) else None
    return None


def _annotation_id(source: Dataset, index: int) -> int:
    """The source's own id of annotated object ``index`` (COCO annotation id, SBD / VOC
    instance id), or ``index`` when it has none."""
    if isinstance(source, CocoDataset):
        return source.annotation_id(index)
    sid = source.ids[index]
    tail = sid.rsplit("#", 1)[-1] if "#" in sid else ""
    return int(tail) if tail.isdigit() else int(index)


class AnnotatedDataset(SampleSource):
    """Training samples from annotated masks (same contract as ``ProposalDataset.sample``).

    Parameters
    ----------
    source : Dataset
        An evaluation-style dataset (``open_dataset("folder" | "sbd" | ..., root)``) or a
        :class:`CocoDataset`; see :meth:`open`.
    seed : int
        Base seed of the subset, the epoch order, the augmentation and the clicks.
    data_ratio : float, optional
        Fraction of the objects kept (a seeded subset, at least one); default
        ``config.data_ratio``.
    crop_size, epoch_size, config
        As for :class:`~mis_pipeline.data.ProposalDataset`.
    other_objects : bool
        Take "other" negatives from the image's other annotated objects (see below).

    The sample's ``image_index`` is the object's index in ``source`` and ``node`` its
    annotation id (COCO annotation id, SBD / VOC instance id; else the index again).
    "Other" negatives come, as in RITM's multi-object samples, from the other annotated
    objects of the same image (SBD / VOC instances, other annotations of a COCO image; they are
    augmented with the object) when ``other_objects`` is true and there are any; otherwise
    from the background, as with a single proposal (``clicks.other_source = "tree"`` has no
    tree here). RITM also merges two objects into one target with probability 0.15; not done.
    """

    def __init__(
        self,
        source: Dataset,
        *,
        seed: int = 0,
        data_ratio: float | None = None,
        crop_size: int | None = None,
        epoch_size: int | None = None,
        config: DataConfig | None = None,
        other_objects: bool = True,
    ) -> None:
        self.config = _resolve(config, crop_size, epoch_size, None)
        self.other_objects = bool(other_objects)
        if data_ratio is not None:
            from ..config import from_dict, to_dict

            self.config = from_dict(DataConfig, {**to_dict(self.config), "data_ratio": data_ratio})
        if not isinstance(source, Dataset):
            raise TypeError(f"source must be a mis_pipeline.evaluate.datasets.Dataset, got {type(source).__name__}")
        self.seed = _check_seed(seed)
        self.source = source
        self.epoch_size = int(self.config.epoch_size)
        self.crop_size = int(self.config.augment.crop_size)
        n = len(source)
        keep = max(1, int(round(self.config.data_ratio * n)))
        chosen = subset_rng(self.seed).choice(n, size=keep, replace=False) if keep < n else np.arange(n)
        self.subset = np.sort(chosen).astype(np.int64)
        self.token = uuid.uuid4().hex  # identifies this dataset in per-worker caches

    @classmethod
    def open(cls, kind: str, root: str | os.PathLike[str], *, annotations: str | os.PathLike[str] | None = None,
             split: str | None = None, **kwargs: Any) -> AnnotatedDataset:
        """Open annotated data of ``kind`` (``"coco"`` with ``annotations=`` the JSON file, or a
        name of :data:`mis_pipeline.evaluate.DATASET_NAMES`: ``"folder"``, ``"sbd"`` with
        ``split=`` (default ``"train"``), ``"voc"``, ...); ``kwargs`` go to the constructor."""
        from ..evaluate.datasets import open_dataset

        if kind == "coco":
            source: Dataset = CocoDataset(root, annotations)
        else:
            options: dict[str, Any] = {}
            if kind in ("sbd", "voc"):
                options["split"] = split or "train"
            elif split is not None:
                raise DatasetError(f"dataset {kind!r} takes no split (given {split!r})")
            source = open_dataset(kind, root, **options)
        return cls(source, **kwargs)

    def __repr__(self) -> str:
        return (f"AnnotatedDataset({self.source!r}, objects={self.subset.size}/{len(self.source)}, "
                f"epoch_size={self.epoch_size}, crop_size={self.crop_size}, seed={self.seed})")

    def object_of(self, index: int, epoch: int = 0) -> int:
        """Index in ``source`` of the object sample ``index`` of ``epoch`` is drawn from."""
        index, epoch = self._check_index(index, epoch)
        n = self.subset.size
        chunk, pos = divmod(index, n)
        perms = self._local().setdefault("perms", OrderedDict())
        if (epoch, chunk) not in perms:
            perms[(epoch, chunk)] = epoch_permutation(self.seed, epoch, chunk, n)
            while len(perms) > _perm_cache_entries(n):
                perms.popitem(last=False)
        return int(self.subset[perms[(epoch, chunk)][pos]])

    def sample(self, index: int, epoch: int = 0) -> dict[str, Any]:
        """Sample ``index`` of ``epoch`` (keys and shapes as ``ProposalDataset.sample``)."""
        from .. import clicks as click_lib

        index, epoch = self._check_index(index, epoch)
        j = self.object_of(index, epoch)
        s = self.source.load(j)
        local = self._local()
        if "augmenter" not in local:
            from .augment import Augmenter

            local["augmenter"] = Augmenter(self.config.augment)
        cfg = self.config
        other = _other_objects(self.source, j, s.gt.shape) if self.other_objects else None
        need = max(int(cfg.clicks.min_object_area), 1)
        areas = []
        for attempt in range(cfg.max_redraws + 1):
            rng, aug_seed = sample_seeds(self.seed, epoch, index, attempt)
            aug = local["augmenter"](s.image, s.gt, aug_seed, other=other)
            area = int(np.count_nonzero(aug.mask))
            if area >= need:
                break
            areas.append(area)
        else:
            raise SampleError(
                f"sample (seed={self.seed}, epoch={epoch}, index={index}) of object {s.sample_id!r}: fewer "
                f"than {need} px of it survived the augmentation in all {cfg.max_redraws + 1} draws (areas "
                f"{areas}, {int(s.gt.sum())} px before); lower data.clicks.min_object_area or drop the object"
            )
        c = click_lib.sample_clicks(aug.mask, rng, cfg.clicks, other=aug.other)
        return {
            **sample_fields(aug.image, aug.mask, c),
            "image_index": np.int64(j),
            "node": np.int64(_annotation_id(self.source, j)),
            "index": np.int64(index),
            "epoch": np.int64(epoch),
        }
