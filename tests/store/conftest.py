"""Valid grid merge trees for the store tests (random ones and scikit-learn Ward trees)."""

from __future__ import annotations

import numpy as np
import pytest

from mis_pipeline.merge.tree import MergeTree


def random_grid_tree(gh: int, gw: int, rng: np.random.Generator) -> MergeTree:
    """A random merge tree on a ``gh x gw`` grid: each step merges a random touching pair."""
    n = gh * gw
    label = np.arange(n)
    edges = [(r * gw + c, r * gw + c + 1) for r in range(gh) for c in range(gw - 1)]
    edges += [(r * gw + c, (r + 1) * gw + c) for r in range(gh - 1) for c in range(gw)]
    children = np.zeros((n - 1, 2), np.int32)
    for k in range(n - 1):
        while True:
            u, v = edges[int(rng.integers(len(edges)))]
            a, b = label[u], label[v]
            if a != b:
                break
        if rng.random() < 0.5:
            a, b = b, a
        children[k] = (a, b)
        label[(label == a) | (label == b)] = n + k
    cost = np.cumsum(rng.exponential(1.0, n - 1)).astype(np.float32) * rng.uniform(0.5, 2.0, n - 1).astype(np.float32)
    return MergeTree(children=children, cost=cost, grid_shape=(gh, gw))


def sklearn_ward_tree(gh: int, gw: int, rng: np.random.Generator, dim: int = 6) -> MergeTree:
    """scikit-learn's connectivity-constrained Ward tree of smooth random features."""
    from sklearn.cluster import ward_tree
    from sklearn.feature_extraction.image import grid_to_graph

    base = rng.normal(size=(gh, gw, dim)).cumsum(0).cumsum(1)
    x = base.reshape(gh * gw, dim)
    children, _, _, _, dist = ward_tree(x, connectivity=grid_to_graph(gh, gw), return_distance=True)
    children = np.asarray(children, np.int32).reshape(-1, 2)
    return MergeTree(children=children, cost=(np.asarray(dist) ** 2 / 2).astype(np.float32).reshape(-1), grid_shape=(gh, gw))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def random_tree():
    """``random_tree(gh, gw, rng) -> MergeTree`` (see :func:`random_grid_tree`)."""
    return random_grid_tree


@pytest.fixture
def ward_tree():
    """``ward_tree(gh, gw, rng) -> MergeTree`` (see :func:`sklearn_ward_tree`)."""
    return sklearn_ward_tree
