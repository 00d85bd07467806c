"""Plain reference of the click sampler: a line-by-line reading of RITM's MultiPointSampler.

Every region is built at full image size (SciPy morphology, not OpenCV, so the fast path in
:mod:`.sampler` is checked against an independent implementation of erosion and dilation)
and candidates are listed with ``argwhere``. Slow and obvious; tests compare
:func:`mis_pipeline.clicks.sample_clicks` with it bit for bit.
"""

from __future__ import annotations

import numpy as np

from ..config import ClickConfig
from . import _draws as D
from .types import Clicks, empty_clicks

__all__ = ["sample_clicks_reference", "click_maps_reference", "next_clicks_reference"]

_DEFAULT = ClickConfig()


def _erode(mask: np.ndarray, iters: int) -> np.ndarray:
    from scipy import ndimage

    if iters == 0:
        return mask.copy()
    # OpenCV's erode treats pixels outside the image as set (border value = max).
    return ndimage.binary_erosion(mask, np.ones((3, 3), bool), iterations=iters, border_value=1)


def _dilate(mask: np.ndarray, iters: int) -> np.ndarray:
    from scipy import ndimage

    if iters == 0:
        return mask.copy()
    return ndimage.binary_dilation(mask, np.ones((3, 3), bool), iterations=iters, border_value=0)


def _inner_candidates(mask: np.ndarray, rng: np.random.Generator, cfg: ClickConfig) -> np.ndarray:
    """RITM ``get_point_candidates``: (m, 2) candidate pixels of the first click."""
    import cv2

    if D.draw_full_first(rng, cfg.first_click_full_prob):
        return np.argwhere(mask)
    padded = np.pad(mask, 1).astype(np.uint8)
    dt = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    if cfg.first_click_inner_k > 0:
        return np.argwhere(dt > dt.max() / cfg.first_click_inner_k)
    idx = D.weighted_index(rng, dt.ravel().astype(np.float64))
    return np.array([np.unravel_index(idx, dt.shape)])


def sample_clicks_reference(
    mask: np.ndarray,
    rng: np.random.Generator,
    cfg: ClickConfig = _DEFAULT,
    *,
    other: np.ndarray | None = None,
) -> Clicks:
    """Same contract and same draws as :func:`mis_pipeline.clicks.sample_clicks`."""
    mask = np.asarray(mask, dtype=bool)
    m = cfg.max_points
    out = empty_clicks(m)
    area = int(mask.sum())
    if area == 0:
        # RITM's path for a sample without objects: no positive candidates, and every
        # negative strategy uses the background (the whole image).
        pos = mask
        regions = [~mask, ~mask, ~mask]
    else:
        pos = mask
        if D.draw_erode(rng, cfg.positive_erode_prob):
            eroded = _erode(mask, cfg.positive_erode_iters)
            if eroded.sum() > cfg.positive_erode_min_area:
                pos = eroded
        bg = ~mask
        ring = _dilate(mask, D.border_radius(area, cfg.expand_ratio)) & ~mask
        oth = bg
        if other is not None:
            o = np.asarray(other, dtype=bool) & ~mask
            if o.any():
                oth = o
        regions = [bg, oth, ring]

    # Positives: 1 + (0 .. M-1), P ~ gamma^i.
    k = 1 + D.draw_index(rng, D.count_cdf(m, cfg.prob_gamma))
    cand = np.argwhere(pos)
    n_pos = 0
    # RITM's empty sample has no positive mask at all: no first-click draws either.
    for j in range(k if area > 0 else 0):
        c = cand
        if j == 0 and cfg.first_click_center:
            c = _inner_candidates(pos, rng, cfg)
        if len(c) > 0:
            out.points[n_pos] = c[D.draw_pixel(rng, len(c))]
            out.valid[n_pos] = True
            n_pos += 1

    # Negatives: 0 .. M, P ~ gamma^i; each from a strategy drawn with negative_probs.
    k = D.draw_index(rng, D.count_cdf(m + 1, cfg.prob_gamma))
    scdf = D.strategy_cdf(tuple(cfg.negative_probs))
    n_neg = 0
    for _ in range(k):
        c = np.argwhere(regions[D.draw_index(rng, scdf)])
        if len(c) > 0:
            out.points[m + n_neg] = c[D.draw_pixel(rng, len(c))]
            out.valid[m + n_neg] = True
            n_neg += 1
    return out


def click_maps_reference(
    points: np.ndarray, labels: np.ndarray, valid: np.ndarray, hw: tuple[int, int], radius: int
) -> np.ndarray:
    """Disk maps as RITM's ``DistMaps(use_disks=True)``: squared distance of every pixel to
    every click, ``<= radius^2``. (2, H, W) float32."""
    h, w = hw
    rows, cols = np.mgrid[:h, :w]
    out = np.zeros((2, h, w), dtype=np.float32)
    for (r, c), lab, ok in zip(np.asarray(points), np.asarray(labels), np.asarray(valid), strict=True):
        if ok:
            disk = (rows - r) ** 2 + (cols - c) ** 2 <= radius**2
            out[0 if lab == 1 else 1][disk] = 1.0
    return out


def next_clicks_reference(
    prob: np.ndarray, gt: np.ndarray, rng: np.random.Generator, *, threshold: float, distance: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RITM/MIS ``get_next_points`` on full padded masks, one sample at a time."""
    import cv2

    mask_size = 5 if distance == "chamfer" else cv2.DIST_MASK_PRECISE
    b = prob.shape[0]
    points = np.zeros((b, 2), np.int32)
    labels = np.zeros(b, np.int8)
    found = np.zeros(b, bool)
    for i in range(b):
        fn = np.pad(gt[i] & (prob[i] < threshold), 1).astype(np.uint8)
        fp = np.pad(~gt[i] & (prob[i] > threshold), 1).astype(np.uint8)
        fn_dt = cv2.distanceTransform(fn, cv2.DIST_L2, mask_size)[1:-1, 1:-1]
        fp_dt = cv2.distanceTransform(fp, cv2.DIST_L2, mask_size)[1:-1, 1:-1]
        fn_max, fp_max = fn_dt.max(), fp_dt.max()
        positive = fn_max > fp_max
        dt = fn_dt if positive else fp_dt
        cand = np.argwhere(dt > max(fn_max, fp_max) / 2.0)
        if len(cand) > 0:
            points[i] = cand[D.draw_pixel(rng, len(cand))]
            labels[i] = 1 if positive else 0
            found[i] = True
    return points, labels, found
