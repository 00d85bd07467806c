"""Ray executor vs in-process executor on the same images and cores.

    ip netns exec mis env RAY_USAGE_STATS_ENABLED=0 \\
        .venv/bin/python benchmarks/bench_pipeline.py [--images DIR] [--n 200] [--vit-n 40]

Runs (1) colour_texture on N Weizmann horses at their size and (2) a randomly initialised
DINO ViT-S/8 (``features.weights=none``) on ``--vit-n`` horses resized to a longer side of
224 px, each with ``--executor local`` then ``--executor ray`` (a local Ray started once with
all cores, start-up timed separately), into fresh stores, each after a warm-up run on 64
images (imports, Numba kernels, Ray worker processes; its time is printed too). Prints wall
times, images/s and the ray/local wall ratio, and checks both stores hold the same trees.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from mis_pipeline.config import PipelineConfig, from_dict
from mis_pipeline.pipeline import preprocess
from mis_pipeline.store import TreeStore

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "WeizmannHorse" / "images"


def _same(a: Path, b: Path) -> bool:
    sa, sb = TreeStore.open(a), TreeStore.open(b)
    if sorted(sa.image_ids) != sorted(sb.image_ids):
        return False
    return all(sa.get(i).tree == sb.get(i).tree for i in sa.image_ids)


def run(label: str, listing: Path, overrides: dict, tmp: Path, n: int, compute: str = "auto") -> None:
    walls = {}
    warm = tmp / f"warm_{label}.txt"
    warm.write_text("".join(listing.read_text().splitlines(keepends=True)[-64:]))
    for executor in ("local", "ray"):
        ov = {**overrides, "preprocess": {**overrides.get("preprocess", {}), "executor": executor,
                                          "feature_compute": compute}}
        cfg = from_dict(PipelineConfig, ov)
        # warm-up (64 images, another store): imports, Numba kernels, both Ray worker processes
        t0 = time.perf_counter()
        preprocess(warm, tmp / f"{label}_{executor}_{compute}_warm.zarr", cfg)
        cold = time.perf_counter() - t0
        out = tmp / f"{label}_{executor}.zarr"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        t0 = time.perf_counter()
        res = preprocess(listing, out, cfg)
        walls[executor] = time.perf_counter() - t0
        print(f"{label:<28} {executor:<6} warm-up run {cold:5.1f} s")
        print(f"{label:<28} {executor:<6} {walls[executor]:7.1f} s  {n / walls[executor]:7.2f} images/s  "
              f"({res.n_ok} ok, {res.n_failed} failed, {res.summary.bytes_per_merge:.2f} B/merge)")
    same = _same(tmp / f"{label}_local.zarr", tmp / f"{label}_ray.zarr")
    print(f"{label:<28} ray({compute})/local wall ratio {walls['ray'] / walls['local']:.2f}  identical trees: {same}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=DATA)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--vit-n", type=int, default=40)
    ap.add_argument("--actors-too", action="store_true", help="also time the feature actor pool on CPUs")
    args = ap.parse_args()
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    print(f"ray.init (local, {os.cpu_count()} CPUs): {time.perf_counter() - t0:.1f} s (not included below)")
    files = sorted(args.images.glob("*.png"))
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        for n, label, ov in (
            (args.n, "colour_texture", {"features": {"backbone": "colour_texture"}}),
            (args.vit_n, "vit_s8 random @224", {"features": {"backbone": "dino_vits8", "weights": "none", "device": "cpu"},
                                                 "io": {"max_side": 224}}),
        ):
            if n <= 0:
                continue
            listing = tmp / f"list_{label.split()[0]}.txt"
            listing.write_text("\n".join(str(p) for p in files[:n]) + "\n")
            for compute in ("auto", "actors") if args.actors_too else ("auto",):
                run(label.split()[0], listing, ov, tmp, n, compute)
    ray.shutdown()


if __name__ == "__main__":
    main()
