"""Interactive-segmentation benchmarks, read in their published layouts.

Every dataset is a light, picklable index of files (built once, checked on construction: a
missing folder or an image without its mask raises :class:`~mis_pipeline.errors.DatasetError`)
whose :meth:`Dataset.load` decodes one :class:`Sample`. Samples are ordered deterministically
(sorted file names, then instance ids), so sample ``i`` is the same on every machine.

=============  ====================================================================  =============
name           layout under the dataset root                                         ignore
=============  ====================================================================  =============
``grabcut``    ``data_GT/<id>.*`` images, ``boundary_GT/<id>.*`` masks (0/128/255)   value 128
``berkeley``   ``images/<id>.*`` images, ``masks/<id>.*`` masks (as GrabCut)         value 128
``davis``      ``img/<id>.*`` images, ``gt/<id>.*`` masks (any non-zero = object)    none
``coco_mval``  same layout as DAVIS                                                  none
``sbd``        ``img/<id>.jpg``, ``inst/<id>.mat`` (``GTinst.Segmentation``),        none
               split file ``<split>.txt`` (default ``val``); one sample per instance
``voc``        ``JPEGImages/<id>.jpg``, ``SegmentationObject/<id>.png`` (palette      value 255
               indices), ``ImageSets/Segmentation/<split>.txt``; one sample per
               instance
``folder``     ``pairs.csv`` with columns ``image,mask`` (paths relative to the root  optional
               or absolute); mask non-zero = object
``parts``      part datasets expanded into RefCut's combination evaluation, see
               :mod:`mis_pipeline.evaluate.parts`
=============  ====================================================================  =============

Mask decoding of GrabCut, Berkeley, DAVIS and COCO-MVal is RITM's, bit for bit: the mask file
is read the way RITM's loaders read it, with OpenCV's ``imread`` in its default colour mode
(:func:`read_mask_ritm`), which gives 3 channels in B, G, R order whatever the file holds: a grey
file is repeated into the three channels, alpha is dropped (never counted), a palette file is
expanded to its palette colours (so the index does not matter, its colour does), and 16-bit
samples keep their high byte (``v >> 8``). Then:

- GrabCut/Berkeley: channel 0 of that BGR image (blue, not red, for a colour mask); 128 is
  "ignore", values above 128 the object, everything else (1 included) background;
- DAVIS/COCO-MVal: maximum over the three channels; anything above 0 is the object.

One difference is deliberate: OpenCV would also apply a JPEG mask's EXIF orientation, which
the image (read with Pillow, no EXIF rotation) does not get, so masks are read with
``IMREAD_IGNORE_ORIENTATION`` to stay aligned with their images. (RITM rotates both; the
benchmarks' masks are PNG/BMP files without EXIF, where nothing changes.)

SBD/VOC select one instance id per sample (VOC by palette index, with 255 the ignored border;
RITM's VOC loader converts the palette colours to grey levels, where the border becomes 220:
the same instances, numbered differently).
"""

from __future__ import annotations

import csv
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError

__all__ = [
    "Sample",
    "Dataset",
    "GrabCutDataset",
    "BerkeleyDataset",
    "DavisDataset",
    "CocoMValDataset",
    "SBDDataset",
    "VOCDataset",
    "FolderDataset",
    "DATASET_NAMES",
    "open_dataset",
    "read_rgb",
    "read_mask_ritm",
]


@dataclass(frozen=True, eq=False)
class Sample:
    """One evaluation target.

    Attributes
    ----------
    sample_id : str
        Unique within its dataset (``"banana1"``, ``"2008_000123#2"``, ``"car10:hood+wheel"``).
    image : ndarray, (H, W, 3) uint8, RGB
    gt : ndarray, (H, W) bool
        The target object.
    ignore : ndarray, (H, W) bool, or None
        Pixels excluded from the clicker's error maps and from IoU.
    kind : str
        ``"object"`` for the standard benchmarks; ``"part"``, ``"pair"`` or ``"whole"`` for
        part-combination samples.
    parts : tuple of str
        Part names of a part-combination sample (empty otherwise).
    reference_id : str or None
        Sample id of the reference sample (part datasets), or None.
    """

    sample_id: str
    image: np.ndarray
    gt: np.ndarray
    ignore: np.ndarray | None = None
    kind: str = "object"
    parts: tuple[str, ...] = ()
    reference_id: str | None = None


