"""Pixel-level refinement of coarse masks: the colour guided filter (He, Sun and Tang, TPAMI 2013).

A patch-level mask (blocks of 8x8 pixels) is filtered with the image as guide: inside every
``(2r+1) x (2r+1)`` window the output is an affine function of the guide's colour fitted to the
mask by ridge regression (``eps`` is the ridge weight), and the per-window coefficients are
averaged. Edges of the output follow colour edges of the image within about ``r`` pixels,
which moves a blocky boundary onto the object's contour.

Window means use OpenCV's box filter with reflected borders (``cv2.BORDER_REFLECT``, numpy's
``"symmetric"`` padding). ``subsample > 1`` is the fast guided filter (He and Sun 2015): the
coefficients are computed on a copy shrunk by that factor (area interpolation) with radius
``r // subsample`` and upsampled bilinearly before the final combination with the full-
resolution guide. :func:`guided_filter_reference` is the direct, window-by-window definition
(the tests compare it with :func:`guided_filter` at ``subsample=1``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["guided_filter", "guided_filter_reference"]


def _box(x: np.ndarray, r: int) -> np.ndarray:
    import cv2

    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT)


def _coefficients(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Window-averaged ``a`` (H, W, 3) and ``b`` (H, W) of the colour guided filter."""
    mean_i = _box(guide, r)
    mean_p = _box(src, r)
    cov_ip = _box(guide * src[..., None], r) - mean_i * mean_p[..., None]
    # Covariance of the guide in each window (6 unique entries) plus eps on the diagonal.
    def cov(i: int, j: int) -> np.ndarray:
        return _box(guide[..., i] * guide[..., j], r) - mean_i[..., i] * mean_i[..., j]

    e = np.float32(eps)
    s00, s01, s02 = cov(0, 0) + e, cov(0, 1), cov(0, 2)
    s11, s12, s22 = cov(1, 1) + e, cov(1, 2), cov(2, 2) + e
    # Closed-form inverse of the symmetric 3x3 matrix (adjugate / determinant), vectorised:
    # much faster than a batched np.linalg.solve over every pixel.
    i00 = s11 * s22 - s12 * s12
    i01 = s02 * s12 - s01 * s22
    i02 = s01 * s12 - s02 * s11
    i11 = s00 * s22 - s02 * s02
    i12 = s01 * s02 - s00 * s12
    i22 = s00 * s11 - s01 * s01
    det = s00 * i00 + s01 * i01 + s02 * i02
    c0, c1, c2 = cov_ip[..., 0], cov_ip[..., 1], cov_ip[..., 2]
    a = np.stack(
        [
            (i00 * c0 + i01 * c1 + i02 * c2) / det,
            (i01 * c0 + i11 * c1 + i12 * c2) / det,
            (i02 * c0 + i12 * c1 + i22 * c2) / det,
        ],
        axis=-1,
    )
    b = mean_p - np.einsum("hwc,hwc->hw", a, mean_i)
    return _box(a, r), _box(b, r)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float, subsample: int = 1) -> np.ndarray:
    """Colour guided filter of ``src`` steered by ``guide``.

    Parameters
    ----------
    guide : ndarray (H, W, 3)
        Guide image as float in [0, 1] (e.g. RGB / 255); uint8 is scaled by 1/255.
    src : ndarray (H, W)
        Signal to filter (e.g. a 0/1 mask), float.
    radius : int
        Window radius ``r`` in pixels (window side ``2r + 1``), >= 1.
    eps : float
        Ridge regularisation (> 0); larger is smoother, less edge-following.
    subsample : int
        Fast guided filter factor (1 = exact filter).

    Returns
    -------
    ndarray (H, W) float32
        Filtered signal (not clipped; a 0/1 input gives values slightly outside [0, 1]).
    """
    import cv2

    g = np.asarray(guide)
    g = g.astype(np.float32) * np.float32(1 / 255) if g.dtype == np.uint8 else g.astype(np.float32, copy=False)
    p = np.asarray(src, dtype=np.float32)
    if g.ndim != 3 or g.shape[2] != 3 or p.shape != g.shape[:2]:
        raise ValueError(f"guide must be (H, W, 3) and src (H, W); got {g.shape} and {p.shape}")
    if radius < 1 or eps <= 0 or subsample < 1:
        raise ValueError(f"need radius >= 1, eps > 0, subsample >= 1; got {radius}, {eps}, {subsample}")
    h, w = p.shape
    s = int(subsample)
    if s == 1:
        a, b = _coefficients(g, p, int(radius), float(eps))
    else:
        size = (max(1, w // s), max(1, h // s))
        gs = cv2.resize(g, size, interpolation=cv2.INTER_AREA)
        ps = cv2.resize(p, size, interpolation=cv2.INTER_AREA)
        a_s, b_s = _coefficients(gs, ps, max(1, int(radius) // s), float(eps))
        a = cv2.resize(a_s, (w, h), interpolation=cv2.INTER_LINEAR)
        b = cv2.resize(b_s, (w, h), interpolation=cv2.INTER_LINEAR)
    return (np.einsum("hwc,hwc->hw", a, g) + b).astype(np.float32)


def guided_filter_reference(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Direct definition (float64, explicit windows over symmetric padding); tiny inputs only."""
    g = np.asarray(guide, dtype=np.float64)
    if np.asarray(guide).dtype == np.uint8:
        g = g / 255.0
    p = np.asarray(src, dtype=np.float64)
    h, w = p.shape
    r = int(radius)
    gp = np.pad(g, ((r, r), (r, r), (0, 0)), mode="symmetric")
    pp = np.pad(p, r, mode="symmetric")
    a = np.zeros((h, w, 3))
    b = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            wi = gp[y : y + 2 * r + 1, x : x + 2 * r + 1].reshape(-1, 3)
            wp = pp[y : y + 2 * r + 1, x : x + 2 * r + 1].reshape(-1)
            mu = wi.mean(axis=0)
            cov = (wi - mu).T @ (wi - mu) / len(wp)
            cov_ip = ((wi - mu) * (wp - wp.mean())[:, None]).mean(axis=0)
            a[y, x] = np.linalg.solve(cov + eps * np.eye(3), cov_ip)
            b[y, x] = wp.mean() - a[y, x] @ mu
    ap = np.pad(a, ((r, r), (r, r), (0, 0)), mode="symmetric")
    bp = np.pad(b, r, mode="symmetric")
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            am = ap[y : y + 2 * r + 1, x : x + 2 * r + 1].reshape(-1, 3).mean(axis=0)
            bm = bp[y : y + 2 * r + 1, x : x + 2 * r + 1].mean()
            out[y, x] = am @ g[y, x] + bm
    return out
