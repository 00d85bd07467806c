"""``mis evaluate`` and ``python -m stages.evaluate``: outputs, comparison plot, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mis_pipeline.cli import main


def test_evaluate_writes_summary_csv_and_config(tmp_path, synthetic_folder, capsys):
    out = tmp_path / "run"
    rc = main(["evaluate", "--dataset", "folder", "--data", str(synthetic_folder), "--predictor", "gt",
               "--out", str(out), "--set", "evaluate.max_clicks=4"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "NoC@90" in printed and "gt" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "folder" and summary["predictor"] == "gt" and summary["num_samples"] == 4
    assert summary["noc"]["90"] == 1.0 and summary["nof_never_reached"]["90"] == 0 and len(summary["miou_at"]) == 4
    assert (out / "per_sample.csv").is_file() and (out / "resolved_config.yaml").is_file()
    assert "max_clicks: 4" in (out / "resolved_config.yaml").read_text()


def test_compare_draws_one_png(tmp_path, synthetic_folder, capsys):
    for pred in ("gt", "empty"):
        assert main(["evaluate", "-d", "folder", "--data", str(synthetic_folder), "-p", pred, "--limit", "2",
                     "-o", str(tmp_path / pred)]) == 0
    png = tmp_path / "curves.png"
    assert main(["evaluate", "--compare", str(tmp_path / "gt"), str(tmp_path / "empty" / "summary.json"),
                 "--out", str(png), "--title", "debug"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "empty" in capsys.readouterr().out


def test_errors_are_one_line(tmp_path, capsys):
    rc = main(["evaluate", "--dataset", "grabcut", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert rc == 2 and "data_GT" in capsys.readouterr().err
    rc = main(["evaluate", "-d", "grabcut", "--data", str(tmp_path), "-o", str(tmp_path), "-p", "magic"])
    err = capsys.readouterr().err
    assert rc == 2 and "evaluate.predictor" in err and "magic" in err
    assert main(["evaluate", "--dataset", "grabcut"]) == 2  # --data and --out missing
    assert main(["evaluate", "--compare", "--out", str(tmp_path / "x.png")]) == 2


def test_stage_entry_point(tmp_path, synthetic_folder):
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "stages.evaluate", "--dataset", "folder", "--data", str(synthetic_folder),
           "--predictor", "empty", "--limit", "1", "--out", str(tmp_path / "s"), "--set", "evaluate.max_clicks=2"]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["noc"]["80"] == 2.0
