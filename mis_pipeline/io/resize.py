"""The paper's resize rule: stretch each side up to the next multiple of the patch size.

All sizes here are ``(height, width)`` in pixels, i.e. ``(rows, cols)``, the numpy order.
(The issue's example "481x321 -> 488x328" is width x height: ``target_size(321, 481, 8)``
returns ``(328, 488)``.)

The image is stretched, not padded or cropped, so every pixel of the original maps into the
patch grid and a grid mask upsamples back to the original by a plain resize. An optional
``max_side`` cap first scales the image down (keeping its aspect ratio) so its longer side is
``max_side``; the stretch to a patch multiple follows, so a final side can exceed ``max_side``
by less than one patch.

Interpolation: Pillow ``BILINEAR`` on the uint8 RGB image, the filter torchvision's
``transforms.Resize`` applies to PIL images in DINO-style pipelines. For the usual stretch by
less than one patch it is plain bilinear interpolation; when ``max_side`` shrinks the image,
Pillow widens the filter support (antialiasing), unlike ``cv2.INTER_LINEAR``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..config import IOConfig
from ..errors import ConfigError, ImageArrayError, ImageTooSmallError
from .decode import ImageSource, load_image

__all__ = [
    "target_size",
    "check_image_size",
    "resize_for_patches",
    "PreparedImage",
    "prepare_image",
]


def _check_patch(patch: int) -> None:
    if isinstance(patch, bool) or not isinstance(patch, (int, np.integer)) or patch < 1:
        raise ConfigError("patch_size", patch, "an integer >= 1")


def _check_max_side(max_side: int | None, patch: int) -> None:
    if max_side is None:
        return
    if (
        isinstance(max_side, bool)
        or not isinstance(max_side, (int, np.integer))
        or max_side < patch
    ):
        raise ConfigError(
            "io.max_side", max_side, f"null or an integer >= the patch size ({patch})"
        )


def check_image_size(height: int, width: int, patch: int, path: str | None = None) -> None:
    """Raise :class:`ImageTooSmallError` if either side is shorter than one patch.

    ``height``/``width`` are the decoded image's rows/cols in pixels.
    """
    _check_patch(patch)
    if height < patch or width < patch:
        raise ImageTooSmallError(
            f"image is {width}x{height} (width x height); each side must be at least one "
            f"patch ({patch} px)",
            path,
        )


def target_size(
    height: int, width: int, patch: int, max_side: int | None = None
) -> tuple[int, int]:
    """Size ``(H', W')`` the image is resized to: each side rounded up to a multiple of ``patch``.

    Parameters
    ----------
    height, width : int
        Original size in pixels (rows, cols). Each must be >= ``patch``
        (:class:`ImageTooSmallError` otherwise).
    patch : int
        Patch size of the backbone in pixels.
    max_side : int, optional
        If the longer side exceeds it, both sides are first scaled by
        ``max_side / max(height, width)`` (rounded half up, at least 1 px) so the longer side
        equals ``max_side``. Must be >= ``patch``.

    Returns
    -------
    (H', W') : tuple of int
        Multiples of ``patch``; the patch grid is ``(H' // patch, W' // patch)``.

    Examples
    --------
    >>> target_size(321, 481, 8)          # a 481x321 (w x h) image
    (328, 488)
    >>> target_size(960, 1280, 8, max_side=640)
    (480, 640)
    """
    _check_patch(patch)
    _check_max_side(max_side, patch)
    check_image_size(height, width, patch)
    h, w = int(height), int(width)
    if max_side is not None and max(h, w) > max_side:
        # Short side = round_half_up(short * max_side / long), in exact integer arithmetic.
        long_side, m = max(h, w), int(max_side)
        if h >= w:
            h, w = m, max(1, (2 * w * m + long_side) // (2 * long_side))
        else:
            h, w = max(1, (2 * h * m + long_side) // (2 * long_side)), m
    return (-(-h // patch) * patch, -(-w // patch) * patch)


def resize_for_patches(
    image: np.ndarray,
    patch: int,
    max_side: int | None = None,
    *,
    path_for_errors: str | None = None,
) -> np.ndarray:
    """Resize ``image`` to :func:`target_size` with Pillow ``BILINEAR``.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
        RGB image.
    patch, max_side : int
        As in :func:`target_size`.
    path_for_errors : str, optional
        Name used in :class:`ImageTooSmallError`.

    Returns
    -------
    ndarray, shape (H', W', 3), uint8
        The resized image; ``image`` itself (no copy) if it already has the target size.
    """
    if (
        not isinstance(image, np.ndarray)
        or image.ndim != 3
        or image.shape[2] != 3
        or image.dtype != np.uint8
    ):
        raise ImageArrayError(
            "image must be an (H, W, 3) uint8 RGB array; got "
            + (
                f"shape {image.shape} dtype {image.dtype}"
                if isinstance(image, np.ndarray)
                else type(image).__name__
            )
        )
    h, w = image.shape[:2]
    _check_patch(patch)
    check_image_size(h, w, patch, path_for_errors)
    th, tw = target_size(h, w, patch, max_side)
    if (th, tw) == (h, w):
        return image
    from PIL import Image

    pil = Image.fromarray(np.ascontiguousarray(image), mode="RGB")
    return np.asarray(pil.resize((tw, th), Image.Resampling.BILINEAR), dtype=np.uint8)


@dataclass(frozen=True)
class PreparedImage:
    """A decoded image resized for a patch backbone.

    Attributes
    ----------
    pixels : ndarray, shape (H', W', 3), uint8
        RGB, ``H'`` and ``W'`` multiples of the patch size.
    original_size : (int, int)
        Decoded size ``(height, width)`` before resizing, EXIF orientation applied.
    patch : int
        Patch size the image was prepared for.
    """

    pixels: np.ndarray
    original_size: tuple[int, int]
    patch: int

    @property
    def resized_size(self) -> tuple[int, int]:
        """``(H', W')`` in pixels."""
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))

    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(grid_h, grid_w)`` = ``(H' // patch, W' // patch)``."""
        return (self.pixels.shape[0] // self.patch, self.pixels.shape[1] // self.patch)


def prepare_image(
    source: ImageSource,
    patch: int,
    *,
    max_pixels: int = IOConfig.max_pixels,
    max_side: int | None = IOConfig.max_side,
    path_for_errors: str | None = None,
) -> PreparedImage:
    """Decode, validate and resize one image for a backbone with patch size ``patch``.

    Equivalent to :func:`~mis_pipeline.io.load_image` then :func:`resize_for_patches`; raises
    the same typed :class:`~mis_pipeline.errors.ImageError` leaves (plus
    :class:`ImageTooSmallError` for an image smaller than one patch).
    """
    name = path_for_errors
    if name is None and isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
    img = load_image(source, max_pixels=max_pixels, path_for_errors=name)
    resized = resize_for_patches(img, patch, max_side, path_for_errors=name)
    return PreparedImage(
        pixels=resized, original_size=(img.shape[0], img.shape[1]), patch=int(patch)
    )
