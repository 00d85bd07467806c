"""Fixtures of the evaluation tests: a tiny synthetic benchmark in the generic folder layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from eval_scenes import synthetic_scene
from PIL import Image


@pytest.fixture(scope="session")
def synthetic_folder(tmp_path_factory) -> Path:
    """``pairs.csv`` + 4 images with one ellipse each (the ``folder`` dataset layout)."""
    root = tmp_path_factory.mktemp("synthetic_folder")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    lines = ["image,mask"]
    for i in range(4):
        img, mask = synthetic_scene(i)
        Image.fromarray(img).save(root / "images" / f"s{i}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / "masks" / f"s{i}.png")
        lines.append(f"images/s{i}.png,masks/s{i}.png")
    (root / "pairs.csv").write_text("\n".join(lines) + "\n")
    return root
