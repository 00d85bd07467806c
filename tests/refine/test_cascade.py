"""Cascade-Forward Refinement: CFR-0 is one plain forward, CFR-n runs n+1, A-CFR stops on <= 20 px."""

from __future__ import annotations

import numpy as np
import pytest

from mis_pipeline.refine import cascade_forward, cfr_applies, changed_pixels


class _Counter:
    """forward(prev) = the next of a scripted sequence of masks; records each input."""

    def __init__(self, outputs):
        self.outputs = list(outputs)
        self.inputs = []

    def __call__(self, prev):
        self.inputs.append(prev)
        return self.outputs[len(self.inputs) - 1]


def _masks(n_changed, hw=(20, 20)):
    """Masks m_0.. where m_i differs from m_(i-1) in n_changed[i-1] pixels."""
    rng = np.random.default_rng(0)
    m = np.zeros(hw, dtype=np.float32)
    out = [m.copy()]
    for k in n_changed:
        m = m.copy()
        idx = rng.choice(m.size, size=k, replace=False)
        m.flat[idx] = 1 - m.flat[idx]
        out.append(m)
    return out


def test_cfr0_is_the_plain_forward():
    prev = np.zeros((4, 4), np.float32)
    f = _Counter([np.full((4, 4), 0.7, np.float32)])
    r = cascade_forward(f, prev, steps=0)
    assert r.forwards == 1 and r.changed == []
    assert f.inputs[0] is prev and r.prob is f.outputs[0]


def test_cfr_feeds_each_output_back():
    outs = _masks([50, 40, 30])
    f = _Counter(outs)
    prev = np.zeros((20, 20), np.float32)
    r = cascade_forward(f, prev, steps=3)
    assert r.forwards == 4
    assert f.inputs[0] is prev
    assert all(f.inputs[i] is outs[i - 1] for i in range(1, 4))  # eq. 5: Y_i = f(Y_(i-1))
    assert r.prob is outs[3]
    assert r.changed == [50, 40, 30]


@pytest.mark.parametrize(
    ("changes", "forwards"),
    [([50, 21, 20, 5], 4), ([50, 40, 30, 25], 5), ([0, 100, 100, 100], 2), ([21, 19, 100, 100], 3)],
)
def test_acfr_stops_at_the_first_change_of_at_most_threshold(changes, forwards):
    outs = _masks(changes)
    f = _Counter(outs)
    r = cascade_forward(f, np.zeros((20, 20), np.float32), steps=4, adaptive=True, threshold=20)
    assert r.forwards == forwards
    assert r.prob is outs[forwards - 1]
    # Fixed CFR-4 never stops early.
    assert cascade_forward(_Counter(outs), np.zeros((20, 20)), steps=4).forwards == 5


def test_acfr_never_compares_the_coarse_output_with_the_previous_click():
    outs = _masks([100, 100])
    # the coarse output equals the previous mask (0 changed pixels) but A-CFR still refines
    r = cascade_forward(_Counter(outs[1:]), outs[1], steps=1, adaptive=True)
    assert r.forwards == 2


def test_changed_pixels_threshold_and_torch():
    import torch

    a = np.array([0.48, 0.5, 0.9, 0.1])
    b = np.array([0.5, 0.5, 0.2, 0.1])
    assert changed_pixels(a, b) == 2
    assert changed_pixels(torch.tensor(a), torch.tensor(b)) == 2


def test_cfr_applies_and_errors():
    assert cfr_applies(5, None)
    assert cfr_applies(1, 1) and not cfr_applies(2, 1)
    with pytest.raises(ValueError, match="steps"):
        cascade_forward(lambda p: p, np.zeros(2), steps=-1)
