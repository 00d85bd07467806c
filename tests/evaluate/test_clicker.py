"""The RITM clicker on hand-made masks with known answers, and against brute-force references."""

from __future__ import annotations

import numpy as np
import pytest

from mis_pipeline.evaluate.clicker import (
    Click,
    Clicker,
    _edt_padded,
    _edt_padded_scipy,
    click_map,
    error_distance_maps,
    next_click,
)


def _square(shape, r0, r1, c0, c1):
    m = np.zeros(shape, dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


def test_interior_maximum_of_a_square():
    gt = _square((15, 15), 4, 11, 4, 11)  # 7x7 square, centre (7, 7) at distance 4 from outside
    click = next_click(gt, np.zeros_like(gt))
    assert click == Click(7, 7, True)
    fn_dt, fp_dt = error_distance_maps(gt, np.zeros_like(gt))
    assert fn_dt[7, 7] == 4 and fp_dt.max() == 0


def test_first_maximum_in_row_major_order():
    gt = _square((8, 12), 2, 6, 2, 10)  # 4x8: distance 2 on rows 3-4, cols 3-8
    assert next_click(gt, np.zeros_like(gt)) == Click(3, 3, True)


def test_image_border_counts_as_outside_through_the_padding():
    gt = np.ones((5, 5), dtype=bool)
    # Without the 1-px zero pad the EDT of an all-ones map has no zero to measure from.
    assert next_click(gt, np.zeros_like(gt)) == Click(2, 2, True)
    fn_dt, _ = error_distance_maps(gt, np.zeros_like(gt))
    assert fn_dt[0, 0] == 1 and fn_dt[2, 2] == 3


def test_tie_gives_a_negative_click():
    gt = _square((9, 15), 3, 6, 2, 5)     # 3x3 missed square on the left
    pred = _square((9, 15), 3, 6, 9, 12)  # 3x3 spurious square on the right
    click = next_click(gt, pred)
    assert click == Click(4, 10, False)


def test_larger_error_wins():
    gt = _square((20, 30), 2, 7, 2, 7)     # 5x5 missed: max distance 3
    pred = _square((20, 30), 10, 19, 15, 28)  # 9x13 spurious: max distance 5
    click = next_click(gt, pred)
    assert not click.is_positive and click.coords == (14, 19)
    gt2 = _square((20, 30), 2, 15, 2, 15)  # 13x13 missed: max distance 7 beats 5
    assert next_click(gt2, pred).is_positive


def test_a_clicked_pixel_is_never_chosen_twice():
    gt = _square((7, 7), 2, 5, 2, 5)  # 3x3 object
    clicker = Clicker(gt)
    empty = np.zeros_like(gt)
    seen = []
    for _ in range(9):  # a predictor that ignores clicks: the clicker must move on
        c = clicker.make_next_click(empty)
        assert c is not None and c.is_positive
        assert gt[c.row, c.col]
        seen.append(c.coords)
    assert len(set(seen)) == 9 and seen[0] == (3, 3)
    assert clicker.make_next_click(empty) is None  # every error pixel clicked
    assert len(clicker.clicks) == 9


def test_perfect_prediction_needs_no_click():
    gt = _square((6, 6), 1, 4, 1, 4)
    assert next_click(gt, gt.copy()) is None


def test_ignore_band_is_respected():
    gt = np.zeros((9, 9), dtype=bool)
    ignore = np.zeros_like(gt)
    ignore[:, 4] = True
    pred = np.ones_like(gt)  # everything predicted: two 9x4 spurious slabs beside the band
    # Ignored pixels are not errors: the band splits the region, whose deepest pixels are at
    # distance 2 (not 5, the centre of the full image).
    assert next_click(gt, pred, ignore) == Click(1, 1, False)
    assert next_click(gt, pred) == Click(4, 4, False)
    # An error that lies entirely inside the ignore band asks for no click.
    gt2 = _square((9, 9), 2, 7, 2, 7)
    band = _square((9, 9), 1, 8, 1, 8) & ~_square((9, 9), 3, 6, 3, 6)
    pred2 = _square((9, 9), 1, 8, 1, 8)  # too large by one pixel, inside the band only
    assert next_click(gt2, pred2, band) is None


def _brute_force_click(gt, pred, ignore, not_clicked):
    """Distance to the nearest non-error pixel of the zero-padded map, by exhaustive search."""
    valid = ~ignore
    h, w = gt.shape

    def dt(err):
        pad = np.pad(err, 1)
        zr, zc = np.nonzero(~pad)
        out = np.zeros((h, w))
        for r in range(h):
            for c in range(w):
                if err[r, c]:
                    out[r, c] = np.sqrt(np.min((zr - (r + 1)) ** 2 + (zc - (c + 1)) ** 2))
        return out * not_clicked

    fn = dt(gt & ~pred & valid)
    fp = dt(~gt & pred & valid)
    if fn.max() <= 0 and fp.max() <= 0:
        return None
    pos = fn.max() > fp.max()
    d = fn if pos else fp
    best = d.max()
    for r in range(h):  # first maximum, row-major
        for c in range(w):
            if d[r, c] == best:
                return Click(r, c, bool(pos))
    raise AssertionError("unreachable")


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(5, 14, size=2)
    gt = rng.random((h, w)) < 0.5
    pred = rng.random((h, w)) < 0.5
    ignore = rng.random((h, w)) < 0.1
    not_clicked = rng.random((h, w)) > 0.1
    assert next_click(gt, pred, ignore, not_clicked) == _brute_force_click(gt, pred, ignore, not_clicked)


def test_opencv_edt_equals_scipy_edt_and_gives_the_same_clicks():
    # The fast path (OpenCV precise L2, what RITM calls) against scipy's exact EDT.
    rng = np.random.default_rng(7)
    for _ in range(40):
        h, w = rng.integers(8, 60, size=2)
        blobs = rng.random((h // 4 + 1, w // 4 + 1)) < 0.5
        gt = np.kron(blobs, np.ones((4, 4), bool))[:h, :w]  # blocky masks: many exact ties
        pred = np.roll(gt, int(rng.integers(-3, 4)), axis=1) ^ (rng.random((h, w)) < 0.02)
        for m in (gt & ~pred, ~gt & pred):
            np.testing.assert_allclose(_edt_padded(m), _edt_padded_scipy(m), rtol=1e-6)
        fn_s, fp_s = (_edt_padded_scipy(gt & ~pred), _edt_padded_scipy(~gt & pred))
        pos = fn_s.max() > fp_s.max()
        d = fn_s if pos else fp_s
        r, c = divmod(int(np.argmax(d)), w)
        got = next_click(gt, pred)
        if d.max() == 0:
            assert got is None
        else:
            assert got == Click(r, c, bool(pos))


def test_click_map_disks():
    pos, neg = click_map([Click(2, 2, True), Click(0, 6, False)], (5, 8), radius=1)
    assert pos.sum() == 5 and pos[2, 2] and pos[1, 2] and not pos[1, 1]
    assert neg.sum() == 4 and neg[0, 6] and neg[1, 6] and neg[0, 5] and neg[0, 7]
    p0, _ = click_map([Click(1, 1, True)], (3, 3), radius=0)
    assert p0.sum() == 1


def test_clicker_rejects_bad_shapes():
    with pytest.raises(ValueError, match="2-D"):
        Clicker(np.zeros((2, 2, 2), bool))
    c = Clicker(np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="shape"):
        c.make_next_click(np.zeros((4, 4), bool))
