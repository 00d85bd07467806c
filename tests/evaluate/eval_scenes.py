"""Synthetic scenes shared by the evaluation tests (imported as a plain module)."""

from __future__ import annotations

import numpy as np


def synthetic_scene(seed: int, h: int = 72, w: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A textured background with one flat-coloured ellipse: ``(image (h, w, 3) uint8, mask bool)``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.35, 0.65) * w
    ry, rx = rng.uniform(0.18, 0.3) * h, rng.uniform(0.18, 0.3) * w
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    bg = rng.integers(0, 256, 3)
    fg = (bg + 128) % 256
    img = np.clip(bg + rng.normal(0, 12, (h, w, 3)), 0, 255)
    img[mask] = np.clip(fg + rng.normal(0, 6, (int(mask.sum()), 3)), 0, 255)
    return img.astype(np.uint8), mask
