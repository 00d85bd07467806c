"""Compiled kernel of :func:`mis_pipeline.evaluate.tree_mrf.label_tree` (imported on first use).

Trusts its input (checked by the wrapper): ``children`` (n-1, 2) int64 referencing earlier
nodes, costs float64 finite and >= 0 with shapes (n,), (n,), (2n-1,).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def label_tree_kernel(children, fg_cost, bg_cost, cut_cost, root_fg_cost):  # pragma: no cover - compiled
    n = fg_cost.shape[0]
    m = 2 * n - 1
    c0 = np.empty(m, np.float64)  # c0[v]: least cost of v's subtree given y(v) = 0
    c1 = np.empty(m, np.float64)
    for i in range(n):
        c0[i] = bg_cost[i]
        c1[i] = fg_cost[i]
    for k in range(n - 1):  # children precede parents in merge order
        v = n + k
        s0 = 0.0
        s1 = 0.0
        for j in range(2):
            c = children[k, j]
            s0 += min(c0[c], c1[c] + cut_cost[c])
            s1 += min(c1[c], c0[c] + cut_cost[c])
        c0[v] = s0
        c1[v] = s1
    y = np.zeros(m, np.uint8)
    y[m - 1] = 1 if c1[m - 1] + root_fg_cost < c0[m - 1] else 0
    for k in range(n - 2, -1, -1):  # parents before children
        v = n + k
        for j in range(2):
            c = children[k, j]
            if y[v] == 0:
                y[c] = 1 if c1[c] + cut_cost[c] < c0[c] else 0
            else:
                y[c] = 0 if c0[c] + cut_cost[c] < c1[c] else 1
    return y[:n].copy()
