"""Local checkpoints: official DINO layout, DINO training checkpoint, timm .bin, safetensors."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch  # a runtime dependency: missing is an error, not a skip

from mis_pipeline.errors import WeightsError  # noqa: E402
from mis_pipeline.features import get_backbone  # noqa: E402
from mis_pipeline.features.weights import convert_state_dict, read_checkpoint  # noqa: E402


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def source():
    """The in-memory model whose weights the tests write out (seed differs from the default)."""
    return get_backbone("test_vit_tiny", weights="none", device="cpu", init_seed=123)


def _official_layout(state: dict) -> dict:
    """What DINO's released backbone files hold: timm's names, plain tensors, no head."""
    sd = {k: v.clone() for k, v in state.items()}
    assert {"cls_token", "pos_embed", "patch_embed.proj.weight", "norm.weight"} <= set(sd)
    assert any(k.startswith("blocks.1.") for k in sd)
    return sd


def _assert_same_tokens(a, b) -> None:
    imgs = [_image(64, 64), _image(40, 72, seed=1)]
    for x, y in zip(a.extract(imgs), b.extract(imgs), strict=True):
        np.testing.assert_array_equal(x, y)


def test_official_dino_release_file(source, tmp_path: Path) -> None:
    path = tmp_path / "dino_deitsmall8_pretrain.pth"
    torch.save(_official_layout(source.model.state_dict()), path)
    loaded = get_backbone("test_vit_tiny", weights=str(path), device="cpu")
    _assert_same_tokens(source, loaded)
    # The loaded weights matter: the default random init gives different tokens.
    other = get_backbone("test_vit_tiny", weights="none", device="cpu")
    assert not np.allclose(other.extract([_image(64, 64)])[0], loaded.extract([_image(64, 64)])[0])


def test_dino_training_checkpoint(source, tmp_path: Path) -> None:
    backbone = _official_layout(source.model.state_dict())
    teacher = {f"module.backbone.{k}": v for k, v in backbone.items()}
    teacher["module.head.mlp.0.weight"] = torch.zeros(16, 32)  # DINO projection head: dropped
    teacher["module.head.last_layer.weight_g"] = torch.ones(1, 1)
    student = {k: torch.zeros_like(v) for k, v in teacher.items()}
    ckpt = {
        "student": student,
        "teacher": teacher,
        "epoch": 100,
        "args": argparse.Namespace(arch="vit_small", patch_size=8),
    }
    path = tmp_path / "checkpoint.pth"
    torch.save(ckpt, path)
    _assert_same_tokens(source, get_backbone("test_vit_tiny", weights=str(path), device="cpu"))


def test_safetensors_and_timm_bin(source, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    st = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in source.model.state_dict().items()}, str(st))
    _assert_same_tokens(source, get_backbone("test_vit_tiny", weights=str(st), device="cpu"))
    bin_path = tmp_path / "pytorch_model.bin"
    torch.save({"state_dict": source.model.state_dict()}, bin_path)
    _assert_same_tokens(source, get_backbone("test_vit_tiny", weights=str(bin_path), device="cpu"))


@pytest.mark.slow
def test_vits8_official_layout_roundtrip(tmp_path: Path) -> None:
    src = get_backbone("dino_vits8", weights="none", device="cpu", init_seed=9)
    path = tmp_path / "vits8.pth"
    torch.save(_official_layout(src.model.state_dict()), path)
    loaded = get_backbone("dino_vits8", weights=str(path), device="cpu")
    img = [_image(24, 32)]
    np.testing.assert_array_equal(src.extract(img)[0], loaded.extract(img)[0])


def test_missing_and_mismatched_weights(source, tmp_path: Path) -> None:
    sd = _official_layout(source.model.state_dict())
    with pytest.raises(WeightsError, match="does not exist"):
        get_backbone("test_vit_tiny", weights=str(tmp_path / "nope.pth"), device="cpu")

    partial = {k: v for k, v in sd.items() if not k.startswith("blocks.1.")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match=r"missing: blocks\.1\."):
        get_backbone("test_vit_tiny", weights=str(tmp_path / "partial.pth"), device="cpu")

    extra = dict(sd, **{"blocks.2.norm1.weight": torch.ones(32)})
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(WeightsError, match=r"unexpected: blocks\.2\.norm1\.weight"):
        get_backbone("test_vit_tiny", weights=str(tmp_path / "extra.pth"), device="cpu")

    # A checkpoint for patch 16 is never silently resampled into a patch-8 model.
    wrong = dict(sd)
    wrong["patch_embed.proj.weight"] = torch.zeros(32, 3, 16, 16)
    torch.save(wrong, tmp_path / "p16.pth")
    with pytest.raises(WeightsError, match=r"wrong shape: patch_embed\.proj\.weight"):
        get_backbone("test_vit_tiny", weights=str(tmp_path / "p16.pth"), device="cpu")


class _Payload:
    """A class the safe loader must refuse to reconstruct."""


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "payload": _Payload()}, path)
    with pytest.raises(WeightsError, match="pickled Python objects"):
        read_checkpoint(path)


def test_unreadable_and_non_dict_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="cannot read"):
        read_checkpoint(junk)
    lst = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], lst)
    with pytest.raises(WeightsError, match="expected a dict of tensors"):
        read_checkpoint(lst)
    nested = tmp_path / "nested.pth"
    torch.save({"epoch": 3, "weights": {"a": torch.zeros(1)}}, nested)
    with pytest.raises(WeightsError, match="no state dict found"):
        read_checkpoint(nested)
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"\x00" * 16)
    with pytest.raises(WeightsError):
        read_checkpoint(bad_st)


def test_dinov2_names_are_mapped() -> None:
    z = torch.zeros(1)
    official = {
        "cls_token": z,
        "register_tokens": z,
        "mask_token": z,
        "pos_embed": z,
        "blocks.0.3.norm1.weight": z,  # chunked blocks (BlockChunk): chunk 0, block 3
        "blocks.1.4.ls1.gamma": z,
        "norm.weight": z,
    }
    model_keys = {
        "cls_token",
        "reg_token",
        "pos_embed",
        "blocks.3.norm1.weight",
        "blocks.4.ls1.gamma",
        "norm.weight",
    }
    assert set(convert_state_dict(official, model_keys)) == model_keys
