"""Test inputs and plain references shared by the tests in tests/merge."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from mis_pipeline.merge import MergeTree

# Hypothesis profiles: "merge-ci" (default: deterministic, bounded run time) and
# "merge-thorough" (randomised, many more cases) selected with
# MIS_MERGE_HYPOTHESIS_PROFILE=merge-thorough.
settings.register_profile(
    "merge-ci",
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "merge-thorough",
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile(os.environ.get("MIS_MERGE_HYPOTHESIS_PROFILE", "merge-ci"))
THOROUGH = os.environ.get("MIS_MERGE_HYPOTHESIS_PROFILE") == "merge-thorough"


def examples(n: int) -> settings:
    """Settings of the active profile with ``n`` examples (x10 in the thorough profile)."""
    return settings(PROFILE, max_examples=n * 10 if THOROUGH else n)


KINDS = ("random", "smooth", "piecewise", "duplicated_rows", "integer", "constant")


def make_features(
    h: int, w: int, c: int, kind: str, dtype: type, rng: np.random.Generator
) -> np.ndarray:
    """A ``(h, w, c)`` feature grid of the given kind (all kinds but random/smooth have ties).

    random           i.i.d. normal
    smooth           gaussian-filtered noise (like real patch features)
    piecewise        a few constant regions (nearest of random seed cells): exact ties
    duplicated_rows  random rows, then some grid rows and columns copied from their neighbour
    integer          small integers 0..2: many equal non-zero costs
    constant         one vector everywhere: every cost 0, pure tie-breaking
    """
    if kind == "random":
        x = rng.standard_normal((h, w, c))
    elif kind == "smooth":
        from scipy.ndimage import gaussian_filter

        x = gaussian_filter(rng.standard_normal((h, w, c)), sigma=(1.5, 1.5, 0), mode="reflect")
    elif kind == "piecewise":
        k = int(rng.integers(1, 7))
        seeds = np.stack([rng.integers(0, h, k), rng.integers(0, w, k)], axis=1)
        rr, cc = np.mgrid[0:h, 0:w]
        d = (rr[..., None] - seeds[:, 0]) ** 2 + (cc[..., None] - seeds[:, 1]) ** 2
        label = d.argmin(axis=-1)
        x = rng.standard_normal((k, c))[label]
    elif kind == "duplicated_rows":
        x = rng.standard_normal((h, w, c))
        for r in range(1, h):
            if rng.random() < 0.5:
                x[r] = x[r - 1]
        for col in range(1, w):
            if rng.random() < 0.3:
                x[:, col] = x[:, col - 1]
    elif kind == "integer":
        x = rng.integers(0, 3, (h, w, c)).astype(np.float64)
    elif kind == "constant":
        x = np.broadcast_to(rng.standard_normal(c), (h, w, c)).copy()
    else:
        raise ValueError(kind)
    return np.ascontiguousarray(x, dtype=dtype)


@st.composite
def feature_grids(
    draw: st.DrawFn, max_side: int = 40, max_c: int = 64, kinds: tuple[str, ...] = KINDS
) -> np.ndarray:
    """Hypothesis strategy: a feature grid (1x1 .. max_side x max_side, 1 .. max_c channels)."""
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    c = draw(st.integers(1, max_c))
    kind = draw(st.sampled_from(kinds))
    dtype = draw(st.sampled_from((np.float32, np.float64)))
    seed = draw(st.integers(0, 2**32 - 1))
    return make_features(h, w, c, kind, dtype, np.random.default_rng(seed))


def ward_cost_from_leaves(features: np.ndarray, tree: MergeTree) -> tuple[np.ndarray, np.ndarray]:
    """Recompute each merge's cost from its leaves: (cost (n-1,), tolerance (n-1,)).

    ``s_a s_b / (s_a + s_b) * ||mean(X_a) - mean(X_b)||^2`` in float64, with an absolute
    tolerance for rounding in cancelling terms, ``1e-9 * w * (|mu_a|^2 + |mu_b|^2)``.
    """
    X = features.reshape(-1, features.shape[-1]).astype(np.float64)
    ix = tree.index
    out = np.empty(len(tree.children))
    tol = np.empty(len(tree.children))
    for s, (a, b) in enumerate(tree.children):
        la, lb = ix.leaves(a), ix.leaves(b)
        mu_a, mu_b = X[la].mean(axis=0), X[lb].mean(axis=0)
        wgt = len(la) * len(lb) / (len(la) + len(lb))
        out[s] = wgt * float(np.sum((mu_a - mu_b) ** 2))
        tol[s] = 1e-9 * wgt * float(mu_a @ mu_a + mu_b @ mu_b)
    return out, tol


def reference_index(tree: MergeTree) -> dict[str, np.ndarray]:
    """Plain-Python derived arrays (recursive definitions, no cleverness) for small trees."""
    n = tree.n_leaves
    nn = 2 * n - 1
    kids = {n + s: (int(a), int(b)) for s, (a, b) in enumerate(tree.children)}
    parent = np.full(nn, -1)
    for v, (a, b) in kids.items():
        parent[a] = v
        parent[b] = v

    def leaves(v: int) -> list[int]:
        if v < n:
            return [v]
        a, b = kids[v]
        return leaves(a) + leaves(b)

    def depth(v: int) -> int:
        return 0 if parent[v] < 0 else 1 + depth(int(parent[v]))

    order = leaves(nn - 1)
    pos = {leaf: i for i, leaf in enumerate(order)}
    sizes = np.array([len(leaves(v)) for v in range(nn)])
    start = np.array([min(pos[x] for x in leaves(v)) for v in range(nn)])
    return {
        "parent": parent,
        "sizes": sizes,
        "depth": np.array([depth(v) for v in range(nn)]),
        "order": np.array(order),
        "start": start,
        "stop": start + sizes,
        "leafsets": [sorted(leaves(v)) for v in range(nn)],
    }


def random_valid_tree(h: int, w: int, rng: np.random.Generator) -> MergeTree:
    """A random valid tree on an ``h x w`` grid (random order of random live pairs; no
    connectivity constraint: the contract checks structure, not adjacency)."""
    n = h * w
    live = list(range(n))
    children = np.empty((max(n - 1, 0), 2), dtype=np.int32)
    for s in range(n - 1):
        i, j = rng.choice(len(live), size=2, replace=False)
        a, b = live[i], live[j]
        children[s] = (a, b)
        live = [v for v in live if v not in (a, b)] + [n + s]
    cost = rng.exponential(1.0, max(n - 1, 0)).astype(np.float32)
    return MergeTree(children=children, cost=cost, grid_shape=(h, w))
