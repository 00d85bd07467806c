"""Checkpoints: ``model.safetensors`` (the weights) + ``model.json`` (how to rebuild the model).

``model.json`` holds ``format``, ``format_version``, ``package_version``, ``model`` (the
:class:`~mis_pipeline.config.ModelConfig` as a dict), ``arch`` (the resolved
:class:`~mis_pipeline.model.arch.ViTArch`, so a checkpoint does not depend on the registry) and
``extra`` (whatever the trainer passes: training config, step, ...). Nothing is pickled: a
checkpoint folder is loadable with no other file and no code execution.

Both files are written to temporary names and renamed into place (weights first), so a crash
never leaves a half-written file under the final names.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import WeightsError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .simpleclick import SimpleClickModel

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_dir", "FORMAT", "FORMAT_VERSION"]

FORMAT = "mis-pipeline/simpleclick"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"


def save_checkpoint(model: SimpleClickModel, directory: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
    """Write ``directory/model.safetensors`` and ``directory/model.json``; returns the folder.

    ``extra`` must be JSON-serialisable (plain dicts, lists, numbers, strings).
    """
    from safetensors.torch import save_file

    from .. import __version__
    from ..config import to_dict

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "model": to_dict(model.cfg),
        "arch": asdict(model.arch),
        "extra": dict(extra or {}),
    }
    text = json.dumps(meta, indent=2, sort_keys=True)  # fails early on a non-JSON extra
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp_w, tmp_m = d / (WEIGHTS_FILE + ".tmp"), d / (META_FILE + ".tmp")
    save_file(state, str(tmp_w), metadata={"format": FORMAT})
    tmp_m.write_text(text + "\n")
    os.replace(tmp_w, d / WEIGHTS_FILE)
    os.replace(tmp_m, d / META_FILE)
    return d


def checkpoint_dir(path: str | os.PathLike[str]) -> Path:
    """The checkpoint folder named by ``path``: a run folder (``RUN/checkpoint``), a checkpoint
    folder, or one of its two files."""
    p = Path(path)
    if p.is_file() and p.name in (WEIGHTS_FILE, META_FILE):
        p = p.parent
    for cand in (p, p / "checkpoint"):
        if (cand / META_FILE).is_file() and (cand / WEIGHTS_FILE).is_file():
            return cand
    raise WeightsError(
        f"no checkpoint at {os.fspath(path)!r}: expected {META_FILE} and {WEIGHTS_FILE} in it or in "
        "its checkpoint/ folder (a training run folder)"
    )


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[SimpleClickModel, dict[str, Any]]:
    """``(model, meta)`` from a run folder or checkpoint folder; the model in eval mode on
    ``map_location``; ``meta`` is the parsed ``model.json``."""
    import torch
    from safetensors.torch import load_file

    from ..config import ModelConfig, from_dict
    from .arch import ViTArch
    from .simpleclick import SimpleClickModel

    d = checkpoint_dir(path)
    try:
        meta = json.loads((d / META_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{d / META_FILE}: unreadable ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise WeightsError(f"{d / META_FILE}: not a {FORMAT} checkpoint (format {meta.get('format')!r})")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise WeightsError(
            f"{d / META_FILE}: format version {meta['format_version']} is newer than this package reads "
            f"({FORMAT_VERSION}); upgrade mis-pipeline"
        )
    cfg = from_dict(ModelConfig, meta["model"])
    arch = ViTArch(**meta["arch"])
    with torch.random.fork_rng(devices=[]):
        model = SimpleClickModel(cfg, arch)
    try:
        state = load_file(str(d / WEIGHTS_FILE), device="cpu")
    except Exception as exc:  # safetensors raises several types for bad files
        raise WeightsError(f"{d / WEIGHTS_FILE}: unreadable ({exc})") from exc
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        raise WeightsError(
            f"{d / WEIGHTS_FILE} does not match {META_FILE}: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, wrong shape {sorted(wrong)[:5]}"
        )
    model.load_state_dict(state, strict=True)
    model.to(map_location).eval()
    return model, meta
