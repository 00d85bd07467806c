"""Connectivity-constrained Ward merge of a patch-feature grid: the public entry point.

:func:`ward_grid` checks its input once and hands it to the compiled kernel in
:mod:`mis_pipeline.merge._ward_kernel`, which trusts it. The kernel module (and numba with it)
is imported on the first call, so ``import mis_pipeline.merge`` stays cheap.

The result is exactly the hierarchy of
``sklearn.cluster.ward_tree(X, connectivity=grid_to_graph(grid_h, grid_w))`` with
``X = features.reshape(-1, C)``, merge for merge (same ``children`` array), including how exact
ties are broken; see :mod:`mis_pipeline.merge._ward_kernel` for how.
"""

from __future__ import annotations

import logging

import numpy as np

from .tree import MergeTree

__all__ = ["ward_grid", "MAX_SUM_OF_SQUARES"]

logger = logging.getLogger(__name__)

# Every Ward merge cost is at most the total sum of squares of the features (a merge's cost is
# the increase of the within-cluster sum of squares, which never exceeds the sum of squares
# about the global mean, itself at most sum(x ** 2)). Bounding that sum by the float32 maximum
# guarantees finite float32 costs and keeps every float64 intermediate far from overflow.
MAX_SUM_OF_SQUARES = float(np.finfo(np.float32).max)

# Leaves are addressed with int32 node ids (2n - 1 nodes); a pair of node ids and its owner
# bit are packed into an int64 heap code (ids below 2**30; see _heap.py), a pool entry keeps
# a flag in bit 30 of a node id, and neighbour-list offsets (below 8n + 16) are int32 (see
# _ward_kernel.py). 2**27 cells: a 11585x11585 patch grid.
_MAX_LEAVES = 2**27


def _check_features(features: object) -> np.ndarray:
    """Validate ``features`` and return it as a C-contiguous float32/float64 ``(n, C)`` array
    (float16 is widened to float32, which is exact), without copying when already fine."""
    if not isinstance(features, np.ndarray):
        raise ValueError(
            f"features must be a numpy array of shape (grid_h, grid_w, C), got {type(features).__name__}"
        )
    if features.ndim != 3:
        raise ValueError(
            f"features must have shape (grid_h, grid_w, C), got an array with {features.ndim} "
            f"dimension(s) and shape {features.shape}"
        )
    grid_h, grid_w, n_feat = features.shape
    if grid_h == 0 or grid_w == 0:
        raise ValueError(
            f"features describe an empty grid: shape {features.shape} (grid_h and grid_w must be >= 1)"
        )
    if n_feat == 0:
        raise ValueError(f"features have no channels: shape {features.shape} (C must be >= 1)")
    if grid_h * grid_w > _MAX_LEAVES:
        raise ValueError(f"grid {grid_h}x{grid_w} has more than {_MAX_LEAVES} cells")
    if features.dtype.kind != "f" or features.dtype.itemsize not in (2, 4, 8):
        raise ValueError(
            f"features must be float16, float32 or float64, got dtype {features.dtype}"
        )
    work = np.float64 if features.dtype.itemsize == 8 else np.float32
    # Native byte order, C order; a no-op (no copy) for the usual float32/float64 input.
    return np.ascontiguousarray(features.reshape(grid_h * grid_w, n_feat), dtype=work)


def _raise_bad_values(X: np.ndarray, grid_w: int) -> None:
    """Raise the ValueError that says why ``X`` failed the value check (non-finite values, or
    a sum of squares above :data:`MAX_SUM_OF_SQUARES`)."""
    bad = ~np.isfinite(X)
    if bad.any():
        first = np.argwhere(bad)[0]
        r, c = divmod(int(first[0]), grid_w)
        raise ValueError(
            f"features contain non-finite values ({int(np.isnan(X).sum())} NaN, "
            f"{int(np.isinf(X).sum())} inf), first at (row={r}, col={c}, "
            f"channel={int(first[1])}); all values must be finite"
        )
    energy = float(np.sum(np.square(X, dtype=np.float64)))
    raise ValueError(
        f"features are too large: their sum of squares is {energy:.3g} (largest magnitude "
        f"{float(np.abs(X).max()):.3g}); at most {MAX_SUM_OF_SQUARES:.3g} is allowed so that "
        "every Ward cost fits float32"
    )


