"""Ray executor: batches of images -> trees on Ray workers, committed by the driver.

The driver (the process that calls :func:`run_ray`) is the only process that writes the store,
so commits stay atomic and no two processes ever write into one shard. Workers only ever return
trees (pixels and features are dropped in the stage that consumes them).

Two ways to run the feature stage (``preprocess.feature_compute``):

* **tasks** (CPU; the default without GPUs): one Ray task per batch runs decode -> features ->
  merge in the worker process, which builds the backbone once and keeps it. The driver keeps
  at most ``2 x CPUs`` batches in flight and commits results as they arrive. Plain tasks, not
  Ray Data: on a cold local instance Ray Data's operators took about 2 s longer to deliver
  the first batch (measured on 2 cores, `benchmarks/bench_pipeline.py`) and add nothing when
  the three stages fuse into one function anyway.
* **actors** (GPUs; the default when the cluster has them): a Ray Data pipeline, decode as
  CPU tasks -> a pool of ``preprocess.feature_actors`` feature actors (one GPU each unless
  ``preprocess.gpus_per_actor``) -> merge as CPU tasks.

Joining and starting Ray: with ``preprocess.ray_address`` or ``$RAY_ADDRESS`` (as set by
``ray job submit``), or when Ray is already initialised in this process, the run joins that
cluster. Otherwise it starts a local instance, which costs about 3 s and 4 CPU-seconds (eight
processes: GCS, raylet, API server, agents, monitors, idle workers) before the first worker
can take a batch. So without a cluster, and on the CPU task path:

1. the driver starts on the corpus itself (a 4-image warm-up batch, an 8-image timed batch);
2. it starts Ray only when its own estimate of the remaining work exceeds
   ``preprocess.ray_min_local_s`` (by default where Ray pays off: 10 s on 2 CPUs, 5.7 s on 8,
   see :func:`ray_min_local_s`); below that the run ends in this process (a few hundred
   images with the weights-free backbone on 2 CPUs) and Ray is never started;
3. while Ray starts, and until the first batch comes back from a worker, the driver keeps
   computing batches (``preprocess.driver_works``); when no batch is left to hand out it
   computes the newest one still in flight and cancels that task (whichever result comes
   first is committed; the trees are the same, as both run the same stage code).

All three are logged, and :class:`RayRunStats` records who computed what.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..config import PipelineConfig
from ..errors import DependencyError, RayStartError
from ..io import ImageRef
from .stages import DecodeStage, FeatureStage, MergeStage, concat_batches, make_batch

__all__ = ["run_ray", "init_ray", "RayRunStats", "feature_compute", "ray_min_local_s", "process_batch"]

log = logging.getLogger(__name__)

# Driver batches before the decision to start a local Ray: an untimed warm-up (imports, Numba
# kernels from the cache, the backbone's first call), then a timed probe.
WARM_UP_IMAGES = 4
PROBE_IMAGES = 8


@dataclasses.dataclass
class RayRunStats:
    """What one :func:`run_ray` call did (filled in while it runs).

    Attributes
    ----------
    ray_started : bool
        Whether this call started a local Ray instance.
    ray_joined : bool
        Whether Ray did any of the work (a started or an existing instance / cluster).
    ray_start_s : float
        Seconds from starting the local instance to its being usable (NaN if not started).
    driver_images, ray_images : int
        Images whose trees were committed from the driver's own computation / from Ray.
    cancelled_batches : int
        Batches in flight that the driver computed itself first (their tasks were cancelled).
    estimate_s : float
        The driver's estimate of the in-process time of the work left when it decided whether
        to start Ray (NaN if no decision was needed).
    """

    ray_started: bool = False
    ray_joined: bool = False
    ray_start_s: float = float("nan")
    driver_images: int = 0
    ray_images: int = 0
    cancelled_batches: int = 0
    estimate_s: float = float("nan")

    def as_extra(self) -> dict[str, float]:
        """The fields as floats (booleans as 0/1): ``PreprocessResult.extra``."""
        return {k: float(v) for k, v in dataclasses.asdict(self).items()}


# --------------------------------------------------------------------------- starting Ray
def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is a dependency
        raise DependencyError("ray", "the Ray executor", "pip install 'ray[data]'") from exc
    return ray


def _init_kwargs(address: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        kwargs["include_dashboard"] = False
    return kwargs


class _BackgroundStart:
    """``ray.init`` of a local instance on a thread that stays alive (parked) for the life of
    the process.

    Ray starts its services with ``PR_SET_PDEATHSIG``, which Linux ties to the *thread* that
    spawned them: a starting thread that returned would take GCS and the raylet with it. The
    parked daemon thread ends with the process, as the main thread would, and Ray's own exit
    hook shuts the instance down.
    """

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.started_at = time.perf_counter()
        self.elapsed = float("nan")
        self._thread = threading.Thread(target=self._run, name="mis-ray-start", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            ray = _import_ray()
            # Ray sets its SIGTERM handler (exit, so that its exit hook stops the instance)
            # only from the main thread and warns otherwise; the driver thread set the same
            # handler before starting this thread (_start_in_background).
            logging.getLogger("ray._private.worker").addFilter(_drop_sigterm_warning)
            if not ray.is_initialized():
                ray.init(**_init_kwargs(None))
        except BaseException as exc:  # noqa: BLE001 - handed to the driver thread
            self.error = exc
        finally:
            self.elapsed = time.perf_counter() - self.started_at
            self.ready.set()
        threading.Event().wait()  # park: see the class docstring

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the start ended (or ``timeout``); a failed start raises
        :class:`~mis_pipeline.errors.RayStartError`."""
        done = self.ready.wait(timeout)
        if done and self.error is not None:
            raise RayStartError(
                f"could not start a local Ray instance: {self.error!r}; the batches committed so far "
                "are kept ('--executor local' runs without Ray)"
            ) from self.error
        return done


