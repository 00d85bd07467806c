"""Exact binary labelling of a merge tree: a two-state MRF on the tree, solved by dynamic programming.

Every node ``v`` of a merge tree gets a label ``y(v)`` in {0 = background, 1 = foreground}; the
leaves' labels are the answer. The energy is

    E(y) = sum_leaves  (fg_cost[l] if y(l) = 1 else bg_cost[l])
         + sum_{v != root} cut_cost[v] * [y(v) != y(parent(v))]
         + root_fg_cost * [y(root) = 1]

so a subtree takes a label different from its parent's only where that is worth
``cut_cost``. On a tree this is minimised exactly in O(n) by the usual two-state recursion
(children before parents, then a top-down pass choosing each child's label given its
parent's):

    C_y(leaf) = fg_cost or bg_cost,
    C_y(v)    = sum over children c of min(C_y(c), C_(1-y)(c) + cut_cost[c]).

Ties are broken deterministically: the root takes background unless foreground is strictly
cheaper, and a child keeps its parent's label unless switching is strictly cheaper.

:func:`label_tree` is the public wrapper (checks its inputs once); the compiled kernel
(:mod:`._tree_mrf_kernel`) trusts them. :func:`label_tree_reference` is the same recursion in
plain Python (the tests compare the two, and both against brute force on tiny trees).
"""

from __future__ import annotations

import numpy as np

__all__ = ["label_tree", "label_tree_reference", "tree_energy"]


def _kernel():  # numba is imported (and the kernel compiled or loaded from cache) on first use
    from ._tree_mrf_kernel import label_tree_kernel

    return label_tree_kernel


def _check(children: np.ndarray, fg_cost: np.ndarray, bg_cost: np.ndarray, cut_cost: np.ndarray):
    children = np.ascontiguousarray(children, dtype=np.int64)
    fg = np.ascontiguousarray(fg_cost, dtype=np.float64)
    bg = np.ascontiguousarray(bg_cost, dtype=np.float64)
    cut = np.ascontiguousarray(cut_cost, dtype=np.float64)
    n = fg.shape[0]
    if fg.ndim != 1 or bg.shape != fg.shape or n < 1:
        raise ValueError(f"fg_cost and bg_cost must be equal-length 1-D arrays (n,), got {fg.shape} and {bg.shape}")
    if children.shape != (n - 1, 2):
        raise ValueError(f"children must have shape ({n - 1}, 2) for {n} leaves, got {children.shape}")
    if cut.shape != (2 * n - 1,):
        raise ValueError(f"cut_cost must have shape ({2 * n - 1},) (one per node), got {cut.shape}")
    if n > 1 and (children.min() < 0 or np.any(children >= n + np.arange(n - 1)[:, None])):
        raise ValueError("children must reference earlier nodes only (child id < n + row)")
    for name, a in (("fg_cost", fg), ("bg_cost", bg), ("cut_cost", cut)):
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError(f"{name} must be finite and >= 0")
    return children, fg, bg, cut


def label_tree(
    children: np.ndarray,
    fg_cost: np.ndarray,
    bg_cost: np.ndarray,
    cut_cost: np.ndarray,
    root_fg_cost: float = 0.0,
) -> np.ndarray:
    """Minimum-energy leaf labelling (see the module docstring).

    Parameters
    ----------
    children : ndarray (n-1, 2) int
        Merge tree in the scipy/scikit-learn convention (row ``k`` creates node ``n + k``).
    fg_cost, bg_cost : ndarray (n,) float, >= 0
        Cost of labelling each leaf foreground / background.
    cut_cost : ndarray (2n-1,) float, >= 0
        Cost of node ``v`` taking a label different from its parent's (the root's entry is
        unused).
    root_fg_cost : float, >= 0
        Extra cost of a foreground root.

    Returns
    -------
    ndarray (n,) bool
        Foreground flag of each leaf.
    """
    children, fg, bg, cut = _check(children, fg_cost, bg_cost, cut_cost)
    if not (np.isfinite(root_fg_cost) and root_fg_cost >= 0):
        raise ValueError(f"root_fg_cost must be finite and >= 0, got {root_fg_cost}")
    return _kernel()(children, fg, bg, cut, float(root_fg_cost)).astype(bool)


def label_tree_reference(
    children: np.ndarray,
    fg_cost: np.ndarray,
    bg_cost: np.ndarray,
    cut_cost: np.ndarray,
    root_fg_cost: float = 0.0,
) -> np.ndarray:
    """Plain-Python version of :func:`label_tree` (same recursion, same tie-breaking)."""
    children, fg, bg, cut = _check(children, fg_cost, bg_cost, cut_cost)
    n = fg.shape[0]
    cost = {i: (float(bg[i]), float(fg[i])) for i in range(n)}
    for k in range(n - 1):
        a, b = (int(x) for x in children[k])
        totals = []
        for y in (0, 1):
            totals.append(sum(min(cost[c][y], cost[c][1 - y] + float(cut[c])) for c in (a, b)))
        cost[n + k] = (totals[0], totals[1])
    root = 2 * n - 2
    label = {root: 1 if cost[root][1] + root_fg_cost < cost[root][0] else 0}
    for k in range(n - 2, -1, -1):
        v = n + k
        for c in (int(x) for x in children[k]):
            keep, switch = cost[c][label[v]], cost[c][1 - label[v]] + float(cut[c])
            label[c] = 1 - label[v] if switch < keep else label[v]
    return np.array([label[i] == 1 for i in range(n)], dtype=bool)


def tree_energy(
    node_labels: np.ndarray,
    children: np.ndarray,
    fg_cost: np.ndarray,
    bg_cost: np.ndarray,
    cut_cost: np.ndarray,
    root_fg_cost: float = 0.0,
) -> float:
    """Energy of a full node labelling ``node_labels`` ((2n-1,) of 0/1), for tests and checks."""
    y = np.asarray(node_labels, dtype=np.int64)
    n = len(fg_cost)
    e = float(np.sum(np.where(y[:n] == 1, fg_cost, bg_cost)))
    for k in range(n - 1):
        for c in children[k]:
            if y[c] != y[n + k]:
                e += float(cut_cost[c])
    return e + (root_fg_cost if y[2 * n - 2] == 1 else 0.0)
