"""Mask encodings: the page's row-major RLE and COCO's compressed RLE (against pycocotools)."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from mis_pipeline.annotate.rle import (
    coco_rle,
    coco_rle_decode,
    decode_rows,
    encode_rows,
    mask_bbox,
    run_lengths,
)

# pycocotools calls np.array(..., copy=False) on numpy 2
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _masks():
    rng = np.random.default_rng(0)
    yield np.zeros((5, 7), bool)
    yield np.ones((5, 7), bool)
    m = np.zeros((30, 41), bool)
    m[3:20, 5:33] = True
    yield m
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        yield rng.random((h, w)) < rng.random()


def test_run_lengths_known_answer():
    assert run_lengths(np.array([1, 1, 0, 1], bool)).tolist() == [0, 2, 1, 1]
    assert run_lengths(np.array([0, 0, 0], bool)).tolist() == [3]


@pytest.mark.parametrize("k", range(63))
def test_rle_round_trips_and_matches_pycocotools(k):
    m = list(_masks())[k]
    assert np.array_equal(decode_rows(encode_rows(m)), m)
    ours = coco_rle(m)
    ref = coco_mask.encode(np.asfortranarray(m.astype(np.uint8)))
    assert ours["counts"] == ref["counts"].decode("ascii")
    assert ours["size"] == [int(v) for v in ref["size"]]
    assert np.array_equal(coco_rle_decode(ours), m)
    back = coco_mask.decode({"size": ours["size"], "counts": ours["counts"].encode("ascii")})
    assert np.array_equal(back.astype(bool), m)
    if m.any():
        assert mask_bbox(m) == pytest.approx(coco_mask.toBbox(ref).tolist())


def test_decode_rejects_wrong_total():
    with pytest.raises(ValueError, match="sum to 6"):
        decode_rows({"size": [2, 3], "counts": [1, 2]})