_STARTING: _BackgroundStart | None = None
_STARTING_LOCK = threading.Lock()


def _drop_sigterm_warning(record: logging.LogRecord) -> bool:
    return "SIGTERM handler is not set" not in record.getMessage()


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    sys.exit(signum)


def _start_in_background() -> _BackgroundStart:
    global _STARTING
    if threading.current_thread() is threading.main_thread():
        # what ray.init does on the main thread: SIGTERM exits, so Ray's exit hook runs
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with _STARTING_LOCK:
        if _STARTING is None or (_STARTING.ready.is_set() and not _import_ray().is_initialized()):
            _STARTING = _BackgroundStart()
        return _STARTING


def init_ray(address: str | None) -> Any:
    """Connect to (``address`` or ``$RAY_ADDRESS``) or start a local Ray; return the module.

    Waits for a start already under way in the background (see :func:`run_ray`).
    """
    ray = _import_ray()
    starting = _STARTING
    if starting is not None and not starting.ready.is_set():
        starting.wait()
    if not ray.is_initialized():
        ray.init(address=address, **_init_kwargs(address))
    return ray


def _joins_existing(address: str | None) -> bool:
    """Whether Ray is (or will be) an existing instance or cluster rather than one we start."""
    if address is not None or os.environ.get("RAY_ADDRESS"):
        return True
    ray = sys.modules.get("ray")  # not imported: not initialised (and a run that stays in this
    return ray is not None and bool(ray.is_initialized())  # process never pays for the import)


#: Seconds a local Ray takes to start and warm its workers, as measured on 2 cores (start ~3 s,
#: first batch back ~1 s later); the basis of the default ``preprocess.ray_min_local_s``.
LOCAL_RAY_START_S = 5.0


def usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def ray_min_local_s(config: PipelineConfig) -> float:
    """``preprocess.ray_min_local_s``, or its default for this machine.

    The default is where a local Ray pays off: with ``N`` CPUs, ``S`` seconds of start-up and
    ``T`` seconds of work in this process, Ray takes about ``S + T / N``, less than ``T`` once
    ``T > S N / (N - 1)``: 10 s on 2 CPUs, 5.7 s on 8; never on 1 CPU.
    """
    value = config.preprocess.ray_min_local_s
    if value is not None:
        return float(value)
    n = usable_cpus()
    return math.inf if n <= 1 else LOCAL_RAY_START_S * n / (n - 1)


# --------------------------------------------------------------------------- the stages on Ray
def _gpus_per_actor(ray: Any, config: PipelineConfig) -> float:
    if config.preprocess.gpus_per_actor is not None:
        return float(config.preprocess.gpus_per_actor)
    if config.features.device == "cpu":
        return 0.0
    return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


def feature_compute(ray: Any, config: PipelineConfig) -> tuple[str, float]:
    """``("actors" | "tasks", gpus per actor)`` for this cluster and ``config``."""
    gpus = _gpus_per_actor(ray, config)
    mode = config.preprocess.feature_compute
    if mode == "auto":
        mode = "actors" if gpus > 0 else "tasks"
    return mode, gpus


