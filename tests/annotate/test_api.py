"""The annotation server's API through Starlette's in-process client (no socket, no browser)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from mis_pipeline.annotate import AnnotateSettings, Annotator, create_app
from mis_pipeline.annotate.rle import coco_rle_decode, decode_rows
from mis_pipeline.config import PipelineConfig
from mis_pipeline.errors import ConfigError, InputSourceError
from mis_pipeline.evaluate.clicker import Click
from mis_pipeline.evaluate.predictors import make_predictor

GOOD = ["a0.png", "a1.png", "a2.png"]


@pytest.fixture
def annotator(image_dir: Path, tmp_path: Path) -> Annotator:
    return Annotator(image_dir, tmp_path / "masks")


@pytest.fixture
def client(annotator: Annotator) -> TestClient:
    return TestClient(create_app(annotator))


def new_session(client: TestClient) -> dict[str, str]:
    r = client.post("/api/session", json={})
    assert r.status_code == 200, r.text
    return {"X-MIS-Session": r.json()["session"]}


def names(client: TestClient) -> list[str]:
    return [im["name"] for im in client.get("/api/images").json()["images"]]


def index_of(client: TestClient, name: str) -> int:
    return names(client).index(name)


def open_image(client: TestClient, h: dict[str, str], index: int) -> dict:
    r = client.post("/api/open", json={"index": index}, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def click(client, h, index, row, col, positive=True) -> dict:
    r = client.post("/api/click", json={"index": index, "row": row, "col": col, "positive": positive}, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def test_click_returns_the_direct_prediction(client, annotator):
    h = new_session(client)
    i = index_of(client, "a1.png")
    state = open_image(client, h, i)
    assert state["n_clicks"] == 0 and not decode_rows(state["mask"]).any()
    clicks = [Click(30, 28, True), Click(12, 75, True), Click(40, 40, False)]
    direct = make_predictor("tree", PipelineConfig())
    image = np.asarray(Image.open(annotator.images.entries[i].path).convert("RGB"))
    direct.reset(image)
    prob = np.zeros(image.shape[:2], np.float32)
    masks = []
    for k, c in enumerate(clicks):
        prob = direct.predict(clicks[: k + 1], prob)
        want = prob > PipelineConfig().evaluate.pred_threshold
        got = click(client, h, i, c.row, c.col, c.is_positive)
        assert np.array_equal(decode_rows(got["mask"]), want)
        assert got["clicks"] == [[x.row, x.col, x.is_positive] for x in clicks[: k + 1]]
        assert got["server_ms"] > 0 and got["budget"] == 20
        masks.append(want)
    assert masks[0].any() and not np.array_equal(masks[0], masks[2])
    # undo gives back the previous answer (stored, not recomputed), twice
    r = client.post("/api/undo", json={"index": i}, headers=h).json()
    assert np.array_equal(decode_rows(r["mask"]), masks[1]) and r["n_clicks"] == 2
    r = client.post("/api/undo", json={"index": i}, headers=h).json()
    assert np.array_equal(decode_rows(r["mask"]), masks[0]) and r["n_clicks"] == 1
    r = client.post("/api/reset", json={"index": i}, headers=h).json()
    assert r["n_clicks"] == 0 and not decode_rows(r["mask"]).any()


def test_save_writes_png_coco_and_pairs_and_survives_a_restart(client, annotator, image_dir, tmp_path):
    from mis_pipeline.data.annotated import CocoDataset
    from mis_pipeline.evaluate.datasets import open_dataset

    h = new_session(client)
    i = index_of(client, "a0.png")
    open_image(client, h, i)
    mask = decode_rows(click(client, h, i, 32, 38)["mask"])
    assert mask.any()
    r = client.post("/api/save", json={"index": i}, headers=h)
    assert r.status_code == 200 and r.json()["saved_to"] == "a0.png" and r.json()["done"]
    out = tmp_path / "masks"
    with Image.open(out / "a0.png") as im:
        assert im.mode == "L" and im.size == (96, 72)
        png = np.asarray(im)
    assert set(np.unique(png)) <= {0, 255}
    assert np.array_equal(png == 255, mask)
    coco = json.loads((out / "annotations.json").read_text())
    assert [im["file_name"] for im in coco["images"]] == ["../images/a0.png"]
    assert coco["images"][0]["height"] == 72 and coco["images"][0]["width"] == 96
    (ann,) = coco["annotations"]
    assert ann["image_id"] == coco["images"][0]["id"] and ann["iscrowd"] == 0
    assert ann["area"] == mask.sum() and np.array_equal(coco_rle_decode(ann["segmentation"]), mask)
    assert coco["categories"][0]["id"] == ann["category_id"]
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")], "temporary files left behind"
    # the folder is a `--dataset folder` input of mis evaluate ...
    ds = open_dataset("folder", out)
    assert ds.ids == ["a0"]
    sample = ds.load(0)
    assert np.array_equal(sample.gt, mask) and sample.image.shape == (72, 96, 3)
    # ... and an input of fine-tuning, as pairs.csv or as COCO (image root = the JSON's folder)
    from mis_pipeline.train.loop import DataSpec, open_annotated

    cds = CocoDataset(out)
    assert np.array_equal(cds.load(0).gt, mask)
    assert np.array_equal(cds.load(0).image, sample.image)
    for data in (out, out / "annotations.json"):
        ads = open_annotated(DataSpec("finetune", str(data)), PipelineConfig())
        assert len(ads.source) == 1
        src = ads.source.load(0)
        assert np.array_equal(src.gt, mask) and np.array_equal(src.image, sample.image)
    # a second save of another image keeps the first and the ids
    j = index_of(client, "a2.png")
    open_image(client, h, j)
    click(client, h, j, 30, 30)
    client.post("/api/save", json={"index": j}, headers=h)
    coco2 = json.loads((out / "annotations.json").read_text())
    assert [im["file_name"] for im in coco2["images"]] == ["../images/a0.png", "../images/a2.png"]
    assert coco2["images"][0]["id"] == coco["images"][0]["id"]
    assert len(open_dataset("folder", out)) == 2
    # restart: the saved state is shown
    client2 = TestClient(create_app(Annotator(image_dir, out)))
    listing = {im["name"]: im for im in client2.get("/api/images").json()["images"]}
    assert listing["a0.png"]["done"] and listing["a2.png"]["done"] and not listing["a1.png"]["done"]
    h2 = new_session(client2)
    state = open_image(client2, h2, i)
    assert state["done"] and np.array_equal(decode_rows(state["mask"]), mask)
    coco3 = json.loads((out / "annotations.json").read_text())
    assert [(im["id"], im["file_name"]) for im in coco3["images"]] == [(im["id"], im["file_name"]) for im in coco2["images"]]


def test_two_sessions_never_mix(client):
    a, b = new_session(client), new_session(client)
    assert a != b
    open_image(client, a, 0)
    open_image(client, b, 0)
    ma = click(client, a, 0, 32, 38)
    mb = click(client, b, 0, 10, 80, positive=True)
    mb = click(client, b, 0, 60, 10, positive=False)
    assert ma["n_clicks"] == 1 and mb["n_clicks"] == 2
    ra = client.post("/api/undo", json={"index": 0}, headers=a).json()
    assert ra["n_clicks"] == 0
    rb = client.post("/api/undo", json={"index": 0}, headers=b).json()
    assert rb["clicks"] == [[10, 80, True]]
    # b opens another image: a's image stays open in a
    open_image(client, b, 1)
    assert click(client, a, 0, 32, 38)["n_clicks"] == 1
    r = client.post("/api/click", json={"index": 0, "row": 5, "col": 5, "positive": True}, headers=b)
    assert r.status_code == 409 and "not open" in r.json()["error"]


def test_sessions_are_bounded(image_dir, tmp_path):
    c = TestClient(create_app(Annotator(image_dir, tmp_path / "m", settings=AnnotateSettings(max_sessions=2))))
    first = new_session(c)
    new_session(c)
    new_session(c)
    r = c.post("/api/open", json={"index": 0}, headers=first)
    assert r.status_code == 410 and "session" in r.json()["error"]


def test_hover_shows_the_tree_region_a_positive_click_selects(tmp_path, image_dir):
    # with no pixel refinement and no click disks, the click's mask IS the previewed region
    from mis_pipeline.config import from_dict

    cfg = from_dict(PipelineConfig, {"evaluate": {"tree": {"refine": "none", "click_radius": 0}}})
    c = TestClient(create_app(Annotator(image_dir, tmp_path / "m", cfg=cfg)))
    h = new_session(c)
    open_image(c, h, 0)
    for row, col, positive in [(32, 38, True), (15, 80, True), (50, 70, False), (5, 5, True)]:
        if positive:
            r = c.post("/api/hover", json={"index": 0, "row": row, "col": col}, headers=h)
            assert r.status_code == 200, r.text
            preview = decode_rows(r.json()["mask"])
            assert preview[row, col]
        got = decode_rows(click(c, h, 0, row, col, positive)["mask"])
        if positive:
            assert np.array_equal(preview, got)


def test_hover_refused_without_a_merge_tree(image_dir, tmp_path):
    c = TestClient(create_app(Annotator(image_dir, tmp_path / "m", predictor="graphcut")))
    r = c.post("/api/session", json={})
    assert r.json()["hover"] is False
    h = {"X-MIS-Session": r.json()["session"]}
    open_image(c, h, 0)
    assert click(c, h, 0, 32, 38)["n_clicks"] == 1
    r = c.post("/api/hover", json={"index": 0, "row": 3, "col": 3}, headers=h)
    assert r.status_code == 409 and "merge tree" in r.json()["error"]


def test_a_corrupt_image_fails_alone(client):
    listing = {im["name"]: im for im in client.get("/api/images").json()["images"]}
    assert listing["c_text.png"]["failed"]  # not an image at all: known from its header
    assert listing["b_bad.jpg"]["failed"] is None  # truncated data: found on decode
    h = new_session(client)
    bad = index_of(client, "b_bad.jpg")
    r = client.post("/api/open", json={"index": bad}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "failed" and "truncated" in r.json()["error"]
    r = client.get(f"/api/images/{bad}/image")
    assert r.status_code == 422 and "cannot be decoded" in r.json()["error"]
    r = client.get(f"/api/images/{index_of(client, 'c_text.png')}/image")
    assert r.status_code == 422
    listing = {im["name"]: im for im in client.get("/api/images").json()["images"]}
    assert listing["b_bad.jpg"]["failed"]
    assert all(listing[n]["failed"] is None for n in GOOD)
    # the others keep working, in the same session
    r = client.post("/api/click", json={"index": bad, "row": 1, "col": 1, "positive": True}, headers=h)
    assert r.status_code == 409
    good = index_of(client, "a0.png")
    open_image(client, h, good)
    assert decode_rows(click(client, h, good, 32, 38)["mask"]).any()
    r = client.get(f"/api/images/{good}/image")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    with Image.open(__import__("io").BytesIO(r.content)) as im:
        assert im.size == (96, 72)


TRAVERSALS = [
    "/static/../../secret.txt",
    "/static/..%2f..%2fsecret.txt",
    "/static/%2e%2e/%2e%2e/secret.txt",
    "/static/%252e%252e%252fsecret.txt",
    "/static/..%5c..%5csecret.txt",
    "/static/server.py",
    "/static/index.html%00.js",
    "/static/app.js/../../../secret.txt",
    "/api/images/..%2f..%2fsecret.txt/image",
    "/api/images/%2e%2e/image",
    "/api/images/-1/image",
    "/api/images/0x1/image",
    "/api/images/1e3/image",
    "/api/images/99/image",
    "/api/images/99999999999999999999999/image",
    "/api/images/0/../../../secret.txt",
    "/secret.txt",
]


@pytest.mark.parametrize("url", TRAVERSALS)
def test_path_traversal_is_refused(client, url):
    r = client.get(url)
    assert r.status_code == 404, (url, r.status_code)
    assert "TOP-SECRET" not in r.text and "import" not in r.text
    assert "error" in r.json()


def test_static_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    for name, kind in (("app.js", "javascript"), ("app.css", "css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
    # nothing from the network: no absolute URL in the page, its script or its style
    for name in ("/", "/static/app.js", "/static/app.css"):
        text = client.get(name).text
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_oversized_requests_are_refused(client):
    h = new_session(client)
    open_image(client, h, 0)
    big = json.dumps({"index": 0, "row": 1, "col": 1, "positive": True, "pad": "x" * 10_000})
    r = client.post("/api/click", content=big, headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["error"]

    def chunks():  # no Content-Length: the bytes are counted as they arrive
        for _ in range(20):
            yield b" " * 1000

    r = client.post("/api/click", content=chunks(), headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 413
    r = client.post("/api/click", content=b"{}", headers={**h, "Content-Type": "application/json",
                                                          "Content-Length": "abc"})
    assert r.status_code == 400


@pytest.mark.parametrize(
    "path, body, status, words",
    [
        ("/api/click", b"not json", 400, "JSON"),
        ("/api/click", b"[1, 2]", 400, "JSON object"),
        ("/api/click", b'{"index": 0, "row": 1, "col": 1}', 400, "positive"),
        ("/api/click", b'{"index": 0, "row": "1", "col": 1, "positive": true}', 400, "row"),
        ("/api/click", b'{"index": 0, "row": true, "col": 1, "positive": true}', 400, "row"),
        ("/api/click", b'{"index": 0, "row": 999, "col": 1, "positive": true}', 400, "out of range"),
        ("/api/click", b'{"index": 0, "row": -1, "col": 1, "positive": true}', 400, "out of range"),
        ("/api/click", b'{"index": 0, "row": 1, "col": 1, "positive": 1}', 400, "positive"),
        ("/api/open", b'{"index": 77}', 404, "out of range"),
        ("/api/open", b'{"index": 1.5}', 400, "integer"),
        ("/api/open", b'{}', 400, "index"),
        ("/api/hover", b'{"index": 0, "row": 1e9, "col": 1}', 400, "row"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(client, path, body, status, words):
    h = new_session(client)
    open_image(client, h, 0)
    r = client.post(path, content=body, headers={**h, "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert words in r.json()["error"] and "Traceback" not in r.text


def test_session_and_method_errors(client):
    r = client.post("/api/open", json={"index": 0})
    assert r.status_code == 400 and "X-MIS-Session" in r.json()["error"]
    r = client.post("/api/open", json={"index": 0}, headers={"X-MIS-Session": "forged"})
    assert r.status_code == 410
    r = client.post("/api/open", content=b'{"index": 0}', headers={**new_session(client), "Content-Type": "text/plain"})
    assert r.status_code == 415
    r = client.get("/api/click")
    assert r.status_code == 405 and "error" in r.json()
    h = new_session(client)
    r = client.post("/api/undo", json={"index": 0}, headers=h)
    assert r.status_code == 409 and "open it first" in r.json()["error"]


def test_host_header_checked_on_loopback(annotator):
    from mis_pipeline.annotate.server import allowed_hosts_for

    c = TestClient(create_app(annotator, allowed_hosts_for("127.0.0.1")), base_url="http://127.0.0.1:8765")
    assert c.get("/api/images").status_code == 200
    assert c.get("/api/images", headers={"Host": "localhost:8765"}).status_code == 200
    assert c.get("/api/images", headers={"Host": "attacker.example:8765"}).status_code == 400
    assert allowed_hosts_for("0.0.0.0") is None


def test_folder_problems_are_clear_errors(tmp_path, image_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputSourceError, match="no images"):
        Annotator(tmp_path / "empty", tmp_path / "m")
    (image_dir / "sub").mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(image_dir / "sub" / "a0.jpg")
    with pytest.raises(InputSourceError, match="share the file stem 'a0'"):
        Annotator(image_dir, tmp_path / "m")
    with pytest.raises(ConfigError, match="predictor"):
        Annotator(tmp_path, tmp_path / "m", predictor="nope")
    with pytest.raises(ConfigError, match="click-based"):
        Annotator(tmp_path, tmp_path / "m", predictor="gt")


def test_mask_folder_inside_the_image_folder_is_not_listed(image_dir):
    out = image_dir / "masks"
    a = Annotator(image_dir, out)
    c = TestClient(create_app(a))
    h = new_session(c)
    open_image(c, h, 0)
    click(c, h, 0, 32, 38)
    c.post("/api/save", json={"index": 0}, headers=h)
    again = Annotator(image_dir, out)
    assert [e.image_id for e in again.images.entries] == [e.image_id for e in a.images.entries]


def test_images_over_the_pixel_cap_fail_alone(image_dir, tmp_path):
    from mis_pipeline.config import from_dict

    Image.fromarray(np.zeros((120, 200, 3), np.uint8)).save(image_dir / "big.png")
    cfg = from_dict(PipelineConfig, {"io": {"max_pixels": 100 * 100}})
    c = TestClient(create_app(Annotator(image_dir, tmp_path / "m", cfg=cfg)))
    listing = {im["name"]: im for im in c.get("/api/images").json()["images"]}
    assert "max_pixels" in listing["big.png"]["failed"]
    h = new_session(c)
    r = c.post("/api/open", json={"index": index_of(c, "big.png")}, headers=h).json()
    assert r["status"] == "failed" and "max_pixels" in r["error"]
    assert c.get(f"/api/images/{index_of(c, 'big.png')}/image").status_code == 422
    assert open_image(c, h, index_of(c, "a0.png"))["status"] == "ok"


def test_an_unreadable_coco_file_is_rebuilt_from_the_pngs(client, image_dir, tmp_path):
    h = new_session(client)
    open_image(client, h, 0)
    mask = decode_rows(click(client, h, 0, 32, 38)["mask"])
    client.post("/api/save", json={"index": 0}, headers=h)
    out = tmp_path / "masks"
    (out / "annotations.json").write_text("{ not json")
    (out / "pairs.csv").unlink()
    Annotator(image_dir, out)
    coco = json.loads((out / "annotations.json").read_text())
    assert len(coco["annotations"]) == 1
    assert np.array_equal(coco_rle_decode(coco["annotations"][0]["segmentation"]), mask)
    assert (out / "pairs.csv").read_text().splitlines() == ["image,mask", "../images/a0.png,a0.png"]
