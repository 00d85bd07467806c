"""Official DINO position-embedding resize vs timm's: plain reference, equality, tree change."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is a runtime dependency of the ViT backbones")

from mis_pipeline.features import get_backbone  # noqa: E402
from mis_pipeline.features.pos_embed import forward_official, official_pos_embed  # noqa: E402
from mis_pipeline.features.pos_embed_compare import (  # noqa: E402
    compare_pos_embed,
    tree_agreement,
)


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


# ----------------------------------------------------------------------------- tree change
def _chain_tree(order: list[int]) -> np.ndarray:
    """Merge leaves one by one in ``order``: a caterpillar tree."""
    n = len(order)
    children = [(order[0], order[1])]
    for k, leaf in enumerate(order[2:]):
        children.append((n + k, leaf))
    return np.array(children)


def test_tree_agreement_known_answers() -> None:
    t = np.array([[0, 1], [2, 3], [4, 5]])  # ((0,1),(2,3)) on 4 leaves
    assert tree_agreement(t, t, 4) == {"same_clusters": 1.0, "mean_best_iou": 1.0}
    # Same clusters listed in another merge order and with swapped children: same hierarchy.
    t2 = np.array([[3, 2], [1, 0], [5, 4]])
    assert tree_agreement(t, t2, 4)["same_clusters"] == 1.0
    # ((0,1),(2,3)) vs (((0,1),2),3): clusters {0,1} and the root shared, {2,3} vs {0,1,2}.
    chain = _chain_tree([0, 1, 2, 3])
    agree = tree_agreement(t, chain, 4, min_area=0.3)
    assert agree["same_clusters"] == pytest.approx(2 / 3)
    # Non-root nodes over 30 % (size >= 2): t has {0,1} {2,3}; chain has {0,1} {0,1,2}.
    # Best IoU against the other tree's non-root nodes (leaves included at this tiny size):
    # {0,1} -> 1; {2,3} -> 1/2 (leaf 2); {0,1} -> 1; {0,1,2} -> 2/3 ({0,1}).
    assert agree["mean_best_iou"] == pytest.approx((1 + 1 / 2 + 1 + 2 / 3) / 4)


def test_compare_pos_embed_on_tiny_vit() -> None:
    rng = np.random.default_rng(4)
    images = [
        rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
        rng.integers(0, 256, (48, 96, 3), dtype=np.uint8),
    ]
    result = compare_pos_embed("test_vit_tiny", images, weights="none", device="cpu")
    assert result.grid_shapes == [(8, 8), (6, 12)]
    # Training grid: identical tokens, identical trees.
    assert result.rel_token_diff[0] == 0.0
    assert result.same_clusters[0] == 1.0 and result.mean_best_iou[0] == 1.0
    # Other grid: tokens differ a little; trees agree partly.
    assert 0 < result.rel_token_diff[1] < 0.2
    assert 0 < result.same_clusters[1] <= 1 and 0 < result.mean_best_iou[1] <= 1
