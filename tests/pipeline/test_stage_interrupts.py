"""Ctrl-C (or SIGTERM turned into SystemExit) while a stage runs compiled code must stop the
run, not be recorded as a failed image.

A signal handler that raises while a Numba kernel's dispatcher is active surfaces as
``SystemError: ... returned a result with an exception set`` with the interrupt as its cause;
the stages' per-image ``except Exception`` used to record that as a failure and go on.
"""

from __future__ import annotations

import signal

import numpy as np
import pytest

from mis_pipeline.config import PipelineConfig, from_dict
from mis_pipeline.errors import TruncatedImageError, raise_if_interrupted
from mis_pipeline.pipeline import stages
from mis_pipeline.pipeline.stages import DecodeStage, FeatureStage, MergeStage, make_batch

CFG = from_dict(PipelineConfig, {"features": {"backbone": "colour_texture"}})


def _wrapped(interrupt: BaseException) -> SystemError:
    try:
        try:
            raise interrupt
        except BaseException as inner:
            raise SystemError("kernel returned a result with an exception set") from inner
    except SystemError as outer:
        return outer


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), SystemExit(15)])
def test_raise_if_interrupted_finds_the_cause(interrupt):
    with pytest.raises(type(interrupt)):
        raise_if_interrupted(_wrapped(interrupt))
    try:
        raise TruncatedImageError("corrupt") from _wrapped(interrupt)
    except TruncatedImageError as exc:
        with pytest.raises(type(interrupt)):
            raise_if_interrupted(exc)
    raise_if_interrupted(ValueError("a real failure"))  # nothing to re-raise


def _features_batch(n: int, rng) -> dict[str, np.ndarray]:
    b = make_batch([f"i{k}" for k in range(n)], [f"s{k}" for k in range(n)])
    b.update(
        status=stages.object_column(["ok"] * n),
        reason=stages.object_column([""] * n),
        message=stages.object_column([""] * n),
        orig_hw=np.zeros((n, 2), np.int32),
        resized_hw=np.zeros((n, 2), np.int32),
        grid_hw=np.tile(np.array([[30, 40]], np.int32), (n, 1)),
        features=stages.object_column([rng.normal(size=(30, 40, 16)).astype(np.float32) for _ in range(n)]),
    )
    return b


def test_each_stage_reraises_a_wrapped_interrupt(monkeypatch, tmp_path):
    import mis_pipeline.io as io_mod
    import mis_pipeline.merge as merge_mod

    def decode_interrupted(*a, **k):
        raise TruncatedImageError("corrupt") from _wrapped(KeyboardInterrupt())

    monkeypatch.setattr(io_mod, "prepare_image", decode_interrupted)
    with pytest.raises(KeyboardInterrupt):
        DecodeStage(CFG, 8)(make_batch(["a"], [str(tmp_path / "a.png")]))

    def merge_interrupted(features):
        raise _wrapped(KeyboardInterrupt())

    monkeypatch.setattr(merge_mod, "ward_grid", merge_interrupted)
    with pytest.raises(KeyboardInterrupt):
        MergeStage(CFG)(_features_batch(2, np.random.default_rng(0)))

    class Backbone:
        def extract(self, images):
            raise _wrapped(SystemExit(15))

    batch = _features_batch(1, np.random.default_rng(0))
    batch["pixels"] = stages.object_column([np.zeros((16, 16, 3), np.uint8)])
    with pytest.raises(SystemExit):
        FeatureStage(CFG, backbone=Backbone())(batch)

    # an ordinary error is still recorded per image
    def merge_broken(features):
        raise ValueError("bad features")

    monkeypatch.setattr(merge_mod, "ward_grid", merge_broken)
    out = MergeStage(CFG)(_features_batch(2, np.random.default_rng(0)))
    assert list(out["status"]) == ["failed", "failed"] and list(out["reason"]) == ["ValueError"] * 2


def test_timer_interrupts_during_the_merge_kernel_are_never_failures():
    """Real signals: a 0.3 ms interval timer raises KeyboardInterrupt from its handler while
    the Numba Ward kernel runs. Every interrupt must reach the caller; no row may be failed."""
    rng = np.random.default_rng(1)
    stage = MergeStage(CFG)
    stage(_features_batch(1, rng))  # compile / load the kernel outside the timer

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, handler)
    interrupted = completed = 0
    try:
        for _ in range(300):
            batch = _features_batch(4, rng)
            try:
                signal.setitimer(signal.ITIMER_REAL, 0.0003)
                out = stage(batch)
                signal.setitimer(signal.ITIMER_REAL, 0)
            except KeyboardInterrupt:
                interrupted += 1
                continue
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            completed += 1
            assert set(out["status"]) == {"ok"}, list(zip(out["reason"], out["message"], strict=True))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert interrupted > 0
