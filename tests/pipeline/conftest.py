"""Corpora for the pipeline tests: small generated images, real images, bad files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def write_generated_corpus(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` small RGB PNGs (40..72 x 48..88 px) of random smooth blobs, in two subfolders."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        h, w = int(rng.integers(40, 73)), int(rng.integers(48, 89))
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.zeros((h, w, 3), np.float64) + rng.uniform(0, 255, 3)
        for _ in range(4):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(6, 20)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 6, img.shape)
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(sub / f"img{i:04d}.png")
    return root


@pytest.fixture(scope="session")
def generated_corpus(tmp_path_factory) -> Path:
    """100 generated images (session-wide, read-only)."""
    return write_generated_corpus(tmp_path_factory.mktemp("corpus"), 100)


def cli_env() -> dict[str, str]:
    """Environment for subprocess runs of the CLI (repo on the path, no Ray telemetry)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def store_contents(path: Path) -> dict[str, tuple]:
    """``{image_id: (status, reason, grid_hw, children bytes, cost bytes)}`` of a store."""
    from mis_pipeline.store import TreeStore

    out = {}
    for r in TreeStore.open(path):
        tree = (r.tree.children.tobytes(), r.tree.cost.tobytes()) if r.tree is not None else (b"", b"")
        out[r.image_id] = (r.status, r.reason, r.grid_hw, r.orig_hw, r.resized_hw, *tree)
    return out


@pytest.fixture(name="cli_env")
def _cli_env_fixture() -> dict[str, str]:
    return cli_env()


@pytest.fixture(name="store_contents")
def _store_contents_fixture():
    return store_contents


def corpus_listing(corpus: Path, n: int) -> Path:
    """A list file of the first ``n`` images of ``corpus`` (ids stay relative to the corpus)."""
    files = sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*.png"))[:n]
    listing = corpus / f"list_{n}.txt"
    if not listing.exists():
        listing.write_text("\n".join(files) + "\n")
    return listing


@pytest.fixture(name="corpus_listing")
def _corpus_listing_fixture():
    return corpus_listing
