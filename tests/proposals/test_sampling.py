"""MIS Algorithm 2 (top-down sampling), its area filter and the ablation samplers."""

from __future__ import annotations

import numpy as np
import pytest
from proposal_trees import balanced_tree, caterpillar_tree, ward_tree
from scipy import stats

from mis_pipeline.config import PROPOSAL_SAMPLERS, ProposalConfig
from mis_pipeline.proposals import SAMPLERS, sample_node, sample_proposal

DRAWS = 20_000


@pytest.fixture(scope="module")
def deep_tree():
    tree = balanced_tree(64, 64)  # 4096 leaves, all at depth 12
    assert set(np.unique(tree.index.depth[: tree.n_leaves])) == {12}
    return tree


def _depth_chi2(depths: np.ndarray, alpha: float, max_depth: int) -> float:
    """p-value of the observed depths against P(depth >= d) = alpha^(d(d-1)/2), d >= 1,
    truncated at the leaves' depth; bins with expected count < 5 are pooled into the tail."""
    d = np.arange(1, max_depth + 2)
    tail = alpha ** (d * (d - 1) / 2.0)  # P(depth >= d)
    tail[-1] = 0.0  # nothing goes below the leaves
    p = tail[:-1] - tail[1:]  # P(depth == d), d = 1..max_depth
    obs = np.bincount(depths, minlength=max_depth + 1)[1:]
    exp = p * len(depths)
    # Pool from the deep end until every bin expects >= 5.
    k = len(exp)
    while exp[k - 1] < 5:
        k -= 1
    exp_b = np.r_[exp[: k - 1], exp[k - 1 :].sum()]
    obs_b = np.r_[obs[: k - 1], obs[k - 1 :].sum()]
    return float(stats.chisquare(obs_b, exp_b).pvalue)


@pytest.mark.parametrize("alpha", [0.8, 0.9, 0.95])
def test_depth_law_matches_alpha(deep_tree, alpha):
    rng = np.random.default_rng(1234)
    nodes = np.array(
        [sample_node(deep_tree, rng, alpha=alpha, min_area=0.0, max_tries=1) for _ in range(DRAWS)]
    )
    depths = deep_tree.index.depth[nodes]
    assert depths.min() >= 1  # never the root
    assert _depth_chi2(depths, alpha, 12) > 1e-3


def test_depth_law_test_has_power(deep_tree):
    # Draws made with alpha = 0.85 must be rejected by the alpha = 0.9 law.
    rng = np.random.default_rng(99)
    nodes = [sample_node(deep_tree, rng, alpha=0.85, min_area=0.0, max_tries=1) for _ in range(DRAWS)]
    assert _depth_chi2(deep_tree.index.depth[nodes], 0.9, 12) < 1e-6


