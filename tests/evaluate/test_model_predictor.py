"""The 'model' predictor: SimpleClick's zoom-in and flip, the image-embedding cache, and the
protocol end to end on GrabCut with a tiny random checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mis_pipeline.clicks import click_maps
from mis_pipeline.config import ModelConfig, PipelineConfig, from_dict
from mis_pipeline.errors import ConfigError
from mis_pipeline.evaluate import make_predictor
from mis_pipeline.evaluate.clicker import Click
from mis_pipeline.evaluate.predictors.model import (
    CropView,
    FullView,
    ModelPredictor,
    NoZoom,
    SimpleClickZoom,
    box_iou,
    disk_maps,
    object_roi,
)
from mis_pipeline.model import build_model, save_checkpoint


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A training-run folder holding a random vit_test checkpoint trained at 64 px."""
    cfg = from_dict(ModelConfig, {"arch": "vit_test", "init": "random", "img_size": 64, "init_seed": 1})
    run = tmp_path_factory.mktemp("run")
    save_checkpoint(build_model(cfg), run / "checkpoint", extra={"note": "random"})
    return run


def _predictor(run, **model_settings) -> ModelPredictor:
    cfg = from_dict(PipelineConfig, {"evaluate": {"model": {"checkpoint": str(run), "device": "cpu", **model_settings}}})
    p = make_predictor("model", cfg)
    assert isinstance(p, ModelPredictor)
    return p


@pytest.mark.parametrize("seed", [0, 1])
def test_disk_maps_match_the_integer_click_maps(seed):
    rng = np.random.default_rng(seed)
    pts = rng.integers(-3, 40, size=(6, 2))
    pos = rng.random(6) < 0.5
    got = disk_maps(pts.astype(float), pos, (37, 41), 5)
    want = click_maps(pts.astype(np.int32), pos.astype(np.int8), np.ones(6, bool), (37, 41), 5)
    assert np.array_equal(got, want)


def test_disk_maps_use_subpixel_centres():
    m = disk_maps(np.array([[10.5, 10.5]]), np.array([True]), (21, 21), 1.0)
    # (y - 10.5)^2 + (x - 10.5)^2 <= 1: the four pixels around the centre
    assert m[0].sum() == 4 and m[0, 10:12, 10:12].all() and m[1].sum() == 0


def test_object_roi_and_box_iou_follow_simpleclick():
    mask = np.zeros((300, 400), bool)
    mask[100:150, 200:260] = True  # rows 100..149, cols 200..259
    # box 50 x 60, expanded 1.4 -> 70 x 84, but at least 200: centre (124.5, 229.5), ends
    # 24.5, 224.5, 129.5, 329.5 rounded half to even as Python's round() does
    assert object_roi(mask, [], 1.4, 200) == (24, 224, 130, 330)
    # a positive click outside the mask extends the box; negative clicks do not
    big = np.zeros((1000, 1000), bool)
    big[400:600, 400:600] = True
    assert object_roi(big, [Click(700, 500, False)], 1.0, 10) == (400, 600, 400, 600)
    assert object_roi(big, [Click(699, 500, True)], 1.0, 10) == (400, 700, 400, 600)
    # segment "IoU" = overlap / span of both
    assert box_iou((0, 9, 0, 9), (0, 9, 0, 9)) == 1.0
    assert box_iou((0, 9, 0, 9), (5, 14, 0, 9)) == pytest.approx(5 / 15)


def test_simpleclick_zoom_views():
    z = SimpleClickZoom(64)
    z.reset((300, 400))
    first = z.select([Click(150, 200, True)], np.zeros((300, 400), np.float32))
    assert isinstance(first, CropView) and first.roi == (0, 299, 0, 399) and first.size == (64, 64)
    prev = np.zeros((300, 400), np.float32)
    prev[100:150, 200:260] = 0.9
    clicks = [Click(120, 230, True), Click(10, 10, False)]
    second = z.select(clicks, prev)
    # the new box's IoU with the whole image is below 0.5: a new crop
    assert second.roi == (24, 224, 130, 330)
    # the same answer again: the crop is kept
    assert z.select(clicks, prev).roi == second.roi
    # a positive click outside the crop forces a new one
    third = z.select([*clicks, Click(280, 390, True)], prev)
    assert third.roi != second.roi and third.roi[1] >= 280 and third.roi[3] >= 390


