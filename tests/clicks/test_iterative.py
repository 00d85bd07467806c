"""Iterative-training next click (the reference's random-pixel rule) and add_clicks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click_cases import blobs, disk
from scipy import ndimage, stats

from mis_pipeline.clicks import add_clicks, next_clicks
from mis_pipeline.clicks.reference import next_clicks_reference


def _batch(seed: int, b: int = 6, hw=(64, 80)):
    rng = np.random.default_rng(seed)
    gt = np.stack([blobs(hw, seed * 10 + i, level=0.5, sigma=5) for i in range(b)])
    prob = np.stack([ndimage.gaussian_filter(rng.random(hw), 4) for _ in range(b)])
    prob = (prob - prob.min()) / (prob.max() - prob.min())
    prob[0] = gt[0]  # a perfect prediction: no error, no click
    prob[1] = 1.0 - gt[1]  # everything wrong
    return prob.astype(np.float32), gt


@pytest.mark.parametrize("distance", ["chamfer", "exact"])
def test_equals_full_image_reference(distance):
    for seed in range(5):
        prob, gt = _batch(seed)
        a = next_clicks(prob, gt, np.random.default_rng(seed), distance=distance)
        b = next_clicks_reference(prob, gt, np.random.default_rng(seed), threshold=0.49, distance=distance)
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(x, y) and x.dtype == y.dtype
        assert not a[2][0] and a[2][1:].all()
        threaded = next_clicks(prob, gt, np.random.default_rng(seed), distance=distance, workers=3)
        for x, y in zip(a, threaded, strict=True):
            assert np.array_equal(x, y)


def test_click_inside_larger_error_region_beyond_half_its_max_distance():
    """Checked with SciPy's exact Euclidean transform (independent of OpenCV)."""
    for seed in range(8):
        prob, gt = _batch(seed)
        pts, labels, found = next_clicks(prob, gt, np.random.default_rng(seed), distance="exact")
        for i in np.flatnonzero(found):
            fn = gt[i] & (prob[i] < 0.49)
            fp = ~gt[i] & (prob[i] > 0.49)
            dfn = ndimage.distance_transform_edt(np.pad(fn, 1))[1:-1, 1:-1]
            dfp = ndimage.distance_transform_edt(np.pad(fp, 1))[1:-1, 1:-1]
            positive = dfn.max() > dfp.max()
            assert labels[i] == int(positive)
            region, dt = (fn, dfn) if positive else (fp, dfp)
            r, c = pts[i]
            assert region[r, c]
            assert dt[r, c] > max(dfn.max(), dfp.max()) / 2 - 1e-4


def test_chamfer_click_beyond_half_max_chamfer_distance():
    import cv2

    prob, gt = _batch(3)
    pts, labels, found = next_clicks(prob, gt, np.random.default_rng(0))
    for i in np.flatnonzero(found):
        fn = np.pad(gt[i] & (prob[i] < 0.49), 1).astype(np.uint8)
        fp = np.pad(~gt[i] & (prob[i] > 0.49), 1).astype(np.uint8)
        dfn = cv2.distanceTransform(fn, cv2.DIST_L2, 5)[1:-1, 1:-1]
        dfp = cv2.distanceTransform(fp, cv2.DIST_L2, 5)[1:-1, 1:-1]
        dt = dfn if labels[i] == 1 else dfp
        assert dt[pts[i][0], pts[i][1]] > max(dfn.max(), dfp.max()) / 2


def test_uniform_over_the_candidates():
    hw = (40, 40)
    gt = disk(hw, (20, 20), 12)[None]
    prob = np.zeros((1, *hw), np.float32)  # all of gt is a false negative
    dt = ndimage.distance_transform_edt(np.pad(gt[0], 1))[1:-1, 1:-1]
    cand = dt > dt.max() / 2
    rng = np.random.default_rng(4)
    hits = np.zeros(hw, int)
    for _ in range(4000):
        p, lab, f = next_clicks(prob, gt, rng, distance="exact")
        assert f[0] and lab[0] == 1 and cand[p[0, 0], p[0, 1]]
        hits[p[0, 0], p[0, 1]] += 1
    assert stats.chisquare(hits[cand]).pvalue > 1e-3


def test_tie_is_negative_and_threshold_is_strict():
    hw = (20, 40)
    gt = np.zeros((1, *hw), bool)
    gt[0, 5:15, 2:12] = True  # fn block (prob 0 there)
    prob = np.zeros((1, *hw), np.float32)
    prob[0, 5:15, 25:35] = 1.0  # fp block of the same shape
    _, labels, found = next_clicks(prob, gt, np.random.default_rng(0))
    assert found[0] and labels[0] == 0
    at = np.full((1, *hw), 0.49, np.float32)  # exactly at the threshold: neither fn nor fp
    _, _, found = next_clicks(at, gt, np.random.default_rng(0))
    assert not found[0]


