"""One error vocabulary for the whole package.

Every error raised on purpose by :mod:`mis_pipeline` derives from :class:`MISError`, and each
leaf also derives from the built-in exception a caller would already catch (``ValueError``,
``FileNotFoundError``, ``ImportError``, ...), so ``except ValueError`` keeps working.

Image errors carry a short machine-readable :attr:`ImageError.reason` (``"empty"``,
``"truncated"``, ``"not_an_image"``, ``"too_many_pixels"``, ``"too_small"``, ``"unreadable"``)
which the store records for every failed image.
"""

from __future__ import annotations

__all__ = [
    "MISError",
    "ConfigError",
    "DependencyError",
    "ImageError",
    "EmptyImageFileError",
    "TruncatedImageError",
    "NotAnImageError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "UnreadableImageError",
    "InputSourceError",
    "ImageArrayError",
    "WeightsError",
    "TreeValidationError",
    "StoreError",
    "StoreCorruptError",
    "StoreLockedError",
    "DatasetError",
    "SampleError",
    "RunError",
    "RayStartError",
    "raise_if_interrupted",
]


class MISError(Exception):
    """Base class of every error raised on purpose by mis_pipeline."""


class ConfigError(MISError, ValueError):
    """A configuration value is unknown, of the wrong type or out of range.

    Attributes
    ----------
    field : str
        Dotted name of the offending field (``"features.batch_size"``), or ``""``.
    value : object
        The value that was given.
    allowed : str
        Human-readable description of what is allowed.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        where = f"config field '{field}'" if field else "config"
        super().__init__(f"{where}: got {value!r}; allowed: {allowed}")


class DependencyError(MISError, ImportError):
    """An optional dependency is missing; the message says how to install it."""

    def __init__(self, package: str, purpose: str, install: str | None = None) -> None:
        self.package = package
        install = install or f"pip install {package}"
        super().__init__(f"{purpose} needs the package '{package}', which is not installed: {install}")


class ImageError(MISError, ValueError):
    """An input image cannot be used. ``reason`` is a short stable code; ``path`` the source."""

    reason: str = "unreadable"

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        self.detail = message
        prefix = f"{path}: " if path else ""
        super().__init__(f"{prefix}{message} [{self.reason}]")


class EmptyImageFileError(ImageError):
    """The file has zero bytes."""

    reason = "empty"


class TruncatedImageError(ImageError):
    """The file starts like an image but its data ends early or is corrupt."""

    reason = "truncated"


class NotAnImageError(ImageError):
    """The file is not in any image format we can decode."""

    reason = "not_an_image"


class ImageTooLargeError(ImageError):
    """The header declares more pixels than the configured cap (decompression-bomb guard)."""

    reason = "too_many_pixels"


class ImageTooSmallError(ImageError):
    """The image is smaller than one feature patch on some side."""

    reason = "too_small"


class UnreadableImageError(ImageError, OSError):
    """The file exists but could not be read (permissions, I/O error, missing file)."""

    reason = "unreadable"


class InputSourceError(MISError, FileNotFoundError):
    """An input source (image folder, list file or fsspec URL) does not exist or cannot be listed."""


class ImageArrayError(MISError, ValueError):
    """An in-memory image array has the wrong shape, dtype or size for the function it was given to."""


class WeightsError(MISError, FileNotFoundError):
    """Model weights are missing, unreadable, or do not match the architecture."""


class TreeValidationError(MISError, ValueError):
    """A merge tree (e.g. read from an untrusted file) violates the tree contract."""


class StoreError(MISError, RuntimeError):
    """A tree store cannot be opened, read or written as asked."""


class StoreCorruptError(StoreError):
    """A tree store's arrays or metadata are inconsistent."""


class StoreLockedError(StoreError):
    """Another writer holds the lock of a tree store."""


class DatasetError(MISError, FileNotFoundError):
    """An evaluation dataset is missing files or is not in the expected layout."""


class SampleError(MISError, RuntimeError):
    """A training sample cannot be drawn (no image with a tree, an unreadable or changed
    image, a proposal that vanished under augmentation in every allowed re-draw)."""


class RunError(MISError, RuntimeError):
    """A training run cannot start or go on as asked (a finished run directory, a diverged
    loss, a data stream that delivered other samples than the schedule's)."""


class RayStartError(MISError, RuntimeError):
    """A local Ray instance could not be started (the batches already committed are kept)."""


def raise_if_interrupted(exc: BaseException) -> None:
    """Re-raise the ``KeyboardInterrupt`` or ``SystemExit`` that ``exc`` carries, if any.

    A signal handler that raises while compiled code is running (a Numba kernel's dispatcher,
    a C decoder calling back into Python) surfaces as a ``SystemError`` ("returned a result
    with an exception set") whose cause is the interrupt, or as a library error wrapping that.
    Code that records per-image failures calls this first, so Ctrl-C (or SIGTERM under Ray's
    handler) stops the run instead of being recorded as a failed image.
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
