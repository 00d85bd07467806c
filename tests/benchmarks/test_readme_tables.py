"""benchmarks/readme_tables.py: README blocks regenerated from committed result files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rt():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "benchmarks" / "readme_tables.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["readme_tables"] = mod  # dataclasses look their module up while being built
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("readme_tables", None)


def _toy(rt, tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.json").write_text(json.dumps({"runs": [{"speed": 0.03312, "n": 7}, {"speed": 2.5}]}))
    return rt.Table(
        name="toy",
        label_header="run",
        columns=(rt.Column("speed", "speed", rt.sig(2)), rt.Column("n", "n", rt.integer)),
        rows=(rt.Literal("paper", ("1.0",), "somebody 2020"),
              rt.Row("first", "r/a.json", select="runs.0", bold=("n",)),
              rt.Row("second", "r/a.json", select="runs.-1")),
        notes=("A note.",),
    )


def test_render_reads_paths_formats_and_marks_missing(rt, tmp_path):
    md = rt.render(_toy(rt, tmp_path), root=tmp_path)
    lines = md.splitlines()
    assert lines[0] == "| run | speed | n |" and lines[1] == "|---|---|---|"
    assert lines[2] == "| paper | 1.0 |  |"
    assert lines[3] == "| first | 0.033 | **7** |"
    assert lines[4] == "| second | 2.5 | n/a |"
    assert "A note." in md and "paper: somebody 2020." in md
    assert rt.get_path({"a": [{"b": 1}]}, "a.0.b") == 1 and rt.get_path({"a": []}, "a.3") is None


def test_rewrite_replaces_only_its_blocks(rt, tmp_path, monkeypatch):
    monkeypatch.setitem(rt.TABLES, "toy", _toy(rt, tmp_path))
    readme = ("# Title\n\ntext before\n<!-- BEGIN toy -->\nstale table\n<!-- END toy -->\ntext after\n"
              "<!-- BEGIN other -->\nkept\n<!-- END other -->\n")
    new, replaced, unknown = rt.rewrite(readme, root=tmp_path)
    assert replaced == ["toy"] and unknown == ["other"]
    assert "stale table" not in new and "| first | 0.033 | **7** |" in new
    assert new.startswith("# Title\n\ntext before\n<!-- BEGIN toy -->\n| run |")
    assert new.endswith("<!-- END toy -->\ntext after\n<!-- BEGIN other -->\nkept\n<!-- END other -->\n")
    assert rt.rewrite(new, root=tmp_path)[0] == new  # idempotent
    with pytest.raises(SystemExit, match="no matching"):
        rt.rewrite("<!-- BEGIN toy -->\nno end\n", root=tmp_path)


def test_check_mode_and_rewrite_on_a_readme_file(rt, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(rt.TABLES, "toy", _toy(rt, tmp_path))
    monkeypatch.setattr(rt, "ROOT", tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("<!-- BEGIN toy -->\nold\n<!-- END toy -->\n")
    assert rt.main(["--readme", str(readme), "--check"]) == 1
    assert rt.main(["--readme", str(readme)]) == 0
    assert "| first |" in readme.read_text()
    assert rt.main(["--readme", str(readme), "--check"]) == 0


def test_the_grabcut_table_matches_the_committed_summaries(rt):
    md = rt.render(rt.TABLES["eval-grabcut"])
    for pred in ("tree", "graphcut", "oracle"):
        s = json.loads((ROOT / "benchmarks" / "results" / f"eval_grabcut_{pred}" / "summary.json").read_text())
        row = next(line for line in md.splitlines() if line.startswith(f"| `{pred}`"))
        cells = [c.strip().strip("*") for c in row.strip("|").split("|")]
        assert cells[1] == f"{s['noc']['85']:.2f}" and cells[2] == f"{s['noc']['90']:.2f}"
        assert cells[3] == str(s["nof_noc_eq_max_clicks"]["90"]) and cells[4] == str(s["nof_never_reached"]["90"])
        assert s["num_samples"] == 50 and s["max_clicks"] == 20


def test_readme_blocks_are_up_to_date(rt):
    # Once the README carries the markers, a result file changed without rerunning the script
    # fails here (the README cannot drift from the committed results).
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    new, _, unknown = rt.rewrite(text)
    assert not unknown, f"README blocks without a table definition: {unknown}"
    assert new == text, "README tables are stale: run python benchmarks/readme_tables.py"
