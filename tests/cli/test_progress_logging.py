"""Issue 13 items 6-7: progress of long runs (a bar on a terminal, a line every few seconds
otherwise), evaluate's --overwrite and worker default, INFO logging on stderr only, and the
final summary printed once."""

from __future__ import annotations

import io
import json
import os

import pytest
import yaml

from mis_pipeline.cli import main
from mis_pipeline.cli._common import Progress


def _evaluate(folder, out, *extra, workers=("-w", "1")):
    return main(["evaluate", "-d", "folder", "--data", str(folder), "-p", "gt", "--out", str(out),
                 "--set", "evaluate.max_clicks=3", *workers, *extra])


def test_evaluate_progress_and_logs_on_stderr_results_on_stdout(folder_dataset, tmp_path, capsys):
    assert _evaluate(folder_dataset, tmp_path / "run", "-v") == 0
    cap = capsys.readouterr()
    # stdout: the summary table and where it was written, nothing else
    assert "NoC@90" in cap.out and "wrote" in cap.out
    assert "evaluated 3 samples" not in cap.out and "evaluate: " not in cap.out
    # stderr (not a terminal here): progress lines with the running NoC@90, and the log
    assert "evaluate: 3/3 samples (100%)" in cap.err and "NoC@90 1.00" in cap.err
    assert "evaluated 3 samples" in cap.err
    assert _evaluate(folder_dataset, tmp_path / "quiet", "--no-progress") == 0
    assert "samples" not in capsys.readouterr().err


def test_evaluate_refuses_an_out_with_results_unless_overwrite(folder_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    assert _evaluate(folder_dataset, out) == 0
    capsys.readouterr()
    stamp = (out / "summary.json").stat().st_mtime_ns
    assert _evaluate(folder_dataset, out) == 2
    err = capsys.readouterr().err
    assert "already holds results" in err and "--overwrite" in err and "summary.json" in err
    assert (out / "summary.json").stat().st_mtime_ns == stamp
    assert _evaluate(folder_dataset, out, "--overwrite", "--set", "evaluate.max_clicks=2") == 0
    assert json.loads((out / "summary.json").read_text())["max_clicks"] == 2
    # an existing but empty folder is fine
    (tmp_path / "empty").mkdir()
    assert _evaluate(folder_dataset, tmp_path / "empty") == 0


def test_evaluate_workers_default_is_the_usable_cores(folder_dataset, tmp_path, capsys, monkeypatch):
    from mis_pipeline.config import EvalConfig
    from mis_pipeline.evaluate import open_dataset, runner
    from mis_pipeline.evaluate.runner import evaluate_dataset, usable_cores

    assert EvalConfig().workers is None
    want = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert usable_cores() == want
    # the resolved config records the number actually used (never more than the samples)
    assert _evaluate(folder_dataset, tmp_path / "one", "--limit", "1", workers=()) == 0
    cfg = yaml.safe_load((tmp_path / "one" / "resolved_config.yaml").read_text())
    assert cfg["evaluate"]["workers"] == 1
    # the runner asks usable_cores() when neither the call nor the config sets workers
    from mis_pipeline.config import PipelineConfig, from_dict

    asked = []
    monkeypatch.setattr(runner, "usable_cores", lambda: asked.append(1) or 1)
    ds = open_dataset("folder", str(folder_dataset))
    res = evaluate_dataset(ds, from_dict(PipelineConfig, {"evaluate": {"predictor": "gt"}}))
    assert asked and res.workers == 1 and len(res.samples) == 3


def test_progress_lines_when_not_a_terminal():
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=200)
    with Progress("evaluate", "samples", interval_s=0.0, console=console) as bar:
        for k in range(1, 4):
            bar(k, 3, f"NoC@90 {k:.2f}")
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3, lines  # one per call at interval 0, the last not repeated at exit
    assert lines[0].startswith("evaluate: 1/3 samples (33%)") and "ETA" in lines[0]
    assert lines[-1].startswith("evaluate: 3/3 samples (100%)") and "NoC@90 3.00" in lines[-1]
    buf2 = io.StringIO()
    with Progress("x", interval_s=3600.0, console=Console(file=buf2, force_terminal=False)) as bar:
        for k in range(1, 50):
            bar(k, 49)
    assert len(buf2.getvalue().splitlines()) == 2  # the first call and the end only


def test_progress_bar_on_a_terminal():
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=160)
    with Progress("evaluate", "samples", console=console) as bar:
        bar(0, 4, "")
        bar(4, 4, "NoC@90 2.50")
    text = buf.getvalue()
    assert "4/4" in text and "NoC@90 2.50" in text and "samples/s" in text


def test_preprocess_logs_on_stderr_and_summary_once(small_corpus, tmp_path, capsys):
    store = tmp_path / "s.zarr"
    rc = main(["preprocess", str(small_corpus), "--out", str(store), "--config", "offline",
               "--executor", "local", "--no-progress", "-v"])
    cap = capsys.readouterr()
    assert rc == 0
    assert "images listed" in cap.err and "images listed" not in cap.out  # INFO -> stderr
    assert cap.out.count("listed 6 images") == 1  # the summary, once
    assert "preprocess done" not in cap.out + cap.err
    assert cap.out.splitlines()[0].startswith("listed 6 images")


@pytest.mark.slow
def test_console_script_stdout_holds_results_only(small_corpus, tmp_path, mis_script, cli_env):
    import subprocess

    proc = subprocess.run([mis_script, "preprocess", str(small_corpus), "--out", str(tmp_path / "s"),
                           "--config", "offline", "--executor", "local", "-vv"],
                          capture_output=True, text=True, env=cli_env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("listed 6 images")
    assert "INFO" not in proc.stdout and "DEBUG" not in proc.stdout and "preprocess:" not in proc.stdout
    assert "INFO" in proc.stderr and "preprocess: 6/6 images (100%)" in proc.stderr
    assert "DEBUG" in proc.stderr and "numba" not in proc.stderr  # -vv: this package only


def test_evaluate_ctrl_c_is_one_line_exit_130(folder_dataset, tmp_path, capsys, monkeypatch):
    import mis_pipeline.evaluate as ev

    def interrupted(*args, **kwargs):  # noqa: ANN002, ANN003
        raise KeyboardInterrupt

    monkeypatch.setattr(ev, "evaluate_dataset", interrupted)
    assert _evaluate(folder_dataset, tmp_path / "run") == 130
    cap = capsys.readouterr()
    assert cap.err.strip().splitlines()[-1] == "interrupted: no results written"
    assert "Traceback" not in cap.err and not (tmp_path / "run" / "summary.json").exists()
