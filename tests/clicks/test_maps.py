"""Click disk maps: numpy and torch against RITM's dense distance rule, and each other."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mis_pipeline.clicks import click_maps, click_maps_torch, disk_offsets, sample_clicks
from mis_pipeline.clicks.reference import click_maps_reference


def _random_clicks(rng, b, k, hw):
    h, w = hw
    pts = np.stack([rng.integers(-3, h + 3, (b, k)), rng.integers(-3, w + 3, (b, k))], -1).astype(np.int32)
    labels = rng.integers(0, 2, (b, k)).astype(np.int8)
    valid = rng.random((b, k)) < 0.7
    return pts, labels, valid


@pytest.mark.parametrize("radius", [0, 1, 5, 9])
def test_numpy_maps_equal_dense_reference(radius):
    rng = np.random.default_rng(radius)
    hw = (37, 51)
    pts, labels, valid = _random_clicks(rng, 8, 10, hw)
    for i in range(8):
        got = click_maps(pts[i], labels[i], valid[i], hw, radius)
        assert got.dtype == np.float32 and got.shape == (2, *hw)
        assert np.array_equal(got, click_maps_reference(pts[i], labels[i], valid[i], hw, radius))


@pytest.mark.parametrize("radius", [0, 5])
def test_torch_maps_equal_numpy(radius):
    rng = np.random.default_rng(10 + radius)
    hw = (40, 33)
    pts, labels, valid = _random_clicks(rng, 6, 12, hw)
    got = click_maps_torch(torch.as_tensor(pts), torch.as_tensor(labels), torch.as_tensor(valid), hw, radius)
    assert got.dtype == torch.float32 and tuple(got.shape) == (6, 2, *hw)
    assert got.device == torch.device("cpu")
    for i in range(6):
        assert np.array_equal(got[i].numpy(), click_maps(pts[i], labels[i], valid[i], hw, radius))


def test_maps_of_sampled_clicks_at_crop_size():
    rng = np.random.default_rng(0)
    hw = (448, 448)
    yy, xx = np.mgrid[:448, :448]
    clicks = [sample_clicks((yy - 200) ** 2 + (xx - 150 - 20 * i) ** 2 < 90**2, rng) for i in range(3)]
    P = torch.as_tensor(np.stack([c.points for c in clicks]))
    L = torch.as_tensor(np.stack([c.labels for c in clicks]))
    V = torch.as_tensor(np.stack([c.valid for c in clicks]))
    maps = click_maps_torch(P, L, V, hw)
    for i, c in enumerate(clicks):
        ref = click_maps_reference(c.points, c.labels, c.valid, hw, 5)
        assert np.array_equal(maps[i].numpy(), ref)
        assert ref[0].sum() > 0  # every sample has a positive click


def test_disk_shape_radius_5():
    off = disk_offsets(5)
    assert len(off) == 81  # lattice points with dy^2 + dx^2 <= 25
    m = click_maps(np.array([[10, 10]]), np.array([1]), np.array([True]), (21, 21), 5)
    assert m[0].sum() == 81 and m[1].sum() == 0
    assert m[0, 5, 10] == 1 and m[0, 4, 10] == 0 and m[0, 13, 14] == 1 and m[0, 14, 14] == 0


def test_invalid_and_empty():
    hw = (10, 12)
    m = click_maps(np.zeros((4, 2), np.int32), np.ones(4, np.int8), np.zeros(4, bool), hw)
    assert not m.any()
    t = click_maps_torch(torch.zeros(2, 4, 2, dtype=torch.int32), torch.ones(2, 4), torch.zeros(2, 4, dtype=torch.bool), hw)
    assert not t.any()
    with pytest.raises(ValueError, match="points"):
        click_maps(np.zeros((4, 3)), np.ones(4), np.ones(4, bool), hw)
    with pytest.raises(ValueError, match="hw"):
        click_maps(np.zeros((4, 2)), np.ones(4), np.ones(4, bool), (0, 5))
    with pytest.raises(ValueError, match="radius"):
        click_maps(np.zeros((4, 2)), np.ones(4), np.ones(4, bool), hw, -1)
    with pytest.raises(ValueError, match="shape"):
        click_maps_torch(torch.zeros(2, 4, 2), torch.ones(2, 3), torch.ones(2, 4, dtype=torch.bool), hw)


def test_torch_maps_stay_on_the_inputs_device():
    # The 'meta' device runs the same tensor program without data: every intermediate must be
    # created on the inputs' device (a stray CPU tensor would raise a device mismatch).
    dev = torch.device("meta")
    got = click_maps_torch(
        torch.zeros(2, 4, 2, dtype=torch.int32, device=dev),
        torch.ones(2, 4, dtype=torch.int8, device=dev),
        torch.ones(2, 4, dtype=torch.bool, device=dev),
        (10, 12),
    )
    assert got.device == dev and tuple(got.shape) == (2, 2, 10, 12) and got.dtype == torch.float32
