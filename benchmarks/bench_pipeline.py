"""Ray executor vs in-process executor: as a new user runs them, and with warm processes.

    ip netns exec mis env RAY_USAGE_STATS_ENABLED=0 PATH=$PATH \\
        .venv/bin/python benchmarks/bench_pipeline.py [--sizes 40,327] [--synthetic 2000] \\
        [--repeats 2] [--out benchmarks/results/pipeline.json]

Corpora: the first 40 and all 327 Weizmann horses (``../shared/data/WeizmannHorse/images``)
and a synthetic corpus of ``--synthetic`` images (180-300 x 200-330 px blobs and noise,
generated once into the temp folder and reused). Backbone: the weights-free colour_texture
(what runs on any machine); batch size: the default.

Two measurements per corpus and executor:

* **cold** (a new user): a fresh Python process lists the images and calls ``preprocess()``;
  for Ray the time includes starting the local Ray instance, which is timed on its own
  (``init_s``) by starting it just before the call. ``local`` and ``ray`` processes alternate,
  ``--repeats`` times; medians are reported.
* **warm**: one process per executor runs a 64-image warm-up first (imports, Numba kernels,
  for Ray the instance, its worker processes and Ray Data's helpers), then the timed run:
  the steady state of a long corpus or of a cluster that is already up.

Each run writes a fresh store; the local and Ray stores of a corpus must hold identical
trees. Ratios are ray/local wall times (below 1: Ray is faster). The load average of the
host is recorded: timings on a shared machine vary; compare ratios of back-to-back runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HORSES = REPO.parent / "shared" / "data" / "WeizmannHorse" / "images"
OVERRIDES = {"features": {"backbone": "colour_texture"}}


# --------------------------------------------------------------------------- child process
def _child(executor: str, listing: str, out: str, warm: str | None) -> None:
    """One timed run in this (fresh) process; prints one JSON line."""
    t_start = time.perf_counter()
    from mis_pipeline.config import PipelineConfig, from_dict
    from mis_pipeline.pipeline import preprocess

    cfg = from_dict(PipelineConfig, {**OVERRIDES, "preprocess": {"executor": executor}})
    init_s = 0.0
    if executor == "ray":
        from mis_pipeline.pipeline.ray_exec import init_ray

        t0 = time.perf_counter()
        init_ray(None)
        init_s = time.perf_counter() - t0
    warm_s = None
    if warm is not None:
        t0 = time.perf_counter()
        preprocess(warm, out + ".warm", cfg)
        warm_s = time.perf_counter() - t0
    marks: list[float] = []
    t0 = time.perf_counter()
    res = preprocess(listing, out, cfg, on_progress=lambda d, t: marks.append(time.perf_counter() - t0))
    run_s = time.perf_counter() - t0
    print(json.dumps({
        "executor": executor,
        "import_s": round(t0 - t_start - init_s - (warm_s or 0.0), 3),
        "init_s": round(init_s, 3),
        "warm_up_s": None if warm_s is None else round(warm_s, 3),
        "run_s": round(run_s, 3),
        "first_commit_s": round(marks[1], 3) if len(marks) > 1 else None,
        "n_ok": res.n_ok,
        "n_failed": res.n_failed,
    }))


def _spawn(executor: str, listing: Path, out: Path, warm: Path | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", executor, str(listing), str(out)]
    if warm is not None:
        cmd += ["--warm", str(warm)]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{executor} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- corpora
def synthetic_corpus(n: int, seed: int = 0) -> Path:
    """``n`` generated PNGs in the temp folder (made once, reused while complete)."""
    import numpy as np
    from PIL import Image

    root = Path(tempfile.gettempdir()) / f"mis_bench_synthetic_{n}_seed{seed}"
    if root.is_dir() and len(list(root.glob("*.png"))) == n:
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        h, w = int(rng.integers(180, 301)), int(rng.integers(200, 331))
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.zeros((h, w, 3), np.float32) + rng.uniform(0, 255, 3).astype(np.float32)
        for _ in range(5):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(15, 60)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 8, img.shape).astype(np.float32)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"syn{i:05d}.png", compress_level=1)
    return root


def _listing(files: list[Path], path: Path) -> Path:
    path.write_text("".join(f"{f}\n" for f in files))
    return path


def _same_trees(a: Path, b: Path) -> bool:
    from mis_pipeline.store import TreeStore

    sa, sb = TreeStore.open(a), TreeStore.open(b)
    if sorted(sa.image_ids) != sorted(sb.image_ids):
        return False
    return all(sa.get(i).tree == sb.get(i).tree for i in sa.image_ids)


def _median(runs: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 3)


def bench_corpus(name: str, files: list[Path], tmp: Path, repeats: int) -> dict:
    n = len(files)
    listing = _listing(files, tmp / f"{name}.txt")
    warm = _listing(files[-64:], tmp / f"{name}_warm.txt")
    cold: dict[str, list[dict]] = {"local": [], "ray": []}
    for rep in range(repeats):
        for executor in ("local", "ray"):
            out = tmp / f"{name}_{executor}_{rep}.zarr"
            r = _spawn(executor, listing, out)
            cold[executor].append(r)
            print(f"{name:<16} cold {executor:<5} #{rep}: init {r['init_s']:6.2f} s, run {r['run_s']:6.2f} s, "
                  f"first commit {r['first_commit_s']} s", flush=True)
    identical = _same_trees(tmp / f"{name}_local_0.zarr", tmp / f"{name}_ray_0.zarr")
    warm_runs = {}
    for executor in ("local", "ray"):
        r = _spawn(executor, listing, tmp / f"{name}_{executor}_warm.zarr", warm=warm)
        warm_runs[executor] = r
        print(f"{name:<16} warm {executor:<5}: run {r['run_s']:6.2f} s ({n / r['run_s']:.1f} images/s)", flush=True)
    local_run = _median(cold["local"], "run_s")
    ray_init, ray_run = _median(cold["ray"], "init_s"), _median(cold["ray"], "run_s")
    ray_total = round(statistics.median(r["init_s"] + r["run_s"] for r in cold["ray"]), 3)
    summary = {
        "corpus": name,
        "images": n,
        "cold": {
            "local": {"run_s": local_run, "images_per_s": round(n / local_run, 1), "runs": cold["local"]},
            "ray": {"init_s": ray_init, "run_s": ray_run, "total_s": ray_total,
                    "images_per_s": round(n / ray_total, 1), "runs": cold["ray"]},
            "ratio_ray_local_total": round(ray_total / local_run, 2),
            "ratio_ray_local_excluding_init": round(ray_run / local_run, 2),
        },
        "warm": {
            "local": {**warm_runs["local"], "images_per_s": round(n / warm_runs["local"]["run_s"], 1)},
            "ray": {**warm_runs["ray"], "images_per_s": round(n / warm_runs["ray"]["run_s"], 1)},
            "ratio_ray_local": round(warm_runs["ray"]["run_s"] / warm_runs["local"]["run_s"], 2),
        },
        "identical_trees": identical,
    }
    c, w = summary["cold"], summary["warm"]
    print(f"{name:<16} ray/local: cold {c['ratio_ray_local_total']:.2f} (without Ray start-up "
          f"{c['ratio_ray_local_excluding_init']:.2f}), warm {w['ratio_ray_local']:.2f}; "
          f"identical trees: {identical}", flush=True)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=HORSES, help="folder of the real images (PNG)")
    ap.add_argument("--sizes", default="40,327", help="comma-separated counts of real images")
    ap.add_argument("--synthetic", type=int, default=2000, help="synthetic corpus size (0: none)")
    ap.add_argument("--repeats", type=int, default=2, help="cold runs per executor (medians)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "pipeline.json")
    ap.add_argument("--child", nargs=3, metavar=("EXECUTOR", "LISTING", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--warm", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child, warm=args.warm)
        return
    import ray

    files = sorted(args.images.glob("*.png"))
    corpora = [(f"horses_{k}", files[:k]) for k in map(int, args.sizes.split(",")) if k > 0]
    if args.synthetic > 0:
        corpora.append((f"synthetic_{args.synthetic}", sorted(synthetic_corpus(args.synthetic).glob("*.png"))))
    load0 = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as tmp_s:
        for name, fs in corpora:
            results.append(bench_corpus(name, fs, Path(tmp_s), args.repeats))
    payload = {
        "benchmark": "benchmarks/bench_pipeline.py",
        "command": "ip netns exec mis env RAY_USAGE_STATS_ENABLED=0 PATH=$PATH .venv/bin/python "
                   "benchmarks/bench_pipeline.py " + " ".join(sys.argv[1:]),
        "backbone": "colour_texture",
        "cpus": os.cpu_count(),
        "ray_version": ray.__version__,
        "load_average_before": [round(x, 2) for x in load0],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "corpora": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
