"""Issue 13 item 5: Ctrl-C (SIGINT) of ``mis preprocess`` says how many images were committed
and that the same command resumes; exit status 130; the rerun completes the store. SIGTERM (what
a cluster scheduler sends before SIGKILL) is handled the same way, with exit status 143."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

MESSAGE = re.compile(
    r"^interrupted: (\d+) images committed \((\d+) in the store .*\); "
    r"run the same command again to resume$",
    re.M,
)


def _committed(store: Path) -> int:
    try:
        return int(json.loads((store / "zarr.json").read_text())["attributes"]["committed"]["records"])
    except (OSError, ValueError, KeyError):
        return 0


def _interrupt_then_resume(cmd: list[str], store: Path, n_images: int, env: dict, cwd: Path,
                           timeout: float, sig: int = signal.SIGINT, code: int = 130,
                           after_interrupt=None) -> None:
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + timeout
    while _committed(store) == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be interrupted:\n" + proc.stderr.read()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == code, out + err
    assert "Traceback" not in out + err, err
    found = MESSAGE.findall(err)
    assert len(found) == 1, err
    n_this_run, n_store = map(int, found[0])
    in_store = _committed(store)
    assert 1 <= n_this_run <= in_store == n_store < n_images, (found, in_store)
    if after_interrupt is not None:
        after_interrupt()

    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"skipped {n_store} already done" in done.stdout
    from mis_pipeline.store import TreeStore

    st = TreeStore.open(store)
    assert len(st) == n_images and len(set(st.image_ids)) == n_images


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl_c", "sigterm"])
def test_interrupt_local_executor(tmp_path, mis_script, cli_env, make_corpus, sig, code):
    corpus = make_corpus(tmp_path / "corpus", 160, seed=3)
    store = tmp_path / "s.zarr"
    cmd = [mis_script, "preprocess", str(corpus), "--out", str(store), "--config", "offline",
           "--executor", "local", "--set", "preprocess.batch_size=2", "--no-progress"]
    _interrupt_then_resume(cmd, store, 160, cli_env, tmp_path, timeout=120, sig=sig, code=code)


def _in_loopback_netns() -> bool:
    """Ray may only start where the network is loopback-only (the project's test rule)."""
    import socket

    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return False
    return names == ["lo"]


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.parametrize("driver_works", ["true", "false"])
def test_ctrl_c_ray_executor(tmp_path, mis_script, cli_env, make_corpus, driver_works):
    """Ray is started at once (ray_min_local_s=0). With driver_works the interrupt lands while
    Ray is still starting and the driver computes; without, while Ray's tasks deliver."""
    if not _in_loopback_netns():
        pytest.skip("Ray tests run inside the loopback-only network namespace (ip netns exec mis)")
    corpus = make_corpus(tmp_path / "corpus", 400, seed=4)
    store = tmp_path / "s.zarr"
    cmd = [mis_script, "preprocess", str(corpus), "--out", str(store), "--config", "offline",
           "--executor", "ray", "--set", "preprocess.batch_size=2", "--set", "preprocess.ray_min_local_s=0",
           "--set", f"preprocess.driver_works={driver_works}", "--no-progress"]
    _interrupt_then_resume(cmd, store, 400, cli_env, tmp_path, timeout=300)


@pytest.mark.slow
@pytest.mark.ray
def test_sigterm_while_ray_starts(tmp_path, mis_script, cli_env, make_corpus):
    """SIGTERM while a local Ray starts in the background and the driver computes: the same
    message, exit 143, no Ray process left behind, and the rerun completes the store."""
    if not _in_loopback_netns():
        pytest.skip("Ray tests run inside the loopback-only network namespace (ip netns exec mis)")
    corpus = make_corpus(tmp_path / "corpus", 400, seed=6)
    store = tmp_path / "s.zarr"
    before = _ray_service_pids()

    def no_ray_left() -> None:
        deadline = time.monotonic() + 30
        while _ray_service_pids() - before and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _ray_service_pids() - before, "Ray services outlived the terminated run"

    cmd = [mis_script, "preprocess", str(corpus), "--out", str(store), "--config", "offline",
           "--executor", "ray", "--set", "preprocess.batch_size=2", "--set", "preprocess.ray_min_local_s=0",
           "--no-progress"]
    _interrupt_then_resume(cmd, store, 400, cli_env, tmp_path, timeout=300, sig=signal.SIGTERM, code=143,
                           after_interrupt=no_ray_left)


def _ray_service_pids() -> set[int]:
    """PIDs of running Ray GCS servers and raylets (any owner: compared before/after)."""
    pids = set()
    for d in Path("/proc").glob("[0-9]*"):
        try:
            exe = (d / "cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            continue
        if exe.endswith((b"/gcs_server", b"/raylet")):
            pids.add(int(d.name))
    return pids
