"""Speed of the evaluation machinery on GrabCut images (same process, ratios against references).

1. Clicker: the exact integer squared distance transform the clicker uses (compiled kernel)
   against its reference (scipy's feature transform) and against OpenCV's precise float32
   transform (the call RITM makes, not exact to the last bit), on the first-click situation of
   each image (empty prediction), best of N.
2. Tree predictor: seconds of per-image setup (features + Ward tree) and per click (MRF +
   guided filter), on the images' first five protocol clicks; the figure the protocol reports
   (``seconds_per_click``) spreads the setup over the 20 clicks of a sample.
3. The tree MRF kernel against its plain-Python reference on one real tree.

Run from the project root (writes ``benchmarks/results/bench_evaluate.json``)::

    .venv/bin/python benchmarks/bench_evaluate.py [--images 10] [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GRABCUT = ROOT.parent / "shared" / "data" / "GrabCut"

from mis_pipeline.evaluate import Clicker, make_predictor, open_dataset  # noqa: E402
from mis_pipeline.evaluate.clicker import _squared_edt_padded, _squared_edt_reference  # noqa: E402
from mis_pipeline.evaluate.tree_mrf import label_tree, label_tree_reference  # noqa: E402


def best_of(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=10, help="GrabCut images to use (spread over the 50)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_evaluate.json")
    args = ap.parse_args()
    ds = open_dataset("grabcut", GRABCUT)
    idx = np.linspace(0, len(ds) - 1, args.images).round().astype(int)
    samples = [ds.load(int(i)) for i in idx]

    import cv2

    def opencv(m: np.ndarray) -> np.ndarray:
        padded = np.pad(m, 1).astype(np.uint8)
        return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]

    fast = ref = ocv = 0.0
    for s in samples:
        fn = s.gt & ~(s.ignore if s.ignore is not None else np.zeros_like(s.gt))
        fast += best_of(lambda fn=fn: _squared_edt_padded(fn), args.repeats)
        ref += best_of(lambda fn=fn: _squared_edt_reference(fn), args.repeats)
        ocv += best_of(lambda fn=fn: opencv(fn), args.repeats)
    k = len(samples)
    print(f"clicker EDT per map: exact kernel {fast / k * 1e3:.1f} ms, scipy reference {ref / k * 1e3:.1f} ms "
          f"({ref / fast:.1f}x), OpenCV float32 (RITM) {ocv / k * 1e3:.1f} ms ({ocv / fast:.2f}x)")

    pred = make_predictor("tree")
    pred.warmup()
    setup, per_click = [], []
    for s in samples:
        setup.append(best_of(lambda s=s: pred.reset(s.image), args.repeats))
        clicker = Clicker(s.gt, s.ignore)
        prob = np.zeros(s.gt.shape, np.float32)
        for _ in range(5):
            clicker.make_next_click(prob > 0.49)
            t = time.perf_counter()
            prob = pred.predict(clicker.clicks, prob)
            per_click.append(time.perf_counter() - t)
    su, pc = float(np.mean(setup)), float(np.mean(per_click))
    print(f"tree predictor: setup {su * 1e3:.0f} ms / image, {pc * 1e3:.0f} ms / click; "
          f"protocol seconds_per_click (20 clicks) ~ {(su + 20 * pc) / 20:.3f} s")

    it = pred.image_tree
    n = it.tree.n_leaves
    rng = np.random.default_rng(0)
    fg, bg, cut = rng.random(n), rng.random(n), rng.random(2 * n - 1)
    k = best_of(lambda: label_tree(it.tree.children, fg, bg, cut), args.repeats)
    r = best_of(lambda: label_tree_reference(it.tree.children, fg, bg, cut), 1)
    print(f"tree MRF on {n} leaves: kernel {k * 1e3:.2f} ms, reference {r * 1e3:.0f} ms ({r / k:.0f}x)")
    result = {
        "images": int(len(samples)),
        "repeats": args.repeats,
        "load_average_1min": os.getloadavg()[0],
        "clicker_edt_ms_per_map": {
            "exact_kernel": fast / len(samples) * 1e3,
            "scipy_reference": ref / len(samples) * 1e3,
            "opencv_float32_ritm": ocv / len(samples) * 1e3,
        },
        "tree_predictor": {"setup_ms_per_image": su * 1e3, "ms_per_click": pc * 1e3,
                           "protocol_seconds_per_click_20": (su + 20 * pc) / 20},
        "tree_mrf": {"leaves": int(n), "kernel_ms": k * 1e3, "reference_ms": r * 1e3},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
