"""Training clicks: RITM MultiPointSampler semantics, fast path against the plain reference."""

from __future__ import annotations

import numpy as np
import pytest
from click_cases import blobs, disk, mask_cases
from scipy import ndimage, stats

from mis_pipeline.clicks import Clicks, sample_clicks
from mis_pipeline.clicks.reference import sample_clicks_reference
from mis_pipeline.config import ClickConfig

CONFIGS = [
    ClickConfig(),
    ClickConfig(first_click_center=True),
    ClickConfig(first_click_center=True, first_click_inner_k=0.0),
    ClickConfig(first_click_center=True, first_click_full_prob=0.5),
    ClickConfig(positive_erode_prob=1.0, positive_erode_iters=5, max_points=6, prob_gamma=0.5),
    ClickConfig(positive_erode_iters=0, expand_ratio=0.0),
    ClickConfig(expand_ratio=0.5, negative_probs=(0.0, 0.0, 1.0)),  # box-filter dilation path
    ClickConfig(negative_probs=(0.2, 0.8, 0.0), prob_gamma=0.95),
]


def _same(a: Clicks, b: Clicks) -> bool:
    return all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("ci", range(len(CONFIGS)))
def test_fast_path_equals_reference(ci):
    cfg = CONFIGS[ci]
    masks = mask_cases()
    for mi, mask in enumerate(masks):
        other = blobs(mask.shape, 100 + mi, level=0.5) if mi % 2 else None
        for seed in range(4):
            a = sample_clicks(mask, np.random.default_rng(seed), cfg, other=other)
            b = sample_clicks_reference(mask, np.random.default_rng(seed), cfg, other=other)
            assert _same(a, b), (ci, mi, seed)


def test_fast_path_equals_reference_at_crop_size():
    cfg = ClickConfig()
    for seed in range(6):
        mask = blobs((448, 448), seed, level=0.5, sigma=20)
        a = sample_clicks(mask, np.random.default_rng(seed), cfg)
        b = sample_clicks_reference(mask, np.random.default_rng(seed), cfg)
        assert _same(a, b)


def test_layout_dtypes_and_determinism():
    mask = disk((64, 80), (30, 40), 15)
    cfg = ClickConfig()
    a = sample_clicks(mask, np.random.default_rng(3), cfg)
    b = sample_clicks(mask, np.random.default_rng(3), cfg)
    assert _same(a, b)
    assert a.points.shape == (48, 2) and a.points.dtype == np.int32
    assert a.labels.dtype == np.int8 and a.valid.dtype == bool
    assert (a.labels[:24] == 1).all() and (a.labels[24:] == 0).all()
    for half in (a.valid[:24], a.valid[24:]):  # each half filled from its start
        k = int(half.sum())
        assert half[:k].all() and not half[k:].any()
    assert (a.points[~a.valid] == 0).all()
    different = [sample_clicks(mask, np.random.default_rng(s), cfg) for s in range(4, 10)]
    assert not all(_same(a, d) for d in different)


def _pos_neg(c: Clicks):
    return c.points[c.valid & (c.labels == 1)], c.points[c.valid & (c.labels == 0)]


def test_positives_inside_negatives_outside():
    cfg = ClickConfig()
    for mask in mask_cases():
        for seed in range(10):
            pos, neg = _pos_neg(sample_clicks(mask, np.random.default_rng(seed), cfg))
            assert mask[pos[:, 0], pos[:, 1]].all()
            assert not mask[neg[:, 0], neg[:, 1]].any()
            if mask.any():
                assert len(pos) >= 1
            else:
                assert len(pos) == 0


def _pool_cut(exp: np.ndarray) -> int:
    """Index from which the tail (expected counts < 5) is pooled into one bin."""
    small = np.flatnonzero(exp < 5)
    return int(small[0]) if small.size else len(exp) - 1


def test_number_of_points_law():
    cfg = ClickConfig()  # M = 24, gamma = 0.8
    mask = disk((80, 80), (40, 40), 20)
    rng = np.random.default_rng(11)
    n = 10_000
    kp, kn = np.zeros(n, int), np.zeros(n, int)
    for i in range(n):
        pos, neg = _pos_neg(sample_clicks(mask, rng, cfg))
        kp[i], kn[i] = len(pos), len(neg)
    # Positives: k = 1..24, P ~ 0.8^(k-1); negatives: k = 0..24, P ~ 0.8^k (every region here
    # is non-empty, so every draw gives a click).
    for counts, ks in ((np.bincount(kp, minlength=25)[1:], np.arange(24)), (np.bincount(kn, minlength=25), np.arange(25))):
        p = 0.8**ks
        exp = p / p.sum() * n
        cut = _pool_cut(exp)
        obs_b = np.r_[counts[:cut], counts[cut:].sum()]
        exp_b = np.r_[exp[:cut], exp[cut:].sum()]
        assert stats.chisquare(obs_b, exp_b).pvalue > 1e-3
    assert kp.min() == 1 and kn.min() == 0


