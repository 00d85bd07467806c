"""Helpers of the trainer tests (a module with a unique name, importable from every test file):
the tiny-model configuration of the CPU smoke tests, generated scenes, checkpoint tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mis_pipeline.config import PipelineConfig, from_dict

#: The smoke-test model and data: vit_test (2 blocks, 32-d) on 64 px crops, batch 4.
SMOKE = {
    "model": {"arch": "vit_test", "init": "random", "img_size": 64, "window": 0},
    "data": {"epoch_size": 48, "loader_workers": 0, "augment": {"crop_size": 64}},
    "train": {"batch_size": 4, "epochs": 5, "lr": 1e-3, "milestones": [4], "device": "cpu",
              "log_every": 1, "checkpoint_every": 5},
}


def smoke_config(**overrides: Any) -> PipelineConfig:
    """The smoke configuration with ``section={key: value}`` overrides merged in."""
    data = {k: dict(v) for k, v in SMOKE.items()}
    for section, values in overrides.items():
        if isinstance(values, dict):
            for k, v in values.items():
                if isinstance(v, dict) and isinstance(data.get(section, {}).get(k), dict):
                    data[section][k] = {**data[section][k], **v}
                else:
                    data.setdefault(section, {})[k] = v
        else:
            data[section] = values
    return from_dict(PipelineConfig, data)


def write_scenes(root: Path, n: int, seed: int = 0) -> tuple[Path, list[np.ndarray]]:
    """``n`` RGB PNGs (64..96 x 72..120 px) of flat ellipses on a noisy background; returns the
    folder and, per image, the mask of its largest ellipse (for the annotated dataset)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    masks = []
    for i in range(n):
        h, w = int(rng.integers(64, 97)), int(rng.integers(72, 121))
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.zeros((h, w, 3), np.float64) + rng.uniform(0, 255, 3)
        best = np.zeros((h, w), bool)
        for _ in range(3):
            cy, cx = rng.uniform(h / 4, 3 * h / 4), rng.uniform(w / 4, 3 * w / 4)
            ry, rx = rng.uniform(10, h / 3), rng.uniform(10, w / 3)
            m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
            img[m] = rng.uniform(0, 255, 3)
            best = best & ~m
            if m.sum() > best.sum():
                best = m
        img += rng.normal(0, 5, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"scene{i:03d}.png")
        masks.append(best)
    return root, masks


def parameters(run: Path) -> dict[str, np.ndarray]:
    """The checkpoint's tensors of a run (numpy, by name)."""
    from safetensors.numpy import load_file

    return load_file(str(run / "checkpoint" / "model.safetensors"))
