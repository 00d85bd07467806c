"""Fixtures of the command-line tests: small generated corpora, the console script, its env."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def write_corpus(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` small RGB PNGs (32..56 x 40..64 px) of smooth blobs with noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        h, w = int(rng.integers(32, 57)), int(rng.integers(40, 65))
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.zeros((h, w, 3), np.float64) + rng.uniform(0, 255, 3)
        for _ in range(3):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(5, 16)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 6, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"img{i:04d}.png")
    return root


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """6 generated images (session-wide, read-only)."""
    return write_corpus(tmp_path_factory.mktemp("cli_corpus"), 6)


@pytest.fixture(scope="session")
def folder_dataset(tmp_path_factory) -> Path:
    """3 images with one ellipse each, in the ``folder`` dataset layout (``pairs.csv``)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("folder_dataset")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    lines = ["image,mask"]
    rng = np.random.default_rng(1)
    for i in range(3):
        h, w = 48, 64
        yy, xx = np.mgrid[0:h, 0:w]
        mask = ((yy - 24) / (10 + 3 * i)) ** 2 + ((xx - 30) / 18) ** 2 < 1
        img = np.where(mask[..., None], 200, 40) + rng.normal(0, 5, (h, w, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / "images" / f"s{i}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"s{i}.png")
        lines.append(f"images/s{i}.png,masks/s{i}.png")
    (root / "pairs.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="session")
def make_corpus():
    """``make_corpus(root, n, seed=0)`` writes a generated corpus (see :func:`write_corpus`)."""
    return write_corpus


@pytest.fixture(scope="session")
def mis_script() -> str:
    """The ``mis`` console script of this environment."""
    path = Path(sys.executable).parent / "mis"
    if not path.is_file():
        pytest.fail(f"console script {path} not installed (pip install -e .)")
    return str(path)


@pytest.fixture(name="cli_env")
def _cli_env() -> dict[str, str]:
    """Environment of CLI subprocesses: repo importable, 80 columns, no Ray telemetry."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "80"
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env
