"""Tree agreement and the timm-vs-official position-embedding comparison (mis_pipeline.analysis)."""

from __future__ import annotations

import numpy as np
import pytest

from mis_pipeline.analysis import compare_pos_embed, tree_agreement


# ----------------------------------------------------------------------------- tree change
def _chain_tree(order: list[int]) -> np.ndarray:
    """Merge leaves one by one in ``order``: a caterpillar tree."""
    n = len(order)
    children = [(order[0], order[1])]
    for k, leaf in enumerate(order[2:]):
        children.append((n + k, leaf))
    return np.array(children)


def test_tree_agreement_known_answers() -> None:
    t = np.array([[0, 1], [2, 3], [4, 5]])  # ((0,1),(2,3)) on 4 leaves
    assert tree_agreement(t, t, 4) == {"same_clusters": 1.0, "mean_best_iou": 1.0}
    # Same clusters listed in another merge order and with swapped children: same hierarchy.
    t2 = np.array([[3, 2], [1, 0], [5, 4]])
    assert tree_agreement(t, t2, 4)["same_clusters"] == 1.0
    # ((0,1),(2,3)) vs (((0,1),2),3): clusters {0,1} and the root shared, {2,3} vs {0,1,2}.
    chain = _chain_tree([0, 1, 2, 3])
    agree = tree_agreement(t, chain, 4, min_area=0.3)
    assert agree["same_clusters"] == pytest.approx(2 / 3)
    # Non-root nodes over 30 % (size >= 2): t has {0,1} {2,3}; chain has {0,1} {0,1,2}.
    # Best IoU against the other tree's non-root nodes (leaves included at this tiny size):
    # {0,1} -> 1; {2,3} -> 1/2 (leaf 2); {0,1} -> 1; {0,1,2} -> 2/3 ({0,1}).
    assert agree["mean_best_iou"] == pytest.approx((1 + 1 / 2 + 1 + 2 / 3) / 4)


def test_compare_pos_embed_on_tiny_vit() -> None:
    rng = np.random.default_rng(4)
    images = [
        rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
        rng.integers(0, 256, (48, 96, 3), dtype=np.uint8),
    ]
    result = compare_pos_embed("test_vit_tiny", images, weights="none", device="cpu")
    assert result.grid_shapes == [(8, 8), (6, 12)]
    # Training grid: identical tokens, identical trees.
    assert result.rel_token_diff[0] == 0.0
    assert result.same_clusters[0] == 1.0 and result.mean_best_iou[0] == 1.0
    # Other grid: tokens differ a little; trees agree partly.
    assert 0 < result.rel_token_diff[1] < 0.2
    assert 0 < result.same_clusters[1] <= 1 and 0 < result.mean_best_iou[1] <= 1


def test_the_features_package_does_not_depend_on_the_merge():
    # A feature backbone module must not import the merge (issue 13, item 17).
    import ast
    from pathlib import Path

    import mis_pipeline.features as features

    for path in Path(features.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                mod = ("." * node.level) + (node.module or "")
                assert "merge" not in mod.split("."), f"{path.name} imports {mod}"
            elif isinstance(node, ast.Import):
                assert not any("merge" in a.name.split(".") for a in node.names), path.name
