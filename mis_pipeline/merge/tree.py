"""The merge tree: the central data structure of the pipeline (contract in DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .index import TreeIndex

__all__ = ["MergeTree"]


@dataclass(frozen=True, eq=False)
class MergeTree:
    """Binary merge tree over the patches of a ``grid_h x grid_w`` grid.

    Attributes
    ----------
    children : ndarray, shape (n-1, 2), int32
        Row ``k`` holds the two nodes merged at step ``k``, creating node ``n + k``. Leaves
        ``0..n-1`` are patches in row-major order (``r * grid_w + c``); the root is ``2n - 2``.
        Same convention as scipy / scikit-learn ``ward_tree`` ``children_``.
    cost : ndarray, shape (n-1,), float32
        Ward cost of each merge, ``s_a*s_b/(s_a+s_b) * ||mu_a - mu_b||^2`` (MIS eq. 4).
        Not monotone along paths under connectivity constraints.
    grid_shape : tuple of int
        ``(grid_h, grid_w)``.
    """

    children: np.ndarray
    cost: np.ndarray
    grid_shape: tuple[int, int]

    @property
    def n_leaves(self) -> int:
        return int(self.grid_shape[0]) * int(self.grid_shape[1])

    @property
    def n_nodes(self) -> int:
        return 2 * self.n_leaves - 1

    @property
    def root(self) -> int:
        return 2 * self.n_leaves - 2

    @cached_property
    def index(self) -> TreeIndex:
        """Derived arrays (sizes, parent, depth, leaf order, spans, masks), computed on first
        access and cached on this tree; see :func:`mis_pipeline.merge.tree_index`. The
        arrays are treated as immutable: do not modify ``children`` after using this."""
        from .index import tree_index

        return tree_index(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MergeTree):
            return NotImplemented
        return (
            tuple(self.grid_shape) == tuple(other.grid_shape)
            and np.array_equal(self.children, other.children)
            and np.array_equal(self.cost, other.cost)
        )
