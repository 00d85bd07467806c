"""Per-sample seeds: every random draw of a training sample derives from (seed, epoch, index).

A sample never touches global random state and never depends on which process, worker or
order computed it: its generators come from :class:`numpy.random.SeedSequence` keyed by the
dataset seed, a domain tag (so the image order and the samples use unrelated streams), the
epoch, the sample index and the attempt number (the "sub-seed" of a re-draw).
"""

from __future__ import annotations

import numpy as np

__all__ = ["sample_seeds", "epoch_permutation"]

# Domain tags: arbitrary fixed words separating the streams drawn from one dataset seed.
_SAMPLE = 0x5A17
_ORDER = 0x0DE5
_SUBSET = 0x5B5E


def sample_seeds(seed: int, epoch: int, index: int, attempt: int = 0) -> tuple[np.random.Generator, np.random.SeedSequence]:
    """``(rng, augment_seed)`` of attempt ``attempt`` of sample ``index`` in ``epoch``.

    ``rng`` (a PCG64 ``Generator``) draws the proposal and the clicks; ``augment_seed`` (a
    ``SeedSequence``) seeds the augmentation. Both are pure functions of the four integers.
    """
    ss = np.random.SeedSequence([int(seed), _SAMPLE, int(epoch), int(index), int(attempt)])
    proposal_ss, augment_ss = ss.spawn(2)
    return np.random.default_rng(proposal_ss), augment_ss


def epoch_permutation(seed: int, epoch: int, chunk: int, n: int) -> np.ndarray:
    """A permutation of ``range(n)`` (int64), the ``chunk``-th pass over the images in ``epoch``."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _ORDER, int(epoch), int(chunk)]))
    return rng.permutation(int(n))


def subset_rng(seed: int) -> np.random.Generator:
    """The generator that picks the ``data_ratio`` subset of an annotated dataset."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), _SUBSET]))
