"""Where annotations go: one PNG per image, one COCO file, one ``pairs.csv``, all written atomically.

Layout of the output folder ``MASKS``::

    MASKS/<stem>.png          L mode, 0 = background, 255 = object, the image's size
    MASKS/annotations.json    COCO: images, one annotation per saved mask (compressed RLE),
                              one category "object"
    MASKS/pairs.csv           image,mask: the ``folder`` dataset of
                              ``mis evaluate --dataset folder --data MASKS``

Image paths in both index files (COCO ``file_name``, the ``image`` column) are relative to
MASKS, the folder that holds them (``../images/a.jpg``), so each file resolves on its own:
``mis train --mode finetune --data MASKS`` (pairs.csv) and ``--data MASKS/annotations.json``
(COCO, image root = the JSON's folder) read the images, never the mask PNGs of the same stem.

Every file is written to a temporary file in the same folder and renamed over the old one
(``os.replace``), so a crash leaves either the old or the new version, never half a file.
The COCO file and ``pairs.csv`` are rewritten from memory after each save; on start the saved
state is read back from the PNGs (the source of truth) with the COCO ids of an existing
``annotations.json`` kept, so a restarted server shows what was saved and ids stay stable.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .images import ImageEntry, ImageFolder
from .rle import coco_rle, mask_bbox

logger = logging.getLogger(__name__)

__all__ = ["MaskStore", "atomic_write", "COCO_NAME", "PAIRS_NAME", "CATEGORY"]

COCO_NAME = "annotations.json"
PAIRS_NAME = "pairs.csv"
#: The single COCO category of click annotations.
CATEGORY = {"id": 1, "name": "object", "supercategory": "object"}


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _png_bytes(mask: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


class MaskStore:
    """Saved masks of an :class:`~mis_pipeline.annotate.images.ImageFolder` in ``out_dir``.

    Thread-safe: saves from several browser sessions are serialised.
    """

    def __init__(self, images: ImageFolder, out_dir: str | Path) -> None:
        self.images = images
        self.out_dir = Path(out_dir).resolve()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._ids = self._read_coco_ids()
        #: index -> (H, W) of every saved mask
        self._saved: dict[int, tuple[int, int]] = {}
        self._annotations: dict[int, dict] = {}
        for e in images.entries:
            p = self.mask_path(e)
            if p.is_file():
                try:
                    mask = self._read_png(p)
                except (OSError, ValueError) as exc:
                    logger.warning("ignoring unreadable saved mask %s: %s", p, exc)
                    continue
                self._remember(e, mask)
        if self._saved:
            self._write_index()
        logger.info("%d of %d images already have a saved mask in %s", len(self._saved), len(images), self.out_dir)

    # ------------------------------------------------------------------ reading
    def mask_path(self, entry: ImageEntry) -> Path:
        return self.out_dir / f"{entry.stem}.png"

    @staticmethod
    def _read_png(path: Path) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as im:
            a = np.asarray(im.convert("L"))
        return a > 127

    def _read_coco_ids(self) -> dict[str, int]:
        """``file_name -> image id`` of an existing COCO file (empty when absent or unreadable)."""
        p = self.out_dir / COCO_NAME
        if not p.is_file():
            return {}
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            return {str(im["file_name"]): int(im["id"]) for im in data.get("images", [])}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("%s is unreadable (%s); it is rebuilt from the saved PNGs", p, exc)
            return {}

    def is_saved(self, index: int) -> bool:
        return index in self._saved

    def saved_mask(self, index: int) -> np.ndarray | None:
        """The saved mask ``(H, W) bool`` of image ``index``, or None."""
        if index not in self._saved:
            return None
        return self._read_png(self.mask_path(self.images.entry(index)))

    @property
    def saved_indices(self) -> list[int]:
        return sorted(self._saved)

    # ------------------------------------------------------------------ writing
    def file_name(self, entry: ImageEntry) -> str:
        """Path of the image relative to the output folder (POSIX): COCO ``file_name`` and the
        ``image`` column of pairs.csv, so both files resolve from the folder that holds them."""
        return Path(os.path.relpath(entry.path, self.out_dir)).as_posix()

    def _image_id(self, entry: ImageEntry) -> int:
        key = self.file_name(entry)
        if key not in self._ids:
            self._ids[key] = max(self._ids.values(), default=0) + 1
        return self._ids[key]

    def _remember(self, entry: ImageEntry, mask: np.ndarray) -> None:
        h, w = mask.shape
        image_id = self._image_id(entry)
        self._saved[entry.index] = (h, w)
        self._annotations[entry.index] = {
            "id": image_id,  # one annotation per image: the image's id
            "image_id": image_id,
            "category_id": CATEGORY["id"],
            "segmentation": coco_rle(mask),
            "area": float(mask.sum()),
            "bbox": mask_bbox(mask),
            "iscrowd": 0,
        }

    def save(self, index: int, mask: np.ndarray) -> Path:
        """Save ``mask`` ``(H, W) bool`` of image ``index``: PNG, COCO file and pairs.csv."""
        entry = self.images.entry(index)
        mask = np.asarray(mask, dtype=bool)
        shape = self.images.shape(index)
        if mask.ndim != 2 or (shape is not None and mask.shape != shape):
            raise ValueError(f"mask of image {index} has shape {mask.shape}; the image is {shape} (rows, cols)")
        path = self.mask_path(entry)
        with self._lock:
            atomic_write(path, _png_bytes(mask))
            self._remember(entry, mask)
            self._write_index()
        logger.info("saved %s (%d object pixels)", path, int(mask.sum()))
        return path

    def coco(self) -> dict:
        """The COCO document of the saved masks."""
        images = []
        for idx in sorted(self._saved):
            e = self.images.entry(idx)
            h, w = self._saved[idx]
            images.append({"id": self._image_id(e), "file_name": self.file_name(e), "height": h, "width": w,
                           "mask_file": self.mask_path(e).name})
        return {
            "info": {
                "description": "masks annotated with mis annotate",
                "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "image_root": str(self.images.root),
            },
            "images": images,
            "annotations": [self._annotations[i] for i in sorted(self._saved)],
            "categories": [CATEGORY],
        }

    def _write_index(self) -> None:
        atomic_write(self.out_dir / COCO_NAME, (json.dumps(self.coco(), indent=1) + "\n").encode("utf-8"))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["image", "mask"])
        for idx in sorted(self._saved):
            e = self.images.entry(idx)
            # Relative paths keep MASKS and the image folder movable together.
            writer.writerow([self.file_name(e), self.mask_path(e).name])
        atomic_write(self.out_dir / PAIRS_NAME, buf.getvalue().encode("utf-8"))
