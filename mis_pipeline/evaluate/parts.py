"""Part datasets expanded into RefCut's combination evaluation (RefCut, Lin et al., Sec. 3.3).

A part dataset has one object per image, annotated by parts. Two layouts are read:

- ``masks``: a ``pairs.csv`` with columns ``image, mask, part`` (one row per part instance; the
  masks of instances of the same part name in one image are united into that part), e.g.
  ``CarParts/pairs.csv``;
- ``labels``: a label map per image, ``<labels_dir>/<image stem>.png`` with 0 = unlabelled and
  each other value one part (part name = ``part_names[value]`` or ``str(value)``), e.g.
  ``CarParts/part_labels/``.

Combination evaluation: for every image (in lexicographic order of image file names) the
samples are

1. every single part (``kind="part"``, parts in sorted name order);
2. every pair of *connected* parts (``kind="pair"``), pairs in sorted order: parts ``a`` and ``b``
   are connected when ``a``'s mask dilated by ``adjacency_px`` pixels (3x3 square element, i.e.
   8-neighbourhood, applied ``adjacency_px`` times) meets ``b``'s mask (overlapping masks are
   connected); ``adjacency_px=1`` means "touching";
3. the whole object: the union of all its parts (``kind="whole"``).

No sample is dropped when masks coincide (an image with one part has an identical "part" and
"whole" sample): each kind is a different reference task.

Reference: the *key* of a sample is its sorted part names for ``part``/``pair`` samples and the
word ``whole`` for whole-object samples. The reference of a sample of image ``I`` is the sample
with the same kind and key whose image file name comes next after ``I`` in lexicographic order
among the images having such a sample, wrapping around to the first; ``None`` when no other
image has one. The reference's positive mask is that sample's target; its negative mask is the
union of the reference object's remaining parts (empty for ``whole``).
"""

from __future__ import annotations

import bisect
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import numpy as np

from ..errors import DatasetError
from .datasets import Dataset, Sample, _check_same_size, _read_raw, _require_dir, read_rgb

__all__ = ["PartCombinationDataset", "PartSample", "Reference", "connected_pairs"]


@dataclass(frozen=True)
class PartSample:
    """Index entry of one combination sample (no pixels)."""

    image_name: str
    kind: str  # "part" | "pair" | "whole"
    parts: tuple[str, ...]

    @property
    def sample_id(self) -> str:
        stem = self.image_name.rsplit(".", 1)[0]
        return f"{stem}:whole" if self.kind == "whole" else f"{stem}:{'+'.join(self.parts)}"

    @property
    def key(self) -> tuple[str, ...]:
        return ("whole",) if self.kind == "whole" else self.parts


@dataclass(frozen=True, eq=False)
class Reference:
    """A reference for a part-combination sample: image (H, W, 3) uint8 and boolean masks."""

    sample_id: str
    image: np.ndarray
    positive: np.ndarray
    negative: np.ndarray


def connected_pairs(masks: dict[str, np.ndarray], adjacency_px: int = 1) -> list[tuple[str, str]]:
    """Sorted pairs ``(a, b)``, ``a < b``, of part masks (bool (H, W)) that touch or overlap
    within ``adjacency_px`` pixels (3x3 dilation applied ``adjacency_px`` times)."""
    import cv2

    names = sorted(masks)
    kernel = np.ones((3, 3), np.uint8)
    grown = {}
    for n in names:
        m = masks[n].astype(np.uint8)
        grown[n] = cv2.dilate(m, kernel, iterations=adjacency_px).astype(bool) if adjacency_px > 0 else m.astype(bool)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if np.any(grown[a] & masks[b]):
                out.append((a, b))
    return out


