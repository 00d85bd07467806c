"""The oracle: the single merge-tree node with the best IoU against the target.

It reads the ground truth (``uses_ground_truth = True``), ignores the clicks and answers every
click with the same node, so its IoU@1 is the ceiling of what one proposal of the tree can
give: the quality of the proposals MIS training samples from. Its NoC is 1 where that best
IoU reaches the target and the click budget elsewhere.

IoUs of all ``2n - 1`` nodes are computed at once in O(pixels + n): per-leaf counts of target
and non-ignored pixels, summed over each node's span of the depth-first leaf order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..clicker import Click
from .base import Predictor, check_image
from .image_tree import ImageTree, TreeBuilder

if TYPE_CHECKING:
    from ...config import PipelineConfig

__all__ = ["OraclePredictor", "node_ious", "best_node"]


def node_ious(image_tree: ImageTree, gt: np.ndarray, ignore: np.ndarray | None = None) -> np.ndarray:
    """IoU of every node's mask (nearest-neighbour upsampled, the tree contract) with ``gt``.

    ``gt``/``ignore`` are bool ``(H, W)`` at the image size of ``image_tree``; ignored pixels
    count in neither intersection nor union. Returns ``(2n-1,)`` float64.
    """
    gt = np.asarray(gt, dtype=bool)
    if gt.shape != image_tree.image_shape:
        raise ValueError(f"gt has shape {gt.shape}, the tree was built for {image_tree.image_shape}")
    valid = np.ones_like(gt) if ignore is None else ~np.asarray(ignore, dtype=bool)
    n = image_tree.tree.n_leaves
    lab = image_tree.leaf_of_pixel
    inter_leaf = np.bincount(lab[gt & valid], minlength=n).astype(np.float64)
    area_leaf = np.bincount(lab[valid], minlength=n).astype(np.float64)
    inter = image_tree.node_sums(inter_leaf)
    area = image_tree.node_sums(area_leaf)
    union = area + inter_leaf.sum() - inter
    return np.divide(inter, union, out=np.ones_like(inter), where=union > 0)


def best_node(image_tree: ImageTree, gt: np.ndarray, ignore: np.ndarray | None = None) -> tuple[int, float]:
    """``(node id, IoU)`` of the best node (the smallest id among equal IoUs)."""
    ious = node_ious(image_tree, gt, ignore)
    v = int(np.argmax(ious))
    return v, float(ious[v])


class OraclePredictor(Predictor):
    """Answers every click with the tree node of best IoU (a measuring device, not a segmenter)."""

    name = "oracle"
    uses_ground_truth = True

    def __init__(self, trees: TreeBuilder) -> None:
        self.trees = trees
        self._prob: np.ndarray | None = None
        self.best_iou: float = float("nan")

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> OraclePredictor:
        return cls(TreeBuilder.from_config(cfg))

    def reset(self, image: np.ndarray, gt: np.ndarray | None = None, ignore: np.ndarray | None = None) -> None:
        image = check_image(image)
        if gt is None:
            raise ValueError("the oracle needs the target mask in reset()")
        it = self.trees.build(image)
        v, self.best_iou = best_node(it, gt, ignore)
        self._prob = it.index.image_mask(v, image.shape[:2]).astype(np.float32)

    def predict(self, clicks: Sequence[Click], prev_prob: np.ndarray) -> np.ndarray:
        if self._prob is None:
            raise RuntimeError("call reset(image, gt) before predict()")
        return self._prob.copy()

    def describe(self) -> dict[str, object]:
        return {**super().describe(), **self.trees.describe()}
