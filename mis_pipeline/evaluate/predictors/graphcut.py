"""Classical baseline: OpenCV GrabCut (Rother et al. 2004) seeded from the clicks.

Every click runs GrabCut from scratch, on a mask built as follows (deterministic per sample:
OpenCV's GMM initialisation draws k-means++ centres from the calling thread's global RNG, which
is re-seeded with ``seed`` before every call, so a result does not depend on what ran before
it in the same process):

- ``init="frame"`` (default): GrabCut's own rectangle initialisation, with the rectangle being
  the image minus a frame of ``frame_margin`` times each side: the frame is probable background,
  the inside probable foreground. Without it, a single positive click gives GrabCut a
  foreground colour model of a few pixels and it returns little more than the click disk;
- ``init="previous"``: the previous prediction is probable foreground, the rest probable
  background;
- ``init="none"``: every pixel probable background;

then a disk of ``radius`` pixels around each positive click is definite foreground
(``GC_FGD``), around each negative click definite background (``GC_BGD``; a later click wins
where disks overlap), and ``iterations`` rounds of GMM fitting and min-cut follow
(``GC_INIT_WITH_MASK``). With ``max_side`` set, GrabCut runs on a copy whose longer side is
``max_side`` pixels (area interpolation; the clicks' own pixels stay definite) and its labelling
is upsampled back (bilinear on 0/1, hence a soft boundary).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..clicker import Click, click_map
from .base import Predictor, check_image

if TYPE_CHECKING:
    from ...config import PipelineConfig

__all__ = ["GraphCutPredictor", "grabcut_from_clicks", "INITS"]

INITS = ("frame", "previous", "none")


def _seed_mask(shape, clicks, prev_mask, init, frame_margin, radius):  # type: ignore[no-untyped-def]
    import cv2

    h, w = shape
    mask = np.full((h, w), cv2.GC_PR_BGD, dtype=np.uint8)
    if init == "frame":
        mh = min(max(1, int(round(frame_margin * h))), (h - 1) // 2)
        mw = min(max(1, int(round(frame_margin * w))), (w - 1) // 2)
        mask[mh : h - mh, mw : w - mw] = cv2.GC_PR_FGD
    elif init == "previous" and prev_mask is not None:
        mask[np.asarray(prev_mask, dtype=bool)] = cv2.GC_PR_FGD
    for c in clicks:  # in order, so a later click wins where disks overlap
        pos, neg = click_map([c], (h, w), radius)
        mask[pos] = cv2.GC_FGD
        mask[neg] = cv2.GC_BGD
    return mask


def grabcut_from_clicks(
    image: np.ndarray,
    clicks: Sequence[Click],
    prev_mask: np.ndarray | None = None,
    radius: int = 5,
    iterations: int = 3,
    init: str = "frame",
    frame_margin: float = 0.05,
    max_side: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """GrabCut foreground probability ``(H, W) float32`` (0/1 unless ``max_side`` rescales) of RGB
    ``image`` ``(H, W, 3) uint8`` seeded by ``clicks`` (``(row, col)``); see the module docstring."""
    import cv2

    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    h, w = image.shape[:2]
    scale = 1.0 if max_side is None or max(h, w) <= max_side else max_side / max(h, w)
    if scale < 1.0:
        sh, sw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        work = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        small = [Click(min(int(c.row * scale), sh - 1), min(int(c.col * scale), sw - 1), c.is_positive) for c in clicks]
        prev = None
        if prev_mask is not None:
            prev = cv2.resize(np.asarray(prev_mask, np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST) > 0
        mask = _seed_mask((sh, sw), small, prev, init, frame_margin, max(0, int(round(radius * scale))))
    else:
        work = image
        mask = _seed_mask((h, w), clicks, prev_mask, init, frame_margin, radius)
    has_fg = np.any((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD))
    has_bg = np.any((mask == cv2.GC_BGD) | (mask == cv2.GC_PR_BGD))
    if not has_fg or not has_bg:  # GrabCut needs samples of both models
        return np.full((h, w), 1.0 if has_fg else 0.0, dtype=np.float32)
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(int(seed))  # k-means++ initialisation of the GMMs uses cv::theRNG()
    cv2.grabCut(np.ascontiguousarray(work[:, :, ::-1]), mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.float32)
    if scale < 1.0:
        fg = cv2.resize(fg, (w, h), interpolation=cv2.INTER_LINEAR)
    return fg


class GraphCutPredictor(Predictor):
    """GrabCut seeded from click disks: the papers' classical reference (module docstring)."""

    name = "graphcut"

    def __init__(
        self,
        radius: int = 5,
        iterations: int = 3,
        init: str = "frame",
        frame_margin: float = 0.05,
        max_side: int | None = None,
    ) -> None:
        import cv2  # noqa: F401  - fail now, not mid-run, if OpenCV is missing

        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.radius = int(radius)
        self.iterations = int(iterations)
        self.init = init
        self.frame_margin = float(frame_margin)
        self.max_side = max_side
        self._image: np.ndarray | None = None

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> GraphCutPredictor:
        g = cfg.evaluate.graphcut
        return cls(radius=g.radius, iterations=g.iterations, init=g.init, frame_margin=g.frame_margin,
                   max_side=g.max_side)

    def reset(self, image: np.ndarray, gt: np.ndarray | None = None, ignore: np.ndarray | None = None) -> None:
        self._image = check_image(image)

    def predict(self, clicks: Sequence[Click], prev_prob: np.ndarray) -> np.ndarray:
        if self._image is None:
            raise RuntimeError("call reset(image) before predict()")
        prev = np.asarray(prev_prob) > 0.5
        return grabcut_from_clicks(self._image, clicks, prev, self.radius, self.iterations, self.init,
                                   self.frame_margin, self.max_side)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "radius": self.radius, "iterations": self.iterations, "init": self.init,
                "frame_margin": self.frame_margin, "max_side": self.max_side}
