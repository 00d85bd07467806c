"""Fixtures of the training-data tests: a small tree store built by the real pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mis_pipeline.config import DataConfig, PipelineConfig, from_dict

#: Settings of the test stores: weights-free backbone, in-process executor.
STORE_OVERRIDES = {"features": {"backbone": "colour_texture"}, "preprocess": {"executor": "local", "batch_size": 8}}


def write_scenes(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` RGB PNGs (56..96 x 64..120 px) of a few flat-coloured ellipses on a noisy background."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        h, w = int(rng.integers(56, 97)), int(rng.integers(64, 121))
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.zeros((h, w, 3), np.float64) + rng.uniform(0, 255, 3)
        for _ in range(4):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ry, rx = rng.uniform(8, h / 2), rng.uniform(8, w / 2)
            img[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 5, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"scene{i:03d}.png")
    return root


def build_store(images: Path, out: Path) -> Path:
    from mis_pipeline.pipeline import preprocess

    preprocess(images, out, from_dict(PipelineConfig, STORE_OVERRIDES))
    return out


@pytest.fixture(scope="session")
def scene_dir(tmp_path_factory) -> Path:
    return write_scenes(tmp_path_factory.mktemp("scenes"), 12)


@pytest.fixture(scope="session")
def scene_store(tmp_path_factory, scene_dir) -> Path:
    """A tree store of 12 small generated images (read-only; session-wide)."""
    return build_store(scene_dir, tmp_path_factory.mktemp("store") / "trees.zarr")


@pytest.fixture
def make_store():
    """:func:`build_store` for tests that need a store of their own images."""
    return build_store


@pytest.fixture
def small_config() -> DataConfig:
    """64 px crops, 40 samples per epoch (everything else as MIS)."""
    return from_dict(DataConfig, {"epoch_size": 40, "augment": {"crop_size": 64}})
