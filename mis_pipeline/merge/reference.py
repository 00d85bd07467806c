"""Plain references for the compiled Ward kernel, for tests and benchmarks (tiny inputs only).

* :func:`ward_grid_sklearn` - scikit-learn's ``ward_tree`` with ``grid_to_graph``
  connectivity: the behaviour the kernel must reproduce (needs scikit-learn, a dev dependency).
* :func:`ward_grid_python` - the kernel's own algorithm in plain Python (dicts, Python
  floats; no numba, no numpy in the loop), so a failure can be pinned on the algorithm or on
  its compiled form.
* :func:`clusters_of` - the hierarchy as a set of leaf sets, the form in which two trees are
  compared.
"""

from __future__ import annotations

import numpy as np

from ..errors import DependencyError
from .tree import MergeTree
from .ward import _check_features

__all__ = ["ward_grid_sklearn", "ward_grid_python", "clusters_of"]


def ward_grid_sklearn(features: np.ndarray) -> MergeTree:
    """``sklearn.cluster.ward_tree(X, connectivity=grid_to_graph(h, w))`` as a MergeTree.

    ``features`` as for :func:`~mis_pipeline.merge.ward_grid`. ``children`` is scikit-learn's
    ``children_`` unchanged; ``cost`` is ``distance ** 2 / 2`` of its ``return_distance``
    output (scikit-learn reports ``sqrt(2 * cost)``), rounded to float32.
    """
    X = _check_features(features)
    h, w = int(features.shape[0]), int(features.shape[1])
    if h * w == 1:
        return MergeTree(np.empty((0, 2), np.int32), np.empty(0, np.float32), (h, w))
    try:
        from sklearn.cluster import ward_tree
        from sklearn.feature_extraction.image import grid_to_graph
    except ImportError as exc:  # pragma: no cover - dev dependency
        raise DependencyError("scikit-learn", "the scikit-learn Ward reference") from exc
    children, _, _, _, distances = ward_tree(
        X.astype(np.float64), connectivity=grid_to_graph(h, w), return_distance=True
    )
    cost = (np.asarray(distances, dtype=np.float64) ** 2 / 2.0).astype(np.float32)
    return MergeTree(np.asarray(children, dtype=np.int32), cost, (h, w))


def _criterion(mu_a: list[float], s_a: float, mu_b: list[float], s_b: float) -> float:
    """scikit-learn's ``compute_ward_dist`` for one pair, term by term in order."""
    pa = 0.0
    for x, y in zip(mu_a, mu_b, strict=True):
        d = x - y
        pa += d * d
    return pa * ((s_a * s_b) / (s_a + s_b))


def ward_grid_python(features: np.ndarray) -> MergeTree:
    """The compiled kernel's algorithm in plain Python; O(n^2): tiny grids only.

    Every live cluster keeps its best adjacent pair (smallest ``(cost, hi, lo)``) with the
    pair criteria stored per adjacency; each step merges the smallest of those (the kernel
    keeps them in an indexed heap instead of scanning), recomputes the new cluster's criteria
    against its neighbours and refreshes the neighbours' best pairs. Sums ``m_k = m_i + m_j``
    and centroids ``m / s`` in float64 and the criterion evaluated as scikit-learn does, so
    results are bit-identical to the kernel.
    """
    X = _check_features(features)
    h, w = int(features.shape[0]), int(features.shape[1])
    n = h * w
    if n == 1:
        return MergeTree(np.empty((0, 2), np.int32), np.empty(0, np.float32), (h, w))
    sums: dict[int, list[float]] = {v: [float(x) for x in X[v]] for v in range(n)}
    cent: dict[int, list[float]] = {v: list(sums[v]) for v in range(n)}
    size: dict[int, float] = {v: 1.0 for v in range(n)}
    adj: dict[int, dict[int, float]] = {v: {} for v in range(n)}
    for v in range(n):
        r, c = divmod(v, w)
        for u in ((v - w) if r > 0 else -1, (v - 1) if c > 0 else -1):
            if u >= 0:
                cst = _criterion(cent[v], 1.0, cent[u], 1.0)
                adj[v][u] = cst
                adj[u][v] = cst

    def best_of(v: int) -> tuple[float, int, int]:
        return min((cst, max(u, v), min(u, v)) for u, cst in adj[v].items())

    best = {v: best_of(v) for v in range(n)}
    children = np.empty((n - 1, 2), dtype=np.int32)
    cost = np.empty(n - 1, dtype=np.float64)
    for step in range(n - 1):
        k = n + step
        cst, i, j = min(best.values())
        del best[i], best[j]
        children[step] = (j, i)
        cost[step] = cst
        size[k] = size[i] + size[j]
        sums[k] = [a + b for a, b in zip(sums.pop(i), sums.pop(j), strict=True)]
        cent[k] = [m / size[k] for m in sums[k]]
        del cent[i], cent[j]
        neighbours = (set(adj.pop(i)) | set(adj.pop(j))) - {i, j}
        adj[k] = {}
        for t in sorted(neighbours):
            cst_kt = _criterion(cent[k], size[k], cent[t], size[t])
            adj[k][t] = cst_kt
            adj[t].pop(i, None)
            adj[t].pop(j, None)
            adj[t][k] = cst_kt
            best[t] = best_of(t)
        if adj[k]:
            best[k] = best_of(k)
    return MergeTree(children, cost.astype(np.float32), (h, w))


def clusters_of(tree: MergeTree) -> set[frozenset[int]]:
    """Every internal node of ``tree`` as the frozenset of its leaves (the hierarchy)."""
    ix = tree.index
    return {frozenset(ix.leaves(v).tolist()) for v in range(tree.n_leaves, tree.n_nodes)}