class Dataset(ABC):
    """An ordered, picklable index of samples; :meth:`load` decodes one."""

    name: str = ""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.name} dataset root {str(self.root)!r} is not a directory")

    @property
    @abstractmethod
    def ids(self) -> list[str]:
        """Sample ids in evaluation order."""

    @abstractmethod
    def load(self, index: int) -> Sample:
        """Decode sample ``index`` (0-based, in :attr:`ids` order)."""

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, samples={len(self)})"

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self):
            raise IndexError(f"sample index {index} out of range for {len(self)} samples")


# --------------------------------------------------------------------------- file helpers
_IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to ``(H, W, 3) uint8`` RGB."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read image {str(path)!r}: {exc}") from exc


def _read_raw(path: str | Path) -> np.ndarray:
    """Decode a mask file without colour conversion: ``(H, W)`` or ``(H, W, C)`` integers.

    Palette (``P``) images give their palette indices, as VOC requires.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode in ("1",):
                im = im.convert("L")
            return np.asarray(im).copy()
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read mask {str(path)!r}: {exc}") from exc


def read_mask_ritm(path: str | Path) -> np.ndarray:
    """Decode a mask file exactly as RITM's GrabCut/Berkeley/DAVIS loaders do.

    ``cv2.imread(path)`` in its default colour mode: ``(H, W, 3) uint8`` in B, G, R order;
    grey files repeated into the three channels, alpha dropped, palette files expanded to their
    colours, 16-bit samples reduced to their high byte. EXIF orientation is not applied (see
    the module docstring).
    """
    import cv2

    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"cannot read mask {str(path)!r}: no such file")
    # imdecode from bytes: cv2.imread cannot open every path (non-ASCII names on some systems)
    buf = np.fromfile(p, dtype=np.uint8)
    mask = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) if buf.size else None
    if mask is None:
        raise DatasetError(f"cannot read mask {str(path)!r}: OpenCV cannot decode it")
    return mask


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{what}: expected folder {str(path)!r} is missing")
    return path


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_EXTS)


def _stem(path: Path) -> str:
    # RITM matches images and masks by the name up to the first dot.
    return path.name.split(".")[0]


def _check_same_size(sample_id: str, image: np.ndarray, mask: np.ndarray) -> None:
    if image.shape[:2] != mask.shape[:2]:
        raise DatasetError(
            f"sample {sample_id!r}: image is {image.shape[0]}x{image.shape[1]} but its mask is "
            f"{mask.shape[0]}x{mask.shape[1]} (rows x cols)"
        )


# --------------------------------------------------------------------------- image + mask pairs
class _PairedFolders(Dataset):
    """Images in one folder, masks with the same stem in another; one object per image."""

    images_dir = ""
    masks_dir = ""

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        img_dir = _require_dir(self.root / self.images_dir, f"{self.name} images")
        mask_dir = _require_dir(self.root / self.masks_dir, f"{self.name} masks")
        masks = {_stem(p): p for p in _images_in(mask_dir)}
        self._pairs: list[tuple[str, Path, Path]] = []
        missing = []
        for p in _images_in(img_dir):
            m = masks.get(_stem(p))
            if m is None:
                missing.append(p.name)
            else:
                self._pairs.append((_stem(p), p, m))
        if missing:
            raise DatasetError(
                f"{self.name}: {len(missing)} image(s) in {str(img_dir)!r} have no mask in "
                f"{str(mask_dir)!r}, e.g. {missing[:3]}"
            )
        if not self._pairs:
            raise DatasetError(f"{self.name}: no images found in {str(img_dir)!r}")

    @property
    def ids(self) -> list[str]:
        return [sid for sid, _, _ in self._pairs]

    @abstractmethod
    def _decode(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(gt, ignore)`` boolean masks from the (H, W, 3) BGR mask of :func:`read_mask_ritm`."""

    def load(self, index: int) -> Sample:
        self._check_index(index)
        sid, img_path, mask_path = self._pairs[index]
        image = read_rgb(img_path)
        raw = read_mask_ritm(mask_path)
        _check_same_size(sid, image, raw)
        gt, ignore = self._decode(raw)
        return Sample(sid, image, gt, ignore)