def test_children_are_equally_likely(deep_tree):
    # alpha = 1 always descends to a leaf, each of the 4096 with probability 1/4096; check the
    # two halves of the grid (the root's children) and the four quarters.
    rng = np.random.default_rng(5)
    nodes = np.array([sample_node(deep_tree, rng, alpha=1.0, min_area=0.0, max_tries=1) for _ in range(8000)])
    assert (nodes < deep_tree.n_leaves).all()
    rows = nodes // 64
    quarter = (rows // 16)
    assert stats.chisquare(np.bincount(quarter, minlength=4)).pvalue > 1e-3


@pytest.mark.parametrize("sampler", PROPOSAL_SAMPLERS)
def test_filter_is_the_first_large_draw_else_the_last(sampler):
    """With the filter, the result is the first of the unfiltered draws (same generator
    stream) covering more than min_area, or the last draw when none does."""
    tree = ward_tree(24, 32, seed=3)
    n = tree.n_leaves
    sizes = tree.index.sizes
    tries, min_area = 3, 0.05
    cfg = ProposalConfig(sampler=sampler, min_area=min_area, max_tries=tries)
    single = ProposalConfig(sampler=sampler, min_area=0.0, max_tries=1)
    fallbacks = 0
    for seed in range(400):
        got = sample_proposal(tree, np.random.default_rng(seed), cfg)
        rng = np.random.default_rng(seed)
        if sampler == "uniform":  # its candidates are drawn in one call
            draws = rng.integers(0, tree.n_nodes - 1, size=tries).tolist()
            assert sample_proposal(tree, np.random.default_rng(seed), single) == draws[0]
        else:
            draws = [sample_proposal(tree, rng, single) for _ in range(tries)]
        large = [v for v in draws if sizes[v] > min_area * n]
        expected = large[0] if large else draws[-1]
        assert got == expected
        if sizes[got] <= min_area * n:  # a small node only when every draw failed
            assert not large
            fallbacks += 1
    if sampler != "root_children":  # both root children of this tree are large
        assert fallbacks > 0  # the fallback path was exercised


def test_filter_rejects_small_nodes_when_a_large_one_is_reachable():
    tree = ward_tree(24, 32, seed=4)
    n = tree.n_leaves
    rng = np.random.default_rng(0)
    nodes = [sample_node(tree, rng) for _ in range(2000)]  # defaults: 0.9, 0.05, 100 tries
    assert (tree.index.sizes[nodes] > 0.05 * n).all()
    assert tree.root not in nodes


def test_alpha_zero_gives_root_children_only():
    for tree in (ward_tree(16, 16, seed=1), caterpillar_tree(8, 8)):
        root_children = set(int(x) for x in tree.children[-1])
        rng = np.random.default_rng(0)
        got = {sample_node(tree, rng, alpha=0.0, min_area=0.0, max_tries=1) for _ in range(500)}
        assert got == root_children
        cfg = ProposalConfig(sampler="root_children")
        got = {sample_proposal(tree, rng, cfg) for _ in range(500)}
        assert got <= root_children


def test_alpha_zero_with_filter_prefers_the_large_child():
    tree = caterpillar_tree(8, 8)  # root children: 63-leaf node and one leaf
    big = int(tree.children[-1, 0])
    rng = np.random.default_rng(0)
    got = [sample_node(tree, rng, alpha=0.0) for _ in range(300)]
    assert set(got) == {big}


def test_uniform_sampler_is_uniform_over_non_root_nodes():
    tree = ward_tree(6, 6, seed=2)  # 71 nodes, 70 non-root
    cfg = ProposalConfig(sampler="uniform", min_area=0.0, max_tries=1)
    rng = np.random.default_rng(7)
    nodes = np.array([sample_proposal(tree, rng, cfg) for _ in range(14000)])
    assert tree.root not in set(nodes.tolist())
    counts = np.bincount(nodes, minlength=tree.n_nodes)[: tree.n_nodes - 1]
    assert stats.chisquare(counts).pvalue > 1e-3


def test_registry_matches_config_names():
    assert tuple(SAMPLERS) == PROPOSAL_SAMPLERS


def test_sample_proposal_top_down_is_sample_node():
    tree = ward_tree(16, 16, seed=5)
    cfg = ProposalConfig(alpha=0.8, min_area=0.1, max_tries=7)
    a = [sample_proposal(tree, np.random.default_rng(s), cfg) for s in range(50)]
    b = [sample_node(tree, np.random.default_rng(s), alpha=0.8, min_area=0.1, max_tries=7) for s in range(50)]
    assert a == b


def test_same_generator_state_same_node():
    tree = ward_tree(16, 16, seed=5)
    for name in PROPOSAL_SAMPLERS:
        cfg = ProposalConfig(sampler=name)
        a = [sample_proposal(tree, np.random.default_rng(s), cfg) for s in range(30)]
        b = [sample_proposal(tree, np.random.default_rng(s), cfg) for s in range(30)]
        assert a == b


def test_bad_arguments():
    tree = ward_tree(4, 4)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="alpha"):
        sample_node(tree, rng, alpha=1.5)
    with pytest.raises(ValueError, match="min_area"):
        sample_node(tree, rng, min_area=1.0)
    with pytest.raises(ValueError, match="max_tries"):
        sample_node(tree, rng, max_tries=0)
    with pytest.raises(TypeError, match="MergeTree"):
        sample_node(tree.children, rng)
    with pytest.raises(TypeError, match="ProposalConfig"):
        sample_proposal(tree, rng, {"sampler": "uniform"})
    single = caterpillar_tree(1, 2)
    assert sample_node(single, rng) in (0, 1)
    from mis_pipeline.merge import validate_tree

    one = validate_tree(np.empty((0, 2), np.int64), np.empty(0, np.float32), (1, 1))
    with pytest.raises(ValueError, match="at least 2 cells"):
        sample_node(one, rng)
