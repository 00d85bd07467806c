"""Image input: list sources, decode safely to RGB uint8, resize to a multiple of the patch size.

Public API
----------
:func:`load_image`          path / fsspec URL / bytes -> ``(H, W, 3)`` uint8 RGB, typed errors
:func:`target_size`         the resize rule ``(h, w, patch, max_side) -> (H', W')``
:func:`resize_for_patches`  apply the rule to an image (Pillow bilinear)
:func:`prepare_image`       load + validate + resize -> :class:`PreparedImage`
:func:`prepare_batch`       prepare many refs; bad files become :class:`ImageFailure` records
:func:`list_images`         folder / list file / fsspec URL -> sorted :class:`ImageRef` list
:func:`read_bytes`          the bytes behind an :class:`ImageRef`

Importing this package imports neither Pillow nor fsspec; they load on first use.
"""

from .batch import ImageFailure, prepare_batch
from .decode import ImageSource, load_image, to_rgb_array
from .resize import PreparedImage, check_image_size, prepare_image, resize_for_patches, target_size
from .sources import ImageRef, list_images, normalise_extensions, read_bytes

__all__ = [
    "ImageSource",
    "load_image",
    "to_rgb_array",
    "target_size",
    "check_image_size",
    "resize_for_patches",
    "PreparedImage",
    "prepare_image",
    "ImageFailure",
    "prepare_batch",
    "ImageRef",
    "list_images",
    "read_bytes",
    "normalise_extensions",
]
