"""Mask-matching regularisation (MaskMatch) of VTMR (eqs. 1 and 3) and its IoU-targeted perturbation.

Training with MaskMatch makes the prediction insensitive to *which* initial mask of a given
quality the model is refining. Per sample:

1. initial-mask variant 1, ``M'_0,1``: the model's own first-round prediction from a blank mask
   and the initial click(s) (:func:`prediction_variant`);
2. initial-mask variant 2, ``M'_0,2``: the ground truth perturbed by boundary adjustment and
   region interference until its IoU with the ground truth reaches that of ``M'_0,1``
   (:func:`perturb_to_iou`);
3. both restart the click loop for ``K`` extra rounds (``K`` uniform in ``0..3``), giving
   ``M_0,1``, ``M_0,2`` and click sets ``D_1``, ``D_2``;
4. ``O_1,1 = f(I, D_1, M_0,1)`` and ``O_1,2 = f(I, D_2, M_0,2)``; the loss is (eq. 3)
   ``L_sup(O_1,1) + 1(IoU(M_0,1, G) > 0.8) * L_mr`` with (eq. 1)
   ``L_mr = mean(1(sigma(O_1,1) > 0.9) * bce(sigma(O_1,2), sigma(O_1,1)))``, back-propagated
   through ``O_1,2`` only.

Choices the paper leaves open, stated here:

- The binary cross entropy of a soft target ``q`` against itself is its entropy, not zero.
  :func:`mask_matching_loss` subtracts the (detached) entropy of the target, i.e. it reports the
  KL divergence: the gradient is exactly that of eq. 1, and the term is zero when the two
  predictions agree (``entropy_offset=False`` gives the raw eq. 1 value).
- The gate of eq. 3 is applied per sample; ``Gamma`` (element-wise mean) averages over every
  pixel of the sample (unselected pixels count as zero), then over the batch.
- The supplementary's perturbation details are not in the paper text. :func:`perturb_to_iou`
  follows CascadePSP's two kinds of operation (local boundary dilation/erosion and random
  blobs added or cut out near the object) applied one at a time, rejecting an operation that
  overshoots below ``target - tol`` and halving the operation size after a rejection, until the
  IoU is within ``tol`` of the target (``tol`` 0.02 by default).
- Variant 1 sees the first valid click of the sample (the paper's single synthesized click);
  the restarts then use all the sample's clicks plus one new click per round.
- ``M_0,k`` fed to the model is the soft previous prediction (as everywhere in this package);
  the IoU of the gate and the perturbation target use it thresholded at 0.5.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ..config import VtmrConfig

__all__ = [
    "mask_iou",
    "mask_matching_loss",
    "mask_matching_gate",
    "perturb_to_iou",
    "prediction_variant",
    "VtmrResult",
    "vtmr_step",
    "VtmrLossHook",
]

log = logging.getLogger(__name__)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bool masks of equal shape; 1.0 when both are empty."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


# --------------------------------------------------------------------------- eq. 1 and eq. 3
def mask_matching_loss(
    anchor_logits: torch.Tensor,
    logits: torch.Tensor,
    *,
    confidence: float = 0.9,
    entropy_offset: bool = True,
    reduce: bool = True,
) -> torch.Tensor:
    """Eq. 1 between ``O_1,1`` (``anchor_logits``, detached here) and ``O_1,2`` (``logits``).

    Both ``(B, 1, H, W)`` or ``(B, H, W)`` float logits. Returns the batch mean (``reduce``) or
    the per-sample values ``(B,)``.
    """
    import torch
    import torch.nn.functional as F

    if anchor_logits.shape != logits.shape:
        raise ValueError(f"logit shapes differ: {tuple(anchor_logits.shape)} vs {tuple(logits.shape)}")
    q = torch.sigmoid(anchor_logits.detach())
    sel = (q > confidence).to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, q, reduction="none")
    if entropy_offset:
        ent = F.binary_cross_entropy_with_logits(anchor_logits.detach(), q, reduction="none")
        bce = bce - ent
    per_sample = (sel * bce).flatten(1).mean(dim=1)
    return per_sample.mean() if reduce else per_sample


def mask_matching_gate(masks: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor, alpha: float = 0.8):
    """Eq. 3's indicator ``IoU(M_0,1, G) > alpha`` per sample: bool ``(B,)`` (numpy or torch as given).

    ``masks``, ``gt``: bool ``(B, H, W)`` or ``(B, 1, H, W)``; an empty union counts as IoU 1.
    """
    inter = (masks & gt).reshape(masks.shape[0], -1).sum(1)
    union = (masks | gt).reshape(masks.shape[0], -1).sum(1)
    iou = inter / union.clip(min=1) if hasattr(union, "clip") else inter / np.maximum(union, 1)
    iou = iou + (union == 0)
    return iou > alpha


# --------------------------------------------------------------------------- variant 2
def _disc(r: int) -> np.ndarray:
    y, x = np.ogrid[-r : r + 1, -r : r + 1]
    return (x * x + y * y <= r * r).astype(np.uint8)


def _boundary_op(m: np.ndarray, rng: np.random.Generator, size: float) -> np.ndarray:
    """Dilate or erode ``m`` inside a disc window around a random boundary pixel."""
    import cv2

    u8 = m.astype(np.uint8)
    edge = u8 - cv2.erode(u8, np.ones((3, 3), np.uint8))
    if not edge.any():  # empty mask: boundary of nothing, grow from a random pixel instead
        return m
    ys, xs = np.nonzero(edge)
    i = rng.integers(len(ys))
    cy, cx = int(ys[i]), int(xs[i])
    win = max(2, int(round(size * rng.uniform(0.5, 1.0))))
    k = max(1, int(round(win * rng.uniform(0.15, 0.4))))
    h, w = m.shape
    y0, y1, x0, x1 = max(0, cy - win), min(h, cy + win + 1), max(0, cx - win), min(w, cx + win + 1)
    crop = u8[y0:y1, x0:x1]
    op = cv2.dilate if rng.random() < 0.5 else cv2.erode
    changed = op(crop, _disc(k)).astype(bool)
    yy, xx = np.ogrid[y0:y1, x0:x1]
    inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= win * win
    out = m.copy()
    out[y0:y1, x0:x1] = np.where(inside, changed, m[y0:y1, x0:x1])
    return out


def _region_op(m: np.ndarray, rng: np.random.Generator, size: float, bbox: tuple[int, int, int, int]) -> np.ndarray:
    """Add or cut out a random ellipse within the object's (enlarged) bounding box."""
    import cv2

    y0, y1, x0, x1 = bbox
    cy = int(rng.integers(y0, y1 + 1))
    cx = int(rng.integers(x0, x1 + 1))
    ax = (max(1, int(size * rng.uniform(0.2, 0.6))), max(1, int(size * rng.uniform(0.2, 0.6))))
    blob = np.zeros(m.shape, np.uint8)
    cv2.ellipse(blob, (cx, cy), ax, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    b = blob.astype(bool)
    return (m | b) if rng.random() < 0.5 else (m & ~b)


def perturb_to_iou(
    gt: np.ndarray,
    target_iou: float,
    rng: np.random.Generator,
    *,
    tol: float = 0.02,
    max_iters: int = 400,
) -> tuple[np.ndarray, float]:
    """Perturb ``gt`` (bool (H, W), non-empty) until ``|IoU(mask, gt) - target_iou| <= tol``.

    Returns ``(mask bool (H, W), achieved IoU)``. Operations never take the IoU below
    ``target_iou - tol`` (an overshooting one is rejected and the operation size halved), so the
    result approaches the target from above; if ``max_iters`` operations do not get there, the
    closest mask is returned with its IoU (logged). See the module docstring.
    """
    gt = np.asarray(gt, dtype=bool)
    if gt.ndim != 2:
        raise ValueError(f"gt must be (H, W), got shape {gt.shape}")
    area = int(np.count_nonzero(gt))
    if area == 0:
        raise ValueError("cannot perturb an empty mask towards a target IoU")
    if not 0.0 <= target_iou <= 1.0:
        raise ValueError(f"target_iou must be in [0, 1], got {target_iou}")
    m = gt.copy()
    iou = 1.0
    if iou <= target_iou + tol:
        return m, iou
    h, w = gt.shape
    ys, xs = np.nonzero(gt)
    side = float(np.sqrt(area))
    pad = int(0.25 * side) + 1
    bbox = (max(0, ys.min() - pad), min(h - 1, ys.max() + pad), max(0, xs.min() - pad), min(w - 1, xs.max() + pad))
    scale = 0.5  # operation size as a fraction of sqrt(object area)
    for _ in range(max_iters):
        size = max(1.0, scale * side)
        cand = _boundary_op(m, rng, size) if rng.random() < 0.5 else _region_op(m, rng, size, bbox)
        c_iou = mask_iou(cand, gt)
        if c_iou < target_iou - tol:
            scale *= 0.5 if scale > 0.02 else 1.0
            continue
        if c_iou < iou:  # only moves towards the target are kept
            m, iou = cand, c_iou
        if iou <= target_iou + tol:
            return m, iou
    log.debug("perturb_to_iou: reached IoU %.3f for target %.3f after %d operations", iou, target_iou, max_iters)
    return m, iou


# --------------------------------------------------------------------------- variant 1 + training step
def prediction_variant(forward, points, labels, valid, prev_mask):
    """Variant 1: ``sigmoid(f(I, D, blank))`` without gradient (``prev_mask`` is the blank mask)."""
    import torch

    with torch.no_grad():
        return torch.sigmoid(forward(points, labels, valid, prev_mask))


class VtmrResult(NamedTuple):
    """``loss`` = ``sup`` + weight * gated ``L_mr``; ``terms``: floats for logging (``vtmr_sup``,
    ``vtmr_mr``, ``vtmr_gate`` (fraction of samples gated on), ``vtmr_iou01``, ``vtmr_iou02``
    (mean IoU of the two initial variants), ``vtmr_k``); ``logits``: ``O_1,1``."""

    loss: torch.Tensor
    terms: dict[str, float]
    logits: torch.Tensor


def vtmr_step(
    forward: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    sup_loss: Callable[[torch.Tensor], torch.Tensor],
    add_click: Callable,
    points: torch.Tensor,
    labels: torch.Tensor,
    valid: torch.Tensor,
    gt: torch.Tensor,
    rng: np.random.Generator,
    cfg: VtmrConfig,
) -> VtmrResult:
    """One MaskMatch training step (module docstring steps 1-4) for a batch.

    ``forward(points, labels, valid, prev_mask) -> logits (B, 1, H, W)`` with the image bound in;
    ``sup_loss(logits) -> scalar`` (L_sup against ``gt``); ``add_click(prob, points, labels,
    valid) -> (points, labels, valid)`` the training click rule; ``gt`` bool ``(B, 1, H, W)``.
    Variant-1 and the K restart rounds run without gradient; gradient flows through ``O_1,1``
    (L_sup) and ``O_1,2`` (L_mr).
    """
    import torch

    blank = torch.zeros(gt.shape, dtype=torch.float32, device=gt.device)
    # 1. variant 1: first-round prediction from the blank mask and one click (the first valid
    #    click of each sample: VTMR's "a synthesized click point")
    first = valid & (torch.cumsum(valid.long(), dim=1) == 1)
    v1 = prediction_variant(forward, points, labels, first, blank)
    gt_np = gt.detach().cpu().numpy().reshape(gt.shape[0], *gt.shape[-2:]).astype(bool)
    v1_np = (v1.detach().cpu().numpy().reshape(gt_np.shape) > 0.5)
    # 2. variant 2: the ground truth perturbed to the same IoU
    v2 = np.empty_like(gt_np)
    ious1, ious2 = [], []
    for b in range(gt_np.shape[0]):
        target = mask_iou(v1_np[b], gt_np[b])
        ious1.append(target)
        if gt_np[b].any():
            v2[b], got = perturb_to_iou(gt_np[b], target, rng, tol=cfg.iou_tolerance,
                                        max_iters=cfg.max_perturb_iters)
        else:
            v2[b], got = v1_np[b], target
        ious2.append(got)
    m2 = torch.as_tensor(v2, device=gt.device).reshape(gt.shape).float()
    m1 = v1
    # 3. restart both for K extra rounds (no gradient)
    k = int(rng.integers(0, cfg.max_extra_steps + 1))
    p1, l1, va1 = add_click(m1, points, labels, valid)
    p2, l2, va2 = add_click(m2, points, labels, valid)
    with torch.no_grad():
        for _ in range(k):
            m1 = torch.sigmoid(forward(p1, l1, va1, m1))
            p1, l1, va1 = add_click(m1, p1, l1, va1)
            m2 = torch.sigmoid(forward(p2, l2, va2, m2))
            p2, l2, va2 = add_click(m2, p2, l2, va2)
    # 4. the two predictions and eq. 3
    o11 = forward(p1, l1, va1, m1.detach())
    o12 = forward(p2, l2, va2, m2.detach())
    sup = sup_loss(o11)
    gate = mask_matching_gate(m1.detach() > 0.5, gt.bool(), cfg.iou_gate).to(o11.dtype)
    mr_per = mask_matching_loss(o11, o12, confidence=cfg.confidence, reduce=False)
    mr = (gate * mr_per).mean()
    total = sup + cfg.weight * mr
    terms = {
        "vtmr_sup": float(sup.detach()),
        "vtmr_mr": float(mr.detach()),
        "vtmr_gate": float(gate.mean()),
        "vtmr_iou01": float(np.mean(ious1)),
        "vtmr_iou02": float(np.mean(ious2)),
        "vtmr_k": float(k),
    }
    return VtmrResult(total, terms, o11)


class VtmrLossHook:
    """The trainer's ``loss_hook`` with MaskMatch (``vtmr.enabled``), for any training mode.

    Runs :func:`vtmr_step` from the clicks the trainer hands over (after its no-grad rounds) with
    the mode's loss as ``L_sup``; the previous mask handed over is not used (MaskMatch builds its
    own two initial masks). The perturbation and ``K`` draw from ``ctx.rng``.
    """

    RNG_TAG = 0x7A7

    def __init__(self, cfg: VtmrConfig) -> None:
        self.cfg = cfg

    def __call__(self, ctx, points, labels, valid, prev_mask):
        res = vtmr_step(ctx.forward, lambda logits: ctx.loss_fn(logits)[0], ctx.add_click, points, labels,
                        valid, ctx.batch.target > 0.5, ctx.rng(self.RNG_TAG), self.cfg)
        return res.loss, res.terms