def test_count_law_test_has_power():
    mask = disk((80, 80), (40, 40), 20)
    rng = np.random.default_rng(12)
    n = 4000
    kp = np.array([len(_pos_neg(sample_clicks(mask, rng, ClickConfig(prob_gamma=0.75)))[0]) for _ in range(n)])
    p = 0.8 ** np.arange(24)
    exp = p / p.sum() * n
    cut = _pool_cut(exp)
    counts = np.bincount(kp, minlength=25)[1:]
    assert stats.chisquare(np.r_[counts[:cut], counts[cut:].sum()], np.r_[exp[:cut], exp[cut:].sum()]).pvalue < 1e-4


def _chebyshev_ring(mask: np.ndarray, r: int) -> np.ndarray:
    return ndimage.binary_dilation(mask, np.ones((2 * r + 1, 2 * r + 1), bool)) & ~mask


def test_negative_strategies_regions_and_frequencies():
    """Negatives fall in the border ring, the 'other' region and the rest of the background
    with probabilities 0.5 + 0.1 |ring|/|bg|, 0.4 + 0.1 |other|/|bg|, 0.1 |rest|/|bg|."""
    hw = (90, 120)
    mask = np.zeros(hw, bool)
    mask[30:60, 20:50] = True  # area 900 -> ring of Chebyshev width ceil(0.1 * 30) = 3
    ring = _chebyshev_ring(mask, 3)
    other = np.zeros(hw, bool)
    other[10:80, 80:110] = True  # disjoint from the ring
    bg = ~mask
    rest = bg & ~ring & ~other
    cfg = ClickConfig()
    rng = np.random.default_rng(21)
    counts = np.zeros(3, int)
    for _ in range(10_000):
        neg = _pos_neg(sample_clicks(mask, rng, cfg, other=other))[1]
        r, c = neg[:, 0], neg[:, 1]
        assert bg[r, c].all()
        counts += [ring[r, c].sum(), other[r, c].sum(), rest[r, c].sum()]
    nb = bg.sum()
    p = np.array([0.5 + 0.1 * ring.sum() / nb, 0.4 + 0.1 * other.sum() / nb, 0.1 * rest.sum() / nb])
    assert abs(p.sum() - 1) < 1e-12
    assert stats.chisquare(counts, p * counts.sum()).pvalue > 1e-3


def test_other_falls_back_to_background():
    """Without `other` (the reference: one proposal) the 'other' strategy is the background,
    so a negative lands in the ring with probability 0.5 + 0.5 |ring|/|bg|."""
    hw = (90, 120)
    mask = np.zeros(hw, bool)
    mask[30:60, 20:50] = True
    ring = _chebyshev_ring(mask, 3)
    nb = (~mask).sum()
    p_ring = 0.5 + 0.5 * ring.sum() / nb
    for other in (None, mask.copy()):  # an 'other' inside the mask is empty after ~mask
        rng = np.random.default_rng(22)
        in_ring = total = 0
        for _ in range(4000):
            neg = _pos_neg(sample_clicks(mask, rng, ClickConfig(), other=other))[1]
            in_ring += ring[neg[:, 0], neg[:, 1]].sum()
            total += len(neg)
        assert stats.binomtest(int(in_ring), int(total), p_ring).pvalue > 1e-3


def test_border_ring_width_is_ceil_of_expand_ratio_sqrt_area():
    hw = (120, 120)
    mask = disk(hw, (60, 60), 25)
    r = int(np.ceil(0.1 * np.sqrt(mask.sum())))
    ring = _chebyshev_ring(mask, r)
    cfg = ClickConfig(negative_probs=(0.0, 0.0, 1.0))
    rng = np.random.default_rng(5)
    hit = np.zeros(hw, int)
    for _ in range(3000):
        neg = _pos_neg(sample_clicks(mask, rng, cfg))[1]
        assert ring[neg[:, 0], neg[:, 1]].all()
        np.add.at(hit, (neg[:, 0], neg[:, 1]), 1)
    # Uniform over the ring: every ring pixel is reachable, including the outermost layer.
    assert (hit[ring] > 0).mean() > 0.99
    outer = ring & ~_chebyshev_ring(mask, r - 1)
    assert hit[outer].sum() > 0
    assert stats.chisquare(hit[ring]).pvalue > 1e-3


