"""The Ray executor without a cluster (issue 13 item 14): the driver starts on the corpus,
starts a local Ray only when the rest would take long enough, computes while Ray starts and
until the first worker batch is back, and steals batches still in flight when it runs out.

Every variant must give the same store content as the in-process executor. The scheduling
loop is also driven with a scripted stand-in for Ray, so that stealing, cancelling and late
results are exercised deterministically.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mis_pipeline.config import PipelineConfig, from_dict
from mis_pipeline.errors import RayStartError
from mis_pipeline.io import list_images
from mis_pipeline.pipeline import preprocess, ray_exec
from mis_pipeline.pipeline import run as run_module

BASE = {"features": {"backbone": "colour_texture"}}
PATCH = 8  # colour_texture's cell size


def _cfg(executor: str, batch_size: int = 8, **pre) -> PipelineConfig:
    return from_dict(PipelineConfig, {**BASE, "preprocess": {"executor": executor, "batch_size": batch_size, **pre}})




@pytest.fixture
def no_ray():
    """No Ray in this process before and after the test (the runs start their own)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    yield ray
    if ray.is_initialized():
        ray.shutdown()


class _SlowBackbone:
    """The driver's backbone, slowed down (workers build their own, at full speed)."""

    def __init__(self, inner, seconds_per_image: float) -> None:
        self.inner = inner
        self.seconds = seconds_per_image

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def extract(self, images):
        time.sleep(self.seconds * len(images))
        return self.inner.extract(images)


def _slow_driver(monkeypatch, seconds_per_image: float) -> None:
    real = run_module.backbone_info

    def slowed(config):
        name, patch, bb = real(config)
        return name, patch, _SlowBackbone(bb, seconds_per_image)

    monkeypatch.setattr(run_module, "backbone_info", slowed)


# --------------------------------------------------------------------------- decision
def test_default_threshold_follows_the_cpu_count(monkeypatch):
    cfg = _cfg("ray")
    monkeypatch.setattr(ray_exec, "usable_cpus", lambda: 2)
    assert ray_exec.ray_min_local_s(cfg) == pytest.approx(2 * ray_exec.LOCAL_RAY_START_S)
    monkeypatch.setattr(ray_exec, "usable_cpus", lambda: 8)
    assert ray_exec.ray_min_local_s(cfg) == pytest.approx(ray_exec.LOCAL_RAY_START_S * 8 / 7)
    monkeypatch.setattr(ray_exec, "usable_cpus", lambda: 1)
    assert ray_exec.ray_min_local_s(cfg) == float("inf")
    assert ray_exec.ray_min_local_s(_cfg("ray", ray_min_local_s=3.5)) == 3.5


def test_short_corpus_never_starts_ray(tmp_path, corpus_listing, generated_corpus, store_contents, no_ray, caplog):
    """40 small images are well under the threshold: the run stays here, Ray is not started."""
    listing = corpus_listing(generated_corpus, 40)
    local = preprocess(listing, tmp_path / "local.zarr", _cfg("local"))
    with caplog.at_level("INFO", logger="mis_pipeline.pipeline.ray_exec"):
        res = preprocess(listing, tmp_path / "ray.zarr", _cfg("ray", ray_min_local_s=10.0))
    assert not no_ray.is_initialized()
    assert res.n_ok == local.n_ok == 40
    assert res.extra["ray_started"] == 0 and res.extra["ray_joined"] == 0
    assert res.extra["driver_images"] == 40 and res.extra["ray_images"] == 0
    assert 0 < res.extra["estimate_s"] < 10.0
    assert "Ray: not started" in caplog.text
    assert store_contents(tmp_path / "ray.zarr") == store_contents(tmp_path / "local.zarr")


