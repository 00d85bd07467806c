"""Masks for the click tests."""

from __future__ import annotations

import numpy as np


def disk(hw: tuple[int, int], center: tuple[int, int], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[: hw[0], : hw[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 < radius**2


def blobs(hw: tuple[int, int], seed: int, level: float = 0.55, sigma: float = 6.0) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    f = ndimage.gaussian_filter(rng.random(hw), sigma)
    f = (f - f.min()) / max(f.max() - f.min(), 1e-12)
    return f > level


def mask_cases(hw: tuple[int, int] = (96, 120)) -> list[np.ndarray]:
    """Shapes that stress the fast path's crops: interior, touching each edge, empty, full,
    single pixels, thin lines, several components."""
    h, w = hw
    out = [
        disk(hw, (h // 2, w // 2), 20),
        disk(hw, (0, 0), 30),
        disk(hw, (h - 1, w // 3), 25),
        disk(hw, (h // 3, w - 1), 18),
        np.zeros(hw, bool),
        np.ones(hw, bool),
    ]
    one = np.zeros(hw, bool)
    one[h // 2, w // 2] = True
    out.append(one)
    corner = np.zeros(hw, bool)
    corner[h - 1, w - 1] = True
    out.append(corner)
    line = np.zeros(hw, bool)
    line[:, 7] = True
    out.append(line)
    band = np.zeros(hw, bool)
    band[:, : w // 6] = True
    out.append(band)
    out.append(~disk(hw, (h // 2, w // 2), 30))
    for s in range(6):
        out.append(blobs(hw, s, level=0.45 + 0.04 * s, sigma=3 + s))
    return out
