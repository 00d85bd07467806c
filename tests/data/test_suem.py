"""SUEM copy-paste: each mode's mask algebra on synthetic shapes, pixels, probabilities, seeding."""

from __future__ import annotations

import numpy as np
import pytest

from mis_pipeline.config import SuemConfig
from mis_pipeline.data.suem import (
    alpha_paste,
    exclusion_paste,
    image_mix,
    simple_paste,
    suem_augment,
    union_paste,
)

H = W = 40


def _disc(cy, cx, r):
    yy, xx = np.mgrid[0:H, 0:W]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def _rect(y0, y1, x0, x1):
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def _img(value):
    return np.full((H, W, 3), value, np.uint8)


SRC, SRC_M = _img(200), _disc(20, 15, 9)
EXT, EXT_M = _img(40), _rect(10, 30, 18, 35)  # overlaps the disc's right side


def test_union_mask_and_pixels():
    img, m = union_paste(SRC, SRC_M, EXT, EXT_M)
    assert np.array_equal(m, SRC_M | EXT_M)
    assert np.all(img[EXT_M] == 40) and np.all(img[~EXT_M] == 200)


def test_exclusion_mask_and_pixels():
    img, m = exclusion_paste(SRC, SRC_M, EXT, EXT_M)
    assert np.array_equal(m, SRC_M & ~EXT_M)
    assert (SRC_M & EXT_M).any() and not (m & EXT_M).any()  # the occluded part is removed
    assert np.all(img[EXT_M] == 40) and np.all(img[~EXT_M] == 200)


def test_simple_paste_moves_the_object_onto_the_extra_image():
    img, m = simple_paste(SRC, SRC_M, EXT, alpha=1.0)
    assert np.array_equal(m, SRC_M)
    assert np.all(img[SRC_M] == 200) and np.all(img[~SRC_M] == 40)
    img, _ = simple_paste(SRC, SRC_M, EXT, alpha=0.75)
    assert np.all(img[SRC_M] == 160) and np.all(img[~SRC_M] == 40)  # 0.75*200 + 0.25*40


def test_alpha_paste_and_mix_keep_the_mask():
    img, m = alpha_paste(SRC, SRC_M, EXT, EXT_M, alpha=0.5)
    assert np.array_equal(m, SRC_M)
    assert np.all(img[EXT_M] == 120) and np.all(img[~EXT_M] == 200)
    img, m = image_mix(SRC, SRC_M, EXT, alpha=0.6)
    assert np.array_equal(m, SRC_M) and np.all(img == 136)  # 0.6*200 + 0.4*40


def test_inputs_untouched_and_errors():
    src = SRC.copy()
    union_paste(src, SRC_M, EXT, EXT_M)
    assert np.array_equal(src, SRC)
    with pytest.raises(ValueError, match="crop size"):
        union_paste(SRC, SRC_M, np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match="uint8"):
        image_mix(SRC.astype(np.float32), SRC_M, EXT, 0.5)


def _draw(rng):
    k = int(rng.integers(0, 3))
    return [(EXT, EXT_M), (_img(90), _rect(0, 12, 0, 12)), (_img(10), _rect(0, H, 0, W))][k]


def test_suem_algebra_by_reported_mode():
    cfg = SuemConfig(enabled=True, copy_paste_prob=1.0, image_mix_prob=0.0)
    seen = set()
    for seed in range(60):
        drawn = []

        def draw(rng, drawn=drawn):
            drawn.append(_draw(rng))
            return drawn[-1]

        r = suem_augment(SRC, SRC_M, draw, np.random.default_rng(seed), cfg)
        seen.update(r.modes)
        assert r.mask.dtype == bool and r.image.shape == SRC.shape
        assert r.modes[0] == "simple"
        if len(r.modes) == 1:  # every extra object would have hidden the source
            assert all(d[1].all() for d in drawn[1:]) and np.array_equal(r.mask, SRC_M)
            continue
        em = drawn[-1][1]
        assert not em.all()  # the full-image object is never pasted over the source
        expected = {"union": SRC_M | em, "exclusion": SRC_M & ~em, "alpha": SRC_M}[r.modes[1]]
        assert np.array_equal(r.mask, expected)
        assert np.array_equal(r.image[em], drawn[-1][0][em]) or r.modes[1] == "alpha"
    assert {"union", "exclusion", "alpha"} <= seen


def test_suem_probabilities_and_seeding():
    cfg = SuemConfig(enabled=True)  # 0.5 / 0.5 / 0.5 as the public code
    counts = {"simple": 0, "second": 0, "mix": 0}
    n = 600
    for seed in range(n):
        r = suem_augment(SRC, SRC_M, _draw, np.random.default_rng(seed), cfg)
        counts["simple"] += "simple" in r.modes
        counts["second"] += bool({"union", "exclusion", "alpha"} & set(r.modes))
        counts["mix"] += "mix" in r.modes
    assert abs(counts["simple"] / n - 0.5) < 0.07
    assert abs(counts["mix"] / n - 0.5) < 0.07
    assert 0.3 < counts["second"] / n < 0.5  # 0.5 minus the draws where every extra hides the source
    a = suem_augment(SRC, SRC_M, _draw, np.random.default_rng(5), cfg)
    b = suem_augment(SRC, SRC_M, _draw, np.random.default_rng(5), cfg)
    assert a.modes == b.modes and np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    off = suem_augment(SRC, SRC_M, _draw, np.random.default_rng(0),
                       SuemConfig(copy_paste_prob=0.0, image_mix_prob=0.0))
    assert off.modes == () and np.array_equal(off.image, SRC) and np.array_equal(off.mask, SRC_M)
