"""Training data: merge-tree proposals (or annotated masks) -> augmented crops with clicks.

Public API
----------
:class:`ProposalDataset`     MIS samples from a tree store: ``sample(index, epoch) -> dict``
:class:`AnnotatedDataset`    the same contract from annotated masks (folder, COCO JSON, SBD)
:class:`Augmenter`           the seeded augmentation of ``AugmentConfig`` (albumentations)
:mod:`.augment`              ``augment(image, mask, seed, cfg, other=...)``: one-off call
:class:`TorchSampleDataset`  ``torch.utils.data.Dataset`` front end (``set_epoch``)
:func:`collate`              samples -> dict of torch tensors
:func:`to_ray`               Ray Data front end (``iter_torch_batches``)
:func:`render_preview`       the ``mis preview`` figure of one image (:func:`write_previews`: many)
:func:`proposal_stats`       area / depth distribution of sampled proposals (``mis inspect``)
:func:`proposal_recall`      best IoU of sampled proposals with annotated objects

Importing this package imports neither torch, albumentations nor Ray (names resolve lazily).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "ProposalDataset": "dataset",
    "SampleSource": "dataset",
    "SAMPLE_KEYS": "dataset",
    "AnnotatedDataset": "annotated",
    "CocoDataset": "annotated",
    "Augmenter": "augment",
    "Augmented": "augment",
    "build_transforms": "augment",
    "TorchSampleDataset": "frontends",
    "collate": "frontends",
    "stack_samples": "frontends",
    "to_ray": "frontends",
    "render_preview": "preview",
    "write_previews": "preview",
    "proposal_stats": "stats",
    "proposal_recall": "stats",
    "RecallResult": "stats",
    "ProposalStats": "stats",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
