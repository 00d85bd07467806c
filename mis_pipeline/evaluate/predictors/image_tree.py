"""The merge tree of an evaluated image, shared by the tree predictor and the oracle.

:class:`TreeBuilder` turns an RGB image into an :class:`ImageTree`: patch features from a
backbone (resized by the patch rule of :mod:`mis_pipeline.io`), the connectivity-constrained
Ward tree (:func:`mis_pipeline.merge.ward_grid`) and the pixel -> leaf map of the tree
contract (nearest neighbour, :func:`mis_pipeline.merge.grid_cell_of_pixels`).

Patch size: backbones with a free patch size (``colour_texture``) can get one per image so
that every image has about ``target_leaves`` patches (:func:`patch_for_leaves`): a fixed 8-px
patch gives 4800 leaves on a 640x480 GrabCut photo but only 800 on a 250x200 Weizmann horse,
too coarse for its legs. ViT backbones keep the patch of their weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import check_image

if TYPE_CHECKING:
    from ...config import PipelineConfig
    from ...merge import MergeTree

__all__ = ["ImageTree", "TreeBuilder", "patch_for_leaves", "ADJUSTABLE_PATCH_BACKBONES"]

#: Backbones whose patch size is a free parameter (the others have the patch of their weights).
ADJUSTABLE_PATCH_BACKBONES = ("colour_texture",)


class ImageTree:
    """The merge tree of one image plus the pixel -> leaf map.

    Attributes
    ----------
    tree : MergeTree
    index : TreeIndex
        Sizes, parents, depth-first leaf order and node spans (``tree.index``).
    leaf_of_pixel : ndarray (H, W) int32
        Leaf (patch) id of every pixel.
    leaf_pixels : ndarray (n,) float64
        Number of image pixels of each leaf.
    """

    def __init__(self, tree: MergeTree, image_shape: tuple[int, int]) -> None:
        from ...merge import grid_cell_of_pixels

        self.tree = tree
        self.index = tree.index
        rows, cols = grid_cell_of_pixels(image_shape, tree.grid_shape)
        gw = tree.grid_shape[1]
        self.leaf_of_pixel = (rows[:, None] * gw + cols[None, :]).astype(np.int32)
        self.leaf_pixels = np.bincount(self.leaf_of_pixel.ravel(), minlength=tree.n_leaves).astype(np.float64)

    @property
    def image_shape(self) -> tuple[int, int]:
        h, w = self.leaf_of_pixel.shape
        return (h, w)

    def leaf_mean(self, values: np.ndarray) -> np.ndarray:
        """Mean of a per-pixel map ``(H, W)`` over each leaf's pixels -> ``(n,)`` float64."""
        sums = np.bincount(self.leaf_of_pixel.ravel(), weights=np.asarray(values, dtype=np.float64).ravel(),
                           minlength=self.tree.n_leaves)
        return sums / np.maximum(self.leaf_pixels, 1)

    def node_sums(self, leaf_values: np.ndarray) -> np.ndarray:
        """Sum of per-leaf values over every node's leaves -> ``(2n-1,)`` float64, O(n)."""
        idx = self.index
        csum = np.concatenate([[0.0], np.cumsum(np.asarray(leaf_values, dtype=np.float64)[idx.order])])
        return csum[idx.stop] - csum[idx.start]


def patch_for_leaves(height: int, width: int, target_leaves: int, smallest: int = 2, largest: int = 32) -> int:
    """Patch side (px) giving about ``target_leaves`` patches on a ``height x width`` image:
    ``round(sqrt(H * W / target_leaves))`` clipped to ``[smallest, largest]`` and the short side."""
    p = int(round(float(np.sqrt(height * width / max(int(target_leaves), 1)))))
    return max(smallest, min(p, largest, min(height, width)))


class TreeBuilder:
    """Builds :class:`ImageTree` s with one backbone, or one per patch size.

    Parameters
    ----------
    backbone : Backbone
        Used for every image unless ``target_leaves`` and ``backbone_for_patch`` are given.
    max_side : int, optional
        Images whose longer side exceeds this are scaled down before feature extraction.
    target_leaves : int, optional
        Choose the patch per image with :func:`patch_for_leaves` (needs ``backbone_for_patch``).
    backbone_for_patch : callable ``patch -> Backbone``, optional
        Builds the backbone of a patch size (cached per size).
    """

    def __init__(
        self,
        backbone: Any,
        max_side: int | None = None,
        target_leaves: int | None = None,
        backbone_for_patch: Callable[[int], Any] | None = None,
    ) -> None:
        self.backbone = backbone
        self.max_side = max_side
        self.adaptive = target_leaves is not None and backbone_for_patch is not None
        self.target_leaves = target_leaves if self.adaptive else None
        self._backbone_for_patch = backbone_for_patch
        self._cache: dict[int, Any] = {}

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> TreeBuilder:
        """``cfg.features`` with the backbone of ``cfg.evaluate.tree`` (weights and device from
        ``features``); per-image patches unless ``evaluate.tree.patch_size`` is set or the
        backbone has a fixed patch."""
        from ...features import get_backbone

        t = cfg.evaluate.tree
        overrides: dict[str, Any] = {"backbone": t.backbone}
        if t.patch_size is not None:
            overrides["patch_size"] = t.patch_size
        elif t.backbone != cfg.features.backbone:
            overrides["patch_size"] = None  # the evaluated backbone's own default
        backbone = get_backbone(cfg.features, **overrides)
        adaptive = t.patch_size is None and t.backbone in ADJUSTABLE_PATCH_BACKBONES
        factory = _BackboneForPatch(cfg.features, t.backbone) if adaptive else None
        return cls(backbone, t.max_side, t.target_leaves if adaptive else None, factory)

    def backbone_for(self, image_shape: tuple[int, int]) -> Any:
        """The backbone for an image of ``image_shape`` ``(H, W)`` (before any ``max_side`` cap)."""
        if not self.adaptive:
            return self.backbone
        h, w = image_shape
        if self.max_side is not None and max(h, w) > self.max_side:
            f = self.max_side / max(h, w)
            h, w = max(1, round(h * f)), max(1, round(w * f))
        p = patch_for_leaves(h, w, int(self.target_leaves))  # type: ignore[arg-type]
        if p not in self._cache:
            self._cache[p] = self._backbone_for_patch(p)  # type: ignore[misc]
        return self._cache[p]

    def build(self, image: np.ndarray) -> ImageTree:
        """Tree of ``image`` ``(H, W, 3) uint8`` RGB."""
        from ...merge import ward_grid

        image = check_image(image)
        feats = self.backbone_for(image.shape[:2]).features_for_image(image, self.max_side)
        return ImageTree(ward_grid(feats), image.shape[:2])

    def describe(self) -> dict[str, object]:
        return {
            "backbone": getattr(self.backbone, "name", type(self.backbone).__name__),
            "patch_size": "per image" if self.adaptive else getattr(self.backbone, "patch_size", None),
            "target_leaves": self.target_leaves,
            "max_side": self.max_side,
        }


class _BackboneForPatch:
    """Picklable ``patch -> backbone`` factory."""

    def __init__(self, features: Any, name: str) -> None:
        self.features = features
        self.name = name

    def __call__(self, patch: int) -> Any:
        from ...features import get_backbone

        return get_backbone(self.features, backbone=self.name, patch_size=int(patch))
