"""The interactive segmentation model: SimpleClick over a timm ViT (what MIS trains).

Public API
----------
:func:`build_model`       ``ModelConfig`` -> :class:`SimpleClickModel` (MAE / file / random init)
:class:`SimpleClickModel` ``model(image, prev_mask, points, labels, valid, *, prompt=None)`` -> logits;
                          ``encode_reference``, ``embed_image``, ``forward_maps``
:func:`save_checkpoint`   ``dir/model.safetensors`` + ``dir/model.json``
:func:`load_checkpoint`   run folder or checkpoint folder -> ``(model, meta)``
:data:`ARCHS`             registered architectures (``vit_base`` = the paper setting)
"""

from __future__ import annotations

from .arch import ARCHS, ViTArch, get_arch
from .checkpoint import checkpoint_dir, load_checkpoint, save_checkpoint
from .simpleclick import SimpleClickModel, build_model

__all__ = [
    "ARCHS",
    "ViTArch",
    "get_arch",
    "SimpleClickModel",
    "build_model",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_dir",
]