def _local_mode(config: PipelineConfig, backbone: Any) -> str:
    """The feature mode a local instance would get, decided before it is started.

    A local Ray sees this machine's GPUs; the driver's backbone was built on the device
    ``features.device`` resolves to here, so a CUDA backbone means GPUs.
    """
    pcfg = config.preprocess
    if pcfg.feature_compute != "auto":
        return pcfg.feature_compute
    if pcfg.gpus_per_actor is not None:
        return "actors" if pcfg.gpus_per_actor > 0 else "tasks"
    device = str(getattr(backbone, "device", "cpu"))
    return "actors" if device.startswith("cuda") else "tasks"


def _decode_fn(batch: dict[str, np.ndarray], config: PipelineConfig, patch_size: int) -> dict[str, np.ndarray]:
    return DecodeStage(config, patch_size)(batch)


def _merge_fn(batch: dict[str, np.ndarray], config: PipelineConfig) -> dict[str, np.ndarray]:
    return MergeStage(config)(batch)


# One FeatureStage per worker process (Ray reuses worker processes, so the backbone is built
# once per process, as an actor would, without an actor's start-up per run).
_PROCESS_STAGES: dict[str, FeatureStage] = {}


def _feature_fn(batch: dict[str, np.ndarray], config: PipelineConfig) -> dict[str, np.ndarray]:
    key = repr(config.features)
    stage = _PROCESS_STAGES.get(key)
    if stage is None:
        _PROCESS_STAGES.clear()
        stage = _PROCESS_STAGES[key] = FeatureStage(config)
    return stage(batch)


def process_batch(
    image_ids: Sequence[str], sources: Sequence[str], config: PipelineConfig, patch_size: int
) -> dict[str, np.ndarray]:
    """Decode -> features -> merge of one batch in this process (the body of a Ray task)."""
    batch = make_batch(image_ids, sources)
    return _merge_fn(_feature_fn(_decode_fn(batch, config, patch_size), config), config)


