"""Stage classes over batch dicts, the demo's tree cut, and the CLI around them."""

from __future__ import annotations

import numpy as np

from mis_pipeline.config import PipelineConfig, from_dict
from mis_pipeline.pipeline.demo import cut_labels
from mis_pipeline.pipeline.stages import DecodeStage, batch_to_records, make_batch

CFG = from_dict(PipelineConfig, {"features": {"backbone": "colour_texture"}, "preprocess": {"executor": "local"}})


def test_decode_stage_records_failures_and_sizes(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((30, 41, 3), np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_bytes(b"hello" * 50)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "tiny.png")
    names = ["ok.png", "empty.png", "text.png", "tiny.png", "missing.png"]
    out = DecodeStage(CFG, 8)(make_batch(names, [str(tmp_path / n) for n in names]))
    assert list(out["status"]) == ["ok", "failed", "failed", "failed", "failed"]
    assert list(out["reason"]) == ["", "empty", "not_an_image", "too_small", "unreadable"]
    assert out["orig_hw"][0].tolist() == [30, 41]
    assert out["resized_hw"][0].tolist() == [32, 48] and out["grid_hw"][0].tolist() == [4, 6]
    assert out["pixels"][0].shape == (32, 48, 3)
    assert all(out["message"][1:])


def test_batch_to_records_builds_trees_only_for_ok_rows():
    batch = {
        "image_id": np.array(["a", "b"], object), "source": np.array(["/a", "/b"], object),
        "status": np.array(["ok", "failed"], object), "reason": np.array(["", "empty"], object),
        "message": np.array(["", "zero bytes"], object),
        "orig_hw": np.array([[9, 17], [0, 0]], np.int32), "resized_hw": np.array([[8, 16], [0, 0]], np.int32),
        "grid_hw": np.array([[1, 2], [0, 0]], np.int32),
        "children": np.array([np.array([[0, 1]], np.int32), np.zeros((1, 2), np.int32)], dtype=object),
        "cost": np.array([np.array([0.5], np.float32), np.zeros(1, np.float32)], dtype=object),
    }
    a, b = batch_to_records(batch, "colour_texture")
    assert a.ok and a.tree.grid_shape == (1, 2) and a.tree.children.tolist() == [[0, 1]]
    assert a.orig_hw == (9, 17) and a.backbone == "colour_texture"
    assert not b.ok and b.tree is None and b.reason == "empty" and b.grid_hw == (0, 0)


def test_cut_labels_known_tree():
    # 1x4 grid: (0,1)->4, (2,3)->5, (4,5)->6
    children = np.array([[0, 1], [2, 3], [4, 5]])
    assert cut_labels(children, 4, 4).tolist() == [0, 1, 2, 3]
    assert cut_labels(children, 4, 3).tolist() == [0, 0, 1, 2]
    assert cut_labels(children, 4, 2).tolist() == [0, 0, 1, 1]
    assert cut_labels(children, 4, 1).tolist() == [0, 0, 0, 0]


def test_inspect_cli(tmp_path, capsys):
    from mis_pipeline.cli import main
    from mis_pipeline.store import TreeRecord, TreeWriter

    with TreeWriter(tmp_path / "s.zarr", CFG) as w:
        w.commit([TreeRecord(image_id="x.png", source="/x.png", status="failed", reason="empty", message="zero bytes")])
    assert main(["inspect", str(tmp_path / "s.zarr"), "--failures"]) == 0
    out = capsys.readouterr().out
    assert "1 failed" in out and "failed: empty" in out and "x.png" in out
    assert main(["inspect", str(tmp_path / "nothing")]) == 2


def test_retry_failed_replaces_the_failed_record(tmp_path):
    from PIL import Image

    from mis_pipeline.cli import main
    from mis_pipeline.store import TreeStore

    corpus = tmp_path / "in"
    corpus.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)).save(corpus / f"{i}.png")
    (corpus / "late.png").write_bytes(b"")
    args = ["preprocess", str(corpus), "--out", str(tmp_path / "s.zarr"), "--executor", "local",
            "--no-progress", "--set", "features.backbone=colour_texture"]
    assert main(args) == 3
    Image.fromarray(rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)).save(corpus / "late.png")
    assert main(args) == 3  # without --retry-failed the recorded failure stands
    assert main([*args, "--retry-failed"]) == 0
    store = TreeStore.open(tmp_path / "s.zarr")
    assert len(store) == 4 and sorted(store.image_ids) == ["0.png", "1.png", "2.png", "late.png"]
    assert store.get("late.png").ok and store.get("late.png").tree.grid_shape == (3, 5)
