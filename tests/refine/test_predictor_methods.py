"""CFR, A-CFR, TAIZ and RefCut references in the 'model' predictor (tiny random vit_test model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mis_pipeline.config import CfrConfig, ModelConfig, TaizConfig
from mis_pipeline.evaluate.clicker import Click
from mis_pipeline.evaluate.predictors.model import FullView, ModelPredictor, NoZoom, TaizZoom
from mis_pipeline.model import build_model


@pytest.fixture(scope="module")
def model():
    m = build_model(ModelConfig(arch="vit_test", img_size=64, init="random", window=0, reference=True))
    torch.manual_seed(3)
    for p in m.rpg.parameters():
        torch.nn.init.normal_(p, std=0.5)
    return m.eval()


def _image(h=48, w=56, seed=0):
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8) + rng.integers(0, 255, 3, dtype=np.uint8)
    img[10:35, 12:40] = rng.integers(0, 255, 3, dtype=np.uint8)
    return img


CLICKS = [Click(20, 25, True), Click(5, 5, False), Click(30, 30, True), Click(12, 38, True)]


def _session(pred, clicks=CLICKS, image=None):
    pred.reset(_image() if image is None else image)
    prob = np.zeros((48, 56), np.float32)
    out, forwards = [], []
    for k in range(1, len(clicks) + 1):
        before = pred.forwards
        prob = pred.predict(clicks[:k], prob)
        out.append(prob)
        forwards.append(pred.forwards - before)
    return out, forwards


def test_cfr0_is_the_plain_predictor(model):
    plain, f0 = _session(ModelPredictor(model, NoZoom(), flip=True))
    cfr0, f1 = _session(ModelPredictor(model, NoZoom(), flip=True, cfr=CfrConfig(steps=0)))
    assert f0 == f1 == [1, 1, 1, 1]
    assert all(np.array_equal(a, b) for a, b in zip(plain, cfr0, strict=True))


def test_cfr_n_runs_n_more_forwards_fed_back(model):
    pred = ModelPredictor(model, NoZoom(), flip=False, cfr=CfrConfig(steps=2))
    probs, forwards = _session(pred)
    assert forwards == [3, 3, 3, 3]
    # reference: the second refinement of the first click, by hand
    ref = ModelPredictor(model, NoZoom(), flip=False)
    ref.reset(_image())
    view = FullView((48, 56))
    p = torch.zeros(1, 1, 48, 56)
    with torch.no_grad():
        for _ in range(3):
            p = torch.sigmoid(ref.forward_logits(view, CLICKS[:1], p))
    np.testing.assert_allclose(probs[0], p[0, 0].numpy(), atol=1e-6)
    only_first = ModelPredictor(model, NoZoom(), flip=False, cfr=CfrConfig(steps=2, max_clicks=1))
    assert _session(only_first)[1] == [3, 1, 1, 1]  # the public code's --cf-click 1


def test_acfr_stops_on_the_threshold(model):
    # threshold larger than the image: every click stops after its first refinement
    pred = ModelPredictor(model, NoZoom(), flip=False, cfr=CfrConfig(steps=4, adaptive=True, threshold=10**6))
    assert _session(pred)[1] == [2, 2, 2, 2]
    # threshold -> never satisfied unless nothing changes: between 2 and 5 forwards, never more
    pred = ModelPredictor(model, NoZoom(), flip=False, cfr=CfrConfig(steps=4, adaptive=True, threshold=0))
    fw = _session(pred)[1]
    assert all(2 <= f <= 5 for f in fw)


def test_taiz_blends_only_from_half_the_budget(model):
    coarse_zoom = TaizZoom(64, TaizConfig(max_clicks=4))
    pred = ModelPredictor(model, coarse_zoom, flip=False)
    probs, forwards = _session(pred)
    assert forwards == [1, 2, 2, 2]  # lambda_t = 0 for t < T/2 = 2
    # t = 1: exactly the coarse pass (whole image resized to 64 x 64)
    from mis_pipeline.evaluate.predictors.model import CropView

    ref = ModelPredictor(model, NoZoom(), flip=False)
    ref.reset(_image())
    view = CropView((0, 47, 0, 55), (64, 64), (48, 56))
    with torch.no_grad():
        p = view.paste(torch.sigmoid(ref.forward_logits(view, CLICKS[:1], view.image(torch.zeros(1, 1, 48, 56)))))
    np.testing.assert_allclose(probs[0], p[0, 0].numpy(), atol=1e-6)
    assert all(np.all((q >= 0) & (q <= 1)) for q in probs)


class _Ref:
    def __init__(self, image, positive, negative):
        self.image, self.positive, self.negative = image, positive, negative


def test_reference_prompt_once_per_reference_and_empty_is_plain(model):
    pred = ModelPredictor(model, NoZoom(), flip=True)
    calls = []
    encode_reference = model.encode_reference
    model.encode_reference = lambda image: (calls.append(1), encode_reference(image))[1]
    try:
        plain, _ = _session(pred)
        pos = np.zeros((40, 40), bool)
        pos[5:25, 5:30] = True
        ref = _Ref(_image(40, 40, seed=1), pos, ~pos)
        pred.reset(_image())
        pred.set_reference(ref)
        assert len(calls) == 1
        prob = np.zeros((48, 56), np.float32)
        with_ref = []
        for k in range(1, 5):
            prob = pred.predict(CLICKS[:k], prob)
            with_ref.append(prob)
        assert len(calls) == 1  # four clicks, one reference pass
        assert not np.allclose(with_ref[0], plain[0])
        # empty masks: the plain model
        pred.reset(_image())
        pred.set_reference(_Ref(_image(40, 40, seed=1), np.zeros((40, 40), bool), np.zeros((40, 40), bool)))
        assert len(calls) == 1
        np.testing.assert_array_equal(pred.predict(CLICKS[:1], np.zeros((48, 56), np.float32)), plain[0])
        # reset forgets the reference
        pred.reset(_image())
        pred.set_reference(ref)
        pred.reset(_image())
        np.testing.assert_array_equal(pred.predict(CLICKS[:1], np.zeros((48, 56), np.float32)), plain[0])
    finally:
        model.encode_reference = encode_reference
