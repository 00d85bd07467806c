"""The annotated images: a fixed, indexed list of local files, decoded on demand.

The server addresses images by their index in this list only; no path from a request ever
reaches the file system. Pixels are decoded as :func:`mis_pipeline.evaluate.datasets.read_rgb`
decodes them (Pillow's ``convert("RGB")``, no EXIF rotation), so a saved mask lines up with the
image that ``mis evaluate --dataset folder`` and the fine-tuning loader read; the header is
checked against ``io.max_pixels`` first (decompression-bomb guard).

A file that cannot be decoded is marked ``failed`` with its reason and the others keep working.
"""

from __future__ import annotations

import io
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import (
    ImageError,
    ImageTooLargeError,
    InputSourceError,
    NotAnImageError,
    TruncatedImageError,
    raise_if_interrupted,
)

logger = logging.getLogger(__name__)

__all__ = ["ImageEntry", "ImageFolder", "decode_rgb"]


@dataclass(frozen=True)
class ImageEntry:
    """One image of the folder.

    Attributes
    ----------
    index : int
        Position in the sorted list (the only way requests name an image).
    image_id : str
        Path relative to the image folder, POSIX separators.
    path : Path
        Absolute local path.
    stem : str
        File name without its extension; the mask is saved as ``<stem>.png``.
    """

    index: int
    image_id: str
    path: Path
    stem: str


def decode_rgb(path: str | Path, max_pixels: int) -> np.ndarray:
    """Decode ``path`` to ``(H, W, 3) uint8`` RGB like ``read_rgb`` (no EXIF rotation).

    Raises an :class:`~mis_pipeline.errors.ImageError` leaf (never a bare Pillow error).
    """
    from PIL import Image

    name = str(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ImageTooLargeError(f"header declares {w}x{h} pixels; the limit is io.max_pixels = {max_pixels}", name)
            if w < 1 or h < 1:
                raise TruncatedImageError(f"header declares an empty image ({w}x{h})", name)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except ImageError:
        raise
    except Image.UnidentifiedImageError as exc:
        raise NotAnImageError("not a recognised image format", name) from exc
    # A decoder boundary around untrusted bytes: Pillow raises many exception types on bad input.
    except Exception as exc:
        raise TruncatedImageError(f"image data is truncated or corrupt: {exc}", name) from exc


class ImageFolder:
    """The images of a folder (recursively, sorted) with an LRU cache of decoded pixels.

    Parameters
    ----------
    root : path
        Folder of images (or a text file listing them, as :func:`mis_pipeline.io.list_images`).
    extensions : iterable of str
        File extensions taken (default ``preprocess.extensions``).
    exclude : path, optional
        A folder whose files are never listed (the mask output folder, if inside ``root``).
    max_pixels : int
        Decompression-bomb guard (``io.max_pixels``).
    cache_size : int
        Decoded images kept in memory.

    Raises
    ------
    InputSourceError
        If the folder holds no image, or two images share a file stem (their masks would
        overwrite each other).
    """

    def __init__(
        self,
        root: str | Path,
        extensions: tuple[str, ...] | None = None,
        exclude: str | Path | None = None,
        max_pixels: int | None = None,
        cache_size: int = 4,
    ) -> None:
        from ..config import IOConfig, PreprocessConfig
        from ..io import list_images

        refs = list_images(root, extensions if extensions is not None else PreprocessConfig.extensions)
        ex = Path(exclude).resolve() if exclude is not None else None
        entries: list[ImageEntry] = []
        by_stem: dict[str, str] = {}
        for ref in refs:
            p = Path(ref.path).resolve()
            if ex is not None and (p == ex or ex in p.parents):
                continue
            stem = p.stem
            if stem in by_stem:
                raise InputSourceError(
                    f"images {by_stem[stem]!r} and {ref.image_id!r} share the file stem {stem!r}; masks are "
                    "saved as MASKS/<stem>.png, so stems must be unique"
                )
            by_stem[stem] = ref.image_id
            entries.append(ImageEntry(len(entries), ref.image_id, p, stem))
        if not entries:
            raise InputSourceError(f"no images found in {str(root)!r}")
        self.entries: tuple[ImageEntry, ...] = tuple(entries)
        rp = Path(root).resolve()
        #: the folder ``image_id`` s are relative to
        self.root = rp if rp.is_dir() else rp.parent
        self.max_pixels = int(max_pixels if max_pixels is not None else IOConfig.max_pixels)
        self.cache_size = max(1, int(cache_size))
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._failed: dict[int, str] = {}
        self._sizes: dict[int, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._check_headers()

    def __len__(self) -> int:
        return len(self.entries)

    def _check_headers(self) -> None:
        """Read every header once (cheap: Pillow opens lazily) so files that are no image at all
        show as failed before they are opened; truncated pixel data is found on decode."""
        from PIL import Image

        for e in self.entries:
            try:
                with Image.open(e.path) as im:
                    w, h = im.size
                self._sizes[e.index] = (h, w)
                if w * h > self.max_pixels:
                    self._failed[e.index] = f"too many pixels ({w}x{h} > io.max_pixels = {self.max_pixels})"
            except Exception as exc:  # decoder boundary: any Pillow error marks the file failed
                raise_if_interrupted(exc)
                self._failed[e.index] = f"not a readable image ({type(exc).__name__})"

    def entry(self, index: int) -> ImageEntry:
        """The entry at ``index``; IndexError naming the valid range otherwise."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.entries):
            raise IndexError(f"image index {index!r} out of range: 0..{len(self.entries) - 1}")
        return self.entries[index]

    def failure(self, index: int) -> str | None:
        """Why image ``index`` cannot be used, or None (not known to be bad)."""
        return self._failed.get(index)

    def shape(self, index: int) -> tuple[int, int] | None:
        """``(H, W)`` from the header, if it was readable."""
        return self._sizes.get(index)

    def load(self, index: int) -> np.ndarray:
        """Decoded pixels ``(H, W, 3) uint8`` of image ``index`` (cached, read-only).

        Raises ImageError (and marks the image failed) when it cannot be decoded.
        """
        e = self.entry(index)
        with self._lock:
            if index in self._cache:
                self._cache.move_to_end(index)
                return self._cache[index]
        if index in self._failed and index not in self._sizes:
            raise NotAnImageError(self._failed[index], e.image_id)
        try:
            img = decode_rgb(e.path, self.max_pixels)
        except ImageError as exc:
            self._failed[index] = exc.detail
            logger.warning("image %d (%s) cannot be decoded: %s", index, e.image_id, exc.detail)
            raise
        img.setflags(write=False)
        with self._lock:
            self._failed.pop(index, None)
            self._sizes[index] = img.shape[:2]
            self._cache[index] = img
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return img

    def encoded(self, index: int) -> bytes:
        """Image ``index`` as a PNG of exactly the decoded pixels (what the page displays)."""
        from PIL import Image

        buf = io.BytesIO()
        # compress_level 1: a few times faster than the default for ~1.3x the bytes, on loopback.
        Image.fromarray(self.load(index)).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()