def ward_grid(features: np.ndarray) -> MergeTree:
    """Ward merge tree of a patch-feature grid under 4-neighbour connectivity.

    Parameters
    ----------
    features : ndarray, shape (grid_h, grid_w, C), float16 / float32 / float64
        One feature vector per patch; ``features[r, c]`` is the patch at row ``r``, column
        ``c``. Leaf ``r * grid_w + c`` of the tree is that patch. Values must be finite.

    Returns
    -------
    MergeTree
        ``children`` (n-1, 2) int32 (row ``s`` merges two nodes into node ``n + s``; each
        row is ``(smaller id, larger id)``), ``cost`` (n-1,) float32 (MIS eq. 4,
        ``s_a s_b / (s_a + s_b) * ||mu_a - mu_b||^2``, evaluated in float64), ``grid_shape``
        ``(grid_h, grid_w)``. A 1x1 grid gives an empty tree.

    The hierarchy and the merge order equal scikit-learn's
    ``ward_tree(features.reshape(-1, C), connectivity=grid_to_graph(grid_h, grid_w))``,
    whose ``return_distance`` values are ``sqrt(2 * cost)``; each cost is scikit-learn's
    float64 criterion, bit for bit, rounded to float32. Ties between equal costs go to the
    pair with the smaller larger-node-id, then the smaller smaller-node-id (the order of
    scikit-learn's heap). Internally, distances are summed in SIMD lanes with a proven error
    bound, and the rare comparisons the bound cannot decide are settled with scikit-learn's
    own sequential arithmetic (see ``_ward_kernel.py``).

    Memory: besides the output, one float64 ``(n // 2, C)`` work array (sums of internal
    clusters; the size of a float32 feature array) and about ``210 n`` bytes of bookkeeping
    (0.14x more at C = 384); a float16 input is first widened to a float32 copy.

    Raises
    ------
    ValueError
        ``features`` is not a numpy array, not float16/32/64, not 3-D, has an empty grid or
        no channels, holds NaN/inf, or its sum of squares exceeds :data:`MAX_SUM_OF_SQUARES`
        (the float32 maximum, which bounds every merge cost).
    """
    X = _check_features(features)
    grid_h, grid_w = int(features.shape[0]), int(features.shape[1])
    n = grid_h * grid_w
    if n == 1:
        if not float(np.sum(np.square(X, dtype=np.float64))) <= MAX_SUM_OF_SQUARES:
            _raise_bad_values(X, grid_w)
        return MergeTree(
            children=np.empty((0, 2), dtype=np.int32),
            cost=np.empty(0, dtype=np.float32),
            grid_shape=(grid_h, grid_w),
        )
    from ._ward_kernel import ward_grid_kernel  # numba: imported on first use

    n_slots = max(n // 2, 1)
    # The big work array comes from numpy rather than from inside the kernel: numpy asks the
    # operating system for transparent huge pages on large allocations, which cuts TLB misses
    # on the merge loop's random row accesses.
    sums = np.empty((n_slots, X.shape[1]), dtype=np.float64)
    logger.debug("ward_grid: %dx%d grid, %d channels (%s)", grid_h, grid_w, X.shape[1], X.dtype)
    # The kernel checks the values (finite, sum of squares bounded) in its first pass over
    # them, which saves a separate pass over a large feature array.
    children, cost, stats = ward_grid_kernel(X, grid_h, grid_w, sums, 1.0, MAX_SUM_OF_SQUARES)
    if stats[0] < 0:
        _raise_bad_values(X, grid_w)
    return MergeTree(children=children, cost=cost, grid_shape=(grid_h, grid_w))
