"""load_image: every format and pixel mode, and every kind of bad file, on files made here."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from mis_pipeline.errors import (
    ConfigError,
    EmptyImageFileError,
    ImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    NotAnImageError,
    TruncatedImageError,
    UnreadableImageError,
)
from mis_pipeline.io import load_image, prepare_image, resize_for_patches


def _rgb(h: int = 24, w: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _blocks(h: int = 48, w: int = 64) -> np.ndarray:
    """Large flat colour blocks (survive JPEG with small error); asymmetric in both axes."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 4] = (230, 20, 20)  # red block, top-left
    img[h // 2 :, :] = (20, 200, 30)  # green bottom half
    img[: h // 2, w // 4 :] = (30, 30, 220)  # blue top-right
    return img


@pytest.mark.parametrize(
    "fmt,suffix,kwargs,exact",
    [
        ("PNG", ".png", {}, True),
        ("BMP", ".bmp", {}, True),
        ("TIFF", ".tif", {}, True),
        ("WEBP", ".webp", {"lossless": True}, True),
        ("JPEG", ".jpg", {"quality": 95}, False),
    ],
)
def test_formats_decode_to_rgb_uint8(tmp_path: Path, fmt, suffix, kwargs, exact) -> None:
    src = _rgb() if exact else _blocks()
    path = tmp_path / f"img{suffix}"
    Image.fromarray(src).save(path, fmt, **kwargs)
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == src.shape
    if exact:
        np.testing.assert_array_equal(out, src)
    else:
        assert np.abs(out.astype(int) - src).mean() < 3


def test_path_and_bytes_and_pathlike_agree(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(_rgb()).save(path)
    a = load_image(str(path))
    b = load_image(path.read_bytes())
    c = load_image(bytearray(path.read_bytes()))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_grey_is_replicated(tmp_path: Path) -> None:
    grey = _rgb()[..., 0]
    path = tmp_path / "g.png"
    Image.fromarray(grey, mode="L").save(path)
    out = load_image(path)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


def test_bilevel_is_black_and_white(tmp_path: Path) -> None:
    bits = _rgb()[..., 0] > 127
    path = tmp_path / "b.png"
    Image.fromarray(bits).convert("1").save(path)
    out = load_image(path)
    np.testing.assert_array_equal(out[..., 1], np.where(bits, 255, 0))


def test_palette_is_looked_up(tmp_path: Path) -> None:
    pal = Image.fromarray(_blocks()).quantize(colors=8)
    path = tmp_path / "p.png"
    pal.save(path)
    np.testing.assert_array_equal(load_image(path), np.asarray(pal.convert("RGB")))


def test_palette_with_transparency_composited_on_black(tmp_path: Path) -> None:
    pal = Image.fromarray(_blocks()).quantize(colors=4)
    idx = np.asarray(pal)
    transparent_index = int(idx[0, 0])  # the red block's index
    path = tmp_path / "pt.png"
    pal.save(path, transparency=transparent_index)
    assert Image.open(path).mode == "P"
    out = load_image(path)
    colours = np.asarray(pal.convert("RGB"))
    hidden = idx == transparent_index
    assert hidden.any() and (~hidden).any()
    np.testing.assert_array_equal(out[hidden], 0)
    np.testing.assert_array_equal(out[~hidden], colours[~hidden])


def test_gif_palette(tmp_path: Path) -> None:
    pal = Image.fromarray(_blocks()).quantize(colors=8)
    path = tmp_path / "p.gif"
    pal.save(path)
    np.testing.assert_array_equal(load_image(path), np.asarray(pal.convert("RGB")))


def test_rgba_composited_on_black(tmp_path: Path) -> None:
    rgba = _rgb(seed=1)
    alpha = np.random.default_rng(2).integers(0, 256, rgba.shape[:2], dtype=np.uint8)
    alpha[0, 0], alpha[0, 1] = 0, 255
    path = tmp_path / "a.png"
    Image.fromarray(np.dstack([rgba, alpha]), mode="RGBA").save(path)
    out = load_image(path)
    expected = np.rint(rgba.astype(float) * alpha[..., None] / 255.0).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out[0, 0], 0)
    np.testing.assert_array_equal(out[0, 1], rgba[0, 1])


def test_la_composited_on_black(tmp_path: Path) -> None:
    grey = _rgb(seed=3)[..., 0]
    alpha = _rgb(seed=4)[..., 0]
    path = tmp_path / "la.png"
    Image.fromarray(np.dstack([grey, alpha]), mode="LA").save(path)
    assert Image.open(path).mode == "LA"
    out = load_image(path)
    expected = np.rint(grey.astype(float) * alpha / 255.0).astype(np.uint8)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], expected)


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("TIFF", ".tif")])
def test_16bit_grey_scaled_not_clipped(tmp_path: Path, fmt, suffix) -> None:
    values = np.array([[0, 128, 129, 257, 32896, 65535]], dtype=np.uint16).repeat(8, axis=0)
    values = np.tile(values, (1, 2))
    path = tmp_path / f"g16{suffix}"
    Image.fromarray(values).save(path, fmt)
    assert Image.open(path).mode.startswith("I")
    out = load_image(path)
    expected = np.array([0, 0, 1, 1, 128, 255], dtype=np.uint8)
    np.testing.assert_array_equal(out[0, :6, 0], expected)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_cmyk_jpeg(tmp_path: Path) -> None:
    src = _blocks()
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(src).convert("CMYK").save(path, "JPEG", quality=95)
    assert Image.open(path).mode == "CMYK"
    out = load_image(path)
    assert out.shape == src.shape
    assert np.abs(out.astype(int) - src).mean() < 4


