"""The one optimizer step shared by the plain loop and Ray Train workers.

RITM iterative training (``isegm/engine/trainer.py`` ``batch_forward``), as SimpleClick and MIS
use it: per optimizer step, ``n`` rounds (uniform in ``0 .. train.max_num_next_clicks``, one
draw per step) run without gradient and with the model in eval mode; each round predicts
from the current clicks and the previous soft mask, adds one click per sample from the error
region (:func:`mis_pipeline.clicks.next_clicks`, the random-pixel rule, threshold 0.49) and
feeds the sigmoid of the prediction back as the next previous mask. The forward that carries
gradient then sees the final clicks and that soft mask (zeros when ``n = 0``).

Extension points (used by CFR-ICL / VTMR / RefCut, issue 16) without touching this module:

- ``loss_hook(ctx, points, labels, valid, prev_mask) -> (loss, terms)`` replaces the single
  gradient-carrying forward: it may call ``ctx.forward`` several times (an iterative click
  loss rolls out more clicks with ``ctx.add_click``), add regularisers on ``ctx.batch``, etc.
  :func:`default_loss_hook` is RITM's one forward plus ``ctx.loss_fn``.
- ``prompt_fn(model, batch) -> prompt | None`` computes a per-sample prompt tensor (``(B, D)``
  or ``(B, N, D)``) passed as ``prompt=`` to every forward of the step (RefCut's reference
  tokens, built from ``batch.extra`` such as a reference image), with gradient.
- ``batch.extra`` carries every collated key the trainer does not use itself, on the device.

Randomness: each sample's click in round ``r`` comes from
:func:`~mis_pipeline.train.schedule.click_rng` ``(seed, epoch, index, r)``, and torch's
generator is reseeded per micro-batch, so results depend neither on the worker count nor on
where a run was resumed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import schedule

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "TrainBatch",
    "StepContext",
    "StepResult",
    "to_train_batch",
    "default_loss_hook",
    "click_rounds",
    "micro_step",
    "train_step",
    "LossFn",
    "LossHook",
    "PromptFn",
]

log = logging.getLogger(__name__)

#: ``loss_fn(logits (B,1,H,W), batch) -> (scalar loss, {term name: float})``
LossFn = Callable[["torch.Tensor", "TrainBatch"], tuple["torch.Tensor", dict[str, float]]]
#: ``loss_hook(ctx, points, labels, valid, prev_mask) -> (scalar loss, {term name: float})``
LossHook = Callable[..., tuple["torch.Tensor", dict[str, float]]]
#: ``prompt_fn(model, batch) -> prompt tensor or None``
PromptFn = Callable[[Any, "TrainBatch"], "torch.Tensor | None"]

# Keys of a collated training batch the trainer consumes itself; every other key goes to extra.
_OWN_KEYS = ("image", "mask", "points", "labels", "valid")


class TrainBatch(NamedTuple):
    """One micro-batch on the training device.

    image: (B, 3, H, W) float32 in [0, 1]; target: (B, 1, H, W) float32 in {0, 1} (the proposal
    or annotation); points: (B, K, 2) int64 (row, col) crop pixels; labels: (B, K) int64 (1
    positive, 0 negative); valid: (B, K) bool; epoch, index: (B,) int64 numpy (the sample keys
    that seed its clicks); extra: the other collated keys (tensors moved to the device).
    """

    image: torch.Tensor
    target: torch.Tensor
    points: torch.Tensor
    labels: torch.Tensor
    valid: torch.Tensor
    epoch: np.ndarray
    index: np.ndarray
    extra: dict[str, Any]


def to_train_batch(batch: Mapping[str, Any], flat: np.ndarray, epoch_size: int, device: Any) -> TrainBatch:
    """Collated batch (``data.collate``: image uint8 (B, H, W, 3), mask bool (B, H, W), clicks)
    -> :class:`TrainBatch` on ``device``. ``flat`` are the samples' flat indices (schedule)."""
    import torch

    def dev(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        return x.to(device, non_blocking=True) if isinstance(x, torch.Tensor) else x

    image = dev(batch["image"])
    if image.ndim != 4 or image.shape[-1] != 3:
        raise ValueError(f"batch 'image' must be (B, H, W, 3) uint8, got shape {tuple(image.shape)}")
    image = image.permute(0, 3, 1, 2).float().div_(255.0)
    target = dev(batch["mask"]).unsqueeze(1).float()
    if len(flat) != image.shape[0]:
        raise ValueError(f"{len(flat)} flat indices for a batch of {image.shape[0]} samples")
    epoch, index = schedule.flat_to_epoch_index(flat, epoch_size)
    extra = {k: dev(v) for k, v in batch.items() if k not in _OWN_KEYS}
    return TrainBatch(
        image=image,
        target=target,
        points=dev(batch["points"]).long(),
        labels=dev(batch["labels"]).long(),
        valid=dev(batch["valid"]).bool(),
        epoch=epoch,
        index=index,
        extra=extra,
    )


@dataclass
class StepContext:
    """What one micro-batch's loss computation sees (handed to the loss hook).

    ``forward(points, labels, valid, prev_mask) -> logits (B, 1, H, W) float32`` runs the model
    under the step's autocast with the batch's image and prompt; ``add_click(prob (B, 1, H, W),
    points, labels, valid) -> (points, labels, valid)`` adds one click per sample from the
    errors of ``prob`` (the next round's seeded generator each call); ``loss_fn(logits) ->
    (loss, terms)`` is the mode's loss against ``batch.target``; ``rng(tag)`` is a generator
    for per-step draws of a hook (same on every worker and micro-batch of the step).
    """

    model: Any
    batch: TrainBatch
    base_loss: LossFn
    seed: int
    step: int
    threshold: float = 0.49
    distance: str = "chamfer"
    autocast: Callable[[], Any] = contextlib.nullcontext
    prompt: Any = None
    round: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    def forward(self, points: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor,
                prev_mask: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            logits = self.model(self.batch.image, prev_mask, points, labels, valid, prompt=self.prompt)
        return logits.float()

    def add_click(self, prob: torch.Tensor, points: torch.Tensor, labels: torch.Tensor,
                  valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = add_error_clicks(prob, self.batch, points, labels, valid, seed=self.seed,
                               round_=self.round, threshold=self.threshold, distance=self.distance)
        self.round += 1
        return out

    def loss_fn(self, logits: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        return self.base_loss(logits, self.batch)

    def rng(self, tag: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, 0x400C, int(tag), self.step]))


def add_error_clicks(
    prob: torch.Tensor,
    batch: TrainBatch,
    points: torch.Tensor,
    labels: torch.Tensor,
    valid: torch.Tensor,
    *,
    seed: int,
    round_: int,
    threshold: float,
    distance: str = "chamfer",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One iterative-training click per sample from the errors of ``prob`` (B, 1, H, W) in [0, 1].

    Each sample draws from its own generator ``click_rng(seed, epoch, index, round_)``; a sample
    with no error region (``found`` False) gets no click. The click goes into the first free slot
    (:func:`mis_pipeline.clicks.add_clicks`).
    """
    import torch

    from ..clicks import add_clicks, next_clicks

    p = prob[:, 0].detach().float().cpu().numpy()
    gt = batch.target[:, 0].detach().cpu().numpy() > 0.5
    n = p.shape[0]
    new_points = np.zeros((n, 2), np.int32)
    new_labels = np.zeros(n, np.int8)
    found = np.zeros(n, bool)
    for b in range(n):
        rng = schedule.click_rng(seed, int(batch.epoch[b]), int(batch.index[b]), round_)
        pts, lab, fnd = next_clicks(p[b : b + 1], gt[b : b + 1], rng, threshold=threshold,
                                    distance=distance)
        new_points[b], new_labels[b], found[b] = pts[0], lab[0], fnd[0]
    dev = points.device
    return add_clicks(
        points,
        labels,
        valid,
        torch.from_numpy(new_points).to(dev, points.dtype),
        torch.from_numpy(new_labels).to(dev, labels.dtype),
        torch.from_numpy(found).to(dev),
    )


def click_rounds(ctx: StepContext, num_rounds: int, *, drop_prob: float = 0.0
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """RITM's no-grad rounds: ``(points, labels, valid, prev_mask)`` for the trained forward.

    The model is put in eval mode for the rounds and restored after. ``drop_prob`` zeroes the
    fed-back mask of each sample with that probability (seeded per sample) when ``num_rounds > 0``.
    """
    import torch

    b = ctx.batch
    points, labels, valid = b.points, b.labels, b.valid
    prev = torch.zeros_like(b.target)
    if num_rounds <= 0:
        return points, labels, valid, prev
    was_training = ctx.model.training
    ctx.model.eval()
    try:
        with torch.no_grad():
            for _ in range(num_rounds):
                prob = torch.sigmoid(ctx.forward(points, labels, valid, prev))
                points, labels, valid = ctx.add_click(prob, points, labels, valid)
                prev = prob
    finally:
        ctx.model.train(was_training)
    if drop_prob > 0:
        drop = np.array([schedule.drop_rng(ctx.seed, int(e), int(i)).random() < drop_prob
                         for e, i in zip(b.epoch, b.index, strict=True)])
        if drop.any():
            prev = prev.clone()
            prev[torch.from_numpy(drop).to(prev.device)] = 0
    return points, labels, valid, prev


def default_loss_hook(ctx: StepContext, points: torch.Tensor, labels: torch.Tensor,
                      valid: torch.Tensor, prev_mask: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """RITM: one forward with gradient and the mode's loss on its output."""
    return ctx.loss_fn(ctx.forward(points, labels, valid, prev_mask))


def micro_step(
    model: Any,
    batch: TrainBatch,
    *,
    loss_fn: LossFn,
    seed: int,
    step: int,
    num_rounds: int,
    threshold: float = 0.49,
    distance: str = "chamfer",
    drop_prob: float = 0.0,
    autocast: Callable[[], Any] = contextlib.nullcontext,
    loss_hook: LossHook | None = None,
    prompt_fn: PromptFn | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one micro-batch (graph attached): the no-grad rounds, then the loss hook."""
    ctx = StepContext(model=model, batch=batch, base_loss=loss_fn, seed=seed, step=step,
                      threshold=threshold, distance=distance, autocast=autocast)
    if prompt_fn is not None:
        with autocast():
            ctx.prompt = prompt_fn(model, batch)
    points, labels, valid, prev = click_rounds(ctx, num_rounds, drop_prob=drop_prob)
    return (loss_hook or default_loss_hook)(ctx, points, labels, valid, prev)


class StepResult(NamedTuple):
    """One optimizer step: mean loss and terms over its micro-batches (this worker's), samples seen."""

    loss: float
    terms: dict[str, float]
    samples: int
    num_rounds: int


def train_step(
    model: Any,
    optimizer: Any,
    micro: Iterable[tuple[schedule.MicroBatch, TrainBatch]],
    *,
    step: int,
    accumulate: int,
    loss_fn: LossFn,
    seed: int,
    max_rounds: int,
    threshold: float = 0.49,
    distance: str = "chamfer",
    drop_prob: float = 0.0,
    autocast: Callable[[], Any] = contextlib.nullcontext,
    reduce_grads: Callable[[Any], None] | None = None,
    loss_hook: LossHook | None = None,
    prompt_fn: PromptFn | None = None,
) -> StepResult:
    """One optimizer step over this worker's ``accumulate`` micro-batches of ``step``.

    Each micro-batch's loss (a mean over its samples) is scaled by ``1 / accumulate`` before
    ``backward``; ``reduce_grads(model)`` (Ray Train) then averages the gradients over the
    workers, so the update is that of the mean loss over the whole global batch at any split.
    The caller steps the lr scheduler.
    """
    import torch

    num_rounds = schedule.num_click_rounds(seed, step, max_rounds)
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    terms_sum: dict[str, float] = {}
    samples = 0
    count = 0
    for mb, batch in micro:
        if mb.step != step:
            raise ValueError(f"micro-batch of step {mb.step} given to step {step}")
        torch.manual_seed(schedule.torch_seed(seed, step, mb.k))
        loss, terms = micro_step(
            model, batch, loss_fn=loss_fn, seed=seed, step=step, num_rounds=num_rounds,
            threshold=threshold, distance=distance, drop_prob=drop_prob, autocast=autocast, loss_hook=loss_hook,
            prompt_fn=prompt_fn,
        )
        (loss / accumulate).backward()
        total += float(loss.detach())
        for k, v in terms.items():
            terms_sum[k] = terms_sum.get(k, 0.0) + float(v)
        samples += int(batch.image.shape[0])
        count += 1
    if count != accumulate:
        raise ValueError(f"step {step}: {count} micro-batches, expected {accumulate}")
    if reduce_grads is not None:
        reduce_grads(model)
    optimizer.step()
    return StepResult(total / count, {k: v / count for k, v in terms_sum.items()}, samples, num_rounds)
