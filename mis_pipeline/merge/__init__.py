"""Connectivity-constrained Ward merge on patch grids, and merge-tree utilities."""

from .tree import MergeTree

__all__ = ["MergeTree"]
