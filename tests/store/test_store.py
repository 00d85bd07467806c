"""TreeStore / TreeWriter: round trip, plain-zarr readability, commits, resume, retry, lock."""

from __future__ import annotations

import numpy as np
import pytest

from mis_pipeline.config import PipelineConfig, from_dict
from mis_pipeline.errors import StoreError, StoreLockedError
from mis_pipeline.store import TreeRecord, TreeStore, TreeWriter
from mis_pipeline.store.codec import decode_children, decode_costs, round_costs

# small chunks and shards so a few trees already span several shards
SMALL = {"store": {"records_per_chunk": 4, "records_per_shard": 8, "merges_per_chunk": 256, "merges_per_shard": 512}}


def _cfg(**store) -> PipelineConfig:
    data = {"store": {**SMALL["store"], **store}}
    return from_dict(PipelineConfig, data)


def _records(trees, prefix="img"):
    out = []
    for i, t in enumerate(trees):
        out.append(
            TreeRecord(
                image_id=f"{prefix}/{i:03d}.png", source=f"/data/{prefix}/{i:03d}.png", status="ok",
                backbone="colour_texture", orig_hw=(t.grid_shape[0] * 8 + 3, t.grid_shape[1] * 8 - 1),
                resized_hw=(t.grid_shape[0] * 8, t.grid_shape[1] * 8), grid_hw=t.grid_shape, tree=t,
            )
        )
    return out


def _failed(image_id, reason="truncated"):
    return TreeRecord(image_id=image_id, source=f"/data/{image_id}", status="failed", reason=reason,
                      message=f"{image_id}: broken [{reason}]", backbone="colour_texture")


@pytest.fixture
def trees(rng, random_tree, ward_tree):
    grids = [(3, 4), (1, 1), (9, 7), (12, 15), (2, 1), (20, 13), (6, 6), (1, 9), (15, 20), (4, 5)]
    return [(ward_tree if i % 2 else random_tree)(gh, gw, rng) for i, (gh, gw) in enumerate(grids)]


def test_round_trip_exact_costs(tmp_path, trees):
    cfg = _cfg(cost_mantissa_bits=23)
    recs = _records(trees)
    with TreeWriter(tmp_path / "s.zarr", cfg) as w:
        w.commit(recs[:3])
        w.commit(recs[3:4] + [_failed("bad/x.jpg")])
        w.commit(recs[4:])
    store = TreeStore.open(tmp_path / "s.zarr")
    assert len(store) == len(recs) + 1
    got = {r.image_id: r for r in store}
    for r in recs:
        back = got[r.image_id]
        assert back.tree == r.tree  # identical children, costs and grid
        assert (back.orig_hw, back.resized_hw, back.grid_hw) == (r.orig_hw, r.resized_hw, r.grid_hw)
        assert back.source == r.source and back.backbone == r.backbone and back.status == "ok"
        assert store.get(r.image_id).tree == r.tree
    bad = store.get("bad/x.jpg")
    assert bad.status == "failed" and bad.reason == "truncated" and bad.tree is None and bad.n_leaves == 0
    assert "bad/x.jpg" in store and "nope" not in store
    with pytest.raises(KeyError):
        store.get("nope")
    # random access through the batched reader, in any order, with a cache smaller than the data
    reader = store.reader(cache_bytes=1024)
    order = [7, 0, 10, 3, 3, 9, 1, 4]
    for i, t in zip(order, reader.read(order), strict=True):
        assert t == store[i].tree


def test_default_precision_round_trip(tmp_path, trees):
    recs = _records(trees)
    with TreeWriter(tmp_path / "s.zarr", _cfg()) as w:
        w.commit(recs)
    store = TreeStore.open(tmp_path / "s.zarr")
    for r in recs:
        back = store.get(r.image_id).tree
        np.testing.assert_array_equal(back.children, r.tree.children)
        np.testing.assert_array_equal(back.cost, round_costs(r.tree.cost, 10))
        np.testing.assert_allclose(back.cost, r.tree.cost, rtol=2.0**-11, atol=0)


def test_readable_by_plain_zarr(tmp_path, trees):
    import zarr

    recs = _records(trees)
    cfg = _cfg()
    with TreeWriter(tmp_path / "s.zarr", cfg) as w:
        w.commit(recs)
    root = zarr.open(str(tmp_path / "s.zarr"), mode="r")
    attrs = dict(root.attrs)
    n, m = attrs["committed"]["records"], attrs["committed"]["merges"]
    assert attrs["mis_pipeline_store"] == 1 and attrs["config"]["store"]["merges_per_shard"] == 512
    assert attrs["package_version"] and attrs["cost_codec"]["mantissa_bits"] == 10
    assert root["records/image_id"].shape == (n,) and root["trees/child_rank"].shape == (m,)
    assert root["trees/child_rank"].shards == (512,) and root["trees/cost"].shards == (512,)  # sharded
    ids = root["records/image_id"][:].tolist()
    starts, leaves, grids = root["records/merge_start"][:], root["records/n_leaves"][:], root["records/grid_hw"][:]
    ranks, nbrs, costs = root["trees/child_rank"][:], root["trees/child_nbr"][:], root["trees/cost"][:]
    for r in recs:
        i = ids.index(r.image_id)
        lo, hi = starts[i], starts[i] + leaves[i] - 1
        grid = tuple(grids[i])
        np.testing.assert_array_equal(decode_children(ranks[lo:hi], nbrs[lo:hi], grid), r.tree.children)
        np.testing.assert_array_equal(decode_costs(costs[lo:hi], 10), round_costs(r.tree.cost, 10))
    # a few shard files, not one file per image
    n_files = sum(1 for p in (tmp_path / "s.zarr" / "trees" / "child_rank").rglob("*") if p.is_file())
    assert n_files <= m // 512 + 2


