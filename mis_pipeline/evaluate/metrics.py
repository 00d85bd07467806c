"""Metrics of the click protocol: IoU with an ignore label, NoC / NoF, IoU@k.

Definitions (RITM / SimpleClick):

- IoU counts only pixels that are not ignored: ``|pred & gt & ~ignore| / |(pred | gt) & ~ignore|``.
  When that union is empty (no object and nothing predicted) the IoU is 1.
- NoC@t of one sample is the 1-based index of the first click whose IoU is ``>= t``; when the
  target is never reached within ``max_clicks`` clicks it is ``max_clicks``.
- NoF@t (number of failures) is counted two ways, both reported:
  ``nof_never_reached`` counts samples that never reach ``t`` within ``max_clicks`` clicks;
  ``nof_noc_eq_max_clicks`` counts samples with ``NoC@t == max_clicks``, RITM's and
  SimpleClick's ``>=20`` column (their ``compute_noc_metric``), which also counts a sample that
  reaches ``t`` exactly on the last click. Compare the second with published figures.
- IoU@k (``miou_at[k-1]``) is the mean over samples of the IoU after click ``k``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["iou", "noc", "noc_table", "mean_iou_curve", "target_key", "NOF_NEVER_REACHED", "NOF_NOC_EQ_MAX"]


def iou(pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """IoU of boolean masks ``pred`` and ``gt`` (shape (H, W)) over pixels not in ``ignore``."""
    pred = np.asarray(pred, dtype=bool)
    gt = np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction has shape {pred.shape}, ground truth {gt.shape}")
    inter = pred & gt
    union = pred | gt
    if ignore is not None:
        valid = ~np.asarray(ignore, dtype=bool)
        inter &= valid
        union &= valid
    u = int(np.count_nonzero(union))
    if u == 0:
        return 1.0
    return int(np.count_nonzero(inter)) / u


def noc(ious: Sequence[float] | np.ndarray, target: float, max_clicks: int) -> tuple[int, bool]:
    """Number of clicks to reach IoU ``target``, and whether it was reached.

    Parameters
    ----------
    ious : sequence of float, length <= max_clicks
        IoU after click 1, 2, ... (index 0 is after the first click).
    target : float
        IoU target in (0, 1].
    max_clicks : int
        The protocol's click budget.

    Returns
    -------
    (noc, reached) : (int, bool)
        ``noc`` is 1-based; ``(max_clicks, False)`` when no IoU within the budget reaches ``target``.
    """
    arr = np.asarray(ious, dtype=np.float64)[:max_clicks]
    hits = np.flatnonzero(arr >= target)
    if hits.size == 0:
        return max_clicks, False
    return int(hits[0]) + 1, True


def target_key(target: float) -> str:
    """JSON key of an IoU target: 0.85 -> ``"85"``, 0.875 -> ``"87.5"``."""
    pct = round(float(target) * 100, 6)
    return str(int(pct)) if float(pct).is_integer() else f"{pct:g}"


NOF_NEVER_REACHED = "nof_never_reached"
NOF_NOC_EQ_MAX = "nof_noc_eq_max_clicks"


def noc_table(
    iou_curves: Sequence[Sequence[float]] | np.ndarray, targets: Sequence[float], max_clicks: int
) -> dict[str, dict[str, float]]:
    """Mean NoC and both NoF counts per target over samples.

    ``iou_curves`` holds one IoU sequence per sample. Returns
    ``{"noc": {"85": mean NoC, ...}, "nof_never_reached": {"85": count, ...},
    "nof_noc_eq_max_clicks": {"85": count, ...}}`` (definitions in the module docstring); with
    no sample every mean is NaN and every count 0.
    """
    out_noc: dict[str, float] = {}
    out_never: dict[str, float] = {}
    out_at_max: dict[str, float] = {}
    for t in targets:
        vals = [noc(c, t, max_clicks) for c in iou_curves]
        key = target_key(t)
        out_noc[key] = float(np.mean([v[0] for v in vals])) if vals else float("nan")
        out_never[key] = int(sum(1 for v in vals if not v[1]))
        out_at_max[key] = int(sum(1 for v in vals if v[0] == max_clicks))
    return {"noc": out_noc, NOF_NEVER_REACHED: out_never, NOF_NOC_EQ_MAX: out_at_max}


def mean_iou_curve(iou_curves: Sequence[Sequence[float]] | np.ndarray, max_clicks: int) -> list[float]:
    """Mean IoU after click 1..max_clicks over samples (each curve must have max_clicks values)."""
    arr = np.asarray(iou_curves, dtype=np.float64)
    if arr.size == 0:
        return [float("nan")] * max_clicks
    if arr.ndim != 2 or arr.shape[1] != max_clicks:
        raise ValueError(f"expected IoU curves of shape (samples, {max_clicks}), got {arr.shape}")
    return [float(v) for v in arr.mean(axis=0)]
