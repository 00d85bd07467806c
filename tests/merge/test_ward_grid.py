"""ward_grid: known answers on tiny grids, input checking, bit-exactness of the criterion."""

from __future__ import annotations

import numpy as np
import pytest
from merge_cases import make_features

from mis_pipeline.merge import MergeTree, ward_grid
from mis_pipeline.merge.reference import clusters_of, ward_grid_sklearn


def _grid(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32)[..., None]


# --------------------------------------------------------------------------- known answers
def test_2x2_two_flat_halves_merge_within_halves_first() -> None:
    tree = ward_grid(_grid([[0, 0], [1, 1]]))  # top row 0, bottom row 1
    np.testing.assert_array_equal(tree.children, [[0, 1], [2, 3], [4, 5]])
    # root: w = 2*2/(2+2) = 1, ||0 - 1||^2 = 1
    np.testing.assert_array_equal(tree.cost, np.array([0, 0, 1], np.float32))

    tree = ward_grid(_grid([[0, 5], [0, 5]]))  # left column 0, right column 5
    np.testing.assert_array_equal(tree.children, [[0, 2], [1, 3], [4, 5]])
    np.testing.assert_array_equal(tree.cost, np.array([0, 0, 25], np.float32))


@pytest.mark.parametrize("shape", [(1, 5), (5, 1)])
def test_line_grids(shape: tuple[int, int]) -> None:
    feats = np.array([0, 0, 10, 10, 10], np.float64).reshape(*shape, 1)
    tree = ward_grid(feats)
    # (0,1) and (2,3) tie at 0 and go in key order; {2,3}+{4} costs 2/3*0 = 0;
    # the root costs 3*2/5 * 10^2 = 120.
    np.testing.assert_array_equal(tree.children, [[0, 1], [2, 3], [4, 6], [5, 7]])
    np.testing.assert_allclose(tree.cost, [0, 0, 0, 120])
    assert tree.grid_shape == shape


def test_constant_grid_documented_tie_order() -> None:
    # 2x3 grid, all features equal: every cost is 0 and the order is decided by the key
    # (cost, larger id, smaller id): (1,0) -> 6, (4,3) -> 7, (5,2) -> 8, (7,6) -> 9, (9,8).
    tree = ward_grid(np.ones((2, 3, 4), np.float32))
    np.testing.assert_array_equal(tree.children, [[0, 1], [3, 4], [2, 5], [6, 7], [8, 9]])
    assert not tree.cost.any()
    np.testing.assert_array_equal(tree.children, ward_grid_sklearn(np.ones((2, 3, 4))).children)


def test_four_quadrants_are_nodes() -> None:
    # A 6x7 grid of four flat quadrants with distinct colours: each quadrant is a node.
    colours = np.array([[0, 0, 0], [9, 0, 0], [0, 9, 0], [0, 0, 9]], np.float32)
    q = np.zeros((6, 7), int)
    q[:3, 4:] = 1
    q[3:, :4] = 2
    q[3:, 4:] = 3
    tree = ward_grid(colours[q])
    clusters = clusters_of(tree)
    for k in range(4):
        assert frozenset(np.flatnonzero(q.ravel() == k).tolist()) in clusters
    # the first 38 merges (42 leaves - 4 quadrants) happen inside quadrants, at cost 0
    assert not tree.cost[:38].any() and tree.cost[38:].min() > 0


def test_1x1_grid_gives_empty_tree() -> None:
    tree = ward_grid(np.zeros((1, 1, 3), np.float32))
    assert tree.children.shape == (0, 2) and tree.children.dtype == np.int32
    assert tree.cost.shape == (0,) and tree.cost.dtype == np.float32
    assert tree.grid_shape == (1, 1) and tree.root == 0
    assert tree.index.order.tolist() == [0]


