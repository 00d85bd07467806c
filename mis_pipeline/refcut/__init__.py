"""RefCut (reference-guided interactive segmentation): the reference branch and reference pairs.

Public API
----------
:class:`RefCutModel`               a click model plus the reference prompt generator
:class:`ReferencePromptGenerator`  eq. 6 pooling + the two prompt MLPs (eq. 7)
:func:`masked_average_pool`        eq. 6 on token features
:func:`resize_mask_to_grid`        reference masks to the token grid
:mod:`.pairs`                      target/reference pairs from part annotations (CarParts layout)
:mod:`.mined`                      target/reference pairs mined from two tree stores (no labels)

Importing this package does not import torch (names resolve lazily).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "RefCutModel": "prompt",
    "ReferencePromptGenerator": "prompt",
    "masked_average_pool": "prompt",
    "resize_mask_to_grid": "prompt",
    "token_grid": "prompt",
    "reference_prompt": "prompt",
    "attach_reference_branch": "prompt",
    "PartPairDataset": "pairs",
    "MinedPairDataset": "mined",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
