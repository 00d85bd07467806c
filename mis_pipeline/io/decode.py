"""Decode one image (path, fsspec URL or bytes) to an ``HxWx3`` uint8 RGB array, safely.

Pillow is the decoder. Every failure becomes one of the typed
:class:`~mis_pipeline.errors.ImageError` leaves with a short ``reason`` code, so a corpus run
records the bad file and goes on:

============================  ==================  ==========================================
what is wrong                 error               reason
============================  ==================  ==========================================
zero bytes                    EmptyImageFileError ``empty``
header declares > max_pixels  ImageTooLargeError  ``too_many_pixels`` (checked before decoding)
starts like an image, ends    TruncatedImageError ``truncated`` (also: corrupt pixel data)
early or is corrupt
no known image signature      NotAnImageError     ``not_an_image``
missing file, I/O error,      UnreadableImageError ``unreadable``
unsupported pixel mode
============================  ==================  ==========================================

Pillow global state is never changed by this module:

* ``PIL.Image.MAX_IMAGE_PIXELS`` (Pillow's own bomb guard, default 89,478,485 pixels: a
  warning above it, an error above twice it) is left as the process has it. Our own cap,
  ``max_pixels``, is checked on the header size right after ``Image.open`` (which reads the
  header only) and before any pixel is decoded. If Pillow's guard fires first (only possible
  when ``max_pixels`` exceeds twice Pillow's limit) that is reported as
  :class:`ImageTooLargeError` too, with a message naming Pillow's setting.
* ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` must be ``False`` (Pillow's default) so that
  truncated files raise instead of silently decoding grey or black pixels. If other code in
  the process has set it to ``True``, :func:`load_image` refuses to run with a
  :class:`~mis_pipeline.errors.ConfigError` rather than accept damaged images.

Pixel-mode conversion (all to RGB uint8):

* EXIF orientation is applied (pixels end up upright); other metadata and embedded ICC
  profiles are ignored (as in the DINO / MIS reference loaders).
* Grey (``L``, ``1``) is replicated to three channels; palette (``P``) is looked up.
* Alpha (``RGBA``, ``LA``, ``PA``, premultiplied ``RGBa``/``La``, and palette, grey or RGB
  images with a ``transparency`` key) is **composited on black**: ``rgb * alpha / 255``,
  rounded. Fully transparent pixels become black whatever colour they hide.
* 16-bit grey (``I;16``, ``I;16B``, ``I;16L``) is scaled to 8 bits by ``round(v / 257)``
  (65535 -> 255); 32-bit integer ``I`` is taken as 16-bit data (clipped to 0..65535, then
  scaled the same way); float ``F`` is taken as 0..1 if its maximum is <= 1, else as 0..255,
  and clipped. 16-bit RGB(A) PNG/TIFF are reduced to 8 bits by Pillow itself on open.
* ``CMYK`` uses Pillow's conversion (Adobe-inverted JPEGs are handled by Pillow); ``YCbCr``
  and other modes Pillow can convert go through ``Image.convert("RGB")``.
* Multi-frame files (GIF, TIFF, WebP animations) give their first frame.
"""

from __future__ import annotations

import io
import logging
import os
from typing import IO, TYPE_CHECKING, Union

import numpy as np

from ..config import IOConfig
from ..errors import (
    ConfigError,
    EmptyImageFileError,
    ImageTooLargeError,
    NotAnImageError,
    TruncatedImageError,
    UnreadableImageError,
)

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image as PILImage

__all__ = ["load_image", "ImageSource", "to_rgb_array", "is_url"]

logger = logging.getLogger(__name__)

ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]

# File signatures of the formats we expect. A file that starts with one of these but that
# Pillow cannot even identify was cut inside its header: reported as truncated, not as
# "not an image". WebP is "RIFF" + 4 size bytes + "WEBP".
_SIGNATURES: tuple[bytes, ...] = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",  # PNG
    b"GIF87a",
    b"GIF89a",
    b"BM",  # BMP
    b"II*\x00",  # TIFF little-endian
    b"MM\x00*",  # TIFF big-endian
)


def is_url(source: object) -> bool:
    """True if ``source`` is a string with a protocol (``"memory://x"``, ``"s3://b/k"``)."""
    return isinstance(source, str) and "://" in source


def _looks_like_image(prefix: bytes) -> bool:
    if prefix[:4] == b"RIFF":
        return prefix[8:12] == b"WEBP"
    return any(prefix.startswith(sig) for sig in _SIGNATURES)


def _require_strict_truncation() -> None:
    from PIL import ImageFile

    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise ConfigError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES",
            True,
            "False (Pillow's default); mis_pipeline rejects truncated images, so other code in "
            "this process must not switch Pillow to accepting them",
        )