def test_per_sample_generators():
    prob, gt = _batch(4)
    seeds = [11, 12, 13, 14, 15, 16]
    together = next_clicks(prob, gt, [np.random.default_rng(s) for s in seeds], workers=2)
    for i, s in enumerate(seeds):
        alone = next_clicks(prob[i : i + 1], gt[i : i + 1], np.random.default_rng(s))
        for x, y in zip(together, alone, strict=True):
            assert np.array_equal(x[i], y[0])
    with pytest.raises(ValueError, match="sequence of 6"):
        next_clicks(prob, gt, [np.random.default_rng(0)] * 5)


def test_accepts_torch_and_channel_dim():
    prob, gt = _batch(2)
    a = next_clicks(prob, gt, np.random.default_rng(1))
    b = next_clicks(torch.as_tensor(prob)[:, None], torch.as_tensor(gt, dtype=torch.float32)[:, None], np.random.default_rng(1))
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)
    c = next_clicks(torch.as_tensor(prob).to(torch.bfloat16), torch.as_tensor(gt), np.random.default_rng(1))
    assert c[2][1:].all()  # autocast outputs are accepted (compared in float32)
    with pytest.raises(ValueError, match="shape"):
        next_clicks(prob, gt[:, :10], np.random.default_rng(0))
    with pytest.raises(ValueError, match="distance"):
        next_clicks(prob, gt, np.random.default_rng(0), distance="manhattan")
    with pytest.raises(ValueError, match="workers"):
        next_clicks(prob, gt, np.random.default_rng(0), workers=0)


def _layout(b=3, m=4):
    points = np.zeros((b, 2 * m, 2), np.int32)
    labels = np.tile(np.r_[np.ones(m), np.zeros(m)].astype(np.int8), (b, 1))
    valid = np.zeros((b, 2 * m), bool)
    return points, labels, valid


def test_add_clicks_first_free_slot_of_its_half_and_full_half():
    points, labels, valid = _layout()
    valid[0, :2] = True  # two positives
    valid[1, :4] = True  # positive half full
    valid[2, 4:6] = True  # two negatives
    new_p = np.array([[1, 2], [3, 4], [5, 6]], np.int32)
    new_l = np.array([1, 1, 0], np.int8)
    found = np.array([True, True, True])
    p0, l0, v0 = points.copy(), labels.copy(), valid.copy()
    p, lab, v = add_clicks(points, labels, valid, new_p, new_l, found)
    assert np.array_equal(points, p0) and np.array_equal(labels, l0) and np.array_equal(valid, v0)
    assert v[0, 2] and tuple(p[0, 2]) == (1, 2) and v[0].sum() == 3
    assert tuple(p[1, 3]) == (3, 4) and v[1].sum() == 4  # full: overwrites the last slot
    assert v[2, 6] and tuple(p[2, 6]) == (5, 6) and lab[2, 6] == 0
    assert np.array_equal(lab, labels)  # the halves keep their labels
    # found == False leaves a sample unchanged
    p2, l2, v2 = add_clicks(points, labels, valid, new_p, new_l, np.array([False, True, False]))
    assert np.array_equal(p2[0], points[0]) and np.array_equal(v2[2], valid[2])


def test_add_clicks_torch_equals_numpy():
    rng = np.random.default_rng(3)
    points, labels, valid = _layout(b=16, m=5)
    valid[:] = rng.random(valid.shape) < 0.5
    valid[:, :5] = np.sort(valid[:, :5], axis=1)[:, ::-1]
    new_p = rng.integers(0, 50, (16, 2)).astype(np.int32)
    new_l = rng.integers(0, 2, 16).astype(np.int8)
    found = rng.random(16) < 0.8
    a = add_clicks(points, labels, valid, new_p, new_l, found)
    t = add_clicks(torch.as_tensor(points), torch.as_tensor(labels), torch.as_tensor(valid),
                   torch.as_tensor(new_p), torch.as_tensor(new_l), torch.as_tensor(found))
    for x, y in zip(a, t, strict=True):
        assert isinstance(y, torch.Tensor) and np.array_equal(x, y.numpy())
    # numpy results from next_clicks go straight into torch click sets
    t2 = add_clicks(torch.as_tensor(points), torch.as_tensor(labels), torch.as_tensor(valid), new_p, new_l, found)
    for x, y in zip(a, t2, strict=True):
        assert np.array_equal(x, y.numpy())
