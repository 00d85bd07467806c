"""Check a merge tree from an untrusted source against the tree contract (DESIGN.md).

Everything is vectorised numpy: O(n) time and memory, no Python loop over merges.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import TreeValidationError
from .tree import MergeTree

__all__ = ["validate_tree", "MAX_LEAVES"]

# Node ids must fit int32 (2n - 1 nodes).
MAX_LEAVES = (2**31 - 2) // 2


def positive_int_pair(value: object) -> tuple[int, int] | None:
    """``(a, b)`` if ``value`` is a pair of positive integers (Python or numpy integers, not
    booleans), else None."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return None
    dims = list(value)
    if len(dims) != 2:
        return None
    out = []
    for d in dims:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)) or d < 1:
            return None
        out.append(int(d))
    return out[0], out[1]


def _grid_shape(grid_shape: object) -> tuple[int, int]:
    dims = positive_int_pair(grid_shape)
    if dims is None:
        raise TreeValidationError(
            f"grid_shape must be a pair (grid_h, grid_w) of positive integers, got {grid_shape!r}"
        )
    gh, gw = dims
    if gh * gw > MAX_LEAVES:
        raise TreeValidationError(f"grid_shape {gh}x{gw} has more than {MAX_LEAVES} cells")
    return gh, gw


def validate_tree(
    children: np.ndarray | Sequence[Sequence[int]],
    cost: np.ndarray | Sequence[float],
    grid_shape: Sequence[int],
) -> MergeTree:
    """Check an untrusted tree and return it as a :class:`MergeTree` (int32 / float32, C order).

    Parameters
    ----------
    children : array-like of int, shape (n-1, 2)
        Row ``s`` merges two nodes into node ``n + s``; ``n = grid_h * grid_w``.
    cost : array-like of float, shape (n-1,)
        Ward cost of each merge.
    grid_shape : pair of int
        ``(grid_h, grid_w)``, both >= 1.

    Checks: integer ``children`` of shape (n-1, 2); floating ``cost`` of shape (n-1,), finite
    and >= 0 (also after conversion to float32); every node id in range and created before it
    is used (row ``s`` may only refer to leaves and to nodes of rows ``< s``, i.e. ids
    ``< n + s``); every node except the root merged exactly once (so the rows form one binary
    tree over all leaves, rooted at ``2n - 2``). Costs need not be monotone.

    Raises
    ------
    TreeValidationError
        Naming the first violation found (row, node, value).
    """
    gh, gw = _grid_shape(grid_shape)
    n = gh * gw
    ch = np.asarray(children)
    co = np.asarray(cost)
    where = f"for grid_shape ({gh}, {gw}) (n = {n} leaves)"
    if ch.dtype.kind not in "iu":
        raise TreeValidationError(f"children must hold integers, got dtype {ch.dtype}")
    if ch.shape != (n - 1, 2):
        raise TreeValidationError(f"children has shape {ch.shape}; expected ({n - 1}, 2) {where}")
    if co.dtype.kind != "f":
        raise TreeValidationError(f"cost must hold floats, got dtype {co.dtype}")
    if co.shape != (n - 1,):
        raise TreeValidationError(f"cost has shape {co.shape}; expected ({n - 1},) {where}")

    with np.errstate(over="ignore"):  # out-of-range values become inf and are reported
        cost32 = np.ascontiguousarray(co, dtype=np.float32)
    bad = ~np.isfinite(cost32) | (cost32 < 0)
    if bad.any():
        s = int(np.flatnonzero(bad)[0])
        raise TreeValidationError(
            f"cost[{s}] is {float(co[s])!r}; costs must be finite, >= 0 and within float32 range "
            f"({int(bad.sum())} bad value(s))"
        )

    if n == 1:
        return MergeTree(
            children=np.empty((0, 2), dtype=np.int32), cost=cost32, grid_shape=(gh, gw)
        )
    # Range: 0 <= node < n + s on row s. Compare in int64 so no value can wrap around.
    ch64 = ch.astype(np.int64, copy=False)
    limit = n + np.arange(n - 1, dtype=np.int64)[:, None]
    bad = (ch64 < 0) | (ch64 >= limit)
    if bad.any():
        s, col = (int(x) for x in np.argwhere(bad)[0])
        raise TreeValidationError(
            f"children row {s} refers to node {int(ch64[s, col])}, which does not exist at that "
            f"point: row {s} creates node {n + s} and may only use nodes 0..{n + s - 1} "
            f"(leaves and nodes created by earlier rows)"
        )
    # Every node 0..2n-3 exactly once (the range check already excludes the root 2n-2).
    counts = np.bincount(ch64.ravel(), minlength=2 * n - 1)
    if (counts != 1)[: 2 * n - 2].any():
        v = int(np.flatnonzero(counts[: 2 * n - 2] != 1)[0])
        if counts[v] == 0:
            raise TreeValidationError(
                f"node {v} is never merged; every node except the root {2 * n - 2} must be "
                f"merged exactly once"
            )
        rows = np.flatnonzero((ch64 == v).any(axis=1))[:5].tolist()
        raise TreeValidationError(
            f"node {v} is merged {int(counts[v])} times (rows {rows}); every node except the "
            f"root {2 * n - 2} must be merged exactly once"
        )
    return MergeTree(
        children=np.ascontiguousarray(ch64, dtype=np.int32), cost=cost32, grid_shape=(gh, gw)
    )
