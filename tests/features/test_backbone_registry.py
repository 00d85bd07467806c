"""The backbone registry and protocol."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mis_pipeline.config import BACKBONE_NAMES, FeatureConfig
from mis_pipeline.errors import ConfigError, ImageArrayError
from mis_pipeline.features import (
    Backbone,
    available_backbones,
    check_patch_images,
    get_backbone,
    register_backbone,
)


def test_registry_agrees_with_config_names() -> None:
    assert set(available_backbones()) == set(BACKBONE_NAMES)
    assert len(BACKBONE_NAMES) == len(set(BACKBONE_NAMES))


def test_unknown_name_and_unknown_override() -> None:
    with pytest.raises(ConfigError, match="features.backbone"):
        get_backbone("resnet50")
    with pytest.raises(ConfigError, match="features.batchsize"):
        get_backbone("colour_texture", batchsize=3)
    with pytest.raises(ConfigError, match="features.batch_size"):
        get_backbone("colour_texture", batch_size=0)
    with pytest.raises(TypeError):
        get_backbone(42)  # type: ignore[arg-type]


def test_config_and_overrides() -> None:
    cfg = FeatureConfig(backbone="colour_texture", patch_size=4)
    bb = get_backbone(cfg)
    assert isinstance(bb, Backbone)
    assert (bb.name, bb.patch_size, bb.dim) == ("colour_texture", 4, 17)
    assert get_backbone(cfg, patch_size=16).patch_size == 16


def test_register_rejects_a_second_builder_for_a_name() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_backbone("colour_texture")(lambda cfg: None)  # type: ignore[arg-type,return-value]


def test_check_patch_images_messages() -> None:
    ok = np.zeros((16, 24, 3), np.uint8)
    check_patch_images([ok, ok[:8]], 8, "bb")
    with pytest.raises(ImageArrayError, match="sequence"):
        check_patch_images(ok, 8, "bb")  # type: ignore[arg-type]
    with pytest.raises(ImageArrayError, match="image 1 .* uint8"):
        check_patch_images([ok, ok.astype(np.float32)], 8, "bb")
    with pytest.raises(ImageArrayError, match=r"\(H, W, 3\)"):
        check_patch_images([ok[..., 0]], 8, "bb")
    with pytest.raises(ImageArrayError, match="15x24"):
        check_patch_images([ok[:15]], 8, "bb")


def test_import_is_cheap() -> None:
    code = (
        "import sys, mis_pipeline.features, mis_pipeline.io;"
        "heavy = [m for m in ('torch', 'timm', 'cv2', 'PIL', 'fsspec') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_docstring_examples() -> None:
    import doctest

    import mis_pipeline.features.registry as registry

    assert doctest.testmod(registry).failed == 0
