"""The annotation page in a real browser: Debian's Chromium driven by Playwright.

The server runs on 127.0.0.1 (a free port) in a background thread; the page is opened on three
GrabCut images plus one corrupt file. The test clicks where the evaluation clicker puts its
first click, checks the overlay's pixels against the tree predictor called directly (same mask,
hence same IoU), undoes, saves, checks the file, opens the corrupt image (shown as failed) and
goes back, and fails on any console error, page error or failed request.

Chromium comes from the distribution (``apt-get install chromium``), never from a download.
When it is missing the test FAILS (it does not skip): the browser is part of what CI must
provide (``.ci/run`` installs it).

A screenshot is saved under the test's tmp path; with ``MIS_ANNOTATE_SCREENSHOT=PATH`` it is
also written to PATH (``benchmarks/annotate_screenshot.py`` uses this for ``docs/annotate.png``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from mis_pipeline.annotate import Annotator, run_in_background
from mis_pipeline.annotate.rle import CANVAS_RLE_JS, decode_rows
from mis_pipeline.config import PipelineConfig
from mis_pipeline.evaluate.clicker import Clicker
from mis_pipeline.evaluate.datasets import GrabCutDataset
from mis_pipeline.evaluate.metrics import iou
from mis_pipeline.evaluate.predictors import make_predictor

pytestmark = [pytest.mark.data, pytest.mark.slow]

IDS = ["banana1", "book", "llama"]


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "Debian's Chromium is not installed (no 'chromium' on PATH): install it with "
            "'apt-get install -y chromium'; the browser test does not download a browser"
        )
    return path


@pytest.fixture
def served(grabcut_dir: Path, tmp_path: Path):
    ds = GrabCutDataset(grabcut_dir)
    images = tmp_path / "images"
    images.mkdir()
    samples = {}
    for sid in IDS:
        i = ds.ids.index(sid)
        src = ds._pairs[i][1]
        shutil.copy(src, images / src.name)
        samples[sid] = ds.load(i)
    data = (images / "book.bmp").read_bytes()
    (images / "zz_corrupt.bmp").write_bytes(data[: len(data) // 2])  # header fine, pixels cut
    annotator = Annotator(images, tmp_path / "masks")
    annotator.warmup()
    server, thread, url = run_in_background(annotator, "127.0.0.1", 0)
    try:
        yield url, annotator, samples, tmp_path
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def first_click(sample):
    clicker = Clicker(sample.gt, sample.ignore)
    return clicker.make_next_click(np.zeros_like(sample.gt))


def client_xy(page, row: int, col: int, shape: tuple[int, int]) -> tuple[float, float]:
    box = page.locator("#points").bounding_box()
    h, w = shape
    return box["x"] + (col + 0.5) * box["width"] / w, box["y"] + (row + 0.5) * box["height"] / h


def test_annotate_page_in_chromium(served):
    from playwright.sync_api import sync_playwright

    url, annotator, samples, tmp_path = served
    cfg = PipelineConfig()
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1040, "height": 660})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
            page.goto(url + "/")
            page.wait_for_function("() => window.misStats && window.misStats.ready", timeout=60_000)
            items = page.locator("#image-list li")
            assert items.count() == 4
            assert "shortcuts" in page.content().lower() or "<kbd>z</kbd>" in page.content()

            for k, sid in enumerate(IDS[:2]):
                sample = samples[sid]
                shape = sample.gt.shape
                if k:
                    page.evaluate("() => { window.misStats.lastHover = null; }")
                    page.keyboard.press("n")
                    page.wait_for_function(f"() => window.misStats.opened === {k}")
                assert page.locator("#image-name").inner_text() == annotator.images.entries[k].image_id
                c = first_click(sample)
                assert c is not None and c.is_positive
                x, y = client_xy(page, c.row, c.col, shape)
                # hover first: the preview of the merge-tree region appears
                page.mouse.move(x, y)
                page.wait_for_function("() => window.misStats.lastHover !== null && "
                                       f"window.misStats.lastHover.size[0] === {shape[0]}", timeout=30_000)
                hover = decode_rows(page.evaluate("() => window.misStats.lastHover"))
                assert hover[c.row, c.col]
                outline = decode_rows(page.evaluate(CANVAS_RLE_JS, "hover"))
                assert outline.any()  # drawn as the region's border
                page.mouse.click(x, y)
                page.wait_for_function(f"() => window.misStats.clicks.length === {k + 1}", timeout=30_000)
                shown = decode_rows(page.evaluate(CANVAS_RLE_JS, "overlay"))
                stat = page.evaluate("window.misStats.clicks[window.misStats.clicks.length - 1]")
                assert (stat["row"], stat["col"], stat["positive"]) == (c.row, c.col, True)

                direct = make_predictor("tree", cfg)
                direct.reset(sample.image)
                want = direct.predict([c], np.zeros(shape, np.float32)) > cfg.evaluate.pred_threshold
                assert np.array_equal(shown, want)
                assert iou(shown, sample.gt, sample.ignore) == iou(want, sample.gt, sample.ignore)
                assert iou(shown, sample.gt, sample.ignore) > 0.3, "the first click should find the object"

            # undo, click again, save with the keyboard
            page.keyboard.press("z")
            page.wait_for_function("() => document.getElementById('n-clicks').textContent === '0'")
            assert not decode_rows(page.evaluate(CANVAS_RLE_JS, "overlay")).any()
            page.mouse.click(x, y)
            page.wait_for_function("() => window.misStats.clicks.length === 3")
            shown = decode_rows(page.evaluate(CANVAS_RLE_JS, "overlay"))
            page.keyboard.press("s")
            page.wait_for_function("() => document.getElementById('message').textContent.startsWith('saved')")
            saved = tmp_path / "masks" / f"{IDS[1]}.png"
            from PIL import Image

            with Image.open(saved) as im:
                assert im.mode == "L"
                assert np.array_equal(np.asarray(im) == 255, shown)
            assert "done" in (items.nth(1).get_attribute("class") or "")
            page.keyboard.press("r")  # reset: no clicks, empty overlay; the saved file stays
            page.wait_for_function("() => document.getElementById('n-clicks').textContent === '0'")
            assert not decode_rows(page.evaluate(CANVAS_RLE_JS, "overlay")).any()
            assert saved.is_file()

            # the corrupt image shows as failed; the others keep working
            items.nth(3).click()
            page.wait_for_function("() => window.misStats.opened === 3")
            assert "failed" in (items.nth(3).get_attribute("class") or "")
            assert "cannot be decoded" in page.locator("#message").inner_text()
            page.keyboard.press("p")
            page.wait_for_function("() => window.misStats.opened === 2")
            sample = samples[IDS[2]]
            c = first_click(sample)
            x, y = client_xy(page, c.row, c.col, sample.gt.shape)
            page.mouse.click(x, y)
            page.wait_for_function("() => window.misStats.clicks.length === 4")
            assert decode_rows(page.evaluate(CANVAS_RLE_JS, "overlay"))[c.row, c.col]
            # the protocol's second click, a negative click with the right button on the
            # background pixel farthest from the object, then a hover preview for the picture
            shown = decode_rows(page.evaluate(CANVAS_RLE_JS, "overlay"))
            clicker = Clicker(sample.gt, sample.ignore, clicks=[c])
            c2 = clicker.make_next_click(shown)
            x2, y2 = client_xy(page, c2.row, c2.col, sample.gt.shape)
            page.mouse.click(x2, y2, button="left" if c2.is_positive else "right")
            page.wait_for_function("() => window.misStats.clicks.length === 5")
            far = np.unravel_index(np.argmax(distance_transform_edt(~sample.gt)), sample.gt.shape)
            x3, y3 = client_xy(page, int(far[0]), int(far[1]), sample.gt.shape)
            page.mouse.click(x3, y3, button="right")
            page.wait_for_function("() => window.misStats.clicks.length === 6")
            last = page.evaluate("() => window.misStats.clicks[5]")
            assert (last["row"], last["col"], last["positive"]) == (int(far[0]), int(far[1]), False)
            assert page.locator("#n-clicks").inner_text() == "3"
            # shift + left click is negative too; undo it again
            page.keyboard.down("Shift")
            page.mouse.click((x + x3) / 2, y3)
            page.keyboard.up("Shift")
            page.wait_for_function("() => window.misStats.clicks.length === 7")
            assert page.evaluate("() => window.misStats.clicks[6].positive") is False
            page.keyboard.press("z")
            page.wait_for_function("() => document.getElementById('n-clicks').textContent === '3'")
            # the opacity slider drives the overlay's opacity
            page.locator("#opacity").fill("70")
            assert page.evaluate("() => document.getElementById('overlay').style.opacity") == "0.7"
            page.evaluate("() => document.activeElement.blur()")
            # hover over the background half-way between the object and the negative click
            page.mouse.move((x + x3) / 2, (y + y3) / 2)
            page.wait_for_timeout(500)

            shot = tmp_path / "annotate.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
            extra = os.environ.get("MIS_ANNOTATE_SCREENSHOT")
            if extra:
                Path(extra).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, extra)
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
