"""Training losses.

- :func:`mis_loss`: the MIS objective, BCE against the proposal plus ``lambda`` times the
  bilateral smoothness term (MIS eqs. 6-8), :mod:`.smoothness` for the paper's term and the
  public code's variant (``LossConfig.reference_code``);
- :func:`normalized_focal_loss`: the normalised focal loss of RITM/SimpleClick for supervised
  fine-tuning.

All take logits ``(B, 1, H, W)`` and return scalar tensors; settings come from
:class:`~mis_pipeline.config.LossConfig` (section ``loss``).
"""

from __future__ import annotations

from .focal import normalized_focal_loss
from .objective import mis_loss
from .smoothness import rgb_to_yuv, smoothness_loss, smoothness_paper, smoothness_reference

__all__ = [
    "mis_loss",
    "normalized_focal_loss",
    "smoothness_loss",
    "smoothness_paper",
    "smoothness_reference",
    "rgb_to_yuv",
]
