"""Node masks from leaf spans, and the "other objects" (sibling and cousins) of a node."""

from __future__ import annotations

import numpy as np
import pytest
from proposal_trees import balanced_tree, leaves_by_walk, ward_tree

from mis_pipeline.proposals import node_mask, other_mask, other_nodes


def _naive_image_mask(tree, leaves: set[int], hw: tuple[int, int]) -> np.ndarray:
    gh, gw = tree.grid_shape
    h, w = hw
    out = np.zeros(hw, bool)
    for y in range(h):
        for x in range(w):
            out[y, x] = ((y * gh) // h) * gw + (x * gw) // w in leaves
    return out


@pytest.mark.parametrize("hw", [None, (37, 53), (64, 48), (9, 12)])
def test_node_mask_matches_a_walk_of_the_tree(hw):
    tree = ward_tree(9, 12, seed=1)
    rng = np.random.default_rng(0)
    for v in rng.choice(tree.n_nodes, 25, replace=False).tolist() + [tree.root, 0]:
        leaves = leaves_by_walk(tree, v)
        got = node_mask(tree, v, hw)
        if hw is None:
            expect = np.isin(np.arange(tree.n_leaves), list(leaves)).reshape(tree.grid_shape)
        else:
            expect = _naive_image_mask(tree, leaves, hw)
        assert got.dtype == bool and got.shape == expect.shape
        assert np.array_equal(got, expect)


def test_node_mask_is_the_tree_index_rule():
    tree = ward_tree(20, 30, seed=2)
    for v in (5, 700, tree.root):
        assert np.array_equal(node_mask(tree, v, (161, 243)), tree.index.image_mask(v, (161, 243)))


def test_other_nodes_on_a_balanced_tree():
    tree = balanced_tree(4, 4)  # 16 leaves, depth 4; leaves 0, 1 share a parent
    n = tree.n_leaves
    v = 0
    parent = int(tree.index.parent[v])
    grand = int(tree.index.parent[parent])
    got = other_nodes(tree, v)
    assert got[0] == 1  # the sibling
    uncle = [int(x) for x in tree.children[grand - n] if x != parent][0]
    assert got[1:] == [int(x) for x in tree.children[uncle - n]]
    union = set().union(*(leaves_by_walk(tree, u) for u in got))
    assert union == leaves_by_walk(tree, grand) - {v}


def test_other_nodes_are_disjoint_and_cover_grandparent_minus_node():
    tree = ward_tree(12, 16, seed=3)
    idx = tree.index
    for v in range(tree.n_nodes - 1):
        others = other_nodes(tree, v)
        sets = [leaves_by_walk(tree, u) for u in others]
        mine = leaves_by_walk(tree, v)
        assert all(not (s & mine) for s in sets)
        assert sum(len(s) for s in sets) == len(set().union(*sets))
        parent = int(idx.parent[v])
        anc = parent if idx.parent[parent] < 0 else int(idx.parent[parent])
        assert set().union(*sets) == leaves_by_walk(tree, anc) - mine
        grid = other_mask(tree, v)
        assert np.array_equal(np.flatnonzero(grid.ravel()), sorted(set().union(*sets)))
        if v % 37 == 0:
            hw = (50, 70)
            assert np.array_equal(
                other_mask(tree, v, hw), _naive_image_mask(tree, set().union(*sets), hw)
            )


def test_root_child_has_only_its_sibling():
    tree = ward_tree(8, 8, seed=4)
    a, b = (int(x) for x in tree.children[-1])
    assert other_nodes(tree, a) == [b]
    assert np.array_equal(other_mask(tree, a), node_mask(tree, b))


def test_mask_errors():
    tree = ward_tree(4, 4)
    with pytest.raises(IndexError, match="out of range"):
        node_mask(tree, tree.n_nodes)
    with pytest.raises(TypeError, match="integer"):
        node_mask(tree, 1.0)
    with pytest.raises(ValueError, match="root"):
        other_nodes(tree, tree.root)
    with pytest.raises(ValueError, match="image_shape|positive"):
        node_mask(tree, 3, (0, 5))
