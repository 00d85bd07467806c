"""Numba kernel behind :func:`mis_pipeline.merge.tree_index` (imported lazily).

Assumes a valid tree (:func:`mis_pipeline.merge.validate_tree` semantics): with a malformed
``children`` array it would index out of bounds. Nothing is checked here.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["tree_index_kernel"]


@njit(cache=True, nogil=True)
def tree_index_kernel(children, n):
    """Derived arrays of a valid merge tree with ``n`` leaves, in two O(n) passes.

    ``children``: (n-1, 2) int32. Returns int32 arrays ``sizes, parent, depth, start``
    (2n-1,) and ``order`` (n,): leaves in depth-first order, first child (column 0) first,
    so that the leaves of node ``v`` are ``order[start[v] : start[v] + sizes[v]]``.
    """
    n_nodes = 2 * n - 1
    sizes = np.empty(n_nodes, dtype=np.int32)
    parent = np.empty(n_nodes, dtype=np.int32)
    depth = np.empty(n_nodes, dtype=np.int32)
    start = np.empty(n_nodes, dtype=np.int32)
    order = np.empty(n, dtype=np.int32)
    # Bottom-up (children are created before parents): sizes and parents.
    sizes[:n] = 1
    for s in range(n - 1):
        a = children[s, 0]
        b = children[s, 1]
        v = n + s
        sizes[v] = sizes[a] + sizes[b]
        parent[a] = v
        parent[b] = v
    root = n_nodes - 1
    parent[root] = -1
    depth[root] = 0
    start[root] = 0
    # Top-down (parents before children, i.e. decreasing ids): depth and span starts. The
    # first child's span opens where its parent's does, the second one follows it.
    for s in range(n - 2, -1, -1):
        v = n + s
        a = children[s, 0]
        b = children[s, 1]
        depth[a] = depth[v] + 1
        depth[b] = depth[v] + 1
        start[a] = start[v]
        start[b] = start[v] + sizes[a]
    for leaf in range(n):
        order[start[leaf]] = leaf
    return sizes, parent, depth, order, start
