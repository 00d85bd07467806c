"""RefCut, ICL, VTMR and SUEM through the trainer (CPU smoke: vit_test on a synthetic part set)."""

from __future__ import annotations

import numpy as np
import pytest
from refcut_helpers import parameters, smoke_config

from mis_pipeline.errors import ConfigError
from mis_pipeline.train import run_training
from mis_pipeline.train.run_dir import read_metrics, read_state


class Interrupt(Exception):
    pass


def _crash_at(step):
    def hook(ctx, points, labels, valid, prev):
        if ctx.step == step:
            raise Interrupt(step)
        return ctx.loss_fn(ctx.forward(points, labels, valid, prev))

    return hook


@pytest.mark.slow
def test_refcut_trains_the_prompt_mlps_and_resumes_exactly(parts_root, tmp_path):
    cfg = smoke_config(train={"steps": 4})
    res = run_training(cfg, tmp_path / "straight", parts=parts_root)
    assert res.steps == 4
    a = parameters(tmp_path / "straight")
    assert "rpg.pos_mlp.2.weight" in a and "rpg.neg_mlp.2.weight" in a
    # zero-initialised output layers: they moved, so the prompts reached the loss
    assert np.abs(a["rpg.pos_mlp.2.weight"]).sum() > 0 and np.abs(a["rpg.neg_mlp.2.weight"]).sum() > 0
    with pytest.raises(Interrupt):
        run_training(cfg, tmp_path / "resumed", parts=parts_root, loss_hook=_crash_at(3))
    assert read_state(tmp_path / "resumed")["step"] == 2
    res = run_training(cfg, tmp_path / "resumed", parts=parts_root)
    assert res.resumed_from == 2 and res.steps == 4
    b = parameters(tmp_path / "resumed")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_refcut_needs_a_pair_source(parts_root, tmp_path):
    with pytest.raises(ConfigError, match="--parts"):
        run_training(smoke_config(train={"steps": 1}), tmp_path / "r")
    with pytest.raises(ConfigError, match="--parts"):
        run_training(smoke_config(train={"steps": 1, "mode": "finetune", "init": "x"}), tmp_path / "r2",
                     data=parts_root, parts=parts_root)


@pytest.mark.slow
@pytest.mark.parametrize(("sections", "key"), [
    ({"train": {"steps": 2, "loss": "icl"}, "icl": {"random_steps": False}}, "icl_2"),
    ({"train": {"steps": 2}, "vtmr": {"enabled": True}}, "vtmr_gate"),
])
def test_icl_and_vtmr_hooks_are_used(parts_root, tmp_path, sections, key):
    run_training(smoke_config(**sections), tmp_path / "run", parts=parts_root)
    rec = read_metrics(tmp_path / "run")
    assert len(rec) == 2 and all(key in r and np.isfinite(r["loss"]) for r in rec)


def test_icl_and_vtmr_together_are_refused(parts_root, tmp_path):
    with pytest.raises(ConfigError, match="vtmr.enabled"):
        run_training(smoke_config(train={"steps": 1, "loss": "icl"}, vtmr={"enabled": True}), tmp_path / "r",
                     parts=parts_root)


@pytest.mark.slow
def test_suem_finetuning(parts_root, tmp_path):
    from mis_pipeline.train.loop import DataSpec, build_source
    from mis_pipeline.train.methods import SuemSource

    base = smoke_config(train={"steps": 2})
    run_training(base, tmp_path / "base", parts=parts_root)
    cfg = smoke_config(train={"steps": 2, "mode": "finetune", "init": str(tmp_path / "base")},
                       suem={"enabled": True, "copy_paste_prob": 1.0, "image_mix_prob": 1.0})
    src = build_source(cfg, DataSpec("finetune", str(parts_root), "folder"))
    assert isinstance(src, SuemSource)
    for i in range(6):
        s = src.sample(i, 0)
        pos = s["points"][s["valid"] & (s["labels"] == 1)]
        assert s["mask"].any() and all(s["mask"][r, c] for r, c in pos)  # clicks follow the new mask
    res = run_training(cfg, tmp_path / "ft", data=parts_root)
    assert res.steps == 2


@pytest.mark.slow
def test_cli_refcut_train_resume_and_parts_evaluation(parts_root, tmp_path, capsys):
    import json

    from mis_pipeline.cli import main

    run = tmp_path / "run"
    common = ["train", "--mode", "refcut", "--parts", str(parts_root), "--out", str(run), "--no-progress",
              "--set", "model.arch=vit_test", "--set", "model.init=random", "--set", "model.img_size=64",
              "--set", "model.window=0", "--set", "data.augment.crop_size=64", "--set", "data.loader_workers=0",
              "--set", "train.batch_size=2", "--set", "train.device=cpu", "--set", "train.checkpoint_every=1"]
    assert main([*common, "--steps", "2"]) == 0
    assert json.loads((run / "checkpoint" / "model.json").read_text())["model"]["reference"] is True
    assert main([*common, "--steps", "2"]) == 2  # finished: refused without --overwrite
    out = tmp_path / "eval"
    args = ["evaluate", "--dataset", "parts", "--data", str(parts_root), "--predictor", "model",
            "--checkpoint", str(run), "--limit", "4", "--workers", "1", "--no-progress",
            "--set", "evaluate.max_clicks=3", "--set", "evaluate.model.device=cpu"]
    assert main([*args, "--reference", "auto", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_samples"] == 4 and summary["predictor_settings"]["cfr_steps"] == 0
    rows = json.loads((out / "per_sample.json").read_text())
    assert len(rows) == 4 and all(r["reference_id"] for r in rows)
    assert main([*args, "--reference", "none", "--cfr", "1", "--out", str(tmp_path / "e2")]) == 0
    assert main([*args, "--reference", "maybe", "--out", str(tmp_path / "e3")]) == 2
    # a plain predictor cannot take references
    assert main(["evaluate", "--dataset", "parts", "--data", str(parts_root), "--predictor", "gt",
                 "--limit", "1", "--workers", "1", "--no-progress", "--reference", "auto",
                 "--out", str(tmp_path / "e4")]) != 0
