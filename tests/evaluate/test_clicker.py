"""The RITM clicker on hand-made masks with known answers, and against brute-force references."""

from __future__ import annotations

import numpy as np
import pytest

from mis_pipeline.evaluate.clicker import (
    Click,
    Clicker,
    _squared_edt_padded,
    _squared_edt_reference,
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
    assert fn_dt[7, 7] == 16 and fp_dt.max() == 0  # squared px


def test_first_maximum_in_row_major_order():
    gt = _square((8, 12), 2, 6, 2, 10)  # 4x8: distance 2 on rows 3-4, cols 3-8
    assert next_click(gt, np.zeros_like(gt)) == Click(3, 3, True)


def test_image_border_counts_as_outside_through_the_padding():
    gt = np.ones((5, 5), dtype=bool)
    # Without the 1-px zero pad the EDT of an all-ones map has no zero to measure from.
    assert next_click(gt, np.zeros_like(gt)) == Click(2, 2, True)
    fn_dt, _ = error_distance_maps(gt, np.zeros_like(gt))
    assert fn_dt[0, 0] == 1 and fn_dt[2, 2] == 9  # squared px


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


@pytest.mark.parametrize("seed", range(4))
def test_exact_squared_edt_equals_the_scipy_reference(seed):
    # The compiled integer kernel against scipy's feature transform, on random and blocky masks
    # (blocky masks have many exact ties), including one-row and one-column maps.
    rng = np.random.default_rng(seed)
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(1, 50, size=2))
        if rng.random() < 0.5:
            m = rng.random((h, w)) < rng.random()
        else:
            blobs = rng.random((h // 4 + 1, w // 4 + 1)) < 0.5
            m = np.kron(blobs, np.ones((4, 4), bool))[:h, :w]
        got = _squared_edt_padded(m)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, _squared_edt_reference(m))


def test_squared_distances_are_exact_integers_where_opencv_float32_rounds():
    # A 401x401 error region: the centre is at squared distance 201**2 = 40401 from the pad, an
    # integer here; sqrt of it is what RITM's transform approximates in float32.
    m = np.ones((401, 401), bool)
    sq = _squared_edt_padded(m)
    assert sq[200, 200] == 201**2 and sq[0, 0] == 1 and sq[0, 200] == 1
    assert sq.max() == 201**2 and np.count_nonzero(sq == sq.max()) == 1


def test_same_answer_when_repeated_300_times():
    # The failure mode: among tied maxima the chosen click must not depend on the call.
    # A ring of equal-distance maxima (two separated squares of equal size, one missed and one
    # spurious, plus a wide missed slab with a flat ridge of ties) asked 300 times over fresh
    # copies placed at different memory offsets.
    gt = np.zeros((120, 160), bool)
    gt[10:60, 10:150] = True      # 50x140 missed slab: its ridge is a row of tied maxima
    pred = np.zeros_like(gt)
    pred[70:110, 20:60] = True    # 40x40 spurious square
    answers = set()
    for k in range(300):
        buf = np.zeros(gt.size + k + 1, bool)[k + 1 :]  # a different alignment each time
        g = buf.reshape(gt.shape)
        g[...] = gt
        answers.add(next_click(g, pred.copy()))
    assert answers == {Click(34, 34, True)}


def test_ties_between_regions_are_negative_on_exact_distances():
    # Two 7x7 squares: equal squared maxima (16) must tie exactly and give the negative click.
    gt = _square((20, 30), 3, 10, 3, 10)
    pred = _square((20, 30), 5, 12, 18, 25)
    fn_sq, fp_sq = error_distance_maps(gt, pred)
    assert fn_sq.max() == fp_sq.max() == 16
    assert next_click(gt, pred) == Click(8, 21, False)


def test_nothing_left_to_click_returns_none_where_ritm_clicks_at_the_origin():
    # RITM's clicker emits a negative click at (0, 0) here (module docstring); we ask for none.
    gt = _square((5, 5), 1, 3, 1, 3)
    clicker = Clicker(gt)
    assert clicker.make_next_click(gt) is None and clicker.clicks == []
    fn_sq, fp_sq = error_distance_maps(gt, gt)
    assert fn_sq.max() == fp_sq.max() == 0  # RITM: tie -> negative, first zero -> (0, 0)


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


@pytest.mark.slow
@pytest.mark.data
def test_grabcut_person5_second_click_is_one_answer_in_300_calls(grabcut_dir):
    # The real case: GrabCut person5, click 2 after the tree predictor's first answer.
    # (182, 173) and (183, 173) tie exactly (squared distance 370 px²); OpenCV's float32 values
    # of the two differed by 1 ULP from process to process, so either was chosen. Asked 300
    # times over copies of the inputs at different memory offsets, the exact transform gives
    # one answer: the first row-major maximum.
    from mis_pipeline.evaluate import make_predictor, open_dataset

    ds = open_dataset("grabcut", grabcut_dir)
    s = ds.load(ds.ids.index("person5"))
    pred = make_predictor("tree")
    pred.reset(s.image)
    clicker = Clicker(s.gt, s.ignore)
    first = clicker.make_next_click(np.zeros_like(s.gt))
    prob = pred.predict(list(clicker.clicks), np.zeros(s.gt.shape, np.float32))
    mask = prob > 0.49
    not_clicked = clicker._not_clicked
    answers = set()
    for k in range(300):
        buf = np.zeros(mask.size + k + 1, bool)[k + 1 :].reshape(mask.shape)
        buf[...] = mask
        answers.add(next_click(s.gt.copy(), buf, s.ignore.copy(), not_clicked.copy()))
    assert first == Click(246, 159, True)
    fn_sq, _ = error_distance_maps(s.gt, mask, s.ignore, not_clicked)
    assert fn_sq[182, 173] == fn_sq[183, 173] == fn_sq.max() == 370
    assert answers == {Click(182, 173, True)}
