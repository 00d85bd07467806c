"""The server on a real socket (raw requests uvicorn sees unnormalised) and ``mis annotate``."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mis_pipeline.annotate import Annotator, run_in_background
from mis_pipeline.cli import main


@pytest.fixture
def server(image_dir: Path, tmp_path: Path):
    srv, thread, url = run_in_background(Annotator(image_dir, tmp_path / "masks"), "127.0.0.1", 0)
    port = int(url.rsplit(":", 1)[1])
    try:
        yield port
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.mark.parametrize(
    "target",
    [
        "/static/../../secret.txt",
        "/static/..%2F..%2Fsecret.txt",
        "/static/%2e%2e/%2e%2e/secret.txt",
        "/static/..\\..\\secret.txt",
        "//secret.txt",
        "/api/images/0/../../../secret.txt",
        "/api/images/..%2F..%2Fsecret.txt/image",
        "/../secret.txt",
        "/static/app.js/../../secret.txt",
    ],
)
def test_raw_traversal_is_refused(server, target):
    r = raw(server, f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    assert status(r) in (400, 404), r[:200]
    assert b"TOP-SECRET" not in r


def test_raw_limits_and_host_check(server):
    # a declared body over the limit is refused before it is read
    r = raw(server, b"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 1000000000\r\nConnection: close\r\n\r\n")
    assert status(r) == 413
    # oversized request headers
    r = raw(server, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 70_000 + b"\r\nConnection: close\r\n\r\n")
    assert r == b"" or 400 <= status(r) < 500
    # DNS rebinding: another host name is refused on loopback
    r = raw(server, b"GET /api/images HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n")
    assert status(r) == 400
    r = raw(server, b"GET /api/images HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert status(r) == 200 and b"a0.png" in r


def test_cli_usage_errors(tmp_path, capsys, image_dir):
    assert main(["annotate", str(tmp_path / "missing"), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "is not a folder" in err and "Traceback" not in err
    assert main(["annotate", str(image_dir), "--out", str(tmp_path / "m"), "--predictor", "tree",
                 "--checkpoint", str(tmp_path)]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert main(["annotate", str(image_dir), "--out", str(tmp_path / "m"), "--predictor", "nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err
    (tmp_path / "file").write_text("x")
    assert main(["annotate", str(image_dir), "--out", str(tmp_path / "file")]) == 2


def test_cli_serves_and_warns_off_loopback(tmp_path, capsys, image_dir, monkeypatch):
    import mis_pipeline.annotate.server as server_mod

    calls = []
    monkeypatch.setattr(server_mod, "serve", lambda annotator, host, port: calls.append((annotator, host, port)))
    monkeypatch.setattr(server_mod.Annotator, "warmup", lambda self: None)
    out = tmp_path / "m"
    assert main(["annotate", str(image_dir), "--out", str(out), "--port", "9999"]) == 0
    (annotator, host, port), = calls
    assert (host, port) == ("127.0.0.1", 9999) and annotator.predictor_name == "tree"
    assert "warning" not in capsys.readouterr().err
    assert (out / "resolved_config.yaml").is_file()
    assert main(["annotate", str(image_dir), "--out", str(out), "--host", "0.0.0.0"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "0.0.0.0" in err
    assert calls[-1][1] == "0.0.0.0"


def test_cli_checkpoint_selects_the_model_predictor(tmp_path, image_dir, monkeypatch):
    import mis_pipeline.annotate.server as server_mod

    seen = {}

    class FakeAnnotator:
        def __init__(self, images, out, predictor, cfg, settings):
            seen.update(predictor=predictor, checkpoint=cfg.evaluate.model.checkpoint)
            self.images = []

        def warmup(self):
            pass

    monkeypatch.setattr(server_mod, "Annotator", FakeAnnotator)
    monkeypatch.setattr(server_mod, "serve", lambda *a: None)
    run = tmp_path / "run"
    run.mkdir()
    assert main(["annotate", str(image_dir), "--out", str(tmp_path / "m"), "--checkpoint", str(run)]) == 0
    assert seen == {"predictor": "model", "checkpoint": str(run)}


def test_concurrent_sessions_on_the_real_server(server):
    """Two clients clicking at the same time on one server get the answers each gets alone."""
    import threading

    import httpx
    import numpy as np

    from mis_pipeline.annotate.rle import decode_rows

    base = f"http://127.0.0.1:{server}"
    plans = {0: [(32, 38, True), (10, 80, False), (60, 20, True)], 1: [(20, 70, True), (50, 30, True)]}

    def run(index: int, out: dict) -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            h = {"X-MIS-Session": c.post("/api/session", json={}).json()["session"]}
            c.post("/api/open", json={"index": index}, headers=h).raise_for_status()
            masks = []
            for row, col, pos in plans[index]:
                r = c.post("/api/click", json={"index": index, "row": row, "col": col, "positive": pos}, headers=h)
                r.raise_for_status()
                masks.append(decode_rows(r.json()["mask"]))
            out[index] = masks

    alone: dict = {}
    for i in plans:
        run(i, alone)
    together: dict = {}
    for _ in range(2):
        threads = [threading.Thread(target=run, args=(i, together)) for i in plans for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in plans:
            assert all(np.array_equal(a, b) for a, b in zip(alone[i], together[i], strict=True))
