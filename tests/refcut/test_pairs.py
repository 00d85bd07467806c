"""RefCut part pairs: the drawn target, the reference masks and modes, and real CarParts samples."""

from __future__ import annotations

import numpy as np
import pytest

from mis_pipeline.config import AugmentConfig, DataConfig, RefCutConfig
from mis_pipeline.refcut.pairs import (
    PartPairDataset,
    draw_parts,
    draw_reference_mode,
    reference_masks,
)


def test_draw_parts_counts_uniform_and_subsets():
    rng = np.random.default_rng(0)
    parts = np.array([2, 5, 7, 9])
    sizes = []
    for _ in range(4000):
        c = draw_parts(parts, rng)
        assert np.all(np.isin(c, parts)) and len(set(c.tolist())) == len(c) and np.all(np.diff(c) > 0)
        sizes.append(len(c))
    freq = np.bincount(sizes, minlength=5)[1:] / 4000
    assert np.all(np.abs(freq - 0.25) < 0.03)
    with pytest.raises(ValueError):
        draw_parts(np.array([]), rng)


def test_reference_masks_and_modes():
    lab = np.array([[0, 1, 1], [2, 2, 3], [3, 0, 4]])
    pos, neg = reference_masks(lab, np.array([1, 3]))
    assert pos.tolist() == [[False, True, True], [False, False, True], [True, False, False]]
    assert neg.tolist() == [[False, False, False], [True, True, False], [False, False, True]]
    p, n = reference_masks(lab, np.array([1, 3]), "positive")
    assert np.array_equal(p, pos) and not n.any()
    p, n = reference_masks(lab, np.array([1, 3]), "negative")
    assert not p.any() and np.array_equal(n, neg)
    rng = np.random.default_rng(1)
    modes = [draw_reference_mode(rng, RefCutConfig()) for _ in range(4000)]
    for m, expected in (("positive", 0.25), ("negative", 0.25), ("both", 0.5)):
        assert abs(modes.count(m) / 4000 - expected) < 0.03


@pytest.fixture(scope="module")
def carparts(shared_data):
    root = shared_data / "CarParts"
    cfg = DataConfig(epoch_size=40, augment=AugmentConfig(crop_size=128))
    return PartPairDataset(root, seed=3, config=cfg)


@pytest.mark.data
def test_carparts_samples(carparts):
    ds = carparts
    assert len(ds.images) == 100 and ds.part_names.get(18) == "wheel"
    modes = {"positive": 0, "negative": 0, "both": 0}
    for i in range(12):
        s = ds.sample(i, epoch=0)
        assert s["image"].shape == (128, 128, 3) and s["mask"].shape == (128, 128) and s["mask"].any()
        assert s["ref_image"].shape == (128, 128, 3) and s["ref_pos"].dtype == bool
        t, r = int(s["image_index"]), int(s["ref_index"])
        assert r != t and r >= 0
        chosen = np.array([p for p in range(64) if int(s["node"]) >> p & 1])
        assert np.all(np.isin(chosen, ds.parts[t]))
        # the reference masks are the chosen parts / the rest of the reference object
        import cv2

        lab = cv2.resize(ds.labels(r), (128, 128), interpolation=cv2.INTER_NEAREST)
        pos_full, neg_full = reference_masks(lab, chosen)
        assert not (s["ref_pos"] & s["ref_neg"]).any()
        if s["ref_pos"].any() and s["ref_neg"].any():
            modes["both"] += 1
            assert np.array_equal(s["ref_pos"], pos_full) and np.array_equal(s["ref_neg"], neg_full)
        elif s["ref_pos"].any():
            modes["positive"] += 1
            assert np.array_equal(s["ref_pos"], pos_full)
        else:
            modes["negative"] += 1
            assert np.array_equal(s["ref_neg"], neg_full)
    assert sum(modes.values()) == 12
    # deterministic per (seed, epoch, index)
    a, b = ds.sample(5, 1), ds.sample(5, 1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
