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

Hub weights (``features.weights = "hub"``) are found by :func:`hub_weights_file`: the local
Hugging Face cache first (no network at all), else one reachability check of the hub and one
download. Without network the run stops at once with an error naming the two ways out (the
weights-free ``offline`` preset, or a local checkpoint file), instead of timm's
minute of retries.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from ..errors import DependencyError, WeightsError

__all__ = ["read_checkpoint", "convert_state_dict", "load_weights_into", "hub_weights_file"]

logger = logging.getLogger(__name__)

# Keys under which training scripts nest the weights, in order of preference.
_CONTAINER_KEYS = ("teacher", "student", "model", "state_dict", "module", "model_ema")
# Prefixes wrappers add (DataParallel / DDP, DINO's MultiCropWrapper).
_WRAPPER_PREFIXES = ("module.", "backbone.")
_CHUNKED_BLOCK = re.compile(r"^blocks\.\d+\.(\d+)\.")
#: Seconds the one reachability check of the hub may take.
HUB_PROBE_TIMEOUT_S = 10.0
#: The two ways to run without network, named in every hub error.
NO_NETWORK_HINT = (
    "without network, use the weights-free backbone (--config offline, i.e. "
    "features.backbone=colour_texture) or a local checkpoint (--set features.weights=FILE, "
    "e.g. the official dino_deitsmall8_pretrain.pth)"
)


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


# --------------------------------------------------------------------------- hub weights
def _hub_files(timm_name: str) -> tuple[str, list[str]] | None:
    """``(repo id, file names in timm's order of preference)`` of a timm model on the hub.

    timm loads ``hf_hub_filename`` if set, else ``model.safetensors`` when the repository has
    it and ``pytorch_model.bin`` otherwise. ``None`` if the model has no hub source.
    """
    import timm

    cfg = timm.models.get_pretrained_cfg(timm_name)
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not repo:
        return None
    filename = getattr(cfg, "hf_hub_filename", None)
    if filename:
        return repo, [filename]
    return repo, ["model.safetensors", "pytorch_model.bin"]


def _probe_hub(endpoint: str, timeout: float) -> str | None:
    """One request to the hub's endpoint, no retries: ``None`` if it answers, else the reason."""
    from huggingface_hub import get_session

    try:
        response = get_session().head(endpoint, timeout=timeout)
    except Exception as exc:  # connection, DNS, proxy and timeout errors of any HTTP client
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    status = int(getattr(response, "status_code", 0))
    if status >= 500:
        return f"HTTP {status}"
    return None


def hub_weights_file(timm_name: str) -> str | None:
    """Local path of the hub weights of timm model ``timm_name``, downloading them if needed.

    The Hugging Face cache is looked up first, without any network access. If the file is not
    cached, the hub gets one reachability check (:data:`HUB_PROBE_TIMEOUT_S`) and then one
    download. Returns ``None`` if timm has no hub source for the model (then timm's own loader
    is used).

    Raises
    ------
    WeightsError
        The hub cannot be reached (or ``HF_HUB_OFFLINE`` is set) and the weights are not
        cached, or the download failed. The message names both ways to run offline.
    """
    try:
        import huggingface_hub
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
    except ImportError as exc:  # pragma: no cover - a dependency of timm
        raise DependencyError("huggingface_hub", "downloading hub weights") from exc
    files = _hub_files(timm_name)
    if files is None:
        return None
    repo, names = files
    for name in names:
        cached = try_to_load_from_cache(repo, name)
        if isinstance(cached, str) and os.path.isfile(cached):
            logger.info("hub weights of %s from the local cache: %s", timm_name, cached)
            return cached
    where = f"{repo} ({' or '.join(names)})"
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise WeightsError(
            f"features.weights='hub': {where} is not in the local cache and HF_HUB_OFFLINE is "
            f"set; {NO_NETWORK_HINT}"
        )
    endpoint = huggingface_hub.constants.ENDPOINT
    reason = _probe_hub(endpoint, HUB_PROBE_TIMEOUT_S)
    if reason is not None:
        raise WeightsError(
            f"features.weights='hub': the Hugging Face hub ({endpoint}) cannot be reached "
            f"({reason}) and {where} is not in the local cache; {NO_NETWORK_HINT}"
        )
    from huggingface_hub.errors import EntryNotFoundError

    last: Exception | None = None
    for name in names:
        try:
            logger.info("downloading %s/%s from the hub", repo, name)
            return str(hf_hub_download(repo, name))
        except EntryNotFoundError as exc:  # try timm's next candidate name
            last = exc
        except Exception as exc:
            raise WeightsError(
                f"features.weights='hub': downloading {repo}/{name} failed "
                f"({type(exc).__name__}: {exc}); {NO_NETWORK_HINT}"
            ) from exc
    raise WeightsError(f"features.weights='hub': {where} not found on the hub ({last})")
