"""Hover preview: the merge-tree region a positive click at a pixel would select.

For the tree predictor (:mod:`mis_pipeline.evaluate.predictors.tree`) the answer to the clicks
so far plus one more positive click at ``(row, col)`` is a labelling of the tree's leaves (the
exact minimiser of its two-state MRF), which the predictor then refines at pixel level. The
preview is that leaf labelling, drawn with the tree contract's nearest-neighbour map: the
region of the merge tree the click would select, before pixel refinement. With no earlier
click it is the single ancestor of the hovered patch that the first click would choose.

Only predictors that expose a merge tree (``leaf_labels`` and ``image_tree``, as
:class:`~mis_pipeline.evaluate.predictors.tree.TreePredictor` does) support the preview.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..evaluate.clicker import Click

__all__ = ["supports_hover", "hover_leaf_labels", "hover_region", "leaf_at"]


def supports_hover(predictor: object) -> bool:
    """True when ``predictor`` answers clicks with merge-tree nodes (has ``leaf_labels``)."""
    return callable(getattr(predictor, "leaf_labels", None)) and hasattr(type(predictor), "image_tree")


def leaf_at(predictor: object, row: int, col: int) -> int:
    """Leaf (patch) id of pixel ``(row, col)`` of the predictor's current image."""
    return int(predictor.image_tree.leaf_of_pixel[row, col])  # type: ignore[attr-defined]


def hover_leaf_labels(
    predictor: object, clicks: Sequence[Click], prev_prob: np.ndarray | None, row: int, col: int
) -> np.ndarray:
    """Leaf labelling ``(n,)`` bool after ``clicks`` plus a positive click at ``(row, col)``.

    ``prev_prob`` ``(H, W) float32`` is the current answer (what the predictor would be given
    as the previous prediction). Exactly the labelling ``predictor.predict`` would refine.
    """
    if not supports_hover(predictor):
        raise TypeError(f"predictor {type(predictor).__name__} has no merge tree to preview")
    return predictor.leaf_labels([*clicks, Click(int(row), int(col), True)], prev_prob)  # type: ignore[attr-defined]


def hover_region(
    predictor: object, clicks: Sequence[Click], prev_prob: np.ndarray | None, row: int, col: int
) -> np.ndarray:
    """Pixel mask ``(H, W) bool`` of :func:`hover_leaf_labels` (nearest-neighbour leaf map)."""
    labels = hover_leaf_labels(predictor, clicks, prev_prob, row, col)
    return labels[predictor.image_tree.leaf_of_pixel]  # type: ignore[attr-defined]
