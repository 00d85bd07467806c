"""Official DINO position-embedding resize vs timm's: plain reference and token equality.

How much the trees change is measured in tests/analysis/test_pos_embed_trees.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch  # a runtime dependency: missing is an error, not a skip

from mis_pipeline.features import get_backbone  # noqa: E402
from mis_pipeline.features.pos_embed import forward_official, official_pos_embed  # noqa: E402


# ----------------------------------------------------------------------------- plain reference
def _cubic_weights(t: float, a: float = -0.75) -> list[float]:
    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _resample_matrix(n_in: int, n_out: int, scale_factor: float) -> np.ndarray:
    """Bicubic (a = -0.75, clamped borders), source x = (i + 0.5) / scale_factor - 0.5."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = (i + 0.5) / scale_factor - 0.5
        base = int(np.floor(src))
        for k, w in enumerate(_cubic_weights(src - base)):
            m[i, min(max(base - 1 + k, 0), n_in - 1)] += w
    return m


def _official_reference(pos: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The DINO code's resize written out: (1, 1 + N*N, C) -> (1, 1 + gh*gw, C), float64."""
    n = int(np.sqrt(pos.shape[1] - 1))
    table = pos[0, 1:].reshape(n, n, -1)
    my = _resample_matrix(n, grid[0], (grid[0] + 0.1) / n)
    mx = _resample_matrix(n, grid[1], (grid[1] + 0.1) / n)
    out = np.einsum("ir,rcd,jc->ijd", my, table, mx)
    return np.concatenate([pos[0, :1], out.reshape(-1, pos.shape[2])])[None]


@pytest.mark.parametrize("grid", [(6, 10), (5, 5), (12, 3), (40, 60)])
def test_official_resize_matches_plain_reference(grid) -> None:
    rng = np.random.default_rng(0)
    pos = rng.standard_normal((1, 1 + 8 * 8, 5)).astype(np.float32)
    got = official_pos_embed(torch.from_numpy(pos), grid, num_prefix_tokens=1).numpy()
    assert got.shape == (1, 1 + grid[0] * grid[1], 5)
    np.testing.assert_allclose(got, _official_reference(pos.astype(np.float64), grid), atol=1e-5)


def test_official_resize_identity_only_at_square_training_grid() -> None:
    pos = torch.randn(1, 1 + 64, 4)
    assert official_pos_embed(pos, (8, 8), 1) is pos
    # Same number of patches but not the training grid: resized (as the DINO code does).
    assert not torch.equal(official_pos_embed(pos, (4, 16), 1)[:, 1:], pos[:, 1:])


# ----------------------------------------------------------------------------- ViT forward
@pytest.fixture(scope="module")
def tiny_pair():
    timm_bb = get_backbone("test_vit_tiny", weights="none", device="cpu", pos_embed="timm")
    official_bb = get_backbone("test_vit_tiny", weights="none", device="cpu", pos_embed="official")
    return timm_bb, official_bb


def test_training_grid_gives_identical_tokens(tiny_pair) -> None:
    timm_bb, official_bb = tiny_pair
    img = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)  # 8x8 grid
    np.testing.assert_array_equal(timm_bb.extract([img])[0], official_bb.extract([img])[0])


def test_other_grids_differ_slightly(tiny_pair) -> None:
    timm_bb, official_bb = tiny_pair
    rng = np.random.default_rng(2)
    for shape in [(48, 80), (32, 32), (96, 120)]:
        img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        a, b = timm_bb.extract([img])[0], official_bb.extract([img])[0]
        rel = np.linalg.norm(a - b) / np.linalg.norm(a)
        assert 0 < rel < 0.2, (shape, rel)


@pytest.mark.slow
def test_vits8_official_equals_timm_at_224() -> None:
    bb = get_backbone("dino_vits8", weights="none", device="cpu")
    img = np.random.default_rng(3).integers(0, 256, (1, 224, 224, 3), dtype=np.uint8)
    x = bb.to_tensor(img)
    with torch.inference_mode():
        (timm_tokens,) = bb.model.forward_intermediates(
            x, indices=1, norm=True, output_fmt="NLC", intermediates_only=True
        )
        official = forward_official(bb.model, x)
    np.testing.assert_array_equal(official.reshape(1, 28 * 28, -1).numpy(), timm_tokens.numpy())
