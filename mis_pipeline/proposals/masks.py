"""Masks of merge-tree nodes, and the "other objects" of a proposal.

Masks come from the tree's leaf spans (:class:`~mis_pipeline.merge.TreeIndex`): the leaves of
node ``v`` are ``order[start[v]:stop[v]]``, so a grid mask costs the node's size and the
image-size mask is a nearest-neighbour upsampling of it (two ``take`` calls), never a walk of
the tree per pixel.

"Other objects" (for ``ClickConfig.other_source = "tree"``) are the proposal's sibling and its
cousins: the nodes that share its parent or its grandparent. The reference code has a single
proposal per image, so its "other" negatives fall back to background; this is the option the
tree makes possible. A choice the issue leaves open, made here: when the parent's sibling (the
uncle) is a leaf it has no children, and the uncle itself stands for the cousins. The union of
the other nodes is therefore the grandparent's region minus the proposal (the parent's region
minus the proposal when the parent is the root).
"""

from __future__ import annotations

import numpy as np

from ..merge.index import TreeIndex, grid_cell_of_pixels
from ..merge.tree import MergeTree

__all__ = ["node_mask", "leaves_mask", "other_nodes", "other_mask"]


def _node(tree: MergeTree, node: object, *, allow_root: bool = True) -> int:
    if not isinstance(tree, MergeTree):
        raise TypeError(f"tree must be a MergeTree, got {type(tree).__name__}")
    if isinstance(node, (bool, np.bool_)) or not isinstance(node, (int, np.integer)):
        raise TypeError(f"node must be an integer node id, got {type(node).__name__}")
    if not 0 <= node < tree.n_nodes:
        raise IndexError(f"node {node} out of range: this tree has nodes 0..{tree.n_nodes - 1}")
    if not allow_root and node == tree.root:
        raise ValueError(f"node {node} is the root: it has no sibling or cousins")
    return int(node)


def leaves_mask(
    index: TreeIndex, leaves: np.ndarray, image_hw: tuple[int, int] | None = None
) -> np.ndarray:
    """Bool mask of a set of leaf ids (row-major grid cells).

    Returns ``(grid_h, grid_w)`` when ``image_hw`` is None, else ``(H, W)``: pixel ``(y, x)``
    takes grid cell ``((y * grid_h) // H, (x * grid_w) // W)`` (nearest neighbour, the rule of
    :func:`~mis_pipeline.merge.grid_cell_of_pixels`; the reference uses OpenCV's
    ``INTER_NEAREST``, the same map up to float rounding at exact cell edges).
    """
    grid = np.zeros(index.n_leaves, dtype=bool)
    grid[leaves] = True
    grid = grid.reshape(index.grid_shape)
    if image_hw is None:
        return grid
    rows, cols = grid_cell_of_pixels(image_hw, index.grid_shape)
    # Widen the columns first (grid_h x W), then repeat whole rows: two cheap takes.
    return np.take(np.take(grid, cols, axis=1), rows, axis=0)


def node_mask(
    tree: MergeTree, node: int, image_hw: tuple[int, int] | None = None
) -> np.ndarray:
    """Bool mask of the leaves under ``node``.

    Parameters
    ----------
    tree : MergeTree
    node : int
        Node id ``0 .. 2n - 2``.
    image_hw : (H, W) or None
        None: the ``(grid_h, grid_w)`` grid mask. Otherwise the mask at that image size
        (rows, columns in pixels), nearest-neighbour from the grid (see :func:`leaves_mask`).
    """
    v = _node(tree, node)
    index = tree.index
    return leaves_mask(index, index.order[index.start[v] : index.stop[v]], image_hw)


def _ancestor(index: TreeIndex, v: int) -> int:
    """The grandparent of ``v`` if it exists, else its parent (``v`` is not the root)."""
    parent = int(index.parent[v])
    grand = int(index.parent[parent])
    return parent if grand < 0 else grand


def other_nodes(tree: MergeTree, node: int) -> list[int]:
    """The proposal's sibling and cousins: ``[sibling, *cousins]``.

    Cousins are the children of the parent's sibling (the uncle), or the uncle itself when it
    is a leaf; there are none when the parent is the root. Returns node ids; their regions are
    disjoint and their union is the grandparent's region minus ``node`` (see
    :func:`other_mask`). Raises ValueError for the root.
    """
    v = _node(tree, node, allow_root=False)
    index = tree.index
    children = tree.children
    n = tree.n_leaves
    parent = int(index.parent[v])
    a, b = (int(x) for x in children[parent - n])
    out = [b if a == v else a]
    grand = int(index.parent[parent])
    if grand >= 0:
        g0, g1 = (int(x) for x in children[grand - n])
        uncle = g1 if g0 == parent else g0
        if uncle >= n:
            out.extend(int(x) for x in children[uncle - n])
        else:
            out.append(uncle)
    return out


def other_mask(
    tree: MergeTree, node: int, image_hw: tuple[int, int] | None = None
) -> np.ndarray:
    """Bool mask of the union of :func:`other_nodes`: the grandparent's (or, for a child of a
    root child, the root's) region minus ``node``, from two slices of the leaf order.

    Same shapes as :func:`node_mask` (``(grid_h, grid_w)``, or ``(H, W)`` for ``image_hw``).
    """
    v = _node(tree, node, allow_root=False)
    index = tree.index
    anc = _ancestor(index, v)
    # The node's span lies inside its ancestor's span in the depth-first leaf order, so the
    # ancestor minus the node is the two pieces on either side.
    leaves = np.concatenate(
        (
            index.order[index.start[anc] : index.start[v]],
            index.order[index.stop[v] : index.stop[anc]],
        )
    )
    return leaves_mask(index, leaves, image_hw)
