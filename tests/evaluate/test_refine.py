"""Colour guided filter: vectorised version vs the window-by-window definition; edge snapping."""

from __future__ import annotations

import numpy as np
import pytest

from mis_pipeline.evaluate.refine import guided_filter, guided_filter_reference


@pytest.mark.parametrize("seed,radius,eps", [(0, 1, 1e-2), (1, 2, 1e-3), (2, 3, 1e-1)])
def test_matches_reference(seed, radius, eps):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 256, (11, 14, 3), dtype=np.uint8)
    p = (rng.random((11, 14)) > 0.5).astype(np.float32)
    np.testing.assert_allclose(guided_filter(g, p, radius, eps), guided_filter_reference(g, p, radius, eps), atol=2e-5)


def test_boundary_moves_onto_the_colour_edge():
    h, w = 40, 60
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :30] = (200, 40, 40)
    img[:, 30:] = (40, 40, 200)
    mask = np.zeros((h, w), np.float32)
    mask[:, :34] = 1.0  # a blocky answer 4 px past the edge
    truth = np.zeros((h, w), bool)
    truth[:, :30] = True
    for sub in (1, 2):
        out = guided_filter(img, mask, radius=8, eps=1e-3, subsample=sub) > 0.5
        # the object stays whole and at most half of the 4 wrong columns remain
        assert out[:, :30].all(), sub
        assert np.count_nonzero(out != truth) <= 2 * h, sub


def test_flat_guide_is_a_box_blur_and_inputs_are_checked():
    g = np.full((9, 9, 3), 0.5, np.float32)
    p = np.zeros((9, 9), np.float32)
    p[4, 4] = 81.0
    out = guided_filter(g, p, 1, 1e-3)
    assert out.sum() == pytest.approx(81.0, rel=1e-4)  # mass preserved away from the border
    with pytest.raises(ValueError):
        guided_filter(g[..., 0], p, 1, 1e-3)
    with pytest.raises(ValueError):
        guided_filter(g, p, 0, 1e-3)
