"""Ray executor vs in-process executor: as a new user runs them, and with warm processes.

    ip netns exec mis env RAY_USAGE_STATS_ENABLED=0 PATH=$PATH \\
        .venv/bin/python benchmarks/bench_pipeline.py [--sizes 40,327] [--synthetic 2000] \\
        [--repeats 2] [--out benchmarks/results/pipeline.json]

Corpora: the first 40 and all 327 Weizmann horses (``../shared/data/WeizmannHorse/images``)
and a synthetic corpus of ``--synthetic`` images (180-300 x 200-330 px blobs and noise,
generated once into the temp folder and reused). Backbone: the weights-free colour_texture
(what runs on any machine); batch size: the default.

Measurements per corpus (each run in a fresh process, writing a fresh store):

* **cold**, as a new user runs ``mis preprocess`` (no Ray running yet), alternating
  ``--repeats`` times, medians reported:
  - ``local``: the in-process executor;
  - ``ray``: the Ray executor with its defaults: the driver starts on the corpus and starts a
    local Ray only when its estimate of the remaining work pays for it, computing while Ray
    starts (``mis_pipeline.pipeline.ray_exec``); who computed what is recorded;
  - ``ray_only``: the Ray executor with ``preprocess.driver_works=false``: Ray started at
    once, every image computed by Ray workers; Ray's start-up is timed apart (``ray_start_s``)
    and the time to the first commit after it is the workers' warm-up (imports, Numba kernels).
* **warm**: one process per executor runs a 64-image warm-up first (for Ray: an instance
  already up, joined, its workers warm), then the timed run: a long corpus's steady state.

Every run also records the driver's time inside store commits (``commit_s``): the serial part
that Ray's workers cannot take. The local and Ray stores of a corpus must hold identical trees.
Ratios are ray/local wall times (below 1: Ray is faster). The load average of the host is
recorded: timings on a shared machine vary; compare ratios of back-to-back runs.
"""

from __future__ import annotations

import argparse
import json
import math
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
VARIANTS = {
    "local": {"executor": "local"},
    "ray": {"executor": "ray"},
    "ray_only": {"executor": "ray", "driver_works": False},
}


# --------------------------------------------------------------------------- child process
def _child(variant: str, listing: str, out: str, warm: str | None) -> None:
    """One timed run in this (fresh) process; prints one JSON line."""
    t_start = time.perf_counter()
    from mis_pipeline.config import PipelineConfig, from_dict
    from mis_pipeline.pipeline import preprocess
    from mis_pipeline.store import TreeWriter

    commit_s = [0.0]
    real_commit = TreeWriter.commit

    def timed_commit(self, records):
        t = time.perf_counter()
        try:
            return real_commit(self, records)
        finally:
            commit_s[0] += time.perf_counter() - t

    TreeWriter.commit = timed_commit
    cfg = from_dict(PipelineConfig, {**OVERRIDES, "preprocess": VARIANTS[variant]})
    warm_s = None
    if warm is not None:
        if cfg.preprocess.executor == "ray":
            from mis_pipeline.pipeline.ray_exec import init_ray

            init_ray(None)  # warm: an instance that is already up is joined
        t0 = time.perf_counter()
        preprocess(warm, out + ".warm", cfg)
        warm_s = time.perf_counter() - t0
    commit_s[0] = 0.0
    marks: list[float] = []
    t0 = time.perf_counter()
    res = preprocess(listing, out, cfg, on_progress=lambda d, t: marks.append(time.perf_counter() - t0))
    run_s = time.perf_counter() - t0
    ex = res.extra
    print(json.dumps({
        "variant": variant,
        "import_s": round(t0 - t_start - (warm_s or 0.0), 3),
        "warm_up_s": None if warm_s is None else round(warm_s, 3),
        "run_s": round(run_s, 3),
        "first_commit_s": round(marks[1], 3) if len(marks) > 1 else None,
        "commit_s": round(commit_s[0], 3),
        "n_ok": res.n_ok,
        "n_failed": res.n_failed,
        "ray_started": bool(ex.get("ray_started", 0)),
        "ray_start_s": _seconds(ex.get("ray_start_s")),
        "driver_images": int(ex.get("driver_images", res.n_processed)),
        "ray_images": int(ex.get("ray_images", 0)),
        "cancelled_batches": int(ex.get("cancelled_batches", 0)),
        "estimate_s": _seconds(ex.get("estimate_s")),
    }))


def _seconds(value: float | None) -> float | None:
    """A duration for the JSON: None when missing or NaN (not measured in that run)."""
    return None if value is None or math.isnan(value) else round(value, 3)


def _spawn(variant: str, listing: Path, out: Path, warm: Path | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", variant, str(listing), str(out)]
    if warm is not None:
        cmd += ["--warm", str(warm)]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} run failed:\n{proc.stderr[-3000:]}")
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