def _open_source(source: ImageSource, where: str | None) -> tuple[IO[bytes], str | None]:
    """Return a readable binary file object for ``source`` and the name to use in errors."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise EmptyImageFileError("zero-byte image data", where)
        return io.BytesIO(data), where
    if is_url(source):
        from .sources import read_bytes

        name = where or str(source)
        data = read_bytes(str(source))
        if not data:
            raise EmptyImageFileError("zero-byte file", name)
        return io.BytesIO(data), name
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"image source must be a path, an fsspec URL or bytes; got {type(source).__name__}"
        )
    path = os.fspath(source)
    name = where or path
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by load_image
    except OSError as exc:
        raise UnreadableImageError(f"cannot open file: {exc.strerror or exc}", name) from exc
    try:
        size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        fh.close()
        raise UnreadableImageError(f"cannot stat file: {exc}", name) from exc
    if size == 0:
        fh.close()
        raise EmptyImageFileError("zero-byte file", name)
    return fh, name


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = IOConfig.max_pixels,
    path_for_errors: str | None = None,
) -> np.ndarray:
    """Decode an image file to RGB.

    Parameters
    ----------
    source : str, os.PathLike, bytes
        A local path, an fsspec URL (``"memory://a.png"``, ``"s3://bucket/a.jpg"``) or the
        encoded file contents.
    max_pixels : int
        Reject images whose header declares more than ``width * height`` pixels, before
        decoding (decompression-bomb guard). Default: ``IOConfig.max_pixels``.
    path_for_errors : str, optional
        Name used in error messages and ``ImageError.path`` (default: the path, or none).

    Returns
    -------
    ndarray, shape (H, W, 3), uint8
        RGB pixels, rows top to bottom, EXIF orientation applied. See the module docstring
        for how each pixel mode is converted.

    Raises
    ------
    ImageError
        One of its typed leaves (see the module docstring); never a bare Pillow exception.
    ConfigError
        If Pillow's ``LOAD_TRUNCATED_IMAGES`` was switched on by other code.
    """
    _require_strict_truncation()
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ConfigError("io.max_pixels", max_pixels, "an integer >= 1")
    from PIL import Image

    fh, name = _open_source(source, path_for_errors)
    with fh:
        prefix = fh.read(16)
        fh.seek(0)
        try:
            im = Image.open(fh)
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(
                f"header declares more pixels than Pillow's own limit "
                f"(2 x PIL.Image.MAX_IMAGE_PIXELS = {2 * (Image.MAX_IMAGE_PIXELS or 0)}): {exc}",
                name,
            ) from exc
        except Image.UnidentifiedImageError as exc:
            if _looks_like_image(prefix):
                raise TruncatedImageError(
                    "file starts with an image signature but its header is unreadable", name
                ) from exc
            raise NotAnImageError(
                f"not a recognised image format (first bytes {prefix[:8]!r})", name
            ) from exc
        # A decoder boundary around untrusted bytes: Pillow's plugins raise many exception
        # types on malformed input, and one bad file must never stop a corpus run.
        except Exception as exc:
            raise TruncatedImageError(f"corrupt image header: {exc!r}", name) from exc
        with im:
            width, height = im.size
            if width * height > max_pixels:
                raise ImageTooLargeError(
                    f"header declares {width}x{height} = {width * height} pixels (width x "
                    f"height); the limit is max_pixels = {max_pixels}",
                    name,
                )
            if width < 1 or height < 1:
                raise TruncatedImageError(
                    f"header declares an empty image ({width}x{height})", name
                )
            try:
                im.load()
            except Exception as exc:  # same decoder boundary as above
                raise TruncatedImageError(
                    f"image data is truncated or corrupt: {exc}", name
                ) from exc
            return to_rgb_array(_exif_upright(im, name), name)


def _exif_upright(im: PILImage.Image, name: str | None) -> PILImage.Image:
    """Apply the EXIF orientation tag; malformed EXIF is logged and ignored."""
    from PIL import ImageOps

    try:
        out = ImageOps.exif_transpose(im)
    except Exception as exc:  # metadata only: keep the pixels as stored
        logger.warning("%s: ignoring unreadable EXIF orientation (%r)", name or "<bytes>", exc)
        return im
    return im if out is None else out


def _scale16(values: np.ndarray) -> np.ndarray:
    """uint16-range integers (any int dtype) -> uint8 by ``round(v / 257)``."""
    v = np.clip(values.astype(np.int64), 0, 65535)
    return ((v + 128) // 257).astype(np.uint8)


def _composite_on_black(rgba: np.ndarray) -> np.ndarray:
    """``(H, W, 4)`` uint8 RGBA -> ``(H, W, 3)`` uint8 ``round(rgb * a / 255)``."""
    rgb = rgba[..., :3].astype(np.uint16)
    a = rgba[..., 3:4].astype(np.uint16)
    return ((rgb * a + 127) // 255).astype(np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))


def to_rgb_array(im: PILImage.Image, name: str | None = None) -> np.ndarray:
    """Convert a loaded Pillow image of any mode to ``(H, W, 3)`` uint8 RGB (rules above)."""
    mode = im.mode
    has_key = "transparency" in im.info
    try:
        if mode == "RGB" and not has_key:
            return np.array(im, dtype=np.uint8)
        # High-bit-depth grey first: Pillow's own conversions of these clip instead of scale.
        # (A transparency key on 16-bit grey is ignored.)
        if mode.startswith("I;16") or mode == "I":
            return _grey_to_rgb(_scale16(np.asarray(im)))
        if mode == "F":
            f = np.nan_to_num(np.asarray(im, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
            scale = 255.0 if f.size and f.max() <= 1.0 else 1.0
            return _grey_to_rgb(np.clip(np.rint(f * scale), 0, 255).astype(np.uint8))
        if mode in ("RGBA", "LA", "PA", "RGBa", "La") or has_key:
            return _composite_on_black(np.asarray(im.convert("RGBA"), dtype=np.uint8))
        if mode == "L":
            return _grey_to_rgb(np.asarray(im, dtype=np.uint8))
        if mode == "1":
            return _grey_to_rgb(np.asarray(im.convert("L"), dtype=np.uint8))
        return np.array(im.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as exc:
        raise UnreadableImageError(f"unsupported pixel mode {mode!r}: {exc}", name) from exc