# --------------------------------------------------------------------------- executor
def run_ray(
    refs: Sequence[ImageRef],
    config: PipelineConfig,
    patch_size: int,
    *,
    backbone: Any = None,
    stats: RayRunStats | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Yield merged batches of ``refs`` computed on Ray (order not preserved).

    See the module docstring for when a local Ray is started and when the driver computes.
    ``backbone`` is the driver's already built backbone (the driver's own batches use it;
    workers build theirs from ``config``); ``stats`` is filled in while the batches are
    consumed.
    """
    stats = stats if stats is not None else RayRunStats()
    if not refs:
        return
    address = config.preprocess.ray_address
    joins = _joins_existing(address)
    if not joins and _local_mode(config, backbone) == "tasks":
        yield from _TaskRun(refs, config, patch_size, backbone, stats, local_start=True).run()
        return
    # a cluster to join, or GPU feature actors on a local instance: Ray up front
    ray = init_ray(address)
    stats.ray_joined, stats.ray_started = True, not joins
    mode, gpus = feature_compute(ray, config)
    if mode == "actors":
        yield from _run_data_actors(ray, refs, config, patch_size, gpus, stats)
    else:
        yield from _TaskRun(refs, config, patch_size, backbone, stats, local_start=False).run()


def _run_data_actors(
    ray: Any, refs: Sequence[ImageRef], config: PipelineConfig, patch_size: int, gpus: float, stats: RayRunStats
) -> Iterator[dict[str, np.ndarray]]:
    """Ray Data: decode (CPU tasks) -> feature actor pool -> merge (CPU tasks)."""
    pcfg = config.preprocess
    bs = pcfg.batch_size
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.execution_options.verbose_progress = False
    ds = ray.data.from_items(
        [{"image_id": r.image_id, "source": r.path} for r in refs], override_num_blocks=-(-len(refs) // bs)
    )
    ds = ds.map_batches(
        _decode_fn, fn_kwargs={"config": config, "patch_size": patch_size}, batch_size=bs, batch_format="numpy"
    )
    ds = ds.map_batches(
        FeatureStage,
        fn_constructor_kwargs={"config": config},
        batch_size=bs,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=pcfg.feature_actors),
        num_gpus=gpus,
    )
    ds = ds.map_batches(_merge_fn, fn_kwargs={"config": config}, batch_size=bs, batch_format="numpy")
    log.info("Ray pipeline: %d images, %d feature actors (%.2g GPU each)", len(refs), pcfg.feature_actors, gpus)
    for batch in ds.iter_batches(batch_size=bs, batch_format="numpy", prefetch_batches=2):
        stats.ray_images += len(batch["image_id"])
        yield batch


class _TaskRun:
    """The CPU task path: a queue of image ranges shared by Ray tasks and, while Ray is not
    yet delivering, the driver itself (module docstring)."""

    def __init__(
        self,
        refs: Sequence[ImageRef],
        config: PipelineConfig,
        patch_size: int,
        backbone: Any,
        stats: RayRunStats,
        local_start: bool,
    ) -> None:
        self.refs = refs
        self.config = config
        self.patch = int(patch_size)
        self.stats = stats
        self.bs = config.preprocess.batch_size
        self.next = 0  # refs[:next] are handed out (to the driver or to a task)
        self.local_start = local_start
        self.driver_works = self.local_start and config.preprocess.driver_works
        self._stages: tuple[DecodeStage, FeatureStage, MergeStage] | None = None
        self._backbone = backbone
        self.starting: _BackgroundStart | None = None
        self.ray: Any = None
        self.remote: Any = None
        self.config_ref: Any = None
        self.capacity = 0
        self.pending: dict[Any, tuple[int, int]] = {}  # task -> (lo, hi)
        self.warm = False  # a worker has delivered a batch

    # ------------------------------------------------------------------ the driver's share
    def _local(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        if self._stages is None:
            self._stages = (
                DecodeStage(self.config, self.patch),
                FeatureStage(self.config, backbone=self._backbone),
                MergeStage(self.config),
            )
        decode, features, merge = self._stages
        chunk = self.refs[lo:hi]
        out = merge(features(decode(make_batch([r.image_id for r in chunk], [r.path for r in chunk]))))
        self.stats.driver_images += hi - lo
        return out

    def _take(self, n: int) -> tuple[int, int]:
        lo, hi = self.next, min(self.next + n, len(self.refs))
        self.next = hi
        return lo, hi

    # ------------------------------------------------------------------ Ray's share
    def _start(self) -> None:
        if self.driver_works:
            self.starting = _start_in_background()
            log.info("Ray: starting a local instance in the background; this process computes meanwhile")
        else:
            t0 = time.perf_counter()
            init_ray(None)
            self.stats.ray_start_s = time.perf_counter() - t0
            self._connect()
        self.stats.ray_started = True

    def _ray_ready(self) -> bool:
        if self.ray is not None:
            return True
        if self.starting is None or not self.starting.ready.is_set():
            return False
        self.starting.wait()  # raises a failed start
        self.stats.ray_start_s = self.starting.elapsed
        self._connect()
        return True

    def _connect(self) -> None:
        ray = self.ray = init_ray(self.config.preprocess.ray_address)
        self.stats.ray_joined = True
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.capacity = 2 * cpus
        self.remote = ray.remote(num_cpus=1)(process_batch)
        self.config_ref = ray.put(self.config)
        log.info(
            "Ray: %d CPUs%s; batches of %d images as tasks (at most %d in flight)",
            cpus,
            "" if math.isnan(self.stats.ray_start_s) else f", up after {self.stats.ray_start_s:.1f} s",
            self.bs,
            self.capacity,
        )

    def _submit(self) -> None:
        while self.next < len(self.refs) and len(self.pending) < self.capacity:
            lo, hi = self._take(self.bs)
            chunk = self.refs[lo:hi]
            task = self.remote.remote(
                [r.image_id for r in chunk], [r.path for r in chunk], self.config_ref, self.patch
            )
            self.pending[task] = (lo, hi)

    def _collect(self, timeout: float | None) -> Iterator[dict[str, np.ndarray]]:
        """Yield every finished batch as one (waiting up to ``timeout`` for the first).

        Finished batches are committed together: a store commit has a fixed cost (about
        55 ms on 2 cores, against 0.35 ms an image), so when the driver falls behind, its
        commits grow instead of its backlog.
        """
        pending = list(self.pending)
        if timeout == 0:
            ready, _ = self.ray.wait(pending, num_returns=len(pending), timeout=0)
        else:
            ready, rest = self.ray.wait(pending, num_returns=1, timeout=timeout)
            if ready and rest:
                more, _ = self.ray.wait(rest, num_returns=len(rest), timeout=0)
                ready = [*ready, *more]
        if not ready:
            return
        for task in ready:  # a span leaves `pending` once: collected here or stolen
            lo, hi = self.pending.pop(task)
            self.stats.ray_images += hi - lo
        self.warm = True
        yield concat_batches(self.ray.get(ready))

    def _driver_turn(self) -> bool:
        """Whether the driver computes now: it may, and no worker has delivered yet."""
        return self.driver_works and not self.warm

    def _steal(self) -> dict[str, np.ndarray] | None:
        """Compute the newest batch still in flight here, cancelling its task."""
        if not self.pending:
            return None
        task, span = next(reversed(self.pending.items()))
        del self.pending[task]
        try:
            self.ray.cancel(task)
        except Exception:  # noqa: BLE001 - a finished or unknown task: its result is ignored
            log.debug("cancelling a stolen task failed", exc_info=True)
        self.stats.cancelled_batches += 1
        return self._local(*span)

    # ------------------------------------------------------------------ the loop
    def run(self) -> Iterator[dict[str, np.ndarray]]:
        n = len(self.refs)
        try:
            if not self.local_start:
                self._connect()
            elif self.driver_works and ray_min_local_s(self.config) > 0:
                yield from self._decide(n)
                if not self.stats.ray_started:
                    return
            else:
                self._start()
            while self.next < n or self.pending:
                if self._ray_ready():
                    self._submit()
                if self.ray is not None and self.pending:
                    yield from self._collect(timeout=0 if self._driver_turn() else None)
                if not self._driver_turn():
                    continue  # Ray is up (driver_works=False) or warm: only commit
                if self.next < n:
                    yield self._local(*self._take(self.bs))
                elif self.ray is not None:
                    stolen = self._steal()
                    if stolen is not None:
                        yield stolen
                else:
                    break  # everything done by the driver before Ray was up
            if self.starting is not None:
                try:
                    self.starting.wait()  # leave no start half-done behind
                except RayStartError as exc:  # every image was computed here: not needed
                    self.stats.ray_started = False
                    log.warning("%s (not needed: every image was computed in this process)", exc)
                if math.isnan(self.stats.ray_start_s):
                    self.stats.ray_start_s = self.starting.elapsed
        finally:
            self._cancel_pending()
            if self.starting is not None and not self.starting.ready.is_set():
                # stopped early (Ctrl-C): let the start finish so Ray's exit hook can stop it
                self.starting.ready.wait(120)
        if self.stats.ray_started or self.stats.ray_joined:
            log.info(
                "Ray executor: this process computed %d images, Ray workers %d (%d batches computed by both)",
                self.stats.driver_images,
                self.stats.ray_images,
                self.stats.cancelled_batches,
            )

    def _decide(self, n: int) -> Iterator[dict[str, np.ndarray]]:
        """Warm-up and probe batches here, then start Ray once the rest would take long enough.

        The estimate is renewed after every batch (image sizes may change along a corpus);
        if it never reaches ``preprocess.ray_min_local_s`` the whole run stays here.
        """
        limit = ray_min_local_s(self.config)
        yield self._local(*self._take(min(WARM_UP_IMAGES, self.bs)))
        size = min(PROBE_IMAGES, self.bs)
        while self.next < n:
            t0 = time.perf_counter()
            lo, hi = self._take(size)
            batch = self._local(lo, hi)
            per_image = (time.perf_counter() - t0) / (hi - lo)
            yield batch
            estimate = per_image * (n - self.next)
            first = math.isnan(self.stats.estimate_s)
            if first or estimate >= limit:
                self.stats.estimate_s = estimate
            if estimate >= limit and self.next < n:
                log.info(
                    "Ray: ~%.0f s of work left at %.1f ms per image in this process; starting Ray",
                    estimate,
                    1e3 * per_image,
                )
                self._start()
                return
            if first and self.next < n:
                log.info(
                    "Ray: not started: ~%.1f s of work left in this process, under "
                    "preprocess.ray_min_local_s (%.3g s; Ray's start-up would cost more)",
                    estimate,
                    limit,
                )
            size = self.bs

    def _cancel_pending(self) -> None:
        if self.ray is None:
            return
        for task in list(self.pending):
            try:
                self.ray.cancel(task)
            except Exception:  # noqa: BLE001 - best effort on the way out
                log.debug("cancelling a task failed", exc_info=True)
        self.pending.clear()
