"""Property tests: ward_grid equals scikit-learn's connectivity-constrained Ward tree.

Over 300 generated cases in the default profile: grids 1x1 .. 40x40, 1 .. 64 channels, random,
smooth, piecewise-constant, duplicated-row, small-integer and constant features (the last four
full of exact ties), float32 and float64.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from merge_cases import examples, feature_grids, ward_cost_from_leaves

from mis_pipeline.merge import ward_grid
from mis_pipeline.merge.reference import clusters_of, ward_grid_python, ward_grid_sklearn

TIE_KINDS = ("piecewise", "duplicated_rows", "integer", "constant")


def _assert_same_tree(features: np.ndarray) -> None:
    ours = ward_grid(features)
    ref = ward_grid_sklearn(features)
    assert ours.grid_shape == ref.grid_shape
    assert ours.children.dtype == np.int32 and ours.cost.dtype == np.float32
    assert ours.children.shape == (ours.n_leaves - 1, 2)
    # The contract: the same hierarchy (each internal node as its set of leaves) ...
    assert clusters_of(ours) == clusters_of(ref)
    # ... and in fact the same merges in the same order, with the same node numbering.
    np.testing.assert_array_equal(ours.children, ref.children)
    np.testing.assert_allclose(ours.cost, ref.cost, rtol=1e-5, atol=1e-30)


@examples(240)
@given(feature_grids())
def test_hierarchy_equals_sklearn(features: np.ndarray) -> None:
    _assert_same_tree(features)


@examples(100)
@given(feature_grids(max_side=16, max_c=8, kinds=TIE_KINDS))
def test_hierarchy_equals_sklearn_with_ties(features: np.ndarray) -> None:
    _assert_same_tree(features)


@examples(60)
@given(feature_grids(max_side=7, max_c=6))
def test_kernel_equals_its_python_form(features: np.ndarray) -> None:
    ours = ward_grid(features)
    ref = ward_grid_python(features)
    np.testing.assert_array_equal(ours.children, ref.children)
    np.testing.assert_array_equal(ours.cost, ref.cost)  # bit-identical float64 -> float32


@examples(60)
@given(feature_grids(max_side=20, max_c=16))
def test_cost_is_ward_formula_from_leaves(features: np.ndarray) -> None:
    tree = ward_grid(features)
    expected, tol = ward_cost_from_leaves(features, tree)
    got = tree.cost.astype(np.float64)
    assert np.all(np.abs(got - expected) <= 1e-5 * np.abs(expected) + tol), np.max(
        np.abs(got - expected) / np.maximum(np.abs(expected), 1e-300)
    )


@examples(40)
@given(feature_grids(max_side=12, max_c=8))
def test_float16_input_equals_its_float32_values(features: np.ndarray) -> None:
    f16 = features.astype(np.float16)
    a = ward_grid(f16)
    b = ward_grid(f16.astype(np.float32))
    np.testing.assert_array_equal(a.children, b.children)
    np.testing.assert_array_equal(a.cost, b.cost)
