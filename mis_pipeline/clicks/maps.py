"""Click maps: one disk of radius ``radius`` per click, positives in channel 0, negatives in 1.

A pixel ``(y, x)`` is in the disk of click ``(r, c)`` when ``(y - r)^2 + (x - c)^2 <=
radius^2``, RITM's ``DistMaps(use_disks=True)`` rule (MIS: ``norm_radius=5``). Both
versions scatter a precomputed list of disk offsets instead of measuring every pixel's
distance to every click (what the reference does): the cost is ``K * |disk|`` writes, not
``K * H * W`` distances. Disks are clipped at the image edge.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ..config import ClickConfig

if TYPE_CHECKING:
    import torch

__all__ = ["click_maps", "click_maps_torch", "disk_offsets"]

_RADIUS = ClickConfig().radius  # MIS: 5


@lru_cache(maxsize=16)
def disk_offsets(radius: int) -> np.ndarray:
    """``(D, 2) int64`` offsets ``(dy, dx)`` with ``dy^2 + dx^2 <= radius^2`` (read-only)."""
    r = int(radius)
    if r < 0:
        raise ValueError(f"radius must be >= 0, got {radius!r}")
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    keep = dy**2 + dx**2 <= r * r
    off = np.stack([dy[keep], dx[keep]], axis=1).astype(np.int64)
    off.setflags(write=False)
    return off


def _hw(hw: object) -> tuple[int, int]:
    try:
        h, w = (int(x) for x in hw)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"hw must be a pair (H, W) of positive integers, got {hw!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"hw must be a pair (H, W) of positive integers, got {hw!r}")
    return h, w


def click_maps(
    points: np.ndarray, labels: np.ndarray, valid: np.ndarray, hw: tuple[int, int], radius: int = _RADIUS
) -> np.ndarray:
    """Disk maps of one click set.

    Parameters
    ----------
    points : (K, 2) int
        ``(row, col)`` pixel coordinates.
    labels : (K,) int
        1 positive, 0 negative.
    valid : (K,) bool
        Clicks to draw (others are ignored).
    hw : (H, W)
    radius : int >= 0

    Returns
    -------
    (2, H, W) float32
        Channel 0: union of the positive disks; channel 1: of the negative disks (0 or 1).
    """
    h, w = _hw(hw)
    points = np.asarray(points)
    labels = np.asarray(labels)
    valid = np.asarray(valid, dtype=bool)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (K, 2), got {points.shape}")
    k = points.shape[0]
    if labels.shape != (k,) or valid.shape != (k,):
        raise ValueError(
            f"labels {labels.shape} and valid {valid.shape} must both have shape ({k},)"
        )
    out = np.zeros((2, h, w), dtype=np.float32)
    sel = np.flatnonzero(valid)
    if sel.size == 0:
        return out
    off = disk_offsets(radius)
    p = points[sel].astype(np.int64)
    rr = (p[:, 0:1] + off[None, :, 0]).ravel()
    cc = (p[:, 1:2] + off[None, :, 1]).ravel()
    ch = np.repeat((labels[sel] != 1).astype(np.int64), off.shape[0])
    inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
    out[ch[inside], rr[inside], cc[inside]] = 1.0
    return out


def click_maps_torch(
    points: torch.Tensor,
    labels: torch.Tensor,
    valid: torch.Tensor,
    hw: tuple[int, int],
    radius: int = _RADIUS,
) -> torch.Tensor:
    """Disk maps of a batch of click sets, on the inputs' device, with no loop over the batch.

    Parameters
    ----------
    points : (B, K, 2) integer tensor
        ``(row, col)``.
    labels : (B, K) tensor
        1 positive, 0 negative.
    valid : (B, K) bool tensor
    hw : (H, W)
    radius : int >= 0

    Returns
    -------
    (B, 2, H, W) torch.float32 on ``points.device``; equal to :func:`click_maps` per sample.
    """
    import torch

    h, w = _hw(hw)
    if points.dim() != 3 or points.shape[-1] != 2:
        raise ValueError(f"points must have shape (B, K, 2), got {tuple(points.shape)}")
    b, k = points.shape[:2]
    if tuple(labels.shape) != (b, k) or tuple(valid.shape) != (b, k):
        raise ValueError(
            f"labels {tuple(labels.shape)} and valid {tuple(valid.shape)} must both have "
            f"shape ({b}, {k})"
        )
    dev = points.device
    off = torch.tensor(disk_offsets(radius), device=dev)  # (D, 2), a copy (cache is read-only)
    p = points.to(torch.int64)
    rr = p[..., 0:1] + off[:, 0]  # (B, K, D)
    cc = p[..., 1:2] + off[:, 1]
    ok = valid.to(device=dev, dtype=torch.bool)[..., None] & (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
    ch = (labels.to(dev) != 1).to(torch.int64)[..., None]  # (B, K, 1)
    bi = torch.arange(b, device=dev, dtype=torch.int64)[:, None, None]
    flat = ((bi * 2 + ch) * h + rr) * w + cc
    # Clicks that are invalid or off the image write into one spare element at the end instead
    # of being filtered out: a boolean selection would force a device sync on CUDA.
    spare = b * 2 * h * w
    flat = torch.where(ok, flat, torch.full_like(flat, spare))
    out = torch.zeros(spare + 1, dtype=torch.float32, device=dev)
    out.index_fill_(0, flat.reshape(-1), 1.0)
    return out[:spare].view(b, 2, h, w)
