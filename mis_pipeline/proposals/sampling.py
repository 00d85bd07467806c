"""Which merge-tree node becomes a training proposal: MIS Algorithm 2 and its ablations.

The reference (the public MIS code, ``mis/data/dataset.py`` + ``mis/ops/src/sampling.cpp``)
draws one top-down descent, keeps it if the node covers more than ``min_area`` of the grid and
otherwise draws the whole descent again, up to 100 times, after which the last draw is used.
Every sampler here has that same re-draw rule, so the three names differ only in how one
draw is made:

``top_down``       MIS Algorithm 2: start at the root with ``p = 1``; while ``rand() < p`` and
                   the node is internal, go to either child with probability 1/2 and set
                   ``p *= alpha``. ``P(depth >= d) = alpha^(d(d-1)/2)`` while no leaf is met.
``root_children``  the paper's ``alpha = 0`` ablation (Table 4): always a child of the root.
``uniform``        the paper's "fully random" ablation (Table 5): every node except the root
                   equally likely (leaves included; the area filter rejects them in practice).
                   Its ``max_tries`` candidates are drawn in one call (same rule, fewer draws).

The paper leaves open whether the ablations kept the area filter; the reference code applies
it in the dataset, around whichever sampler is used, so it is kept here too.
Randomness comes only from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..config import ProposalConfig
from ..merge.tree import MergeTree

__all__ = ["sample_node", "sample_proposal", "SAMPLERS"]

_DEFAULTS = ProposalConfig()


def _check_tree(tree: MergeTree) -> None:
    if not isinstance(tree, MergeTree):
        raise TypeError(f"tree must be a MergeTree, got {type(tree).__name__}")
    if tree.n_leaves < 2:
        raise ValueError(
            f"tree has {tree.n_leaves} leaf (grid {tuple(tree.grid_shape)}): a proposal needs a "
            "node other than the root, so the grid must have at least 2 cells"
        )


def _check_args(alpha: float, min_area: float, max_tries: int) -> None:
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    if not 0.0 <= float(min_area) < 1.0:
        raise ValueError(f"min_area must be in [0, 1), got {min_area!r}")
    if isinstance(max_tries, bool) or not isinstance(max_tries, (int, np.integer)) or max_tries < 1:
        raise ValueError(f"max_tries must be an integer >= 1, got {max_tries!r}")


def _descend(children: np.ndarray, n: int, alpha: float, rng: np.random.Generator) -> int:
    """One draw of Algorithm 2 (no filter). Consumes one uniform for each ``rand() < p`` test
    and one for each child choice, in the paper's order."""
    node = 2 * n - 2
    p = 1.0
    # The stop test comes first, as in the paper and the reference C++ (which draws the
    # uniform before checking for a leaf): a leaf reached after a "go deeper" still consumes
    # the next uniform. The C++ compares with <= (p and 0.5); for uniforms on [0, 1) that
    # differs from the paper's < only on a set of probability zero (up to float granularity).
    while rng.random() < p and node >= n:
        node = int(children[node - n, 0 if rng.random() < 0.5 else 1])
        p *= alpha
    return node


def _filtered(
    draw: Callable[[], int], sizes: np.ndarray, n: int, min_area: float, max_tries: int
) -> int:
    """Re-draw until the node covers more than ``min_area`` of the ``n`` grid cells; after
    ``max_tries`` draws the last one is returned (the reference rule)."""
    node = draw()
    for _ in range(max_tries - 1):
        if sizes[node] > min_area * n:
            break
        node = draw()
    return node


def sample_node(
    tree: MergeTree,
    rng: np.random.Generator,
    *,
    alpha: float = _DEFAULTS.alpha,
    min_area: float = _DEFAULTS.min_area,
    max_tries: int = _DEFAULTS.max_tries,
) -> int:
    """Top-down sampling (MIS Algorithm 2) with the reference's area filter.

    Parameters
    ----------
    tree : MergeTree
        At least 2 leaves.
    rng : numpy.random.Generator
        The only source of randomness.
    alpha : float in [0, 1]
        Decay of the descent probability per level (MIS: 0.9). ``alpha = 0`` always returns a
        child of the root.
    min_area : float in [0, 1)
        The whole descent is re-drawn until the node's leaves are more than ``min_area`` of
        the grid cells (``sizes[node] > min_area * n``, as in the reference).
    max_tries : int >= 1
        Draws in all; if none passes the filter, the last one is returned.

    Returns
    -------
    int
        A node id in ``0 .. 2n - 3`` (never the root ``2n - 2``).
    """
    _check_tree(tree)
    _check_args(alpha, min_area, max_tries)
    n = tree.n_leaves
    children = tree.children
    a = float(alpha)
    return _filtered(
        lambda: _descend(children, n, a, rng), tree.index.sizes, n, float(min_area), int(max_tries)
    )


def _sample_root_children(tree: MergeTree, rng: np.random.Generator, cfg: ProposalConfig) -> int:
    # Algorithm 2 with alpha = 0 (the paper's ablation baseline): the first step always goes
    # down (p = 1), the second test always stops (p = 0), so the result is a root child.
    return sample_node(tree, rng, alpha=0.0, min_area=cfg.min_area, max_tries=cfg.max_tries)


def _sample_top_down(tree: MergeTree, rng: np.random.Generator, cfg: ProposalConfig) -> int:
    return sample_node(tree, rng, alpha=cfg.alpha, min_area=cfg.min_area, max_tries=cfg.max_tries)


def _sample_uniform(tree: MergeTree, rng: np.random.Generator, cfg: ProposalConfig) -> int:
    _check_tree(tree)
    n = tree.n_leaves
    # Same rule as _filtered (the first of max_tries draws that passes, else the last), with
    # the max_tries node ids drawn in one call: most nodes are small, so one draw at a time
    # cost ~100 Python-level draws per proposal.
    ids = rng.integers(0, 2 * n - 2, size=cfg.max_tries)  # ids 0 .. 2n-3 (not the root)
    ok = tree.index.sizes[ids] > cfg.min_area * n
    return int(ids[int(np.argmax(ok))] if ok.any() else ids[-1])


# Registry of proposal samplers by name; config.PROPOSAL_SAMPLERS lists the same names (a test
# checks).
SAMPLERS: dict[str, Callable[[MergeTree, np.random.Generator, ProposalConfig], int]] = {
    "top_down": _sample_top_down,
    "root_children": _sample_root_children,
    "uniform": _sample_uniform,
}


def sample_proposal(
    tree: MergeTree, rng: np.random.Generator, cfg: ProposalConfig = _DEFAULTS
) -> int:
    """One proposal node of ``tree`` drawn by the sampler named ``cfg.sampler``.

    All samplers apply the area filter (``cfg.min_area``, ``cfg.max_tries``) and never return
    the root. Returns a node id in ``0 .. 2n - 3``.
    """
    if not isinstance(cfg, ProposalConfig):
        raise TypeError(f"cfg must be a ProposalConfig, got {type(cfg).__name__}")
    try:
        sampler = SAMPLERS[cfg.sampler]
    except KeyError:  # only reachable if the config check is bypassed
        raise ValueError(
            f"unknown proposal sampler {cfg.sampler!r}; known: {', '.join(SAMPLERS)}"
        ) from None
    return sampler(tree, rng, cfg)
