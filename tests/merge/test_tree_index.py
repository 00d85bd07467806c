"""TreeIndex / tree_index against plain recursive definitions; masks at grid and image size."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from merge_cases import examples, make_features, random_valid_tree, reference_index

from mis_pipeline.errors import TreeValidationError
from mis_pipeline.merge import MergeTree, TreeIndex, grid_cell_of_pixels, tree_index, ward_grid


def _check_against_reference(tree: MergeTree) -> None:
    ix = tree_index(tree)
    ref = reference_index(tree)
    for name in ("sizes", "parent", "depth", "order", "start", "stop"):
        got = getattr(ix, name)
        assert got.dtype == np.int32, name
        np.testing.assert_array_equal(got, ref[name], err_msg=name)
    for v in range(tree.n_nodes):
        assert sorted(ix.leaves(v).tolist()) == ref["leafsets"][v]


@examples(60)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_random_trees_match_reference(h: int, w: int, seed: int) -> None:
    _check_against_reference(random_valid_tree(h, w, np.random.default_rng(seed)))


@pytest.mark.parametrize("kind", ["smooth", "constant", "integer"])
def test_ward_trees_match_reference(kind: str) -> None:
    feats = make_features(7, 8, 3, kind, np.float32, np.random.default_rng(2))
    _check_against_reference(ward_grid(feats))


def test_chain_tree_depth() -> None:
    # Caterpillar: leaf k joins the growing cluster at step k-1 -> depth n-1 for leaves 0, 1.
    n = 6
    children = [[0, 1]] + [[k + 1, n + k - 1] for k in range(1, n - 1)]
    tree = MergeTree(np.array(children, np.int32), np.zeros(n - 1, np.float32), (1, n))
    ix = tree.index
    assert ix.depth[:2].tolist() == [n - 1, n - 1]
    assert ix.depth[tree.root] == 0 and ix.parent[tree.root] == -1
    assert ix.sizes[tree.root] == n
    # depth-first, first child (column 0) first: root = (5, 9), 9 = (4, 8), ...
    assert ix.order.tolist() == [5, 4, 3, 2, 0, 1]


def test_spans_are_contiguous_and_nested() -> None:
    tree = ward_grid(make_features(10, 12, 4, "smooth", np.float32, np.random.default_rng(8)))
    ix = tree.index
    np.testing.assert_array_equal(ix.stop - ix.start, ix.sizes)
    assert sorted(ix.order.tolist()) == list(range(tree.n_leaves))
    for s, (a, b) in enumerate(tree.children):
        v = tree.n_leaves + s
        assert ix.start[a] == ix.start[v] and ix.stop[a] == ix.start[b] and ix.stop[b] == ix.stop[v]
    assert ix.start[tree.root] == 0 and ix.stop[tree.root] == tree.n_leaves


def test_index_is_cached_and_read_only() -> None:
    tree = ward_grid(make_features(4, 5, 2, "random", np.float32, np.random.default_rng(1)))
    assert tree.index is tree.index
    assert isinstance(tree.index, TreeIndex)
    for name in ("sizes", "parent", "depth", "order", "start", "stop"):
        with pytest.raises(ValueError):
            getattr(tree.index, name)[0] = 7
    with pytest.raises(ValueError):
        tree.index.leaves(tree.root)[0] = 3


def test_grid_mask() -> None:
    feats = np.zeros((3, 4, 1), np.float32)
    feats[:, 2:] = 1.0  # right half different
    tree = ward_grid(feats)
    ix = tree.index
    right = next(
        v for v in range(tree.n_nodes) if sorted(ix.leaves(v).tolist()) == [2, 3, 6, 7, 10, 11]
    )
    expected = np.zeros((3, 4), bool)
    expected[:, 2:] = True
    np.testing.assert_array_equal(ix.grid_mask(right), expected)
    leaf = ix.grid_mask(5)
    assert leaf.shape == (3, 4) and leaf.sum() == 1 and leaf[1, 1]
    assert ix.grid_mask(tree.root).all()


def test_image_mask_exact_multiple_is_block_upsampling() -> None:
    tree = ward_grid(make_features(5, 6, 3, "smooth", np.float32, np.random.default_rng(3)))
    ix = tree.index
    for v in (3, tree.n_leaves + 10, tree.root - 1):
        np.testing.assert_array_equal(
            ix.image_mask(v, (40, 48)), np.kron(ix.grid_mask(v), np.ones((8, 8), bool))
        )


@pytest.mark.parametrize("image_shape", [(37, 53), (5, 6), (3, 2), (100, 7), (1, 1)])
def test_image_mask_follows_the_stretch_rule(image_shape: tuple[int, int]) -> None:
    gh, gw = 5, 6
    tree = ward_grid(make_features(gh, gw, 2, "random", np.float32, np.random.default_rng(4)))
    ix = tree.index
    H, W = image_shape
    for v in (0, 17, tree.n_leaves + 7, tree.root - 2):
        g = ix.grid_mask(v)
        expected = np.array([[g[(y * gh) // H, (x * gw) // W] for x in range(W)] for y in range(H)])
        got = ix.image_mask(v, image_shape)
        assert got.shape == (H, W) and got.dtype == bool
        np.testing.assert_array_equal(got, expected)


def test_grid_cell_of_pixels() -> None:
    rows, cols = grid_cell_of_pixels((10, 4), (3, 4))
    assert rows.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert cols.tolist() == [0, 1, 2, 3]


def test_bad_queries() -> None:
    tree = ward_grid(make_features(2, 3, 2, "random", np.float32, np.random.default_rng(5)))
    ix = tree.index
    with pytest.raises(IndexError, match="node id 11 out of range.*0..10"):
        ix.leaves(11)
    with pytest.raises(IndexError, match="-1"):
        ix.grid_mask(-1)
    with pytest.raises(TypeError, match="integer"):
        ix.leaves(1.0)  # type: ignore[arg-type]
    for bad in [(0, 5), (5,), (5, 5, 3), (2.0, 3), "ab", (True, 3)]:
        with pytest.raises(ValueError, match="image_shape"):
            ix.image_mask(0, bad)  # type: ignore[arg-type]


def test_index_of_malformed_tree_raises_instead_of_crashing() -> None:
    children = np.array([[0, 1], [0, 4]], np.int32)  # node 0 used twice, leaf 2 never
    tree = MergeTree(children, np.zeros(2, np.float32), (1, 3))
    with pytest.raises(TreeValidationError):
        tree_index(tree)
    with pytest.raises(TreeValidationError):
        _ = tree.index
