"""mis-pipeline: unsupervised interaction simulation for click-based interactive segmentation.

The front doors, one per pipeline concept (each also importable from its subpackage)::

    from mis_pipeline import load_image, get_backbone, ward_grid, TreeStore, preprocess
    img = load_image("photo.jpg")                       # (H, W, 3) uint8 RGB
    feats = get_backbone("colour_texture").features_for_image(img)   # (gh, gw, C) float32
    tree = ward_grid(feats)                             # MergeTree: children (n-1, 2), cost (n-1,)
    mask = tree_index(tree).image_mask(tree.children[-1, 0], img.shape[:2])  # one root half

Importing the package is cheap: torch, timm, Numba and Ray are imported only by the functions
that need them (the names below resolve lazily on first access).
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .errors import ConfigError, ImageError, MISError

# public name -> subpackage that defines it
_LAZY = {
    "PipelineConfig": "config",
    "load_image": "io",
    "list_images": "io",
    "prepare_image": "io",
    "target_size": "io",
    "get_backbone": "features",
    "available_backbones": "features",
    "MergeTree": "merge",
    "ward_grid": "merge",
    "tree_index": "merge",
    "validate_tree": "merge",
    "TreeStore": "store",
    "TreeReader": "store",
    "TreeWriter": "store",
    "preprocess": "pipeline",
    "open_dataset": "evaluate",
    "make_predictor": "evaluate",
    "evaluate_dataset": "evaluate",
}

__all__ = ["__version__", "MISError", "ConfigError", "ImageError", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mis_pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
