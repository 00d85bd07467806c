"""Trainer figures on CPU (measured, not asserted): step time and data waiting, Ray Train against
the plain loop, and a learning curve of the ``tiny`` preset evaluated on GrabCut.

Modes (each writes ``benchmarks/results/train_<mode>.json``):

``step``   the ``tiny`` preset (vit_tiny, 128 px crops, batch 8) on a tree store: seconds per
           optimizer step and the share of it spent waiting for data, with 2 DataLoader
           processes and, for reference, with samples computed in the training process (0).
``ray``    the same run as one process and as Ray Train with 2 CPU workers (batch 8 split 4 + 4,
           each worker reading its own Ray Data stream), back to back: seconds per step after
           the warm-up, and the whole command's wall time. Run inside the ``mis`` netns.
``curve``  ``tiny`` trained for ``--minutes`` on a tree store (``--max-minutes``), then the
           trained and the untrained model (the same initial weights) evaluated on GrabCut
           (NoC@85/90, 20 clicks, SimpleClick zoom-in and flip), beside the tree predictor's
           stored result and the published MIS figures (ViT-B, GPUs, days of training).

Run from the project root::

    .venv/bin/python benchmarks/bench_train.py step --store /tmp/horses.zarr
    ip netns exec mis env RAY_USAGE_STATS_ENABLED=0 PATH=$PATH \\
        .venv/bin/python benchmarks/bench_train.py ray --store /tmp/horses.zarr
    .venv/bin/python benchmarks/bench_train.py curve --store /tmp/horses.zarr --minutes 20 --run /tmp/lc

where the store is ``mis preprocess ../shared/data/WeizmannHorse/images --out /tmp/horses.zarr
--executor local --config offline``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
GRABCUT = ROOT.parent / "shared" / "data" / "GrabCut"
PUBLISHED_MIS_GRABCUT = {"noc85": 1.94, "noc90": 2.32}

from mis_pipeline.cli import main as mis  # noqa: E402
from mis_pipeline.cli._common import load_config  # noqa: E402


def _env() -> dict:
    import torch

    return {"machine": platform.machine(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_avg_start": os.getloadavg()}


def _metrics(run: Path) -> list[dict]:
    from mis_pipeline.train.run_dir import read_metrics

    return read_metrics(run)


def _train(store: Path, run: Path, *extra: str) -> float:
    t = time.perf_counter()
    rc = mis(["train", "--mode", "mis", "--store", str(store), "--out", str(run), "--config", "tiny",
              "--no-progress", "--overwrite", *extra])
    if rc != 0:
        raise SystemExit(f"mis train failed with exit status {rc}")
    return time.perf_counter() - t


def _per_step(records: list[dict], batch: int, skip: int) -> tuple[float, float]:
    """Median seconds per step and mean data-wait share over the logged steps after ``skip``."""
    rows = [r for r in records if r["step"] > skip]
    sec = statistics.median(batch / r["samples_per_s"] for r in rows)
    return sec, statistics.fmean(r["data_wait_fraction"] for r in rows)


def bench_step(args: argparse.Namespace) -> dict:
    batch = load_config("tiny").train.batch_size
    out: dict = {"preset": "tiny", "store": str(args.store), "steps": args.steps, "skip": args.skip, **_env()}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (2, 0):
            run = Path(tmp) / f"w{workers}"
            wall = _train(args.store, run, "--steps", str(args.steps), "--set", "train.log_every=1",
                          "--set", f"data.loader_workers={workers}", "--set", "train.device=cpu")
            sec, wait = _per_step(_metrics(run), batch, args.skip)
            out[f"loader_workers_{workers}"] = {"seconds_per_step": sec, "samples_per_s": batch / sec,
                                                "data_wait_fraction": wait, "wall_s": wall}
            print(f"loader_workers={workers}: {sec:.3f} s/step, {batch / sec:.2f} samples/s, "
                  f"waiting {100 * wait:.1f} %", flush=True)
    out["load_avg_end"] = os.getloadavg()
    return out


def bench_ray(args: argparse.Namespace) -> dict:
    batch = load_config("tiny").train.batch_size
    out: dict = {"preset": "tiny", "store": str(args.store), "steps": args.steps, "skip": args.skip, **_env()}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (("single", ["--workers", "1"]), ("ray_2_workers", ["--workers", "2"]),
                            ("single_again", ["--workers", "1"])):
            run = Path(tmp) / name
            wall = _train(args.store, run, "--steps", str(args.steps), "--set", "train.log_every=1",
                          "--set", "train.device=cpu", *extra)
            sec, wait = _per_step(_metrics(run), batch, args.skip)
            out[name] = {"seconds_per_step": sec, "data_wait_fraction": wait, "wall_s": wall}
            print(f"{name}: {sec:.3f} s/step, wall {wall:.1f} s", flush=True)
    single = statistics.fmean([out["single"]["seconds_per_step"], out["single_again"]["seconds_per_step"]])
    out["ray_over_single_step_time"] = out["ray_2_workers"]["seconds_per_step"] / single
    out["ray_over_single_wall"] = out["ray_2_workers"]["wall_s"] / statistics.fmean(
        [out["single"]["wall_s"], out["single_again"]["wall_s"]])
    out["load_avg_end"] = os.getloadavg()
    print(f"Ray / single: {out['ray_over_single_step_time']:.2f}x per step, "
          f"{out['ray_over_single_wall']:.2f}x wall (with start-up)")
    return out


def _evaluate(checkpoint: Path, out: Path, limit: int | None) -> dict:
    args = ["evaluate", "--dataset", "grabcut", "--data", str(GRABCUT), "--predictor", "model",
            "--checkpoint", str(checkpoint), "--out", str(out), "--overwrite", "--set", "evaluate.model.device=cpu"]
    if limit:
        args += ["--limit", str(limit)]
    rc = mis(args)
    if rc != 0:
        raise SystemExit(f"mis evaluate failed with exit status {rc}")
    s = json.loads((out / "summary.json").read_text())
    return {"noc85": s["noc"]["85"], "noc90": s["noc"]["90"], "nof90": s["nof_never_reached"]["90"],
            "miou_at_1": s["miou_at"][0], "miou_at_5": s["miou_at"][4], "miou_at_20": s["miou_at"][-1],
            "num_samples": s["num_samples"]}


def bench_curve(args: argparse.Namespace) -> dict:
    from mis_pipeline.model import build_model, save_checkpoint
    from mis_pipeline.train.run_dir import read_state

    run = Path(args.run)
    state = read_state(run)
    if state is None or not args.reuse:
        _train(args.store, run, "--steps", str(args.steps), "--max-minutes", str(args.minutes))
        state = read_state(run)
    records = _metrics(run)
    cfg = load_config("tiny")
    untrained = run.parent / (run.name + "_untrained")
    save_checkpoint(build_model(cfg.model), untrained, extra={"note": "tiny preset, initial weights"})
    out: dict = {"preset": "tiny", "store": str(args.store), "run": str(run), "minutes": args.minutes,
                 "steps_done": state["step"], "samples_seen": state["step"] * cfg.train.batch_size,
                 "train_loss_first": records[0]["loss"], "train_loss_last": records[-1]["loss"], **_env()}
    out["trained"] = _evaluate(run, run.parent / (run.name + "_eval"), args.limit)
    out["untrained"] = _evaluate(untrained, run.parent / (run.name + "_untrained_eval"), args.limit)
    tree = RESULTS / "eval_grabcut_tree" / "summary.json"
    if tree.is_file():
        s = json.loads(tree.read_text())
        out["tree_predictor"] = {"noc85": s["noc"]["85"], "noc90": s["noc"]["90"], "source": str(tree.relative_to(ROOT))}
    out["published_mis_vit_b"] = {**PUBLISHED_MIS_GRABCUT, "note": "MIS paper Table 1: ViT-B/16, 448 px, "
                                  "55 epochs on SBD proposals, GPUs for days"}
    for k in ("trained", "untrained"):
        print(f"{k:10s} NoC@85 {out[k]['noc85']:.2f}  NoC@90 {out[k]['noc90']:.2f}  mIoU@1 {out[k]['miou_at_1']:.3f}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("step", "ray", "curve"))
    p.add_argument("--store", type=Path, required=True, help="Tree store (e.g. the Weizmann horses).")
    p.add_argument("--steps", type=int, default=None, help="Steps (step/ray: 25; curve: the run length, 1000).")
    p.add_argument("--skip", type=int, default=3, help="Warm-up steps left out of the per-step figures.")
    p.add_argument("--minutes", type=float, default=20.0, help="curve: training time budget.")
    p.add_argument("--run", type=Path, default=Path("/tmp/mis_train_curve/run"), help="curve: run directory.")
    p.add_argument("--reuse", action="store_true", help="curve: evaluate an existing run instead of training.")
    p.add_argument("--limit", type=int, default=None, help="curve: evaluate only the first N GrabCut images.")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    if args.steps is None:
        args.steps = 1000 if args.mode == "curve" else 25
    result = {"step": bench_step, "ray": bench_ray, "curve": bench_curve}[args.mode](args)
    out = args.out or RESULTS / f"train_{args.mode}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
