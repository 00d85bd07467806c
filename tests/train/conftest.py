"""Fixtures of the trainer tests: a 12-image tree store built by the real pipeline and an
annotated folder dataset of the same images (helpers in ``train_helpers``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from train_helpers import write_scenes

from mis_pipeline.config import PipelineConfig, from_dict


@pytest.fixture(scope="session")
def scenes(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    return write_scenes(tmp_path_factory.mktemp("scenes") / "images", 12)


@pytest.fixture(scope="session")
def tree_store(tmp_path_factory, scenes) -> Path:
    """A tree store of the 12 scenes (colour_texture features, local executor; read-only)."""
    from mis_pipeline.pipeline import preprocess

    out = tmp_path_factory.mktemp("store") / "trees.zarr"
    cfg = from_dict(PipelineConfig, {"features": {"backbone": "colour_texture"},
                                     "preprocess": {"executor": "local", "batch_size": 12}})
    preprocess(scenes[0], out, cfg)
    return out


@pytest.fixture(scope="session")
def folder_data(scenes) -> Path:
    """The scenes as a ``folder`` dataset (pairs.csv; one annotated ellipse per image)."""
    from PIL import Image

    images, masks = scenes
    root = images.parent / "annotated"
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rows = ["image,mask"]
    for i, m in enumerate(masks):
        Image.fromarray((m * 255).astype(np.uint8)).save(root / "masks" / f"scene{i:03d}.png")
        rows.append(f"{(images / f'scene{i:03d}.png').as_posix()},masks/scene{i:03d}.png")
    (root / "pairs.csv").write_text("\n".join(rows) + "\n")
    return root
