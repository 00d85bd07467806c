"""``run_training``: the trainer's front door, and the loop every training process runs.

One loop (:func:`train_worker`) runs in the plain single-process path (``train.workers == 1``)
and in each Ray Train worker (:mod:`.distributed`); it differs only in its rank, world size,
where its micro-batches come from (a ``DataLoader`` over its flat sample indices, or a Ray Data
stream) and the gradient all-reduce. The step itself is :func:`.step.train_step`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..config import PipelineConfig, from_dict, to_dict
from ..errors import ConfigError, RunError
from . import run_dir as rd
from . import schedule
from .step import LossFn, LossHook, PromptFn, TrainBatch, to_train_batch, train_step

__all__ = ["run_training", "TrainResult", "DataSpec", "train_worker", "build_source", "build_loss",
           "resolve_device", "open_annotated"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class DataSpec:
    """Where the samples come from: a tree store (mode ``mis``) or annotated data (``finetune``).

    ``kind`` for annotated data: ``"folder"`` (``pairs.csv``), ``"coco"`` (``annotations`` is the
    JSON file, ``path`` the image root), ``"sbd"`` (``split``), or ``"auto"`` (from the files).
    """

    mode: str
    path: str
    kind: str = "auto"
    annotations: str | None = None
    split: str | None = None
    reference: str | None = None  # mode refcut with mined pairs: the reference tree store

    def as_dict(self) -> dict[str, Any]:
        out = {"mode": self.mode, "path": self.path, "kind": self.kind,
               "annotations": self.annotations, "split": self.split}
        if self.reference is not None:
            out["reference"] = self.reference
        return out


def _detect_kind(path: Path) -> tuple[str, Path, str | None]:
    """``(kind, root, annotations)`` of annotated data at ``path`` (``auto`` detection)."""
    if path.is_file() and path.suffix.lower() == ".json":
        return "coco", path.parent, str(path)
    if path.is_dir():
        if (path / "pairs.csv").is_file():
            return "folder", path, None
        if (path / "inst").is_dir() and (path / "img").is_dir():
            return "sbd", path, None
    raise ConfigError(
        "--data", str(path),
        "a folder with pairs.csv (the 'folder' layout of mis evaluate), a COCO-style JSON file, "
        "or an SBD root (with img/ and inst/)",
    )


def open_annotated(spec: DataSpec, cfg: PipelineConfig) -> Any:
    """The :class:`~mis_pipeline.data.AnnotatedDataset` of ``spec`` under ``cfg`` (seeded subset)."""
    from ..data import AnnotatedDataset

    path = Path(spec.path)
    if not path.exists():
        raise ConfigError("--data", spec.path, "an existing folder or COCO JSON file")
    kind, root, ann = (spec.kind, path, spec.annotations) if spec.kind != "auto" else _detect_kind(path)
    return AnnotatedDataset.open(kind, root, annotations=ann, split=spec.split,
                                 seed=cfg.seed, config=cfg.data)


def build_source(cfg: PipelineConfig, spec: DataSpec) -> Any:
    """The sample source (``sample(index, epoch)``) of the run."""
    from .methods import refcut_source, wrap_source  # issue 16 (RefCut pairs, SUEM, TAIZ)

    if spec.mode == "mis":
        from ..data import ProposalDataset

        source = ProposalDataset(spec.path, seed=cfg.seed, config=cfg.data)
    elif spec.mode == "refcut":
        if spec.kind == "parts":
            source = refcut_source(cfg, spec.path, None, None)
        else:
            source = refcut_source(cfg, None, spec.path, spec.reference)
    else:
        source = open_annotated(spec, cfg)
    return wrap_source(source, cfg, spec.mode)


def build_loss(cfg: PipelineConfig) -> LossFn:
    """The mode's loss: MIS eq. 8 (``mis``) or the normalised focal loss (``finetune``)."""
    if cfg.train.mode == "mis":
        return _MisLoss(cfg.loss)
    return _FocalLoss(cfg.loss.nfl_alpha, cfg.loss.nfl_gamma)


