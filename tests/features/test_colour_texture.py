"""The weights-free colour_texture backbone: known answers, a plain reference, real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mis_pipeline.errors import ConfigError, ImageArrayError
from mis_pipeline.features import get_backbone
from mis_pipeline.features.colour_texture import N_ORIENTATION_BINS, colour_texture_features

QUADRANT_COLOURS = [(200, 30, 30), (30, 180, 40), (40, 40, 210), (220, 220, 60)]


def _quadrants(side_patches: int = 6, patch: int = 8) -> np.ndarray:
    half = side_patches * patch
    img = np.zeros((2 * half, 2 * half, 3), np.uint8)
    img[:half, :half] = QUADRANT_COLOURS[0]
    img[:half, half:] = QUADRANT_COLOURS[1]
    img[half:, :half] = QUADRANT_COLOURS[2]
    img[half:, half:] = QUADRANT_COLOURS[3]
    return img


def _quadrant_of(r: int, c: int, half: int) -> int:
    return 2 * (r >= half) + (c >= half)


def test_four_flat_quadrants() -> None:
    half = 6
    feats = get_backbone("colour_texture").extract([_quadrants(half)])[0]
    assert feats.shape == (12, 12, 17) and feats.dtype == np.float32
    # Patches whose 3x3-patch neighbourhood lies inside one quadrant: bit-identical.
    # (Patches next to a quadrant edge see the edge in their gradient and context channels.)
    interior: dict[int, list[np.ndarray]] = {q: [] for q in range(4)}
    for r in range(12):
        for c in range(12):
            q = _quadrant_of(r, c, half)
            neighbourhood = {
                _quadrant_of(rr, cc, half)
                for rr in (r - 1, r, r + 1)
                for cc in (c - 1, c, c + 1)
                if 0 <= rr < 12 and 0 <= cc < 12
            }
            if neighbourhood == {q}:
                interior[q].append(feats[r, c])
    for vecs in interior.values():
        assert len(vecs) == 25  # 5x5 interior patches of a 6x6-patch quadrant
        for v in vecs[1:]:
            np.testing.assert_array_equal(v, vecs[0])
        # Flat colour: no texture at all.
        np.testing.assert_array_equal(vecs[0][3:14], 0)
    # Colour mean and std only look inside the patch: identical over the whole quadrant.
    for q in range(4):
        rs = slice(0, 6) if q < 2 else slice(6, 12)
        cs = slice(0, 6) if q % 2 == 0 else slice(6, 12)
        block = feats[rs, cs, :6].reshape(-1, 6)
        assert (block == block[0]).all()
    # Different quadrants differ clearly (delta-E of tens -> several units).
    reps = [interior[q][0] for q in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.linalg.norm(reps[i] - reps[j]) > 3.0


def test_ward_on_quadrants_recovers_them() -> None:
    from sklearn.cluster import ward_tree
    from sklearn.feature_extraction.image import grid_to_graph

    feats = get_backbone("colour_texture").extract([_quadrants(6)])[0]
    gh, gw, dim = feats.shape
    children = ward_tree(feats.reshape(-1, dim), connectivity=grid_to_graph(gh, gw))[0]
    n = gh * gw
    # Cut below the last three merges: the four remaining clusters are the quadrants.
    members: dict[int, set[int]] = {i: {i} for i in range(n)}
    for k, (a, b) in enumerate(children[:-3]):
        members[n + k] = members.pop(a) | members.pop(b)
    clusters = sorted(sorted(m) for m in members.values())
    expected = sorted(
        sorted(r * gw + c for r in range(gh) for c in range(gw) if _quadrant_of(r, c, 6) == q)
        for q in range(4)
    )
    assert clusters == expected


def test_texture_channels_see_texture_and_orientation() -> None:
    flat = np.full((32, 32, 3), 128, np.uint8)
    vertical = flat.copy()
    stripes = (np.arange(32) // 2) % 2 == 1  # 2-px stripes (Sobel cannot see 1-px ones)
    vertical[:, stripes] = 60
    vertical[:, ~stripes] = 196
    horizontal = np.ascontiguousarray(vertical.transpose(1, 0, 2))
    f_flat, f_v, f_h = get_backbone("colour_texture").extract([flat, vertical, horizontal])
    centre = (1, 1)
    assert np.all(f_flat[centre][3:14] == 0)
    assert f_v[centre][3] > 1.0 and f_h[centre][3] > 1.0  # L* std of the stripes
    hist_v, hist_h = f_v[centre][6:14], f_h[centre][6:14]
    assert hist_v.sum() > 1.0 and hist_h.sum() > 1.0
    # Vertical stripes: horizontal gradient (angle 0, bin 0); horizontal stripes: angle pi/2.
    assert int(np.argmax(hist_v)) == 0
    assert int(np.argmax(hist_h)) == N_ORIENTATION_BINS // 2


def _reference(image: np.ndarray, patch: int) -> np.ndarray:
    """Plain per-patch loops in float64 (Lab from the same OpenCV conversion)."""
    import cv2

    lab = cv2.cvtColor(image.astype(np.float32) / np.float32(255.0), cv2.COLOR_RGB2Lab).astype(
        np.float64
    )
    h, w = lab.shape[:2]
    gh, gw = h // patch, w // patch
    lum = np.pad(lab[..., 0], 1, mode="symmetric")
    gx = np.zeros((h, w))
    gy = np.zeros((h, w))
    kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
    for dr in range(3):
        for dc in range(3):
            gx += kx[dr, dc] * lum[dr : dr + h, dc : dc + w]
            gy += kx.T[dr, dc] * lum[dr : dr + h, dc : dc + w]
    out = np.zeros((gh, gw, 17))
    nb = N_ORIENTATION_BINS
    for r in range(gh):
        for c in range(gw):
            blk = lab[r * patch : (r + 1) * patch, c * patch : (c + 1) * patch].reshape(-1, 3)
            out[r, c, 0:3] = blk.mean(0)
            out[r, c, 3:6] = blk.std(0)
            sl = (slice(r * patch, (r + 1) * patch), slice(c * patch, (c + 1) * patch))
            for x, y in zip(gx[sl].ravel(), gy[sl].ravel(), strict=True):
                theta = np.arctan2(y, x) % np.pi
                out[r, c, 6 + min(int(theta / np.pi * nb), nb - 1)] += np.hypot(x, y)
            out[r, c, 6:14] /= patch * patch
    means = out[..., 0:3]
    for r in range(gh):
        for c in range(gw):
            acc = np.zeros(3)
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    # One step past the border reflects back onto the cell itself.
                    rr = r + dr if 0 <= r + dr < gh else r
                    cc = c + dc if 0 <= c + dc < gw else c
                    acc += means[rr, cc]
            out[r, c, 14:17] = acc / 9
    return out / 10.0


@pytest.mark.parametrize("patch", [8, 5])
def test_matches_plain_reference(patch: int) -> None:
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (4 * patch, 5 * patch, 3), dtype=np.uint8)
    img[:, : 2 * patch] //= 3  # some structure
    fast = colour_texture_features(img, patch)
    ref = _reference(img, patch)
    np.testing.assert_allclose(fast[..., :6], ref[..., :6], atol=2e-4)
    np.testing.assert_allclose(fast[..., 14:], ref[..., 14:], atol=2e-4)
    # Orientation bins: float32 vs float64 angles may move a rare pixel across a bin edge.
    np.testing.assert_allclose(fast[..., 6:14].sum(-1), ref[..., 6:14].sum(-1), rtol=1e-4)
    moved = np.abs(fast[..., 6:14] - ref[..., 6:14]).sum() / ref[..., 6:14].sum()
    assert moved < 0.01


def test_patch_size_from_config_and_validation() -> None:
    bb = get_backbone("colour_texture", patch_size=16)
    assert bb.patch_size == 16 and bb.dim == 17
    assert bb.extract([np.zeros((32, 48, 3), np.uint8)])[0].shape == (2, 3, 17)
    with pytest.raises(ConfigError, match="features.patch_size"):
        get_backbone("colour_texture", patch_size=1)
    with pytest.raises(ImageArrayError, match="multiples of the patch size 16"):
        bb.extract([np.zeros((30, 48, 3), np.uint8)])


def test_features_for_image_resizes_first() -> None:
    bb = get_backbone("colour_texture")
    img = np.random.default_rng(0).integers(0, 256, (321, 481, 3), dtype=np.uint8)
    assert bb.features_for_image(img).shape == (41, 61, 17)
    assert bb.features_for_image(img, max_side=160).shape == (14, 20, 17)


@pytest.mark.data
def test_grabcut_images(grabcut_dir: Path) -> None:
    from mis_pipeline.io import list_images, prepare_image

    bb = get_backbone("colour_texture")
    refs = list_images(grabcut_dir / "data_GT")
    assert len(refs) == 50
    images = [prepare_image(r.path, bb.patch_size).pixels for r in refs[:10]]
    for img, f in zip(images, bb.extract(images), strict=True):
        assert f.shape == (img.shape[0] // 8, img.shape[1] // 8, 17)
        assert np.isfinite(f).all()
        # Natural images have texture: the std and gradient channels are not all zero.
        assert f[..., 3:14].mean() > 0.05


@pytest.mark.data
def test_features_do_not_depend_on_the_buffer_address(shared_data: Path) -> None:
    """Bit-equal features wherever the image sits in memory (so trees are the same in every
    process, batch and executor). cv2.magnitude failed this: its SIMD body and scalar tail
    round differently, and about a quarter of real images changed with the address."""
    from mis_pipeline.io import list_images, prepare_image

    paths = [r.path for r in list_images(shared_data / "WeizmannHorse" / "images")][:40]
    paths += [r.path for r in list_images(shared_data / "GrabCut" / "data_GT")][:40]
    for path in paths:
        px = prepare_image(path, 8).pixels
        expected = colour_texture_features(px, 8)
        for offset in (1, 4, 13, 32, 61):
            moved = np.empty(px.nbytes + 64, np.uint8)[offset : offset + px.nbytes].reshape(px.shape)
            moved[...] = px
            assert np.array_equal(colour_texture_features(moved, 8), expected), (path, offset)