@pytest.mark.parametrize("orientation,k", [(3, 2), (6, 1), (8, -1)])
def test_exif_orientation_applied(tmp_path: Path, orientation: int, k: int) -> None:
    upright = _blocks(48, 64)
    stored = np.ascontiguousarray(np.rot90(upright, k))  # what a camera would write
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"rot{orientation}.jpg"
    Image.fromarray(stored).save(path, "JPEG", quality=95, exif=exif)
    out = load_image(path)
    assert out.shape == upright.shape
    assert np.abs(out.astype(int) - upright).mean() < 3
    # The red block is top-left once upright.
    assert out[5, 5, 0] > 180 and out[5, 5, 2] < 80


def test_exif_orientation_on_png_without_tag_is_identity(tmp_path: Path) -> None:
    src = _rgb()
    path = tmp_path / "plain.png"
    Image.fromarray(src).save(path)
    np.testing.assert_array_equal(load_image(path), src)


# ----------------------------------------------------------------------------- bad files
def test_zero_byte(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(EmptyImageFileError) as info:
        load_image(path)
    assert info.value.reason == "empty" and info.value.path == str(path)
    with pytest.raises(EmptyImageFileError):
        load_image(b"")


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is plain text, not a JPEG\n" * 4)
    with pytest.raises(NotAnImageError) as info:
        load_image(path)
    assert info.value.reason == "not_an_image"
    assert "notes.jpg" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableImageError) as info:
        load_image(tmp_path / "nope.png")
    assert info.value.reason == "unreadable"
    assert isinstance(info.value, OSError)


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_truncated_jpeg(tmp_path: Path, fraction: float) -> None:
    buf = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(TruncatedImageError) as info:
        load_image(path)
    assert info.value.reason == "truncated"


def test_truncated_png_and_header_cut(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buf, "PNG")
    data = buf.getvalue()
    with pytest.raises(TruncatedImageError):
        load_image(data[: len(data) // 2])
    # Cut inside the header: Pillow cannot identify it, but the signature says PNG.
    with pytest.raises(TruncatedImageError):
        load_image(data[:12])


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width x height`` RGB pixels, with a few bytes of IDAT."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [10_000, 100_000])
def test_bomb_rejected_fast_from_header(tmp_path: Path, side: int) -> None:
    data = _png_header_only(side, side)
    assert len(data) < 200
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    limit_before = Image.MAX_IMAGE_PIXELS
    t0 = time.perf_counter()
    with pytest.raises(ImageTooLargeError) as info:
        load_image(path)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5, f"bomb check took {elapsed:.3f} s; it must not decode"
    assert info.value.reason == "too_many_pixels"
    assert Image.MAX_IMAGE_PIXELS == limit_before  # Pillow's global is untouched


def test_own_pixel_cap_checked_before_decoding() -> None:
    # 40x40 declared, garbage pixel data: a decode would fail as truncated; the cap fires first.
    data = _png_header_only(40, 40)
    with pytest.raises(ImageTooLargeError, match="1600 pixels"):
        load_image(data, max_pixels=1599)
    with pytest.raises(TruncatedImageError):
        load_image(data, max_pixels=1600)


def test_bad_max_pixels_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="io.max_pixels"):
        load_image(b"abc", max_pixels=0)


def test_refuses_when_truncated_images_were_enabled_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ok.png"
    Image.fromarray(_rgb()).save(path)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ConfigError, match="LOAD_TRUNCATED_IMAGES"):
        load_image(path)


