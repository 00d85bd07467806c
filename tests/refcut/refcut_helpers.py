"""Helpers of the RefCut tests (a unique module name: imported as ``refcut_helpers``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mis_pipeline.config import PipelineConfig, from_dict

#: vit_test (2 blocks, 32-d) on 64 px crops, batch 4: the trainer's CPU smoke setting.
SMOKE = {
    "model": {"arch": "vit_test", "init": "random", "img_size": 64, "window": 0},
    "data": {"epoch_size": 16, "loader_workers": 0, "augment": {"crop_size": 64}},
    "train": {"mode": "refcut", "batch_size": 4, "epochs": 1, "lr": 1e-3, "device": "cpu",
              "log_every": 1, "checkpoint_every": 2},
}


def smoke_config(**sections) -> PipelineConfig:
    data = {k: dict(v) for k, v in SMOKE.items()}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return from_dict(PipelineConfig, data)


def write_parts(root: Path, n: int = 8, seed: int = 0) -> Path:
    """``n`` 72x88 images of a three-part object (left, middle, right of a box; label values
    1, 2, 3, each part its own colour) at random places, plus ``pairs.csv`` of whole-object
    masks (the ``folder`` layout) for the fine-tuning tests."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "part_labels").mkdir(exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    rows = ["image,mask"]
    for i in range(n):
        h, w = 72, 88
        img = np.zeros((h, w, 3)) + rng.uniform(0, 255, 3)
        lab = np.zeros((h, w), np.uint8)
        y0, x0 = int(rng.integers(4, 30)), int(rng.integers(4, 30))
        bh, bw = int(rng.integers(28, 40)), int(rng.integers(45, 56))
        third = bw // 3
        for p in range(3):
            xs = slice(x0 + p * third, x0 + (p + 1) * third if p < 2 else x0 + bw)
            lab[y0 : y0 + bh, xs] = p + 1
            img[y0 : y0 + bh, xs] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 4, img.shape)
        name = f"obj{i:02d}"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / "images" / f"{name}.png")
        Image.fromarray(lab).save(root / "part_labels" / f"{name}.png")
        Image.fromarray(((lab > 0) * 255).astype(np.uint8)).save(root / "masks" / f"{name}.png")
        rows.append(f"images/{name}.png,masks/{name}.png")
    (root / "pairs.csv").write_text("\n".join(rows) + "\n")
    return root


def parameters(run: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(run / "checkpoint" / "model.safetensors"))


def build_store(images: Path, out: Path) -> Path:
    """A tree store of a folder of images (colour_texture features, in-process executor)."""
    from mis_pipeline.pipeline import preprocess

    cfg = from_dict(PipelineConfig, {"features": {"backbone": "colour_texture"},
                                     "preprocess": {"executor": "local", "batch_size": 8}})
    preprocess(images, out, cfg)
    return out