class GrabCutDataset(_PairedFolders):
    """GrabCut (50 images): ``data_GT`` + ``boundary_GT``; 128 is the ignored boundary band.

    Mask: channel 0 of the BGR-decoded file (:func:`read_mask_ritm`); 128 ignore, > 128 object.
    """

    name = "grabcut"
    images_dir = "data_GT"
    masks_dir = "boundary_GT"

    def _decode(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        m = raw[:, :, 0]  # RITM: cv2.imread(mask)[:, :, 0], the blue channel of a colour mask
        ignore = m == 128
        return m > 128, (ignore if ignore.any() else None)


class BerkeleyDataset(GrabCutDataset):
    """Berkeley (100 instances): ``images`` + ``masks``, encoded like GrabCut."""

    name = "berkeley"
    images_dir = "images"
    masks_dir = "masks"


class DavisDataset(_PairedFolders):
    """DAVIS-345: ``img`` + ``gt``; a pixel is the object when any of B, G, R is non-zero
    (alpha never counts; palette colours, not indices; 16-bit high byte: :func:`read_mask_ritm`)."""

    name = "davis"
    images_dir = "img"
    masks_dir = "gt"

    def _decode(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return raw.max(axis=2) > 0, None  # RITM: max over the B, G, R channels, > 0


class CocoMValDataset(DavisDataset):
    """COCO-MVal (800 instances): same layout and encoding as DAVIS."""

    name = "coco_mval"


# --------------------------------------------------------------------------- one sample per instance
def _instance_ids(label: np.ndarray, exclude: tuple[int, ...] = (0,)) -> list[int]:
    vals = np.unique(label)
    return [int(v) for v in vals if int(v) not in exclude]


def _read_split(path: Path, what: str) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"{what}: split file {str(path)!r} is missing")
    names = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n]
    if not names:
        raise DatasetError(f"{what}: split file {str(path)!r} lists no images")
    return names


class _InstanceDataset(Dataset):
    """Base of SBD and VOC: a label map per image, one sample per instance id."""

    ignore_value: int | None = None

    def _build(self, names: list[str]) -> None:
        self._items: list[tuple[str, int]] = []
        exclude = (0,) if self.ignore_value is None else (0, self.ignore_value)
        for n in names:
            self._check_files(n)
            for inst in _instance_ids(self._labels(n), exclude):
                self._items.append((n, inst))
        if not self._items:
            raise DatasetError(f"{self.name}: no object instances found under {str(self.root)!r}")

    def _check_files(self, name: str) -> None:
        for p in (self._image_path(name), self._label_path(name)):
            if not p.is_file():
                raise DatasetError(f"{self.name}: file {str(p)!r} listed by the split is missing")

    @abstractmethod
    def _image_path(self, name: str) -> Path: ...

    @abstractmethod
    def _label_path(self, name: str) -> Path: ...

    @abstractmethod
    def _labels(self, name: str) -> np.ndarray: ...

    @property
    def ids(self) -> list[str]:
        return [f"{n}#{i}" for n, i in self._items]

    def load(self, index: int) -> Sample:
        self._check_index(index)
        name, inst = self._items[index]
        image = read_rgb(self._image_path(name))
        labels = self._labels(name)
        sid = f"{name}#{inst}"
        _check_same_size(sid, image, labels)
        ignore = None
        if self.ignore_value is not None:
            ignore = labels == self.ignore_value
            ignore = ignore if ignore.any() else None
        return Sample(sid, image, labels == inst, ignore)


class SBDDataset(_InstanceDataset):
    """SBD: ``img/<id>.jpg`` + ``inst/<id>.mat`` (MATLAB struct ``GTinst.Segmentation``)."""

    name = "sbd"

    def __init__(self, root: str | Path, split: str = "val") -> None:
        super().__init__(root)
        _require_dir(self.root / "img", "sbd images")
        _require_dir(self.root / "inst", "sbd instance masks")
        self.split = split
        self._build(_read_split(self.root / f"{split}.txt", "sbd"))

    def _image_path(self, name: str) -> Path:
        return self.root / "img" / f"{name}.jpg"

    def _label_path(self, name: str) -> Path:
        return self.root / "inst" / f"{name}.mat"

    def _labels(self, name: str) -> np.ndarray:
        from scipy.io import loadmat

        path = self._label_path(name)
        try:
            gt = loadmat(str(path))["GTinst"]
            names = gt.dtype.names or ()
            seg = gt["Segmentation"][0, 0] if "Segmentation" in names else gt[0, 0][0]
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise DatasetError(f"sbd: cannot read GTinst.Segmentation from {str(path)!r}: {exc}") from exc
        return np.asarray(seg).astype(np.int32)


