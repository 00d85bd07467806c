"""Which samples, rounds and learning rate each optimizer step uses: pure functions of integers.

A run is a sequence of optimizer steps ``0 .. total_steps - 1``. Step ``s`` consumes the
``batch_size`` samples with *flat* indices ``s * batch_size .. (s + 1) * batch_size - 1``; flat
index ``f`` is sample ``f % epoch_size`` of epoch ``f // epoch_size`` of the dataset
(``dataset.sample(index, epoch)``, itself seeded by ``(seed, epoch, index)``).

The global batch is cut into ``n_micro`` (``train.micro_batches``, default one per worker)
equal micro-batches ``k = 0 .. n_micro - 1`` (contiguous runs of flat indices). Worker ``rank``
of ``workers`` computes micro-batches ``k = m * workers + rank`` for ``m = 0 .. n_micro /
workers - 1`` and accumulates their gradients. So with ``n_micro = 2``, 1 worker x 2 accumulation
steps and 2 workers x 1 step compute exactly the same micro-batches (same samples, same order,
same per-micro-batch seeds, hence the same dropout masks); only the order in which their
gradients are summed differs.

Every random draw of the trainer derives from :class:`numpy.random.SeedSequence` keyed by the
run seed, a domain tag and integers (step, micro-batch, epoch, index, round): resuming at step
``s`` reproduces every draw of an uninterrupted run without saving generator states.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError

__all__ = [
    "MicroBatch",
    "total_steps",
    "steps_per_epoch",
    "milestone_steps",
    "lr_factor",
    "num_micro_batches",
    "micro_batch_size",
    "micro_batches",
    "flat_to_epoch_index",
    "num_click_rounds",
    "click_rng",
    "torch_seed",
]

# Domain tags separating the trainer's random streams (arbitrary fixed words, distinct from
# those of mis_pipeline.data.seeding).
_ROUNDS = 0x7A11
_CLICK = 0xC11C
_TORCH = 0x7042
_DROP = 0xD409


class MicroBatch(NamedTuple):
    """One micro-batch of one optimizer step: ``flat`` are its samples' flat indices (int64)."""

    step: int
    k: int  # micro-batch number within the global batch, 0 .. n_micro - 1
    m: int  # this worker's accumulation index, 0 .. n_micro / workers - 1
    flat: np.ndarray


def steps_per_epoch(epoch_size: int, batch_size: int) -> float:
    """Optimizer steps per epoch (fractional when batch_size does not divide epoch_size)."""
    return epoch_size / batch_size


def total_steps(*, epochs: float, steps: int | None, epoch_size: int, batch_size: int) -> int:
    """Run length in optimizer steps: ``steps`` when given, else ``ceil(epochs * epoch_size / batch_size)``."""
    if steps is not None:
        return int(steps)
    return max(1, math.ceil(epochs * steps_per_epoch(epoch_size, batch_size) - 1e-9))


def milestone_steps(
    milestones: tuple[float, ...], *, epochs: float, steps: int | None, epoch_size: int, batch_size: int
) -> tuple[int, ...]:
    """Optimizer steps at which the lr decays.

    Milestones are given in epochs (MIS: epoch 50 of 55). With an explicit ``steps`` the run
    length no longer follows from the epochs, and the milestones keep their *fraction of the
    run* (50/55 of ``steps``); this is our choice, the papers only train for whole epochs.
    """
    if steps is None:
        spe = steps_per_epoch(epoch_size, batch_size)
        return tuple(sorted(int(round(m * spe)) for m in milestones))
    return tuple(sorted(int(round(m / epochs * steps)) for m in milestones))


def lr_factor(step: int, milestones: tuple[int, ...], gamma: float) -> float:
    """``gamma ** (number of milestones <= step)`` (torch MultiStepLR stepped once per optimizer step)."""
    return float(gamma ** sum(1 for m in milestones if m <= step))


def num_micro_batches(micro_batches: int | None, workers: int) -> int:
    """Micro-batches per step over all workers (``None``: one per worker); a multiple of ``workers``."""
    n = workers if micro_batches is None else int(micro_batches)
    if n % workers:
        raise ConfigError("train.micro_batches", micro_batches,
                          f"a multiple of train.workers ({workers}), or null for one per worker")
    return n


def micro_batch_size(batch_size: int, n_micro: int) -> int:
    """Samples per micro-batch; ``batch_size`` must split evenly into ``n_micro`` micro-batches."""
    if batch_size % n_micro:
        raise ConfigError(
            "train.batch_size", batch_size,
            f"a multiple of the number of micro-batches per step ({n_micro}: train.micro_batches, "
            "or train.workers when it is null)",
        )
    return batch_size // n_micro


def micro_batches(
    start_step: int, end_step: int, *, batch_size: int, n_micro: int, workers: int, rank: int
) -> Iterator[MicroBatch]:
    """The micro-batches worker ``rank`` computes for steps ``start_step .. end_step - 1``, in order."""
    b = micro_batch_size(batch_size, n_micro)
    accumulate = n_micro // workers
    for step in range(start_step, end_step):
        for m in range(accumulate):
            k = m * workers + rank
            start = step * batch_size + k * b
            yield MicroBatch(step, k, m, np.arange(start, start + b, dtype=np.int64))


def flat_to_epoch_index(flat: np.ndarray | int, epoch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(epoch, index)`` int64 arrays of flat sample indices."""
    f = np.asarray(flat, dtype=np.int64)
    return f // epoch_size, f % epoch_size


def num_click_rounds(seed: int, step: int, max_rounds: int) -> int:
    """No-grad click rounds of optimizer step ``step``: uniform in ``0 .. max_rounds``.

    One draw per optimizer step, shared by all its micro-batches and workers (RITM draws one
    per batch with the global ``random``; here it is a pure function of the step).
    """
    if max_rounds <= 0:
        return 0
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _ROUNDS, int(step)]))
    return int(rng.integers(0, max_rounds + 1))


def click_rng(seed: int, epoch: int, index: int, round_: int) -> np.random.Generator:
    """Generator of sample ``(epoch, index)``'s training click in iterative round ``round_``."""
    return np.random.default_rng(
        np.random.SeedSequence([int(seed), _CLICK, int(epoch), int(index), int(round_)])
    )


def drop_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """Generator of sample ``(epoch, index)``'s ``prev_mask_drop_prob`` draw."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), _DROP, int(epoch), int(index)]))


def torch_seed(seed: int, step: int, k: int) -> int:
    """Seed of torch's generator for micro-batch ``k`` of ``step`` (dropout / drop-path draws)."""
    ss = np.random.SeedSequence([int(seed), _TORCH, int(step), int(k)])
    return int(ss.generate_state(1, dtype=np.uint64)[0] & ((1 << 63) - 1))
