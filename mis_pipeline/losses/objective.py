"""The MIS training objective (eq. 8): ``BCE(logits, proposal) + lambda * L_smooth``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .smoothness import smoothness_loss

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ..config import LossConfig

__all__ = ["mis_loss"]


def mis_loss(
    logits: torch.Tensor, target: torch.Tensor, image: torch.Tensor, cfg: LossConfig | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """MIS eq. 8 on ``logits (B, 1, H, W)``, the proposal ``target (B, 1, H, W)`` (bool or 0/1)
    and the input ``image (B, 3, H, W)`` (float in [0, 1] or uint8).

    Returns ``(total, terms)``: the scalar loss to back-propagate and the detached terms
    ``{"bce": ..., "smooth": ...}`` (the BCE mean over pixels, eq. 6; the smoothness term
    before weighting, eq. 7) for logging. With ``cfg.smooth_weight == 0`` the smoothness term is
    not computed (reported as 0).
    """
    import torch.nn.functional as F

    from ..config import LossConfig

    cfg = cfg if cfg is not None else LossConfig()
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape")
    bce = F.binary_cross_entropy_with_logits(logits.float(), target.float())
    if cfg.smooth_weight > 0:
        smooth = smoothness_loss(logits, image, cfg)
        total = bce + cfg.smooth_weight * smooth
    else:
        smooth = bce.new_zeros(())
        total = bce
    return total, {"bce": bce.detach(), "smooth": smooth.detach()}
