"""Iterative Click Loss (ICL) of CFR-ICL (Sun et al., eq. 3).

The click sequence of eq. 1 is rolled out inside one training step: a forward pass with the
current clicks and the previous (detached) prediction, a loss term on its output, then one new
click drawn from the errors of that output, and again. The terms are summed with weights
``beta_i`` that grow with the click index (``[1, 2, 3]``), so outputs reached after more clicks
cost more and the model is pushed to need fewer clicks::

    L_ICL = sum_i beta_i * L(Y^i, G)

Which outputs carry a term is where the paper and the public code differ:

- public code (default, ``paper_indexing=False``): the number of steps ``n`` is drawn uniformly
  in ``1..steps`` per batch; every forward of the rollout, the first one (from the zero mask or
  the given initial mask) included, carries ``beta_1..beta_n``;
- paper (``paper_indexing=True``): ``Y^0`` (zero mask, initial clicks) is computed without
  gradient and without a term, and the next ``n`` outputs carry ``beta_1..beta_n``.

In both the previous mask fed to each forward is detached (the public code's "v2"), so every
term back-propagates through exactly one forward pass: those are the "gradient-carrying steps".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ..config import IclConfig

__all__ = ["icl_weights", "draw_icl_steps", "iterative_click_loss", "icl_rollout", "icl_from_config", "IclResult",
           "IclLossHook"]

log = logging.getLogger(__name__)


def icl_weights(num_steps: int, weights: Sequence[float] = (1.0, 2.0, 3.0)) -> tuple[float, ...]:
    """The ``beta_i`` of the ``num_steps`` gradient-carrying steps (the first ``num_steps`` weights)."""
    if num_steps < 1:
        raise ConfigError("icl.steps", num_steps, "an integer >= 1")
    if len(weights) < num_steps:
        raise ConfigError("icl.weights", tuple(weights), f"at least {num_steps} weights")
    return tuple(float(w) for w in weights[:num_steps])


def draw_icl_steps(rng: np.random.Generator, max_steps: int, random_steps: bool = True) -> int:
    """Number of gradient-carrying steps of one batch: uniform in ``1..max_steps`` or ``max_steps``."""
    if max_steps < 1:
        raise ConfigError("icl.steps", max_steps, "an integer >= 1")
    return int(rng.integers(1, max_steps + 1)) if random_steps else int(max_steps)


def iterative_click_loss(
    step_losses: Sequence[torch.Tensor], weights: Sequence[float]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 3: ``sum_i weights[i] * step_losses[i]``; also the unweighted terms for logging."""
    if not step_losses:
        raise ValueError("iterative_click_loss needs at least one step loss")
    w = icl_weights(len(step_losses), weights)
    total = step_losses[0] * w[0]
    for wi, li in zip(w[1:], step_losses[1:], strict=True):
        total = total + li * wi
    terms = {f"icl_{i}": float(li.detach()) for i, li in enumerate(step_losses)}
    return total, terms


class IclResult(NamedTuple):
    """Output of :func:`icl_rollout`.

    loss: scalar tensor (eq. 3); terms: unweighted per-step losses (``icl_0`` ...);
    logits: the last output ``(B, 1, H, W)``; points/labels/valid: the clicks after the rollout
    (the input clicks plus one per step but the last); steps: number of gradient-carrying steps.
    """

    loss: torch.Tensor
    terms: dict[str, float]
    logits: torch.Tensor
    points: torch.Tensor
    labels: torch.Tensor
    valid: torch.Tensor
    steps: int


def icl_rollout(
    forward: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    add_click: Callable[
        [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
        tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    ],
    points: torch.Tensor,
    labels: torch.Tensor,
    valid: torch.Tensor,
    prev_mask: torch.Tensor,
    *,
    num_steps: int,
    weights: Sequence[float] = (1.0, 2.0, 3.0),
    paper_indexing: bool = False,
) -> IclResult:
    """Roll out eq. 1 for ``num_steps`` gradient-carrying steps and return eq. 3.

    Parameters
    ----------
    forward : ``forward(points, labels, valid, prev_mask) -> logits (B, 1, H, W)``; the image
        and any reference prompt are bound in by the caller.
    loss_fn : ``loss_fn(logits) -> scalar`` (normalised focal loss against the target in CFR-ICL).
    add_click : ``add_click(prob (B, 1, H, W), points, labels, valid) -> (points, labels, valid)``,
        the sampling function S of eq. 1 (one new click per sample from the errors of ``prob``).
    points, labels, valid : initial clicks ``(B, K, 2)`` (row, col), ``(B, K)``, ``(B, K)`` (P^0).
    prev_mask : ``(B, 1, H, W)`` float in [0, 1], the initial mask (zeros in eq. 1).
    num_steps, weights, paper_indexing : see the module docstring.
    """
    import torch

    w = icl_weights(num_steps, weights)
    prev = prev_mask.detach()
    if paper_indexing:
        with torch.no_grad():
            logits0 = forward(points, labels, valid, prev)
        prev = torch.sigmoid(logits0).detach()
        points, labels, valid = add_click(prev, points, labels, valid)
    losses = []
    logits = prev  # replaced in the loop (num_steps >= 1)
    for i in range(num_steps):
        logits = forward(points, labels, valid, prev)
        losses.append(loss_fn(logits))
        prev = torch.sigmoid(logits).detach()
        if i < num_steps - 1:
            points, labels, valid = add_click(prev, points, labels, valid)
    total, terms = iterative_click_loss(losses, w)
    return IclResult(total, terms, logits, points, labels, valid, num_steps)


def icl_from_config(cfg: IclConfig, rng: np.random.Generator) -> tuple[int, tuple[float, ...], bool]:
    """``(num_steps, weights, paper_indexing)`` of one batch under ``cfg``."""
    n = draw_icl_steps(rng, cfg.steps, cfg.random_steps)
    return n, icl_weights(n, cfg.weights), cfg.paper_indexing


class IclLossHook:
    """The trainer's ``loss_hook`` for ``train.loss = "icl"`` (see :mod:`mis_pipeline.train.step`).

    Replaces the single gradient-carrying forward by :func:`icl_rollout` from the clicks and
    previous mask the trainer hands over (after its no-grad rounds; ``train.max_num_next_clicks
    = 0`` starts from the random clicks and a zero mask, as the public CFR-ICL code does). The
    number of steps is drawn per optimizer step from ``ctx.rng`` (the same on every worker).
    Terms: the unweighted per-step losses ``icl_i`` and ``icl_steps``.
    """

    RNG_TAG = 0x1C1

    def __init__(self, cfg: IclConfig) -> None:
        self.cfg = cfg

    def __call__(self, ctx, points, labels, valid, prev_mask):
        n, w, paper = icl_from_config(self.cfg, ctx.rng(self.RNG_TAG))
        res = icl_rollout(ctx.forward, lambda logits: ctx.loss_fn(logits)[0], ctx.add_click,
                          points, labels, valid, prev_mask, num_steps=n, weights=w, paper_indexing=paper)
        return res.loss, {**res.terms, "icl_steps": float(n)}
