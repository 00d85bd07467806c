"""scikit-learn Ward trees for the store tests (random trees: ``random_tree`` in tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mis_pipeline.merge.tree import MergeTree


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
def ward_tree():
    """``ward_tree(gh, gw, rng) -> MergeTree`` (see :func:`sklearn_ward_tree`)."""
    return sklearn_ward_tree
