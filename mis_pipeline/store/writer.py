"""The single writer of a tree store: append-only batches behind one atomic commit marker.

Why a crash cannot corrupt the store (layout in :mod:`mis_pipeline.store.layout`):

1. One writer per store. :class:`TreeWriter` holds an exclusive ``flock`` on the store
   directory for its lifetime (the kernel drops it when the process dies, so a killed run
   leaves no stale lock); a second writer gets :class:`StoreLockedError`. In the Ray pipeline
   the workers return trees to the driver, which is the only process that writes, so no two
   writers ever touch the same shard.
2. Data first, marker last. A commit writes the batch's rows past the committed marker
   ``(N, M)`` (records ``[N, N+b)``, merges ``[M, M+m)``), then rewrites the root
   ``zarr.json`` with the new marker. Zarr's LocalStore replaces every file it writes (chunk
   shard or metadata) by write-to-temporary + rename, so each file is always either its old or
   its new content; rows below the marker are the same bytes in both. A crash before the
   marker leaves rows past it that no reader looks at and that the next commit overwrites.
3. Resume. Opening an existing store removes leftover ``*.partial`` temporaries, re-reads the
   marker and the committed ids: images already stored (ok, or failed unless
   ``retry_failed``) are skipped, so a rerun never duplicates an image.
4. Retry. With ``retry_failed`` a failed image is processed again and its new row appended;
   after that commit the old row's status becomes ``superseded``. If a crash falls between the
   two, readers still take the later row (last row wins) and the next writer repairs the flag.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..config import PipelineConfig, to_dict
from ..errors import StoreError, StoreLockedError
from .codec import cost_relative_error_bound, encode_children, encode_costs
from .layout import (
    CHILDREN_CODEC,
    COST_CODEC,
    FORMAT_VERSION,
    RECORD_FIELDS,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SUPERSEDED,
    TREE_FIELDS,
    check_layout,
    create_arrays,
    read_marker,
)
from .record import TreeRecord

__all__ = ["TreeWriter", "TREE_AFFECTING_FIELDS"]

log = logging.getLogger(__name__)

# Config fields that change the trees; a store can only be resumed with the same values.
TREE_AFFECTING_FIELDS = (
    ("io", None),
    ("features", "backbone"),
    ("features", "weights"),
    ("features", "pos_embed"),
    ("store", None),
)

_STATUS_CODE = {"ok": STATUS_OK, "failed": STATUS_FAILED}


def _relevant(cfg: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section, key in TREE_AFFECTING_FIELDS:
        sec = cfg.get(section, {})
        if key is None:
            out[section] = sec
        else:
            out[f"{section}.{key}"] = sec.get(key)
    return out


def _grow(n: int, quantum: int) -> int:
    """Smallest multiple of ``quantum`` >= ``n`` (array capacity grows a shard at a time)."""
    return -(-n // quantum) * quantum


class TreeWriter:
    """Open (creating or resuming) the store at ``path`` for writing; use as a context manager.

    Parameters
    ----------
    path : str or Path
        Store directory (created if missing).
    config : PipelineConfig
        Resolved configuration, recorded in the attributes of a new store. Resuming a store
        created with different tree-affecting settings (``TREE_AFFECTING_FIELDS``) raises
        StoreError, so one store never mixes trees from two settings.
    retry_failed : bool
        Treat images recorded as failed as not done (see :meth:`is_done`).
    """

    def __init__(self, path: str | os.PathLike[str], config: PipelineConfig, *, retry_failed: bool = False) -> None:
        import zarr

        self.path = Path(path)
        self.config = config
        self.retry_failed = bool(retry_failed)
        self._mantissa_bits = config.store.cost_mantissa_bits
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"store path {self.path} exists and is not a directory")
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise StoreLockedError(f"store {self.path} is being written by another process") from exc
        try:
            self._remove_partials()
            self.group = self._open_or_create(zarr)
            self.n_records, self.n_merges = read_marker(self.group.attrs)
            self._arrays = {f"records/{k}": self.group[f"records/{k}"] for k in RECORD_FIELDS}
            self._arrays.update({f"trees/{k}": self.group[f"trees/{k}"] for k in TREE_FIELDS})
            self._load_index()
        except BaseException:
            self._release()
            raise

    # ------------------------------------------------------------------ opening
    def _remove_partials(self) -> None:
        for p in self.path.rglob("*.partial"):
            p.unlink(missing_ok=True)

    def _open_or_create(self, zarr: Any) -> Any:
        cfg_dict = to_dict(self.config)
        if (self.path / "zarr.json").is_file():
            group = zarr.open_group(str(self.path), mode="r+")
            if "mis_pipeline_store" not in group.attrs and "committed" not in group.attrs:
                # creation was interrupted before the attributes (written last) landed
                log.info("finishing the interrupted creation of %s", self.path)
                return self._create(zarr, cfg_dict)
            attrs = check_layout(group, str(self.path))
            old, new = _relevant(attrs.get("config", {})), _relevant(cfg_dict)
            diff = {k: (old.get(k), new.get(k)) for k in new if old.get(k) != new.get(k)}
            if diff:
                detail = "; ".join(f"{k}: store has {a!r}, this run {b!r}" for k, (a, b) in diff.items())
                raise StoreError(
                    f"store {self.path} was made with other tree settings ({detail}); resume it with "
                    "the same configuration or write to a new --out"
                )
            return group
        if any(self.path.iterdir()):
            raise StoreError(f"{self.path} is a non-empty directory that is not a tree store; choose a new --out")
        return self._create(zarr, cfg_dict)

    def _create(self, zarr: Any, cfg_dict: dict[str, Any]) -> Any:
        # Empty the directory ourselves: zarr's mode="w" would delete and recreate it, and the
        # lock held on the directory would then guard an orphaned inode.
        import shutil

        for child in self.path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        group = zarr.open_group(str(self.path), mode="a")
        create_arrays(group, self.config.store)
        bits = self._mantissa_bits
        group.attrs.update(
            {
                "package_version": __version__,
                "config": cfg_dict,
                "children_codec": CHILDREN_CODEC,
                "cost_codec": {
                    "name": COST_CODEC,
                    "mantissa_bits": bits,
                    "max_relative_error": cost_relative_error_bound(bits),
                },
                "committed": {"records": 0, "merges": 0},
                "mis_pipeline_store": FORMAT_VERSION,  # last key: marks creation complete
            }
        )
        return group

    def _load_index(self) -> None:
        n = self.n_records
        ids = np.array(self._arrays["records/image_id"][:n].tolist(), dtype=str) if n else np.zeros(0, str)
        status = np.asarray(self._arrays["records/status"][:n]) if n else np.zeros(0, np.uint8)
        self._row: dict[str, int] = {}
        stale: list[int] = []
        for i, image_id in enumerate(ids.tolist()):
            prev = self._row.get(image_id)
            if prev is not None and status[prev] != STATUS_SUPERSEDED:
                stale.append(prev)
            self._row[image_id] = i
        self._status = status.copy()
        if stale:  # a crash fell between a retry's commit and its superseded flag
            log.info("marking %d replaced rows superseded", len(stale))
            self._supersede(stale)

    # ------------------------------------------------------------------ state
    def status_of(self, image_id: str) -> str | None:
        """``"ok"``, ``"failed"`` or ``None`` (never stored) for ``image_id``."""
        row = self._row.get(image_id)
        if row is None:
            return None
        return "ok" if self._status[row] == STATUS_OK else "failed"

    def is_done(self, image_id: str) -> bool:
        """True if the image needs no processing (stored ok, or failed and not retrying)."""
        st = self.status_of(image_id)
        return st == "ok" or (st == "failed" and not self.retry_failed)

    def pending(self, image_ids: Iterable[str]) -> list[str]:
        """The ids among ``image_ids`` that still need processing, in the given order."""
        return [i for i in image_ids if not self.is_done(i)]

    # ------------------------------------------------------------------ writing
    def commit(self, records: Sequence[TreeRecord]) -> None:
        """Append ``records`` as one atomic batch (all become visible together, or none)."""
        if not records:
            return
        seen: set[str] = set()
        replaced: list[int] = []
        for r in records:
            if r.status not in _STATUS_CODE:
                raise StoreError(f"record {r.image_id!r}: status {r.status!r}; allowed: 'ok', 'failed'")
            if r.image_id in seen:
                raise StoreError(f"image {r.image_id!r} appears twice in one batch")
            seen.add(r.image_id)
            if self.is_done(r.image_id):
                raise StoreError(f"image {r.image_id!r} is already stored ({self.status_of(r.image_id)}); refusing to duplicate it")
            if r.image_id in self._row:
                replaced.append(self._row[r.image_id])
            if r.ok and r.tree is None:
                raise StoreError(f"record {r.image_id!r} has status 'ok' but no tree")
        codes_r, codes_n, codes_k, starts, leaves = [], [], [], [], []
        m = self.n_merges
        for r in records:
            starts.append(m)
            if r.ok and r.tree is not None:
                tree = r.tree
                if tuple(tree.grid_shape) != tuple(r.grid_hw):
                    raise StoreError(f"record {r.image_id!r}: grid_hw {r.grid_hw} != tree grid {tree.grid_shape}")
                rank, nbr = encode_children(tree.children, tree.grid_shape)
                codes_r.append(rank)
                codes_n.append(nbr)
                codes_k.append(encode_costs(tree.cost, self._mantissa_bits))
                leaves.append(tree.n_leaves)
                m += tree.n_leaves - 1
            else:
                leaves.append(0)
        b, n0, m0 = len(records), self.n_records, self.n_merges
        cols: dict[str, np.ndarray] = {
            "image_id": np.array([r.image_id for r in records], dtype=object),
            "source": np.array([r.source for r in records], dtype=object),
            "status": np.array([_STATUS_CODE[r.status] for r in records], dtype=np.uint8),
            "reason": np.array([r.reason for r in records], dtype=object),
            "message": np.array([r.message for r in records], dtype=object),
            "backbone": np.array([r.backbone for r in records], dtype=object),
            "orig_hw": np.array([r.orig_hw for r in records], dtype=np.int32).reshape(b, 2),
            "resized_hw": np.array([r.resized_hw for r in records], dtype=np.int32).reshape(b, 2),
            "grid_hw": np.array([r.grid_hw if r.ok else (0, 0) for r in records], dtype=np.int32).reshape(b, 2),
            "n_leaves": np.array(leaves, dtype=np.int32),
            "merge_start": np.array(starts, dtype=np.int64),
        }
        scfg = self.config.store
        for name, col in cols.items():
            arr = self._arrays[f"records/{name}"]
            if arr.shape[0] < n0 + b:
                arr.resize((_grow(n0 + b, scfg.records_per_shard), *arr.shape[1:]))
            arr[n0 : n0 + b] = col
        if m > m0:
            for name, parts in (("child_rank", codes_r), ("child_nbr", codes_n), ("cost", codes_k)):
                arr = self._arrays[f"trees/{name}"]
                if arr.shape[0] < m:
                    arr.resize((_grow(m, scfg.merges_per_shard),))
                arr[m0:m] = np.concatenate(parts)
        # the commit point: one atomic rewrite of the root zarr.json
        self.group.attrs.update({"committed": {"records": n0 + b, "merges": m}})
        self.n_records, self.n_merges = n0 + b, m
        self._status = np.concatenate([self._status, cols["status"]])
        for i, r in enumerate(records):
            self._row[r.image_id] = n0 + i
        if replaced:
            self._supersede(replaced)

    def _supersede(self, rows: list[int]) -> None:
        arr = self._arrays["records/status"]
        for row in sorted(set(rows)):
            arr[row] = STATUS_SUPERSEDED
            self._status[row] = STATUS_SUPERSEDED

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Trim the arrays to the committed rows (exact shapes for plain readers); unlock."""
        if self._lock_fd < 0:
            return
        try:
            for key, arr in self._arrays.items():
                n = self.n_records if key.startswith("records/") else self.n_merges
                if arr.shape[0] != n:
                    arr.resize((n, *arr.shape[1:]))
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock_fd >= 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> TreeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - safety net; close() is the API
        if getattr(self, "_lock_fd", -1) >= 0:
            self._release()
