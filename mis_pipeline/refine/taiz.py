"""Target-Aware Image Zooming (TAIZ) of VTMR (eqs. 4-5 and the blending schedule).

A guidance map ``S (H, W)`` (the coarse mask united with the click disks at inference) is
marginalised to ``S_y (H,)`` and ``S_x (W,)``. For each output coordinate ``x`` in ``[0, 1]`` the
source coordinate is the kernel-weighted mean of the guidance (eq. 4)::

    T_x(x) = sum_x' x' S_x(x') K(x, x') / sum_x' S_x(x') K(x, x'),  K = exp(-(x - x')^2 / (2 sigma^2))

(and ``T_y`` likewise, eq. 5). The warp ``out[i, j] = src(T_y(y_i), T_x(x_j))`` spends more output
pixels on salient rows and columns. The map is separable and each axis is monotone
(``dT/dx = Var_w(x') / sigma^2 >= 0``), so it is inverted per axis by 1-D interpolation.

Choices the paper leaves open (stated here, configurable in :class:`~mis_pipeline.config.TaizConfig`):

- ``sigma`` is in pixels of the *output* grid (the paper: sigma = 11 with its low-resolution
  input); it is converted to normalised units as ``sigma / out_size``.
- Coordinates are pixel centres normalised to ``[0, 1]`` (``(j + 0.5) / W``), the
  ``align_corners=False`` convention of :func:`torch.nn.functional.grid_sample`.
- Border: the guidance is extended by edge replication over ``8 sigma`` with the coordinate
  continuing linearly (as Recasens et al.'s "learning to zoom" pads the saliency), then ``T`` is
  clipped to ``[0, 1]``. With a flat guidance map the warp is then exactly the identity.
- ``floor``: ``floor * mean(S)`` is added to ``S`` so that ``T`` is strictly increasing (and
  invertible) even where the guidance is zero.

At inference (VTMR, Fig. 4) the logits ``O_2`` of the plain pass and ``O~_2`` of the warped pass
mapped back by ``T^-1`` are blended as ``O = (1 - lambda_t) O_2 + lambda_t O~_2`` with
``lambda_t = 0`` for ``t < T/2`` and ``max(T/2, t) / T`` otherwise (:func:`taiz_lambda`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "TaizWarp",
    "warp_axis",
    "taiz_warp",
    "taiz_lambda",
    "apply_warp",
    "invert_warp",
    "warp_points",
    "taiz_guidance",
    "taiz_refine",
]


class TaizWarp(NamedTuple):
    """The separable inverse map of one image.

    ty : float64 ``(h_out,)`` source row coordinate (normalised, pixel centres) of each output row;
    tx : float64 ``(w_out,)`` likewise for columns; src_hw : ``(H, W)`` of the source image.
    """

    ty: np.ndarray
    tx: np.ndarray
    src_hw: tuple[int, int]

    @property
    def out_hw(self) -> tuple[int, int]:
        return (len(self.ty), len(self.tx))


def _centres(n: int) -> np.ndarray:
    return (np.arange(n, dtype=np.float64) + 0.5) / n


def warp_axis(marginal: np.ndarray, out_size: int, sigma: float, floor: float = 0.05) -> np.ndarray:
    """``T(x)`` of eq. 4 at the ``out_size`` output pixel centres for one marginal ``(n,)``.

    ``sigma`` is in output pixels; returns float64 ``(out_size,)`` in ``[0, 1]``, non-decreasing
    (strictly increasing when ``floor > 0``).
    """
    s = np.asarray(marginal, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"marginal must be a non-empty 1-D array, got shape {s.shape}")
    if np.any(s < 0) or not np.all(np.isfinite(s)):
        raise ValueError("the guidance map must be finite and non-negative")
    if out_size < 1:
        raise ValueError(f"out_size must be >= 1, got {out_size}")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    n = s.size
    mean = s.mean()
    s = s + (floor * mean if mean > 0 else 1.0)  # all-zero guidance: flat, i.e. the identity
    sig = sigma / out_size
    pad = int(np.ceil(8 * sig * n)) + 1  # exp(-32): no truncation bias near the border
    # Source coordinates continued linearly over the pad, the guidance edge-replicated.
    xs = (np.arange(-pad, n + pad, dtype=np.float64) + 0.5) / n
    sp = np.pad(s, pad, mode="edge")
    x = _centres(out_size)
    k = np.exp(-((x[:, None] - xs[None, :]) ** 2) / (2 * sig * sig)) * sp[None, :]
    t = (k @ xs) / k.sum(axis=1)
    return np.clip(t, 0.0, 1.0)


def taiz_warp(guidance: np.ndarray, out_hw: tuple[int, int], sigma: float = 11.0, floor: float = 0.05) -> TaizWarp:
    """The TAIZ map for a guidance map ``(H, W)`` (float or bool, >= 0) and an output size ``(h, w)``."""
    g = np.asarray(guidance, dtype=np.float64)
    if g.ndim != 2:
        raise ValueError(f"guidance must be (H, W), got shape {g.shape}")
    ty = warp_axis(g.sum(axis=1), int(out_hw[0]), sigma, floor)  # S_y = S . 1
    tx = warp_axis(g.sum(axis=0), int(out_hw[1]), sigma, floor)  # S_x = (1^T . S)^T
    return TaizWarp(ty, tx, (int(g.shape[0]), int(g.shape[1])))


def _inverse_axis(t: np.ndarray, n_src: int) -> np.ndarray:
    """Output coordinate (normalised) of each of ``n_src`` source pixel centres: ``T^-1``."""
    x = _centres(len(t))
    # T is non-decreasing; np.interp needs strictly increasing sample points, so nudge ties.
    t = np.maximum.accumulate(t + np.arange(len(t)) * 1e-12)
    return np.interp(_centres(n_src), t, x)


def _sample(x: torch.Tensor, gy: np.ndarray, gx: np.ndarray, mode: str) -> torch.Tensor:
    """``x (B, C, H, W)`` sampled at the separable normalised coordinates ``gy (h,)``, ``gx (w,)``."""
    import torch
    import torch.nn.functional as F

    yy = torch.as_tensor(2 * gy - 1, dtype=x.dtype, device=x.device)
    xx = torch.as_tensor(2 * gx - 1, dtype=x.dtype, device=x.device)
    grid = torch.stack(torch.meshgrid(xx, yy, indexing="xy"), dim=-1)  # (h, w, 2) as (x, y)
    grid = grid.unsqueeze(0).expand(x.shape[0], -1, -1, -1)
    return F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=False)


def apply_warp(x: torch.Tensor, warp: TaizWarp, mode: str = "bilinear") -> torch.Tensor:
    """Warp ``x (B, C, H, W)`` (source space) to ``(B, C, h_out, w_out)``: ``out = x(T_y, T_x)``."""
    if tuple(x.shape[-2:]) != warp.src_hw:
        raise ValueError(f"tensor of size {tuple(x.shape[-2:])} does not match the warp's source {warp.src_hw}")
    return _sample(x, warp.ty, warp.tx, mode)


def invert_warp(y: torch.Tensor, warp: TaizWarp, mode: str = "bilinear") -> torch.Tensor:
    """Map ``y (B, C, h_out, w_out)`` (warped space) back to the source ``(B, C, H, W)`` by ``T^-1``."""
    if tuple(y.shape[-2:]) != warp.out_hw:
        raise ValueError(f"tensor of size {tuple(y.shape[-2:])} does not match the warp's output {warp.out_hw}")
    return _sample(y, _inverse_axis(warp.ty, warp.src_hw[0]), _inverse_axis(warp.tx, warp.src_hw[1]), mode)


def warp_points(points: np.ndarray, warp: TaizWarp) -> np.ndarray:
    """Click coordinates ``(K, 2)`` (row, col) in source pixels -> nearest (row, col) in the
    warped image (int, clipped to the output)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    h, w = warp.out_hw
    H, W = warp.src_hw
    out = np.empty((len(p), 2), dtype=np.int64)
    for axis, (t, n_src, n_out) in enumerate(((warp.ty, H, h), (warp.tx, W, w))):
        u = (p[:, axis] + 0.5) / n_src
        tt = np.maximum.accumulate(t + np.arange(len(t)) * 1e-12)
        x = np.interp(u, tt, _centres(n_out))
        out[:, axis] = np.clip(np.floor(x * n_out), 0, n_out - 1)
    return out


