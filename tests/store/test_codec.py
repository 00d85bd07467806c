"""Children/cost codecs: Numba kernels against plain references, exact inversion, bounds."""

from __future__ import annotations

import numpy as np
import pytest

from mis_pipeline.errors import TreeValidationError
from mis_pipeline.store.codec import (
    cost_relative_error_bound,
    decode_children,
    decode_children_reference,
    decode_costs,
    encode_children,
    encode_children_reference,
    encode_costs,
    round_costs,
)

GRIDS = [(1, 1), (1, 2), (2, 1), (1, 7), (6, 1), (3, 4), (5, 5), (7, 11)]


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("seed", range(3))
def test_children_kernel_matches_reference_and_inverts(grid, seed, random_tree):
    tree = random_tree(*grid, np.random.default_rng(seed))
    rank, nbr = encode_children(tree.children, grid)
    assert rank.dtype == nbr.dtype == np.uint32 and rank.shape == nbr.shape == (tree.n_leaves - 1,)
    ref_rank, ref_nbr = encode_children_reference(tree.children, grid)
    np.testing.assert_array_equal(rank, ref_rank)
    np.testing.assert_array_equal(nbr, ref_nbr)
    np.testing.assert_array_equal(decode_children(rank, nbr, grid), tree.children)
    np.testing.assert_array_equal(decode_children_reference(rank, nbr, grid), tree.children)
    assert np.all(rank < tree.n_leaves - np.arange(tree.n_leaves - 1))  # rank < regions left


def test_sklearn_ward_trees_round_trip(rng, ward_tree):
    for grid in [(12, 17), (25, 38)]:
        tree = ward_tree(*grid, rng)
        rank, nbr = encode_children(tree.children, grid)
        np.testing.assert_array_equal(decode_children(rank, nbr, grid), tree.children)
        assert not np.any(nbr & 1)  # scikit-learn lists children in ascending order
        np.testing.assert_array_equal((rank, nbr), encode_children_reference(tree.children, grid))


def test_known_codes_on_a_2x2_grid():
    # leaves 0 1 / 2 3: merge (1, 0) -> 4, (2, 3) -> 5, (5, 4) -> 6
    children = np.array([[1, 0], [2, 3], [5, 4]])
    # (1,0): sizes tie, the smaller child is 0 (smaller id), rank 0; scanning leaf 0 meets its
    #        right neighbour 1 first: position 0; row descending, flip 1 -> nbr 1
    # (2,3): regions {2, 3, 4}: smaller child 2 has rank 0; its right neighbour 3 comes first
    #        -> nbr 0
    # (5,4): regions {4, 5}: sizes tie, smaller child 4 (rank 0), leaves [1, 0] (bigger child
    #        first); leaf 1 has no right neighbour, its down neighbour 3 is in 5: position 0,
    #        descending -> nbr 1
    rank, nbr = encode_children(children, (2, 2))
    assert rank.tolist() == [0, 0, 0] and nbr.tolist() == [1, 0, 1]
    # a 1x4 strip: (2,3)->4, (1,4)->5, (0,5)->6: smaller children 2 (rank 2), 1 (rank 1), 0
    # (rank 0), each meeting the other child first on its right -> nbr 0
    rank, nbr = encode_children(np.array([[2, 3], [1, 4], [0, 5]]), (1, 4))
    assert rank.tolist() == [2, 1, 0] and nbr.tolist() == [0, 0, 0]
    # (1,2) then (0,4): leaf 0's right neighbour 1 is in region 4 -> position 0; then region 5
    # = {0, 1, 2} merges with 3: smaller child 3 (size 1), its left neighbour 2 is in 5
    rank, nbr = encode_children(np.array([[1, 2], [0, 4], [3, 5]]), (1, 4))
    assert rank.tolist() == [1, 0, 0] and nbr.tolist() == [0, 0, 0]


def test_non_adjacent_merge_is_rejected():
    children = np.array([[0, 2], [1, 3]])  # 1x4 grid: 0 and 2 do not touch
    children = np.vstack([children, [4, 5]])
    with pytest.raises(TreeValidationError, match="merge 0"):
        encode_children(children, (1, 4))
    with pytest.raises(TreeValidationError):
        encode_children_reference(children, (1, 4))


@pytest.mark.parametrize("bad", [[[0, 0], [1, 2]], [[0, 1], [0, 2]], [[0, 5], [1, 2]]])
def test_invalid_children_are_rejected(bad):
    with pytest.raises(TreeValidationError):
        encode_children(np.array(bad), (1, 3))


def test_wrong_shapes_and_codes_are_rejected():
    with pytest.raises(TreeValidationError, match="shape"):
        encode_children(np.zeros((3, 2), int), (2, 3))
    with pytest.raises(TreeValidationError):
        decode_children(np.array([2], np.uint32), np.array([0], np.uint32), (1, 2))  # rank >= regions
    with pytest.raises(TreeValidationError):
        decode_children(np.array([0], np.uint32), np.array([2], np.uint32), (1, 2))  # only 1 neighbour
    with pytest.raises(TreeValidationError, match="expected"):
        decode_children(np.array([0], np.uint32), np.array([0, 0], np.uint32), (1, 3))


@pytest.mark.parametrize("bits", [4, 7, 10, 16, 23])
def test_costs_round_trip_within_bound(bits, rng):
    cost = np.concatenate([[0.0], rng.lognormal(0, 6, 500), [1e12, 3e-30]]).astype(np.float32)
    back = decode_costs(encode_costs(cost, bits), bits)
    np.testing.assert_array_equal(back, round_costs(cost, bits))
    rel = np.abs(back.astype(np.float64) - cost) / np.maximum(cost, np.finfo(np.float32).tiny)
    assert rel.max() <= cost_relative_error_bound(bits)
    assert np.all(np.isfinite(back)) and back[0] == 0.0
    if bits == 23:
        np.testing.assert_array_equal(back, cost)


def test_costs_reject_negative_and_nan():
    with pytest.raises(TreeValidationError):
        encode_costs(np.array([1.0, -1.0], np.float32), 10)
    with pytest.raises(TreeValidationError):
        encode_costs(np.array([np.nan], np.float32), 10)


def test_nearly_sorted_costs_give_small_codes(rng):
    cost = np.sort(rng.lognormal(0, 3, 1000)).astype(np.float32)
    codes = encode_costs(cost, 10)
    assert np.median(codes[1:]) < 2**8  # deltas of sorted costs are small numbers
