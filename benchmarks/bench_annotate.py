"""Time per click of ``mis annotate`` with the tree predictor on GrabCut images.

Three figures per click, on the evaluation protocol's clicks (the clicker's next click on the
mask the page shows, the first ``--clicks`` clicks of each image):

- ``predict_ms``: the server's own time in ``predictor.predict`` (MRF + guided filter), the
  ``server_ms`` every click response carries;
- ``request_ms``: the whole API request in process (Starlette's TestClient: JSON, predictor,
  threshold, run-length encoding of the mask);
- ``browser_ms``: in headless Chromium (Debian's package, driven by Playwright), from the
  mouse-down event's time stamp to the animation frame after the overlay was drawn, server
  on 127.0.0.1 (what the page itself shows as click->overlay).

Two image sizes: GrabCut as published (0.09-0.31 megapixels) and the same images upscaled
(bicubic; masks nearest) to 0.5 megapixels, the size of the goal (under 150 ms per click on
2 cores). The machine is shared with other work, so its load average is recorded beside the
figures. Writes ``benchmarks/results/annotate.json``.

Run from the project root::

    .venv/bin/python benchmarks/bench_annotate.py [--images 10] [--clicks 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GRABCUT = ROOT.parent / "shared" / "data" / "GrabCut"
OUT = ROOT / "benchmarks" / "results" / "annotate.json"

from mis_pipeline.annotate import Annotator, create_app, run_in_background  # noqa: E402
from mis_pipeline.annotate.rle import CANVAS_RLE_JS, decode_rows  # noqa: E402
from mis_pipeline.evaluate import Clicker, open_dataset  # noqa: E402


def prepare(samples, folder: Path, megapixels: float | None):  # type: ignore[no-untyped-def]
    """Write the samples' images as PNGs into ``folder`` (resized to ``megapixels`` if given);
    return ``[(stem, gt, ignore)]`` at the written size, in the folder's sorted order."""
    from PIL import Image

    folder.mkdir(parents=True)
    out = []
    for s in samples:
        img, gt, ign = s.image, s.gt, s.ignore
        if megapixels is not None:
            h, w = gt.shape
            f = np.sqrt(megapixels * 1e6 / (h * w))
            size = (round(w * f), round(h * f))
            img = np.asarray(Image.fromarray(img).resize(size, Image.BICUBIC))
            gt = np.asarray(Image.fromarray(gt).resize(size, Image.NEAREST))
            ign = None if ign is None else np.asarray(Image.fromarray(ign).resize(size, Image.NEAREST))
        Image.fromarray(img).save(folder / f"{s.sample_id}.png", compress_level=1)
        out.append((s.sample_id, gt, ign))
    return sorted(out, key=lambda t: t[0])


def server_times(annotator: Annotator, targets, n_clicks: int) -> list[dict]:  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    client = TestClient(create_app(annotator))
    h = {"X-MIS-Session": client.post("/api/session", json={}).json()["session"]}
    rows = []
    for index, (stem, gt, ign) in enumerate(targets):
        state = client.post("/api/open", json={"index": index}, headers=h).json()
        clicker = Clicker(gt, ign)
        mask = decode_rows(state["mask"])
        for _ in range(n_clicks):
            c = clicker.make_next_click(mask)
            if c is None:
                break
            t0 = time.perf_counter()
            r = client.post("/api/click", json={"index": index, "row": c.row, "col": c.col,
                                                "positive": c.is_positive}, headers=h)
            request_ms = (time.perf_counter() - t0) * 1000
            state = r.json()
            mask = decode_rows(state["mask"])
            rows.append({"image": stem, "predict_ms": state["server_ms"], "request_ms": round(request_ms, 3)})
    return rows


