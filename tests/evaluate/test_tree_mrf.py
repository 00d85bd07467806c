"""The two-state tree MRF: compiled kernel vs plain reference vs brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mis_pipeline.evaluate.tree_mrf import label_tree, label_tree_reference, tree_energy


def _random_tree(n: int, rng: np.random.Generator) -> np.ndarray:
    """Random binary merge tree over n leaves in the scipy convention."""
    active = list(range(n))
    children = []
    for k in range(n - 1):
        a, b = rng.choice(len(active), size=2, replace=False)
        x, y = active[a], active[b]
        children.append((min(x, y), max(x, y)))
        active = [v for i, v in enumerate(active) if i not in (a, b)] + [n + k]
    return np.array(children, dtype=np.int64).reshape(-1, 2)


def _costs(n: int, rng: np.random.Generator):
    fg = rng.random(n) * 2
    bg = rng.random(n) * 2
    hard = rng.random(n)
    fg[hard < 0.15] += 1e6  # some leaves clicked negative
    bg[hard > 0.85] += 1e6  # some positive
    cut = rng.random(2 * n - 1) * 3
    return fg, bg, cut


@pytest.mark.parametrize("seed", range(8))
def test_kernel_equals_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    children = _random_tree(n, rng)
    fg, bg, cut = _costs(n, rng)
    root = float(rng.random() * 2)
    np.testing.assert_array_equal(label_tree(children, fg, bg, cut, root), label_tree_reference(children, fg, bg, cut, root))


def _best_energy_for_leaves(leaves, children, fg, bg, cut, root):
    n = len(fg)
    best = np.inf
    for internal in itertools.product((0, 1), repeat=n - 1):
        y = np.concatenate([np.asarray(leaves, int), np.asarray(internal, int)])
        best = min(best, tree_energy(y, children, fg, bg, cut, root))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_optimal_against_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(2, 6))
    children = _random_tree(n, rng)
    fg, bg, cut = (rng.random(n) * 2, rng.random(n) * 2, rng.random(2 * n - 1) * 2)
    root = float(rng.random())
    got = label_tree(children, fg, bg, cut, root)
    e_got = _best_energy_for_leaves(got, children, fg, bg, cut, root)
    e_min = min(
        tree_energy(np.asarray(y), children, fg, bg, cut, root) for y in itertools.product((0, 1), repeat=2 * n - 1)
    )
    assert e_got == pytest.approx(e_min)


def test_known_answer_cut_at_the_cheapest_ancestor():
    # ((0,1)->4, (4,2)->5, (5,3)->6): a positive click on leaf 0, background root, a small
    # area cost; cutting node 4 (leaves 0,1) is cheap, node 0 alone expensive.
    children = np.array([[0, 1], [2, 4], [3, 5]])
    fg = np.array([0.1, 0.1, 0.1, 0.1]) + np.array([0, 0, 0, 0])
    bg = np.array([1e6, 0, 0, 0])
    cut = np.array([5.0, 5.0, 5.0, 5.0, 0.5, 2.0, 0.0])
    assert label_tree(children, fg, bg, cut, root_fg_cost=1e6).tolist() == [True, True, False, False]
    # making node 5 cheaper than node 4 plus the extra area takes leaf 2 as well
    cut2 = cut.copy()
    cut2[5] = 0.1
    assert label_tree(children, fg, bg, cut2, root_fg_cost=1e6).tolist() == [True, True, True, False]
    # a negative click on leaf 1 forces a second cut below node 4
    fg3 = fg.copy()
    fg3[1] += 1e6
    assert label_tree(children, fg3, bg, cut, root_fg_cost=1e6).tolist() == [True, False, False, False]


def test_ties_keep_the_parents_label_and_background_root():
    children = np.array([[0, 1]])
    zero = np.zeros(2)
    assert label_tree(children, zero, zero, np.zeros(3)).tolist() == [False, False]


def test_input_checks():
    with pytest.raises(ValueError, match="children must have shape"):
        label_tree(np.zeros((2, 2), int), np.zeros(2), np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="cut_cost"):
        label_tree(np.array([[0, 1]]), np.zeros(2), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        label_tree(np.array([[0, 1]]), np.array([np.inf, 0]), np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="earlier nodes"):
        label_tree(np.array([[0, 2]]), np.zeros(2), np.zeros(2), np.zeros(3))
