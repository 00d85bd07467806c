"""The Zarr v3 tree store: one store per preprocessing run (layout in :mod:`.layout`).

``TreeWriter`` appends atomic batches (single writer, crash-safe, resumable); ``TreeStore``
reads records and trees, ``TreeReader`` serves random-access batches for data loaders.
"""

from .layout import FORMAT_VERSION
from .reader import StoreSummary, TreeReader, TreeStore, disk_usage
from .record import TreeRecord
from .writer import TreeWriter

__all__ = ["FORMAT_VERSION", "TreeStore", "TreeReader", "TreeWriter", "TreeRecord", "StoreSummary", "disk_usage"]
