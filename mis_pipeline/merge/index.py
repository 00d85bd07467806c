"""Derived arrays of a merge tree: sizes, parents, depths, leaf order and node spans, masks.

Computed once per tree in O(n) by a small compiled kernel (:mod:`._index_kernel`, imported on
first use), then every query is O(answer): the leaves of node ``v`` are the contiguous slice
``order[start[v]:stop[v]]`` of one depth-first leaf order, so rendering a node's mask costs
its size, not the tree's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tree import MergeTree
from .validate import positive_int_pair, validate_tree

__all__ = ["TreeIndex", "tree_index", "grid_cell_of_pixels"]


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def grid_cell_of_pixels(
    image_shape: tuple[int, int], grid_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-neighbour map from image pixels to grid cells.

    Pixel ``(y, x)`` of an ``H x W`` image lies in grid cell ``((y * grid_h) // H,
    (x * grid_w) // W)``: the grid was made by stretching the image to a multiple of the
    patch size, so each cell covers an equal share of the original image. Returns
    ``(rows (H,), cols (W,))`` int64 arrays of grid row / column indices.
    """
    H, W = _image_shape(image_shape)
    gh, gw = int(grid_shape[0]), int(grid_shape[1])
    rows = (np.arange(H, dtype=np.int64) * gh) // H
    cols = (np.arange(W, dtype=np.int64) * gw) // W
    return rows, cols


def _image_shape(image_shape: object) -> tuple[int, int]:
    dims = positive_int_pair(image_shape)
    if dims is None:
        raise ValueError(
            f"image_shape must be a pair (H, W) of positive integers, got {image_shape!r}"
        )
    return dims


@dataclass(frozen=True, eq=False)
class TreeIndex:
    """Cached derived arrays of one :class:`MergeTree` (all read-only, all int32).

    Attributes
    ----------
    grid_shape : (int, int)
        ``(grid_h, grid_w)``; ``n = grid_h * grid_w`` leaves, ``2n - 1`` nodes.
    sizes : (2n-1,)
        Number of leaves under each node (1 for leaves).
    parent : (2n-1,)
        Parent node id; -1 for the root ``2n - 2``.
    depth : (2n-1,)
        Edges from the root (root 0).
    order : (n,)
        Leaf ids in depth-first order (first child, i.e. ``children[s, 0]``, first).
    start, stop : (2n-1,)
        The leaves of node ``v`` are ``order[start[v]:stop[v]]``; ``stop - start == sizes``.
    """

    grid_shape: tuple[int, int]
    sizes: np.ndarray
    parent: np.ndarray
    depth: np.ndarray
    order: np.ndarray
    start: np.ndarray
    stop: np.ndarray

    @property
    def n_leaves(self) -> int:
        return int(self.order.shape[0])

    @property
    def n_nodes(self) -> int:
        return 2 * self.n_leaves - 1

    def _node(self, v: object) -> int:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"node id must be an integer, got {type(v).__name__}")
        if not 0 <= v < self.n_nodes:
            raise IndexError(f"node id {v} out of range: this tree has nodes 0..{self.n_nodes - 1}")
        return int(v)

    def leaves(self, v: int) -> np.ndarray:
        """Leaf ids (row-major grid cells ``r * grid_w + c``) under node ``v``: a read-only
        (size,) int32 view, in depth-first order (not sorted)."""
        v = self._node(v)
        return self.order[self.start[v] : self.stop[v]]

    def grid_mask(self, v: int) -> np.ndarray:
        """``(grid_h, grid_w)`` bool mask of the grid cells under node ``v``."""
        mask = np.zeros(self.n_leaves, dtype=bool)
        mask[self.leaves(v)] = True
        return mask.reshape(self.grid_shape)

    def image_mask(self, v: int, image_shape: tuple[int, int]) -> np.ndarray:
        """``(H, W)`` bool mask of node ``v`` at image resolution, nearest neighbour.

        ``image_shape`` is ``(H, W)`` in pixels (rows, columns) of the image the grid was made
        from; pixel ``(y, x)`` takes the value of grid cell ``((y * grid_h) // H,
        (x * grid_w) // W)`` (see :func:`grid_cell_of_pixels`).
        """
        rows, cols = grid_cell_of_pixels(image_shape, self.grid_shape)
        # Widen the columns first (grid_h x W), then repeat whole rows: two cheap takes, ~15x
        # faster than one 2-D fancy index on a ~1 Mpixel image.
        return np.take(np.take(self.grid_mask(v), cols, axis=1), rows, axis=0)


def tree_index(tree: MergeTree) -> TreeIndex:
    """Derived arrays of ``tree`` (see :class:`TreeIndex`); O(n).

    The tree is checked with :func:`validate_tree` first (vectorised, O(n)), because the
    compiled pass would index out of bounds on a malformed tree; a bad tree raises
    :class:`~mis_pipeline.errors.TreeValidationError`. Prefer ``tree.index``, which caches
    the result on the tree.
    """
    checked = validate_tree(tree.children, tree.cost, tree.grid_shape)
    n = checked.n_leaves
    from ._index_kernel import tree_index_kernel  # numba: imported on first use

    sizes, parent, depth, order, start = tree_index_kernel(checked.children, n)
    stop = start + sizes
    return TreeIndex(
        grid_shape=checked.grid_shape,
        sizes=_readonly(sizes),
        parent=_readonly(parent),
        depth=_readonly(depth),
        order=_readonly(order),
        start=_readonly(start),
        stop=_readonly(stop),
    )
