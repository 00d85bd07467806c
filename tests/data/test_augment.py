"""Seeded augmentation: reproducible from the seed in any process, image and masks together."""

from __future__ import annotations

import random
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from mis_pipeline.config import AugmentConfig
from mis_pipeline.data.augment import Augmenter, augment, build_transforms
from mis_pipeline.errors import ConfigError

# geometry only: colour ops off, so the image still encodes the mask after augmentation
GEOMETRY = AugmentConfig(crop_size=64, brightness_contrast_prob=0.0, rgb_shift_prob=0.0)


def _scene(h: int = 50, w: int = 70, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    mask = (yy - h * 0.4) ** 2 / (h * 0.3) ** 2 + (xx - w * 0.6) ** 2 / (w * 0.25) ** 2 < 1
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return image, mask


def test_same_seed_same_sample_different_seed_different():
    image, mask = _scene()
    aug = Augmenter(AugmentConfig(crop_size=64))
    a, b = aug(image, mask, 7), aug(image, mask, 7)
    assert a.image.shape == (64, 64, 3) and a.image.dtype == np.uint8
    assert a.mask.shape == (64, 64) and a.mask.dtype == bool and a.other is None
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    # a fresh Augmenter (another worker) and the one-off function agree
    c = augment(image, mask, 7, AugmentConfig(crop_size=64))
    assert np.array_equal(a.image, c.image) and np.array_equal(a.mask, c.mask)
    # calls in between (another sample) do not change it: no state carried between calls
    aug(image, mask, 8)
    d = aug(image, mask, 7)
    assert np.array_equal(a.image, d.image)
    others = [aug(image, mask, s).image for s in range(8, 16)]
    assert sum(np.array_equal(a.image, o) for o in others) == 0


def test_same_seed_same_sample_in_another_process():
    image, mask = _scene()
    here = Augmenter(AugmentConfig(crop_size=64))(image, mask, 123)
    code = (
        "import numpy as np, sys, hashlib\n"
        "from mis_pipeline.config import AugmentConfig\n"
        "from mis_pipeline.data.augment import Augmenter\n"
        "rng = np.random.default_rng(0)\n"
        "h, w = 50, 70\n"
        "yy, xx = np.mgrid[0:h, 0:w]\n"
        "mask = (yy - h * 0.4) ** 2 / (h * 0.3) ** 2 + (xx - w * 0.6) ** 2 / (w * 0.25) ** 2 < 1\n"
        "image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)\n"
        "a = Augmenter(AugmentConfig(crop_size=64))(image, mask, 123)\n"
        "print(hashlib.sha256(a.image.tobytes() + a.mask.tobytes()).hexdigest())\n"
    )
    import hashlib

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == hashlib.sha256(here.image.tobytes() + here.mask.tobytes()).hexdigest()


def test_image_and_masks_move_together():
    h, w = 50, 70
    _, mask = _scene(h, w)
    # the image is the mask itself (plus 1, so padding (0) is told apart from background)
    image = np.repeat(np.where(mask, 200, 50).astype(np.uint8)[:, :, None], 3, axis=2)
    aug = Augmenter(GEOMETRY)
    for seed in range(40):
        out = aug(image, mask, seed, other=~mask)
        inside = out.image[:, :, 0] >= 125
        content = out.image[:, :, 0] > 0
        # bilinear image vs nearest mask differ only along the boundary
        agree = (inside == out.mask)[content]
        assert agree.mean() > 0.93, seed
        assert not (out.mask & out.other).any()
        # mask and other together cover the image content (padding is neither)
        assert ((out.mask | out.other) == (out.image[:, :, 0] > 0))[content].mean() > 0.97


def test_uniform_random_resize_matches_ritm_rounding():
    cfg = AugmentConfig(crop_size=400, hflip=False, rotate90=False, ssr_prob=0.0,
                        brightness_contrast_prob=0.0, rgb_shift_prob=0.0)
    image, mask = _scene(51, 73)
    aug = Augmenter(cfg)
    for seed in range(20):
        words = np.random.SeedSequence(seed).generate_state(len(aug.transforms), dtype=np.uint32)
        s = random.Random(int(words[0])).uniform(0.75, 1.25)
        eh, ew = int(round(51 * s)), int(round(73 * s))
        out = aug(image, np.ones((51, 73), bool), seed)
        rows = np.flatnonzero(out.mask.any(axis=1))
        cols = np.flatnonzero(out.mask.any(axis=0))
        assert (rows.size, cols.size) == (eh, ew)
        # centred padding (PadIfNeeded position "center"), crop of the whole padded image
        assert rows[0] == (400 - eh) // 2 and cols[0] == (400 - ew) // 2


def test_crop_of_a_large_image_is_a_window():
    cfg = replace(GEOMETRY, scale_range=(1.0, 1.0), hflip=False, rotate90=False, ssr_prob=0.0, crop_size=32)
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)
    aug = Augmenter(cfg)
    seen = set()
    for seed in range(10):
        out = aug(image, np.zeros((80, 90), bool), seed)
        # the crop is a window of the image at some offset
        hits = [(r, c) for r in range(80 - 31) for c in range(90 - 31)
                if np.array_equal(image[r:r + 32, c:c + 32], out.image)]
        assert len(hits) == 1
        seen.add(hits[0])
    assert len(seen) > 5


