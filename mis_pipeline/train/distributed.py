"""Ray Train front end: ``train.workers = N > 1`` runs :func:`.loop.train_worker` in N workers.

Each worker is one Ray Train ``TorchTrainer`` worker (one GPU each when the cluster has GPUs,
else CPU with the gloo backend). They all run the same loop as the single-process path; what
changes is:

- data: worker ``rank`` computes micro-batches ``k = m * N + rank`` of every step
  (:mod:`.schedule`); with ``train.ray_data`` it reads them from its own Ray Data stream
  (``ray.data.range`` over its sample positions, mapped to ``source.sample`` by CPU tasks
  anywhere in the cluster, order preserved), else from a ``DataLoader`` in the worker;
- gradients: after the micro-batches of a step, one all-reduce (sum, then / N) of all
  gradients, flattened into one buffer, so every worker applies the same update;
- logged values are averaged over the workers; rank 0 alone writes ``RUN/`` (metrics,
  checkpoints, state), which therefore must be on a filesystem every worker sees (a local
  path on one machine; shared storage on a cluster).

Because each global batch is the same fixed set of ``train.micro_batches`` micro-batches at any
worker count dividing it, and each micro-batch has its own seeds, N workers give the parameters
of 1 worker accumulating all micro-batches, up to the order of float additions (tested with 1
and 2 CPU workers).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MISError, RunError
from . import run_dir as rd
from .loop import Plan, WorkerSetup, train_worker

__all__ = ["run_ray_training", "allreduce_grads", "allreduce_values", "ray_data_batches"]

log = logging.getLogger(__name__)

#: samples made by one Ray Data sampling task, rounded to whole micro-batches (see
#: :func:`ray_data_batches`): about 100 MB of 448 px samples, under Ray Data's 128 MB block target
TASK_SAMPLES = 128


def allreduce_grads(model: Any) -> None:
    """Average every parameter's gradient over the workers (one flattened all-reduce)."""
    import torch
    import torch.distributed as dist

    params = [p for p in model.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def allreduce_values(values: list[float]) -> list[float]:
    """Mean over the workers of a list of floats (the logged loss and its terms)."""
    import torch
    import torch.distributed as dist

    backend_device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor(values, dtype=torch.float64, device=backend_device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return (t / dist.get_world_size()).tolist()


def broadcast_model(model: Any) -> None:
    """Rank 0's parameters and buffers to every worker (identical start even if init differed)."""
    import torch.distributed as dist

    for t in list(model.parameters()) + list(model.buffers()):
        dist.broadcast(t.data, src=0)


# Per-process cache of sample sources inside Ray Data tasks (a source decodes each tree once).
_SOURCES: dict[str, Any] = {}


def _positions_to_flat(pos: np.ndarray, *, start: int, batch_size: int, micro: int, accumulate: int,
                       world: int, rank: int) -> np.ndarray:
    """Position ``i`` in worker ``rank``'s sample sequence from step ``start`` -> flat index."""
    per_step = micro * accumulate
    step = start + pos // per_step
    r = pos % per_step
    k = (r // micro) * world + rank
    return step * batch_size + k * micro + r % micro


def _sample_batch(batch: dict[str, np.ndarray], source: Any, epoch_size: int, layout: dict[str, int]
                  ) -> dict[str, np.ndarray]:
    from ..data import stack_samples

    token = getattr(source, "token", None)
    if token is not None:
        source = _SOURCES.setdefault(token, source)
    flat = _positions_to_flat(np.asarray(batch["id"], dtype=np.int64), **layout)
    return stack_samples([source.sample(int(f % epoch_size), int(f // epoch_size)) for f in flat])


def ray_data_batches(source: Any, plan: Plan, cfg: Any, start: int, rank: int, world: int
                     ) -> Iterator[dict[str, Any]]:
    """Worker ``rank``'s micro-batches from step ``start`` on, as a Ray Data stream (numpy dicts).

    The sampling tasks reserve a quarter CPU each, so the cluster needs more (logical) CPUs than
    training workers: a local Ray started by :func:`run_ray_training` gets ``workers + 1`` at
    least.
    """
    import ray

    t = cfg.train
    micro = plan.micro_size
    count = (plan.total_steps - start) * micro * plan.accumulate
    layout = {"start": start, "batch_size": t.batch_size, "micro": micro, "accumulate": plan.accumulate,
              "world": world, "rank": rank}
    # One sampling task makes about TASK_SAMPLES samples (whole micro-batches, at most 20,000
    # blocks per stream): with a task per micro-batch, Ray Data's per-task and per-block
    # overhead (scheduling, object-store puts, the streaming executor polling in this training
    # process) made a tiny model's step 2.9x slower (0.28 s against 0.086 s with 32 micro-batches
    # of 4 per task, 2 CPU workers; one process: 0.095 s).
    per_task = micro * max(TASK_SAMPLES // micro, 1, math.ceil(count / micro / 20000))
    ds = ray.data.range(count, override_num_blocks=max(1, math.ceil(count / per_task)))
    ds = ds.map_batches(_sample_batch, fn_kwargs={"source": source, "epoch_size": plan.epoch_size,
                                                  "layout": layout},
                        batch_size=per_task, batch_format="numpy", num_cpus=0.25)
    ds.context.execution_options.preserve_order = True
    return iter(ds.iter_batches(batch_size=micro, batch_format="numpy", prefetch_batches=2,
                                drop_last=False))


def _worker_entry(config: dict[str, Any]) -> None:
    import ray.train
    import ray.train.torch

    setup: WorkerSetup = config["setup"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()

    every = max(setup.cfg.train.log_every, 50)

    def report(metrics: dict[str, Any]) -> None:
        # Ray Train's report synchronises the workers: every 50 logged steps at most (the same
        # steps on every worker); metrics.jsonl still gets every logged step from rank 0
        if metrics["step"] % every == 0:
            ray.train.report({k: v for k, v in metrics.items() if isinstance(v, (int, float))})

    setup = replace(
        setup, rank=rank, world=world, progress=False, reduce_grads=allreduce_grads,
        reduce_values=allreduce_values, report=report, prepare_model=broadcast_model,
        batches=ray_data_batches if setup.cfg.train.ray_data else None,
        extra={**setup.extra, "device": device},
    )
    train_worker(setup)


def run_ray_training(setup: WorkerSetup) -> dict[str, Any]:
    """Run :func:`.loop.train_worker` under Ray Train with ``train.workers`` workers."""
    from ..pipeline.ray_exec import init_ray

    cfg = setup.cfg
    n = cfg.train.workers
    import ray

    if not ray.is_initialized() and cfg.train.ray_address is None and not os.environ.get("RAY_ADDRESS"):
        # a local Ray: one logical CPU per training worker plus room for the sampling tasks
        ray.init(num_cpus=max(os.cpu_count() or 1, n + 1), include_dashboard=False,
                 log_to_driver=False, logging_level=logging.WARNING)
    ray = init_ray(cfg.train.ray_address)
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    use_gpu = cfg.train.device != "cpu" and ray.cluster_resources().get("GPU", 0) >= n
    run = Path(setup.run_dir).resolve()
    before = rd.read_state(run)
    trainer = TorchTrainer(
        _worker_entry,
        train_loop_config={"setup": setup},
        scaling_config=ScalingConfig(num_workers=n, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": 1, **({"GPU": 1} if use_gpu else {})}),
        run_config=RunConfig(name="ray_train", storage_path=str(run)),
    )
    try:
        trainer.fit()
    except Exception as exc:  # Ray wraps worker errors; surface ours as they are
        cause = _find_cause(exc)
        if cause is not None:
            raise cause from exc
        raise RunError(f"Ray Train run into {run} failed: {exc}") from exc
    state = rd.read_state(run) or {}
    metrics = rd.read_metrics(run)
    stopped = None if state.get("finished") else f"time budget of {cfg.train.max_minutes:g} min"
    return {"start_step": int((before or {}).get("step", 0)), "steps": int(state.get("step", 0)),
            "last": metrics[-1] if metrics else {}, "stopped": stopped}


def _find_cause(exc: BaseException) -> MISError | None:
    seen = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, MISError):
            return e
        stack.extend([e.__cause__, e.__context__, getattr(e, "cause", None)])
        for attr in ("worker_failures", "errors"):
            val = getattr(e, attr, None)
            if isinstance(val, dict):
                stack.extend(v for v in val.values() if isinstance(v, BaseException))
            elif isinstance(val, (list, tuple)):
                stack.extend(v for v in val if isinstance(v, BaseException))
    return None
