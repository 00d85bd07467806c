"""Run the click protocol over a dataset, sequentially or in a process pool.

Per-sample determinism: a sample's clicks and IoUs depend only on the sample, the predictor
settings and the protocol settings (no shared state between samples; a worker builds its own
predictor and calls ``reset`` per image), so the results do not depend on the number of
workers or on which worker took which sample. Results are returned in sample order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .clicker import Clicker
from .datasets import Dataset, Sample
from .metrics import iou
from .predictors import Predictor, make_predictor
from .results import EvalResult, SampleResult

if TYPE_CHECKING:
    from ..config import EvalConfig, PipelineConfig

__all__ = ["evaluate_sample", "evaluate_dataset", "usable_cores"]

logger = logging.getLogger(__name__)


def _check_prob(prob: np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    prob = np.asarray(prob)
    if prob.shape != shape:
        raise ValueError(f"predictor {name!r} returned shape {prob.shape}, expected {shape}")
    return prob.astype(np.float32, copy=False)


def evaluate_sample(sample: Sample, predictor: Predictor, cfg: EvalConfig, index: int = 0,
                    reference: object | None = None) -> SampleResult:
    """The protocol on one sample: ``cfg.max_clicks`` clicks, IoU after each.

    Before the first click the prediction is empty and ``prev_prob`` is zeros; after each click
    the predictor's probability is thresholded with ``prob > cfg.pred_threshold`` (as RITM).
    ``reference`` (a part dataset's :class:`~mis_pipeline.evaluate.parts.Reference`) is handed to
    the predictor's ``set_reference`` after ``reset`` (its time counts as reset time).
    """
    h, w = sample.gt.shape
    t0 = time.perf_counter()
    if predictor.uses_ground_truth:
        predictor.reset(sample.image, gt=sample.gt, ignore=sample.ignore)
    else:
        predictor.reset(sample.image)
    if reference is not None:
        set_reference = getattr(predictor, "set_reference", None)
        if set_reference is None:
            raise ValueError(f"predictor {predictor.name!r} takes no reference (evaluate.reference 'auto')")
        set_reference(reference)
    t_reset = time.perf_counter() - t0

    clicker = Clicker(sample.gt, sample.ignore)
    prob = np.zeros((h, w), dtype=np.float32)
    pred = np.zeros((h, w), dtype=bool)
    ious: list[float] = []
    times: list[float] = []
    for _ in range(cfg.max_clicks):
        click = clicker.make_next_click(pred)
        if click is None:  # nothing left to click: the prediction (and IoU) stays
            ious.append(ious[-1] if ious else iou(pred, sample.gt, sample.ignore))
            continue
        t0 = time.perf_counter()
        prob = _check_prob(predictor.predict(list(clicker.clicks), prob), (h, w), predictor.name)
        times.append(time.perf_counter() - t0)
        pred = prob > cfg.pred_threshold
        ious.append(iou(pred, sample.gt, sample.ignore))
    return SampleResult(
        index=index,
        sample_id=sample.sample_id,
        ious=[float(v) for v in ious],
        clicks=list(clicker.clicks),
        seconds_reset=t_reset,
        seconds_predict=times,
        kind=sample.kind,
        parts=sample.parts,
        reference_id=sample.reference_id,
    )


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------- worker side
_WORKER: dict[str, object] = {}


def _init_worker(dataset: Dataset, predictor_name: str, cfg: PipelineConfig) -> None:
    # One predictor per worker process; limit native thread pools so that N workers use N cores.
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - OpenCV is a dependency
        pass
    _WORKER["dataset"] = dataset
    _WORKER["cfg"] = cfg
    predictor = make_predictor(predictor_name, cfg)
    predictor.warmup()
    _WORKER["predictor"] = predictor


def _run_one(index: int) -> SampleResult:
    dataset = _WORKER["dataset"]
    predictor = _WORKER["predictor"]
    cfg = _WORKER["cfg"]
    sample = dataset.load(index)  # type: ignore[attr-defined]
    ref = _reference(dataset, index, cfg.evaluate)  # type: ignore[arg-type,attr-defined]
    return evaluate_sample(sample, predictor, cfg.evaluate, index, ref)  # type: ignore[arg-type,attr-defined]


def _reference(dataset: Dataset, index: int, cfg: EvalConfig) -> object | None:
    """The sample's RefCut reference when ``cfg.reference == 'auto'`` (part datasets), else None."""
    if getattr(cfg, "reference", "none") != "auto":
        return None
    load = getattr(dataset, "load_reference", None)
    if load is None:
        raise ValueError(f"dataset {dataset.name!r} has no references (evaluate.reference 'auto' needs "
                         "--dataset parts)")
    return load(index)


def evaluate_dataset(
    dataset: Dataset,
    cfg: PipelineConfig,
    predictor: str | None = None,
    indices: Sequence[int] | None = None,
    workers: int | None = None,
    progress: Callable[[int, int, SampleResult], None] | None = None,
) -> EvalResult:
    """Evaluate ``predictor`` (a registry name; default ``cfg.evaluate.predictor``) on ``dataset``.

    Parameters
    ----------
    dataset : Dataset
    cfg : PipelineConfig
        Protocol settings (``cfg.evaluate``) and predictor settings.
    indices : sequence of int, optional
        Subset of sample indices (default: all, in order).
    workers : int, optional
        Worker processes (default ``cfg.evaluate.workers``, whose default ``None`` means
        :func:`usable_cores`); 1 runs in this process. Never more than the samples.
    progress : callable ``(done, total, result)``, optional
        Called after each finished sample (in completion order).
    """
    name = predictor or cfg.evaluate.predictor
    n_samples = len(dataset)
    idx = list(range(n_samples)) if indices is None else [int(i) for i in indices]
    bad = [i for i in idx if not 0 <= i < n_samples]
    if bad:
        raise IndexError(f"sample index {bad[0]} out of range for {n_samples} samples")
    n_workers = max(1, min(workers or cfg.evaluate.workers or usable_cores(), len(idx) or 1))
    template = make_predictor(name, cfg)  # built here too: bad settings fail before any work
    if getattr(cfg.evaluate, "reference", "none") == "auto":  # RefCut references (issue 16)
        from ..errors import ConfigError

        if not hasattr(template, "set_reference"):
            raise ConfigError("evaluate.reference", "auto", f"'none' for predictor {name!r} (only 'model' takes references)")
        if not hasattr(dataset, "load_reference"):
            raise ConfigError("evaluate.reference", "auto", f"'none' for dataset {dataset.name!r} (references: --dataset parts)")
    t0 = time.perf_counter()  # wall time includes worker start-up and warm-up
    results: list[SampleResult] = []
    if n_workers == 1:
        template.warmup()
        for k, i in enumerate(idx):
            r = evaluate_sample(dataset.load(i), template, cfg.evaluate, i, _reference(dataset, i, cfg.evaluate))
            results.append(r)
            if progress is not None:
                progress(k + 1, len(idx), r)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # 'spawn': fork is unsafe with the thread pools of OpenCV, numba and torch.
        ctx = mp.get_context("spawn")
        by_index: dict[int, SampleResult] = {}
        with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(dataset, name, cfg)) as pool:
            futures = [pool.submit(_run_one, i) for i in idx]
            for k, fut in enumerate(as_completed(futures)):
                r = fut.result()
                by_index[r.index] = r
                if progress is not None:
                    progress(k + 1, len(idx), r)
        results = [by_index[i] for i in idx]
    wall = time.perf_counter() - t0
    logger.info("evaluated %d samples of %s with %r in %.1f s (%d workers)",
                len(results), dataset.name, name, wall, n_workers)
    return EvalResult(
        dataset=dataset.name,
        data=str(dataset.root),
        predictor=name,
        samples=results,
        max_clicks=cfg.evaluate.max_clicks,
        iou_targets=tuple(cfg.evaluate.iou_targets),
        predictor_settings=template.describe(),
        uses_ground_truth=template.uses_ground_truth,
        wall_seconds=wall,
        workers=n_workers,
    )
