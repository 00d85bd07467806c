"""Fixtures of the annotation tests: a folder of small synthetic images (plus bad files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def scene(seed: int, h: int = 72, w: int = 96) -> np.ndarray:
    """An ``(h, w, 3) uint8`` image: noisy background with a bright ellipse and a dark box."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), dtype=np.float64)
    img[:] = (70 + 10 * seed, 110, 90)
    ell = ((yy - h * 0.45) / (h * 0.28)) ** 2 + ((xx - w * 0.4) / (w * 0.22)) ** 2 < 1
    img[ell] = (220, 80 + 20 * seed, 40)
    img[h // 8 : h // 3, int(w * 0.7) : int(w * 0.9)] = (20, 20, 160)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """``images/``: a0.png, a1.png, a2.png (good), b_bad.jpg (truncated JPEG), c_text.png (not an image),
    and ``secret.txt`` beside the folder (what traversal attempts would like to read)."""
    d = tmp_path / "images"
    d.mkdir()
    for i in range(3):
        Image.fromarray(scene(i)).save(d / f"a{i}.png")
    good = d / "tmp.jpg"
    Image.fromarray(scene(5)).save(good, quality=90)
    data = good.read_bytes()
    good.unlink()
    (d / "b_bad.jpg").write_bytes(data[: len(data) // 3])  # a valid header, truncated pixel data
    (d / "c_text.png").write_text("this is not a PNG")
    (tmp_path / "secret.txt").write_text("TOP-SECRET-CONTENT")
    return d
