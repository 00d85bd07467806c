"""VTMR's TAIZ training distortion (taiz.train_prob): target-guided warp of image and mask."""

from __future__ import annotations

import numpy as np

from mis_pipeline.config import DataConfig, PipelineConfig, TaizConfig
from mis_pipeline.train.methods import TaizSource, taiz_warp_sample, wrap_source


class _Source:
    config = DataConfig(epoch_size=8)
    seed = 0
    epoch_size = 8

    def sample(self, index, epoch=0):
        h = w = 64
        yy, xx = np.mgrid[0:h, 0:w]
        mask = (yy - 20) ** 2 + (xx - 40) ** 2 < 8**2
        image = np.stack([xx * 4, yy * 4, np.zeros_like(xx)], -1).astype(np.uint8)
        return {"image": image, "mask": mask, "points": np.zeros((4, 2), np.int32),
                "labels": np.zeros(4, np.int8), "valid": np.zeros(4, bool), "index": np.int64(index)}


def test_warp_zooms_onto_the_target():
    s = _Source().sample(0)
    img, m = taiz_warp_sample(s["image"], s["mask"], sigma=11, floor=0.05)
    assert img.shape == s["image"].shape and img.dtype == np.uint8 and m.shape == s["mask"].shape
    assert m.sum() > 1.5 * s["mask"].sum()  # the target takes more of the crop
    # the warp is monotone per axis: the colour ramps (x in red, y in green) stay non-decreasing
    assert np.all(np.diff(img[32, :, 0].astype(int)) >= 0) and np.all(np.diff(img[:, 32, 1].astype(int)) >= 0)


def test_flat_guidance_is_identity():
    s = _Source().sample(0)
    img, m = taiz_warp_sample(s["image"], np.ones((64, 64), bool), sigma=11, floor=0.05)
    assert np.abs(img.astype(int) - s["image"].astype(int)).max() <= 1


def test_source_wrapper_probability_and_clicks():
    cfg = PipelineConfig(taiz=TaizConfig(train_prob=1.0))
    src = wrap_source(_Source(), cfg, "mis")
    assert isinstance(src, TaizSource)
    for i in range(4):
        s = src.sample(i)
        pos = s["points"][s["valid"] & (s["labels"] == 1)]
        assert len(pos) and all(s["mask"][r, c] for r, c in pos)
    off = wrap_source(_Source(), PipelineConfig(), "mis")
    assert isinstance(off, _Source)
    half = TaizSource(_Source(), PipelineConfig(taiz=TaizConfig(train_prob=0.5)))
    warped = sum(not np.array_equal(half.sample(i)["mask"], _Source().sample(i)["mask"]) for i in range(8))
    assert 0 < warped < 8