def test_switched_off_transforms_are_left_out():
    names = [type(t).__name__ for t in build_transforms(AugmentConfig())]
    assert names == ["UniformRandomResize", "HorizontalFlip", "RandomRotate90", "Affine", "PadIfNeeded",
                     "RandomCrop", "RandomBrightnessContrast", "RGBShift"]
    off = AugmentConfig(hflip=False, rotate90=False, ssr_prob=0, brightness_contrast_prob=0, rgb_shift_prob=0)
    assert [type(t).__name__ for t in build_transforms(off)] == ["UniformRandomResize", "PadIfNeeded", "RandomCrop"]


def test_flip_and_rotation_decisions_are_not_correlated():
    # Compose.set_random_seed would give both transforms one seed (same first draw); ours differ
    cfg = replace(GEOMETRY, scale_range=(1.0, 1.0), ssr_prob=0.0, crop_size=64)
    h, w = 20, 30
    mask = np.zeros((h, w), bool)
    mask[0, 0] = True  # a marked corner tells the flip / rotation apart
    aug = Augmenter(cfg)
    outcomes = set()
    for seed in range(64):
        m = aug(np.zeros((h, w, 3), np.uint8), mask, seed).mask
        rows, cols = np.nonzero(m)
        outcomes.add((m.shape, int(rows[0]) < 32, int(cols[0]) < 32))
    assert len(outcomes) >= 4


def test_bad_inputs():
    with pytest.raises(ConfigError, match="scale_range"):
        Augmenter(AugmentConfig(scale_range=(1.2, 0.8)))
    aug = Augmenter(GEOMETRY)
    with pytest.raises(ValueError, match="uint8"):
        aug(np.zeros((10, 10, 3), np.float32), np.zeros((10, 10), bool), 0)
    with pytest.raises(ValueError, match="mask must be"):
        aug(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 11), bool), 0)


@pytest.mark.parametrize("shape", [(50, 70), (300, 420), (512, 380)])
def test_fused_colour_table_is_bit_exact(shape):
    # the fast path (colour transforms composed into one lookup table) against applying them
    cfg = AugmentConfig(crop_size=256, brightness_contrast_prob=0.9, rgb_shift_prob=0.9, rgb_shift=25,
                        contrast_limit=(-0.5, 0.8))
    image, mask = _scene(*shape, seed=shape[0])
    fast, plain = Augmenter(cfg), Augmenter(cfg, fused_colour=False)
    for seed in range(60):
        a, b = fast(image, mask, seed, other=~mask), plain(image, mask, seed, other=~mask)
        assert np.array_equal(a.image, b.image), seed
        assert np.array_equal(a.mask, b.mask) and np.array_equal(a.other, b.other)
