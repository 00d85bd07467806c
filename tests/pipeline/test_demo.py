"""`mis demo` runs offline on the photos bundled with scikit-image and writes store + PNG."""

from __future__ import annotations

import pytest

from mis_pipeline.cli import main
from mis_pipeline.store import TreeStore


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--images", "3"]) == 0
    text = capsys.readouterr().out
    store = TreeStore.open(out / "trees.zarr")
    assert len(store) == 3 and all(r.ok for r in store)
    assert store.config["features"]["backbone"] == "colour_texture"
    png = out / "hierarchy.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert str(png) in text and str(out / "trees.zarr") in text
    assert (tmp_path / "demo" / "trees.zarr.resolved_config.yaml").is_file()
