"""The timm ViT path: tokens equal timm's forward_intermediates, batching, seeding, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch  # a runtime dependency: missing is an error, not a skip

from mis_pipeline.errors import ConfigError, ImageArrayError, WeightsError  # noqa: E402
from mis_pipeline.features import get_backbone  # noqa: E402
from mis_pipeline.features.vit import _size_batches, resolve_device  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    return get_backbone("test_vit_tiny", weights="none", device="cpu", batch_size=2)


@pytest.fixture(scope="module")
def vits8():
    # The real DINO ViT-S/8 architecture with random weights (no download).
    return get_backbone("dino_vits8", weights="none", device="cpu")


def _images(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


def _timm_grid(bb, image: np.ndarray) -> np.ndarray:
    """timm's documented forward_intermediates on the normalised image, reshaped to (gh, gw, C)."""
    from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD  # DINO's normalisation

    mean, std = torch.tensor(IMAGENET_DEFAULT_MEAN), torch.tensor(IMAGENET_DEFAULT_STD)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    x = (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    with torch.no_grad():
        (feat,) = bb.model.forward_intermediates(
            x, indices=1, norm=True, output_fmt="NCHW", intermediates_only=True
        )
    return feat[0].permute(1, 2, 0).numpy()


def test_tiny_grid_equals_timm_forward_intermediates(tiny) -> None:
    (img,) = _images([(48, 80)])
    (out,) = tiny.extract([img])
    assert out.shape == (6, 10, 32) and out.dtype == np.float32
    np.testing.assert_array_equal(out, _timm_grid(tiny, img))


def test_tiny_grid_equals_forward_features_without_prefix(tiny) -> None:
    (img,) = _images([(64, 64)], seed=1)
    x = tiny.to_tensor(img[None])
    with torch.no_grad():
        feats = tiny.model.forward_features(x)  # (1, 1 + 64, C), final norm applied
    expected = feats[0, tiny.model.num_prefix_tokens :].reshape(8, 8, -1).numpy()
    np.testing.assert_array_equal(tiny.extract([img])[0], expected)


def test_vits8_real_architecture_on_tiny_image(vits8) -> None:
    assert (vits8.patch_size, vits8.dim) == (8, 384)
    (img,) = _images([(32, 48)], seed=2)
    (out,) = vits8.extract([img])
    assert out.shape == (4, 6, 384)
    np.testing.assert_array_equal(out, _timm_grid(vits8, img))


def test_batching_by_size_keeps_order_and_values(tiny) -> None:
    shapes = [(64, 64), (48, 80), (64, 64), (64, 64), (16, 8), (48, 80)]
    imgs = _images(shapes, seed=3)
    outs = tiny.extract(imgs)
    assert [o.shape[:2] for o in outs] == [(h // 8, w // 8) for h, w in shapes]
    for img, out in zip(imgs, outs, strict=True):
        # One image per forward is the reference; batched matmuls may differ in the last bits.
        np.testing.assert_allclose(out, tiny.extract([img])[0], rtol=0, atol=1e-5)
    assert tiny.extract([]) == []


def test_size_batches() -> None:
    sizes = [(2, 2), (3, 3), (2, 2), (2, 2), (3, 3), (2, 2), (1, 1)]
    assert _size_batches(sizes, 2) == [[0, 2], [3, 5], [1, 4], [6]]
    assert _size_batches(sizes, 10) == [[0, 2, 3, 5], [1, 4], [6]]


def test_random_init_is_seeded_and_leaves_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a = get_backbone("test_vit_tiny", weights="none", device="cpu", init_seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = get_backbone("test_vit_tiny", weights="none", device="cpu", init_seed=5)
    c = get_backbone("test_vit_tiny", weights="none", device="cpu", init_seed=6)
    imgs = _images([(32, 32)])
    np.testing.assert_array_equal(a.extract(imgs)[0], b.extract(imgs)[0])
    assert not np.allclose(a.extract(imgs)[0], c.extract(imgs)[0])


def test_features_for_image_applies_the_resize_rule(tiny) -> None:
    (img,) = _images([(30, 45)], seed=4)
    assert tiny.features_for_image(img).shape == (4, 6, 32)


def test_bad_inputs(tiny) -> None:
    with pytest.raises(ImageArrayError, match="multiples of the patch size 8"):
        tiny.extract([np.zeros((30, 48, 3), np.uint8)])
    with pytest.raises(ImageArrayError):
        tiny.extract([np.zeros((32, 48, 3), np.float32)])


def test_devices() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if (
        expected == "cpu"
        and getattr(torch.backends, "mps", None)
        and torch.backends.mps.is_available()
    ):
        expected = "mps"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ConfigError, match="features.device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_hub_weights_for_the_test_model_are_refused_without_network() -> None:
    with pytest.raises(WeightsError, match="no pretrained weights"):
        get_backbone("test_vit_tiny", weights="hub", device="cpu")


def test_vit_patch_size_is_fixed() -> None:
    with pytest.raises(ConfigError, match="features.patch_size"):
        get_backbone("test_vit_tiny", weights="none", device="cpu", patch_size=16)
    assert get_backbone("test_vit_tiny", weights="none", device="cpu", patch_size=8).patch_size == 8