def _summary(runs: list[dict], n: int) -> dict:
    out = {"run_s": _median(runs, "run_s"), "commit_s": _median(runs, "commit_s")}
    out["images_per_s"] = round(n / out["run_s"], 1)
    if runs[0]["variant"] != "local":
        out["ray_started_runs"] = sum(r["ray_started"] for r in runs)
        out["driver_images"] = int(statistics.median(r["driver_images"] for r in runs))
        out["ray_images"] = int(statistics.median(r["ray_images"] for r in runs))
        starts = [r["ray_start_s"] for r in runs if r["ray_start_s"] is not None]
        out["ray_start_s"] = round(statistics.median(starts), 3) if starts else None
        if out["ray_start_s"] is not None:
            firsts = [r["first_commit_s"] - r["ray_start_s"] for r in runs
                      if r["ray_start_s"] is not None and r["first_commit_s"] is not None]
            out["first_commit_after_start_s"] = round(statistics.median(firsts), 3) if firsts else None
            out["run_without_start_s"] = round(statistics.median(
                r["run_s"] - r["ray_start_s"] for r in runs if r["ray_start_s"] is not None), 3)
    out["runs"] = runs
    return out


def bench_corpus(name: str, files: list[Path], tmp: Path, repeats: int) -> dict:
    n = len(files)
    listing = _listing(files, tmp / f"{name}.txt")
    warm = _listing(files[-64:], tmp / f"{name}_warm.txt")
    cold: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for rep in range(repeats):
        for variant in VARIANTS:
            r = _spawn(variant, listing, tmp / f"{name}_{variant}_{rep}.zarr")
            cold[variant].append(r)
            print(f"{name:<16} cold {variant:<8} #{rep}: run {r['run_s']:6.2f} s (Ray start "
                  f"{r['ray_start_s']}, driver {r['driver_images']}, Ray {r['ray_images']} images; "
                  f"commits {r['commit_s']:.2f} s)", flush=True)
    identical = all(
        _same_trees(tmp / f"{name}_local_0.zarr", tmp / f"{name}_{v}_0.zarr") for v in VARIANTS if v != "local"
    )
    warm_runs = {}
    for variant in ("local", "ray"):
        r = _spawn(variant, listing, tmp / f"{name}_{variant}_warm.zarr", warm=warm)
        warm_runs[variant] = {**r, "images_per_s": round(n / r["run_s"], 1)}
        print(f"{name:<16} warm {variant:<8}: run {r['run_s']:6.2f} s ({n / r['run_s']:.1f} images/s)", flush=True)
    identical = identical and _same_trees(tmp / f"{name}_local_0.zarr", tmp / f"{name}_ray_warm.zarr")
    c = {v: _summary(runs, n) for v, runs in cold.items()}
    local_run = c["local"]["run_s"]
    summary = {
        "corpus": name,
        "images": n,
        "cold": {
            **c,
            "ratio_ray_local": round(c["ray"]["run_s"] / local_run, 2),
            "ratio_ray_only_local": round(c["ray_only"]["run_s"] / local_run, 2),
            "ratio_ray_only_local_without_start": None if c["ray_only"].get("run_without_start_s") is None
            else round(c["ray_only"]["run_without_start_s"] / local_run, 2),
        },
        "warm": {
            **warm_runs,
            "ratio_ray_local": round(warm_runs["ray"]["run_s"] / warm_runs["local"]["run_s"], 2),
        },
        "identical_trees": identical,
    }
    sc, w = summary["cold"], summary["warm"]
    print(f"{name:<16} ray/local cold {sc['ratio_ray_local']:.2f} (Ray started in "
          f"{c['ray']['ray_started_runs']}/{repeats} runs); Ray only {sc['ratio_ray_only_local']:.2f} "
          f"(without start-up {sc['ratio_ray_only_local_without_start']}); warm {w['ratio_ray_local']:.2f}; "
          f"identical trees: {identical}", flush=True)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=HORSES, help="folder of the real images (PNG)")
    ap.add_argument("--sizes", default="40,327", help="comma-separated counts of real images")
    ap.add_argument("--synthetic", type=int, default=2000, help="synthetic corpus size (0: none)")
    ap.add_argument("--repeats", type=int, default=2, help="cold runs per executor (medians)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "pipeline.json")
    ap.add_argument("--child", nargs=3, metavar=("VARIANT", "LISTING", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--warm", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child, warm=args.warm)
        return
    import ray

    from mis_pipeline.config import PipelineConfig, from_dict
    from mis_pipeline.pipeline.ray_exec import ray_min_local_s

    threshold = ray_min_local_s(from_dict(PipelineConfig, OVERRIDES))
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
        "ray_min_local_s": round(threshold, 2),
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
