"""validate_tree: valid trees pass unchanged, each kind of violation names itself."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from merge_cases import examples, make_features, random_valid_tree

from mis_pipeline.errors import MISError, TreeValidationError
from mis_pipeline.merge import MergeTree, validate_tree, ward_grid


def _valid(h: int = 3, w: int = 4, seed: int = 0) -> MergeTree:
    return random_valid_tree(h, w, np.random.default_rng(seed))


def test_valid_trees_pass_and_are_normalised() -> None:
    tree = ward_grid(make_features(6, 7, 3, "smooth", np.float32, np.random.default_rng(0)))
    out = validate_tree(tree.children, tree.cost, tree.grid_shape)
    assert out == tree
    # other integer / float dtypes and nested lists are accepted and converted
    out = validate_tree(
        tree.children.astype(np.uint16).tolist(), tree.cost.astype(np.float16), (6, 7)
    )
    assert out.children.dtype == np.int32 and out.cost.dtype == np.float32
    np.testing.assert_array_equal(out.children, tree.children)
    assert out.grid_shape == (6, 7) and all(type(d) is int for d in out.grid_shape)
    out = validate_tree(np.empty((0, 2), np.int64), np.empty(0), (1, 1))
    assert out.children.shape == (0, 2) and out.grid_shape == (1, 1)
    assert validate_tree(tree.children, tree.cost, (np.int64(6), np.int32(7))).grid_shape == (6, 7)


@examples(50)
@given(st.integers(1, 8), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_random_valid_trees_pass(h: int, w: int, seed: int) -> None:
    tree = random_valid_tree(h, w, np.random.default_rng(seed))
    assert validate_tree(tree.children, tree.cost, tree.grid_shape) == tree


@examples(80)
@given(st.integers(2, 7), st.integers(1, 7), st.integers(0, 2**32 - 1), st.data())
def test_any_changed_node_id_is_caught(h: int, w: int, seed: int, data: st.DataObject) -> None:
    tree = random_valid_tree(h, w, np.random.default_rng(seed))
    ch = tree.children.copy()
    s = data.draw(st.integers(0, len(ch) - 1))
    col = data.draw(st.integers(0, 1))
    new = data.draw(st.integers(-3, 2 * tree.n_leaves + 2).filter(lambda x: x != ch[s, col]))
    ch[s, col] = new
    with pytest.raises(TreeValidationError):
        validate_tree(ch, tree.cost, tree.grid_shape)


def test_error_is_a_value_error() -> None:
    assert issubclass(TreeValidationError, ValueError) and issubclass(TreeValidationError, MISError)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda c, k: (c[:-1], k[:-1]), r"children has shape \(10, 2\); expected \(11, 2\)"),
        (lambda c, k: (c[:, :1], k), r"children has shape \(11, 1\)"),
        (lambda c, k: (c.astype(float), k), "children must hold integers, got dtype float64"),
        (lambda c, k: (c, k.astype(np.int32)), "cost must hold floats"),
        (lambda c, k: (c, k[:-1]), r"cost has shape \(10,\); expected \(11,\)"),
        (lambda c, k: (c, np.where(np.arange(11) == 4, np.nan, k)), r"cost\[4\] is nan"),
        (lambda c, k: (c, np.where(np.arange(11) == 2, -1.0, k)), r"cost\[2\] is -1.0.*>= 0"),
        (lambda c, k: (c, np.where(np.arange(11) == 6, 1e39, k)), r"cost\[6\].*float32 range"),
    ],
)
def test_shape_dtype_and_cost_errors(mutate, match: str) -> None:  # type: ignore[no-untyped-def]
    tree = _valid()
    ch, co = mutate(tree.children.copy(), tree.cost.astype(np.float64))
    with pytest.raises(TreeValidationError, match=match):
        validate_tree(ch, co, tree.grid_shape)


def test_structure_errors_name_the_row_and_node() -> None:
    n = 4  # 2x2 grid: rows create nodes 4, 5, 6
    cost = np.zeros(3, np.float32)
    with pytest.raises(
        TreeValidationError, match=r"row 0 refers to node 4.*creates node 4.*0\.\.3"
    ):
        validate_tree([[0, 4], [1, 2], [3, 5]], cost, (2, 2))
    with pytest.raises(TreeValidationError, match=r"row 1 refers to node 6"):
        validate_tree([[0, 1], [2, 6], [3, 4]], cost, (2, 2))
    with pytest.raises(TreeValidationError, match=r"refers to node -1"):
        validate_tree([[0, 1], [-1, 2], [3, 5]], cost, (2, 2))
    with pytest.raises(TreeValidationError, match=r"node 0 is merged 2 times \(rows \[0, 1\]\)"):
        validate_tree([[0, 1], [0, 2], [4, 5]], cost, (2, 2))
    with pytest.raises(TreeValidationError, match=r"node 0 is never merged"):
        validate_tree([[1, 2], [1, 4], [3, 5]], cost, (2, 2))
    with pytest.raises(TreeValidationError, match=r"node 2 is merged 2 times"):
        validate_tree([[2, 2], [0, 1], [3, 4]], cost, (2, 2))
    assert n == 4


@pytest.mark.parametrize(
    "grid_shape", [(0, 3), (3,), (2, 2, 1), (-1, 4), (2.0, 3), (True, 4), "ab", 5, None]
)
def test_bad_grid_shape(grid_shape: object) -> None:
    with pytest.raises(TreeValidationError, match="grid_shape"):
        validate_tree(np.zeros((0, 2), int), np.zeros(0), grid_shape)  # type: ignore[arg-type]
