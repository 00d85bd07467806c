"""Ray executor: same store content as the in-process executor, on a local Ray and on a
two-node cluster (head + worker on loopback) through ``ray job submit``.

Run inside a loopback-only network namespace (CI does; see the README).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from mis_pipeline.config import PipelineConfig, from_dict
from mis_pipeline.pipeline import preprocess

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCAL = {"features": {"backbone": "colour_texture"}, "preprocess": {"executor": "local", "batch_size": 8}}




@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for this module's tests (2 CPUs, no dashboard), shut down after."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("compute", ["tasks", "actors"])
def test_ray_executor_matches_local(tmp_path, corpus_listing, generated_corpus, local_ray, store_contents, compute):
    listing = corpus_listing(generated_corpus, 40)
    cfg_local = from_dict(PipelineConfig, LOCAL)
    cfg_ray = from_dict(PipelineConfig, {**LOCAL, "preprocess": {"executor": "ray", "batch_size": 8,
                                                                 "feature_compute": compute}})
    a = preprocess(listing, tmp_path / "local.zarr", cfg_local)
    b = preprocess(listing, tmp_path / "ray.zarr", cfg_ray)
    assert a.n_ok == b.n_ok == 40
    assert store_contents(tmp_path / "local.zarr") == store_contents(tmp_path / "ray.zarr")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _dashboard_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/version", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _kill_started(procs: list[subprocess.Popen], marker: str) -> None:
    """Stop what this test started: its `ray start` process groups, then any process whose
    command line names this test's private Ray temp dir (all started by this test)."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd and int(pid_dir.name) != os.getpid():
            try:
                os.kill(int(pid_dir.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_two_node_cluster_job_submit_matches_local(tmp_path, corpus_listing, generated_corpus, cli_env, store_contents):
    listing = corpus_listing(generated_corpus, 24)
    local_store = tmp_path / "local.zarr"
    preprocess(listing, local_store, from_dict(PipelineConfig, LOCAL))

    temp_dir = tempfile.mkdtemp(prefix="mray", dir="/tmp")  # short: Ray's socket paths are limited
    gcs, dash, client = _free_port(), _free_port(), _free_port()
    env = dict(cli_env)
    env.pop("RAY_ADDRESS", None)
    # Ray turns on token auth by itself when ~/.ray/auth_token exists (left by other Ray use on
    # the machine); this private loopback cluster runs without, whatever the home holds.
    env["RAY_AUTH_MODE"] = "disabled"
    ray_bin = str(BIN / "ray")
    common = ["--num-cpus=1", "--num-gpus=0", "--block", "--disable-usage-stats"]

    def node_ports() -> list[str]:
        # both nodes share 127.0.0.1: give each its own agent/metrics ports (defaults would clash)
        return [f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
                f"--metrics-export-port={_free_port()}", f"--runtime-env-agent-port={_free_port()}"]
    procs: list[subprocess.Popen] = []
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        head = subprocess.Popen(
            ["timeout", "400", ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}",
             "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--include-dashboard=true",
             f"--ray-client-server-port={client}", f"--temp-dir={temp_dir}", *node_ports(), *common],
            env=env, stdout=open(logs / "head.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        procs.append(head)
        _wait(lambda: _dashboard_up(dash) or head.poll() is not None, 120, "the Ray head")
        assert head.poll() is None, (logs / "head.log").read_text()[-3000:]
        worker = subprocess.Popen(
            ["timeout", "400", ray_bin, "start", f"--address=127.0.0.1:{gcs}", "--node-ip-address=127.0.0.1",
             *node_ports(), *common],
            env=env, stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        procs.append(worker)

        def two_nodes() -> bool:
            out = subprocess.run([ray_bin, "status", f"--address=127.0.0.1:{gcs}"], env=env,
                                 capture_output=True, text=True, timeout=60).stdout
            return len(re.findall(r"^\s*1 node_", out, flags=re.M)) == 2

        _wait(two_nodes, 120, "the worker node to join")
        out_store = tmp_path / "cluster.zarr"
        # No working_dir upload here: both nodes live on one machine and share one session
        # directory, so their runtime-env agents would unpack and garbage-collect the same
        # working_dir copy under each other's workers. The code comes from the installed
        # package on both nodes; on a real cluster the README's `--working-dir .` applies.
        runtime_env = {"env_vars": {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}}
        submit = [ray_bin, "job", "submit", f"--address=http://127.0.0.1:{dash}",
                  f"--runtime-env-json={json.dumps(runtime_env)}", "--",
                  sys.executable, "-m", "stages.preprocess", str(listing), "--out", str(out_store),
                  "--no-progress", "--set", "features.backbone=colour_texture", "--set", "preprocess.batch_size=8"]
        for _ in range(12):  # the head's job agent may still be starting: Ray says to retry
            job = subprocess.run(submit, env=env, capture_output=True, text=True, timeout=300)
            if "No available agent" not in job.stdout + job.stderr:
                break
            time.sleep(5)
        log = "\n".join(ln for ln in (job.stdout + job.stderr).splitlines() if "packaging.py" not in ln)
        assert job.returncode == 0, log[-6000:]
        assert "succeeded" in log.lower()
        assert store_contents(out_store) == store_contents(local_store)
    finally:
        _kill_started(procs, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
