"""The normalised focal loss (NFL) of RITM / SimpleClick, used for supervised training.

Per sample, with ``p = sigmoid(logit)`` and a binary target ``y``::

    p_t   = 1 - |y - p|                       (the probability given to the right answer)
    beta  = (1 - p_t)^gamma                   (focal weight)
    m     = n / sum(beta)                     (normalisation, no gradient; n = counted pixels)
    a     = alpha if y = 1 else 1 - alpha
    loss  = sum(-a * m * beta * log(min(p_t + eps, 1))) / n

i.e. the focal weights are rescaled to average 1 over the sample, and the batch loss is the mean
of the per-sample losses. This is the public ``NormalizedFocalLossSigmoid`` with its defaults
as SimpleClick configures it (``alpha=0.5, gamma=2``, ``eps=1e-12``, the normaliser detached,
no ``max_mult`` clamp); pixels marked in ``ignore`` count neither in the sums nor in ``n``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["normalized_focal_loss"]


def normalized_focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 0.5,
    gamma: float = 2.0,
    *,
    ignore: torch.Tensor | None = None,
    eps: float = 1e-12,
) -> torch.Tensor:
    """NFL of ``logits (B, 1, H, W)`` against ``target (B, 1, H, W)`` (bool or 0/1 float); scalar.

    ``ignore`` (bool, same shape) excludes pixels. See the module docstring for the formula.
    """
    import torch

    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape")
    x = logits.float()
    y = target.float()
    keep = torch.ones_like(y) if ignore is None else (~ignore.bool()).float()
    p = torch.sigmoid(x)
    one = y > 0.5
    a = torch.where(one, alpha * keep, (1.0 - alpha) * keep)
    pt = torch.where(keep > 0, 1.0 - (y - p).abs(), torch.ones_like(p))
    beta = (1.0 - pt) ** gamma
    dims = tuple(range(1, x.ndim))
    n = keep.sum(dim=dims, keepdim=True)
    mult = (n / (beta.sum(dim=dims, keepdim=True) + eps)).detach()
    loss = -a * beta * mult * torch.log(torch.clamp_max(pt + eps, 1.0)) * keep
    per_sample = loss.sum(dim=dims) / (n.reshape(-1) + eps)
    return per_sample.mean()
