"""Classical baseline: OpenCV GrabCut (Rother et al. 2004) seeded from the clicks.

Seeding scheme (one GrabCut run from scratch per click, deterministic):

- a disk of ``radius`` pixels around each positive click is definite foreground
  (``GC_FGD``), around each negative click definite background (``GC_BGD``); a later click
  overrides an earlier one where disks overlap;
- with ``use_previous=True`` the pixels of the previous prediction (``prev_prob > 0.5``) are
  probable foreground (``GC_PR_FGD``), every other pixel probable background (``GC_PR_BGD``);
  with ``use_previous=False`` every unclicked pixel is probable background;
- ``iterations`` rounds of GMM re-estimation and min-cut (``GC_INIT_WITH_MASK``).

The output is the binary GrabCut labelling (foreground = ``GC_FGD | GC_PR_FGD``) as 0/1 float32.
OpenCV's GMM initialisation uses k-means with a fixed internal seed, so repeated runs agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..clicker import Click, click_map
from .base import Predictor, check_image

if TYPE_CHECKING:
    from ...config import PipelineConfig

__all__ = ["GraphCutPredictor", "grabcut_from_clicks"]


def grabcut_from_clicks(
    image: np.ndarray,
    clicks: Sequence[Click],
    prev_mask: np.ndarray | None = None,
    radius: int = 5,
    iterations: int = 3,
) -> np.ndarray:
    """Binary GrabCut segmentation ``(H, W) bool`` of RGB ``image`` ``(H, W, 3) uint8`` seeded by
    ``clicks`` (``(row, col)``) and optionally the previous binary prediction (see module doc)."""
    import cv2

    h, w = image.shape[:2]
    mask = np.full((h, w), cv2.GC_PR_BGD, dtype=np.uint8)
    if prev_mask is not None:
        mask[np.asarray(prev_mask, dtype=bool)] = cv2.GC_PR_FGD
    for c in clicks:  # in order, so a later click wins where disks overlap
        pos, neg = click_map([c], (h, w), radius)
        mask[pos] = cv2.GC_FGD
        mask[neg] = cv2.GC_BGD
    has_fg = np.any((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD))
    has_bg = np.any((mask == cv2.GC_BGD) | (mask == cv2.GC_PR_BGD))
    if not has_fg:
        return np.zeros((h, w), dtype=bool)
    if not has_bg:
        return np.ones((h, w), dtype=bool)
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    cv2.grabCut(bgr, mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


class GraphCutPredictor(Predictor):
    """GrabCut seeded from click disks (the papers' classical reference); see module doc."""

    name = "graphcut"

    def __init__(self, radius: int = 5, iterations: int = 3, use_previous: bool = True) -> None:
        import cv2  # noqa: F401  - fail now, not mid-run, if OpenCV is missing

        self.radius = int(radius)
        self.iterations = int(iterations)
        self.use_previous = bool(use_previous)
        self._image: np.ndarray | None = None

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> GraphCutPredictor:
        g = cfg.evaluate.graphcut
        return cls(radius=g.radius, iterations=g.iterations, use_previous=g.use_previous)

    def reset(self, image: np.ndarray, gt: np.ndarray | None = None, ignore: np.ndarray | None = None) -> None:
        self._image = check_image(image)

    def predict(self, clicks: Sequence[Click], prev_prob: np.ndarray) -> np.ndarray:
        if self._image is None:
            raise RuntimeError("call reset(image) before predict()")
        prev = (np.asarray(prev_prob) > 0.5) if self.use_previous else None
        seg = grabcut_from_clicks(self._image, clicks, prev, self.radius, self.iterations)
        return seg.astype(np.float32)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "radius": self.radius, "iterations": self.iterations,
                "use_previous": self.use_previous}
