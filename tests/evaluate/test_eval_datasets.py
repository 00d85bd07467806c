"""Benchmark loaders: tiny synthetic copies of every published layout, and the real GrabCut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mis_pipeline.errors import DatasetError
from mis_pipeline.evaluate.datasets import DATASET_NAMES, open_dataset


def _rgb(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path: Path, arr: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)


def _grabcut_mask(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[2:8, 3:9] = 128  # band
    m[3:7, 4:8] = 255  # object
    return m


def test_grabcut_layout(tmp_path):
    for name, ext in (("b", ".jpg"), ("a", ".bmp"), ("c", ".JPG")):
        _save(tmp_path / "data_GT" / f"{name}{ext}", _rgb(10, 12, 1))
        _save(tmp_path / "boundary_GT" / f"{name}.bmp", _grabcut_mask(10, 12))
    ds = open_dataset("grabcut", tmp_path)
    assert ds.ids == ["a", "b", "c"] and len(ds) == 3
    s = ds.load(0)
    assert s.image.shape == (10, 12, 3) and s.image.dtype == np.uint8
    assert s.gt.dtype == bool and s.gt.sum() == 16
    assert s.ignore is not None and s.ignore.sum() == 36 - 16
    assert not np.any(s.gt & s.ignore)


def test_grabcut_missing_mask_is_a_clear_error(tmp_path):
    _save(tmp_path / "data_GT" / "a.jpg", _rgb(8, 8, 0))
    (tmp_path / "boundary_GT").mkdir()
    with pytest.raises(DatasetError, match="no mask"):
        open_dataset("grabcut", tmp_path)
    with pytest.raises(DatasetError, match="missing"):
        open_dataset("berkeley", tmp_path)
    with pytest.raises(DatasetError, match="unknown dataset"):
        open_dataset("nope", tmp_path)
    with pytest.raises(DatasetError, match="does not take options"):
        open_dataset("grabcut", tmp_path, split="val")


def test_berkeley_layout(tmp_path):
    _save(tmp_path / "images" / "x.jpg", _rgb(10, 12, 2))
    _save(tmp_path / "masks" / "x.png", _grabcut_mask(10, 12))
    s = open_dataset("berkeley", tmp_path).load(0)
    assert s.sample_id == "x" and s.gt.sum() == 16 and s.ignore.sum() == 20


@pytest.mark.parametrize("name", ["davis", "coco_mval"])
def test_davis_and_coco_mval_layout(tmp_path, name):
    mask = np.zeros((9, 11, 3), np.uint8)
    mask[1:4, 1:4, 2] = 200  # any non-zero channel is the object
    mask[5:8, 5:9, 0] = 1
    _save(tmp_path / "img" / "s1.jpg", _rgb(9, 11, 3))
    _save(tmp_path / "gt" / "s1.png", mask)
    s = open_dataset(name, tmp_path).load(0)
    assert s.gt.sum() == 9 + 12 and s.ignore is None


# --------------------------------------------------------------------------- RITM's mask decoding
# Each case is a 1x6 mask file; the expected answers are derived by hand from what RITM's loaders
# do (cv2.imread in colour mode -> B, G, R; GrabCut: channel 0, 128 ignore, > 128 object;
# DAVIS: max over channels > 0), not by calling OpenCV.
_PALETTE = [0, 0, 0, 200, 0, 0, 0, 0, 200, 0, 0, 128, 0, 0, 0, 5, 0, 0]  # RGB of indices 0..5


def _mask_file(path: Path, case: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if case == "grey":
        Image.fromarray(np.array([[0, 1, 127, 128, 129, 255]], np.uint8), "L").save(path)
    elif case == "rgb":  # (R, G, B): the blue channel decides for GrabCut
        px = [[0, 0, 0], [255, 255, 0], [0, 0, 200], [0, 0, 128], [200, 0, 100], [0, 1, 0]]
        Image.fromarray(np.array([px], np.uint8), "RGB").save(path)
    elif case == "rgba":  # alpha never counts
        px = [[0, 0, 0, 255], [0, 0, 200, 0], [0, 0, 128, 255], [200, 0, 0, 255], [0, 0, 0, 7], [0, 0, 255, 128]]
        Image.fromarray(np.array([px], np.uint8), "RGBA").save(path)
    elif case == "palette":  # the palette colour counts, not the index
        im = Image.new("P", (6, 1))
        im.putpalette(_PALETTE + [0] * (3 * 250))
        im.putdata([0, 1, 2, 3, 4, 5])
        im.save(path)
    elif case == "uint16":  # 16-bit grey: the high byte (v >> 8)
        Image.fromarray(np.array([[255, 300, 32768, 33023, 33024, 65535]], np.uint16)).save(path)
    else:
        raise AssertionError(case)


# case -> (GrabCut object, GrabCut ignore, DAVIS object) per pixel
_EXPECTED = {
    "grey": ("000011", "000100", "011111"),
    "rgb": ("001000", "000100", "011111"),
    "rgba": ("010001", "001000", "011101"),
    "palette": ("001000", "000100", "011101"),
    "uint16": ("000011", "001100", "011111"),
}


@pytest.mark.parametrize("case", sorted(_EXPECTED))
@pytest.mark.parametrize("name", ["grabcut", "berkeley", "davis", "coco_mval"])
def test_masks_decode_like_ritm(tmp_path, name, case):
    images, masks = {"grabcut": ("data_GT", "boundary_GT"), "berkeley": ("images", "masks")}.get(
        name, ("img", "gt")
    )
    _save(tmp_path / images / "s.jpg", _rgb(1, 6, 0))
    _mask_file(tmp_path / masks / "s.png", case)
    s = open_dataset(name, tmp_path).load(0)
    obj, ign, davis = _EXPECTED[case]
    if name in ("grabcut", "berkeley"):
        assert "".join("1" if v else "0" for v in s.gt[0]) == obj
        got_ignore = s.ignore[0] if s.ignore is not None else np.zeros(6, bool)
        assert "".join("1" if v else "0" for v in got_ignore) == ign
    else:
        assert "".join("1" if v else "0" for v in s.gt[0]) == davis
        assert s.ignore is None


def test_unreadable_mask_is_a_dataset_error(tmp_path):
    _save(tmp_path / "data_GT" / "a.jpg", _rgb(4, 4, 0))
    (tmp_path / "boundary_GT").mkdir()
    (tmp_path / "boundary_GT" / "a.png").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="cannot read mask"):
        open_dataset("grabcut", tmp_path).load(0)


def test_sbd_layout_one_sample_per_instance(tmp_path):
    from scipy.io import savemat

    seg = np.zeros((10, 10), np.uint8)
    seg[1:4, 1:4] = 1
    seg[5:9, 5:9] = 3  # instance ids need not be contiguous
    for name in ("im1", "im2"):
        _save(tmp_path / "img" / f"{name}.jpg", _rgb(10, 10, 4))
        (tmp_path / "inst").mkdir(exist_ok=True)
        savemat(tmp_path / "inst" / f"{name}.mat",
                {"GTinst": {"Segmentation": seg, "Boundaries": np.zeros((1, 2)), "Categories": np.array([[15], [7]])}})
    (tmp_path / "val.txt").write_text("im2\nim1\n")
    (tmp_path / "train.txt").write_text("im1\n")
    ds = open_dataset("sbd", tmp_path)
    assert ds.ids == ["im2#1", "im2#3", "im1#1", "im1#3"]  # split-file order, then instance id
    assert ds.load(1).gt.sum() == 16 and ds.load(0).gt.sum() == 9
    assert len(open_dataset("sbd", tmp_path, split="train")) == 2


def test_voc_layout_palette_with_ignored_border(tmp_path):
    lab = np.zeros((12, 12), np.uint8)
    lab[2:6, 2:6] = 1
    lab[7:11, 7:11] = 2
    lab[1, 1:7] = 255  # the VOC "void" border
    pal = Image.fromarray(lab, mode="P")
    pal.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0, 0, 0] * 252 + [224, 224, 192])
    (tmp_path / "SegmentationObject").mkdir(parents=True)
    pal.save(tmp_path / "SegmentationObject" / "2008_000001.png")
    _save(tmp_path / "JPEGImages" / "2008_000001.jpg", _rgb(12, 12, 5))
    (tmp_path / "ImageSets" / "Segmentation").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Segmentation" / "val.txt").write_text("2008_000001\n")
    ds = open_dataset("voc", tmp_path)
    assert ds.ids == ["2008_000001#1", "2008_000001#2"]
    s = ds.load(0)
    assert s.gt.sum() == 16 and s.ignore is not None and s.ignore.sum() == 6


def test_folder_layout_with_pairs_csv(tmp_path):
    _save(tmp_path / "a" / "one.png", _rgb(6, 7, 6))
    m = np.zeros((6, 7), np.uint8)
    m[1:3, 1:3] = 255
    m[4, 4] = 128
    _save(tmp_path / "m" / "one_mask.png", m)
    (tmp_path / "pairs.csv").write_text("image,mask\na/one.png,m/one_mask.png\na/one.png,m/one_mask.png\n")
    ds = open_dataset("folder", tmp_path)
    assert ds.ids == ["one_mask", "one_mask#1"]
    assert ds.load(0).gt.sum() == 5 and ds.load(0).ignore is None
    s = open_dataset("folder", tmp_path, ignore_value=128).load(0)
    assert s.gt.sum() == 4 and s.ignore.sum() == 1
    (tmp_path / "pairs.csv").write_text("img,mask\n")
    with pytest.raises(DatasetError, match="needs image and mask"):
        open_dataset("folder", tmp_path)


def test_size_mismatch_is_reported(tmp_path):
    _save(tmp_path / "images" / "x.jpg", _rgb(10, 12, 2))
    _save(tmp_path / "masks" / "x.png", np.zeros((10, 11), np.uint8))
    ds = open_dataset("berkeley", tmp_path)
    with pytest.raises(DatasetError, match="10x12 but its mask is 10x11"):
        ds.load(0)
    with pytest.raises(IndexError):
        ds.load(1)


def test_dataset_names_cover_the_issue():
    assert set(DATASET_NAMES) >= {"grabcut", "berkeley", "davis", "coco_mval", "sbd", "voc", "folder", "parts"}


@pytest.mark.data
def test_real_grabcut(grabcut_dir):
    ds = open_dataset("grabcut", grabcut_dir)
    assert len(ds) == 50
    assert ds.ids == sorted(ds.ids) and ds.ids[0] == "106024" and "banana1" in ds.ids
    s = ds.load(ds.ids.index("banana1"))
    assert s.image.shape == (480, 640, 3)
    assert s.ignore is not None and s.ignore.any()
    assert 0.2 < s.gt.mean() < 0.3  # the banana covers about a quarter of the image
    s0 = ds.load(0)  # 106024 has no boundary band
    assert s0.ignore is None and s0.gt.shape == s0.image.shape[:2]