def test_returns_mergetree_with_contract_dtypes() -> None:
    feats = make_features(5, 6, 3, "smooth", np.float64, np.random.default_rng(0))
    tree = ward_grid(feats)
    assert isinstance(tree, MergeTree)
    assert tree.children.dtype == np.int32 and tree.children.flags.c_contiguous
    assert tree.cost.dtype == np.float32
    assert tree.grid_shape == (5, 6) and all(type(d) is int for d in tree.grid_shape)
    assert (tree.children[:, 0] < tree.children[:, 1]).all()  # (smaller, larger) per row


def test_deterministic_and_input_untouched() -> None:
    feats = make_features(9, 11, 5, "integer", np.float32, np.random.default_rng(3))
    before = feats.copy()
    a, b = ward_grid(feats), ward_grid(feats)
    assert a == b
    np.testing.assert_array_equal(feats, before)


def test_non_contiguous_and_big_endian_input() -> None:
    feats = make_features(8, 9, 6, "random", np.float64, np.random.default_rng(4))
    ref = ward_grid(np.ascontiguousarray(feats))
    strided = np.asfortranarray(feats)
    assert not strided.flags.c_contiguous
    assert ward_grid(strided) == ref
    assert ward_grid(feats.astype(">f8")) == ref
    wide = np.zeros((8, 9, 12))
    wide[..., ::2] = feats
    assert ward_grid(wide[..., ::2]) == ref


def test_larger_piecewise_grid_with_many_ties_equals_sklearn() -> None:
    # Real-size grid with big flat regions (thousands of exact ties), DINO-like width.
    feats = make_features(30, 40, 384, "piecewise", np.float32, np.random.default_rng(11))
    ours, ref = ward_grid(feats), ward_grid_sklearn(feats)
    np.testing.assert_array_equal(ours.children, ref.children)


# --------------------------------------------------------------------------- exactness
def _replay_with_sklearn(X: np.ndarray, children: np.ndarray):
    """Yield ``(step, a, b, m1, m2, res)`` for each merge of ``children``, ``res`` being
    scikit-learn's own ``compute_ward_dist`` of the merged pair on its moments."""
    from sklearn.cluster import _hierarchical_fast as hf

    n, c = X.shape
    m1 = np.zeros(2 * n - 1)
    m1[:n] = 1
    m2 = np.zeros((2 * n - 1, c))
    m2[:n] = X
    for s, (a, b) in enumerate(children):
        res = np.empty(1)
        hf.compute_ward_dist(m1, m2, np.array([b], np.intp), np.array([a], np.intp), res)
        yield s, a, b, m1, m2, res[0]
        m1[n + s] = m1[a] + m1[b]
        m2[n + s] = m2[a] + m2[b]


