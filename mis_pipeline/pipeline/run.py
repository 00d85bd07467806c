"""The preprocessing run: list images -> decode -> features -> merge -> commit to a tree store.

:func:`preprocess` is the one library function behind ``mis preprocess`` and
``python -m stages.preprocess``. It resumes an existing store (finished images are skipped,
failed ones too unless ``preprocess.retry_failed``), runs the pending images through the
chosen executor (``"local"``: in-process loop; ``"ray"``: see :mod:`.ray_exec`), and commits each merged
batch atomically from this process, the store's only writer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import PipelineConfig
from ..store import StoreSummary, TreeStore, TreeWriter
from .stages import batch_to_records

__all__ = [
    "preprocess",
    "PreprocessResult",
    "PreprocessInterrupted",
    "EXIT_OK",
    "EXIT_WITH_FAILURES",
    "backbone_info",
]

log = logging.getLogger(__name__)

#: Exit status of ``mis preprocess`` when every listed image is stored.
EXIT_OK = 0
#: Exit status when the run completed but some images are recorded as failed.
EXIT_WITH_FAILURES = 3

ProgressFn = Callable[[int, int], None]


class PreprocessInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGINT) stopped :func:`preprocess`; every committed batch is kept.

    A ``KeyboardInterrupt``, so code that catches that keeps working. Rerunning the same call
    resumes: committed images are skipped.

    Attributes
    ----------
    store : str
        The store directory.
    n_committed : int
        Images committed by this run before the interrupt (stored or recorded as failed).
    n_in_store : int
        Images the store holds in all (this and earlier runs).
    """

    def __init__(self, store: str, n_committed: int, n_in_store: int) -> None:
        self.store = store
        self.n_committed = n_committed
        self.n_in_store = n_in_store
        super().__init__(
            f"interrupted: {n_committed} images committed "
            f"({n_in_store} in the store {store}); run the same command again to resume"
        )


@dataclass(frozen=True)
class PreprocessResult:
    """What a run did. Counts marked "this run" exclude images skipped as already done."""

    store: str
    n_listed: int
    n_skipped: int
    n_processed: int  # this run
    n_ok: int  # this run
    n_failed: int  # this run
    failed_by_reason: dict[str, int]  # this run
    elapsed_s: float
    summary: StoreSummary  # the whole store after the run
    n_failed_listed: int = 0  # listed images recorded as failed (this or an earlier run)
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.n_processed / self.elapsed_s if self.elapsed_s > 0 else float("nan")

    @property
    def exit_code(self) -> int:
        """:data:`EXIT_OK` or, if any listed image is recorded as failed, :data:`EXIT_WITH_FAILURES`."""
        return EXIT_WITH_FAILURES if self.n_failed_listed else EXIT_OK

    def lines(self) -> list[str]:
        """Human-readable final summary."""
        out = [
            f"listed {self.n_listed} images; skipped {self.n_skipped} already done; "
            f"processed {self.n_processed} in {self.elapsed_s:.1f} s ({self.images_per_s:.2f} images/s)",
            f"this run: stored {self.n_ok}, failed {self.n_failed}",
        ]
        for reason, count in sorted(self.failed_by_reason.items()):
            out.append(f"  failed: {reason:<16} {count}")
        out += self.summary.lines()
        status = "completed with failures" if self.exit_code else "completed"
        out.append(f"status           {status} (exit {self.exit_code})")
        return out


def backbone_info(config: PipelineConfig) -> tuple[str, int, Any]:
    """``(name, patch_size, backbone)`` of the configured backbone, built once on the driver.

    Building it here also fails fast (missing weights, bad device) before any image is read;
    the local executor reuses it.
    """
    from ..features import get_backbone

    bb = get_backbone(config.features)
    return str(bb.name), int(bb.patch_size), bb


