"""Speed of whole training samples (448 crops) on a store of the 327 Weizmann horses.

A "whole sample" counts everything the data layer does for one training example: decode,
tree (read + index; LRU-cached per process), proposal, node mask, augmentation, clicks, and
the click disk maps (numpy, as a CPU trainer would build them; on a GPU the model builds them
on the device). Reported:

1. single process, one thread (``cv2.setNumThreads(1)``, ``torch.set_num_threads(1)``): ms per
   sample and per component, samples/s per core, and the ratio to a *bare decode* of the same
   image files in the same process (``PIL.Image.open(path).convert("RGB")`` to a numpy array,
   the images of the same samples, in the same order). The two are timed in interleaved
   blocks (decode block, sample block, ...) so that load changes on a shared machine hit both;
   the same with ``data.decoder = "cv2"`` (OpenCV decode) in the same interleaving;
2. ``torch.utils.data.DataLoader`` with 2 worker processes (collate to torch, no disk maps):
   samples/s, against the single-process figure without disk maps measured in this run;
3. Ray Data (``ProposalDataset.to_ray``, ``iter_torch_batches``) on a local Ray with 2 CPUs,
   same comparison (start-up and a warm-up epoch excluded).
   Before each parallel run, ``cpu_scaling_2_processes`` records what a pure CPU loop gains from
   a second process on the host at that moment (2.0 on two idle cores): on a shared machine
   the parallel speed-ups are only meaningful against it. Needs the loopback-only network
   namespace on CI machines: ``ip netns exec mis env PATH=$PATH python benchmarks/...``;
   ``--no-ray`` skips it.

The public isegm path MIS uses takes about 15 ms per sample (decode 2.2, augmentation 3.7,
sampler 6.4), about 6.8 bare decodes; the goal here is at most 4 bare decodes per sample.

Run from the project root::

    .venv/bin/python benchmarks/bench_samples.py [--samples 654] [--store PATH] [--no-ray]

Results go to ``benchmarks/results/samples.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HORSES = ROOT.parent / "shared" / "data" / "WeizmannHorse" / "images"
OUT = ROOT / "benchmarks" / "results" / "samples.json"

from mis_pipeline.config import DataConfig, PipelineConfig, from_dict, to_dict  # noqa: E402
from mis_pipeline.data import ProposalDataset, collate  # noqa: E402

STORE_OVERRIDES = {"features": {"backbone": "colour_texture"}, "preprocess": {"executor": "local", "batch_size": 32}}
COMPONENTS = ("decode", "tree", "proposal", "mask", "augment", "clicks", "disk_maps")


def bare_decode(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def single_process(datasets: dict[str, ProposalDataset], n: int, epoch: int, block: int) -> dict:
    """Interleaved blocks of bare decodes and whole samples of each dataset, same images.

    Every block of ``block`` sample indices is timed as bare decodes of its images, then the
    samples of each dataset in turn (the order rotating from block to block), so that load
    changes on a shared machine hit all of them alike. Returns one result per dataset.
    """
    from mis_pipeline.clicks import click_maps

    names = list(datasets)
    first = datasets[names[0]]
    comp = {name: dict.fromkeys((*COMPONENTS, "other"), 0.0) for name in names}
    t_sample = dict.fromkeys(names, 0.0)
    t_decode = 0.0
    for b, lo in enumerate(range(0, n, block)):
        idx = range(lo, min(lo + block, n))
        paths = [first.image_path(first.image_of(i, epoch)) for i in idx]
        t0 = time.perf_counter()
        for p in paths:
            bare_decode(p)
        t_decode += time.perf_counter() - t0
        for name in names[b % len(names):] + names[: b % len(names)]:
            ds = datasets[name]
            crop, radius = ds.crop_size, ds.config.clicks.radius
            t1 = time.perf_counter()
            for i in idx:
                s, times = ds.timed_sample(i, epoch)
                t2 = time.perf_counter()
                click_maps(s["points"], s["labels"], s["valid"], (crop, crop), radius)
                comp[name]["disk_maps"] += time.perf_counter() - t2
                for k, v in times.items():
                    comp[name][k if k in comp[name] else "other"] += v
            t_sample[name] += time.perf_counter() - t1
    per_decode = 1e3 * t_decode / n
    out = {}
    for name in names:
        ms = {k: 1e3 * v / n for k, v in comp[name].items()}
        per_sample = 1e3 * t_sample[name] / n
        out[name] = {
            "samples": n,
            "ms_per_sample": round(per_sample, 3),
            "ms_per_sample_without_disk_maps": round(per_sample - ms["disk_maps"], 3),
            "ms_per_bare_decode": round(per_decode, 3),
            "bare_decodes_per_sample": round(per_sample / per_decode, 2),
            "samples_per_s_per_core": round(1e3 / per_sample, 1),
            "samples_per_s_without_disk_maps": round(1e3 / (per_sample - ms["disk_maps"]), 1),
            "ms_per_component": {k: round(v, 3) for k, v in ms.items()},
            "component_in_bare_decodes": {k: round(v / per_decode, 3) for k, v in ms.items()},
        }
    return out


def _spin(n: int) -> int:
    s = 0
    for i in range(n):
        s += i * i
    return s


def cpu_scaling(n: int = 2_000_000, repeats: int = 3) -> float:
    """Throughput of a pure-Python CPU loop in 2 processes over 1, back to back (best of
    ``repeats``): how much a second process can gain on this host right now (2.0 on two idle
    cores, less when other work shares them). The parallel figures are read against it."""
    import multiprocessing as mp

    best = {1: float("inf"), 2: float("inf")}
    with mp.get_context("fork").Pool(2) as pool:
        for _ in range(repeats):
            for procs in (1, 2):
                t0 = time.perf_counter()
                if procs == 1:
                    [_spin(n) for _ in range(4)]
                else:
                    pool.map(_spin, [n] * 4)
                best[procs] = min(best[procs], time.perf_counter() - t0)
    return round(best[1] / best[2], 2)


def dataloader(ds: ProposalDataset, epoch: int, workers: int, batch: int) -> dict:
    from torch.utils.data import DataLoader

    tds = ds.torch_dataset(epoch)
    loader = DataLoader(tds, batch_size=batch, num_workers=workers, collate_fn=collate,
                        persistent_workers=False, prefetch_factor=4 if workers else None)
    it = iter(loader)
    first = next(it)  # worker start-up excluded: the clock starts at the first batch
    t0 = time.perf_counter()
    count = 0
    for b in it:
        count += int(b["index"].shape[0])
    el = time.perf_counter() - t0
    del first
    return {"workers": workers, "batch_size": batch, "samples": count, "samples_per_s": round(count / el, 1)}


def ray_data(ds: ProposalDataset, epoch: int, batch: int) -> dict:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        for _ in ds.to_ray(epoch=epoch + 100, batch_size=batch).iter_torch_batches(batch_size=batch):
            pass  # warm-up: worker start-up, imports, tree caches
        t0 = time.perf_counter()
        count = 0
        for b in ds.to_ray(epoch=epoch, batch_size=batch).iter_torch_batches(batch_size=batch):
            count += int(b["index"].shape[0])
        el = time.perf_counter() - t0
    finally:
        ray.shutdown()
    return {"cpus": 2, "batch_size": batch, "samples": count, "samples_per_s": round(count / el, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=654, help="samples per measurement (2 per horse)")
    ap.add_argument("--store", type=Path, default=None, help="existing horse store (default: built in a temp dir)")
    ap.add_argument("--block", type=int, default=32, help="interleaving block (decodes / samples)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--no-loader", action="store_true")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    tmp = None
    store = args.store
    if store is None:
        from mis_pipeline.pipeline import preprocess

        tmp = tempfile.TemporaryDirectory()
        store = Path(tmp.name) / "horses.zarr"
        preprocess(HORSES, store, from_dict(PipelineConfig, STORE_OVERRIDES))
    cfg = from_dict(DataConfig, {"epoch_size": args.samples})
    ds = ProposalDataset(store, seed=0, config=cfg)
    ds_cv2 = ProposalDataset(store, seed=0, config=from_dict(DataConfig, {"epoch_size": args.samples,
                                                                          "decoder": "cv2"}))
    for i in range(min(64, args.samples)):  # warm-up: imports, numba kernels, first tree reads
        ds.sample(i, epoch=99)
        ds_cv2.sample(i, epoch=99)
    both = single_process({"pil": ds, "cv2": ds_cv2}, args.samples, epoch=0, block=args.block)
    res = {
        "what": "whole training samples (448 crops) from a store of the 327 Weizmann horses",
        "store": {"images": ds.n_images, "backbone": "colour_texture"},
        "data_config": to_dict(cfg),
        "host": {"python": platform.python_version(), "machine": platform.machine(),
                 "cpus": os.cpu_count(), "load_average_at_start": list(os.getloadavg())},
        "single_process": both["pil"],
        "single_process_cv2_decoder": both["cv2"],
        "reference_isegm": {"ms_per_sample": 15.0, "bare_decodes_per_sample": 6.8, "samples_per_s_per_core": 67},
        "goal_bare_decodes_per_sample": 4.0,
    }
    sp = res["single_process"]
    print(f"single process: {sp['ms_per_sample']:.2f} ms/sample = {sp['bare_decodes_per_sample']:.2f} bare decodes "
          f"({sp['ms_per_bare_decode']:.2f} ms), {sp['samples_per_s_per_core']:.0f} samples/s per core")
    print("  components (ms): " + ", ".join(f"{k} {v:.3f}" for k, v in sp["ms_per_component"].items()))
    sc = res["single_process_cv2_decoder"]
    print(f"  with data.decoder=cv2: {sc['ms_per_sample']:.2f} ms/sample = {sc['bare_decodes_per_sample']:.2f} "
          f"bare decodes, {sc['samples_per_s_per_core']:.0f} samples/s per core")
    def sandwich(name: str, run, epoch: int) -> dict:  # type: ignore[no-untyped-def]
        """``run()`` between two single-process measurements of 128 samples (the reference is
        their mean rate, samples as delivered: no disk maps), with the host's CPU scaling."""
        before = single_process({"pil": ds}, 128, epoch=epoch, block=args.block)["pil"]
        scaling = cpu_scaling()
        out = run()
        after = single_process({"pil": ds}, 128, epoch=epoch + 50, block=args.block)["pil"]
        ref = (before["samples_per_s_without_disk_maps"] + after["samples_per_s_without_disk_maps"]) / 2
        out["single_process_samples_per_s"] = round(ref, 1)
        out["speedup_vs_single_process"] = round(out["samples_per_s"] / ref, 2)
        out["cpu_scaling_2_processes"] = scaling
        print(f"{name}: {out['samples_per_s']:.0f} samples/s ({out['speedup_vs_single_process']:.2f}x the single "
              f"process around it; a pure CPU loop gains {scaling:.2f}x from 2 processes on this host now)")
        return out

    if not args.no_loader:
        res["dataloader_2_workers"] = sandwich(
            "DataLoader 2 workers", lambda: dataloader(ds, epoch=2, workers=2, batch=args.batch), epoch=1)
    if not args.no_ray:
        res["ray_data_2_cpus"] = sandwich("Ray Data 2 CPUs", lambda: ray_data(ds, epoch=3, batch=args.batch), epoch=4)
    res["host"]["load_average_at_end"] = list(os.getloadavg())
    res["command"] = "python benchmarks/bench_samples.py" + (" --no-ray" if args.no_ray else "")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
