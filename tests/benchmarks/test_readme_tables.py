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
    spec = importlib.util.spec_from_file_location(
        "readme_tables", ROOT / "benchmarks" / "readme_tables.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["readme_tables"] = mod  # dataclasses look their module up while being built
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("readme_tables", None)


def _toy(rt, tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.json").write_text(
        json.dumps({"runs": [{"speed": 0.03312, "n": 7}, {"speed": 2.5}]})
    )
    return rt.Table(
        name="toy",
        label_header="run",
        columns=(
            rt.Column("speed", "speed", rt.sig(2)),
            rt.Column("n", "n", rt.integer, optional=True),
        ),
        rows=(
            rt.Literal("paper", ("1.0",), "somebody 2020"),
            rt.Row("first", "r/a.json", select="runs.0", bold=("n",)),
            rt.Row("second", "r/a.json", select="runs.-1"),
        ),
        notes=("A note.",),
    )


def test_render_reads_paths_formats_and_marks_missing_optional_cells(rt, tmp_path):
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
    readme = (
        "# Title\n\ntext before\n<!-- BEGIN toy -->\nstale table\n<!-- END toy -->\ntext after\n"
        "<!-- BEGIN other -->\nkept\n<!-- END other -->\n"
    )
    new, replaced, unknown = rt.rewrite(readme, root=tmp_path)
    assert replaced == ["toy"] and unknown == ["other"]
    assert "stale table" not in new and "| first | 0.033 | **7** |" in new
    assert new.startswith("# Title\n\ntext before\n<!-- BEGIN toy -->\n| run |")
    assert new.endswith(
        "<!-- END toy -->\ntext after\n<!-- BEGIN other -->\nkept\n<!-- END other -->\n"
    )
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
        s = json.loads(
            (ROOT / "benchmarks" / "results" / f"eval_grabcut_{pred}" / "summary.json").read_text()
        )
        row = next(line for line in md.splitlines() if line.startswith(f"| `{pred}`"))
        cells = [c.strip().strip("*") for c in row.strip("|").split("|")]
        assert cells[1] == f"{s['noc']['85']:.2f}" and cells[2] == f"{s['noc']['90']:.2f}"
        assert cells[3] == str(s["nof_noc_eq_max_clicks"]["90"]) and cells[4] == str(
            s["nof_never_reached"]["90"]
        )
        assert s["num_samples"] == 50 and s["max_clicks"] == 20


def test_readme_blocks_are_up_to_date(rt):
    # Once the README carries the markers, a result file changed without rerunning the script
    # fails here (the README cannot drift from the committed results).
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    new, _, unknown = rt.rewrite(text)
    assert not unknown, f"README blocks without a table definition: {unknown}"
    assert new == text, "README tables are stale: run python benchmarks/readme_tables.py"


# --------------------------------------------------------------------------- strict lookups
def test_a_missing_key_stops_the_script_naming_file_and_key(rt, tmp_path):
    toy = _toy(rt, tmp_path)
    strict = rt.Table(
        name="toy",
        label_header="run",
        columns=(rt.Column("n", "n", rt.integer),),
        rows=(rt.Row("second", "r/a.json", select="runs.1"),),
    )
    with pytest.raises(
        SystemExit, match=r"r/a.json \(runs.1\): 'n' not found: no key 'n' .*keys there: 'speed'"
    ):
        rt.render(strict, root=tmp_path)
    # an explicit null is shown as n/a (the benchmark said it has no value), a wrong type stops
    (tmp_path / "r" / "a.json").write_text(
        json.dumps({"runs": [{"speed": None, "n": 1}, {"speed": "fast"}]})
    )
    with pytest.raises(SystemExit, match=r"'speed' = 'fast' cannot be shown"):
        rt.render(toy, root=tmp_path)
    with pytest.raises(SystemExit, match="does not exist"):
        rt.render(
            rt.Table(name="x", label_header="x", columns=(), rows=(rt.Row("x", "r/none.json"),)),
            root=tmp_path,
        )


def test_paths_match_dotted_keys_whole_and_index_lists(rt):
    obj = {"results": {"0.5MP": {"ms": [1, 2, 3]}, "grabcut": {"ms": [4]}}}
    assert rt.lookup(obj, "results.0.5MP.ms.-1", "f") == 3
    assert rt.lookup(obj, "results.grabcut.ms.0", "f") == 4
    assert (
        rt.get_path(obj, "results.0.7MP") is None
        and rt.get_path(obj, "results.grabcut.ms.1") is None
    )
    with pytest.raises(SystemExit, match=r"no item '1' in the list of 1 at results.grabcut.ms"):
        rt.lookup(obj, "results.grabcut.ms.1", "f")
    with pytest.raises(SystemExit, match=r"results.grabcut.ms.0 is 4, not an object"):
        rt.lookup(obj, "results.grabcut.ms.0.x", "f")


def test_templates_formats_and_file_top(rt):
    obj = {
        "a": {"t": 0.08621, "n": 3, "f": 0.0391, "r": 2.551, "mp": {"min": 0.499, "max": 0.501}},
        "load": [15.33, 14.6, 11.0],
        "archs": {"x": 1, "y": 2},
        "none": None,
    }
    out = rt.fill(
        "{t:ms2} ms, {n} runs, {f:pct1}, {r:ratio3}, {r:x1}, {mp:range2} MP, {/load:load}, "
        "{/archs:keys}, {/archs:len}, {n:03d}, {/none:f2}",
        obj["a"],
        "f.json",
        top=obj,
    )
    assert out == "86 ms, 3 runs, 3.9 %, 2.55x, 2.6x, 0.50 MP, 15.3, x,y, 2, 003, n/a"
    with pytest.raises(SystemExit, match=r"f.json: 'q' not found"):
        rt.fill("{q}", obj, "f.json")
    with pytest.raises(SystemExit, match=r"f.json: 'load' = \[15.33.* cannot be shown"):
        rt.fill("{load:f2}", obj, "f.json")


def test_each_row_ratio_cells_parts_and_provenance(rt, tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "m.json").write_text(
        json.dumps(
            {
                "what": "toy runs",
                "cmd": "python bench.py --n 3",
                "load": [2.5, 2.0, 1.0],
                "cpus": 2,
                "runs": [
                    {"name": "a", "fast": 1.0, "slow": 10.0},
                    {"name": "b", "fast": 2.0, "slow": 0.0},
                ],
                "archs": {"vit": {"fast": 4.0, "slow": 8.0}},
            }
        )
    )
    cols = (
        rt.Column("fast", "fast", rt.fixed(1)),
        rt.Column("speed-up", rt.Ratio("slow", "fast"), rt.ratio(3)),
    )
    table = rt.Table(
        name="toy",
        label_header="run",
        source="r/m.json",
        caption="Timing of {what}:",
        columns=cols,
        rows=(
            rt.EachRow("r/m.json", "runs", label="{name}", labels={"a": "run A"}),
            rt.EachRow("r/m.json", "archs", label="`{_key}`"),
        ),
        command="{cmd}",
        load=(("at the start", "load"),),
        cpus="cpus",
        then=(
            rt.Table(
                name="",
                label_header="x",
                source="r/opt.json",
                optional=True,
                columns=(rt.Column("v", "v"),),
                rows=(rt.Row("opt", "r/opt.json"),),
                command="python opt.py",
            ),
        ),
    )
    md = rt.render(table, root=tmp_path)
    lines = md.splitlines()
    assert lines[0] == "Timing of toy runs:"
    assert (
        "| run A | 1.0 | 10.0x |" in lines
        and "| b | 2.0 | 0x |" in lines
        and "| `vit` | 4.0 | 2.00x |" in lines
    )
    assert "```\npython bench.py --n 3\n```" in md and "python opt.py" not in md
    assert "`m.json`: 2.5 at the start on 2 CPUs" in md
    assert md.endswith("from `r/m.json`._")
    (tmp_path / "r" / "opt.json").write_text(json.dumps({"v": 7}))
    md = rt.render(table, root=tmp_path)
    assert "| opt | 7 |" in md and "```\npython bench.py --n 3\npython opt.py\n```" in md
    assert md.endswith("from `r/m.json`, `r/opt.json`._")


# --------------------------------------------------------------------------- the declared tables
def _results(name):
    return json.loads((ROOT / "benchmarks" / "results" / name).read_text())


def _rows(md):
    """{label: [cells]} of the Markdown tables in ``md`` (bold marks removed)."""
    out = {}
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
            out[cells[0]] = cells[1:]
    return out


#: The README's generated tables (a new one is declared here and in benchmarks/readme_tables.py).
DECLARED_TABLES = {
    "eval-grabcut",
    "bench-samples",
    "bench-sampling",
    "bench-annotate",
    "bench-pipeline",
    "bench-model-step",
    "bench-train-step",
    "bench-train-curve",
    "bench-methods-cfr-taiz",
    "bench-methods-refcut",
    "bench-proposal-recall",
    "bench-evaluate",
}


@pytest.mark.parametrize("name", sorted(DECLARED_TABLES))
def test_every_declared_table_renders_from_the_result_files(rt, name, capsys):
    assert name in rt.TABLES
    assert rt.main(["--print", name]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"<!-- BEGIN {name} -->\n") and out.endswith(f"<!-- END {name} -->\n")
    if name != "eval-grabcut":
        assert "n/a" not in out  # every figure these tables show is in their files
        assert "Reproduce (from the project root):" in out and "_Generated by" in out
        for src in rt.sources(rt.TABLES[name]):
            assert f"`{src}`" in out


def test_all_tables_are_the_declared_ones(rt):
    assert set(rt.TABLES) == DECLARED_TABLES


def test_benchmark_tables_show_the_figures_of_their_files(rt):
    r = _rows(rt.render(rt.TABLES["bench-samples"]))
    s = _results("samples.json")
    pil = r["`data.decoder=pil` (default)"]
    assert pil[0] == f"{s['single_process']['bare_decodes_per_sample']:.2f}"
    assert pil[7] == f"{s['single_process']['component_in_bare_decodes']['augment']:.2f}"
    assert (
        r["`DataLoader`, 2 workers, batch 16"][2]
        == f"{s['dataloader_2_workers']['speedup_vs_single_process']:.2f}x"
    )
    assert (
        r["Ray Data, 2 CPUs, batch 16"][2]
        == f"{s['ray_data_2_cpus']['speedup_vs_single_process']:.2f}x"
    )

    r = _rows(rt.render(rt.TABLES["bench-pipeline"]))
    p = _results("pipeline.json")
    for corpus, row in zip(p["corpora"], list(r.values())[1:], strict=True):
        assert row[0] == str(corpus["images"])
        cold = corpus["cold"]
        assert row[3] == f"{cold['ratio_ray_local']:.2f}x"
        assert row[4] == f"{cold['ray']['driver_images']} / {cold['ray']['ray_images']}"
        assert row[6:9] == [
            f"{cold['ratio_ray_only_local']:.2f}x",
            f"{cold['ratio_ray_only_local_without_start']:.2f}x",
            f"{corpus['warm']['ratio_ray_local']:.2f}x",
        ]

    r = _rows(rt.render(rt.TABLES["bench-annotate"]))
    a = _results("annotate.json")["results"]
    assert float(r["upscaled to 0.5 MP (bicubic)"][5]) == pytest.approx(
        a["0.5MP"]["browser_ms"]["median"], rel=0.05
    )
    assert float(r["GrabCut as published"][1]) == pytest.approx(
        a["grabcut"]["predict_ms"]["median"], rel=0.05
    )

    r = _rows(rt.render(rt.TABLES["bench-model-step"]))
    m = _results("model_step.json")["archs"]
    wall, cpu = (float(x) for x in r["`vit_tiny`"][1].split(" / "))
    assert wall == pytest.approx(1000 * m["vit_tiny"]["train_forward_backward"]["best_s"], rel=0.05)
    assert cpu == pytest.approx(
        1000 * m["vit_tiny"]["train_forward_backward"]["cpu_best_s"], rel=0.05
    )

    r = _rows(rt.render(rt.TABLES["bench-train-curve"]))
    c, tree = _results("train_curve.json"), _results("eval_grabcut_tree/summary.json")
    trained = next(v for k, v in r.items() if "trained" in k and "untrained" not in k)
    assert trained[:3] == [
        f"{c['trained']['noc85']:.2f}",
        f"{c['trained']['noc90']:.2f}",
        str(c["trained"]["nof90"]),
    ]
    assert r["`tree` predictor (colour_texture, no training)"][:2] == [
        f"{tree['noc']['85']:.2f}",
        f"{tree['noc']['90']:.2f}",
    ]
    assert tree["noc"]["85"] == c["tree_predictor"]["noc85"]  # the file the curve cites
    assert r["published MIS (ViT-B/16, GPUs)"][:2] == ["1.94", "2.32"]

    for name, file in (
        ("bench-methods-cfr-taiz", "methods_cfr_taiz.json"),
        ("bench-methods-refcut", "methods_refcut.json"),
    ):
        rows = list(_rows(rt.render(rt.TABLES[name])).values())[1:]
        res = _results(file)["results"]
        assert len(rows) == len(res)
        for row, item in zip(rows, res, strict=True):
            assert row[:2] == [f"{item['noc']['85']:.2f}", f"{item['noc']['90']:.2f}"]

    r = _rows(rt.render(rt.TABLES["bench-proposal-recall"]))
    pr = _results("proposal_recall.json")
    assert r["`root_children`"][0] == f"{pr['other_samplers']['root_children']['recall']:.2f}"
    assert next(v for k, v in r.items() if k.startswith("`top_down`"))[0] == f"{pr['recall']:.2f}"

    r = _rows(rt.render(rt.TABLES["bench-train-step"]))
    t = _results("train_step.json")
    assert r["2 (separate processes)"][0] == f"{t['loader_workers_2']['seconds_per_step']:.2f}"


def _dict_paths(obj, prefix=()):
    """Every key path of ``obj`` through objects (and the first item of lists of objects)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield (*prefix, k)
            yield from _dict_paths(v, (*prefix, k))
    elif isinstance(obj, list) and obj and isinstance(obj[0], dict):
        yield from _dict_paths(obj[0], (*prefix, 0))


@pytest.mark.parametrize(
    "name",
    [
        "eval-grabcut",
        "bench-samples",
        "bench-sampling",
        "bench-annotate",
        "bench-pipeline",
        "bench-model-step",
        "bench-train-step",
        "bench-train-curve",
        "bench-methods-cfr-taiz",
        "bench-methods-refcut",
        "bench-proposal-recall",
        "bench-evaluate",
    ],
)
def test_a_result_file_that_lost_any_key_never_renders_quietly(rt, name, tmp_path):
    # Delete every key (one at a time, at any depth) of every file the table reads: the table
    # either does not use it (same output) or stops with a message naming it; it never prints
    # something else.
    import copy

    table = rt.TABLES[name]
    srcs = rt.sources(table)
    for src in srcs:
        (tmp_path / src).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / src).write_text((ROOT / src).read_text())
    expected = rt.render(table, root=tmp_path)
    # one row per item of these objects: an item taken away is a row fewer, not an error
    collections = {
        (r.source, tuple(r.select.split(".")))
        for part in (table, *table.then)
        for r in part.rows
        if isinstance(r, rt.EachRow)
    }
    used = 0
    for src in srcs:
        original = json.loads((ROOT / src).read_text())
        for path in _dict_paths(original):
            if (src, path[:-1]) in collections:
                continue
            broken = copy.deepcopy(original)
            parent = broken
            for part in path[:-1]:
                parent = parent[part]
            del parent[path[-1]]
            (tmp_path / src).write_text(json.dumps(broken))
            try:
                out = rt.render(table, root=tmp_path)
            except SystemExit as exc:
                assert str(path[-1]) in str(exc) and src in str(exc), (path, str(exc))
                used += 1
                continue
            assert out == expected, (
                f"{src}: without {'.'.join(map(str, path))} the table changed quietly"
            )
        (tmp_path / src).write_text((ROOT / src).read_text())
    assert used > 0


def test_train_step_block_adds_the_ray_train_table_once_its_file_exists(rt, tmp_path):
    # bench_train.py ray writes benchmarks/results/train_ray.json (shape as in its bench_ray)
    table = rt.TABLES["bench-train-step"]
    step = ROOT / "benchmarks" / "results" / "train_step.json"
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "train_step.json").write_text(step.read_text())
    if not (ROOT / rt.TRAIN_RAY).is_file():
        without = rt.render(table, root=tmp_path)
        assert without == rt.render(table) and "Ray Train" not in without
    run = {"seconds_per_step": 2.0, "data_wait_fraction": 0.01, "wall_s": 60.0}
    ray = {
        "preset": "tiny",
        "store": "/tmp/horses.zarr",
        "steps": 25,
        "skip": 3,
        "machine": "x86_64",
        "cpus": 2,
        "torch_threads": 2,
        "load_avg_start": [4.0, 3.0, 2.0],
        "single": run,
        "ray_2_workers": {**run, "seconds_per_step": 1.5, "wall_s": 75.0},
        "single_again": run,
        "ray_over_single_step_time": 0.75,
        "ray_over_single_wall": 1.25,
        "load_avg_end": [5.0, 3.0, 2.0],
    }
    (tmp_path / rt.TRAIN_RAY).write_text(json.dumps(ray))
    md = rt.render(table, root=tmp_path)
    rows = _rows(md)
    assert rows["Ray Train, 2 workers"] == ["1.50", "1.0 %", "75"] and rows["one process"] == [
        "2.00",
        "1.0 %",
        "60",
    ]
    assert "Ray Train / one process: 0.75x the time per step, 1.25x the wall time" in md
    assert "bench_train.py ray --store /tmp/horses.zarr --steps 25 --skip 3" in md
    assert "`train_ray.json`: 4.0 at the start, 5.0 at the end on 2 CPUs" in md
    assert md.endswith(
        "from `benchmarks/results/train_step.json`, `benchmarks/results/train_ray.json`._"
    )
    del ray["ray_over_single_wall"]
    (tmp_path / rt.TRAIN_RAY).write_text(json.dumps(ray))
    with pytest.raises(SystemExit, match="ray_over_single_wall"):
        rt.render(table, root=tmp_path)
