"""Ray Train: 2 CPU workers reading Ray Data streams give the parameters of the plain loop.

Run inside a loopback-only network namespace (CI does; see the README).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from train_helpers import parameters, smoke_config

from mis_pipeline.train import run_training
from mis_pipeline.train.run_dir import read_metrics, read_state

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def local_ray():
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # 4 logical CPUs on 2 cores: one per training worker plus room for the data tasks
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_two_workers_match_one_process(local_ray, tree_store, tmp_path):
    # the same 2 micro-batches per step either way: 1 process accumulating both, 2 workers one each
    one = smoke_config(train={"steps": 4, "micro_batches": 2, "checkpoint_every": 2})
    two = smoke_config(train={"steps": 4, "micro_batches": 2, "workers": 2, "checkpoint_every": 2})
    run_training(one, tmp_path / "one", store=tree_store)
    res = run_training(two, tmp_path / "two", store=tree_store)
    assert res.steps == 4 and read_state(tmp_path / "two")["finished"]
    a, b = parameters(tmp_path / "one"), parameters(tmp_path / "two")
    assert a.keys() == b.keys()
    # equal up to the order of float sums (all-reduce vs sequential accumulation), which Adam's
    # normalisation amplifies where gradients are near zero; a wrong split or gradient scale
    # would move parameters by the order of the updates (lr 1e-3)
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    assert worst < 2e-5, worst
    la = [r["loss"] for r in read_metrics(tmp_path / "one")]
    lb = [r["loss"] for r in read_metrics(tmp_path / "two")]
    np.testing.assert_allclose(la, lb, rtol=1e-3)
    # and the run resumes under Ray like the plain loop: a finished run is refused
    from mis_pipeline.errors import RunError

    with pytest.raises(RunError, match="finished run"):
        run_training(two, tmp_path / "two", store=tree_store)