def taiz_guidance(mask: np.ndarray, click_maps: np.ndarray | None = None) -> np.ndarray:
    """Guidance of VTMR inference: the union of the coarse mask ``M_2`` (bool (H, W)) and the
    click disks ``D`` (``(2, H, W)`` or ``(H, W)``, > 0 inside a disk), as float32 (H, W)."""
    g = np.asarray(mask, dtype=bool)
    if click_maps is not None:
        d = np.asarray(click_maps)
        d = d.reshape(-1, *g.shape).max(axis=0) > 0 if d.ndim == 3 else d > 0
        g = g | d
    return g.astype(np.float32)


def taiz_lambda(t: int, max_clicks: int = 20) -> float:
    """Blending weight ``lambda_t`` of round ``t`` (1-based click count) for ``T = max_clicks``."""
    if t < 1 or max_clicks < 1:
        raise ValueError(f"need t >= 1 and max_clicks >= 1, got t={t}, max_clicks={max_clicks}")
    half = max_clicks / 2
    return 0.0 if t < half else min(1.0, max(half, t) / max_clicks)


def taiz_refine(
    run,
    image: torch.Tensor,
    coarse_logits: torch.Tensor,
    points: np.ndarray,
    labels: np.ndarray,
    valid: np.ndarray,
    t: int,
    out_hw: tuple[int, int],
    *,
    sigma: float = 11.0,
    floor: float = 0.05,
    max_clicks: int = 20,
    prob_threshold: float = 0.5,
    click_radius: int = 5,
) -> tuple[torch.Tensor, float]:
    """VTMR's inference step (Fig. 4): blend the plain logits with those of the zoomed pass.

    Parameters
    ----------
    run : ``run(image (1, 3, h, w), prev (1, 1, h, w), points (1, K, 2) int64, labels (1, K),
        valid (1, K)) -> logits (1, 1, h, w)``: one model pass at the zoomed size ``out_hw``.
    image : ``(1, 3, H, W)`` float in [0, 1]; coarse_logits : ``O_2 (1, 1, H, W)``.
    points, labels, valid : the clicks so far, ``(K, 2)`` (row, col) pixels, ``(K,)``, ``(K,)``.
    t : the interaction round (number of clicks); ``lambda_t = 0`` skips the zoomed pass.

    Returns ``(O (1, 1, H, W), lambda_t)``. The guidance is ``M_2 = sigmoid(O_2) > prob_threshold``
    united with the click disks; the zoomed pass sees the warped image, the warped ``M_2`` as its
    previous mask, and the clicks moved through ``T^-1`` (drawn as disks at the zoomed size,
    rather than warped disks, so they keep their radius).
    """
    import torch

    from ..clicks import click_maps

    lam = taiz_lambda(t, max_clicks)
    if lam == 0.0:
        return coarse_logits, 0.0
    H, W = int(image.shape[-2]), int(image.shape[-1])
    m2 = (torch.sigmoid(coarse_logits[0, 0]) > prob_threshold).cpu().numpy()
    pts = np.asarray(points).reshape(-1, 2)
    lab = np.asarray(labels).reshape(-1)
    ok = np.asarray(valid, dtype=bool).reshape(-1)
    disks = click_maps(pts.astype(np.int32), lab.astype(np.int8), ok, (H, W), radius=click_radius)
    warp = taiz_warp(taiz_guidance(m2, disks), out_hw, sigma=sigma, floor=floor)
    img_w = apply_warp(image.float(), warp)
    prev_w = apply_warp(torch.from_numpy(m2.astype(np.float32))[None, None].to(image.device), warp)
    pts_w = torch.from_numpy(warp_points(pts, warp)).to(image.device)[None]
    logits_w = run(img_w, prev_w, pts_w, torch.as_tensor(lab, device=image.device)[None].long(),
                   torch.as_tensor(ok, device=image.device)[None])
    back = invert_warp(logits_w.float(), warp)
    return (1.0 - lam) * coarse_logits + lam * back.to(coarse_logits.dtype), lam
