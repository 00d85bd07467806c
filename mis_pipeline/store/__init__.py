"""The Zarr v3 tree store: one store per preprocessing run (layout in :mod:`.layout`).

``TreeWriter`` appends atomic batches (single writer, crash-safe, resumable); ``TreeStore``
reads records and trees, ``TreeReader`` serves random-access batches for data loaders.
"""

from .fingerprint import (
    NOT_TREE_AFFECTING,
    TREE_SECTIONS,
    settings_diff,
    tree_fingerprint,
    tree_settings,
)
from .layout import FORMAT_VERSION
from .reader import StoreSummary, TreeReader, TreeStore, disk_usage
from .record import TreeRecord
from .writer import TreeWriter, resolved_config_path, write_resolved_config

__all__ = [
    "FORMAT_VERSION",
    "TreeStore",
    "TreeReader",
    "TreeWriter",
    "TreeRecord",
    "StoreSummary",
    "disk_usage",
    "TREE_SECTIONS",
    "NOT_TREE_AFFECTING",
    "tree_settings",
    "tree_fingerprint",
    "settings_diff",
    "resolved_config_path",
    "write_resolved_config",
]
