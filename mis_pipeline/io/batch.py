"""Prepare a batch of images where bad files are reported, never raised.

A corpus run must not stop at one corrupt file: :func:`prepare_batch` decodes, validates and
resizes each :class:`~mis_pipeline.io.ImageRef` and returns the good images and, for every
bad one, an :class:`ImageFailure` holding the stable ``reason`` code of its
:class:`~mis_pipeline.errors.ImageError` and the human-readable message.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import IOConfig
from ..errors import ImageError
from .resize import PreparedImage, prepare_image
from .sources import ImageRef

__all__ = ["ImageFailure", "prepare_batch"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageFailure:
    """An image that could not be used.

    Attributes
    ----------
    ref : ImageRef
        Which image.
    reason : str
        Stable code: ``empty``, ``truncated``, ``not_an_image``, ``too_many_pixels``,
        ``too_small`` or ``unreadable``.
    message : str
        What went wrong, for people.
    """

    ref: ImageRef
    reason: str
    message: str


def prepare_batch(
    refs: Sequence[ImageRef],
    patch: int,
    *,
    max_pixels: int = IOConfig.max_pixels,
    max_side: int | None = IOConfig.max_side,
) -> tuple[list[tuple[ImageRef, PreparedImage]], list[ImageFailure]]:
    """Decode, validate and resize ``refs`` for patch size ``patch``.

    Returns
    -------
    prepared : list of (ImageRef, PreparedImage)
        The good images, in input order.
    failures : list of ImageFailure
        The bad ones, in input order, each with its reason.

    Only :class:`~mis_pipeline.errors.ImageError` (a problem with one file) is caught;
    anything else (bad arguments, a misconfigured Pillow) propagates.
    """
    prepared: list[tuple[ImageRef, PreparedImage]] = []
    failures: list[ImageFailure] = []
    for ref in refs:
        try:
            img = prepare_image(
                ref.path,
                patch,
                max_pixels=max_pixels,
                max_side=max_side,
                path_for_errors=ref.image_id,
            )
        except ImageError as exc:
            logger.warning("skipping %s: %s", ref.image_id, exc)
            failures.append(ImageFailure(ref, exc.reason, str(exc)))
        else:
            prepared.append((ref, img))
    return prepared, failures
