"""The run directory ``RUN/`` of ``mis train``: resume state, metrics and the loss curve.

Layout (DESIGN.md "Run directory")::

    RUN/resolved_config.yaml        the configuration of the run (written by the CLI/stage)
    RUN/run.json                    the resolved configuration as JSON (compared on resume)
    RUN/checkpoint/                 model.safetensors + model.json (mis_pipeline.model)
    RUN/state/state.json            step, total_steps, seed, finished
    RUN/state/model.pt              model parameters and buffers (torch.save of tensors)
    RUN/state/optimizer.pt          Adam state
    RUN/state/scheduler.pt          MultiStepLR state
    RUN/metrics.jsonl               one JSON object per logged step
    RUN/loss_curve.png              loss and its terms against the step

The state directory is replaced atomically (written beside, then renamed), so a crash at any
moment leaves the previous complete state. Every random draw of the trainer is a function of
``(seed, step, sample keys)`` (:mod:`.schedule`), so ``step`` and ``seed`` are the whole random
state: a resumed run repeats the draws of an uninterrupted one without saved generators.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = [
    "STATE_DIR",
    "CHECKPOINT_DIR",
    "METRICS_NAME",
    "CURVE_NAME",
    "RUN_CONFIG_NAME",
    "read_state",
    "save_state",
    "load_state_into",
    "MetricsLog",
    "plot_loss_curve",
    "config_differences",
    "RESUMABLE_FIELDS",
]

log = logging.getLogger(__name__)

STATE_DIR = "state"
CHECKPOINT_DIR = "checkpoint"
METRICS_NAME = "metrics.jsonl"
CURVE_NAME = "loss_curve.png"
RUN_CONFIG_NAME = "run.json"

#: Fields that only choose how a run executes, not what it computes: they may change between
#: an interrupted run and its resumption (with train.micro_batches fixed, the worker count
#: changes only the order of float sums).
RESUMABLE_FIELDS = frozenset({
    "train.workers", "train.ray_address", "train.ray_data", "train.device",
    "train.log_every", "train.checkpoint_every", "train.max_minutes", "data.loader_workers", "data.tree_cache",
    "data.image_root", "evaluate.workers",
})


def read_state(run_dir: str | Path) -> dict[str, Any] | None:
    """``RUN/state/state.json`` as a dict, or None when the run has no saved state."""
    p = Path(run_dir) / STATE_DIR / "state.json"
    if not p.is_file():
        return None
    return json.loads(p.read_text(encoding="utf-8"))


def save_state(run_dir: str | Path, *, model: Any, optimizer: Any, scheduler: Any,
               state: Mapping[str, Any]) -> Path:
    """Write ``RUN/state/`` atomically: tensors with ``torch.save``, ``state`` as JSON."""
    import torch

    run = Path(run_dir)
    tmp = run / (STATE_DIR + ".tmp")
    old = run / (STATE_DIR + ".old")
    final = run / STATE_DIR
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(_unwrap(model).state_dict(), tmp / "model.pt")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    (tmp / "state.json").write_text(json.dumps(dict(state), indent=2) + "\n", encoding="utf-8")
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_state_into(run_dir: str | Path, *, model: Any, optimizer: Any, scheduler: Any,
                    map_location: Any = "cpu") -> dict[str, Any]:
    """Restore model, optimizer and scheduler from ``RUN/state/``; return ``state.json``."""
    import torch

    d = Path(run_dir) / STATE_DIR
    _unwrap(model).load_state_dict(torch.load(d / "model.pt", map_location=map_location, weights_only=True))
    optimizer.load_state_dict(torch.load(d / "optimizer.pt", map_location=map_location, weights_only=True))
    scheduler.load_state_dict(torch.load(d / "scheduler.pt", map_location="cpu", weights_only=False))
    return json.loads((d / "state.json").read_text(encoding="utf-8"))


def _unwrap(model: Any) -> Any:
    return getattr(model, "module", model)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any],
                       ignore: Iterable[str] = RESUMABLE_FIELDS) -> list[str]:
    """Dotted fields whose values differ between two config dicts (``to_dict`` form)."""
    a, b = _flatten(old), _flatten(new)
    skip = set(ignore)
    return sorted(k for k in set(a) | set(b) if k not in skip and a.get(k) != b.get(k))


def check_resumable(run_dir: Path, config: Mapping[str, Any]) -> None:
    """Refuse to resume a run whose stored configuration differs in a field that matters."""
    p = run_dir / RUN_CONFIG_NAME
    if not p.is_file():
        return
    old = json.loads(p.read_text(encoding="utf-8")).get("config", {})
    diff = config_differences(old, config)
    if diff:
        shown = ", ".join(f"{k}: {_flatten(old).get(k)!r} -> {_flatten(config).get(k)!r}" for k in diff[:6])
        raise ConfigError(
            "--out", str(run_dir),
            f"the same configuration as the run being resumed (differs in {shown}); "
            "use another --out, or --overwrite to start this run again",
        )


class MetricsLog:
    """``RUN/metrics.jsonl``: appends one object per logged step; on resume drops later lines."""

    def __init__(self, run_dir: str | Path, resume_step: int = 0) -> None:
        self.path = Path(run_dir) / METRICS_NAME
        kept: list[str] = []
        if self.path.is_file() and resume_step > 0:
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip() and json.loads(line).get("step", 0) <= resume_step:
                    kept.append(line)
        self.path.write_text("".join(x + "\n" for x in kept), encoding="utf-8")

    def write(self, record: Mapping[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(dict(record)) + "\n")


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of ``RUN/metrics.jsonl`` (empty list when there is none)."""
    p = Path(run_dir) / METRICS_NAME
    if not p.is_file():
        return []
    return [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]


def plot_loss_curve(run_dir: str | Path, out: str | Path | None = None) -> Path | None:
    """Draw loss (and each loss term) against the step from ``metrics.jsonl`` into a PNG."""
    records = read_metrics(run_dir)
    if not records:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = Path(out) if out is not None else Path(run_dir) / CURVE_NAME
    steps = [r["step"] for r in records]
    skip = {"step", "loss", "lr", "samples_per_s", "data_wait_fraction", "epoch", "time_s", "rounds"}
    terms = sorted({k for r in records for k in r if k not in skip and isinstance(r[k], (int, float))})
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(steps, [r["loss"] for r in records], label="loss", lw=2)
    for t in terms:
        ax.plot(steps, [r.get(t, float("nan")) for r in records], label=t, lw=1, alpha=0.8)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(Path(run_dir).name)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
