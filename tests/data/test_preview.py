"""``mis preview``, ``mis inspect --proposals`` and the statistics behind them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mis_pipeline.cli import main
from mis_pipeline.config import ProposalConfig
from mis_pipeline.data import ProposalDataset, proposal_stats
from mis_pipeline.data.preview import sample_indices_of_image


@pytest.mark.slow
def test_preview_cli_writes_one_png_per_image(tmp_path, scene_store, capsys):
    out = tmp_path / "preview"
    rc = main(["preview", str(scene_store), "--out", str(out), "--n", "2", "--samples", "3",
               "--set", "data.augment.crop_size=64"])
    assert rc == 0
    pngs = sorted(out.glob("*.png"))
    assert [p.stem for p in pngs] == ["scene000", "scene001"]
    assert (out / "resolved_config.yaml").is_file()
    with Image.open(pngs[0]) as im:
        assert im.size[0] > 400 and im.size[1] > 300
    assert "wrote" in capsys.readouterr().out


def test_preview_cli_usage_errors(tmp_path, capsys):
    rc = main(["preview", str(tmp_path / "nope.zarr"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "no tree store" in err and "Traceback" not in err
    assert main(["preview", str(tmp_path), "--out", str(tmp_path / "o"), "--n", "0"]) == 2


def test_preview_samples_are_the_training_samples(scene_store, small_config):
    ds = ProposalDataset(scene_store, config=small_config, seed=2, epoch_size=12 * 3)
    for image in (0, 5):
        idx = sample_indices_of_image(ds, image, 3)
        assert len(idx) == 3 and [i // 12 for i in idx] == [0, 1, 2]
        assert all(ds.image_of(i) == image for i in idx)
    assert len(sample_indices_of_image(ProposalDataset(scene_store, config=small_config, epoch_size=12), 0, 3)) == 1


def test_proposal_stats_follow_the_sampler(scene_store):
    top = proposal_stats(scene_store, 600, seed=0)
    assert top.area.shape == (600,) and top.depth.shape == (600,)
    assert (top.area > 0.05).mean() > 0.95  # the area filter
    assert (top.depth >= 1).all()  # never the root
    again = proposal_stats(scene_store, 600, seed=0)
    assert np.array_equal(top.area, again.area) and np.array_equal(top.image_index, again.image_index)
    children = proposal_stats(scene_store, 300, seed=0, config=ProposalConfig(sampler="root_children"))
    assert (children.depth == 1).all()
    d = top.to_dict()
    assert d["draws"] == 600 and d["images"] == 12 and 0 < d["area_mean"] < 1
    with pytest.raises(ValueError, match="n must be"):
        proposal_stats(scene_store, 0)


def test_inspect_proposals_prints_numbers_and_writes_the_histogram(tmp_path, scene_store, capsys):
    plot = tmp_path / "hist.png"
    rc = main(["inspect", str(scene_store), "--proposals", "--draws", "300", "--plot", str(plot),
               "--set", "data.proposals.sampler=uniform"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "300 draws over 12 images (sampler uniform)" in out
    assert "area (of grid)" in out and "depth" in out and str(plot) in out
    with Image.open(plot) as im:
        assert im.size[0] > 500
