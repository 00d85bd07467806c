"""VTMR mask matching: eq. 1 (zero for identical masks, confident pixels only, gradient through
O_1,2 only), eq. 3's IoU gate, and the IoU-targeted perturbation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mis_pipeline.config import VtmrConfig
from mis_pipeline.losses.vtmr import (
    mask_iou,
    mask_matching_gate,
    mask_matching_loss,
    perturb_to_iou,
    vtmr_step,
)


def test_zero_for_identical_predictions():
    torch.manual_seed(0)
    a = torch.randn(3, 1, 16, 16) * 4
    b = a.clone().requires_grad_(True)
    loss = mask_matching_loss(a, b)
    assert abs(loss.item()) < 1e-6
    loss.backward()
    assert float(b.grad.abs().max()) < 1e-7


def test_only_confident_anchor_pixels_count_and_raw_value():
    anchor = torch.full((1, 1, 4, 4), 0.0)  # sigmoid 0.5: nowhere confident
    other = torch.randn(1, 1, 4, 4, requires_grad=True)
    assert mask_matching_loss(anchor, other).item() == 0.0
    anchor = torch.tensor([[[[5.0, 5.0], [0.0, -5.0]]]])  # only the two 0.993 pixels count
    other = torch.tensor([[[[-1.0, 2.0], [3.0, 3.0]]]], requires_grad=True)
    q = torch.sigmoid(anchor)
    sel = (q > 0.9).float()
    raw = (sel * F.binary_cross_entropy_with_logits(other, q, reduction="none")).mean()
    got_raw = mask_matching_loss(anchor, other, entropy_offset=False)
    assert got_raw.item() == pytest.approx(raw.item(), rel=1e-6)
    ent = (sel * F.binary_cross_entropy_with_logits(anchor, q, reduction="none")).mean()
    assert mask_matching_loss(anchor, other).item() == pytest.approx(raw.item() - ent.item(), rel=1e-6)
    # the same gradient with or without the entropy offset, and none into the anchor
    anchor.requires_grad_(True)
    g1 = torch.autograd.grad(mask_matching_loss(anchor, other), other)[0]
    g2 = torch.autograd.grad(mask_matching_loss(anchor, other, entropy_offset=False), other)[0]
    assert torch.allclose(g1, g2)
    assert g1[0, 0, 1].abs().sum() == 0  # unselected pixels carry no gradient
    loss = mask_matching_loss(anchor, other)
    loss.backward()
    assert anchor.grad is None


def test_gate_at_iou_point_eight():
    gt = np.zeros((1, 10, 10), bool)
    gt[0, :, :10] = True  # 100 px
    m_hi = gt.copy()
    m_hi[0, :, 9] = False  # IoU 0.9
    m_lo = gt.copy()
    m_lo[0, :, 8:] = False  # IoU 0.8, not > 0.8
    masks = np.concatenate([m_hi, m_lo, gt])
    gts = np.concatenate([gt, gt, gt])
    assert mask_matching_gate(masks, gts, 0.8).tolist() == [True, False, True]
    got = mask_matching_gate(torch.tensor(masks), torch.tensor(gts), 0.8)
    assert got.tolist() == [True, False, True]


def _shapes():
    h = w = 96
    yy, xx = np.mgrid[0:h, 0:w]
    disc = (yy - 48) ** 2 + (xx - 40) ** 2 < 25**2
    rect = (yy > 20) & (yy < 70) & (xx > 10) & (xx < 85)
    ell = rect & ~((yy > 40) & (xx > 45))
    small = (yy - 20) ** 2 + (xx - 70) ** 2 < 7**2
    return {"disc": disc, "rect": rect, "L": ell, "small": small}


@pytest.mark.parametrize("shape", ["disc", "rect", "L", "small"])
def test_perturbation_hits_the_target_iou_within_tolerance(shape):
    gt = _shapes()[shape]
    tol = 0.02
    misses = 0
    for seed in range(6):
        for target in (0.5, 0.65, 0.8, 0.9, 0.95):
            m, iou = perturb_to_iou(gt, target, np.random.default_rng(seed), tol=tol)
            assert iou == pytest.approx(mask_iou(m, gt))
            assert iou >= target - tol - 1e-12  # never overshoots below the band
            misses += abs(iou - target) > tol
            assert m.dtype == bool and m.shape == gt.shape
    assert misses == 0


def test_perturbation_identity_cases_and_errors():
    gt = _shapes()["disc"]
    m, iou = perturb_to_iou(gt, 0.99, np.random.default_rng(0))
    assert iou == 1.0 and np.array_equal(m, gt)
    with pytest.raises(ValueError, match="empty"):
        perturb_to_iou(np.zeros((4, 4), bool), 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="target_iou"):
        perturb_to_iou(gt, 1.5, np.random.default_rng(0))


def test_perturbation_is_seeded():
    gt = _shapes()["L"]
    a, _ = perturb_to_iou(gt, 0.7, np.random.default_rng(3))
    b, _ = perturb_to_iou(gt, 0.7, np.random.default_rng(3))
    assert np.array_equal(a, b)


class _Tiny(torch.nn.Module):
    """A 3-layer conv net on [prev, pos disks] for the training step; counts forwards."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Conv2d(2, 8, 3, padding=1), torch.nn.ReLU(),
                                       torch.nn.Conv2d(8, 1, 3, padding=1))
        self.calls = 0

    def forward(self, points, labels, valid, prev):
        self.calls += 1
        b, _, h, w = prev.shape
        disks = torch.zeros(b, 1, h, w)
        for i in range(b):
            for (r, c), ok in zip(points[i].tolist(), valid[i].tolist(), strict=True):
                if ok:
                    disks[i, 0, max(0, r - 2): r + 3, max(0, c - 2): c + 3] = 1
        return self.net(torch.cat([prev, disks], 1)) * 4