class VOCDataset(_InstanceDataset):
    """PASCAL VOC ``SegmentationObject`` (palette PNG: index = instance, 255 = ignored border)."""

    name = "voc"
    ignore_value = 255

    def __init__(self, root: str | Path, split: str = "val") -> None:
        super().__init__(root)
        _require_dir(self.root / "JPEGImages", "voc images")
        _require_dir(self.root / "SegmentationObject", "voc instance masks")
        self.split = split
        self._build(_read_split(self.root / "ImageSets" / "Segmentation" / f"{split}.txt", "voc"))

    def _image_path(self, name: str) -> Path:
        return self.root / "JPEGImages" / f"{name}.jpg"

    def _label_path(self, name: str) -> Path:
        return self.root / "SegmentationObject" / f"{name}.png"

    def _labels(self, name: str) -> np.ndarray:
        raw = _read_raw(self._label_path(name))
        if raw.ndim != 2:
            raise DatasetError(
                f"voc: {str(self._label_path(name))!r} is a colour image; SegmentationObject masks "
                "must be palette (P) or grey (L) PNGs holding instance indices"
            )
        return raw.astype(np.int32)


# --------------------------------------------------------------------------- generic folder
class FolderDataset(Dataset):
    """Any images with binary masks listed in ``pairs.csv`` (columns ``image,mask``).

    Paths are relative to the root (or absolute). A mask pixel is the object when non-zero,
    except pixels equal to ``ignore_value`` (if given), which are ignored.
    """

    name = "folder"

    def __init__(self, root: str | Path, csv_name: str = "pairs.csv", ignore_value: int | None = None) -> None:
        super().__init__(root)
        path = self.root / csv_name
        if not path.is_file():
            raise DatasetError(f"folder: {str(path)!r} is missing (a CSV with columns image,mask)")
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            cols = set(reader.fieldnames or ())
            if not {"image", "mask"} <= cols:
                raise DatasetError(f"folder: {str(path)!r} has columns {sorted(cols)}; needs image and mask")
            rows = [(r["image"], r["mask"]) for r in reader]
        if not rows:
            raise DatasetError(f"folder: {str(path)!r} lists no samples")
        self.ignore_value = ignore_value
        self._pairs: list[tuple[str, Path, Path]] = []
        seen: dict[str, int] = {}
        for img, mask in rows:
            ip, mp = self.root / img, self.root / mask
            for p in (ip, mp):
                if not p.is_file():
                    raise DatasetError(f"folder: file {str(p)!r} listed in {csv_name} is missing")
            sid = Path(mask).stem
            if sid in seen:  # several masks of one image, or equal mask names in subfolders
                seen[sid] += 1
                sid = f"{sid}#{seen[sid]}"
            else:
                seen[sid] = 0
            self._pairs.append((sid, ip, mp))

    @property
    def ids(self) -> list[str]:
        return [sid for sid, _, _ in self._pairs]

    def load(self, index: int) -> Sample:
        self._check_index(index)
        sid, ip, mp = self._pairs[index]
        image = read_rgb(ip)
        raw = _read_raw(mp)
        m = raw.max(axis=2) if raw.ndim == 3 else raw
        _check_same_size(sid, image, m)
        ignore = None
        if self.ignore_value is not None:
            ignore = m == self.ignore_value
            m = np.where(ignore, 0, m)
            ignore = ignore if ignore.any() else None
        return Sample(sid, image, m > 0, ignore)


# --------------------------------------------------------------------------- registry
_REGISTRY: dict[str, type[Dataset] | None] = {
    "grabcut": GrabCutDataset,
    "berkeley": BerkeleyDataset,
    "davis": DavisDataset,
    "coco_mval": CocoMValDataset,
    "sbd": SBDDataset,
    "voc": VOCDataset,
    "folder": FolderDataset,
    "parts": None,  # mis_pipeline.evaluate.parts.PartCombinationDataset (imported on use)
}
DATASET_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def open_dataset(name: str, root: str | Path, **options: Any) -> Dataset:
    """Open dataset ``name`` (one of :data:`DATASET_NAMES`) at ``root``; ``options`` go to its class."""
    if name not in _REGISTRY:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASET_NAMES)}")
    cls = _REGISTRY[name]
    if cls is None:
        from .parts import PartCombinationDataset

        cls = PartCombinationDataset
    import inspect

    try:
        inspect.signature(cls).bind(root, **options)
    except TypeError as exc:
        raise DatasetError(f"dataset {name!r} does not take options {sorted(options)}: {exc}") from exc
    return cls(root, **options)
