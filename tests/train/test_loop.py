"""CPU smoke tests of the training loop (tiny ViT, a 12-image tree store): learning, metrics,
exact resume, refusals, fine-tuning with --data-ratio."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from train_helpers import parameters, smoke_config

from mis_pipeline.errors import ConfigError, RunError
from mis_pipeline.train import run_training
from mis_pipeline.train.run_dir import read_metrics, read_state


class Interrupt(Exception):
    """Raised by a loss hook to simulate a crash at a given step."""


def _crash_at(step: int):
    def hook(ctx, points, labels, valid, prev):
        if ctx.step == step:
            raise Interrupt(f"crash at step {step}")
        return ctx.loss_fn(ctx.forward(points, labels, valid, prev))

    return hook


def _fixed_batch_loss(run_or_model, cfg, store, n: int = 8) -> float:
    """MIS loss of a model on n fixed samples (no click rounds, eval mode)."""
    from mis_pipeline.data import ProposalDataset, collate
    from mis_pipeline.model import load_checkpoint
    from mis_pipeline.train.loop import build_loss
    from mis_pipeline.train.step import to_train_batch

    model = run_or_model if isinstance(run_or_model, torch.nn.Module) else load_checkpoint(run_or_model)[0]
    model.eval()
    ds = ProposalDataset(store, seed=99, config=cfg.data)
    raw = collate([ds.sample(i, 0) for i in range(n)])
    batch = to_train_batch(raw, np.arange(n), ds.epoch_size, "cpu")
    with torch.no_grad():
        logits = model(batch.image, torch.zeros_like(batch.target), batch.points, batch.labels, batch.valid)
        return float(build_loss(cfg)(logits, batch)[0])


@pytest.mark.slow
def test_sixty_steps_lower_the_loss_and_write_the_run(tree_store, tmp_path):
    from mis_pipeline.model import build_model

    cfg = smoke_config(train={"steps": 60, "log_every": 5, "checkpoint_every": 30})
    before = _fixed_batch_loss(build_model(cfg.model), cfg, tree_store)
    res = run_training(cfg, tmp_path / "run", store=tree_store)
    run = tmp_path / "run"
    assert res.steps == 60 and res.resumed_from == 0
    after = _fixed_batch_loss(run, cfg, tree_store)
    assert after < before
    records = read_metrics(run)
    assert [r["step"] for r in records] == list(range(5, 65, 5))
    for key in ("loss", "bce", "smooth", "lr", "samples_per_s", "data_wait_fraction"):
        assert all(np.isfinite(r[key]) for r in records), key
    assert all(0 <= r["data_wait_fraction"] <= 1 for r in records)
    # lr x0.1 at the milestone: epoch 4 of 5 -> step 48 of 60
    assert records[8]["lr"] == pytest.approx(1e-3) and records[-1]["lr"] == pytest.approx(1e-4)
    assert (run / "loss_curve.png").stat().st_size > 1000
    state = read_state(run)
    assert state["finished"] and state["step"] == 60
    meta = json.loads((run / "checkpoint" / "model.json").read_text())
    assert meta["extra"]["train"]["step"] == 60 and meta["model"]["arch"] == "vit_test"


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_parameters(tree_store, tmp_path):
    cfg = smoke_config(train={"steps": 6, "checkpoint_every": 2})
    run_training(cfg, tmp_path / "straight", store=tree_store)
    with pytest.raises(Interrupt):
        run_training(cfg, tmp_path / "resumed", store=tree_store, loss_hook=_crash_at(5))
    assert read_state(tmp_path / "resumed")["step"] == 4
    # resume with two DataLoader processes: where samples are computed does not matter
    res = run_training(smoke_config(train={"steps": 6, "checkpoint_every": 2}, data={"loader_workers": 2}),
                       tmp_path / "resumed", store=tree_store)
    assert res.resumed_from == 4 and res.steps == 6
    a, b = parameters(tmp_path / "straight"), parameters(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    la = [r["loss"] for r in read_metrics(tmp_path / "straight")]
    lb = [r["loss"] for r in read_metrics(tmp_path / "resumed")]
    assert la == lb and len(la) == 6


def test_finished_run_is_refused_unless_overwritten(tree_store, tmp_path):
    cfg = smoke_config(train={"steps": 2})
    run_training(cfg, tmp_path / "run", store=tree_store)
    with pytest.raises(RunError, match="finished run"):
        run_training(cfg, tmp_path / "run", store=tree_store)
    res = run_training(smoke_config(train={"steps": 3}), tmp_path / "run", store=tree_store, overwrite=True)
    assert res.steps == 3 and read_state(tmp_path / "run")["step"] == 3
    assert len(read_metrics(tmp_path / "run")) == 3


def test_resume_with_another_configuration_is_refused(tree_store, tmp_path):
    with pytest.raises(Interrupt):
        run_training(smoke_config(train={"steps": 4, "checkpoint_every": 1}), tmp_path / "run",
                     store=tree_store, loss_hook=_crash_at(2))
    with pytest.raises(ConfigError, match=r"train.lr: 0.001 -> 0.002"):
        run_training(smoke_config(train={"steps": 4, "checkpoint_every": 1, "lr": 2e-3}), tmp_path / "run",
                     store=tree_store)


def test_bad_inputs_fail_before_training(tree_store, tmp_path):
    cfg = smoke_config(train={"steps": 2})
    with pytest.raises(ConfigError, match="--store"):
        run_training(cfg, tmp_path / "a")
    with pytest.raises(ConfigError, match="train.batch_size"):
        run_training(smoke_config(train={"steps": 2, "micro_batches": 3}), tmp_path / "a", store=tree_store)
    ft = smoke_config(train={"steps": 2, "mode": "finetune"})
    with pytest.raises(ConfigError, match="train.init"):
        run_training(ft, tmp_path / "a", data=tmp_path)
    assert not (tmp_path / "a").exists()


@pytest.mark.slow
def test_finetune_with_data_ratio_resumes_exactly(tree_store, folder_data, tmp_path):
    init = tmp_path / "init"
    run_training(smoke_config(train={"steps": 1}), init, store=tree_store)
    cfg = smoke_config(train={"mode": "finetune", "init": str(init), "steps": 6, "checkpoint_every": 2},
                       data={"data_ratio": 0.5})
    run_training(cfg, tmp_path / "straight", data=folder_data)
    with pytest.raises(Interrupt):
        run_training(cfg, tmp_path / "resumed", data=folder_data, loss_hook=_crash_at(5))
    res = run_training(cfg, tmp_path / "resumed", data=folder_data)
    assert res.resumed_from == 4
    a, b = parameters(tmp_path / "straight"), parameters(tmp_path / "resumed")
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    records = read_metrics(tmp_path / "straight")
    assert "nfl" in records[0] and "smooth" not in records[0]
    # the subset: 6 of the 12 annotated objects, and only those are drawn
    from mis_pipeline.train.loop import DataSpec, build_source

    src = build_source(cfg, DataSpec("finetune", str(folder_data)))
    assert src.subset.size == 6
    assert {src.object_of(i, e) for e in range(3) for i in range(src.epoch_size)} == set(src.subset.tolist())
    # the fine-tuned model starts from the init checkpoint and keeps its architecture
    meta = json.loads((tmp_path / "straight" / "checkpoint" / "model.json").read_text())
    assert meta["model"] == json.loads((init / "checkpoint" / "model.json").read_text())["model"]
    still = smoke_config(train={"mode": "finetune", "init": str(init), "steps": 1, "lr": 1e-30})
    run_training(still, tmp_path / "still", data=folder_data)
    p0, p1 = parameters(init), parameters(tmp_path / "still")
    assert all(np.allclose(p0[k], p1[k], rtol=0, atol=1e-20) for k in p0)


@pytest.mark.slow
def test_ctrl_c_and_time_budget_stop_after_a_step_with_the_state_saved(tree_store, tmp_path):
    import os
    import signal

    def ctrl_c_at_1(ctx, points, labels, valid, prev):
        if ctx.step == 1:
            os.kill(os.getpid(), signal.SIGINT)  # handled: the step finishes, then the loop stops
        return ctx.loss_fn(ctx.forward(points, labels, valid, prev))

    cfg = smoke_config(train={"steps": 4, "checkpoint_every": 10})
    res = run_training(cfg, tmp_path / "run", store=tree_store, loss_hook=ctrl_c_at_1)
    assert res.stopped == "SIGINT" and res.steps == 2
    assert read_state(tmp_path / "run") == {**read_state(tmp_path / "run"), "step": 2, "finished": False}
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    budget = smoke_config(train={"steps": 4, "checkpoint_every": 10, "max_minutes": 1e-6})
    res = run_training(budget, tmp_path / "run", store=tree_store)  # resumes; budget: one step
    assert res.resumed_from == 2 and res.steps == 3 and res.stopped.startswith("time budget")
    res = run_training(cfg, tmp_path / "run", store=tree_store)
    assert res.steps == 4 and res.stopped is None and read_state(tmp_path / "run")["finished"]
    straight = tmp_path / "straight"
    run_training(cfg, straight, store=tree_store)
    a, b = parameters(straight), parameters(tmp_path / "run")
    assert all(np.array_equal(a[k], b[k]) for k in a)
