"""The resize rule: each side stretched up to the next multiple of the patch size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mis_pipeline.errors import ConfigError, ImageArrayError, ImageTooSmallError
from mis_pipeline.io import resize_for_patches, target_size


def test_issue_example_width_by_height() -> None:
    # "481x321 -> 488x328" is width x height; target_size takes and returns (height, width).
    assert target_size(321, 481, 8) == (328, 488)


def test_issue_example_height_by_width() -> None:
    # The same numbers read as (height, width): nothing is transposed.
    assert target_size(481, 321, 8) == (488, 328)


@pytest.mark.parametrize(
    "h,w,patch,expected",
    [
        (8, 8, 8, (8, 8)),
        (9, 15, 8, (16, 16)),
        (16, 17, 8, (16, 24)),
        (224, 224, 16, (224, 224)),
        (225, 223, 16, (240, 224)),
        (480, 640, 14, (490, 644)),
        (14, 29, 14, (14, 42)),
    ],
)
def test_round_up_to_multiple(h, w, patch, expected) -> None:
    assert target_size(h, w, patch) == expected


def test_max_side_applied_first_keeping_aspect() -> None:
    # 1281 wide x 853 high, cap 640: 640 x round(853*640/1281)=426 -> stretch to (432, 640).
    assert target_size(853, 1281, 8, max_side=640) == (432, 640)
    # Portrait: the long side is the height.
    assert target_size(1281, 853, 8, max_side=640) == (640, 432)
    # Already within the cap: the cap changes nothing.
    assert target_size(321, 481, 8, max_side=640) == (328, 488)
    # A cap that is not a patch multiple: the long side ends <= one patch above it.
    assert target_size(1000, 500, 8, max_side=601) == (608, 304)


def test_max_side_rounding_is_half_up() -> None:
    assert target_size(30, 21, 1, max_side=20) == (20, 14)  # 21*20/30 = 14.0
    assert target_size(40, 26, 1, max_side=20) == (20, 13)  # 13.0
    assert target_size(40, 27, 1, max_side=20) == (20, 14)  # 13.5 -> 14 (half up)


def test_too_small_and_bad_arguments() -> None:
    with pytest.raises(ImageTooSmallError):
        target_size(7, 100, 8)
    with pytest.raises(ConfigError, match="io.max_side"):
        target_size(100, 100, 8, max_side=4)
    with pytest.raises(ConfigError, match="patch_size"):
        target_size(100, 100, 0)


def test_resize_for_patches_shape_and_interpolation() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (321, 481, 3), dtype=np.uint8)
    out = resize_for_patches(img, 8)
    assert out.shape == (328, 488, 3) and out.dtype == np.uint8
    ref = np.asarray(Image.fromarray(img).resize((488, 328), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(out, ref)


def test_resize_is_identity_on_multiples() -> None:
    img = np.zeros((16, 24, 3), np.uint8)
    assert resize_for_patches(img, 8) is img


def test_resize_flat_image_stays_flat() -> None:
    img = np.full((321, 481, 3), (10, 200, 77), np.uint8)
    out = resize_for_patches(img, 8, max_side=200)
    assert out.shape == (136, 200, 3)
    assert (out == np.array([10, 200, 77], np.uint8)).all()


def test_resize_rejects_non_rgb_arrays() -> None:
    with pytest.raises(ImageArrayError):
        resize_for_patches(np.zeros((16, 16), np.uint8), 8)
    with pytest.raises(ImageArrayError):
        resize_for_patches(np.zeros((16, 16, 3), np.float32), 8)


def test_docstring_examples() -> None:
    import doctest

    import mis_pipeline.io.resize as resize

    result = doctest.testmod(resize)
    assert result.attempted >= 2 and result.failed == 0
