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

One setting per store. A store records the resolved configuration in its attributes (the
source of truth) and, beside it, the hash of its tree settings
(:mod:`mis_pipeline.store.fingerprint`: every field of the io, features, merge and store
sections but a few that cannot change a tree). Resuming with any tree setting changed raises
StoreError naming each field, before anything is written.

The human-readable copy of the configuration, ``STORE.resolved_config.yaml`` beside the store
directory (:func:`resolved_config_path`; inside it Zarr would warn about a foreign file), is
written only once the run has been accepted: at its first commit, or when a run with nothing
left to do closes without error. It is replaced atomically (temporary file + rename). A run
refused at open (other settings, store locked, not a store) or failing before its first commit
leaves the file as it was, and a refused new store leaves no file.
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
from .fingerprint import settings_diff, tree_fingerprint
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

__all__ = ["TreeWriter", "resolved_config_path", "write_resolved_config"]

log = logging.getLogger(__name__)

_STATUS_CODE = {"ok": STATUS_OK, "failed": STATUS_FAILED}

RESOLVED_CONFIG_SUFFIX = ".resolved_config.yaml"


def resolved_config_path(store: str | os.PathLike[str]) -> Path:
    """``STORE.resolved_config.yaml``: the YAML copy of a store's configuration, beside it."""
    p = Path(store)
    return p.parent / f"{p.name}{RESOLVED_CONFIG_SUFFIX}"


def write_resolved_config(store: str | os.PathLike[str], config: PipelineConfig) -> Path:
    """Atomically (re)write :func:`resolved_config_path` of ``store`` from ``config``.

    The YAML holds the package version and every configuration section; the store's
    attributes remain the source of truth. Written to a temporary file in the same folder,
    flushed, then renamed over the old file, so readers see the old or the new file, whole.
    """
    import yaml

    path = resolved_config_path(store)
    payload = {"mis_pipeline_version": __version__, **to_dict(config)}
    text = (
        f"# Resolved configuration of the tree store {Path(store).name} (the store's own\n"
        "# attributes, zarr.json 'config', are the source of truth).\n"
        + yaml.safe_dump(payload, sort_keys=False)
    )
    tmp = path.parent / f".{path.name}.{os.getpid()}.partial"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


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
        created with different tree settings (:func:`~mis_pipeline.store.fingerprint.tree_settings`)
        raises StoreError naming the fields, so one store never mixes trees from two settings.
        Once the run is accepted (first commit, or a clean close) the configuration is also
        written to :func:`resolved_config_path` (see the module docstring).
    retry_failed : bool
        Treat images recorded as failed as not done (see :meth:`is_done`).
    """

    def __init__(self, path: str | os.PathLike[str], config: PipelineConfig, *, retry_failed: bool = False) -> None:
        import zarr

        self.path = Path(path)
        self.config = config
        self.retry_failed = bool(retry_failed)
        self._mantissa_bits = config.store.cost_mantissa_bits
        self._config_written = False
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
            diff = settings_diff(attrs.get("config") or {}, self.config)
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
                "tree_fingerprint": tree_fingerprint(self.config),
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
        self._record_config()
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

    def _record_config(self) -> None:
        """Write ``STORE.resolved_config.yaml`` once per accepted run."""
        if not self._config_written:
            write_resolved_config(self.path, self.config)
            self._config_written = True

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Finish a run: write the resolved configuration if no commit has yet, trim the
        arrays to the committed rows (exact shapes for plain readers), unlock.

        Called by ``with`` on a clean exit; when the block raises, the writer trims and unlocks
        but records no configuration (:meth:`__exit__`), so a run that fails before its first
        commit changes no file beside the store.
        """
        self._finish(record_config=True)

    def _finish(self, record_config: bool) -> None:
        if self._lock_fd < 0:
            return
        try:
            if record_config:
                self._record_config()
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

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._finish(record_config=exc_type is None)

    def __del__(self) -> None:  # pragma: no cover - safety net; close() is the API
        if getattr(self, "_lock_fd", -1) >= 0:
            self._release()