def test_positive_erosion_probability_and_uniformity():
    """Positives come from the mask eroded by 3 iterations of a 3x3 kernel with probability
    0.9, from the whole mask otherwise; uniform over the chosen region."""
    hw = (60, 60)
    mask = np.zeros(hw, bool)
    mask[20:40, 20:40] = True  # 400 px; eroded: [23:37, 23:37], 196 px
    inner = np.zeros(hw, bool)
    inner[23:37, 23:37] = True
    band = mask & ~inner
    cfg = ClickConfig(max_points=1)  # one positive per draw: the categories are independent
    rng = np.random.default_rng(8)
    n = 10_000
    hits = np.zeros(hw, int)
    for _ in range(n):
        pos = _pos_neg(sample_clicks(mask, rng, cfg))[0]
        assert len(pos) == 1
        hits[pos[0, 0], pos[0, 1]] += 1
    p_band = 0.1 * band.sum() / mask.sum()
    assert stats.chisquare([hits[band].sum(), hits[inner].sum()], [p_band * n, (1 - p_band) * n]).pvalue > 1e-3
    # Within each region, uniform.
    assert stats.chisquare(hits[inner]).pvalue > 1e-3
    assert stats.chisquare(hits[band]).pvalue > 1e-3


def test_erosion_keeps_the_image_edge_and_small_masks():
    hw = (40, 40)
    mask = np.zeros(hw, bool)
    mask[:, :20] = True  # touches three image edges
    cfg = ClickConfig(positive_erode_prob=1.0)
    cols, rows = set(), set()
    for s in range(300):
        pos = _pos_neg(sample_clicks(mask, np.random.default_rng(s), cfg))[0]
        cols |= set(pos[:, 1].tolist())
        rows |= set(pos[:, 0].tolist())
    # OpenCV's erode counts the outside as set: only the inner edge (col 19) is eaten.
    assert max(cols) == 16 and 0 in cols and 0 in rows and 39 in rows
    small = disk(hw, (20, 20), 3.5)  # eroding 3 times leaves <= 10 px -> the mask is kept
    assert ndimage.binary_erosion(small, np.ones((3, 3)), iterations=3, border_value=1).sum() <= 10
    seen = set()
    for s in range(300):
        pos = _pos_neg(sample_clicks(small, np.random.default_rng(s), cfg))[0]
        seen |= {tuple(p) for p in pos.tolist()}
    assert seen == {tuple(p) for p in np.argwhere(small).tolist()}


def test_first_click_center_draws_from_the_inner_region():
    hw = (80, 100)
    mask = disk(hw, (40, 50), 30)
    cfg = ClickConfig(first_click_center=True, positive_erode_prob=0.0)
    dt = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    inner = dt > dt.max() / 1.7
    for s in range(200):
        c = sample_clicks(mask, np.random.default_rng(s), cfg)
        r, col = c.points[0]
        assert inner[r, col]


def test_empty_mask_gives_negatives_anywhere():
    hw = (30, 40)
    cfg = ClickConfig(negative_probs=(0.0, 0.0, 1.0))  # even 'border' uses the whole image
    total = 0
    for s in range(200):
        c = sample_clicks(np.zeros(hw, bool), np.random.default_rng(s), cfg)
        assert not c.valid[:24].any()
        total += int(c.valid[24:].sum())
    assert total > 0


def test_accepts_numeric_masks_and_checks_inputs():
    mask = disk((30, 30), (15, 15), 6)
    a = sample_clicks(mask.astype(np.uint8), np.random.default_rng(0))
    b = sample_clicks(mask, np.random.default_rng(0))
    assert _same(a, b)
    with pytest.raises(ValueError, match="empty"):
        sample_clicks(np.zeros((0, 30), bool), np.random.default_rng(0))
    with pytest.raises(ValueError, match="2-D"):
        sample_clicks(np.zeros((3, 30, 30), bool), np.random.default_rng(0))
    with pytest.raises(ValueError, match="other"):
        sample_clicks(mask, np.random.default_rng(0), other=np.zeros((10, 10), bool))
    with pytest.raises(TypeError, match="ClickConfig"):
        sample_clicks(mask, np.random.default_rng(0), {"max_points": 3})
    with pytest.raises(ValueError, match="negative_probs"):
        ClickConfig(negative_probs=(0.3, 0.3, 0.3))