def test_criteria_and_costs_are_sklearns() -> None:
    """The exact criterion functions are bit-identical to scikit-learn's compute_ward_dist,
    and each float32 cost is scikit-learn's float64 criterion rounded to float32."""
    from mis_pipeline.merge._ward_kernel import (
        SIZE,
        SLOT,
        _exact_cost,
        ward_grid_kernel,
        ward_pair_criterion,
    )

    rng = np.random.default_rng(5)
    h, w, c = 9, 12, 37  # C not a multiple of the SIMD width
    X = (rng.standard_normal((h * w, c)) * 3).astype(np.float32)
    n = h * w
    children, cost32, _ = ward_grid_kernel(X, h, w, np.empty((n // 2, c)), 1.0, np.inf)
    assert cost32.dtype == np.float32
    node = np.zeros((2 * n - 1, 4), np.int32)  # the kernel's per-node records
    node[:, SLOT] = -1
    node[n:, SLOT] = np.arange(n - 1)
    for s, a, b, m1, m2, res in _replay_with_sklearn(X, children):
        assert np.float32(res) == cost32[s], (s, res, cost32[s])
        assert ward_pair_criterion(m2[b], m1[b], m2[a], m1[a]) == res  # bit for bit
        # the kernel's exact fallback, reading leaves from X and internal sums from slots
        node[:, SIZE] = m1
        assert _exact_cost(X, m2[n:], node, b, a, n) == res


@pytest.mark.parametrize("kind", ["random", "constant", "piecewise", "integer"])
def test_pool_compaction_path_is_exercised(kind: str) -> None:
    """The neighbour pool fills up and is compacted during a run; the tree stays exact."""
    from mis_pipeline.merge._ward_kernel import ward_grid_kernel

    h, w, c = 13, 17, 6
    feats = make_features(h, w, c, kind, np.float64, np.random.default_rng(9))
    n = h * w
    children, _, stats = ward_grid_kernel(
        feats.reshape(n, c), h, w, np.empty((n // 2, c)), 1.0, np.inf
    )
    assert stats[0] >= 1  # compactions
    np.testing.assert_array_equal(children, ward_grid_sklearn(feats).children)


@pytest.mark.parametrize("kind", ["random", "smooth", "piecewise", "duplicated_rows", "integer"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tol_scale", [1e9, 1e12])
def test_exact_fallbacks_give_sklearns_tree_and_costs(kind: str, dtype: type, tol_scale: float) -> None:
    """An inflated error bound makes most merge selections and float32 costs undecidable from
    the fast criteria, so the exact fallbacks decide them: the result must not change."""
    from mis_pipeline.merge._ward_kernel import ward_grid_kernel

    h, w, c = 12, 15, 24
    feats = make_features(h, w, c, kind, dtype, np.random.default_rng(21))
    n = h * w
    X = np.ascontiguousarray(feats.reshape(n, c))
    children, cost32, stats = ward_grid_kernel(X, h, w, np.empty((n // 2, c)), tol_scale, np.inf)
    ref = ward_grid_sklearn(feats)
    np.testing.assert_array_equal(children, ref.children)
    np.testing.assert_array_equal(cost32, ref.cost)
    if tol_scale == 1e12 and kind != "piecewise":  # (piecewise: mostly exact zero costs)
        assert stats[1] > 0  # selections settled with exact criteria
        # bounds ~1e-2 apart: most float32 costs are not decided by them either
        assert stats[1] + stats[2] >= np.count_nonzero(ref.cost) // 2


def test_near_ties_are_settled_exactly_at_the_proven_bound() -> None:
    """Small-integer features give many pairs with equal nonzero criteria: the fast values
    cannot order them, the exact ones (and the pair order) do."""
    from mis_pipeline.merge._ward_kernel import ward_grid_kernel

    h, w, c = 16, 16, 5
    feats = make_features(h, w, c, "integer", np.float32, np.random.default_rng(3))
    n = h * w
    children, cost32, stats = ward_grid_kernel(
        feats.reshape(n, c), h, w, np.empty((n // 2, c)), 1.0, np.inf
    )
    ref = ward_grid_sklearn(feats)
    np.testing.assert_array_equal(children, ref.children)
    np.testing.assert_array_equal(cost32, ref.cost)
    assert stats[1] > 0


@pytest.mark.parametrize(
    "kind", ["tiny64", "subnormal64", "tiny32", "mixed_scales64", "mixed_scales32", "offset32"]
)
def test_extreme_scales_equal_sklearn(kind: str) -> None:
    """Values whose squares underflow (the absolute error term of the bound), magnitudes
    spanning 46 decades, and a large common offset (cancellation in every difference)."""
    rng = np.random.default_rng(14)
    g = rng.standard_normal((11, 12, 9))
    feats = {
        "tiny64": g * 1e-160,
        "subnormal64": g * 1e-310,
        "tiny32": (g * 1e-38).astype(np.float32),
        "mixed_scales64": g * 10.0 ** rng.integers(-30, 17, g.shape),
        "mixed_scales32": (g * 10.0 ** rng.integers(-30, 17, g.shape)).astype(np.float32),
        "offset32": (1e4 + g * 1e-3).astype(np.float32),
    }[kind]
    ours, ref = ward_grid(feats), ward_grid_sklearn(feats)
    np.testing.assert_array_equal(ours.children, ref.children)
    np.testing.assert_array_equal(ours.cost, ref.cost)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_distances_are_within_the_kernels_error_bound(dtype: type) -> None:
    """The SIMD sums of squares differ from the sequential float64 sum by less than the bound
    the kernel assumes (relative (2C + 16) * 2**-52), on terms spanning many magnitudes."""
    from numba import njit

    from mis_pipeline.merge._lanes import LANES, sqdist_pairs

    @njit(cache=False)
    def fast(X, ra, rb, out, energy):
        sqdist_pairs(X, ra, rb, out, energy)

    rng = np.random.default_rng(8)
    for c in (1, 7, 8, 37, 384, 1000):
        X = rng.standard_normal((2 * LANES, c)) * 10.0 ** rng.integers(-6, 7, size=(2 * LANES, c))
        X = X.astype(dtype)
        ra = np.tile(np.arange(LANES // 2, dtype=np.int32), 2)  # each row vs two others
        rb = np.arange(LANES, 2 * LANES, dtype=np.int32)
        out = np.empty(LANES)
        energy = np.empty(LANES // 2)
        fast(X, ra, rb, out, energy)
        bound = (2 * c + 16) * 2.0**-52
        x64 = X.astype(np.float64)
        np.testing.assert_allclose(energy, (x64[: LANES // 2] ** 2).sum(axis=1), rtol=bound)
        for q in range(LANES):
            pa = 0.0
            for f in range(c):  # sequential, as scikit-learn
                d = float(X[ra[q], f]) - float(X[rb[q], f])
                pa += d * d
            assert abs(out[q] - pa) <= bound * pa, (c, q, out[q], pa)


def test_upper_bound_derived_from_the_lower_bound_covers_the_stored_one() -> None:
    """The kernel stores only a pair's lower bound and derives the upper one when the pair
    reaches the heap's root: the derived value is never below the interval's own upper end
    (and stays within a few F of it), over the whole range of criteria, underflow included,
    for the narrowest (C = 1) and the usual widths and for inflated tolerances."""
    from mis_pipeline.merge._ward_kernel import _bounds, _upper

    rng = np.random.default_rng(11)
    pa = np.concatenate(
        [10.0 ** rng.uniform(-320, 300, 4000), [5e-324, 1e-310, 1.0, 3.0, 1e300]]
    )
    w = rng.uniform(0.5, 5000.0, pa.size)
    for c, tol, n in ((1, 1.0, 4), (384, 1.0, 13400), (17, 1e6, 2**27)):
        F = 1.0 + tol * (2.0 * c + 16.0) * 2.0**-52
        ETA = tol * (float(n) * (c + 4.0)) * 2.0**-1070
        for p_, w_ in zip(pa, w, strict=True):
            lo, hi = _bounds(p_, w_, F, ETA)
            up = _upper(lo, F, ETA)
            assert lo < hi <= up, (c, tol, p_, w_, lo, hi, up)
            assert up <= hi * F**3 + 3.0 * ETA, (c, tol, p_, w_, hi, up)
    assert _bounds(0.0, 2.0, 1.0 + 2.0**-40, 1e-300) == (0.0, 0.0)  # exact zeros stay exact


def test_cost_relation_to_sklearn_distance() -> None:
    from sklearn.cluster import ward_tree
    from sklearn.feature_extraction.image import grid_to_graph

    feats = make_features(6, 7, 5, "random", np.float64, np.random.default_rng(6))
    _, _, _, _, dist = ward_tree(
        feats.reshape(42, 5), connectivity=grid_to_graph(6, 7), return_distance=True
    )
    np.testing.assert_allclose(ward_grid(feats).cost, dist**2 / 2, rtol=1e-6)


# --------------------------------------------------------------------------- input checks
@pytest.mark.parametrize(
    ("features", "match"),
    [
        ([[[1.0]]], "numpy array"),
        (np.zeros((4, 3)), "shape \\(grid_h, grid_w, C\\).*2 dimension"),
        (np.zeros((2, 2, 2, 2)), "4 dimension"),
        (np.zeros((0, 5, 3)), "empty grid"),
        (np.zeros((5, 0, 3)), "empty grid"),
        (np.zeros((2, 3, 0)), "no channels"),
        (np.zeros((2, 3, 4), np.int64), "float16, float32 or float64.*int64"),
        (np.zeros((2, 3, 4), np.complex64), "complex64"),
        (np.zeros((2, 3, 4), bool), "bool"),
        (np.full((2, 3, 4), 1e120), "too large: their sum of squares is 2.4e\\+241"),
        (np.full((2, 3, 4), 1e19, np.float32), "too large.*fits float32"),
        # (a broadcast view: no memory behind it; the check comes before any copy)
        (np.broadcast_to(np.float32(0), (2**14, 2**13 + 1, 1)), "more than 134217728 cells"),
    ],
)
def test_bad_input_raises_clear_value_error(features: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ward_grid(features)  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_reported_with_position(bad: float, dtype: type) -> None:
    feats = np.zeros((3, 4, 2), dtype)
    feats[2, 1, 1] = bad
    with pytest.raises(ValueError, match=r"non-finite.*row=2, col=1, channel=1"):
        ward_grid(feats)


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 7, 2), (5, 7, 9), (9, 13, 16)])
@pytest.mark.parametrize("where", ["first", "last"])
def test_value_check_covers_every_cell(shape: tuple[int, int, int], where: str) -> None:
    """The kernel's fused value check reads every row, also those of a last partial batch."""
    h, w, c = shape
    cell = (0, 0) if where == "first" else (h - 1, w - 1)
    for bad in (np.nan, np.inf):
        feats = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        feats[cell[0], cell[1], c - 1] = bad
        with pytest.raises(ValueError, match=rf"non-finite.*row={cell[0]}, col={cell[1]}"):
            ward_grid(feats)
    feats = np.full(shape, 1e18, np.float32)
    feats[cell[0], cell[1]] = 3e19  # this cell alone exceeds the bound
    with pytest.raises(ValueError, match="too large"):
        ward_grid(feats)


def test_large_finite_values_are_accepted_and_give_finite_costs() -> None:
    # sum of squares 24 * 1e34 < float32 max: every cost is finite in float32
    feats = np.full((2, 3, 4), 1e17, np.float32)
    feats[0, 0] = -1e17
    tree = ward_grid(feats)
    np.testing.assert_array_equal(tree.children, ward_grid_sklearn(feats).children)
    assert np.isfinite(tree.cost).all() and tree.cost.max() > 1e34


# --------------------------------------------------------------------------- division
def test_fma_division_is_correctly_rounded_on_float32_sums() -> None:
    """The kernel divides float64 sums of float32 features by cluster sizes with Markstein's
    FMA correction instead of a division; it must give exactly ``m / s`` (scikit-learn's
    centroids). Sums of float32 values at many scales, sizes from 1 to 2**31 - 1."""
    from numba import njit

    from mis_pipeline.merge._lanes import divide_by_size

    @njit(cache=False)
    def mismatches(m, s):
        bad = 0
        for k in range(m.shape[0]):
            if divide_by_size(m[k], s[k], 1.0 / s[k]) != m[k] / s[k]:
                bad += 1
        return bad

    rng = np.random.default_rng(12)
    n = 2_000_000
    parts = rng.standard_normal((n, 3)).astype(np.float32).astype(np.float64)
    scale = 2.0 ** rng.integers(-120, 120, n)
    m = parts[:, 0] * scale + parts[:, 1] * scale + parts[:, 2]  # float64 sums, mixed scales
    m[:1000] = rng.integers(-(2**40), 2**40, 1000)  # integer-valued sums
    m[1000:1100] = 0.0
    m[1100:1200] = np.float32(1e-45)  # the smallest float32 values
    sizes = rng.integers(1, 2**31 - 1, n).astype(np.float64)
    sizes[:5000] = 2.0 ** rng.integers(1, 31, 5000) - 1  # all-ones significands
    sizes[5000:10000] = rng.integers(2, 64, 5000)
    assert mismatches(m, sizes) == 0
