"""Connectivity-constrained Ward merge on patch grids, and merge-tree utilities.

Public API
----------
:func:`ward_grid`      ``(grid_h, grid_w, C)`` features -> :class:`MergeTree` (exactly
                       scikit-learn's ``ward_tree`` with ``grid_to_graph`` connectivity)
:class:`MergeTree`     ``children`` (n-1, 2) int32, ``cost`` (n-1,) float32, ``grid_shape``
:func:`validate_tree`  check an untrusted tree -> :class:`MergeTree`
:class:`TreeIndex`     sizes, parent, depth, depth-first leaf order and spans, node masks
:func:`tree_index`     build a :class:`TreeIndex` (also cached as ``MergeTree.index``)

Importing this package imports neither numba nor scikit-learn: the compiled kernels are
imported (and, the first time on a machine, compiled and cached) on first use.
"""

from .index import TreeIndex, grid_cell_of_pixels, tree_index
from .tree import MergeTree
from .validate import validate_tree
from .ward import ward_grid

__all__ = [
    "MergeTree",
    "TreeIndex",
    "grid_cell_of_pixels",
    "tree_index",
    "validate_tree",
    "ward_grid",
]
