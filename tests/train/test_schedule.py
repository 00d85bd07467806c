"""The trainer's schedule: which samples each worker computes, seeds, rounds, lr milestones."""

from __future__ import annotations

import numpy as np
import pytest

from mis_pipeline.errors import ConfigError
from mis_pipeline.train import schedule


@pytest.mark.parametrize(("workers", "n_micro"), [(1, 1), (1, 4), (2, 2), (2, 4), (4, 4)])
def test_micro_batches_partition_each_global_batch(workers, n_micro):
    g = 8
    seen: dict[int, list[int]] = {}
    for rank in range(workers):
        for mb in schedule.micro_batches(3, 6, batch_size=g, n_micro=n_micro, workers=workers, rank=rank):
            assert len(mb.flat) == g // n_micro
            assert mb.k == mb.m * workers + rank
            seen.setdefault(mb.step, []).extend(mb.flat.tolist())
    assert sorted(seen) == [3, 4, 5]
    for step, flat in seen.items():
        assert sorted(flat) == list(range(step * g, (step + 1) * g))


def test_same_micro_batches_at_any_worker_count():
    """With 4 micro-batches per step, 1, 2 and 4 workers compute exactly the same micro-batches."""
    def plan(workers):
        return {(mb.step, mb.k): mb.flat.tolist() for r in range(workers)
                for mb in schedule.micro_batches(0, 4, batch_size=8, n_micro=4, workers=workers, rank=r)}

    assert plan(1) == plan(2) == plan(4)


def test_micro_batch_counts_must_split_evenly():
    with pytest.raises(ConfigError, match="train.batch_size"):
        schedule.micro_batch_size(6, 4)
    with pytest.raises(ConfigError, match="train.micro_batches"):
        schedule.num_micro_batches(3, 2)
    assert schedule.num_micro_batches(None, 3) == 3 and schedule.num_micro_batches(4, 2) == 4


def test_run_length_and_milestones():
    # MIS: 55 epochs of 30000 samples at batch 32, x0.1 at epoch 50
    kw = {"epochs": 55, "steps": None, "epoch_size": 30000, "batch_size": 32}
    assert schedule.total_steps(**kw) == 51563  # ceil(55 * 937.5)
    assert schedule.milestone_steps((50,), **kw) == (46875,)
    # --steps keeps the milestone's fraction of the run (50/55)
    kw["steps"] = 110
    assert schedule.total_steps(**kw) == 110
    assert schedule.milestone_steps((50,), **kw) == (100,)
    assert schedule.lr_factor(99, (100,), 0.1) == 1.0
    assert schedule.lr_factor(100, (100,), 0.1) == pytest.approx(0.1)


def test_flat_index_to_epoch_and_index():
    e, i = schedule.flat_to_epoch_index(np.array([0, 47, 48, 100]), 48)
    assert e.tolist() == [0, 0, 1, 2] and i.tolist() == [0, 47, 0, 4]


def test_click_rounds_are_uniform_in_range_and_pure():
    draws = [schedule.num_click_rounds(0, s, 3) for s in range(4000)]
    assert draws == [schedule.num_click_rounds(0, s, 3) for s in range(4000)]
    counts = np.bincount(draws, minlength=4)
    assert counts.size == 4 and np.all(np.abs(counts / 4000 - 0.25) < 0.03)
    assert schedule.num_click_rounds(0, 5, 0) == 0
    assert draws != [schedule.num_click_rounds(1, s, 3) for s in range(4000)]


def test_seeds_depend_on_every_key():
    a = schedule.click_rng(0, 1, 2, 0).integers(1 << 30, size=4)
    assert np.array_equal(a, schedule.click_rng(0, 1, 2, 0).integers(1 << 30, size=4))
    for other in [(1, 1, 2, 0), (0, 0, 2, 0), (0, 1, 3, 0), (0, 1, 2, 1)]:
        assert not np.array_equal(a, schedule.click_rng(*other).integers(1 << 30, size=4))
    assert schedule.torch_seed(0, 1, 0) != schedule.torch_seed(0, 1, 1)
    assert 0 <= schedule.torch_seed(3, 4, 5) < 2**63
