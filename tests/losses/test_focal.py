"""Normalised focal loss against its closed form."""

from __future__ import annotations

import math

import pytest
import torch

from mis_pipeline.losses import normalized_focal_loss


def _sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_two_pixel_closed_form():
    # logits 2 (target 1) and 1 (target 0): p = s(2), s(1)
    p1, p2 = _sig(2.0), _sig(1.0)
    pt = [p1, 1 - p2]
    beta = [(1 - t) ** 2 for t in pt]
    mult = 2 / sum(beta)
    expected = sum(-0.5 * b * mult * math.log(t) for b, t in zip(beta, pt, strict=True)) / 2
    logits = torch.tensor([[[[2.0, 1.0]]]])
    target = torch.tensor([[[[1.0, 0.0]]]])
    assert normalized_focal_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_alpha_weights_classes_and_batch_mean():
    # alpha = 0.25: positives weigh 0.25, negatives 0.75; the batch loss is the per-sample mean
    logits = torch.tensor([[[[0.5, -1.0, 3.0]]], [[[-2.0, 0.0, 0.3]]]])
    target = torch.tensor([[[[1.0, 0.0, 0.0]]], [[[0.0, 1.0, 1.0]]]])
    per = []
    for xs, ys in zip(logits.view(2, 3).tolist(), target.view(2, 3).tolist(), strict=True):
        pts = [1 - abs(y - _sig(x)) for x, y in zip(xs, ys, strict=True)]
        betas = [(1 - t) ** 3 for t in pts]
        m = 3 / sum(betas)
        per.append(sum(-(0.25 if y else 0.75) * b * m * math.log(t) for b, t, y in zip(betas, pts, ys, strict=True)) / 3)
    got = normalized_focal_loss(logits, target, alpha=0.25, gamma=3)
    assert got.item() == pytest.approx(sum(per) / 2, rel=1e-6)


def test_ignored_pixels_do_not_count():
    logits = torch.tensor([[[[2.0, 1.0, -5.0]]]])
    target = torch.tensor([[[[1.0, 0.0, 1.0]]]])
    ignore = torch.tensor([[[[False, False, True]]]])
    two = normalized_focal_loss(logits[..., :2], target[..., :2])
    assert normalized_focal_loss(logits, target, ignore=ignore).item() == pytest.approx(two.item(), rel=1e-6)


def test_gamma_zero_is_half_bce_and_normaliser_has_no_gradient():
    # gamma = 0: beta = 1, m = 1, so NFL = alpha * BCE for alpha = 0.5 on both classes
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 4, 5, generator=g, requires_grad=True)
    target = (torch.rand(3, 1, 4, 5, generator=g) > 0.5).float()
    nfl = normalized_focal_loss(logits, target, gamma=0.0)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    assert nfl.item() == pytest.approx(0.5 * bce.item(), rel=1e-5)
    nfl2 = normalized_focal_loss(logits, target)
    nfl2.backward()
    assert torch.isfinite(logits.grad).all()