class PartCombinationDataset(Dataset):
    """Combination evaluation over a part dataset (see the module docstring).

    Parameters
    ----------
    root : path
        Dataset root holding ``images/`` and ``pairs.csv`` and/or a label-map folder.
    source : {"auto", "masks", "labels"}
        ``auto`` uses ``pairs.csv`` when it has a ``part`` column, else the label maps.
    adjacency_px : int
        Connection tolerance of pairs in pixels (>= 0; 1 = touching in the 8-neighbourhood).
    part_names : dict int -> str, optional
        Names of label values (``labels`` source); default ``str(value)``.
    images_dir, labels_dir, csv_name : str
        Folder and file names under ``root``.
    """

    name = "parts"

    def __init__(
        self,
        root: str | Path,
        source: Literal["auto", "masks", "labels"] = "auto",
        adjacency_px: int = 1,
        part_names: dict[int, str] | None = None,
        images_dir: str = "images",
        labels_dir: str = "part_labels",
        csv_name: str = "pairs.csv",
    ) -> None:
        super().__init__(root)
        if source not in ("auto", "masks", "labels"):
            raise DatasetError(f"parts: source {source!r} is not one of 'auto', 'masks', 'labels'")
        if adjacency_px < 0:
            raise DatasetError(f"parts: adjacency_px must be >= 0, got {adjacency_px}")
        self.adjacency_px = int(adjacency_px)
        self.images_dir = _require_dir(self.root / images_dir, "parts images")
        csv_path = self.root / csv_name
        if source == "auto":
            source = "masks" if csv_path.is_file() and "part" in _csv_columns(csv_path) else "labels"
        self.source = source
        self.part_names = dict(part_names or {})
        self.labels_dir = self.root / labels_dir
        # image file name -> {part name -> tuple of mask paths (masks) or label value (labels)}
        self._parts: dict[str, dict[str, tuple[str, ...] | int]] = (
            self._index_masks(csv_path) if source == "masks" else self._index_labels()
        )
        if not self._parts:
            raise DatasetError(f"parts: no annotated parts found under {str(self.root)!r}")
        self._samples: list[PartSample] = []
        for image_name in sorted(self._parts):
            masks = self._part_masks(image_name)
            names = sorted(masks)
            self._samples += [PartSample(image_name, "part", (n,)) for n in names]
            self._samples += [PartSample(image_name, "pair", p) for p in connected_pairs(masks, self.adjacency_px)]
            self._samples.append(PartSample(image_name, "whole", tuple(names)))
        self._references = self._link_references()

    # ------------------------------------------------------------------ indexing
    def _index_masks(self, csv_path: Path) -> dict[str, dict[str, tuple[str, ...] | int]]:
        if not csv_path.is_file():
            raise DatasetError(f"parts: {str(csv_path)!r} is missing (columns image, mask, part)")
        cols = _csv_columns(csv_path)
        if not {"image", "mask", "part"} <= cols:
            raise DatasetError(f"parts: {str(csv_path)!r} has columns {sorted(cols)}; needs image, mask, part")
        acc: dict[str, dict[str, list[str]]] = {}
        with csv_path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                image_name = Path(row["image"]).name
                for p in (self.images_dir / image_name, self.root / row["mask"]):
                    if not p.is_file():
                        raise DatasetError(f"parts: file {str(p)!r} listed in {csv_path.name} is missing")
                acc.setdefault(image_name, {}).setdefault(row["part"], []).append(row["mask"])
        return {img: {part: tuple(sorted(paths)) for part, paths in parts.items()} for img, parts in acc.items()}

    def _index_labels(self) -> dict[str, dict[str, tuple[str, ...] | int]]:
        _require_dir(self.labels_dir, "parts label maps")
        out: dict[str, dict[str, tuple[str, ...] | int]] = {}
        for img in sorted(p for p in self.images_dir.iterdir() if p.is_file()):
            lab_path = self.labels_dir / f"{img.stem}.png"
            if not lab_path.is_file():
                raise DatasetError(f"parts: image {img.name!r} has no label map {str(lab_path)!r}")
            values = [int(v) for v in np.unique(self._read_labels(img.name, lab_path)) if v != 0]
            names = [self.part_names.get(v, str(v)) for v in values]
            if len(set(names)) != len(names):
                raise DatasetError(f"parts: part_names maps two labels of {img.name!r} to one name: {names}")
            if values:
                out[img.name] = dict(zip(names, values, strict=True))
        return out

    @staticmethod
    def _read_labels(image_name: str, path: Path) -> np.ndarray:
        raw = _read_raw(path)
        if raw.ndim != 2:
            raise DatasetError(f"parts: label map {str(path)!r} of {image_name!r} is not single-channel")
        return raw.astype(np.int32)

    def _part_masks(self, image_name: str) -> dict[str, np.ndarray]:
        """``{part name: bool (H, W) mask}`` of one image."""
        spec = self._parts[image_name]
        if self.source == "labels":
            lab = self._read_labels(image_name, self.labels_dir / f"{Path(image_name).stem}.png")
            return {name: lab == value for name, value in spec.items()}
        out = {}
        for name, paths in spec.items():
            m = None
            for p in cast(tuple, paths):  # the masks source stores a tuple of paths
                raw = _read_raw(self.root / p)
                part = (raw.max(axis=2) if raw.ndim == 3 else raw) > 0
                m = part if m is None else (m | part)
            out[name] = m
        return out

    def _link_references(self) -> list[int | None]:
        groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        for i, s in enumerate(self._samples):  # samples are in image-name order already
            groups.setdefault((s.kind, s.key), []).append(i)
        refs: list[int | None] = [None] * len(self._samples)
        for members in groups.values():
            names = [self._samples[i].image_name for i in members]
            for j, i in enumerate(members):
                if len(members) < 2:
                    continue
                k = bisect.bisect_right(names, names[j]) % len(members)
                refs[i] = members[k]
        return refs

    # ------------------------------------------------------------------ public API
    @property
    def ids(self) -> list[str]:
        return [s.sample_id for s in self._samples]

    @property
    def entries(self) -> list[PartSample]:
        """The index entries (image name, kind, parts) in sample order."""
        return list(self._samples)

    def reference_index(self, index: int) -> int | None:
        """Index of the reference sample of sample ``index``, or None."""
        self._check_index(index)
        return self._references[index]

    def _target(self, s: PartSample, masks: dict[str, np.ndarray]) -> np.ndarray:
        gt = np.zeros_like(next(iter(masks.values())))
        for p in s.parts:
            gt |= masks[p]
        return gt

    def load(self, index: int) -> Sample:
        self._check_index(index)
        s = self._samples[index]
        image = read_rgb(self.images_dir / s.image_name)
        masks = self._part_masks(s.image_name)
        gt = self._target(s, masks)
        _check_same_size(s.sample_id, image, gt)
        ref = self._references[index]
        return Sample(
            s.sample_id, image, gt, None, kind=s.kind, parts=s.parts,
            reference_id=None if ref is None else self._samples[ref].sample_id,
        )

    def load_reference(self, index: int) -> Reference | None:
        """The reference of sample ``index`` (image, positive and negative masks), or None."""
        ref = self.reference_index(index)
        if ref is None:
            return None
        r = self._samples[ref]
        masks = self._part_masks(r.image_name)
        pos = self._target(r, masks)
        neg = np.zeros_like(pos)
        for name, m in masks.items():
            if name not in r.parts:
                neg |= m
        return Reference(r.sample_id, read_rgb(self.images_dir / r.image_name), pos, neg & ~pos)


def _csv_columns(path: Path) -> set[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return set(csv.DictReader(fh).fieldnames or ())
