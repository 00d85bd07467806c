"""RefCut training pairs from part-annotated data (RefCut Sec. 3.3, "Sampling in Training").

For one sample: an object of a target image is divided into ``N`` parts; ``1..N`` of them are
drawn (the count uniformly, then the parts uniformly without replacement) and united into the
target. Another image of the same category is the reference: the same parts there are the
positive reference mask ``M_r^+``, its remaining parts the negative ``M_r^-``. A quarter of the
samples keep only the positive mask and a quarter only the negative (RefCut Sec. 4.1: "a 25 %
probability of only positive or negative reference mask"); a missing mask is an empty one (it
contributes no prompt, see :mod:`.prompt`).

Layout read (``../shared/data/CarParts``): ``images/<img>.jpg`` and ``part_labels/<stem>.png``
label maps (0 unlabelled, ``v > 0`` one part; in CarParts ``v = category_id - 1`` of
``annotations_coco_polygons.json``, whose names are used in logs when present). Every image
holds one object (one instance per image, as CarParts and PartImageNet); all images are one
category unless ``categories`` maps image names to categories.

Choices the paper leaves open, stated here:

- The reference is drawn uniformly among the other images of the category that have at least
  one of the drawn parts (else among all other images of the category).
- The target goes through the training augmentation (``data.augment``) and click simulation
  (``data.clicks``); the reference image is stretched to the crop size (bilinear; masks
  nearest), without random augmentation, as a user's reference would be given whole.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DataConfig, RefCutConfig
from ..data.dataset import SampleSource, _check_seed, _resolve, sample_fields
from ..data.seeding import epoch_permutation, sample_seeds
from ..errors import DatasetError, SampleError

__all__ = ["PartPairDataset", "reference_masks", "draw_parts", "draw_reference_mode"]

log = logging.getLogger(__name__)


def draw_parts(parts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``1..N`` of the ``N`` part ids (count uniform, then a uniform subset), sorted."""
    parts = np.asarray(parts)
    if parts.size == 0:
        raise ValueError("an object with no parts cannot be a RefCut target")
    k = int(rng.integers(1, parts.size + 1))
    return np.sort(rng.choice(parts, size=k, replace=False))


def draw_reference_mode(rng: np.random.Generator, cfg: RefCutConfig) -> str:
    """``"positive"`` (only ``M_r^+``), ``"negative"`` (only ``M_r^-``) or ``"both"``."""
    u = rng.random()
    if u < cfg.positive_only_prob:
        return "positive"
    if u < cfg.positive_only_prob + cfg.negative_only_prob:
        return "negative"
    return "both"


def reference_masks(labels: np.ndarray, chosen: np.ndarray, mode: str = "both") -> tuple[np.ndarray, np.ndarray]:
    """``(positive, negative)`` bool masks of a reference label map: the chosen parts, and the
    reference object's other labelled parts; the one left out by ``mode`` is empty."""
    pos = np.isin(labels, chosen)
    neg = (labels > 0) & ~pos
    if mode == "positive":
        neg = np.zeros_like(neg)
    elif mode == "negative":
        pos = np.zeros_like(pos)
    elif mode != "both":
        raise ValueError(f"reference mode must be 'positive', 'negative' or 'both', got {mode!r}")
    return pos, neg


def _read_label_map(path: Path) -> np.ndarray:
    from ..evaluate.datasets import _read_raw

    raw = _read_raw(path)
    if raw.ndim != 2:
        raise DatasetError(f"part label map {str(path)!r} is not single-channel")
    return raw.astype(np.int32)


