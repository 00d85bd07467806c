"""Cascade-Forward Refinement (CFR) and adaptive CFR of CFR-ICL (Sun et al., eqs. 4-5).

After each user click the model is run once as usual (the coarse output of eq. 4, fed the last
refined mask of the previous click), then ``n`` more times with the *same* clicks, each time fed
its own previous output (eq. 5)::

    Y_0^t = f(X, P^t, Y_n^(t-1))
    Y_i^t = f(X, P^t, Y_(i-1)^t),   i = 1..n

CFR-n runs all ``n`` refinements, so ``n + 1`` forwards per click; ``n = 0`` is the plain
predictor. A-CFR-n counts the pixels whose binarised value changes between ``Y_i`` and
``Y_(i-1)`` and stops as soon as that count is at most ``threshold`` (20 pixels in the paper's
Table 3; the public code tests ``diff <= 20``, which the paper words "falls below"), or when
``n`` refinements are done. ``Y_0`` is never compared with the previous click's mask (neither in
the paper nor in the public code).

The public code also limits CFR to the first ``--cf-click`` clicks (default 1); the paper's
eqs. 4-5 refine after every click. :func:`cfr_applies` implements both (``max_clicks=None`` is
the paper).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["cascade_forward", "cfr_applies", "changed_pixels", "CfrResult"]


class CfrResult(NamedTuple):
    """``prob``: the last output (same type and shape as ``forward`` returns); ``forwards``: how
    many times ``forward`` ran (1 + refinements); ``changed``: changed-pixel count of each
    refinement against its input (empty for n = 0)."""

    prob: Any
    forwards: int
    changed: list[int]


def changed_pixels(a: Any, b: Any, threshold: float = 0.49) -> int:
    """Number of pixels whose mask ``x > threshold`` differs between ``a`` and ``b`` (numpy or torch)."""
    return int(((a > threshold) != (b > threshold)).sum())


def cfr_applies(num_clicks: int, max_clicks: int | None) -> bool:
    """Whether CFR refines after the ``num_clicks``-th click (``max_clicks=None``: always)."""
    return max_clicks is None or num_clicks <= max_clicks


def cascade_forward(
    forward: Callable[[Any], Any],
    prev_prob: Any,
    *,
    steps: int = 0,
    adaptive: bool = False,
    threshold: int = 20,
    prob_threshold: float = 0.49,
) -> CfrResult:
    """CFR-``steps`` (or A-CFR-``steps`` when ``adaptive``) for one click.

    Parameters
    ----------
    forward : ``forward(prev_prob) -> prob``: one model pass with the current clicks bound in;
        ``prob`` is a foreground probability map (numpy or torch, any shape) of the same kind
        ``forward`` accepts as its previous mask.
    prev_prob : ``Y_n^(t-1)``, the refined output of the previous click (zeros before the first).
    steps : ``n``, the number of refinement forwards (>= 0).
    adaptive, threshold, prob_threshold : A-CFR stopping rule (see the module docstring).
    """
    if steps < 0:
        raise ValueError(f"cfr steps must be >= 0, got {steps}")
    if threshold < 0:
        raise ValueError(f"a-cfr threshold must be >= 0, got {threshold}")
    prob = forward(prev_prob)  # eq. 4
    changed: list[int] = []
    for _ in range(steps):  # eq. 5
        new = forward(prob)
        changed.append(changed_pixels(new, prob, prob_threshold))
        prob = new
        if adaptive and changed[-1] <= threshold:
            break
    return CfrResult(prob, 1 + len(changed), changed)
