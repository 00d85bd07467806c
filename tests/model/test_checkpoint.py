"""Checkpoints: safetensors + JSON, loadable alone, bit-identical predictions after reload."""

from __future__ import annotations

import json

import pytest
import torch

from mis_pipeline.config import ModelConfig, from_dict
from mis_pipeline.errors import WeightsError
from mis_pipeline.model import build_model, checkpoint_dir, load_checkpoint, save_checkpoint


def _model():
    cfg = from_dict(ModelConfig, {"arch": "vit_test", "init": "random", "img_size": 64, "init_seed": 3})
    model = build_model(cfg)
    # move the weights away from their initial values, as training would
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model.eval()


def _predict(model):
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 50, 70, generator=g)
    prev = torch.rand(2, 1, 50, 70, generator=g)
    points = torch.tensor([[[10, 20], [30, 40]], [[5, 5], [45, 60]]], dtype=torch.int32)
    labels = torch.tensor([[1, 0], [1, 1]], dtype=torch.int8)
    valid = torch.ones(2, 2, dtype=torch.bool)
    with torch.no_grad():
        return model(image, prev, points, labels, valid)


def test_reloaded_checkpoint_predicts_bit_identically(tmp_path):
    model = _model()
    run = tmp_path / "RUN"
    save_checkpoint(model, run / "checkpoint", extra={"step": 7, "train": {"lr": 5e-5}})
    assert sorted(p.name for p in (run / "checkpoint").iterdir()) == ["model.json", "model.safetensors"]
    want = _predict(model)
    for where in (run, run / "checkpoint", run / "checkpoint" / "model.json"):
        loaded, meta = load_checkpoint(where)
        assert not loaded.training
        assert torch.equal(_predict(loaded), want)
    assert meta["extra"] == {"step": 7, "train": {"lr": 5e-5}}
    assert meta["model"]["arch"] == "vit_test" and meta["arch"]["embed_dim"] == 32
    assert checkpoint_dir(run) == run / "checkpoint"


def test_checkpoint_json_is_plain_and_self_describing(tmp_path):
    save_checkpoint(_model(), tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["format"] == "mis-pipeline/simpleclick" and meta["format_version"] == 1
    # the resolved architecture is stored: loading does not depend on the registry
    meta["model"]["arch"] = "vit_base"
    (tmp_path / "model.json").write_text(json.dumps(meta))
    loaded, _ = load_checkpoint(tmp_path)
    assert loaded.embed_dim == 32


def test_checkpoint_errors(tmp_path):
    with pytest.raises(WeightsError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    with pytest.raises(TypeError):
        save_checkpoint(_model(), tmp_path / "c", extra={"bad": object()})
    assert not (tmp_path / "c" / "model.json").exists()
    save_checkpoint(_model(), tmp_path / "d")
    (tmp_path / "d" / "model.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(WeightsError, match="not a"):
        load_checkpoint(tmp_path / "d")