class PartPairDataset(SampleSource):
    """RefCut training samples from a part dataset (``sample(index, epoch) -> dict``).

    Keys: those of :class:`~mis_pipeline.data.ProposalDataset` samples (``image``, ``mask``,
    ``points``, ``labels``, ``valid``, ``image_index``, ``node`` (here: a bit set of the drawn
    part ids), ``index``, ``epoch``) plus ``ref_image (crop, crop, 3) uint8``, ``ref_pos`` and
    ``ref_neg (crop, crop) bool`` and ``ref_index`` (the reference image's index, -1 if none).

    Parameters
    ----------
    root : dataset root with ``images/`` and ``part_labels/``.
    seed, crop_size, epoch_size, config : as for the other training datasets.
    refcut : the reference-mode probabilities (:class:`~mis_pipeline.config.RefCutConfig`).
    categories : optional ``{image file name: category}``; default one category.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        seed: int = 0,
        crop_size: int | None = None,
        epoch_size: int | None = None,
        config: DataConfig | None = None,
        refcut: RefCutConfig | None = None,
        categories: dict[str, str] | None = None,
        images_dir: str = "images",
        labels_dir: str = "part_labels",
    ) -> None:
        self.config = _resolve(config, crop_size, epoch_size, None)
        self.seed = _check_seed(seed)
        self.refcut = refcut if refcut is not None else RefCutConfig()
        self.root = Path(root)
        self.images_dir = self.root / images_dir
        self.labels_dir = self.root / labels_dir
        for d, what in ((self.images_dir, "images"), (self.labels_dir, "part label maps")):
            if not d.is_dir():
                raise DatasetError(f"parts: the {what} folder {str(d)!r} does not exist")
        self.epoch_size = int(self.config.epoch_size)
        self.crop_size = int(self.config.augment.crop_size)
        images, parts = [], []
        for img in sorted(p for p in self.images_dir.iterdir() if p.is_file()):
            lab = self.labels_dir / f"{img.stem}.png"
            if not lab.is_file():
                continue
            values = np.unique(_read_label_map(lab))
            values = values[values > 0]
            if values.size:
                images.append(img.name)
                parts.append(values.astype(np.int32))
        if len(images) < 2:
            raise DatasetError(f"parts: need at least two images with part labels under {str(self.root)!r}, "
                               f"found {len(images)}")
        self.images = images
        self.parts = parts
        cats = categories or {}
        self.category = [str(cats.get(name, "")) for name in images]
        self.part_names = self._part_names()

    def _part_names(self) -> dict[int, str]:
        path = self.root / "annotations_coco_polygons.json"
        if not path.is_file():
            return {}
        try:
            cats = json.loads(path.read_text(encoding="utf-8")).get("categories", [])
            return {int(c["id"]) - 1: str(c["name"]) for c in cats}
        except (ValueError, KeyError, TypeError):  # names are only cosmetic
            return {}

    def __repr__(self) -> str:
        return (f"PartPairDataset({str(self.root)!r}, images={len(self.images)}, epoch_size={self.epoch_size}, "
                f"crop_size={self.crop_size}, seed={self.seed})")

    def image_of(self, index: int, epoch: int = 0) -> int:
        """Index of the target image of sample ``index`` in ``epoch`` (a seeded pass over images)."""
        index, epoch = self._check_index(index, epoch)
        n = len(self.images)
        chunk, pos = divmod(index, n)
        perms = self._local().setdefault("perms", OrderedDict())
        if (epoch, chunk) not in perms:
            perms[(epoch, chunk)] = epoch_permutation(self.seed, epoch, chunk, n)
            while len(perms) > 4:
                perms.popitem(last=False)
        return int(perms[(epoch, chunk)][pos])

    def labels(self, i: int) -> np.ndarray:
        """The label map ``int32 (H, W)`` of image ``i``."""
        return _read_label_map(self.labels_dir / f"{Path(self.images[i]).stem}.png")

    def image(self, i: int) -> np.ndarray:
        from ..evaluate.datasets import read_rgb

        return read_rgb(self.images_dir / self.images[i])

    def draw_reference(self, target: int, chosen: np.ndarray, rng: np.random.Generator) -> int | None:
        """Index of a reference image for ``target`` (see the module docstring), or None."""
        same = [j for j in range(len(self.images)) if j != target and self.category[j] == self.category[target]]
        if not same:
            return None
        having = [j for j in same if np.isin(self.parts[j], chosen).any()]
        pool = having or same
        return int(pool[int(rng.integers(len(pool)))])

    def sample(self, index: int, epoch: int = 0) -> dict[str, Any]:
        """Sample ``index`` of ``epoch`` (keys in the class docstring)."""
        import cv2

        from .. import clicks as click_lib

        index, epoch = self._check_index(index, epoch)
        t = self.image_of(index, epoch)
        image, labels = self.image(t), self.labels(t)
        if image.shape[:2] != labels.shape:
            raise DatasetError(f"parts: image {self.images[t]!r} {image.shape[:2]} and its label map "
                               f"{labels.shape} differ in size")
        local = self._local()
        if "augmenter" not in local:
            from ..data.augment import Augmenter

            local["augmenter"] = Augmenter(self.config.augment)
        cfg = self.config
        need = max(int(cfg.clicks.min_object_area), 1)
        # Re-draw parts and augmentation until the target keeps ``need`` px in the crop; after
        # ``max_redraws`` failures (small parts cropped away) the whole object is tried as many times.
        tries = cfg.max_redraws + 1
        for attempt in range(2 * tries):
            rng, aug_seed = sample_seeds(self.seed, epoch, index, attempt)
            chosen = draw_parts(self.parts[t], rng) if attempt < tries else np.sort(self.parts[t])
            aug = local["augmenter"](image, np.isin(labels, chosen), aug_seed)
            if np.count_nonzero(aug.mask) >= need:
                break
        else:
            raise SampleError(f"parts sample (seed={self.seed}, epoch={epoch}, index={index}) of "
                              f"{self.images[t]!r}: neither {tries} draws of parts nor {tries} of the whole "
                              f"object kept {need} px after augmentation (lower data.clicks.min_object_area "
                              "or zoom out with data.augment.scale_range)")
        c = click_lib.sample_clicks(aug.mask, rng, cfg.clicks)
        s = self.crop_size
        ref = self.draw_reference(t, chosen, rng)
        mode = draw_reference_mode(rng, self.refcut)
        if ref is None:
            ref_image = np.zeros((s, s, 3), np.uint8)
            pos = neg = np.zeros((s, s), bool)
        else:
            r_lab = self.labels(ref)
            ref_image = cv2.resize(self.image(ref), (s, s), interpolation=cv2.INTER_LINEAR)
            r_lab = cv2.resize(r_lab, (s, s), interpolation=cv2.INTER_NEAREST)
            pos, neg = reference_masks(r_lab, chosen, mode)
        return {
            **sample_fields(aug.image, aug.mask, c),
            "image_index": np.int64(t),
            "node": np.int64(sum(1 << int(p) for p in chosen)),
            "index": np.int64(index),
            "epoch": np.int64(epoch),
            "ref_image": ref_image,
            "ref_pos": pos,
            "ref_neg": neg,
            "ref_index": np.int64(-1 if ref is None else ref),
        }
