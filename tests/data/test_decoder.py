"""The optional OpenCV decoder of training samples gives the preprocessing decoder's pixels on
the real JPEG / BMP / PNG files, and falls back to it where OpenCV cannot read."""

from __future__ import annotations

import numpy as np
import pytest

from mis_pipeline.data.dataset import _decode_cv2
from mis_pipeline.io import load_image


@pytest.mark.data
def test_cv2_decode_matches_load_image_on_real_files(shared_data):
    files = sorted((shared_data / "GrabCut" / "data_GT").iterdir())
    files += sorted((shared_data / "WeizmannHorse" / "images").glob("*.png"))[:40]
    suffixes = {f.suffix.lower() for f in files}
    assert {".jpg", ".bmp", ".png"} <= suffixes
    for f in files:
        a = _decode_cv2(str(f))
        assert a is not None and a.dtype == np.uint8 and a.flags.c_contiguous
        assert np.array_equal(a, load_image(f)), f.name


def test_cv2_decode_declines_what_it_cannot_read(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not an image")
    assert _decode_cv2(str(tmp_path / "junk.png")) is None
    assert _decode_cv2(str(tmp_path / "missing.jpg")) is None
    assert _decode_cv2("memory://x.png") is None
