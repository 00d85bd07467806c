"""Reading a tree store: records, trees, a cached batched reader for data loaders, dask views."""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StoreError
from ..merge.tree import MergeTree
from .codec import decode_children, decode_costs
from .layout import (
    RECORD_FIELDS,
    STATUS_NAMES,
    STATUS_OK,
    STATUS_SUPERSEDED,
    TREE_FIELDS,
    check_layout,
    read_marker,
)
from .record import TreeRecord

__all__ = ["TreeStore", "TreeReader", "StoreSummary", "disk_usage"]

log = logging.getLogger(__name__)


def disk_usage(path: str | os.PathLike[str]) -> int:
    """Total bytes of the files under ``path`` (0 if it does not exist)."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


@dataclass(frozen=True)
class StoreSummary:
    """Counts and sizes of a store (what ``mis inspect`` prints).

    Sizes are bytes on disk, divided by the number of merges for the ``*_per_merge`` figures.
    The four parts add up to the total:

    - ``structure_bytes``: ``trees/child_rank`` and ``trees/child_nbr`` (the tree shapes);
    - ``cost_bytes``: ``trees/cost`` (the merge costs);
    - ``records_bytes``: ``records/`` (one row per image: id, source path, status and failure
      reason, sizes, grid, offset into the trees);
    - ``metadata_bytes``: the rest, the Zarr metadata files (the root ``zarr.json`` holds the
      resolved configuration and the commit marker; one small ``zarr.json`` per group and
      array). Records and metadata grow with the number of images, not of merges.
    """

    path: str
    n_images: int
    n_ok: int
    n_failed: int
    failed_by_reason: dict[str, int]
    n_merges: int
    total_bytes: int
    structure_bytes: int
    cost_bytes: int
    backbones: tuple[str, ...]
    package_version: str
    cost_max_relative_error: float
    records_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def metadata_bytes(self) -> int:
        """Bytes of everything but the trees and records arrays (Zarr metadata files)."""
        return max(self.total_bytes - self.structure_bytes - self.cost_bytes - self.records_bytes, 0)

    def _per_merge(self, nbytes: int) -> float:
        return nbytes / self.n_merges if self.n_merges else float("nan")

    @property
    def bytes_per_merge(self) -> float:
        return self.total_bytes / self.n_merges if self.n_merges else float("nan")

    @property
    def structure_bytes_per_merge(self) -> float:
        return self.structure_bytes / self.n_merges if self.n_merges else float("nan")

    @property
    def cost_bytes_per_merge(self) -> float:
        return self.cost_bytes / self.n_merges if self.n_merges else float("nan")

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = [
            f"store            {self.path}",
            f"images           {self.n_images} ({self.n_ok} ok, {self.n_failed} failed)",
        ]
        for reason, count in sorted(self.failed_by_reason.items()):
            out.append(f"  failed: {reason:<16} {count}")
        out += [
            f"backbone         {', '.join(self.backbones) or '-'}",
            f"merges           {self.n_merges}",
            f"size on disk     {self.total_bytes / 1e6:.3f} MB",
            f"bytes per merge  {self.bytes_per_merge:.3f} = structure {self.structure_bytes_per_merge:.3f}"
            f" + costs {self.cost_bytes_per_merge:.3f} + records {self._per_merge(self.records_bytes):.3f}"
            f" + metadata {self._per_merge(self.metadata_bytes):.3f}",
            "                 (structure: trees/child_*; costs: trees/cost, rel. error <= "
            f"{self.cost_max_relative_error:.2g}; records: per-image rows; metadata: zarr.json)",
            f"written by       mis-pipeline {self.package_version}",
        ]
        return out


class TreeStore:
    """Read-only view of a tree store's committed records (see :mod:`.layout` for the format).

    ``len(store)`` counts images (rows a retry replaced are hidden); ``store[i]`` and
    ``store.get(image_id)`` return :class:`TreeRecord` with ``.tree`` a :class:`MergeTree`
    (``None`` when the image failed). The record arrays are loaded at open (a few tens of bytes
    per image); trees are read on demand. Open a new instance to see commits made after opening.
    """

    def __init__(self, group: Any, path: str) -> None:
        self.path = path
        self.group = group
        self.attrs = check_layout(group, path)
        self.n_rows, self.n_merges = read_marker(self.attrs)
        self.mantissa_bits = int(self.attrs["cost_codec"]["mantissa_bits"])
        n = self.n_rows
        cols = {}
        for name in RECORD_FIELDS:
            arr = group[f"records/{name}"]
            cols[name] = np.asarray(arr[:n]) if n else np.zeros((0, *arr.shape[1:]), arr.dtype)
        for name in ("image_id", "source", "reason", "message", "backbone"):
            cols[name] = np.array(cols[name].tolist(), dtype=str) if n else np.zeros(0, dtype=str)
        self._cols = cols
        # live rows: not superseded, and the last row of each image id (last row wins)
        last: dict[str, int] = {}
        for i, image_id in enumerate(cols["image_id"].tolist()):
            last[image_id] = i
        live = np.array(sorted(last.values()), dtype=np.int64)
        live = live[cols["status"][live] != STATUS_SUPERSEDED] if live.size else live
        self._live = live
        self._index = {cols["image_id"][r]: k for k, r in enumerate(live.tolist())}
        self._shared_reader: TreeReader | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> TreeStore:
        """Open the store at ``path`` for reading (local path or fsspec URL)."""
        import zarr

        p = str(path)
        if "://" not in p and not (Path(p) / "zarr.json").is_file():
            raise StoreError(f"no tree store at {p} (no zarr.json); create one with `mis preprocess`")
        try:
            group = zarr.open_group(p, mode="r")
        except FileNotFoundError as exc:
            raise StoreError(f"no tree store at {p}: {exc}") from exc
        return cls(group, p)

    # ------------------------------------------------------------------ records
    def __len__(self) -> int:
        return int(self._live.size)

    @property
    def config(self) -> dict[str, Any]:
        """The resolved configuration the store was created with (nested dict)."""
        return dict(self.attrs.get("config", {}))

    @property
    def image_ids(self) -> list[str]:
        return self._cols["image_id"][self._live].tolist()

    def row_of(self, i: int) -> int:
        """Row in the ``records/`` arrays of the ``i``-th image."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"image index {i} out of range for a store of {n} images")
        return int(self._live[i])

    def ok_indices(self) -> np.ndarray:
        """Indices ``i`` (into this store, not rows) of the images that have a tree."""
        return np.flatnonzero(self._cols["status"][self._live] == STATUS_OK)

    def column(self, name: str) -> np.ndarray:
        """One record field for every image, in store order (e.g. ``"grid_hw"`` -> (N, 2))."""
        if name not in RECORD_FIELDS:
            raise KeyError(f"unknown record field {name!r}; fields: {', '.join(RECORD_FIELDS)}")
        return self._cols[name][self._live]

    def _record(self, row: int, tree: MergeTree | None) -> TreeRecord:
        c = self._cols
        return TreeRecord(
            image_id=str(c["image_id"][row]),
            source=str(c["source"][row]),
            status=STATUS_NAMES[int(c["status"][row])],
            reason=str(c["reason"][row]),
            message=str(c["message"][row]),
            backbone=str(c["backbone"][row]),
            orig_hw=(int(c["orig_hw"][row, 0]), int(c["orig_hw"][row, 1])),
            resized_hw=(int(c["resized_hw"][row, 0]), int(c["resized_hw"][row, 1])),
            grid_hw=(int(c["grid_hw"][row, 0]), int(c["grid_hw"][row, 1])),
            tree=tree,
            index=row,
        )

    def __getitem__(self, i: int) -> TreeRecord:
        row = self.row_of(int(i))
        return self._record(row, self._read_tree(row))

    def get(self, image_id: str) -> TreeRecord:
        """The record of ``image_id``; KeyError if the store has none."""
        if image_id not in self._index:
            raise KeyError(f"image {image_id!r} is not in store {self.path}")
        return self[self._index[image_id]]

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._index

    def __iter__(self) -> Iterator[TreeRecord]:
        """Every record in store order; trees read in batches through a :class:`TreeReader`."""
        reader = self.reader()
        step = 256
        for lo in range(0, len(self), step):
            idx = list(range(lo, min(lo + step, len(self))))
            trees = reader.read(idx)
            for i, tree in zip(idx, trees, strict=True):
                yield self._record(int(self._live[i]), tree)

    def _merge_span(self, row: int) -> tuple[int, int]:
        start = int(self._cols["merge_start"][row])
        return start, start + max(int(self._cols["n_leaves"][row]) - 1, 0)

    def _grid(self, row: int) -> tuple[int, int]:
        g = self._cols["grid_hw"][row]
        return int(g[0]), int(g[1])

    def _read_tree(self, row: int) -> MergeTree | None:
        if self._shared_reader is None:  # single-tree access shares one cached reader
            self._shared_reader = TreeReader(self, cache_bytes=64 << 20)
        return self._shared_reader.read_rows([row])[0]

    def _decode(self, row: int, codes: dict[str, np.ndarray]) -> MergeTree:
        grid = self._grid(row)
        return MergeTree(
            children=decode_children(codes["child_rank"], codes["child_nbr"], grid),
            cost=decode_costs(codes["cost"], self.mantissa_bits),
            grid_shape=grid,
        )

    def tree(self, i: int) -> MergeTree | None:
        """The merge tree of the ``i``-th image (``None`` if it failed)."""
        return self._read_tree(self.row_of(int(i)))

    def reader(self, cache_bytes: int = 256 << 20) -> TreeReader:
        """A batched, chunk-caching random-access reader (one per data-loader worker)."""
        return TreeReader(self, cache_bytes=cache_bytes)

    # ------------------------------------------------------------------ corpus views
    def to_dask(self) -> dict[str, Any]:
        """Lazy dask arrays of every stored array, cut to the committed rows.

        Keys ``"records/<field>"`` (all rows, including failed and superseded ones; filter on
        ``records/status == 0`` for stored trees) and ``"trees/<field>"`` (the encoded
        merges), plus ``"cost"``: the decoded float32 costs of all merges, one
        block per run of whole trees, e.g. ``store.to_dask()["cost"].mean().compute()``.
        """
        import dask.array as da

        out: dict[str, Any] = {}
        for name in RECORD_FIELDS:
            out[f"records/{name}"] = da.from_zarr(self.group[f"records/{name}"])[: self.n_rows]
        for name in TREE_FIELDS:
            out[f"trees/{name}"] = da.from_zarr(self.group[f"trees/{name}"])[: self.n_merges]
        out["cost"] = self._dask_costs()
        return out

    def _dask_costs(self, block_merges: int = 1 << 20) -> Any:
        import dask
        import dask.array as da

        rows = np.flatnonzero(self._cols["status"] == STATUS_OK)
        starts = self._cols["merge_start"][rows]
        counts = np.maximum(self._cols["n_leaves"][rows].astype(np.int64) - 1, 0)
        blocks, lo = [], 0
        while lo < rows.size:  # group whole trees into blocks of about block_merges merges
            total, hi = 0, lo
            while hi < rows.size and (hi == lo or total + counts[hi] <= block_merges):
                total += counts[hi]
                hi += 1
            blocks.append((lo, hi, int(total)))
            lo = hi
        arr = self.group["trees/cost"]
        bits = self.mantissa_bits

        def _block(s: np.ndarray, c: np.ndarray) -> np.ndarray:
            if not c.sum():
                return np.zeros(0, np.float32)
            raw = np.asarray(arr[int(s[0]) : int(s[-1] + c[-1])])
            return np.concatenate([decode_costs(raw[a - s[0] : a - s[0] + k], bits) for a, k in zip(s, c, strict=True)])

        parts = [
            da.from_delayed(dask.delayed(_block)(starts[a:b], counts[a:b]), shape=(n,), dtype=np.float32)
            for a, b, n in blocks
        ]
        return da.concatenate(parts) if parts else da.zeros(0, dtype=np.float32)

    def summary(self) -> StoreSummary:
        """Counts, failures by reason and sizes on disk (see :class:`StoreSummary`)."""
        status = self._cols["status"][self._live]
        reasons = self._cols["reason"][self._live][status != STATUS_OK]
        by_reason: dict[str, int] = {}
        for r in reasons.tolist():
            by_reason[r] = by_reason.get(r, 0) + 1
        local = "://" not in self.path
        total = disk_usage(self.path) if local else 0
        return StoreSummary(
            path=self.path,
            n_images=len(self),
            n_ok=int((status == STATUS_OK).sum()),
            n_failed=int((status != STATUS_OK).sum()),
            failed_by_reason=by_reason,
            n_merges=int(self.n_merges),
            total_bytes=total,
            structure_bytes=sum(disk_usage(Path(self.path) / "trees" / k) for k in TREE_FIELDS if k != "cost")
            if local
            else 0,
            cost_bytes=disk_usage(Path(self.path) / "trees" / "cost") if local else 0,
            records_bytes=disk_usage(Path(self.path) / "records") if local else 0,
            backbones=tuple(sorted(set(self._cols["backbone"][self._live][status == STATUS_OK].tolist()))),
            package_version=str(self.attrs.get("package_version", "")),
            cost_max_relative_error=float(self.attrs["cost_codec"]["max_relative_error"]),
        )


