"""The preprocessing stages as plain callables over a batch ``dict[str, np.ndarray]``.

The same objects run in the in-process loop (:mod:`.local`), in Ray tasks and under Ray Data
``map_batches`` (:mod:`.ray_exec`): heavy setup (the backbone) happens in ``__init__``, each
call maps one batch to one batch. Every row carries the columns of :data:`RECORD_COLUMNS`;
``status`` is ``"ok"`` until a stage fails on that image, after which later stages pass the
row through untouched, so a bad image never stops a batch.

Batch columns (``B`` rows)::

    image_id, source   (B,) str      from the input listing
    status             (B,) str      "ok" or "failed"
    reason, message    (B,) str      failure code (ImageError.reason or exception class) / text
    orig_hw            (B, 2) int32  decoded (height, width), pixels
    resized_hw         (B, 2) int32  (height, width) fed to the backbone, pixels
    grid_hw            (B, 2) int32  (grid_h, grid_w) patches
    pixels             (B,) object   (H', W', 3) uint8 per image   [decode -> features]
    features           (B,) object   (grid_h, grid_w, C) float32   [features -> merge]
    children           (B,) object   (n-1, 2) int32                [merge -> writer]
    cost               (B,) object   (n-1,) float32                [merge -> writer]

Heavy columns are dropped once consumed, so only trees travel back to the writer.
Placeholders for failed rows are tiny arrays of the right rank (never read).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import PipelineConfig
from ..errors import ImageError, raise_if_interrupted
from ..merge.tree import MergeTree
from ..store.record import TreeRecord

__all__ = [
    "RECORD_COLUMNS",
    "make_batch",
    "DecodeStage",
    "FeatureStage",
    "MergeStage",
    "batch_to_records",
    "object_column",
    "concat_batches",
]

log = logging.getLogger(__name__)

RECORD_COLUMNS = ("image_id", "source", "status", "reason", "message", "orig_hw", "resized_hw", "grid_hw")


def object_column(values: Sequence[Any]) -> np.ndarray:
    """A 1-D object array holding ``values`` (arrays of different shapes) without broadcasting."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def make_batch(image_ids: Sequence[str], sources: Sequence[str]) -> dict[str, np.ndarray]:
    """The input batch of the pipeline: ids and sources, everything else at its start value."""
    b = len(image_ids)
    return {
        "image_id": np.array(list(image_ids), dtype=str).reshape(b),
        "source": np.array(list(sources), dtype=str).reshape(b),
    }


def _fail(batch: dict[str, np.ndarray], i: int, exc: BaseException) -> None:
    raise_if_interrupted(exc)  # Ctrl-C inside a kernel is not a failed image
    batch["status"][i] = "failed"
    batch["reason"][i] = getattr(exc, "reason", None) or type(exc).__name__
    batch["message"][i] = str(exc)


def _as_str_column(values: Any, b: int) -> np.ndarray:
    """Writable object column of python strs (Ray may hand back fixed-width or arrow strings)."""
    return object_column([str(v) for v in np.asarray(values).reshape(b).tolist()])


class DecodeStage:
    """Read, decode, validate and resize each image (CPU). Adds status..grid_hw and ``pixels``.

    Any :class:`~mis_pipeline.errors.ImageError` marks the row failed with its reason; other
    exceptions (a bug, an I/O error) too, with the exception class as the reason, so one image
    never stops a run.
    """

    def __init__(self, config: PipelineConfig, patch_size: int) -> None:
        self.config = config
        self.patch = int(patch_size)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ..io import prepare_image

        ids = [str(x) for x in np.asarray(batch["image_id"]).tolist()]
        srcs = [str(x) for x in np.asarray(batch["source"]).tolist()]
        b = len(ids)
        out: dict[str, np.ndarray] = {
            "image_id": object_column(ids),
            "source": object_column(srcs),
            "status": object_column(["ok"] * b),
            "reason": object_column([""] * b),
            "message": object_column([""] * b),
            "orig_hw": np.zeros((b, 2), np.int32),
            "resized_hw": np.zeros((b, 2), np.int32),
            "grid_hw": np.zeros((b, 2), np.int32),
        }
        pixels: list[np.ndarray] = []
        io = self.config.io
        for i, src in enumerate(srcs):
            try:
                prep = prepare_image(src, self.patch, max_pixels=io.max_pixels, max_side=io.max_side, path_for_errors=ids[i])
            except ImageError as exc:
                _fail(out, i, exc)
                pixels.append(np.zeros((1, 1, 3), np.uint8))
                continue
            except Exception as exc:  # never let one image stop the run; recorded with its class
                raise_if_interrupted(exc)
                log.warning("image %s failed unexpectedly: %r", ids[i], exc)
                _fail(out, i, exc)
                pixels.append(np.zeros((1, 1, 3), np.uint8))
                continue
            out["orig_hw"][i] = prep.original_size
            out["resized_hw"][i] = prep.resized_size
            out["grid_hw"][i] = prep.grid_shape
            pixels.append(prep.pixels)
        out["pixels"] = object_column(pixels)
        return out