# --------------------------------------------------------------------------- real Ray
@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_driver_and_workers_share_a_run(tmp_path, corpus_listing, generated_corpus, store_contents, no_ray, monkeypatch):
    """A slow driver: its probe says Ray pays off, it starts Ray and computes while Ray starts;
    the workers then take the rest. Both shares are non-empty and the trees are the local ones."""
    listing = corpus_listing(generated_corpus, 60)
    preprocess(listing, tmp_path / "local.zarr", _cfg("local", 4))
    _slow_driver(monkeypatch, 0.5)  # 30 s for the driver alone: Ray is up long before
    res = preprocess(listing, tmp_path / "ray.zarr", _cfg("ray", 4, ray_min_local_s=1.0))
    ex = res.extra
    assert res.n_ok == 60
    assert ex["ray_started"] == 1 and ex["ray_joined"] == 1 and ex["ray_start_s"] > 0
    assert ex["estimate_s"] >= 1.0
    assert ex["driver_images"] >= ray_exec.WARM_UP_IMAGES + 4  # warm-up and probe batches
    assert ex["ray_images"] > 0
    assert ex["driver_images"] + ex["ray_images"] == 60
    assert no_ray.is_initialized()
    assert store_contents(tmp_path / "ray.zarr") == store_contents(tmp_path / "local.zarr")


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_driver_only_commits_when_told(tmp_path, corpus_listing, generated_corpus, store_contents, no_ray):
    """driver_works=False: Ray is started at once and computes every image."""
    listing = corpus_listing(generated_corpus, 24)
    preprocess(listing, tmp_path / "local.zarr", _cfg("local", 4))
    res = preprocess(listing, tmp_path / "ray.zarr", _cfg("ray", 4, driver_works=False))
    assert res.extra["ray_started"] == 1 and res.extra["driver_images"] == 0 and res.extra["ray_images"] == 24
    assert store_contents(tmp_path / "ray.zarr") == store_contents(tmp_path / "local.zarr")


def test_failed_start_keeps_the_committed_batches(tmp_path, corpus_listing, generated_corpus, store_contents, no_ray, monkeypatch):
    """A local Ray that cannot start: a clear error after the driver's batches, which stay."""
    listing = corpus_listing(generated_corpus, 40)

    def broken_init(*args, **kwargs):
        time.sleep(1.0)  # the driver gets some batches done meanwhile (40 images take >= 2 s)
        raise OSError("no shared memory for the object store")

    monkeypatch.setattr(no_ray, "init", broken_init)
    _slow_driver(monkeypatch, 0.05)
    with pytest.raises(RayStartError, match="no shared memory.*--executor local"):
        preprocess(listing, tmp_path / "s.zarr", _cfg("ray", 4, ray_min_local_s=0.0))
    from mis_pipeline.store import TreeStore

    kept = len(TreeStore.open(tmp_path / "s.zarr"))
    assert 4 <= kept < 40
    monkeypatch.undo()
    res = preprocess(listing, tmp_path / "s.zarr", _cfg("local", 4))
    assert res.n_skipped == kept and len(TreeStore.open(tmp_path / "s.zarr")) == 40
    preprocess(listing, tmp_path / "local.zarr", _cfg("local", 4))
    assert store_contents(tmp_path / "s.zarr") == store_contents(tmp_path / "local.zarr")


# --------------------------------------------------------------------------- scripted Ray
class _Ref:
    def __init__(self, result: dict, ready_at: int) -> None:
        self.result = result
        self.ready_at = ready_at


class _ScriptedRay:
    """Stands in for the ``ray`` module: a task's result is ready ``delays[i]`` ticks after the
    i-th submission (a tick per ``wait`` call); computes eagerly with the real stages."""

    def __init__(self, delays: list[int]) -> None:
        self.delays = delays
        self.clock = 0
        self.submitted = 0
        self.cancelled: list[_Ref] = []

    def cluster_resources(self) -> dict:
        return {"CPU": 2}

    def put(self, value):
        return value

    def remote(self, num_cpus: int):
        ray = self

        class _Fn:
            def __init__(self, fn) -> None:
                self.fn = fn

            def remote(self, *args):
                delay = ray.delays[min(ray.submitted, len(ray.delays) - 1)]
                ray.submitted += 1
                return _Ref(self.fn(*args), ray.clock + delay)

        return _Fn

    def wait(self, refs, num_returns: int = 1, timeout=None):
        self.clock += 1
        ready = [r for r in refs if r.ready_at <= self.clock]
        if not ready and timeout is None:
            self.clock = min(r.ready_at for r in refs)
            ready = [r for r in refs if r.ready_at <= self.clock]
        ready = ready[:num_returns]
        return ready, [r for r in refs if r not in ready]

    def get(self, refs):
        return [r.result for r in refs]

    def cancel(self, ref) -> None:
        self.cancelled.append(ref)


class _ReadyStart:
    """A background start that is already done."""

    def __init__(self) -> None:
        import threading

        self.ready = threading.Event()
        self.ready.set()
        self.elapsed = 0.5

    def wait(self, timeout=None) -> bool:
        return True