def test_crash_before_marker_is_invisible_and_resume_overwrites(tmp_path, trees, monkeypatch):
    recs = _records(trees)
    path = tmp_path / "s.zarr"
    w = TreeWriter(path, _cfg())
    w.commit(recs[:4])
    # simulate a crash: the data of the next batch lands, the marker rewrite never happens
    real_update = type(w.group.attrs).update

    def boom(self, *a, **k):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(type(w.group.attrs), "update", boom)
    with pytest.raises(KeyboardInterrupt):
        w.commit(recs[4:8])
    monkeypatch.setattr(type(w.group.attrs), "update", real_update)
    w._release()  # the process is gone: its lock with it
    store = TreeStore.open(path)
    assert sorted(store.image_ids) == sorted(r.image_id for r in recs[:4])
    for r in recs[:4]:
        assert store.get(r.image_id).tree.children.tolist() == r.tree.children.tolist()
    with TreeWriter(path, _cfg()) as w2:
        todo = w2.pending([r.image_id for r in recs])
        assert todo == [r.image_id for r in recs[4:]]
        w2.commit([r for r in recs if r.image_id in todo])
    store = TreeStore.open(path)
    assert len(store) == len(recs) and len(set(store.image_ids)) == len(recs)
    for r in recs:
        np.testing.assert_array_equal(store.get(r.image_id).tree.children, r.tree.children)


def test_no_duplicates_and_retry_failed(tmp_path, trees):
    recs = _records(trees[:3])
    path = tmp_path / "s.zarr"
    with TreeWriter(path, _cfg()) as w:
        w.commit(recs[:2] + [_failed(recs[2].image_id)])
        with pytest.raises(StoreError, match="duplicate"):
            w.commit([recs[0]])
        with pytest.raises(StoreError, match="twice"):
            w.commit([_failed("new.jpg"), _failed("new.jpg")])
        assert w.pending([r.image_id for r in recs]) == []
    with TreeWriter(path, _cfg(), retry_failed=True) as w:
        assert w.pending([r.image_id for r in recs]) == [recs[2].image_id]
        w.commit([recs[2]])
    store = TreeStore.open(path)
    assert len(store) == 3 and store.get(recs[2].image_id).status == "ok"
    assert store.summary().n_failed == 0
    import zarr

    status = zarr.open(str(path), mode="r")["records/status"][:].tolist()
    assert status == [0, 0, 2, 0]  # the failed row is marked superseded, the retry appended


def test_lock_and_config_mismatch(tmp_path, trees):
    path = tmp_path / "s.zarr"
    with TreeWriter(path, _cfg()) as w:
        w.commit(_records(trees[:1]))
        with pytest.raises(StoreLockedError):
            TreeWriter(path, _cfg())
    other = from_dict(PipelineConfig, {"store": SMALL["store"], "features": {"backbone": "test_vit_tiny"}})
    with pytest.raises(StoreError, match="features.backbone"):
        TreeWriter(path, other)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.txt").write_text("hi")
    with pytest.raises(StoreError, match="not a tree store"):
        TreeWriter(tmp_path / "plain", _cfg())
    with pytest.raises(StoreError, match="no tree store"):
        TreeStore.open(tmp_path / "missing")


def test_summary_and_dask(tmp_path, trees):
    recs = _records(trees)
    path = tmp_path / "s.zarr"
    with TreeWriter(path, _cfg()) as w:
        w.commit(recs + [_failed("a.jpg", "empty"), _failed("b.jpg", "empty"), _failed("c.jpg", "too_small")])
    store = TreeStore.open(path)
    s = store.summary()
    n_merges = sum(r.tree.n_leaves - 1 for r in recs)
    assert (s.n_images, s.n_ok, s.n_failed, s.n_merges) == (len(recs) + 3, len(recs), 3, n_merges)
    assert s.failed_by_reason == {"empty": 2, "too_small": 1}
    assert 0 < s.structure_bytes < s.total_bytes and s.bytes_per_merge > 0
    # the parts of the total add up: structure + costs + records + metadata (zarr.json files)
    from mis_pipeline.store import disk_usage

    assert s.records_bytes == disk_usage(path / "records") > 0
    meta = sum(f.stat().st_size for f in path.rglob("zarr.json")
               if not {"child_rank", "child_nbr", "cost", "records"} & set(f.relative_to(path).parts))
    assert s.metadata_bytes == meta > 0
    assert s.structure_bytes + s.cost_bytes + s.records_bytes + s.metadata_bytes == s.total_bytes
    line = next(line for line in s.lines() if line.startswith("bytes per merge"))
    parts = [float(x) for x in line.replace("=", "+").split("+")[1:] for x in [x.split()[-1]]]
    assert sum(parts) == pytest.approx(s.bytes_per_merge, abs=2e-3)
    d = store.to_dask()
    expected = np.concatenate([round_costs(r.tree.cost, 10) for r in recs])
    np.testing.assert_array_equal(d["cost"].compute(), expected)
    assert int(d["records/n_leaves"].sum().compute()) == sum(r.tree.n_leaves for r in recs)
    ok = store.ok_indices()
    assert len(ok) == len(recs) and store.column("grid_hw").shape == (len(recs) + 3, 2)


def test_store_config_must_align(tmp_path):
    from mis_pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="records_per_shard"):
        TreeWriter(tmp_path / "s.zarr", _cfg(records_per_chunk=3))