def browser_times(annotator: Annotator, targets, n_clicks: int) -> list[dict]:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian's chromium is needed: apt-get install -y chromium")
    server, thread, url = run_in_background(annotator, "127.0.0.1", 0)
    rows: list[dict] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})  # 0.5 MP images at 1:1
            page.goto(url + "/")
            page.wait_for_function("() => window.misStats && window.misStats.ready", timeout=120_000)
            page.locator("#hover-toggle").uncheck()  # the clicks alone, no preview traffic
            done = 0
            for index, (stem, gt, ign) in enumerate(targets):
                page.locator("#image-list li").nth(index).click()
                page.wait_for_function(f"() => window.misStats.opened === {index} && "
                                       f"document.getElementById('photo').complete", timeout=120_000)
                clicker = Clicker(gt, ign)
                for _ in range(n_clicks):
                    mask = decode_rows(page.evaluate(CANVAS_RLE_JS, "overlay"))
                    c = clicker.make_next_click(mask)
                    if c is None:
                        break
                    box = page.locator("#points").bounding_box()
                    h, w = gt.shape
                    x = box["x"] + (c.col + 0.5) * box["width"] / w
                    y = box["y"] + (c.row + 0.5) * box["height"] / h
                    page.mouse.click(x, y, button="left" if c.is_positive else "right")
                    done += 1
                    page.wait_for_function(f"() => window.misStats.clicks.length === {done}", timeout=60_000)
                    st = page.evaluate("() => window.misStats.clicks[window.misStats.clicks.length - 1]")
                    assert (st["row"], st["col"]) == (c.row, c.col), (st, c)
                    rows.append({"image": stem, "predict_ms": st["server_ms"], "browser_ms": round(st["total_ms"], 3)})
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return rows


def summary(values: list[float]) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {"n": int(a.size), "median": round(float(np.median(a)), 2), "mean": round(float(a.mean()), 2),
            "p90": round(float(np.percentile(a, 90)), 2), "max": round(float(a.max()), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=10, help="GrabCut images (spread over the 50)")
    ap.add_argument("--clicks", type=int, default=5, help="protocol clicks per image")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    ds = open_dataset("grabcut", GRABCUT)
    idx = np.linspace(0, len(ds) - 1, args.images).round().astype(int)
    samples = [ds.load(int(i)) for i in idx]
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, mp in (("grabcut", None), ("0.5MP", 0.5)):
            folder = Path(tmp) / label
            targets = prepare(samples, folder / "images", mp)
            annotator = Annotator(folder / "images", folder / "masks")
            annotator.warmup()
            t_server = server_times(annotator, targets, args.clicks)
            t_browser = browser_times(annotator, targets, args.clicks)
            pixels = [int(gt.size) for _, gt, _ in targets]
            results[label] = {
                "megapixels": {"min": round(min(pixels) / 1e6, 3), "max": round(max(pixels) / 1e6, 3)},
                "predict_ms": summary([r["predict_ms"] for r in t_server]),
                "request_ms": summary([r["request_ms"] for r in t_server]),
                "browser_predict_ms": summary([r["predict_ms"] for r in t_browser]),
                "browser_ms": summary([r["browser_ms"] for r in t_browser]),
                "goal_150ms_met_by_median_browser": bool(np.median([r["browser_ms"] for r in t_browser]) < 150),
                "per_click": {"server": t_server, "browser": t_browser},
            }
            print(f"{label}: predict median {results[label]['predict_ms']['median']} ms, request "
                  f"{results[label]['request_ms']['median']} ms, browser click->overlay "
                  f"{results[label]['browser_ms']['median']} ms (p90 {results[label]['browser_ms']['p90']})")
    chromium = subprocess.run(["chromium", "--version"], capture_output=True, text=True).stdout.strip()
    payload = {
        "benchmark": "mis annotate time per click, tree predictor (default settings), GrabCut",
        "command": "python benchmarks/bench_annotate.py " + " ".join(sys.argv[1:]),
        "images": [s.sample_id for s in samples],
        "clicks_per_image": args.clicks,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "chromium": chromium, "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
