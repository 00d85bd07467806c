"""Load ViT weights from a local checkpoint without unpickling code, and check they fit.

Understood layouts:

* the official DINO / DINOv2 release files (a flat dict: ``cls_token``, ``pos_embed``,
  ``patch_embed.proj.weight``, ``blocks.N.*``, ``norm.*``; these names are timm's names);
* DINO training checkpoints: the backbone under ``teacher`` (preferred) or ``student``, with
  ``module.`` and ``backbone.`` prefixes, next to the DINO projection head (``head.*``, dropped)
  and an ``args`` namespace (allowed: ``argparse.Namespace`` is the one class the safe loader
  accepts besides tensors and containers);
* containers under ``model``, ``state_dict`` or ``module``;
* timm ``.pth`` / ``.bin`` state dicts and ``.safetensors`` files.

DINOv2 names are mapped to timm's (``register_tokens`` -> ``reg_token``, ``mask_token``
dropped, chunked ``blocks.C.N.`` -> ``blocks.N.``). Nothing is resampled: a checkpoint for
another patch size or position-table size is an error, never silently interpolated.

``.pth``/``.bin`` files are read with ``torch.load(weights_only=True)``: a file holding
pickled Python objects other than tensors and plain containers is refused.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from ..errors import DependencyError, WeightsError

__all__ = ["read_checkpoint", "convert_state_dict", "load_weights_into"]

logger = logging.getLogger(__name__)

# Keys under which training scripts nest the weights, in order of preference.
_CONTAINER_KEYS = ("teacher", "student", "model", "state_dict", "module", "model_ema")
# Prefixes wrappers add (DataParallel / DDP, DINO's MultiCropWrapper).
_WRAPPER_PREFIXES = ("module.", "backbone.")
_CHUNKED_BLOCK = re.compile(r"^blocks\.\d+\.(\d+)\.")


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint file into a flat ``{name: tensor}`` dict (containers unwrapped).

    Raises :class:`~mis_pipeline.errors.WeightsError` if the file is missing, unreadable,
    holds pickled code, or contains no tensor dictionary.
    """
    import torch

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsError(f"weights file {path!r} does not exist")
    if path.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise DependencyError("safetensors", "reading .safetensors weights") from exc
    try:
        if path.endswith(".safetensors"):
            obj: Any = load_file(path, device="cpu")
        else:
            import argparse

            with torch.serialization.safe_globals([argparse.Namespace]):
                obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch/safetensors raise many types for bad files
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            msg = (
                "the file holds pickled Python objects, which are not loaded for safety "
                "(torch.load(weights_only=True)); save a plain state_dict or a .safetensors file"
            )
        raise WeightsError(f"cannot read weights file {path!r}: {msg}") from exc
    return _unwrap(obj, path)


def _is_tensor_dict(obj: Any) -> bool:
    import torch

    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _unwrap(obj: Any, path: str) -> dict[str, Any]:
    trail = []
    while not _is_tensor_dict(obj):
        if not isinstance(obj, Mapping):
            raise WeightsError(f"{path!r}: expected a dict of tensors, found {type(obj).__name__}")
        for key in _CONTAINER_KEYS:
            if isinstance(obj.get(key), Mapping):
                trail.append(key)
                obj = obj[key]
                break
        else:
            keys = ", ".join(sorted(map(str, obj))[:10])
            raise WeightsError(
                f"{path!r}: no state dict found (looked under {', '.join(_CONTAINER_KEYS)}); "
                f"top-level keys: {keys}"
            )
    if trail:
        logger.info("%s: using the state dict under %s", path, "/".join(trail))
    return dict(obj)


def convert_state_dict(state: Mapping[str, Any], model_keys: set[str]) -> dict[str, Any]:
    """Map checkpoint names onto a timm ViT's names (``model_keys``); see module docstring."""
    sd = dict(state)
    for prefix in _WRAPPER_PREFIXES:
        if any(k.startswith(prefix) for k in sd) and not any(
            k.startswith(prefix) for k in model_keys
        ):
            dropped = [k for k in sd if not k.startswith(prefix)]
            if dropped:
                logger.info(
                    "dropping %d checkpoint entries outside '%s' (e.g. %s)",
                    len(dropped),
                    prefix,
                    dropped[0],
                )
            sd = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
    # DINOv2 official names.
    if "register_tokens" in sd and "reg_token" in model_keys:
        sd["reg_token"] = sd.pop("register_tokens")
    if "mask_token" in sd and "mask_token" not in model_keys:
        sd.pop("mask_token")
    if any(_CHUNKED_BLOCK.match(k) for k in sd) and not any(
        _CHUNKED_BLOCK.match(k) for k in model_keys
    ):
        sd = {_CHUNKED_BLOCK.sub(r"blocks.\1.", k): v for k, v in sd.items()}
    # Projection / classifier heads the feature model does not have (DINO head, timm fc).
    heads = [k for k in sd if k.startswith("head.") and k not in model_keys]
    for k in heads:
        sd.pop(k)
    if heads:
        logger.info("dropping %d head entries not used for features", len(heads))
    return sd


def load_weights_into(model: Any, path: str | os.PathLike[str]) -> None:
    """Load ``path`` into timm ViT ``model`` strictly; WeightsError on any mismatch."""
    expected = model.state_dict()
    sd = convert_state_dict(read_checkpoint(path), set(expected))
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(sd) & set(expected)
        if tuple(sd[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or mismatched:
        parts = []
        for label, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", mismatched),
        ):
            if items:
                more = f" (+{len(items) - 6} more)" if len(items) > 6 else ""
                parts.append(f"{label}: " + ", ".join(items[:6]) + more)
        raise WeightsError(
            f"weights file {os.fspath(path)!r} does not fit the model ("
            + "; ".join(parts)
            + "). Is it a checkpoint of the same architecture and patch size?"
        )
    model.load_state_dict(sd, strict=True)
