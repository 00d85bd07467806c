"""Issue 13 item 4: presets ship inside the package, ``--config NAME`` works from any
directory, ``mis config --list`` lists them, and a path still works."""

from __future__ import annotations

from pathlib import Path

import pytest

from mis_pipeline.cli import _common, main
from mis_pipeline.cli._common import load_config, preset_description, preset_names
from mis_pipeline.errors import ConfigError


def test_shipped_presets_listed_and_valid():
    names = preset_names()
    assert {"offline", "paper", "demo"} <= set(names)
    for name in names:  # every shipped preset (also those other commands add) resolves
        load_config(name)
        assert preset_description(name), f"preset {name!r} has no first comment line"


def test_preset_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config("offline").features.backbone == "colour_texture"
    paper = load_config("paper").features
    assert (paper.backbone, paper.weights, paper.pos_embed) == ("dino_vits8", "hub", "official")
    cfg = load_config("demo", ["preprocess.batch_size=2"])
    assert cfg.preprocess.executor == "local" and cfg.preprocess.batch_size == 2  # --set wins


def test_demo_preset_is_what_mis_demo_uses():
    from mis_pipeline.config import to_dict
    from mis_pipeline.pipeline.demo import DEMO_OVERRIDES

    assert to_dict(load_config("demo")) == to_dict(load_config(None, defaults=DEMO_OVERRIDES))


def test_config_file_path_still_works(tmp_path, monkeypatch):
    f = tmp_path / "mine.yaml"
    f.write_text("features:\n  backbone: colour_texture\npreprocess:\n  batch_size: 3\n")
    assert load_config(f).preprocess.batch_size == 3
    assert load_config(str(f)).preprocess.batch_size == 3
    # a file named like a preset is reached with a path
    monkeypatch.chdir(tmp_path)
    (tmp_path / "offline.yaml").write_text("preprocess:\n  batch_size: 5\n")
    assert load_config("./offline.yaml").preprocess.batch_size == 5
    assert load_config("offline").preprocess.batch_size != 5


def test_unknown_preset_or_missing_file_names_the_presets(tmp_path):
    for value in ("ofline", str(tmp_path / "missing.yaml")):
        with pytest.raises(ConfigError) as err:
            load_config(value)
        msg = str(err.value)
        assert value in msg and "offline" in msg and "paper" in msg


def test_any_yaml_in_the_folder_is_a_preset(tmp_path, monkeypatch):
    (tmp_path / "tiny.yaml").write_text("# A tiny run for tests.\npreprocess:\n  batch_size: 7\n")
    (tmp_path / "notes.txt").write_text("not a preset")
    monkeypatch.setattr(_common, "_preset_dir", lambda: tmp_path)
    assert preset_names() == ["tiny"]
    assert preset_description("tiny") == "A tiny run for tests."
    assert load_config("tiny").preprocess.batch_size == 7


def test_mis_config_list(capsys):
    assert main(["config", "--list"]) == 0
    out = capsys.readouterr().out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip()}
    assert set(preset_names()) == set(lines)
    assert "colour-texture" in lines["offline"] and "DINO ViT-S/8" in lines["paper"]


def test_mis_config_shows_a_preset(capsys):
    assert main(["config", "--config", "offline"]) == 0
    assert "backbone: colour_texture" in capsys.readouterr().out
    assert main(["config", "--config", "nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "offline" in err and "Traceback" not in err


def test_presets_live_in_the_package():
    import mis_pipeline.presets

    folder = Path(mis_pipeline.presets.__file__).parent
    assert {p.stem for p in folder.glob("*.yaml")} == set(preset_names())
