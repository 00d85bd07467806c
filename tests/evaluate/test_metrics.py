"""IoU with the ignore label, NoC / NoF arithmetic on synthetic IoU sequences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mis_pipeline.evaluate.metrics import iou, mean_iou_curve, noc, noc_table, target_key


def test_iou_plain_and_with_ignore():
    gt = np.zeros((4, 4), bool)
    gt[:2, :2] = True  # 4 px
    pred = np.zeros((4, 4), bool)
    pred[:2, :3] = True  # 6 px, 4 of them right
    assert iou(pred, gt) == pytest.approx(4 / 6)
    ignore = np.zeros((4, 4), bool)
    ignore[:, 2] = True  # the two wrong pixels are ignored
    assert iou(pred, gt, ignore) == 1.0
    ignore2 = np.zeros((4, 4), bool)
    ignore2[0, 0] = True  # an ignored object pixel leaves intersection and union
    assert iou(pred, gt, ignore2) == pytest.approx(3 / 5)


def test_iou_of_empty_union_is_one_and_shapes_are_checked():
    z = np.zeros((3, 3), bool)
    assert iou(z, z) == 1.0
    with pytest.raises(ValueError, match="shape"):
        iou(np.zeros((2, 2), bool), z)


def test_noc_first_click_reaching_the_target():
    seq = [0.5, 0.84, 0.86, 0.91, 0.89, 0.96] + [0.96] * 14
    assert noc(seq, 0.80, 20) == (2, True)
    assert noc(seq, 0.85, 20) == (3, True)
    assert noc(seq, 0.90, 20) == (4, True)  # a later dip does not matter
    assert noc(seq, 0.95, 20) == (6, True)
    assert noc([0.9] + [0.0] * 19, 0.9, 20) == (1, True)  # ">=" : equal counts as reached


def test_never_reached_is_the_budget_and_a_failure():
    seq = [0.1 * k / 20 for k in range(20)]
    assert noc(seq, 0.9, 20) == (20, False)
    last = [0.0] * 19 + [0.95]
    assert noc(last, 0.9, 20) == (20, True)  # reached at the last click: NoC 20, not a failure
    assert noc(last + [1.0], 0.9, 20) == (20, True)  # values past the budget are not counted


def test_noc_table_means_and_failure_counts_both_ways():
    curves = [
        [0.95] * 20,                 # NoC 1 everywhere
        [0.5] * 4 + [0.9] * 16,      # NoC@80/85/90 = 5, never 95
        [0.2] * 20,                  # never
        [0.2] * 19 + [0.87],         # reached 80 and 85 on the last click: NoC 20, not "never"
    ]
    t = noc_table(curves, (0.80, 0.85, 0.90, 0.95), 20)
    assert t["noc"] == {"80": pytest.approx(46 / 4), "85": pytest.approx(46 / 4),
                        "90": pytest.approx(46 / 4), "95": pytest.approx(61 / 4)}
    assert t["nof_never_reached"] == {"80": 1, "85": 1, "90": 2, "95": 3}
    # RITM's / SimpleClick's ">=20" column: NoC == max_clicks, the last-click hit included
    assert t["nof_noc_eq_max_clicks"] == {"80": 2, "85": 2, "90": 2, "95": 3}
    assert "nof" not in t  # no ambiguous key
    empty = noc_table([], (0.9,), 20)
    assert math.isnan(empty["noc"]["90"])
    assert empty["nof_never_reached"]["90"] == 0 and empty["nof_noc_eq_max_clicks"]["90"] == 0


def test_mean_iou_curve_and_target_keys():
    curves = np.array([[0.2, 0.4], [0.6, 0.8]])
    assert mean_iou_curve(curves, 2) == pytest.approx([0.4, 0.6])
    with pytest.raises(ValueError, match="shape"):
        mean_iou_curve(curves, 3)
    assert [target_key(t) for t in (0.8, 0.85, 0.9, 0.95, 0.875, 1.0)] == ["80", "85", "90", "95", "87.5", "100"]
