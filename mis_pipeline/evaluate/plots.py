"""Figures of evaluation results: IoU-vs-clicks curves, and clicks drawn on images.

:func:`plot_curves` builds a standalone :class:`matplotlib.figure.Figure` (no pyplot, so no
global backend is touched: it renders with Agg to files on headless machines and still
displays inline in notebooks); :func:`overlay_clicks` needs only numpy and OpenCV.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DependencyError
from .clicker import Click

__all__ = ["plot_curves", "overlay_clicks"]


def plot_curves(
    summaries: Sequence[dict[str, Any]],
    out_path: str | Path | None = None,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    targets: Sequence[float] = (0.85, 0.90),
    ax: Any = None,
) -> Any:
    """Mean IoU after each click (``summary["miou_at"]``) of several runs in one figure.

    Parameters
    ----------
    summaries : sequence of dict
        Evaluation summaries (:meth:`EvalResult.summary` or :func:`load_summary`).
    out_path : path, optional
        Write the figure there (format from the suffix, e.g. ``.png``).
    labels : sequence of str, optional
        Legend entries; default ``"<predictor> (<dataset>) NoC@90 x.xx"``.
    title : str, optional
    targets : sequence of float
        IoU targets drawn as dotted horizontal lines.
    ax : matplotlib Axes, optional
        Draw into these axes (e.g. from ``plt.subplots()`` in a notebook) instead of a new
        standalone figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into.
    """
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise DependencyError("matplotlib", "plotting IoU curves") from exc
    if not summaries:
        raise ValueError("plot_curves needs at least one summary")
    if labels is not None and len(labels) != len(summaries):
        raise ValueError(f"got {len(labels)} labels for {len(summaries)} summaries")
    if ax is None:
        fig = Figure(figsize=(6.4, 4.2), dpi=120)
        ax = fig.subplots()
    else:
        fig = ax.figure
    for i, s in enumerate(summaries):
        y = [np.nan if v is None else v for v in s["miou_at"]]
        x = np.arange(1, len(y) + 1)
        if labels is not None:
            lab = labels[i]
        else:
            noc90 = s.get("noc", {}).get("90")
            extra = f" NoC@90 {noc90:.2f}" if isinstance(noc90, (int, float)) else ""
            lab = f"{s.get('predictor', '?')} ({s.get('dataset', '?')}){extra}"
        ax.plot(x, y, marker="o", markersize=3, linewidth=1.5, label=lab)
    for t in targets:
        ax.axhline(t, color="grey", linestyle=":", linewidth=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of clicks")
    ax.set_ylabel("mean IoU")
    ax.set_ylim(0, 1)
    ax.set_xlim(1, max(len(s["miou_at"]) for s in summaries))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    if title:
        ax.set_title(title)
    if ax.figure is fig and len(fig.axes) == 1:
        fig.tight_layout()
    if out_path is not None:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out_path)
    return fig


def overlay_clicks(
    image: np.ndarray,
    mask: np.ndarray | None,
    clicks: Sequence[Click],
    alpha: float = 0.45,
    radius: int | None = None,
) -> np.ndarray:
    """Image with a translucent mask and numbered-order click markers drawn on it.

    Parameters
    ----------
    image : ndarray (H, W, 3) uint8, RGB
    mask : ndarray (H, W) bool, optional
        Drawn in blue with opacity ``alpha`` and a white contour.
    clicks : sequence of Click
        Positive clicks as green, negative as red filled circles with a white rim.
    radius : int, optional
        Marker radius in pixels (default: 1 % of the image diagonal, at least 3).

    Returns
    -------
    ndarray (H, W, 3) uint8, RGB
    """
    import cv2

    out = np.array(image, dtype=np.uint8, copy=True)
    h, w = out.shape[:2]
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        tint = np.array([40, 110, 255], dtype=np.float32)
        out[m] = (out[m].astype(np.float32) * (1 - alpha) + tint * alpha).astype(np.uint8)
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, (255, 255, 255), 1)
    r = radius if radius is not None else max(3, int(round(0.01 * float(np.hypot(h, w)))))
    for c in clicks:
        colour = (40, 220, 40) if c.is_positive else (235, 40, 40)
        cv2.circle(out, (int(c.col), int(c.row)), r, colour, -1, lineType=cv2.LINE_AA)  # OpenCV takes (x, y)
        cv2.circle(out, (int(c.col), int(c.row)), r, (255, 255, 255), 1, lineType=cv2.LINE_AA)
    return out
