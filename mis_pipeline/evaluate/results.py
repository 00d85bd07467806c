"""Evaluation results: per-sample records, the summary, and their files.

Files written by :func:`write_results` into an output folder:

- ``summary.json``: ``{"dataset", "data", "predictor", "num_samples", "max_clicks",
  "iou_targets", "noc": {"80": ..}, "nof_never_reached": {"80": ..},
  "nof_noc_eq_max_clicks": {"80": ..}, "miou_at": [IoU@1..IoU@max_clicks],
  "seconds_per_click", "seconds_per_click_predict", "seconds_reset_mean", "predictor_settings",
  "uses_ground_truth", "wall_seconds", "workers", "mis_pipeline_version"}``. ``seconds_per_click``
  is the predictor's total time (per-image setup included) divided by the number of clicks it
  answered; ``seconds_per_click_predict`` leaves the per-image setup out. The two NoF counts
  are defined in :mod:`.metrics`: ``nof_noc_eq_max_clicks`` is the column RITM and SimpleClick
  publish (``>=20``), ``nof_never_reached`` the samples that never reach the target. (Files
  written before both were reported hold one ``"nof"``, the never-reached count;
  :func:`load_summary` maps it.)
- ``per_sample.csv``: one row per sample: ``index, sample_id, kind, parts, reference_id``,
  ``noc_<t>`` and ``reached_<t>`` per target, ``iou_1..iou_<max_clicks>``, ``clicks_made``,
  ``seconds_reset``, ``seconds_predict``;
- ``per_sample.json``: the same plus every click (``[row, col, is_positive]``);
- ``summary.txt``: the summary table of :func:`format_summary`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError
from .clicker import Click
from .metrics import NOF_NEVER_REACHED, NOF_NOC_EQ_MAX, mean_iou_curve, noc, noc_table, target_key

__all__ = ["SampleResult", "EvalResult", "write_results", "load_summary", "format_summary"]


@dataclass
class SampleResult:
    """The protocol's record of one sample.

    ``ious[k]`` is the IoU after click ``k + 1`` (always ``max_clicks`` values: when the clicker
    has nothing left to click the last IoU is repeated); ``clicks`` are the clicks actually made;
    times are seconds of predictor work (``reset`` once, ``predict`` per click).
    """

    index: int
    sample_id: str
    ious: list[float]
    clicks: list[Click]
    seconds_reset: float
    seconds_predict: list[float]
    kind: str = "object"
    parts: tuple[str, ...] = ()
    reference_id: str | None = None

    def noc(self, target: float, max_clicks: int) -> tuple[int, bool]:
        return noc(self.ious, target, max_clicks)

    def same_outcome(self, other: SampleResult) -> bool:
        """Equal clicks and IoUs (times aside): what worker-count independence means."""
        return (
            self.index == other.index
            and self.sample_id == other.sample_id
            and self.clicks == other.clicks
            and np.array_equal(np.asarray(self.ious), np.asarray(other.ious))
        )


@dataclass
class EvalResult:
    """All sample records of one run plus what was run."""

    dataset: str
    data: str
    predictor: str
    samples: list[SampleResult]
    max_clicks: int
    iou_targets: tuple[float, ...]
    predictor_settings: dict[str, Any] = field(default_factory=dict)
    uses_ground_truth: bool = False
    wall_seconds: float = 0.0
    workers: int = 1

    def summary(self) -> dict[str, Any]:
        from .._version import __version__

        curves = [s.ious for s in self.samples]
        table = noc_table(curves, self.iou_targets, self.max_clicks)
        n_clicks = sum(len(s.seconds_predict) for s in self.samples)
        t_pred = sum(sum(s.seconds_predict) for s in self.samples)
        t_reset = sum(s.seconds_reset for s in self.samples)
        return {
            "dataset": self.dataset,
            "data": self.data,
            "predictor": self.predictor,
            "num_samples": len(self.samples),
            "max_clicks": self.max_clicks,
            "iou_targets": list(self.iou_targets),
            "noc": table["noc"],
            NOF_NEVER_REACHED: table[NOF_NEVER_REACHED],
            NOF_NOC_EQ_MAX: table[NOF_NOC_EQ_MAX],
            "miou_at": mean_iou_curve(curves, self.max_clicks),
            "seconds_per_click": (t_pred + t_reset) / n_clicks if n_clicks else float("nan"),
            "seconds_per_click_predict": t_pred / n_clicks if n_clicks else float("nan"),
            "seconds_reset_mean": t_reset / len(self.samples) if self.samples else float("nan"),
            "predictor_settings": self.predictor_settings,
            "uses_ground_truth": self.uses_ground_truth,
            "wall_seconds": self.wall_seconds,
            "workers": self.workers,
            "mis_pipeline_version": __version__,
        }


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def write_results(result: EvalResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``summary.json``, ``per_sample.csv``, ``per_sample.json`` and ``summary.txt`` into
    ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    paths = {"summary": out / "summary.json", "csv": out / "per_sample.csv", "json": out / "per_sample.json",
             "table": out / "summary.txt"}
    paths["summary"].write_text(json.dumps(_json_safe(summary), indent=2) + "\n", encoding="utf-8")
    paths["table"].write_text(format_summary([summary]) + "\n", encoding="utf-8")

    keys = [target_key(t) for t in result.iou_targets]
    header = ["index", "sample_id", "kind", "parts", "reference_id"]
    header += [f"noc_{k}" for k in keys] + [f"reached_{k}" for k in keys]
    header += [f"iou_{i + 1}" for i in range(result.max_clicks)]
    header += ["clicks_made", "seconds_reset", "seconds_predict"]
    records = []
    with paths["csv"].open("w", newline="", encoding="utf-8") as fh:
        wr = csv.writer(fh)
        wr.writerow(header)
        for s in result.samples:
            nocs = [s.noc(t, result.max_clicks) for t in result.iou_targets]
            wr.writerow(
                [s.index, s.sample_id, s.kind, "+".join(s.parts), s.reference_id or ""]
                + [n for n, _ in nocs]
                + [int(r) for _, r in nocs]
                + [f"{v:.6f}" for v in s.ious]
                + [len(s.clicks), f"{s.seconds_reset:.6f}", f"{sum(s.seconds_predict):.6f}"]
            )
            records.append(
                {
                    "index": s.index,
                    "sample_id": s.sample_id,
                    "kind": s.kind,
                    "parts": list(s.parts),
                    "reference_id": s.reference_id,
                    "noc": {k: n for k, (n, _) in zip(keys, nocs, strict=True)},
                    "reached": {k: r for k, (_, r) in zip(keys, nocs, strict=True)},
                    "ious": s.ious,
                    "clicks": [[c.row, c.col, c.is_positive] for c in s.clicks],
                    "seconds_reset": s.seconds_reset,
                    "seconds_predict": s.seconds_predict,
                }
            )
    paths["json"].write_text(json.dumps(_json_safe(records)) + "\n", encoding="utf-8")
    return paths


def load_summary(path: str | Path) -> dict[str, Any]:
    """Read a ``summary.json`` (or the folder holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / "summary.json"
    if not p.is_file():
        raise DatasetError(f"no evaluation summary at {str(path)!r} (expected summary.json or its folder)")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{str(p)!r} is not valid JSON: {exc}") from exc
    for key in ("predictor", "dataset", "miou_at", "noc"):
        if key not in data:
            raise DatasetError(f"{str(p)!r} is not an evaluation summary (no {key!r})")
    if "nof" in data and NOF_NEVER_REACHED not in data:  # written before both counts existed
        data[NOF_NEVER_REACHED] = data.pop("nof")
    return data


def format_summary(summaries: Sequence[dict[str, Any]]) -> str:
    """A fixed-width table of one or more summaries (NoC and NoF per target, speed).

    ``NoF@t`` shows ``a/b``: ``a`` samples with NoC@t equal to the click budget (RITM's and
    SimpleClick's published column), ``b`` of them never reaching ``t`` (``-`` when a file
    does not hold that count).
    """
    if not summaries:
        return ""
    keys = list(summaries[0]["noc"])
    head = f"{'predictor':<12}{'dataset':<11}{'samples':>8}"
    head += "".join(f"{'NoC@' + k:>9}" for k in keys) + "".join(f"{'NoF@' + k:>9}" for k in keys)
    head += f"{'IoU@1':>8}{'IoU@5':>8}{'s/click':>9}"
    lines = [head, "-" * len(head)]
    for s in summaries:
        miou = s.get("miou_at") or []

        def at(k: int, miou: list = miou) -> str:
            v = miou[k - 1] if len(miou) >= k and miou[k - 1] is not None else float("nan")
            return f"{v:>8.3f}"

        def nof(k: str, s: dict = s) -> str:
            a = (s.get(NOF_NOC_EQ_MAX) or {}).get(k)
            b = (s.get(NOF_NEVER_REACHED) or {}).get(k)
            return f"{'-' if a is None else a}/{'-' if b is None else b}"

        spc = s.get("seconds_per_click")
        row = f"{s['predictor']:<12}{s['dataset']:<11}{s['num_samples']:>8}"
        row += "".join(f"{(s['noc'].get(k) if s['noc'].get(k) is not None else float('nan')):>9.2f}" for k in keys)
        row += "".join(f"{nof(k):>9}" for k in keys)
        row += at(1) + at(5) + f"{(spc if spc is not None else float('nan')):>9.3f}"
        lines.append(row)
    lines.append("NoF@t: a/b = a samples with NoC@t = max_clicks (RITM's column), b never reaching t")
    return "\n".join(lines)