def _add_click(prob, points, labels, valid):
    valid = valid.clone()
    free = (~valid).float().argmax(dim=1)
    valid[torch.arange(valid.shape[0]), free] = True
    return points, labels, valid


def test_training_step_combines_terms_and_gates():
    torch.manual_seed(0)
    shapes = _shapes()
    gt = torch.tensor(np.stack([shapes["disc"], shapes["rect"]])[:, None, ::3, ::3].copy())  # (2,1,32,32)
    points = torch.tensor([[[16, 13], [0, 0], [0, 0]], [[15, 16], [0, 0], [0, 0]]])
    labels = torch.ones(2, 3, dtype=torch.int64)
    valid = torch.tensor([[True, False, False]] * 2)
    model = _Tiny()
    sup = lambda o: F.binary_cross_entropy_with_logits(o, gt.float())  # noqa: E731
    cfg = VtmrConfig(enabled=True, iou_gate=0.0, max_extra_steps=0)
    res = vtmr_step(model, sup, _add_click, points, labels, valid, gt, np.random.default_rng(0), cfg)
    assert model.calls == 3  # variant 1, O_1,1, O_1,2 (K = 0)
    t = res.terms
    assert res.loss.item() == pytest.approx(t["vtmr_sup"] + t["vtmr_mr"], rel=1e-5)
    assert abs(t["vtmr_iou02"] - t["vtmr_iou01"]) <= cfg.iou_tolerance + 1e-9 or t["vtmr_iou01"] > 0.98
    res.loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    # gated off everywhere: IoU > 1 is impossible, so only L_sup remains
    cfg_off = VtmrConfig(enabled=True, iou_gate=1.0, max_extra_steps=3)
    res2 = vtmr_step(model, sup, _add_click, points, labels, valid, gt, np.random.default_rng(1), cfg_off)
    assert res2.terms["vtmr_gate"] == 0.0 and res2.terms["vtmr_mr"] == 0.0
    assert res2.loss.item() == pytest.approx(res2.terms["vtmr_sup"], rel=1e-6)


def test_loss_hook_uses_the_step_context():
    from types import SimpleNamespace

    from mis_pipeline.losses.vtmr import VtmrLossHook

    shapes = _shapes()
    gt = torch.tensor(np.stack([shapes["disc"], shapes["rect"]])[:, None, ::3, ::3].copy())
    model = _Tiny()
    ctx = SimpleNamespace(
        forward=model, add_click=_add_click, batch=SimpleNamespace(target=gt.float()),
        loss_fn=lambda o: (F.binary_cross_entropy_with_logits(o, gt.float()), {}),
        rng=lambda tag: np.random.default_rng(tag),
    )
    points = torch.tensor([[[16, 13], [0, 0], [0, 0], [0, 0], [0, 0]], [[15, 16]] + [[0, 0]] * 4])
    valid = torch.tensor([[True, False, False, False, False]] * 2)
    loss, terms = VtmrLossHook(VtmrConfig(enabled=True))(ctx, points, torch.ones(2, 5, dtype=torch.int64),
                                                         valid, torch.zeros(2, 1, 32, 32))
    assert set(terms) >= {"vtmr_sup", "vtmr_mr", "vtmr_gate"} and torch.isfinite(loss)
    assert model.calls == 3 + 2 * int(terms["vtmr_k"])


def test_variant_one_sees_a_single_click():
    shapes = _shapes()
    gt = torch.tensor(np.stack([shapes["disc"], shapes["rect"]])[:, None, ::3, ::3].copy())
    seen = []

    class Rec(_Tiny):
        def forward(self, points, labels, valid, prev):
            seen.append(valid.sum(dim=1).tolist())
            return super().forward(points, labels, valid, prev)

    points = torch.tensor([[[16, 13], [20, 20], [0, 0]], [[15, 16], [10, 12], [0, 0]]])
    valid = torch.tensor([[True, True, False]] * 2)
    sup = lambda o: F.binary_cross_entropy_with_logits(o, gt.float())  # noqa: E731
    vtmr_step(Rec(), sup, _add_click, points, torch.ones(2, 3, dtype=torch.int64), valid, gt,
              np.random.default_rng(0), VtmrConfig(enabled=True, max_extra_steps=0))
    assert seen[0] == [1, 1]  # variant 1: one click per sample
    assert seen[1] == [3, 3] and seen[2] == [3, 3]  # O_1,1 and O_1,2: all clicks plus the new one
