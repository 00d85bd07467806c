"""Figures of issue 16 on CPU with the tiny model: RefCut references, CFR / A-CFR and TAIZ.

Two measurements, each writing one JSON file under ``benchmarks/results/`` (the README tables are
made from them):

``refcut``  trains RefCut twice for the same number of steps from the same initialisation, once
            on supervised part pairs (``--parts-train``, the CarParts layout) and once on pairs
            mined from a tree store of the same training images (``--store``, no part labels),
            then runs the part-combination protocol on held-out images (``--parts-eval``) with
            references (``--reference auto``) and without (``none``)::

                python benchmarks/bench_methods.py refcut --parts-train T --parts-eval E \\
                    --store trees.zarr --steps 150 --limit 60 --out benchmarks/results/methods_refcut.json

``cfr``     evaluates one checkpoint on GrabCut with the plain predictor, CFR-2, A-CFR-4 and
            TAIZ, back to back in one process, and records NoC and the time per click (and its
            ratio to the plain predictor's, measured in the same process)::

                python benchmarks/bench_methods.py cfr --checkpoint RUN --data ../shared/data/GrabCut \\
                    --limit 20 --out benchmarks/results/methods_cfr_taiz.json

The held-out split of CarParts used for the README figures (the first 10 image names held out,
90 for training) and the tree store of the training images::

    python benchmarks/bench_methods.py split --parts ../shared/data/CarParts --holdout 10 --work /tmp/h8bench
    mis preprocess /tmp/h8bench/train/images --out /tmp/h8bench/trees.zarr --executor local \
        --set features.backbone=colour_texture

Both use one evaluation worker (the timings share the CPU with nothing else of ours).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from mis_pipeline import __version__
from mis_pipeline.config import PipelineConfig, from_dict, to_dict


def _summary(result, name: str) -> dict:
    s = result.summary()
    return {
        "setting": name,
        "samples": s["num_samples"],
        "noc": s["noc"],
        "nof_never_reached": s["nof_never_reached"],
        "miou_at": s.get("miou_at"),
        "seconds_per_click_predict": s["seconds_per_click_predict"],
        "seconds_reset_mean": s["seconds_reset_mean"],
    }


def _tiny(overrides: dict) -> PipelineConfig:
    from mis_pipeline.cli._common import load_config

    cfg = load_config("tiny", [])
    data = to_dict(cfg)
    for section, values in overrides.items():
        cur = data
        for part in section.split("."):
            cur = cur.setdefault(part, {})
        cur.update(values)
    return from_dict(PipelineConfig, data)


def run_refcut(args: argparse.Namespace) -> dict:
    from mis_pipeline.evaluate import evaluate_dataset
    from mis_pipeline.evaluate.parts import PartCombinationDataset
    from mis_pipeline.train import run_training

    common = {
        "train": {"mode": "refcut", "steps": args.steps, "batch_size": args.batch, "device": "cpu",
                  "checkpoint_every": args.steps, "log_every": 10},
        # CarParts photos are 512-1024 px: shrink them so a 128 px crop holds most of the car
        "data": {"loader_workers": args.loader_workers},
        "data.augment": {"scale_range": [0.15, 0.3]},
        "evaluate": {"max_clicks": args.max_clicks, "workers": 1},
        "evaluate.model": {"device": "cpu"},
    }
    runs = {}
    t0 = time.perf_counter()
    runs["supervised"] = run_training(_tiny(common), Path(args.work) / "refcut_parts", parts=args.parts_train)
    t1 = time.perf_counter()
    runs["mined"] = run_training(_tiny(common), Path(args.work) / "refcut_mined", store=args.store)
    t2 = time.perf_counter()
    ds = PartCombinationDataset(args.parts_eval)
    idx = list(range(min(args.limit, len(ds))))
    rows = []
    for source, res in runs.items():
        for reference in ("auto", "none"):
            cfg = _tiny({**common, "evaluate": {**common["evaluate"], "reference": reference},
                         "evaluate.model": {"device": "cpu", "checkpoint": str(res.run_dir)}})
            r = evaluate_dataset(ds, cfg, predictor="model", indices=idx, workers=1)
            rows.append({"pairs": source, "reference": reference, **_summary(r, f"{source}/{reference}")})
            print(rows[-1]["setting"], rows[-1]["noc"], flush=True)
    return {
        "what": "RefCut on CarParts, tiny model (vit_tiny, 128 px, random init), same steps for both pair "
                "sources; part-combination protocol on held-out images",
        "train_seconds": {"supervised": t1 - t0, "mined": t2 - t1},
        "steps": args.steps, "batch_size": args.batch, "eval_samples": len(idx), "max_clicks": args.max_clicks,
        "parts_train": str(args.parts_train), "parts_eval": str(args.parts_eval), "store": str(args.store),
        "results": rows,
    }


def run_cfr(args: argparse.Namespace) -> dict:
    from mis_pipeline.evaluate import evaluate_dataset, open_dataset

    ds = open_dataset("grabcut", args.data)
    idx = list(range(min(args.limit, len(ds))))
    settings = {
        "plain": {},
        "cfr-2": {"cfr": {"steps": 2}},
        "a-cfr-4": {"cfr": {"steps": 4, "adaptive": True}},
        "taiz": {"evaluate.model": {"zoom": "taiz"}},
    }
    import statistics

    # The settings take turns (forward, then backward order, ``--repeats`` times) so that a slow or
    # fast phase of a shared machine does not favour one of them; the median time is reported.
    rows: dict[str, dict] = {}
    times: dict[str, list[float]] = {name: [] for name in settings}
    order = list(settings)
    for rep in range(args.repeats):
        for name in order if rep % 2 == 0 else order[::-1]:
            extra = settings[name]
            over = {"evaluate": {"max_clicks": args.max_clicks, "workers": 1},
                    "evaluate.model": {"device": "cpu", "checkpoint": str(args.checkpoint),
                                       **extra.get("evaluate.model", {})}}
            if "cfr" in extra:
                over["cfr"] = extra["cfr"]
            r = evaluate_dataset(ds, _tiny(over), predictor="model", indices=idx, workers=1)
            row = _summary(r, name)
            if name in rows and rows[name]["noc"] != row["noc"]:
                raise RuntimeError(f"{name}: NoC differs between repetitions ({rows[name]['noc']} vs {row['noc']})")
            rows.setdefault(name, row)
            times[name].append(row["seconds_per_click_predict"])
            print(rep, name, row["noc"], row["seconds_per_click_predict"], flush=True)
    # Network evaluations per click (exact, unlike the timings on a shared machine): one more pass
    # with the predictor in this process, counting its forwards.
    from mis_pipeline.evaluate.predictors import make_predictor
    from mis_pipeline.evaluate.runner import evaluate_sample

    for name in order:
        extra = settings[name]
        over = {"evaluate": {"max_clicks": args.max_clicks, "workers": 1},
                "evaluate.model": {"device": "cpu", "checkpoint": str(args.checkpoint),
                                   **extra.get("evaluate.model", {})}}
        if "cfr" in extra:
            over["cfr"] = extra["cfr"]
        cfg = _tiny(over)
        pred = make_predictor("model", cfg)
        clicks = 0
        for i in idx:
            clicks += len(evaluate_sample(ds.load(i), pred, cfg.evaluate, i).clicks)
        rows[name]["forwards_per_click"] = pred.forwards / max(clicks, 1)
        print(name, "forwards per click", rows[name]["forwards_per_click"], flush=True)
    base = statistics.median(times["plain"])
    out = []
    for name in order:
        row = rows[name]
        row["seconds_per_click_predict_runs"] = times[name]
        row["seconds_per_click_predict"] = statistics.median(times[name])
        row["time_ratio_to_plain"] = row["seconds_per_click_predict"] / base if base else None
        out.append(row)
    rows = out
    return {"what": "CFR-2, A-CFR-4 and TAIZ on GrabCut with one tiny checkpoint, taking turns",
            "checkpoint": str(args.checkpoint), "samples": len(idx), "max_clicks": args.max_clicks,
            "repeats": args.repeats, "results": rows}


def run_split(args: argparse.Namespace) -> dict:
    """Held-out split of a part dataset as two folders of symbolic links (``images/`` and
    ``part_labels/``): the first ``--holdout`` image names in sorted order go to ``eval``."""
    root, out = Path(args.parts).resolve(), Path(args.work)
    names = sorted(p.name for p in (root / "images").iterdir() if p.is_file())
    for i, name in enumerate(names):
        part = "eval" if i < args.holdout else "train"
        stem = Path(name).stem
        for sub, file in (("images", name), ("part_labels", f"{stem}.png")):
            (out / part / sub).mkdir(parents=True, exist_ok=True)
            link = out / part / sub / file
            if not link.exists():
                link.symlink_to(root / sub / file)
    return {"train": str(out / "train"), "eval": str(out / "eval"), "holdout": args.holdout, "images": len(names)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("refcut")
    r.add_argument("--parts-train", required=True)
    r.add_argument("--parts-eval", required=True)
    r.add_argument("--store", required=True)
    r.add_argument("--steps", type=int, default=150)
    r.add_argument("--batch", type=int, default=8)
    r.add_argument("--loader-workers", type=int, default=1)
    r.add_argument("--limit", type=int, default=60)
    r.add_argument("--max-clicks", type=int, default=20)
    r.add_argument("--work", default="/tmp/bench_methods")
    r.add_argument("--out", required=True)
    c = sub.add_parser("cfr")
    c.add_argument("--checkpoint", required=True)
    c.add_argument("--data", default="../shared/data/GrabCut")
    c.add_argument("--limit", type=int, default=20)
    c.add_argument("--max-clicks", type=int, default=20)
    c.add_argument("--repeats", type=int, default=3)
    c.add_argument("--out", required=True)
    sp = sub.add_parser("split")
    sp.add_argument("--parts", default="../shared/data/CarParts")
    sp.add_argument("--holdout", type=int, default=10)
    sp.add_argument("--work", required=True)
    args = ap.parse_args()
    if args.cmd == "split":
        print(json.dumps(run_split(args)))
        return
    t0 = time.perf_counter()
    result = run_refcut(args) if args.cmd == "refcut" else run_cfr(args)
    result.update({"command": args.cmd, "wall_seconds": time.perf_counter() - t0, "mis_pipeline_version": __version__,
                   "machine": platform.machine(), "python": platform.python_version()})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
