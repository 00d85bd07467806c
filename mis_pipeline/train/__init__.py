"""The trainer: RITM iterative training of the SimpleClick model on MIS proposals or annotations.

Public API
----------
:func:`run_training`       train (or resume) into a run directory; ``train.workers > 1`` uses Ray Train
:class:`TrainResult`       what a run returns (steps, where it resumed, the last logged metrics)
:func:`train_step`         the one optimizer step (no-grad click rounds, loss hook, all-reduce hook)
:class:`StepContext`       what a loss hook sees (``forward``, ``add_click``, ``loss_fn``, ``batch``)
:mod:`.schedule`           samples, click rounds, seeds and lr milestones of every step
:mod:`.run_dir`            ``RUN/`` layout: state (resume), metrics.jsonl, loss curve

Importing this package imports neither torch nor Ray (names resolve lazily).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "run_training": "loop",
    "TrainResult": "loop",
    "DataSpec": "loop",
    "train_worker": "loop",
    "train_step": "step",
    "micro_step": "step",
    "StepContext": "step",
    "TrainBatch": "step",
    "default_loss_hook": "step",
    "read_metrics": "run_dir",
    "plot_loss_curve": "run_dir",
    "read_state": "run_dir",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
