"""Real features: ward_grid on the weights-free backend's GrabCut features equals scikit-learn.

Real patch features have large near-flat regions (sky, walls) where scikit-learn's tie order
and its exact float64 criterion decide the tree; this is where a merge that is only "almost"
sklearn would diverge.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mis_pipeline.merge import ward_grid
from mis_pipeline.merge.reference import clusters_of, ward_grid_sklearn

pytestmark = pytest.mark.data

# A spread of GrabCut images (every 6th file in sorted order), enough to cover textures,
# flat backgrounds and both orientations at about a second each.
_EVERY = 6


@pytest.fixture(scope="module")
def backbone():  # type: ignore[no-untyped-def]
    from mis_pipeline.features import get_backbone

    return get_backbone("colour_texture")


def _images(grabcut_dir: Path) -> list[Path]:
    files = sorted((grabcut_dir / "data_GT").iterdir())
    assert len(files) >= 50, f"expected the 50 GrabCut images in {grabcut_dir / 'data_GT'}"
    return files[::_EVERY]


def test_grabcut_colour_texture_trees_equal_sklearn(grabcut_dir: Path, backbone) -> None:  # type: ignore[no-untyped-def]
    from mis_pipeline.io import load_image

    shapes = set()
    for path in _images(grabcut_dir):
        feats = backbone.features_for_image(load_image(path))
        assert feats.ndim == 3 and feats.dtype == np.float32
        shapes.add(feats.shape[:2])
        ours = ward_grid(feats)
        ref = ward_grid_sklearn(feats)
        assert clusters_of(ours) == clusters_of(ref), path.name
        np.testing.assert_array_equal(ours.children, ref.children, err_msg=path.name)
        np.testing.assert_allclose(ours.cost, ref.cost, rtol=1e-5, err_msg=path.name)
    assert len(shapes) >= 2  # more than one grid size was exercised