def _read_spans(arr: Any, spans: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """``[arr[a:b] for a, b in spans]`` of a 1-D zarr array, all fetched concurrently.

    One slice read per chunk through Zarr's asyncio loop: much cheaper than one orthogonal
    selection with an index per element, and the chunks decompress in parallel.
    """
    import asyncio

    from zarr.core.sync import sync

    async def _all() -> list[Any]:
        return await asyncio.gather(*(arr._async_array.getitem(slice(a, b)) for a, b in spans))

    return [np.asarray(x) for x in sync(_all())]


class TreeReader:
    """Batched random access to trees with an LRU cache of decompressed chunks.

    ``read(indices)`` works out which ``merges_per_chunk`` chunks of the ``trees/`` arrays the
    requested trees span, fetches all missing ones in a single Zarr call
    per array (Zarr decompresses them concurrently), keeps them in an LRU cache of at most
    ``cache_bytes``, and decodes each tree (O(n) union-find). One reader per process: it is not
    thread-safe.
    """

    def __init__(self, store: TreeStore, cache_bytes: int = 256 << 20) -> None:
        self.store = store
        self._arrays = {name: store.group[f"trees/{name}"] for name in TREE_FIELDS}
        self._chunk = int(self._arrays["cost"].chunks[0])
        self._cache: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._cache_bytes = int(cache_bytes)
        self._used = 0

    def _fetch(self, name: str, chunk_ids: Sequence[int]) -> None:
        need = [c for c in chunk_ids if (name, c) not in self._cache]
        if not need:
            for c in chunk_ids:
                self._cache.move_to_end((name, c))
            return
        m, ch = self.store.n_merges, self._chunk
        spans = [(c * ch, min((c + 1) * ch, m)) for c in need]
        for c, block in zip(need, _read_spans(self._arrays[name], spans), strict=True):
            self._cache[(name, c)] = block
            self._used += block.nbytes
        for c in chunk_ids:
            self._cache.move_to_end((name, c))

    def _evict(self, keep: int) -> None:
        """Drop least-recently-used chunks beyond ``cache_bytes`` (never the last ``keep``)."""
        while self._used > self._cache_bytes and len(self._cache) > keep:
            _, old = self._cache.popitem(last=False)
            self._used -= old.nbytes

    def _slice(self, name: str, lo: int, hi: int) -> np.ndarray:
        ch = self._chunk
        parts = []
        for c in range(lo // ch, (hi - 1) // ch + 1):
            block = self._cache[(name, c)]
            a, b = max(lo - c * ch, 0), min(hi - c * ch, block.size)
            parts.append(block[a:b])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def read(self, indices: Sequence[int]) -> list[MergeTree | None]:
        """Trees of store images ``indices`` (``None`` for failed images), in the given order."""
        return self.read_rows([self.store.row_of(int(i)) for i in indices])

    def read_rows(self, rows: Sequence[int]) -> list[MergeTree | None]:
        """Trees of ``records/`` rows ``rows`` (``None`` for failed rows), in the given order."""
        st = self.store
        spans = [st._merge_span(r) if st._cols["status"][r] == STATUS_OK else (0, 0) for r in rows]
        chunks = sorted({c for lo, hi in spans if hi > lo for c in range(lo // self._chunk, (hi - 1) // self._chunk + 1)})
        for name in TREE_FIELDS:
            self._fetch(name, chunks)
        out: list[MergeTree | None] = []
        for r, (lo, hi) in zip(rows, spans, strict=True):
            if st._cols["status"][r] != STATUS_OK:
                out.append(None)
            elif hi == lo:
                out.append(st._decode(r, {name: np.zeros(0, np.uint32) for name in TREE_FIELDS}))
            else:
                out.append(st._decode(r, {name: self._slice(name, lo, hi) for name in TREE_FIELDS}))
        self._evict(keep=len(chunks) * len(TREE_FIELDS))
        return out

    def __getitem__(self, i: int) -> MergeTree | None:
        return self.read([i])[0]
