"""MIS smoothness term (eq. 7) and the public code's variant, against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mis_pipeline.config import LossConfig, from_dict
from mis_pipeline.errors import ConfigError
from mis_pipeline.losses import (
    mis_loss,
    rgb_to_yuv,
    smoothness_loss,
    smoothness_paper,
    smoothness_reference,
)

M = np.array([[0.299, 0.587, 0.114], [-0.147, -0.289, 0.436], [0.615, -0.515, -0.100]])


def _img(rgb_rows: list[list[tuple[int, int, int]]]) -> torch.Tensor:
    """(1, 3, H, W) uint8 image from rows of RGB triples."""
    a = np.array(rgb_rows, dtype=np.uint8)  # (H, W, 3)
    return torch.from_numpy(a).permute(2, 0, 1)[None].contiguous()


def _paper_loop(q: np.ndarray, rgb: np.ndarray, kernel=5, dilation=1, s_xy=4.0, s_l=4.0, s_uv=8**0.5) -> float:
    """Eq. 7 written out pixel by pixel (q (H, W) already the Q values, rgb (H, W, 3) 0-255)."""
    h, w = q.shape
    yuv = rgb.astype(np.float64) @ M.T
    r = kernel // 2
    per_pixel = []
    for i in range(h):
        for j in range(w):
            acc, n = 0.0, 0
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    if dy == dx == 0:
                        continue
                    y2, x2 = i + dy * dilation, j + dx * dilation
                    if not (0 <= y2 < h and 0 <= x2 < w):
                        continue
                    d = yuv[i, j] - yuv[y2, x2]
                    wgt = math.exp(
                        -((dy * dilation) ** 2 + (dx * dilation) ** 2) / (2 * s_xy**2)
                        - d[0] ** 2 / (2 * s_l**2)
                        - (d[1] ** 2 + d[2] ** 2) / (2 * s_uv**2)
                    )
                    acc += wgt * (q[i, j] - q[y2, x2]) ** 2
                    n += 1
            per_pixel.append(acc / n if n else 0.0)
    return float(np.mean(per_pixel))


def _reference_loop(pred: np.ndarray, rgb: np.ndarray) -> float:
    """The public formula written out: 8 neighbours at 2 px, replicated borders (clamped indices
    for values *and* coordinates), transposed YUV matrix, variances 16/16/8, mean of all terms."""
    h, w = pred.shape
    yuv = rgb.astype(np.float64) @ M  # yuv_k = sum_c rgb_c M[c, k]: the transposed product
    terms = []
    for i in range(h):
        for j in range(w):
            for dy in (-2, 0, 2):
                for dx in (-2, 0, 2):
                    if dy == dx == 0:
                        continue
                    y2, x2 = min(max(i + dy, 0), h - 1), min(max(j + dx, 0), w - 1)
                    d = yuv[i, j] - yuv[y2, x2]
                    a = math.exp(
                        -((i - y2) ** 2 + (j - x2) ** 2) / 16 / 2 - d[0] ** 2 / 16 / 2 - (d[1] ** 2 + d[2] ** 2) / 8 / 2
                    )
                    terms.append(a * (pred[i, j] - pred[y2, x2]) ** 2)
    return float(np.mean(terms))


def test_yuv_conversion_correct_and_transposed():
    white = torch.full((1, 3, 1, 1), 255.0)
    assert torch.allclose(rgb_to_yuv(white)[0, :, 0, 0], torch.tensor([255.0, 0.0, 0.0]), atol=1e-3)
    # the public code's product: white -> (196, -55, 115) (DESIGN.md)
    bug = rgb_to_yuv(white, transposed=True)[0, :, 0, 0]
    assert torch.allclose(bug, torch.tensor([195.585, -55.335, 114.75]), atol=1e-3)


@pytest.mark.parametrize("value", [-3.0, 0.0, 2.5])
def test_zero_for_a_constant_prediction(value):
    g = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 9, 11, generator=g)
    logits = torch.full((2, 1, 9, 11), value)
    assert smoothness_paper(logits, img).item() == 0.0
    assert smoothness_paper(logits, img, smooth_on="logits").item() == 0.0
    assert smoothness_reference(logits, img).item() == 0.0


def test_hand_computed_two_pixels():
    # 1x2 image, same grey: each pixel has exactly one neighbour (dxy^2 = 1), |N_i| = 1.
    img = _img([[(100, 100, 100), (100, 100, 100)]])
    logits = torch.tensor([[[[0.0, math.log(3.0)]]]])  # probabilities 0.5 and 0.75
    expected = math.exp(-1 / 32) * 0.25**2  # W = exp(-1 / (2 * 4^2)), (Q_i - Q_j)^2 = 1/16
    assert smoothness_paper(logits, img).item() == pytest.approx(expected, rel=1e-6)
    # on logits, (Q_i - Q_j)^2 = ln(3)^2
    assert smoothness_paper(logits, img, smooth_on="logits").item() == pytest.approx(
        math.exp(-1 / 32) * math.log(3.0) ** 2, rel=1e-6
    )


def test_hand_computed_colour_difference():
    # 1x2 image differing by 10 in red: dY = 2.99, dU = -1.47, dV = 6.15 (correct conversion)
    img = _img([[(100, 100, 100), (110, 100, 100)]])
    logits = torch.tensor([[[[0.0, math.log(3.0)]]]])
    expo = 1 / 32 + 2.99**2 / 32 + (1.47**2 + 6.15**2) / 16
    assert smoothness_paper(logits, img).item() == pytest.approx(math.exp(-expo) / 16, rel=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kernel,dilation", [(5, 1), (3, 2), (3, 1)])
def test_paper_term_matches_pixel_loop(seed, kernel, dilation):
    rng = np.random.default_rng(seed)
    h, w = 6, 7
    rgb = rng.integers(90, 130, size=(h, w, 3)).astype(np.uint8)  # close colours: affinities matter
    logits = rng.normal(size=(h, w))
    img = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    got = smoothness_paper(torch.from_numpy(logits)[None, None].float(), img, kernel=kernel, dilation=dilation)
    q = 1 / (1 + np.exp(-logits))
    assert got.item() == pytest.approx(_paper_loop(q, rgb, kernel, dilation), rel=1e-4)


def test_reference_variant_hand_computed():
    # 1x3 image: white, white, (250, 255, 255); logits 0, 0, 1. Worked out from the published formula:
    # pixel 0: offsets (-2,*) and (2,*) clamp to row 0; neighbours: 5 x itself, 3 x pixel 2 at
    #   dxy^2 = 4 (spatial term 4/32); pixel 1: 2 x itself, 3 x pixel 0 and 3 x pixel 2 at dxy^2 = 1;
    # pixel 2: 5 x itself, 3 x pixel 0 at dxy^2 = 4.
    # Colour (transposed matrix, dR = -5): dY = 5 * 0.299, dU = 5 * 0.587, dV = 5 * 0.114.
    colour = (5 * 0.299) ** 2 / 32 + ((5 * 0.587) ** 2 + (5 * 0.114) ** 2) / 16
    far = math.exp(-4 / 32 - colour)
    near = math.exp(-1 / 32 - colour)
    # (pred_i - pred_j)^2 is 1 exactly for the pairs with pixel 2 and 0 otherwise
    expected = (3 * far + 3 * near + 3 * far) / 24  # mean over 3 pixels x 8 neighbours
    img = _img([[(255, 255, 255), (255, 255, 255), (250, 255, 255)]])
    logits = torch.tensor([[[[0.0, 0.0, 1.0]]]])
    assert smoothness_reference(logits, img).item() == pytest.approx(expected, rel=1e-5)
    # the correct conversion gives a different value (the bug matters)
    colour_ok = (5 * 0.299) ** 2 / 32 + ((5 * 0.147) ** 2 + (5 * 0.615) ** 2) / 16
    assert abs(colour_ok - colour) > 0.05


@pytest.mark.parametrize("seed", [0, 1])
def test_reference_variant_matches_formula_loop(seed):
    rng = np.random.default_rng(seed)
    h, w = 5, 6
    rgb = rng.integers(100, 120, size=(h, w, 3)).astype(np.uint8)
    pred = rng.normal(size=(h, w))
    got = smoothness_reference(torch.from_numpy(pred)[None, None].float(), torch.from_numpy(rgb).permute(2, 0, 1)[None])
    assert got.item() == pytest.approx(_reference_loop(pred, rgb), rel=1e-4)


def test_float_image_is_on_a_0_1_scale():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, size=(8, 8, 3)).astype(np.uint8)
    as_u8 = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    as_float = as_u8.float() / 255.0
    logits = torch.from_numpy(rng.normal(size=(1, 1, 8, 8))).float()
    assert smoothness_paper(logits, as_u8).item() == pytest.approx(smoothness_paper(logits, as_float).item(), rel=1e-5)


def test_config_dispatch_and_validation():
    rng = np.random.default_rng(4)
    img = torch.from_numpy(rng.integers(100, 120, size=(1, 3, 8, 8)).astype(np.uint8))
    logits = torch.from_numpy(rng.normal(size=(1, 1, 8, 8))).float()
    ref = from_dict(LossConfig, {"reference_code": True})
    assert smoothness_loss(logits, img, ref).item() == pytest.approx(smoothness_reference(logits, img).item())
    assert smoothness_loss(logits, img).item() == pytest.approx(smoothness_paper(logits, img).item())
    with pytest.raises(ConfigError, match="loss.smooth_kernel"):
        from_dict(LossConfig, {"smooth_kernel": 4})


def test_mis_loss_is_bce_plus_lambda_smooth_and_has_gradient():
    rng = np.random.default_rng(5)
    img = torch.from_numpy(rng.integers(100, 120, size=(2, 3, 10, 12)).astype(np.uint8))
    logits = torch.from_numpy(rng.normal(size=(2, 1, 10, 12))).float().requires_grad_(True)
    target = torch.from_numpy(rng.random((2, 1, 10, 12)) > 0.5)
    total, terms = mis_loss(logits, target, img)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target.float())
    assert terms["bce"].item() == pytest.approx(bce.item(), rel=1e-6)
    assert terms["smooth"].item() == pytest.approx(smoothness_paper(logits, img).item(), rel=1e-6)
    assert total.item() == pytest.approx(bce.item() + 10 * terms["smooth"].item(), rel=1e-6)
    total.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    total0, terms0 = mis_loss(logits, target, img, from_dict(LossConfig, {"smooth_weight": 0}))
    assert total0.item() == pytest.approx(bce.item()) and terms0["smooth"].item() == 0.0
