"""Small merge trees with known shapes for the proposal tests."""

from __future__ import annotations

import numpy as np

from mis_pipeline.merge import MergeTree, validate_tree, ward_grid


def balanced_tree(gh: int, gw: int) -> MergeTree:
    """Split the grid recursively in halves along its longer side; merge bottom-up.

    For a 2^a x 2^b grid every leaf is at depth a + b.
    """
    n = gh * gw
    rows: list[tuple[int, int]] = []

    def build(r0: int, r1: int, c0: int, c1: int) -> int:
        if r1 - r0 == 1 and c1 - c0 == 1:
            return r0 * gw + c0
        if r1 - r0 >= c1 - c0:
            mid = (r0 + r1) // 2
            a, b = build(r0, mid, c0, c1), build(mid, r1, c0, c1)
        else:
            mid = (c0 + c1) // 2
            a, b = build(r0, r1, c0, mid), build(r0, r1, mid, c1)
        rows.append((a, b))
        return n + len(rows) - 1

    build(0, gh, 0, gw)
    return validate_tree(np.array(rows), np.zeros(n - 1, np.float32), (gh, gw))


def caterpillar_tree(gh: int, gw: int) -> MergeTree:
    """Leaves merged one at a time in row-major order: root = (rest, last leaf)."""
    n = gh * gw
    rows = [(0, 1)] + [(n + s - 1, s + 1) for s in range(1, n - 1)]
    return validate_tree(np.array(rows), np.zeros(n - 1, np.float32), (gh, gw))


def ward_tree(gh: int, gw: int, seed: int = 0) -> MergeTree:
    """A realistic tree: Ward on smoothed random features."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    f = ndimage.gaussian_filter(rng.normal(size=(gh, gw, 8)), (2, 2, 0)).astype(np.float32)
    return ward_grid(f)


def leaves_by_walk(tree: MergeTree, v: int) -> set[int]:
    """Leaves under ``v`` by an explicit walk of ``children`` (independent of TreeIndex)."""
    n = tree.n_leaves
    out, stack = set(), [v]
    while stack:
        u = stack.pop()
        if u < n:
            out.add(u)
        else:
            stack.extend(int(x) for x in tree.children[u - n])
    return out
