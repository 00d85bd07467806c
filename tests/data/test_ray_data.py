"""Ray Data front end: the same samples as the direct call (run inside the loopback-only
network namespace, like every Ray test)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mis_pipeline.config import DataConfig, from_dict
from mis_pipeline.data import ProposalDataset


@pytest.fixture(scope="module")
def local_ray():
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.mark.ray
@pytest.mark.slow
def test_ray_data_matches_direct_call(scene_store, local_ray):
    cfg = from_dict(DataConfig, {"epoch_size": 20, "augment": {"crop_size": 64}})
    ds = ProposalDataset(scene_store, config=cfg, seed=11)
    rows = {}
    for batch in ds.to_ray(epoch=2, batch_size=4).iter_torch_batches(batch_size=6):
        assert str(batch["image"].dtype) == "torch.uint8" and tuple(batch["image"].shape[1:]) == (64, 64, 3)
        assert str(batch["mask"].dtype) == "torch.bool" and str(batch["points"].dtype) == "torch.int32"
        for r in range(batch["index"].shape[0]):
            rows[int(batch["index"][r])] = {k: v[r].numpy() for k, v in batch.items()}
    assert sorted(rows) == list(range(20))
    for index, row in rows.items():
        direct = ds.sample(index, 2)
        assert row.keys() == direct.keys()
        for k in direct:
            assert np.asarray(direct[k]).dtype == row[k].dtype, k
            assert np.array_equal(direct[k], row[k]), (index, k)
