"""How much the position-embedding resize ('timm' vs 'official') changes tokens and merge trees.

:func:`compare_pos_embed` runs one ViT backbone both ways on the same images and reports,
per image, the token difference and the agreement of the two Ward merge trees computed by
:func:`tree_agreement`:

* ``same_clusters``: the fraction of internal nodes whose leaf set is also a node of the other
  tree (symmetrised; 1.0 means the same hierarchy as a set of clusters);
* ``mean_best_iou``: for every non-root node covering more than ``min_area`` of the grid (the
  nodes MIS's top-down sampler can return), the best IoU with a non-root node of the other
  tree, averaged over both directions.

The merge is :func:`mis_pipeline.merge.ward_grid` (the same hierarchy as scikit-learn's
``ward_tree`` with grid connectivity); ``tree_fn`` can replace it.

This analysis needs both the feature backbones and the merge, so it lives above both
(``mis_pipeline.analysis``): the features package does not depend on the merge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import FeatureConfig

__all__ = ["tree_agreement", "compare_pos_embed", "PosEmbedComparison", "default_tree_fn"]

TreeFn = Callable[[np.ndarray], np.ndarray]


def default_tree_fn() -> TreeFn:
    """``features (gh, gw, C) -> children (n-1, 2)`` by :func:`mis_pipeline.merge.ward_grid`."""
    from ..merge import ward_grid

    def merge_fn(features: np.ndarray) -> np.ndarray:
        return np.asarray(ward_grid(features).children)

    return merge_fn


def _sizes_and_keys(children: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per node: its number of leaves and an order-free 64-bit hash of its leaf set."""
    rng = np.random.default_rng(0x5EED)  # fixed: both trees must hash leaves alike
    size = np.ones(2 * n - 1, dtype=np.int64)
    key = np.zeros(2 * n - 1, dtype=np.uint64)
    key[:n] = rng.integers(0, 2**63 - 1, size=n, dtype=np.int64).view(np.uint64)
    with np.errstate(over="ignore"):  # the hash sum wraps modulo 2^64 on purpose
        for k, (a, b) in enumerate(children):
            size[n + k] = size[a] + size[b]
            key[n + k] = key[a] + key[b]
    return size, key


def _masks(children: np.ndarray, n: int, nodes: np.ndarray) -> np.ndarray:
    """Boolean ``(len(nodes), n)`` leaf masks of the given nodes."""
    out = np.zeros((len(nodes), n), dtype=bool)
    for row, v in enumerate(nodes):
        stack = [int(v)]
        while stack:
            u = stack.pop()
            if u < n:
                out[row, u] = True
            else:
                a, b = children[u - n]
                stack.extend((int(a), int(b)))
    return out


def tree_agreement(
    children_a: np.ndarray, children_b: np.ndarray, n_leaves: int, min_area: float = 0.05
) -> dict[str, float]:
    """Agreement of two merge trees over the same ``n_leaves`` leaves (definitions above).

    ``children_*`` are ``(n-1, 2)`` integer arrays (scikit-learn ``children_`` convention).
    ``mean_best_iou`` considers partner nodes of at least ``min_area / 2`` of the grid, which
    is exact whenever the best IoU is >= 0.5 (a smaller node cannot reach it).
    """
    n = int(n_leaves)
    ca, cb = np.asarray(children_a), np.asarray(children_b)
    size_a, key_a = _sizes_and_keys(ca, n)
    size_b, key_b = _sizes_and_keys(cb, n)
    ka, kb = set(key_a[n:].tolist()), set(key_b[n:].tolist())
    same = 0.5 * (len(ka & kb) / len(ka) + len(ka & kb) / len(kb)) if n > 1 else 1.0

    def directional(c1: np.ndarray, s1: np.ndarray, c2: np.ndarray, s2: np.ndarray) -> list[float]:
        big = np.flatnonzero(s1 > min_area * n)
        big = big[big != 2 * n - 2]  # the root is never sampled
        partners = np.flatnonzero(s2 >= 0.5 * min_area * n)
        partners = partners[partners != 2 * n - 2]  # every tree has the root
        if len(big) == 0 or len(partners) == 0:
            return []
        m1 = _masks(c1, n, big).astype(np.float32)
        m2 = _masks(c2, n, partners).astype(np.float32)
        inter = m1 @ m2.T
        union = s1[big][:, None] + s2[partners][None, :] - inter
        return (inter / union).max(axis=1).tolist()

    ious = directional(ca, size_a, cb, size_b) + directional(cb, size_b, ca, size_a)
    return {"same_clusters": float(same), "mean_best_iou": float(np.mean(ious)) if ious else 1.0}


@dataclass(frozen=True)
class PosEmbedComparison:
    """Per-image results of :func:`compare_pos_embed` (lists aligned with the input images).

    ``rel_token_diff``: ``||f_official - f_timm|| / ||f_timm||`` (Frobenius, whole grid);
    ``same_clusters`` and ``mean_best_iou``: see :func:`tree_agreement`.
    """

    grid_shapes: list[tuple[int, int]]
    rel_token_diff: list[float]
    same_clusters: list[float]
    mean_best_iou: list[float]


def compare_pos_embed(
    cfg: FeatureConfig | str,
    images: Sequence[np.ndarray],
    *,
    tree_fn: TreeFn | None = None,
    min_area: float = 0.05,
    **overrides: Any,
) -> PosEmbedComparison:
    """Run a ViT backbone with ``pos_embed='timm'`` and ``'official'`` on ``images``
    (``(H, W, 3)`` uint8, sides multiples of the patch size) and compare (module docstring)."""
    from ..features import get_backbone

    tree_fn = tree_fn or default_tree_fn()
    backbone = get_backbone(cfg, **overrides)  # one model: weights loaded once
    if not hasattr(backbone, "pos_embed_mode"):
        raise ValueError(f"backbone {backbone.name!r} has no position embedding to compare")
    saved = backbone.pos_embed_mode
    shapes, diffs, same, ious = [], [], [], []
    try:
        for img in images:
            backbone.pos_embed_mode = "timm"
            (f_t,) = backbone.extract([img])
            backbone.pos_embed_mode = "official"
            (f_o,) = backbone.extract([img])
            gh, gw = f_t.shape[:2]
            shapes.append((gh, gw))
            diffs.append(float(np.linalg.norm(f_o - f_t) / max(np.linalg.norm(f_t), 1e-12)))
            agree = tree_agreement(tree_fn(f_t), tree_fn(f_o), gh * gw, min_area)
            same.append(agree["same_clusters"])
            ious.append(agree["mean_best_iou"])
    finally:
        backbone.pos_embed_mode = saved
    return PosEmbedComparison(shapes, diffs, same, ious)
