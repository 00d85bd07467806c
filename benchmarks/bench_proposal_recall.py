"""Real-data figure: how often sampled proposals cover the GrabCut objects.

Builds merge trees of the 50 GrabCut images with the weights-free ``colour_texture`` backbone
(in a temporary store, in-process executor), draws 200 proposals per image with MIS's
top-down sampler (alpha 0.9, area filter 5 %), and reports the fraction of images where at
least one proposal reaches IoU >= 0.5 with the ground truth (GrabCut's 128 band ignored),
with the per-image best IoU. ``tests/data/test_proposal_recall.py`` recomputes the figure.

Run from the project root::

    .venv/bin/python benchmarks/bench_proposal_recall.py [--n 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GRABCUT = ROOT.parent / "shared" / "data" / "GrabCut"
OUT = ROOT / "benchmarks" / "results" / "proposal_recall.json"

import numpy as np  # noqa: E402

from mis_pipeline.config import PipelineConfig, ProposalConfig, from_dict, to_dict  # noqa: E402
from mis_pipeline.data import proposal_recall  # noqa: E402
from mis_pipeline.evaluate.datasets import GrabCutDataset  # noqa: E402
from mis_pipeline.pipeline import preprocess  # noqa: E402

#: The store settings of the figure (the test uses the same).
STORE_OVERRIDES = {"features": {"backbone": "colour_texture"}, "preprocess": {"executor": "local", "batch_size": 16}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="proposals drawn per image")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    cfg = from_dict(PipelineConfig, STORE_OVERRIDES)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "grabcut.zarr"
        t0 = time.perf_counter()
        preprocess(GRABCUT / "data_GT", store, cfg)
        t1 = time.perf_counter()
        res = proposal_recall(store, GrabCutDataset(GRABCUT), args.n, seed=args.seed, config=cfg.data.proposals)
        t2 = time.perf_counter()
        # the paper's ablation samplers, same trees and draws per image
        ablations = {}
        for sampler in ("root_children", "uniform"):
            r = proposal_recall(store, GrabCutDataset(GRABCUT), args.n, seed=args.seed,
                                config=ProposalConfig(sampler=sampler))
            ablations[sampler] = {"recall": r.recall, "best_iou_median": float(np.median(r.best_iou)),
                                  "distinct_nodes_mean": float(r.distinct.mean())}
    out = {
        "what": "fraction of GrabCut images where >= 1 of N sampled proposals reaches IoU >= 0.5",
        "backbone": "colour_texture",
        "sampler": to_dict(cfg.data.proposals),
        "seed": args.seed,
        **res.to_dict(),
        "other_samplers": ablations,
        "seconds_preprocess": round(t1 - t0, 2),
        "seconds_sampling": round(t2 - t1, 2),
        "command": "python benchmarks/bench_proposal_recall.py" + (f" --n {args.n}" if args.n != 200 else "")
        + (f" --seed {args.seed}" if args.seed else ""),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"recall@IoU0.5 = {res.recall:.3f} over {len(res.sample_ids)} images "
          f"({args.n} proposals each, {res.distinct.mean():.1f} distinct nodes on average); "
          f"median best IoU {out['best_iou_median']:.3f}")
    for name, a in ablations.items():
        print(f"  sampler {name}: recall {a['recall']:.3f}, median best IoU {a['best_iou_median']:.3f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