class FeatureStage:
    """Patch features of every ok row (GPU/CPU); the backbone is built once in ``__init__``.

    Consumes ``pixels``, adds ``features``. Under Ray this is an actor class (a pool of
    ``preprocess.feature_actors`` actors, ``num_gpus`` each when the cluster has GPUs).
    """

    def __init__(self, config: PipelineConfig, backbone: Any = None) -> None:
        from ..features import get_backbone

        self.config = config
        self.backbone = backbone if backbone is not None else get_backbone(config.features)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {k: v for k, v in batch.items() if k != "pixels"}
        b = len(out["image_id"])
        out["status"] = _as_str_column(out["status"], b)
        out["reason"] = _as_str_column(out["reason"], b)
        out["message"] = _as_str_column(out["message"], b)
        pixels = list(batch["pixels"])
        ok = [i for i in range(b) if out["status"][i] == "ok"]
        feats: list[np.ndarray] = [np.zeros((1, 1, 1), np.float32) for _ in range(b)]
        if ok:
            try:
                got = self.backbone.extract([np.asarray(pixels[i], dtype=np.uint8) for i in ok])
                for i, f in zip(ok, got, strict=True):
                    feats[i] = np.asarray(f, dtype=np.float32)
            except Exception as exc:  # one bad image must not take the batch down: retry singly
                raise_if_interrupted(exc)
                log.warning("batched feature extraction failed (%r); retrying image by image", exc)
                for i in ok:
                    try:
                        feats[i] = np.asarray(self.backbone.extract([np.asarray(pixels[i], np.uint8)])[0], np.float32)
                    except Exception as exc1:
                        _fail(out, i, exc1)
        out["features"] = object_column(feats)
        return out


class MergeStage:
    """Connectivity-constrained Ward merge of every ok row (CPU). Consumes ``features``."""

    def __init__(self, config: PipelineConfig | None = None) -> None:
        self.config = config

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ..merge import ward_grid

        out = {k: v for k, v in batch.items() if k != "features"}
        b = len(out["image_id"])
        out["status"] = _as_str_column(out["status"], b)
        out["reason"] = _as_str_column(out["reason"], b)
        out["message"] = _as_str_column(out["message"], b)
        children: list[np.ndarray] = []
        cost: list[np.ndarray] = []
        for i, f in enumerate(batch["features"]):
            if out["status"][i] == "ok":
                try:
                    tree = ward_grid(np.asarray(f, dtype=np.float32))
                    children.append(np.asarray(tree.children, np.int32))
                    cost.append(np.asarray(tree.cost, np.float32))
                    continue
                except Exception as exc:
                    raise_if_interrupted(exc)
                    log.warning("merge failed for %s: %r", out["image_id"][i], exc)
                    _fail(out, i, exc)
            children.append(np.zeros((1, 2), np.int32))
            cost.append(np.zeros(1, np.float32))
        out["children"] = object_column(children)
        out["cost"] = object_column(cost)
        return out


def concat_batches(batches: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One batch holding the rows of ``batches`` in order (same columns in each)."""
    if len(batches) == 1:
        return batches[0]
    keys = list(batches[0])
    for b in batches[1:]:
        if list(b) != keys:
            raise ValueError(f"batches with different columns: {keys} and {list(b)}")
    return {k: np.concatenate([np.asarray(b[k]) for b in batches]) for k in keys}


def batch_to_records(batch: dict[str, np.ndarray], backbone: str) -> list[TreeRecord]:
    """Turn a merged batch into store records (``tree`` set for ok rows)."""
    b = len(batch["image_id"])
    recs = []
    for i in range(b):
        status = str(batch["status"][i])
        grid = tuple(int(x) for x in np.asarray(batch["grid_hw"][i]))
        tree = None
        if status == "ok":
            tree = MergeTree(
                children=np.asarray(batch["children"][i], np.int32).reshape(-1, 2),
                cost=np.asarray(batch["cost"][i], np.float32).reshape(-1),
                grid_shape=(grid[0], grid[1]),
            )
        recs.append(
            TreeRecord(
                image_id=str(batch["image_id"][i]),
                source=str(batch["source"][i]),
                status=status,
                reason=str(batch["reason"][i]),
                message=str(batch["message"][i]),
                backbone=backbone,
                orig_hw=tuple(int(x) for x in np.asarray(batch["orig_hw"][i])),  # type: ignore[arg-type]
                resized_hw=tuple(int(x) for x in np.asarray(batch["resized_hw"][i])),  # type: ignore[arg-type]
                grid_hw=(grid[0], grid[1]) if status == "ok" else (0, 0),
                tree=tree,
            )
        )
    return recs
