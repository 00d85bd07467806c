"""Random draws shared by the click sampler and its plain reference.

Both implementations call exactly these functions in exactly the same order, so with one
generator state they return bit-identical clicks; only how the candidate pixels are found
differs (the reference materialises every region at full size).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

NEG_STRATEGIES = ("background", "other", "border")


@lru_cache(maxsize=64)
def count_cdf(n: int, gamma: float) -> np.ndarray:
    """Cumulative law of ``i`` in ``0 .. n-1`` with ``P(i) ~ gamma^i`` (RITM
    ``generate_probs``), normalised so its last entry is exactly 1. Read-only."""
    probs = gamma ** np.arange(n, dtype=np.float64)
    cdf = np.cumsum(probs / probs.sum())
    cdf /= cdf[-1]
    cdf.setflags(write=False)
    return cdf


@lru_cache(maxsize=64)
def strategy_cdf(probs: tuple[float, float, float]) -> np.ndarray:
    cdf = np.cumsum(np.asarray(probs, dtype=np.float64))
    cdf /= cdf[-1]
    cdf.setflags(write=False)
    return cdf


def draw_index(rng: np.random.Generator, cdf: np.ndarray) -> int:
    """One index drawn from a cumulative law by inversion: one uniform, as
    ``numpy.random.choice(..., p=...)`` does."""
    return int(np.searchsorted(cdf, rng.random(), side="right"))


def draw_erode(rng: np.random.Generator, prob: float) -> bool:
    """Whether to erode the positive mask (RITM: skip when ``random() > prob``)."""
    return not (rng.random() > prob)


def draw_pixel(rng: np.random.Generator, count: int) -> int:
    """Index ``0 .. count-1`` of a uniformly drawn candidate pixel in row-major order."""
    return int(rng.integers(0, count))


def draw_full_first(rng: np.random.Generator, prob: float) -> bool:
    """Whether the first click ignores the inner region (drawn only when ``prob > 0``, as
    RITM's ``get_point_candidates``)."""
    return prob > 0 and rng.random() < prob


def weighted_index(rng: np.random.Generator, weights: np.ndarray) -> int:
    """One index with probability proportional to ``weights`` (float64, >= 0, sum > 0)."""
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return int(min(np.searchsorted(cdf, rng.random(), side="right"), len(cdf) - 1))


def border_radius(area: int, expand_ratio: float) -> int:
    """Dilation iterations of the border strategy: ``ceil(expand_ratio * sqrt(area))``."""
    return int(np.ceil(expand_ratio * np.sqrt(area)))