def test_crop_view_maps_points_and_pastes_back():
    v = CropView((10, 29, 40, 79), (64, 64), (50, 100))  # a 20 x 40 box
    pts = v.points([Click(10, 40, True), Click(20, 60, False)])
    assert np.allclose(pts, [[0, 0], [64 * 10 / 20, 64 * 20 / 40]])
    out = v.paste(torch.ones(1, 1, 64, 64))
    assert out.shape == (1, 1, 50, 100)
    inside = torch.zeros(50, 100, dtype=torch.bool)
    inside[10:30, 40:80] = True
    assert torch.allclose(out[0, 0][inside], torch.tensor(1.0)) and out[0, 0][~inside].eq(0).all()
    img = torch.arange(50 * 100, dtype=torch.float32).view(1, 1, 50, 100)
    crop = v.image(img)
    assert crop.shape == (1, 1, 64, 64) and crop[0, 0, 0, 0] == img[0, 0, 10, 40] and crop[0, 0, -1, -1] == img[0, 0, 29, 79]
    f = FullView((50, 100))
    assert f.image(img) is img and np.array_equal(f.points([Click(3, 4, True)]), [[3, 4]])


def test_flip_averages_logits_of_the_mirrored_input(tiny_run):
    p = _predictor(tiny_run, zoom="none", flip=True)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(40, 56, 3), dtype=np.uint8)
    p.reset(image)
    clicks = [Click(20, 10, True), Click(5, 50, False)]
    view = FullView((40, 56))
    prev = torch.zeros(1, 1, 40, 56)
    with torch.no_grad():
        got = p.forward_logits(view, clicks, prev)
        model = p.model
        img = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        maps = torch.from_numpy(disk_maps(np.array([[20, 10], [5, 50]]), np.array([True, False]), (40, 56), 5))[None]
        coord = torch.cat([prev, maps], 1)
        plain = model.forward_maps(img, coord)
        mirrored = model.forward_maps(torch.flip(img, [3]), torch.flip(coord, [3]))
    assert torch.allclose(got, 0.5 * (plain + torch.flip(mirrored, [3])), atol=1e-5)


def test_image_embedding_is_cached_per_view(tiny_run, monkeypatch):
    p = _predictor(tiny_run)
    calls = []
    orig = p.model.embed_image
    monkeypatch.setattr(p.model, "embed_image", lambda x: calls.append(tuple(x.shape)) or orig(x))
    rng = np.random.default_rng(1)
    p.reset(rng.integers(0, 256, size=(90, 120, 3), dtype=np.uint8))
    prob = np.zeros((90, 120), np.float32)
    for k in range(3):  # the first view (whole image) stays while the answer is empty
        prob = p.predict([Click(45, 60, True)] * (k + 1), np.zeros((90, 120), np.float32))
    assert calls == [(2, 3, 64, 64)]  # one embedding of the view and its mirror image
    assert prob.shape == (90, 120) and prob.dtype == np.float32 and 0 <= prob.min() and prob.max() <= 1


def test_config_errors(tiny_run, tmp_path):
    with pytest.raises(ConfigError, match="evaluate.model.checkpoint"):
        make_predictor("model", PipelineConfig())
    with pytest.raises(ConfigError, match="evaluate.model.zoom"):
        from_dict(PipelineConfig, {"evaluate": {"model": {"zoom": "sideways"}}})
    p = _predictor(tiny_run, zoom="none")
    assert isinstance(p.zoom, NoZoom)
    d = p.describe()
    assert d["name"] == "model" and d["zoom"] == "none" and d["model"]["arch"] == "vit_test"
    assert _predictor(tiny_run).describe()["target"] == 64  # the model's training size


@pytest.mark.data
def test_protocol_runs_end_to_end_on_grabcut(tiny_run, grabcut_dir, tmp_path):
    from mis_pipeline.cli import main

    out = tmp_path / "eval"
    rc = main([
        "evaluate", "--dataset", "grabcut", "--data", str(grabcut_dir), "--predictor", "model",
        "--checkpoint", str(tiny_run), "--limit", "2", "--workers", "1", "--out", str(out),
        "--set", "evaluate.max_clicks=3", "--set", "evaluate.model.device=cpu", "--no-progress",
    ])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["predictor"] == "model" and summary["num_samples"] == 2
    assert (out / "per_sample.csv").is_file()
    assert "evaluate" in (out / "resolved_config.yaml").read_text()


def test_skip_clicks_answers_the_first_clicks_on_the_whole_image():
    z = SimpleClickZoom(64, skip_clicks=1)
    z.reset((300, 400))
    prev = np.zeros((300, 400), np.float32)
    assert isinstance(z.select([Click(150, 200, True)], prev), FullView)
    # no previous answer to zoom on: still the whole image at its own size (RITM)
    assert isinstance(z.select([Click(150, 200, True), Click(5, 5, False)], prev), FullView)
    prev[100:150, 200:260] = 0.9
    v = z.select([Click(120, 230, True), Click(5, 5, False)], prev)
    assert isinstance(v, CropView) and v.roi == (24, 224, 130, 330)
