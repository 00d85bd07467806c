"""Annotating with a trained checkpoint: the 'model' predictor through the registry."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from mis_pipeline.annotate import Annotator, create_app
from mis_pipeline.annotate.rle import decode_rows
from mis_pipeline.config import ModelConfig, PipelineConfig, from_dict
from mis_pipeline.evaluate.clicker import Click
from mis_pipeline.evaluate.predictors import make_predictor

pytestmark = pytest.mark.slow  # builds a (tiny) torch model: ~10 s with the torch import


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run folder with a random vit_test checkpoint (64 px)."""
    from mis_pipeline.model import build_model, save_checkpoint

    cfg = from_dict(ModelConfig, {"arch": "vit_test", "init": "random", "img_size": 64, "init_seed": 3})
    run = tmp_path_factory.mktemp("run")
    save_checkpoint(build_model(cfg), run / "checkpoint")
    return run


def test_model_predictor_clicks_match_the_direct_prediction(tiny_run, image_dir, tmp_path):
    cfg = from_dict(PipelineConfig, {"evaluate": {"predictor": "model",
                                                  "model": {"checkpoint": str(tiny_run), "device": "cpu"}}})
    annotator = Annotator(image_dir, tmp_path / "masks", predictor="model", cfg=cfg)
    client = TestClient(create_app(annotator))
    r = client.post("/api/session", json={}).json()
    assert r["predictor"] == "model" and r["hover"] is False
    h = {"X-MIS-Session": r["session"]}
    assert client.post("/api/open", json={"index": 0}, headers=h).status_code == 200
    direct = make_predictor("model", cfg)
    image = np.array(Image.open(annotator.images.entries[0].path).convert("RGB"))
    direct.reset(image)
    clicks = [Click(30, 30, True), Click(60, 10, False)]
    prob = np.zeros(image.shape[:2], np.float32)
    for k, c in enumerate(clicks):
        prob = direct.predict(clicks[: k + 1], prob)
        got = client.post("/api/click", json={"index": 0, "row": c.row, "col": c.col,
                                              "positive": c.is_positive}, headers=h)
        assert got.status_code == 200, got.text
        assert np.array_equal(decode_rows(got.json()["mask"]), prob > cfg.evaluate.pred_threshold)
    r = client.post("/api/hover", json={"index": 0, "row": 3, "col": 3}, headers=h)
    assert r.status_code == 409 and "'model'" in r.json()["error"]
    assert client.post("/api/save", json={"index": 0}, headers=h).status_code == 200
    assert (tmp_path / "masks" / "a0.png").is_file()
