"""Iterative training: the next click from a prediction, and adding it to the click set.

The reference rule (``get_next_points`` in RITM's, SimpleClick's and MIS's
``isegm/engine/trainer.py``; it is not the evaluation clicker's argmax):

* false negatives ``fn = gt & (prob < threshold)``, false positives ``fp = ~gt & (prob >
  threshold)`` (threshold 0.49; a pixel exactly at the threshold is neither);
* each region's distance to its border, computed with a 1-px zero pad (so the image edge
  counts as border) by OpenCV's ``distanceTransform(DIST_L2, 5)``, a 5x5 chamfer
  approximation of the Euclidean distance (``distance="exact"`` uses the exact one);
* the click is positive if the fn maximum is larger, negative otherwise (ties negative);
* it is a uniformly drawn pixel of the chosen region whose distance exceeds half the larger
  maximum; with no error at all there is no click.

Speed: each distance transform runs on its region's bounding box padded by one zero pixel,
which gives exactly the full-image values there (every pixel outside the box is outside the
region), instead of the whole padded image; tests compare with the full-image reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import ClickConfig
from . import _draws as D

__all__ = ["next_clicks", "add_clicks"]

_DEFAULT = ClickConfig()


def _to_numpy(name: str, a: Any) -> np.ndarray:
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # torch.Tensor, without importing torch
        t = a.detach()
        if t.is_floating_point() and t.element_size() < 4:  # float16 / bfloat16 (autocast)
            t = t.float()
        a = t.cpu().numpy()
    arr = np.asarray(a)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise ValueError(f"{name} must have shape (B, H, W) or (B, 1, H, W), got {arr.shape}")
    return arr


def _region_dt(region: np.ndarray, mask_size: int) -> tuple[np.ndarray, int, int] | None:
    """Distance transform of ``region`` (zero-padded by 1 px) on its bounding box:
    ``(dt (h, w) float32, row0, col0)``, or None when the region is empty."""
    import cv2

    # numpy's any() (not OpenCV's reduce(REDUCE_MAX), 10-100x slower here) for the box.
    rows = np.flatnonzero(region.any(axis=1))
    if rows.size == 0:
        return None
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(region[r0:r1].any(axis=0))
    c0, c1 = int(cols[0]), int(cols[-1]) + 1
    padded = np.pad(region[r0:r1, c0:c1].view(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, mask_size)[1:-1, 1:-1], r0, c0


def next_clicks(
    prob: Any,
    gt: Any,
    rng: np.random.Generator | Sequence[np.random.Generator],
    *,
    threshold: float = _DEFAULT.next_click_threshold,
    distance: str = _DEFAULT.next_click_distance,
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The next training click of each sample of a batch (the reference's random-pixel rule).

    Parameters
    ----------
    prob : (B, H, W) or (B, 1, H, W) float, numpy or torch (moved to CPU)
        Predicted foreground probability (the sigmoid of the logits).
    gt : same shape, bool or float (read as ``> 0.5``, as the reference)
        The training target.
    rng : numpy.random.Generator, or a sequence of B of them
        One integer is drawn per sample that gets a click, in sample order; with a sequence,
        sample ``i`` draws from ``rng[i]`` (per-sample streams, independent of the batch).
    threshold : float
        Error-region threshold (RITM/MIS training: 0.49).
    distance : "chamfer" | "exact"
        OpenCV's 5x5-mask approximation (the reference) or the exact Euclidean distance.
    workers : int >= 1
        Threads for the distance transforms (OpenCV releases the GIL). The random draws are
        made afterwards in sample order, so the result does not depend on ``workers``.

    Returns
    -------
    points : (B, 2) int32
        ``(row, col)`` of each new click (0, 0 where none).
    labels : (B,) int8
        1 positive (from the false negatives), 0 negative.
    found : (B,) bool
        False where the prediction has no error region (no click).
    """
    import cv2

    if distance not in ("chamfer", "exact"):
        raise ValueError(f"distance must be 'chamfer' or 'exact', got {distance!r}")
    p = _to_numpy("prob", prob)
    g = _to_numpy("gt", gt)
    if g.shape != p.shape:
        raise ValueError(f"gt has shape {g.shape}; it must match prob's {p.shape}")
    g = g if g.dtype == bool else g > 0.5
    mask_size = 5 if distance == "chamfer" else cv2.DIST_MASK_PRECISE
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    b = p.shape[0]
    if isinstance(rng, np.random.Generator):
        rngs = [rng] * b
    else:
        rngs = list(rng)
        if len(rngs) != b or not all(isinstance(r, np.random.Generator) for r in rngs):
            raise ValueError(
                f"rng must be a numpy Generator or a sequence of {b} of them (one per sample)"
            )

    def transforms(i: int) -> tuple:
        fn = _region_dt(np.ascontiguousarray(g[i] & (p[i] < threshold)), mask_size)
        fp = _region_dt(np.ascontiguousarray(~g[i] & (p[i] > threshold)), mask_size)
        return fn, fp

    if workers > 1 and b > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(workers, b)) as pool:
            dts = list(pool.map(transforms, range(b)))
    else:
        dts = [transforms(i) for i in range(b)]

    points = np.zeros((b, 2), np.int32)
    labels = np.zeros(b, np.int8)
    found = np.zeros(b, bool)
    for i, (fn, fp) in enumerate(dts):
        fn_max = float(fn[0].max()) if fn is not None else 0.0
        fp_max = float(fp[0].max()) if fp is not None else 0.0
        positive = fn_max > fp_max
        chosen = fn if positive else fp
        if chosen is None:
            continue
        dt, r0, c0 = chosen
        # Row-major order inside the box is the image's row-major order.
        cand = np.flatnonzero(dt > max(fn_max, fp_max) / 2.0)
        if cand.size == 0:
            continue
        r, c = divmod(int(cand[D.draw_pixel(rngs[i], cand.size)]), dt.shape[1])
        points[i] = (r0 + r, c0 + c)
        labels[i] = 1 if positive else 0
        found[i] = True
    return points, labels, found


