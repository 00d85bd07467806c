"""Real proposals (Weizmann horses, weights-free features, Ward trees): the fast click
sampler and next click equal their plain references on real shapes at the 448 crop size."""

from __future__ import annotations

import numpy as np
import pytest

from mis_pipeline.clicks import next_clicks, sample_clicks
from mis_pipeline.clicks.reference import next_clicks_reference, sample_clicks_reference
from mis_pipeline.config import ClickConfig
from mis_pipeline.proposals import node_mask, other_mask, sample_node

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def horse_proposals(shared_data):
    from PIL import Image

    from mis_pipeline.features import get_backbone
    from mis_pipeline.merge import ward_grid

    files = sorted((shared_data / "WeizmannHorse" / "images").glob("*.png"))[:3]
    assert files, "WeizmannHorse images missing"
    backbone = get_backbone("colour_texture")
    out = []
    for i, f in enumerate(files):
        tree = ward_grid(backbone.features_for_image(np.asarray(Image.open(f).convert("RGB"))))
        rng = np.random.default_rng(i)
        for _ in range(6):
            v = sample_node(tree, rng)
            out.append((node_mask(tree, v, (448, 448)), other_mask(tree, v, (448, 448))))
    return out


def test_sampler_equals_reference_on_real_proposals(horse_proposals):
    for cfg in (ClickConfig(), ClickConfig(first_click_center=True)):
        for i, (mask, other) in enumerate(horse_proposals):
            for oth in (None, other):
                a = sample_clicks(mask, np.random.default_rng(i), cfg, other=oth)
                b = sample_clicks_reference(mask, np.random.default_rng(i), cfg, other=oth)
                for x, y in zip(a, b, strict=True):
                    assert np.array_equal(x, y)


def test_next_click_equals_reference_on_real_proposals(horse_proposals):
    import cv2

    gt = np.stack([m for m, _ in horse_proposals])
    prob = np.stack([np.roll(cv2.GaussianBlur(m.astype(np.float32), (0, 0), 5), 7, axis=0) for m in gt])
    a = next_clicks(prob, gt, np.random.default_rng(0))
    b = next_clicks_reference(prob, gt, np.random.default_rng(0), threshold=0.49, distance="chamfer")
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)
    assert a[2].all()