def preprocess(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: PipelineConfig,
    *,
    on_progress: ProgressFn | None = None,
) -> PreprocessResult:
    """Preprocess every image of ``source`` into the tree store ``out``; resumable.

    Parameters
    ----------
    source : str or PathLike
        A directory (recursive), a text file of paths, or an fsspec URL
        (:func:`mis_pipeline.io.list_images`).
    out : str or PathLike
        Store directory; created, or resumed if it holds a store made with the same tree
        settings.
    config : PipelineConfig
        ``preprocess.executor`` picks the executor, ``preprocess.batch_size`` the batch (and
        commit) size, ``preprocess.retry_failed`` re-attempts recorded failures.
    on_progress : callable, optional
        Called as ``on_progress(done, total)`` after each commit (images of this run).

    Returns
    -------
    PreprocessResult
        Counts, throughput and the store summary; ``exit_code`` is 0 or 3.
    """
    from ..io import list_images

    pcfg = config.preprocess
    refs = list_images(source, extensions=pcfg.extensions)
    n_ok = n_failed = 0
    by_reason: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        # Resuming: the store's settings are checked before the backbone is built (which may
        # download weights). A new store is created only after the backbone is ready, so a
        # run that cannot start leaves no store behind.
        if _is_store(out):
            writer = stack.enter_context(TreeWriter(out, config, retry_failed=pcfg.retry_failed))
            name, patch, backbone = backbone_info(config)
        else:
            name, patch, backbone = backbone_info(config)
            writer = stack.enter_context(TreeWriter(out, config, retry_failed=pcfg.retry_failed))
        t0 = time.perf_counter()
        todo = [r for r in refs if not writer.is_done(r.image_id)]
        log.info("%d images listed, %d to process (%s executor)", len(refs), len(todo), pcfg.executor)
        if on_progress is not None:
            on_progress(0, len(todo))
        ray_stats = None
        if pcfg.executor == "ray":
            from .ray_exec import RayRunStats, run_ray

            ray_stats = RayRunStats()
            batches = run_ray(todo, config, patch, backbone=backbone, stats=ray_stats)
        else:
            from .local import run_local

            batches = run_local(todo, config, patch, backbone=backbone)
        done = 0
        try:
            for batch in batches:
                records = batch_to_records(batch, name)
                with _signals_deferred():  # a commit and its count are one step for Ctrl-C
                    writer.commit(records)
                    for r in records:
                        if r.ok:
                            n_ok += 1
                        else:
                            n_failed += 1
                            by_reason[r.reason] = by_reason.get(r.reason, 0) + 1
                    done += len(records)
                if on_progress is not None:
                    on_progress(done, len(todo))
        except KeyboardInterrupt as exc:
            if isinstance(exc, PreprocessInterrupted):
                raise
            _close_quietly(batches)
            in_store = sum(1 for r in refs if writer.status_of(r.image_id) is not None)
            raise PreprocessInterrupted(str(Path(out)), done, in_store) from exc
        failed_listed = sum(1 for r in refs if writer.status_of(r.image_id) == "failed")
    elapsed = time.perf_counter() - t0
    summary = TreeStore.open(out).summary()
    result = PreprocessResult(
        store=str(Path(out)),
        n_listed=len(refs),
        n_skipped=len(refs) - len(todo),
        n_processed=n_ok + n_failed,
        n_ok=n_ok,
        n_failed=n_failed,
        failed_by_reason=by_reason,
        elapsed_s=elapsed,
        summary=summary,
        n_failed_listed=failed_listed,
        extra=ray_stats.as_extra() if ray_stats is not None else {},
    )
    log.debug("preprocess done: %s", "; ".join(result.lines()[:2]))
    return result


def _is_store(out: str | os.PathLike[str]) -> bool:
    """Whether ``out`` already holds a (possibly half-created) Zarr group: a resume."""
    return (Path(out) / "zarr.json").is_file()


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back until the block ends, then deliver them (main thread only).

    Ctrl-C (or a scheduler's SIGTERM) during a commit then lands before or after it, never
    between the store's commit marker and this run's counts, so the "N images committed" of
    the interrupt is exact. (The store itself is consistent at any instant, even under
    SIGKILL.) A signal whose handler is the default one is re-raised with that default.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    kinds = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum)) for sig in kinds}
    try:
        yield
    finally:
        for sig in kinds:
            signal.signal(sig, previous[sig])
        for sig in dict.fromkeys(received):  # each signal once, in arrival order
            handler = previous[sig]
            if handler is signal.SIG_IGN:
                continue
            if callable(handler):
                handler(sig, None)
            elif sig == signal.SIGINT:  # SIG_DFL or a handler set outside Python
                raise KeyboardInterrupt
            else:
                signal.raise_signal(sig)


def _close_quietly(batches: Any) -> None:
    """Stop an executor's batch generator after an interrupt (cancels Ray's tasks in flight).

    A second Ctrl-C while it shuts down is ignored: the store is already consistent.
    """
    close = getattr(batches, "close", None)
    if close is None:
        return
    try:
        close()
    except (Exception, KeyboardInterrupt):  # noqa: BLE001 - best effort on the way out
        log.debug("closing the executor after an interrupt failed", exc_info=True)
