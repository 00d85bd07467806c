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

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
