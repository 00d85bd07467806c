"""Bad files of every kind mixed into real images: the run completes with failures recorded."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from mis_pipeline.cli import main
from mis_pipeline.pipeline import EXIT_WITH_FAILURES
from mis_pipeline.store import TreeStore


def _png_bomb(path: Path, width: int = 30000, height: int = 30000) -> None:
    """A valid PNG header declaring width x height pixels (9e8 > the default cap)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * (3 * 16)
    idat = zlib.compress(row * 16)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


BAD_KINDS = ("empty", "truncated", "not_an_image", "too_many_pixels", "too_small")


@pytest.mark.slow
@pytest.mark.data
def test_bad_files_are_recorded_and_run_completes(tmp_path, shared_data):
    from PIL import Image

    horses = sorted((shared_data / "WeizmannHorse" / "images").glob("*.png"))[:190]
    corpus = tmp_path / "corpus"
    (corpus / "good").mkdir(parents=True)
    for p in horses:
        shutil.copyfile(p, corpus / "good" / p.name)
    bad = corpus / "bad"
    bad.mkdir()
    expected = {}
    for j in range(2):  # 2 of each of the 5 kinds: 10 bad files, 5 % of 200
        (bad / f"empty{j}.png").write_bytes(b"")
        data = horses[j].read_bytes()
        (bad / f"truncated{j}.png").write_bytes(data[: len(data) // 3])
        (bad / f"text{j}.jpg").write_bytes(b"this is not an image at all\n" * 20)
        _png_bomb(bad / f"bomb{j}.png")
        Image.fromarray(np.full((5, 7, 3), 128, np.uint8)).save(bad / f"tiny{j}.png")
        expected.update({f"bad/empty{j}.png": "empty", f"bad/truncated{j}.png": "truncated",
                         f"bad/text{j}.jpg": "not_an_image", f"bad/bomb{j}.png": "too_many_pixels",
                         f"bad/tiny{j}.png": "too_small"})
    out = tmp_path / "store.zarr"
    code = main(["preprocess", str(corpus), "--out", str(out), "--executor", "local", "--no-progress",
                 "--set", "features.backbone=colour_texture"])
    assert code == EXIT_WITH_FAILURES == 3
    store = TreeStore.open(out)
    assert len(store) == 200
    for p in horses:
        rec = store.get(f"good/{p.name}")
        assert rec.ok and rec.tree is not None and rec.tree.n_leaves == rec.grid_hw[0] * rec.grid_hw[1]
    for image_id, reason in expected.items():
        rec = store.get(image_id)
        assert rec.status == "failed" and rec.reason == reason, (image_id, rec.reason, rec.message)
        assert rec.message
    assert store.summary().failed_by_reason == {k: 2 for k in BAD_KINDS}
    # a rerun has nothing to do and still reports the recorded failures
    assert main(["preprocess", str(corpus), "--out", str(out), "--executor", "local", "--no-progress",
                 "--set", "features.backbone=colour_texture"]) == 3
    assert len(TreeStore.open(out)) == 200
