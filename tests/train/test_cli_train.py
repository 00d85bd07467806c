"""``mis train`` / ``python -m stages.train``: flags, presets, exit status, resolved config; and a
trained RUN evaluated with ``mis evaluate --predictor model`` on real GrabCut images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from train_helpers import SMOKE

from mis_pipeline.cli import main
from mis_pipeline.cli._common import load_config


def _smoke_yaml(tmp_path: Path) -> Path:
    p = tmp_path / "smoke.yaml"
    p.write_text(yaml.safe_dump(SMOKE))
    return p


def test_presets_resolve():
    paper = load_config("mis_sbd")
    assert (paper.train.mode, paper.model.arch, paper.model.init, paper.train.lr, paper.train.batch_size,
            paper.train.epochs, paper.train.milestones, paper.data.augment.crop_size,
            paper.train.max_num_next_clicks, paper.loss.smooth_weight) == (
        "mis", "vit_base", "mae", 5e-5, 32, 55, (50.0,), 448, 3, 10.0)
    tiny = load_config("tiny")
    assert tiny.model.arch == "vit_tiny" and tiny.model.init == "random" and tiny.train.device == "auto"
    assert load_config("finetune").train.mode == "finetune"


def test_train_cli_runs_refuses_and_reports_usage_errors(tree_store, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--mode", "mis", "--store", str(tree_store), "--out", str(run),
            "--config", str(_smoke_yaml(tmp_path)), "--steps", "2", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "steps            2" in out and str(run / "checkpoint") in out
    resolved = yaml.safe_load((run / "resolved_config.yaml").read_text())
    assert resolved["train"]["steps"] == 2 and resolved["train"]["mode"] == "mis"
    assert json.loads((run / "run.json").read_text())["data"]["path"] == str(Path(tree_store).resolve())
    # a finished run: refused with one line, exit 2, outputs untouched
    mtime = (run / "checkpoint" / "model.safetensors").stat().st_mtime_ns
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "finished run" in err and "--overwrite" in err and "Traceback" not in err
    assert (run / "checkpoint" / "model.safetensors").stat().st_mtime_ns == mtime
    # usage errors
    assert main(["train", "--mode", "mis", "--out", str(tmp_path / "x"), "--config",
                 str(_smoke_yaml(tmp_path))]) == 2
    assert "--store" in capsys.readouterr().err
    assert main(["train", "--mode", "nope", "--out", str(tmp_path / "x")]) == 2
    assert main(["train", "--mode", "mis", "--store", str(tree_store), "--out", str(tmp_path / "x"),
                 "--data-ratio", "0.1", "--config", str(_smoke_yaml(tmp_path))]) == 2
    assert "only with --mode finetune" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_stage_entry_point_is_the_same_command(tree_store, tmp_path):
    from stages.train import run as stage_run

    rc = stage_run(["--mode", "mis", "--store", str(tree_store), "--out", str(tmp_path / "run"),
                    "--config", str(_smoke_yaml(tmp_path)), "--steps", "1", "--no-progress"])
    assert rc == 0 and (tmp_path / "run" / "checkpoint" / "model.json").is_file()


@pytest.mark.data
@pytest.mark.slow
def test_trained_run_evaluates_with_the_model_predictor(tree_store, grabcut_dir, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--mode", "mis", "--store", str(tree_store), "--out", str(run),
                 "--config", str(_smoke_yaml(tmp_path)), "--steps", "3", "--no-progress"]) == 0
    out = tmp_path / "eval"
    assert main(["evaluate", "--dataset", "grabcut", "--data", str(grabcut_dir), "--predictor", "model",
                 "--checkpoint", str(run), "--limit", "5", "--workers", "1", "--out", str(out),
                 "--set", "evaluate.max_clicks=3", "--set", "evaluate.model.device=cpu"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_samples"] == 5 and summary["predictor"] == "model"
