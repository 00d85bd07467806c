"""Configuration: defaults, YAML + --set resolution, and the message of every kind of bad value."""

from __future__ import annotations

import dataclasses

import pytest

from mis_pipeline.cli._common import load_config, parse_set, write_resolved_config
from mis_pipeline.config import (
    EvalConfig,
    FeatureConfig,
    PipelineConfig,
    from_dict,
    to_dict,
)
from mis_pipeline.errors import ConfigError


def test_defaults_are_frozen_and_complete():
    cfg = PipelineConfig()
    assert cfg.features.backbone == "dino_vits8"
    assert cfg.evaluate.max_clicks == 20
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.features.batch_size = 3  # type: ignore[misc]
    # round trip through a plain dict
    assert from_dict(PipelineConfig, to_dict(cfg)) == cfg


def test_yaml_then_set_precedence(tmp_path):
    f = tmp_path / "o.yaml"
    f.write_text("features:\n  backbone: colour_texture\n  batch_size: 4\nseed: 7\n")
    cfg = load_config(f, ["features.batch_size=8", "evaluate.iou_targets=[0.5, 0.9]"])
    assert cfg.features.backbone == "colour_texture"
    assert cfg.features.batch_size == 8  # --set wins over YAML
    assert cfg.evaluate.iou_targets == (0.5, 0.9)  # list -> tuple
    assert cfg.seed == 7
    # subcommand defaults sit below the YAML file
    cfg2 = load_config(f, [], defaults={"features": {"batch_size": 2, "device": "cpu"}})
    assert cfg2.features.batch_size == 4 and cfg2.features.device == "cpu"


def test_int_accepted_for_float_and_none_for_optional():
    cfg = load_config(None, ["evaluate.pred_threshold=0.5", "io.max_side=null"])
    assert cfg.evaluate.pred_threshold == 0.5 and cfg.io.max_side is None
    assert isinstance(from_dict(EvalConfig, {"iou_targets": [1]}).iou_targets[0], float)


@pytest.mark.parametrize(
    "item, field, fragment",
    [
        ("features.bogus=1", "features.bogus", "known keys"),
        ("nosuchsection.x=1", "nosuchsection", "known keys"),
        ("features.batch_size=abc", "features.batch_size", "an integer"),
        ("features.batch_size=0", "features.batch_size", ">= 1"),
        ("features.batch_size=2.5", "features.batch_size", "an integer"),
        ("features.amp=maybe", "features.amp", "true or false"),
        ("features.backbone=resnet50", "features.backbone", "dino_vits8"),
        ("features.pos_embed=bilinear", "features.pos_embed", "'official'"),
        ("evaluate.pred_threshold=1.5", "evaluate.pred_threshold", "< 1"),
        ("evaluate.iou_targets=[0.5, 2.0]", "evaluate.iou_targets", "<= 1"),
        ("evaluate.iou_targets=0.5", "evaluate.iou_targets", "a list of float"),
        ("io.max_side=-3", "io.max_side", ">= 1"),
        ("seed=-1", "seed", ">= 0"),
        ("features=3", "features", "mapping"),
    ],
)
def test_bad_values_name_field_value_and_allowed(item, field, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(None, [item])
    err = info.value
    assert err.field == field
    msg = str(err)
    assert field in msg and fragment in msg
    assert repr(parse_set(item)[1]) in msg  # the value given is quoted


def test_bad_yaml_file(tmp_path):
    with pytest.raises(ConfigError, match="existing YAML file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("features: [unclosed\n")
    with pytest.raises(ConfigError, match="valid YAML"):
        load_config(bad)
    notmap = tmp_path / "list.yaml"
    notmap.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(notmap)


def test_bad_set_syntax():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(None, ["features.batch_size"])
    with pytest.raises(ConfigError, match="dotted key"):
        load_config(None, ["features..x=1"])


def test_direct_construction_is_validated_too():
    with pytest.raises(ConfigError, match="features.batch_size"):
        FeatureConfig(batch_size=-1)


def test_resolved_config_written(tmp_path):
    import yaml

    cfg = load_config(None, ["seed=3"])
    path = write_resolved_config(cfg, tmp_path / "out")
    data = yaml.safe_load(path.read_text())
    assert data["seed"] == 3 and "mis_pipeline_version" in data
    data.pop("mis_pipeline_version")
    assert from_dict(PipelineConfig, data) == cfg


def test_shipped_yaml_configs_are_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(p for p in root.glob("*.yaml") if p.name != "cluster.yaml")
    for f in files:
        load_config(f)  # raises on any bad key or value