class _MisLoss:
    def __init__(self, loss_cfg: Any) -> None:
        self.cfg = loss_cfg

    def __call__(self, logits: Any, batch: TrainBatch) -> tuple[Any, dict[str, float]]:
        from ..losses import mis_loss

        total, terms = mis_loss(logits, batch.target, batch.image, self.cfg)
        return total, {k: float(v) for k, v in terms.items()}


class _FocalLoss:
    def __init__(self, alpha: float, gamma: float) -> None:
        self.alpha, self.gamma = alpha, gamma

    def __call__(self, logits: Any, batch: TrainBatch) -> tuple[Any, dict[str, float]]:
        from ..losses import normalized_focal_loss

        loss = normalized_focal_loss(logits, batch.target, self.alpha, self.gamma)
        return loss, {"nfl": float(loss.detach())}


def resolve_device(name: str) -> Any:
    """``train.device`` -> ``torch.device`` ('auto': CUDA when present, else CPU)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError("train.device", name, "'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device", name, "a device present on this machine (no CUDA found)")
    return dev


def build_model(cfg: PipelineConfig) -> Any:
    """The model of the run: ``train.init`` (a checkpoint) or ``build_model(cfg.model)``."""
    from ..model import build_model as _build
    from ..model import load_checkpoint
    from .methods import prepare_model

    if cfg.train.init is not None:
        model, _meta = load_checkpoint(cfg.train.init, map_location="cpu")
        return prepare_model(model, cfg)
    return prepare_model(_build(cfg.model), cfg)


# --------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Plan:
    """Run length, lr milestones (optimizer steps) and the micro-batch size."""

    total_steps: int
    milestones: tuple[int, ...]
    micro_size: int
    epoch_size: int
    n_micro: int  # micro-batches per step over all workers
    accumulate: int  # micro-batches per step of each worker

    @classmethod
    def of(cls, cfg: PipelineConfig, epoch_size: int) -> Plan:
        t = cfg.train
        kw = {"epochs": t.epochs, "steps": t.steps, "epoch_size": epoch_size, "batch_size": t.batch_size}
        n_micro = schedule.num_micro_batches(t.micro_batches, t.workers)
        return cls(
            total_steps=schedule.total_steps(**kw),
            milestones=schedule.milestone_steps(t.milestones, **kw),
            micro_size=schedule.micro_batch_size(t.batch_size, n_micro),
            epoch_size=int(epoch_size),
            n_micro=n_micro,
            accumulate=n_micro // t.workers,
        )


class _FlatDataset:
    """Map-style dataset: flat sample index ``f`` -> ``source.sample(f % E, f // E)``."""

    def __init__(self, source: Any, epoch_size: int) -> None:
        self.source = source
        self.epoch_size = int(epoch_size)

    def __len__(self) -> int:  # not used by the batch sampler; keeps DataLoader happy
        return 1 << 62

    def __getitem__(self, flat: int) -> dict[str, Any]:
        return self.source.sample(int(flat) % self.epoch_size, int(flat) // self.epoch_size)


class _FlatBatches:
    """Batch sampler: this worker's micro-batches as lists of flat indices, in order."""

    def __init__(self, start: int, end: int, *, batch_size: int, n_micro: int, workers: int,
                 rank: int) -> None:
        self.kw = {"batch_size": batch_size, "n_micro": n_micro, "workers": workers, "rank": rank}
        self.start, self.end = start, end

    def __iter__(self) -> Iterator[list[int]]:
        for mb in schedule.micro_batches(self.start, self.end, **self.kw):
            yield mb.flat.tolist()

    def __len__(self) -> int:
        return (self.end - self.start) * (self.kw["n_micro"] // self.kw["workers"])


def loader_batches(source: Any, plan: Plan, cfg: PipelineConfig, start: int, *, rank: int = 0,
                   world: int = 1, pin_memory: bool = False) -> Iterator[dict[str, Any]]:
    """Collated micro-batches of worker ``rank`` from ``start`` on, through a ``DataLoader``
    with ``data.loader_workers`` processes (0: in this process)."""
    from torch.utils.data import DataLoader

    from ..data import collate

    sampler = _FlatBatches(start, plan.total_steps, batch_size=cfg.train.batch_size, workers=world,
                           n_micro=plan.n_micro, rank=rank)
    nw = cfg.data.loader_workers
    loader = DataLoader(_FlatDataset(source, plan.epoch_size), batch_sampler=sampler, collate_fn=collate,
                        num_workers=nw, pin_memory=pin_memory, persistent_workers=False,
                        prefetch_factor=4 if nw > 0 else None)
    return iter(loader)


# --------------------------------------------------------------------------- the loop
@dataclass
class WorkerSetup:
    """Everything one training process needs (picklable: sent to Ray Train workers)."""

    cfg: PipelineConfig
    spec: DataSpec
    run_dir: str
    rank: int = 0
    world: int = 1
    progress: bool = False
    loss_hook: LossHook | None = None
    prompt_fn: PromptFn | None = None
    # batches(source, plan, cfg, start_step, rank, world) -> iterator of collated micro-batches
    batches: Callable[..., Iterator[dict[str, Any]]] | None = None
    reduce_grads: Callable[[Any], None] | None = None
    reduce_values: Callable[[list[float]], list[float]] | None = None
    report: Callable[[dict[str, Any]], None] | None = None
    prepare_model: Callable[[Any], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class _Progress:
    """A rich progress bar: step/total, loss, samples/s, ETA (rank 0 of the plain loop)."""

    def __init__(self, enabled: bool, total: int, start: int) -> None:
        self.bar: Any = None
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]}"),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        self.bar.__enter__()
        self.task = self.bar.add_task("train", total=total, completed=start, loss="-", rate="- samples/s")

    def update(self, step: int, loss: float, rate: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, loss=f"{loss:.4f}", rate=f"{rate:.2f} samples/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _autocast(device: Any, amp: bool) -> Callable[[], Any]:
    import torch

    if amp and device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def _checkpoint_extra(cfg: PipelineConfig, step: int, plan: Plan, spec: DataSpec) -> dict[str, Any]:
    return {"config": to_dict(cfg), "train": {"step": step, "total_steps": plan.total_steps,
                                              "mode": cfg.train.mode, "data": spec.as_dict()}}


class _StopRequest:
    """SIGINT / SIGTERM during training: finish the current step, save, then stop.

    Installed only in the main thread of the main process (the plain loop). A second signal
    restores the previous handler's behaviour at once (the state of the last save is kept).
    """

    def __init__(self, enabled: bool) -> None:
        self.requested: str | None = None
        self._old: dict[int, Any] = {}
        if not enabled:
            return
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        import signal

        if self.requested is not None:
            self.restore()
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name
        log.warning("%s: stopping after this step (the state will be saved); again to stop now",
                    self.requested)

    def restore(self) -> None:
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}


def train_worker(setup: WorkerSetup) -> dict[str, Any]:
    """The training loop of one process: resume, steps, metrics, checkpoints. Returns a summary."""
    import torch

    from ..model import save_checkpoint

    cfg, run = setup.cfg, Path(setup.run_dir)
    is_main = setup.rank == 0
    device = resolve_device(cfg.train.device) if setup.extra.get("device") is None else setup.extra["device"]
    source = build_source(cfg, setup.spec)
    plan = Plan.of(cfg, len(source))
    model = build_model(cfg).to(device)
    if setup.prepare_model is not None:
        setup.prepare_model(model)
    model.train()
    t = cfg.train
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, betas=t.betas, eps=t.eps,
                                 weight_decay=t.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(plan.milestones),
                                                     gamma=t.lr_gamma)
    start = 0
    if rd.read_state(run) is not None:
        state = rd.load_state_into(run, model=model, optimizer=optimizer, scheduler=scheduler,
                                   map_location=device)
        start = int(state["step"])
        log.info("resumed %s at step %d of %d", run, start, plan.total_steps)
    metrics = rd.MetricsLog(run, resume_step=start) if is_main else None
    loss_fn = build_loss(cfg)
    autocast = _autocast(device, t.amp)
    get_batches = setup.batches or (lambda src, pl, c, s, rank, world: loader_batches(
        src, pl, c, s, rank=rank, world=world, pin_memory=device.type == "cuda"))
    batches = get_batches(source, plan, cfg, start, setup.rank, setup.world)
    micro_iter = schedule.micro_batches(start, plan.total_steps, batch_size=t.batch_size, workers=setup.world,
                                        n_micro=plan.n_micro, rank=setup.rank)
    bar = _Progress(setup.progress and is_main, plan.total_steps, start)
    wait = 0.0
    window: dict[str, float] = {}
    win_steps, win_t0 = 0, time.perf_counter()

    def fetch(step: int) -> Iterator[tuple[schedule.MicroBatch, TrainBatch]]:
        nonlocal wait
        for _ in range(plan.accumulate):
            mb = next(micro_iter)
            t0 = time.perf_counter()
            raw = next(batches)
            wait += time.perf_counter() - t0
            _check_keys(raw, mb, plan.epoch_size)
            yield mb, to_train_batch(raw, mb.flat, plan.epoch_size, device)

    def save(step: int, finished: bool) -> None:
        if not is_main:
            return
        save_checkpoint(model, run / rd.CHECKPOINT_DIR, extra=_checkpoint_extra(cfg, step, plan, setup.spec))
        rd.save_state(run, model=model, optimizer=optimizer, scheduler=scheduler, state={
            "step": step, "total_steps": plan.total_steps, "seed": cfg.seed, "finished": finished,
            "epoch": step * t.batch_size / plan.epoch_size,
        })
        if finished:
            rd.plot_loss_curve(run)

    last: dict[str, Any] = {}
    stop = _StopRequest(setup.world == 1)
    budget_s = None if t.max_minutes is None else 60.0 * t.max_minutes
    t_start = time.perf_counter()
    stopped: str | None = None
    try:
        for step in range(start, plan.total_steps):
            res = train_step(
                model, optimizer, fetch(step), step=step, accumulate=plan.accumulate, loss_fn=loss_fn,
                seed=cfg.seed, max_rounds=t.max_num_next_clicks,
                threshold=cfg.data.clicks.next_click_threshold, distance=cfg.data.clicks.next_click_distance,
                drop_prob=t.prev_mask_drop_prob, autocast=autocast, reduce_grads=setup.reduce_grads,
                loss_hook=setup.loss_hook, prompt_fn=setup.prompt_fn,
            )
            lr = float(optimizer.param_groups[0]["lr"])
            scheduler.step()
            keys = sorted(res.terms)
            values = [res.loss, *(res.terms[k] for k in keys)]
            if setup.reduce_values is not None:
                values = setup.reduce_values(values)
            if not all(math.isfinite(v) for v in values):
                raise RunError(f"loss became {values[0]} at step {step} ({run}); lower train.lr or check the data")
            for k, v in zip(["loss", *keys], values, strict=True):
                window[k] = window.get(k, 0.0) + v
            win_steps += 1
            done = step + 1
            if done % t.log_every == 0 or done == plan.total_steps:
                elapsed = time.perf_counter() - win_t0
                rate = win_steps * t.batch_size / max(elapsed, 1e-9)
                last = {"step": done, **{k: v / win_steps for k, v in window.items()}, "lr": lr,
                        "samples_per_s": rate, "data_wait_fraction": min(1.0, wait / max(elapsed, 1e-9)),
                        "epoch": done * t.batch_size / plan.epoch_size, "rounds": res.num_rounds}
                if metrics is not None:
                    metrics.write(last)
                if setup.report is not None:
                    setup.report(last)
                bar.update(done, last["loss"], rate)
                log.info("step %d/%d loss %.4f lr %.2e %.2f samples/s wait %.0f%%", done, plan.total_steps,
                         last["loss"], lr, rate, 100 * last["data_wait_fraction"])
                window, win_steps, wait, win_t0 = {}, 0, 0.0, time.perf_counter()
            over_budget = budget_s is not None and time.perf_counter() - t_start > budget_s
            if setup.reduce_values is not None and budget_s is not None:  # all workers agree
                over_budget = setup.reduce_values([float(over_budget)])[0] > 0
            if done < plan.total_steps and (stop.requested or over_budget):
                stopped = stop.requested or f"time budget of {t.max_minutes:g} min"
                save(done, finished=False)
                rd.plot_loss_curve(run)
                log.warning("stopped at step %d of %d (%s); rerun the same command to continue",
                            done, plan.total_steps, stopped)
                return {"start_step": start, "steps": done, "last": last, "stopped": stopped}
            if done % t.checkpoint_every == 0 and done < plan.total_steps:
                save(done, finished=False)
        if start < plan.total_steps or rd.read_state(run) is None:
            save(plan.total_steps, finished=True)
    finally:
        stop.restore()
        bar.close()
    return {"start_step": start, "steps": plan.total_steps, "last": last, "stopped": None}


def _check_keys(raw: dict[str, Any], mb: schedule.MicroBatch, epoch_size: int) -> None:
    """The batch must hold exactly the micro-batch's samples, in order (catches a reordered stream)."""
    if "index" not in raw or "epoch" not in raw:
        return
    epoch, index = schedule.flat_to_epoch_index(mb.flat, epoch_size)
    got_i, got_e = np.asarray(raw["index"]).astype(np.int64), np.asarray(raw["epoch"]).astype(np.int64)
    if not (np.array_equal(got_i, index) and np.array_equal(got_e, epoch)):
        raise RunError(f"step {mb.step}: the data stream delivered samples {list(zip(got_e, got_i, strict=True))[:4]}... "
                       f"instead of {list(zip(epoch, index, strict=True))[:4]}... (order must be preserved)")


# --------------------------------------------------------------------------- front door
@dataclass(frozen=True)
class TrainResult:
    """What a finished :func:`run_training` returns."""

    run_dir: Path
    steps: int
    resumed_from: int
    last: dict[str, Any]
    stopped: str | None = None

    def lines(self) -> list[str]:
        out = [f"run              {self.run_dir}",
               f"steps            {self.steps}" + (f" (resumed at {self.resumed_from})" if self.resumed_from else "")]
        if self.stopped:
            out.append(f"stopped          early ({self.stopped}); state saved, rerun the same command to continue")
        if self.last:
            out.append(f"final loss       {self.last.get('loss', float('nan')):.4f} (mean of the last "
                       "logged window)")
        out.append(f"checkpoint       {self.run_dir / rd.CHECKPOINT_DIR}")
        out.append(f"metrics          {self.run_dir / rd.METRICS_NAME}")
        return out


def run_training(
    cfg: PipelineConfig,
    out_dir: str | Path,
    *,
    store: str | Path | None = None,
    data: str | Path | None = None,
    data_kind: str = "auto",
    annotations: str | Path | None = None,
    split: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
    loss_hook: LossHook | None = None,
    prompt_fn: PromptFn | None = None,
    on_start: Callable[[PipelineConfig], None] | None = None,
    parts: str | Path | None = None,
    reference_store: str | Path | None = None,
) -> TrainResult:
    """Train (or resume training) into ``out_dir`` (the run directory, see :mod:`.run_dir`).

    ``cfg.train.mode`` chooses the data and loss: ``"mis"`` needs ``store`` (a tree store);
    ``"finetune"`` needs ``data`` (annotated masks) and ``cfg.train.init`` (a checkpoint, RUN or
    ``checkpoint/`` folder). ``cfg.train.workers > 1`` runs Ray Train (:mod:`.distributed`).

    Rerunning into a run directory with a saved state resumes it (the configuration must match
    except for :data:`.run_dir.RESUMABLE_FIELDS`); a finished run is refused unless
    ``overwrite`` (which deletes the run's outputs and starts again). ``on_start(cfg)`` is called
    with the run's final configuration once these checks passed (the CLI writes it to YAML).
    """
    t = cfg.train
    if t.mode == "refcut":  # issue 16: parts (--parts) or mined pairs (--store [--reference-store])
        if data is not None:
            raise ConfigError("--data", str(data), "no annotated data in train.mode 'refcut' (use --parts)")
        if parts is not None:
            if store is not None or reference_store is not None:
                raise ConfigError("--store", str(store or reference_store), "no tree store with --parts")
            spec = DataSpec("refcut", str(Path(parts).resolve()), "parts")
        elif store is not None:
            spec = DataSpec("refcut", str(Path(store).resolve()), "mined",
                            reference=str(Path(reference_store or store).resolve()))
        else:
            raise ConfigError("--parts", None, "a part dataset (--parts DIR) or --store A [--reference-store B] "
                              "in train.mode 'refcut'")
    elif parts is not None or reference_store is not None:
        raise ConfigError("--parts", str(parts or reference_store), "only with train.mode 'refcut'")
    elif t.mode == "mis":
        if store is None:
            raise ConfigError("--store", None, "a tree store path (train.mode 'mis' trains on proposals)")
        if data is not None:
            raise ConfigError("--data", str(data), "no annotated data in train.mode 'mis' (use --store)")
        spec = DataSpec("mis", str(Path(store).resolve()))
    else:
        if data is None:
            raise ConfigError("--data", None, "annotated data (folder with pairs.csv, COCO JSON or SBD) "
                              "for train.mode 'finetune'")
        if t.init is None:
            raise ConfigError("train.init", None, "a checkpoint to fine-tune (--init RUN_OR_CHECKPOINT_DIR)")
        spec = DataSpec("finetune", str(Path(data).resolve()), data_kind,
                        None if annotations is None else str(Path(annotations).resolve()), split)
    if t.init is not None:
        cfg = replace(cfg, model=_init_model_config(t.init))
    schedule.micro_batch_size(t.batch_size, schedule.num_micro_batches(t.micro_batches, t.workers))  # fail early
    run = Path(out_dir)
    record = {"config": to_dict(cfg), "data": spec.as_dict()}
    state = rd.read_state(run)
    if state is not None and overwrite:
        _clear_run(run)
        state = None
    if state is not None:
        if state.get("finished"):
            raise RunError(f"run directory {run} holds a finished run ({state['step']} steps); "
                           "pass --overwrite to train it again from scratch, or choose another --out")
        rd.check_resumable(run, record["config"])
        old = json.loads((run / rd.RUN_CONFIG_NAME).read_text(encoding="utf-8")).get("data")
        if old is not None and old != record["data"]:
            raise ConfigError("--store/--data", spec.path, f"the data of the run being resumed ({old['path']})")
    elif overwrite:
        _clear_run(run)
    run.mkdir(parents=True, exist_ok=True)
    (run / rd.RUN_CONFIG_NAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    if on_start is not None:
        on_start(cfg)
    from .methods import method_loss_hook, method_prompt_fn

    setup = WorkerSetup(cfg=cfg, spec=spec, run_dir=str(run), progress=progress,
                        loss_hook=loss_hook or method_loss_hook(cfg), prompt_fn=prompt_fn or method_prompt_fn(cfg))
    if t.workers > 1:
        from .distributed import run_ray_training

        summary = run_ray_training(setup)
    else:
        summary = train_worker(setup)
    return TrainResult(run, summary["steps"], summary["start_step"], summary.get("last") or {},
                       summary.get("stopped"))


def _init_model_config(init: str) -> Any:
    """The ``model`` section stored with checkpoint ``init`` (the fine-tuned model's architecture)."""
    from ..config import ModelConfig
    from ..model import checkpoint_dir

    meta = json.loads((checkpoint_dir(init) / "model.json").read_text(encoding="utf-8"))
    if not isinstance(meta.get("model"), dict):
        raise ConfigError("train.init", init, "a checkpoint whose model.json records its model config")
    return from_dict(ModelConfig, meta["model"])


def _clear_run(run: Path) -> None:
    """Delete what a training run writes into ``run`` (nothing else in the folder)."""
    for name in (rd.STATE_DIR, rd.STATE_DIR + ".tmp", rd.STATE_DIR + ".old", rd.CHECKPOINT_DIR, "ray_train"):
        shutil.rmtree(run / name, ignore_errors=True)
    for name in (rd.METRICS_NAME, rd.CURVE_NAME, rd.RUN_CONFIG_NAME):
        (run / name).unlink(missing_ok=True)