def test_load_does_not_change_pillow_globals(tmp_path: Path) -> None:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    path = tmp_path / "ok.png"
    Image.fromarray(_rgb()).save(path)
    load_image(path, max_pixels=10**12)
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before


def test_smaller_than_a_patch(tmp_path: Path) -> None:
    path = tmp_path / "tiny.png"
    Image.fromarray(_rgb(5, 40)).save(path)
    img = load_image(path)  # decoding is fine ...
    with pytest.raises(ImageTooSmallError) as info:  # ... the patch check rejects it
        prepare_image(path, 8)
    assert info.value.reason == "too_small" and "40x5" in str(info.value)
    with pytest.raises(ImageTooSmallError):
        resize_for_patches(img, 8)
    assert prepare_image(path, 5).grid_shape == (1, 8)


def test_every_failure_is_an_image_error_with_reason(tmp_path: Path) -> None:
    """A batch loop can catch ImageError alone and record ``reason`` for each bad file."""
    jpeg = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(jpeg, "JPEG")
    bad = {
        "empty": b"",
        "not_an_image": b"GIF? no. plain bytes" * 3,
        "truncated": jpeg.getvalue()[:300],
        "too_many_pixels": _png_header_only(100_000, 100_000),
    }
    reasons = {}
    for expected, data in bad.items():
        try:
            load_image(data, path_for_errors=f"{expected}.bin")
        except ImageError as exc:
            reasons[expected] = exc.reason
            assert exc.path == f"{expected}.bin"
    assert reasons == {k: k for k in bad}


# ----------------------------------------------------------------------------- real data
@pytest.mark.data
def test_grabcut_images_load(grabcut_dir: Path) -> None:
    import cv2

    paths = sorted((grabcut_dir / "data_GT").glob("*.jpg"))
    assert len(paths) >= 30
    for p in paths:
        img = load_image(p)
        ref = cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        assert img.shape == ref.shape and img.dtype == np.uint8
        # Two libjpeg builds may differ by an IDCT rounding; never by more than a grey level
        # on average.
        assert np.abs(img.astype(int) - ref).mean() < 1.0, p.name
        prepared = prepare_image(p, 8)
        assert prepared.pixels.shape[0] % 8 == 0 and prepared.pixels.shape[1] % 8 == 0
        assert prepared.original_size == img.shape[:2]


def test_float_and_32bit_grey_modes() -> None:
    from mis_pipeline.io import to_rgb_array

    f01 = Image.fromarray(np.array([[0.0, 0.5, 1.0, np.nan]], dtype=np.float32), mode="F")
    np.testing.assert_array_equal(to_rgb_array(f01)[0, :, 0], [0, 128, 255, 0])
    f255 = Image.fromarray(np.array([[0.0, 10.4, 300.0]], dtype=np.float32), mode="F")
    np.testing.assert_array_equal(to_rgb_array(f255)[0, :, 0], [0, 10, 255])
    i32 = Image.fromarray(np.array([[-5, 257, 65535, 70000]], dtype=np.int32), mode="I")
    np.testing.assert_array_equal(to_rgb_array(i32)[0, :, 1], [0, 1, 255, 255])


def test_ycbcr_and_rgb_with_transparency_key() -> None:
    from mis_pipeline.io import to_rgb_array

    src = _blocks()
    ycc = Image.fromarray(src).convert("YCbCr")
    assert np.abs(to_rgb_array(ycc).astype(int) - src).max() <= 3
    keyed = Image.fromarray(src)
    keyed.info["transparency"] = (230, 20, 20)  # the red block is the transparent colour
    out = to_rgb_array(keyed)
    np.testing.assert_array_equal(out[0, 0], 0)
    np.testing.assert_array_equal(out[-1, -1], src[-1, -1])