def _scripted_run(corpus: Path, n: int, delays: list[int], monkeypatch) -> tuple[list[dict], ray_exec.RayRunStats, _ScriptedRay]:
    fake = _ScriptedRay(delays)
    monkeypatch.setattr(ray_exec, "init_ray", lambda address: fake)
    cfg = _cfg("ray", 4, ray_min_local_s=0.0)
    refs = list_images(corpus)[:n]
    stats = ray_exec.RayRunStats()
    run = ray_exec._TaskRun(refs, cfg, PATCH, None, stats, local_start=True)
    run.starting = _ReadyStart()  # as if the background start had just finished
    monkeypatch.setattr(run, "_start", lambda: None)
    stats.ray_started = True
    batches: Iterator[dict] = run.run()
    return list(batches), stats, fake


def _ids(batches: list[dict]) -> list[str]:
    return [str(i) for b in batches for i in b["image_id"]]


def test_scripted_cold_workers_are_stolen_from(generated_corpus, monkeypatch):
    """Workers that stay cold: the driver computes what is left, then the batches in flight,
    newest first, cancelling them; late results are never committed twice."""
    n = 24  # six batches of 4; capacity 4 batches (2 CPUs)
    batches, stats, fake = _scripted_run(generated_corpus, n, delays=[10**6], monkeypatch=monkeypatch)
    ids = _ids(batches)
    assert sorted(ids) == sorted(r.image_id for r in list_images(generated_corpus)[:n])
    assert len(ids) == len(set(ids)) == n
    assert stats.ray_images == 0 and stats.driver_images == n
    assert fake.submitted == 4 and stats.cancelled_batches == 4 and len(fake.cancelled) == 4


def test_scripted_warm_workers_take_over(generated_corpus, monkeypatch):
    """Workers that answer on the second tick: the driver stops computing after the first
    worker batch and every later batch comes from Ray; no image twice."""
    n = 40
    batches, stats, fake = _scripted_run(generated_corpus, n, delays=[2], monkeypatch=monkeypatch)
    ids = _ids(batches)
    assert len(ids) == len(set(ids)) == n
    assert stats.ray_images > 0 and stats.driver_images > 0
    assert stats.driver_images + stats.ray_images == n
    assert stats.cancelled_batches == 0 and not fake.cancelled
    assert stats.driver_images == 4  # one batch while the first worker batch was on its way
    assert len(batches[1]["image_id"]) == 16  # the four batches that finished together: one commit


def test_scripted_slow_first_batches_are_shared(generated_corpus, monkeypatch):
    """All four batches in flight at once and slow: the driver computes the newest two itself
    (cancelling them) until a worker batch arrives, then only commits; the trees are those of
    the stages run directly."""
    n = 16
    batches, stats, fake = _scripted_run(generated_corpus, n, delays=[3], monkeypatch=monkeypatch)
    ids = _ids(batches)
    assert len(ids) == len(set(ids)) == n
    assert stats.driver_images == 8 and stats.ray_images == 8
    assert stats.cancelled_batches == 2 and len(fake.cancelled) == 2
    refs = list_images(generated_corpus)[:n]
    ref = ray_exec.process_batch([r.image_id for r in refs], [r.path for r in refs], _cfg("ray", 4), PATCH)
    got = {str(b["image_id"][i]): np.asarray(b["children"][i]).tobytes() for b in batches
           for i in range(len(b["image_id"]))}
    assert got == {str(i): np.asarray(c).tobytes() for i, c in zip(ref["image_id"], ref["children"], strict=True)}


def test_concatenated_batches_equal_one_batch(generated_corpus):
    """Grouped commits: two batches concatenated are the batch of all their images."""
    refs = list_images(generated_corpus)[:8]
    cfg = _cfg("ray", 4)
    ids, paths = [r.image_id for r in refs], [r.path for r in refs]
    whole = ray_exec.process_batch(ids, paths, cfg, PATCH)
    from mis_pipeline.pipeline.stages import concat_batches

    parts = concat_batches([ray_exec.process_batch(ids[:3], paths[:3], cfg, PATCH),
                            ray_exec.process_batch(ids[3:], paths[3:], cfg, PATCH)])
    assert list(parts) == list(whole)
    for k in whole:
        a, b = np.asarray(whole[k]), np.asarray(parts[k])
        assert a.shape == b.shape, k
        if a.dtype == object:
            assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True)), k
        else:
            assert np.array_equal(a, b), k
    with pytest.raises(ValueError, match="different columns"):
        concat_batches([whole, {"image_id": whole["image_id"]}])
