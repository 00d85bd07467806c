"""Inference-time refinement around a click model: Cascade-Forward Refinement (CFR, A-CFR) of
CFR-ICL and the target-aware zoom-in (TAIZ) of VTMR.

Not to be confused with :mod:`mis_pipeline.evaluate.refine` (the guided filter of the tree
predictor's masks).
"""

from .cascade import CfrResult, cascade_forward, cfr_applies, changed_pixels
from .taiz import (
    TaizWarp,
    apply_warp,
    invert_warp,
    taiz_guidance,
    taiz_lambda,
    taiz_refine,
    taiz_warp,
    warp_axis,
    warp_points,
)

__all__ = [
    "CfrResult",
    "cascade_forward",
    "cfr_applies",
    "changed_pixels",
    "TaizWarp",
    "apply_warp",
    "invert_warp",
    "taiz_guidance",
    "taiz_lambda",
    "taiz_refine",
    "taiz_warp",
    "warp_axis",
    "warp_points",
]