def _slots_numpy(valid: np.ndarray, new_labels: np.ndarray) -> np.ndarray:
    b, k = valid.shape
    m = k // 2
    half = (np.asarray(new_labels) != 1).astype(np.int64)  # 0 positive, 1 negative
    taken = valid.reshape(b, 2, m)[np.arange(b), half]  # (B, M)
    free = ~taken
    first = np.argmax(free, axis=1)
    return half * m + np.where(free.any(axis=1), first, m - 1)


def add_clicks(
    points: Any, labels: Any, valid: Any, new_points: Any, new_labels: Any, found: Any
) -> tuple[Any, Any, Any]:
    """Write one new click per sample into the first free slot of its half.

    The layout is that of :class:`~mis_pipeline.clicks.Clicks`: slots ``0..M-1`` positive,
    ``M..2M-1`` negative. When the half is full the click overwrites its last slot (the
    reference writes its first extra click to that slot whatever it held; it counts its
    extra clicks back from the end of the half, so an earlier click survives there only when
    the half is full, which :func:`sample_clicks` makes rare: P(24 positives) ~ 0.1 %).

    Parameters
    ----------
    points : (B, K, 2) int, labels : (B, K) int, valid : (B, K) bool
        numpy arrays or torch tensors (then the result is torch, on their device).
    new_points : (B, 2), new_labels : (B,), found : (B,)
        From :func:`next_clicks` (numpy or torch). Samples with ``found == False`` are left
        unchanged.

    Returns
    -------
    (points, labels, valid)
        New arrays / tensors; the inputs are not modified.
    """
    is_torch = hasattr(points, "detach") and hasattr(points, "device")
    if is_torch:
        return _add_clicks_torch(points, labels, valid, new_points, new_labels, found)
    points = np.array(points, copy=True)
    labels = np.array(labels, copy=True)
    valid = np.array(valid, dtype=bool, copy=True)
    _check_shapes(points.shape, labels.shape, valid.shape)
    new_points = _to_np1(new_points)
    new_labels = _to_np1(new_labels)
    found = _to_np1(found).astype(bool)
    slots = _slots_numpy(valid, new_labels)
    rows = np.flatnonzero(found)
    points[rows, slots[rows]] = new_points[rows]
    labels[rows, slots[rows]] = np.where(new_labels[rows] == 1, 1, 0)
    valid[rows, slots[rows]] = True
    return points, labels, valid


def _to_np1(a: Any) -> np.ndarray:
    if hasattr(a, "detach") and hasattr(a, "cpu"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _check_shapes(p: tuple, lab: tuple, v: tuple) -> None:
    if len(p) != 3 or p[2] != 2:
        raise ValueError(f"points must have shape (B, K, 2), got {tuple(p)}")
    if tuple(lab) != tuple(p[:2]) or tuple(v) != tuple(p[:2]):
        raise ValueError(f"labels {tuple(lab)} and valid {tuple(v)} must have shape {tuple(p[:2])}")
    if p[1] % 2:
        raise ValueError(f"K = {p[1]} slots is odd; the layout needs K = 2 * max_points")


def _add_clicks_torch(points, labels, valid, new_points, new_labels, found):  # noqa: ANN001, ANN202
    import torch

    _check_shapes(tuple(points.shape), tuple(labels.shape), tuple(valid.shape))
    dev = points.device
    b, k = valid.shape
    m = k // 2
    new_points = torch.as_tensor(new_points, device=dev).to(points.dtype)
    new_labels = torch.as_tensor(new_labels, device=dev)
    found = torch.as_tensor(found, device=dev).to(torch.bool)
    half = (new_labels != 1).to(torch.int64)
    bi = torch.arange(b, device=dev)
    taken = valid.to(torch.bool).view(b, 2, m)[bi, half]  # (B, M)
    free = ~taken
    # argmax over a 0/1 tensor returns the first maximum: the first free slot.
    first = free.to(torch.uint8).argmax(dim=1)
    slot = half * m + torch.where(free.any(dim=1), first, torch.full_like(first, m - 1))
    points = points.clone()
    labels = labels.clone()
    valid = valid.clone()
    keep_p = points[bi, slot]
    points[bi, slot] = torch.where(found[:, None], new_points, keep_p)
    new_lab = (new_labels == 1).to(labels.dtype)
    labels[bi, slot] = torch.where(found, new_lab, labels[bi, slot])
    valid[bi, slot] = torch.where(found, torch.ones_like(found), valid[bi, slot].to(torch.bool)).to(valid.dtype)
    return points, labels, valid
