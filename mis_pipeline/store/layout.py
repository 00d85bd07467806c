"""On-disk layout of the tree store (one Zarr v3 group per preprocessing run).

Layout (format version 1)::

    STORE/                          Zarr v3 group; open with zarr.open_group(STORE, mode="r")
      zarr.json   attributes:
        mis_pipeline_store  1                       format version
        package_version     "0.1.0"                 mis-pipeline version that created the store
        config              {...}                   resolved PipelineConfig (nested dict); the
                                                    source of truth (STORE.resolved_config.yaml
                                                    beside the store is a readable copy)
        tree_fingerprint    "3f2a..."               hash of the tree settings (store.fingerprint)
        children_codec      "grid-rank-v1"          see mis_pipeline.store.children_codec
        cost_codec          {"name": "rounded-float32-delta-zigzag-v1", "mantissa_bits": 10,
                             "max_relative_error": 0.00048828125}
        committed           {"records": N, "merges": M}   THE COMMIT MARKER: only records[:N]
                                                    and trees[:M] exist; anything past them is
                                                    an unfinished write and must be ignored
      records/                      one row per image attempt, read rows [:N]
        image_id     (N,)   string  image id: path relative to the input root (posix) or URL
        source       (N,)   string  full path or URL the image was read from
        status       (N,)   uint8   0 ok, 1 failed, 2 superseded (a later row has this image_id)
        reason       (N,)   string  failure reason code ("empty", "truncated", "not_an_image",
                                    "too_many_pixels", "too_small", "unreadable", ...); "" if ok
        message      (N,)   string  human-readable failure message; "" if ok
        backbone     (N,)   string  feature backbone name
        orig_hw      (N, 2) int32   (height, width) of the decoded image, pixels; 0 if not decoded
        resized_hw   (N, 2) int32   (height, width) fed to the backbone, pixels
        grid_hw      (N, 2) int32   (grid_h, grid_w) patch grid, (rows, cols)
        n_leaves     (N,)   int32   grid_h * grid_w; 0 when failed
        merge_start  (N,)   int64   the image's merges are trees/*[merge_start : merge_start +
                                    max(n_leaves - 1, 0)]
      trees/                        ragged merges of all images, concatenated, read [:M]
        child_rank   (M,)   uint32  rank of the merge's smaller child among the current regions
        child_nbr    (M,)   uint32  2 * (position of the other child among the smaller one's
                                    neighbours, in scan order) + (1 if the row is descending);
                                    decode_children(child_rank, child_nbr, grid_hw) gives the
                                    (n-1, 2) children rows exactly (children_codec)
        cost         (M,)   uint32  zig-zag delta of the rounded float32 cost bits, restarted at
                                    each image's first merge (codec.decode_costs)

Every array is chunked (records: ``records_per_chunk`` rows; trees: ``merges_per_chunk``
merges), each chunk compressed with Zstandard (level 15 by default; numeric arrays through
Blosc with byte shuffle, strings through the vlen-utf8 codec), and chunks are grouped into
shard files (``records_per_shard`` / ``merges_per_shard``, the Zarr v3 sharding codec), so a
million images with ~1000 merges each make about a thousand files per trees array, not a
million. Zarr's LocalStore writes every file (shard or metadata) to a temporary name and
renames it into place, so a reader sees each file either before or after a write.

Size (327 Weizmann horses at their size, colour_texture, ~930 merges per image, defaults):
2.42 bytes per merge for the whole store (children 1.42, costs 0.94, records and metadata
0.06; 4.13 with exact costs), against 7.9 for the public MIS code's pickle per image without
costs.

Writes (mis_pipeline.store.writer): a single writer process appends past the marker, then
rewrites the marker (zarr.json, replaced atomically by rename); a crash leaves the old marker,
so readers never see a half-written batch and a resumed writer overwrites the leftovers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import StoreConfig
from ..errors import ConfigError, StoreCorruptError

__all__ = [
    "FORMAT_VERSION",
    "CHILDREN_CODEC",
    "COST_CODEC",
    "RECORD_FIELDS",
    "TREE_FIELDS",
    "STATUS_OK",
    "STATUS_FAILED",
    "STATUS_SUPERSEDED",
    "STATUS_NAMES",
    "create_arrays",
    "read_marker",
    "check_layout",
]

FORMAT_VERSION = 1
CHILDREN_CODEC = "grid-rank-v1"
COST_CODEC = "rounded-float32-delta-zigzag-v1"

STATUS_OK, STATUS_FAILED, STATUS_SUPERSEDED = 0, 1, 2
STATUS_NAMES = {STATUS_OK: "ok", STATUS_FAILED: "failed", STATUS_SUPERSEDED: "superseded"}

# name -> (dtype, trailing shape); dtype "str" is a variable-length UTF-8 string.
RECORD_FIELDS: dict[str, tuple[Any, tuple[int, ...]]] = {
    "image_id": (str, ()),
    "source": (str, ()),
    "status": (np.uint8, ()),
    "reason": (str, ()),
    "message": (str, ()),
    "backbone": (str, ()),
    "orig_hw": (np.int32, (2,)),
    "resized_hw": (np.int32, (2,)),
    "grid_hw": (np.int32, (2,)),
    "n_leaves": (np.int32, ()),
    "merge_start": (np.int64, ()),
}
TREE_FIELDS: dict[str, tuple[Any, tuple[int, ...]]] = {
    "child_rank": (np.uint32, ()),
    "child_nbr": (np.uint32, ()),
    "cost": (np.uint32, ()),
}


def _check_multiple(cfg: StoreConfig) -> None:
    if cfg.records_per_shard % cfg.records_per_chunk:
        raise ConfigError(
            "store.records_per_shard", cfg.records_per_shard,
            f"a multiple of store.records_per_chunk ({cfg.records_per_chunk})",
        )
    if cfg.merges_per_shard % cfg.merges_per_chunk:
        raise ConfigError(
            "store.merges_per_shard", cfg.merges_per_shard,
            f"a multiple of store.merges_per_chunk ({cfg.merges_per_chunk})",
        )


def _codecs(dtype: Any, itemsize: int, level: int) -> dict[str, Any]:
    from zarr.codecs import BloscCodec, ZstdCodec

    if dtype is str:
        return {"compressors": ZstdCodec(level=level)}
    return {"compressors": BloscCodec(cname="zstd", clevel=level, shuffle="shuffle", typesize=itemsize)}


def create_arrays(group: Any, cfg: StoreConfig) -> None:
    """Create the empty ``records/`` and ``trees/`` arrays of a new store in zarr ``group``."""
    _check_multiple(cfg)
    for sub, fields, chunk, shard in (
        ("records", RECORD_FIELDS, cfg.records_per_chunk, cfg.records_per_shard),
        ("trees", TREE_FIELDS, cfg.merges_per_chunk, cfg.merges_per_shard),
    ):
        g = group.require_group(sub)
        for name, (dtype, trail) in fields.items():
            itemsize = 1 if dtype is str else np.dtype(dtype).itemsize
            g.create_array(
                name,
                shape=(0, *trail),
                chunks=(chunk, *trail),
                shards=(shard, *trail),
                dtype=dtype,
                fill_value="" if dtype is str else 0,
                **_codecs(dtype, itemsize, cfg.compression_level),
            )


def read_marker(attrs: Any) -> tuple[int, int]:
    """``(n_records, n_merges)`` committed, from the root group attributes."""
    committed = attrs.get("committed")
    if not isinstance(committed, dict) or not {"records", "merges"} <= set(committed):
        raise StoreCorruptError(f"store attribute 'committed' is missing or malformed: {committed!r}")
    return int(committed["records"]), int(committed["merges"])


def check_layout(group: Any, path: str) -> dict[str, Any]:
    """Validate format attributes and array presence; return the root attributes as a dict."""
    attrs = dict(group.attrs)
    version = attrs.get("mis_pipeline_store")
    if version is None:
        raise StoreCorruptError(f"{path} is a Zarr group but not a mis-pipeline tree store (no 'mis_pipeline_store' attribute)")
    if version != FORMAT_VERSION:
        raise StoreCorruptError(f"{path}: store format version {version!r}; this mis-pipeline reads version {FORMAT_VERSION}")
    if attrs.get("children_codec") != CHILDREN_CODEC or (attrs.get("cost_codec") or {}).get("name") != COST_CODEC:
        raise StoreCorruptError(f"{path}: unknown codecs {attrs.get('children_codec')!r} / {attrs.get('cost_codec')!r}")
    n_rec, n_mer = read_marker(attrs)
    for sub, fields, n in (("records", RECORD_FIELDS, n_rec), ("trees", TREE_FIELDS, n_mer)):
        for name in fields:
            key = f"{sub}/{name}"
            try:
                arr = group[key]
            except KeyError as exc:
                raise StoreCorruptError(f"{path}: array '{key}' is missing") from exc
            if arr.shape[0] < n:
                raise StoreCorruptError(f"{path}: array '{key}' has {arr.shape[0]} rows but {n} are committed")
    return attrs
