"""Regenerate the README's result tables from the result files committed under benchmarks/results.

The README marks each generated block with a pair of HTML comments, which Markdown hides::

    <!-- BEGIN eval-grabcut -->
    (everything here is replaced by the table named "eval-grabcut")
    <!-- END eval-grabcut -->

Each table is declared once in :data:`TABLES` as columns (a header, a dotted path into a JSON
object, a format) and rows (a JSON file, optionally an object inside it, and the label of the
row), plus literal rows for published figures. The script reads only committed files, so a
number in the README cannot drift from the file it came from: rerun the benchmark, commit its
JSON, run this script, commit the README.

Lookups are strict: a key a table asks for that is not in its file stops the script with a
message naming the file, the path and the keys that are there (a JSON ``null`` prints as
``n/a``), so a benchmark whose output changed shape cannot put wrong numbers in the README.

Usage (from the project root)::

    python benchmarks/readme_tables.py            # rewrite every block found in README.md
    python benchmarks/readme_tables.py --check    # exit 1 if a block is out of date (CI)
    python benchmarks/readme_tables.py --print bench-samples   # print one block (with markers)
    python benchmarks/readme_tables.py --list     # tables, their sources, and README status

Adding a table for another benchmark JSON: append a :class:`Table` to :data:`TABLES` and put its
two markers where the table belongs in the README. Paths such as ``"results.0.images_per_s"``
index into lists by position (negative from the end) and into objects by key (a key that
contains dots, such as ``"0.5MP"``, is matched whole). Captions, notes, commands, row labels and
cells may be templates, ``"{single_process.samples} samples"``, filled from the table's (or the
row's) JSON object; a leading ``/`` reads from the top of the row's file, and a format after the
colon is one of :data:`FORMATS` or a Python format spec (``"{minutes:g}"``).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import string
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[1]
RESULTS = "benchmarks/results"
NETNS = "ip netns exec mis env RAY_USAGE_STATS_ENABLED=0 PATH=$PATH"
HORSE_STORE = ".venv/bin/mis preprocess ../shared/data/WeizmannHorse/images --out /tmp/horses.zarr --executor local --config offline"

Formatter = Callable[[Any], str]


def fail(message: str) -> NoReturn:
    raise SystemExit(f"readme_tables: {message}")


# --------------------------------------------------------------------------- formats
def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{v!r} is not a number")
    return float(v)


def fixed(digits: int) -> Formatter:
    """``1.2345 -> "1.23"`` for ``digits=2``; missing values print as ``n/a``."""

    def fmt(v: Any) -> str:
        return _missing(v) or f"{_number(v):.{digits}f}"

    return fmt


def sig(digits: int) -> Formatter:
    """Significant digits: ``0.03312 -> "0.033"``, ``0.8164 -> "0.82"`` for ``digits=2``."""

    def fmt(v: Any) -> str:
        if _missing(v):
            return _missing(v)
        x = _number(v)
        if x == 0:
            return "0"
        decimals = max(digits - 1 - math.floor(math.log10(abs(x))), 0)
        return f"{x:.{decimals}f}"

    return fmt


def integer(v: Any) -> str:
    if _missing(v):
        return _missing(v)
    x = _number(v)
    if x != int(x):
        raise TypeError(f"{v!r} is not a whole number")
    return str(int(x))


def text(v: Any) -> str:
    return _missing(v) or str(v)


def percent(digits: int) -> Formatter:
    """A fraction as a percentage: ``0.0391 -> "3.9 %"`` for ``digits=1``."""

    def fmt(v: Any) -> str:
        return _missing(v) or f"{100 * _number(v):.{digits}f} %"

    return fmt


def times(digits: int) -> Formatter:
    """A ratio: ``0.674 -> "0.67x"`` for ``digits=2``."""

    def fmt(v: Any) -> str:
        return _missing(v) or f"{_number(v):.{digits}f}x"

    return fmt


def ms(digits: int) -> Formatter:
    """Seconds shown as milliseconds, ``digits`` significant: ``0.0862 -> "86"``."""

    def fmt(v: Any) -> str:
        return _missing(v) or sig(digits)(_number(v) * 1000)

    return fmt


def ratio(digits: int) -> Formatter:
    """A ratio, ``digits`` significant digits (whole numbers kept): ``2.551 -> "2.55x"``,
    ``1475.4 -> "1475x"`` for ``digits=3``."""

    def fmt(v: Any) -> str:
        return _missing(v) or f"{sig(digits)(v)}x"

    return fmt


def value_range(digits: int) -> Formatter:
    """An object with ``min`` and ``max``: ``"0.15-0.31"``, or one number when they print alike."""

    def fmt(v: Any) -> str:
        if not isinstance(v, dict) or "min" not in v or "max" not in v:
            raise TypeError(f"{v!r} is not an object with 'min' and 'max'")
        lo, hi = fixed(digits)(v["min"]), fixed(digits)(v["max"])
        return lo if lo == hi else f"{lo}-{hi}"

    return fmt


def millions(v: Any) -> str:
    """``1277297 -> "1.3 M"``."""
    return _missing(v) or f"{sig(2)(_number(v) / 1e6)} M"


def load_1min(v: Any) -> str:
    """A load average: a number, or ``os.getloadavg()``'s (1, 5, 15 min) list, of which the first."""
    if isinstance(v, list):
        if not v:
            raise TypeError("empty load average list")
        v = v[0]
    return fixed(1)(v)


def yes_no(v: Any) -> str:
    if not isinstance(v, bool):
        raise TypeError(f"{v!r} is not true or false")
    return "yes" if v else "no"


def length(v: Any) -> str:
    if not isinstance(v, (list, dict)):
        raise TypeError(f"{v!r} has no length")
    return str(len(v))


def keys(v: Any) -> str:
    """The keys of an object (or the items of a list), comma-separated: ``"vit_test,vit_tiny"``."""
    if not isinstance(v, (list, dict)):
        raise TypeError(f"{v!r} is not an object or a list")
    return ",".join(str(k) for k in v)


def _missing(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else ""


FORMATS: dict[str, Formatter] = {
    **{f"f{d}": fixed(d) for d in range(4)},
    **{f"sig{d}": sig(d) for d in (2, 3)},
    **{f"pct{d}": percent(d) for d in (0, 1)},
    **{f"x{d}": times(d) for d in (1, 2)},
    "ratio3": ratio(3),
    "range2": value_range(2),
    **{f"ms{d}": ms(d) for d in (2, 3)},
    "int": integer,
    "text": text,
    "M": millions,
    "load": load_1min,
    "yesno": yes_no,
    "len": length,
    "keys": keys,
}


# --------------------------------------------------------------------------- lookups
_RAISE = object()


def _walk(obj: Any, path: str) -> tuple[Any, str | None]:
    """``(value, None)``, or ``(None, why)`` when ``path`` is not in ``obj``."""
    parts = path.split(".") if path else []
    cur, done, i = obj, [], 0
    while i < len(parts):
        where = ".".join(done) or "the top level"
        if isinstance(cur, dict):
            for j in range(len(parts), i, -1):  # longest key first: "0.5MP" is one key
                key = ".".join(parts[i:j])
                if key in cur:
                    break
            else:
                there = ", ".join(map(repr, cur)) or "none"
                if len(there) > 300:
                    there = there[:300] + ", ..."
                return None, f"no key {parts[i]!r} at {where} (keys there: {there})"
            cur, i = cur[key], j
            done.append(key)
        elif isinstance(cur, list):
            part = parts[i]
            if not re.fullmatch(r"-?\d+", part) or not -len(cur) <= int(part) < len(cur):
                return None, f"no item {part!r} in the list of {len(cur)} at {where}"
            cur, i = cur[int(part)], i + 1
            done.append(part)
        else:
            return None, f"{where} is {cur!r:.60}, not an object or a list"
    return cur, None


def get_path(obj: Any, path: str) -> Any:
    """``get_path({"noc": {"90": 8.1}}, "noc.90") -> 8.1``; list items by index; None if absent."""
    return _walk(obj, path)[0]


def lookup(obj: Any, path: str, where: str, default: Any = _RAISE) -> Any:
    """The value at ``path``; if it is absent, ``default`` or (without one) SystemExit naming
    ``where`` (the file), the path and what is there."""
    value, why = _walk(obj, path)
    if why is None:
        return value
    if default is not _RAISE:
        return default
    fail(f"{where}: {path!r} not found: {why}")


def load_json(source: str, root: Path = ROOT) -> Any:
    path = root / source
    if not path.is_file():
        fail(f"{source} does not exist (run the benchmark that writes it)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        fail(f"{source} is not valid JSON: {exc}")


def show(value: Any, fmt: Formatter | str, where: str, what: str) -> str:
    """``value`` through ``fmt`` (a formatter, a :data:`FORMATS` name or a Python format spec)."""
    if isinstance(fmt, str):
        fmt = FORMATS.get(fmt, fmt)
    try:
        if callable(fmt):
            return fmt(value)
        return _missing(value) or format(value, fmt)
    except (TypeError, ValueError) as exc:
        fail(f"{where}: {what} = {value!r:.60} cannot be shown ({exc})")


class _Fill(string.Formatter):
    """``str.format`` whose fields are strict JSON paths (see the module docstring)."""

    def __init__(self, obj: Any, top: Any, where: str, extra: Mapping[str, Any]):
        super().__init__()
        self.obj, self.top, self.where, self.extra = obj, top, where, extra

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        if field_name in self.extra:
            value = self.extra[field_name]
        elif field_name.startswith("/"):
            value = lookup(self.top, field_name[1:], self.where)
        else:
            value = lookup(self.obj, field_name, self.where)
        return (field_name, value), field_name

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        name, v = value
        return name, super().convert_field(v, conversion)

    def format_field(self, value: Any, format_spec: str) -> str:
        name, v = value
        return show(v, format_spec or text, self.where, repr(name))


def fill(template: str, obj: Any, where: str, top: Any = None, **extra: Any) -> str:
    """``template`` with its ``{path:format}`` fields read from ``obj`` (``/path`` from ``top``)."""
    return _Fill(obj, obj if top is None else top, where, extra).format(template)


# --------------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class Ratio:
    """A cell computed as ``num / den`` of two paths (n/a when ``den`` is 0)."""

    num: str
    den: str


Cell = str | Ratio | None  # a path, a template (contains "{"), a ratio, or an empty cell


@dataclass(frozen=True)
class Column:
    """One table column: ``header``, the dotted ``path`` of its value in a row's JSON object (or
    a template, or a :class:`Ratio` of two paths), and how to print it. A missing key stops the
    script unless ``optional``."""

    header: str
    path: str | Ratio
    fmt: Formatter = text
    optional: bool = False


@dataclass(frozen=True)
class Row:
    """A row read from ``source`` (a JSON file relative to the project root); ``select`` is the
    dotted path of the row's object inside the file ("" = the whole file). ``bold`` names the
    headers of cells printed in bold. ``cells``, if given, replaces the columns' paths for this
    row (one per column; None = an empty cell). A label with ``{...}`` is a template."""

    label: str
    source: str
    select: str = ""
    bold: tuple[str, ...] = ()
    cells: tuple[Cell, ...] | None = None


@dataclass(frozen=True)
class EachRow:
    """One row per item of the list or object at ``select`` in ``source``. ``label`` is a template
    on the item (``{_key}`` is the item's key or index); ``labels`` renames labels it produces
    (others are printed as they are)."""

    source: str
    select: str
    label: str = "{_key}"
    labels: Mapping[str, str] = field(default_factory=dict)
    bold: tuple[str, ...] = ()


@dataclass(frozen=True)
class Literal:
    """A row typed in by hand (published figures), one string per column after the label;
    missing trailing cells are left empty. ``citation`` says where the numbers come from."""

    label: str
    cells: tuple[str, ...]
    citation: str


@dataclass(frozen=True)
class Table:
    """A generated README block: a Markdown table and lines under it (provenance).

    ``source`` is the result file the ``caption`` (a line above the table), the ``notes`` and the
    ``command`` (lines that reproduce the file) are filled from, and where the host's load
    average is read: ``load`` pairs (when, path), ``cpus`` a path. ``then`` are further tables of
    the same block (an ``optional`` one only when its source exists); their commands and load
    averages are listed at the end of the block."""

    name: str
    label_header: str
    columns: tuple[Column, ...]
    rows: tuple[Row | EachRow | Literal, ...]
    notes: tuple[str, ...] = ()  # paragraphs under the table
    footer: Callable[[Table, list[dict[str, Any]]], list[str]] | None = field(
        default=None, compare=False
    )
    caption: str = ""
    source: str = ""
    command: str = ""
    load: tuple[tuple[str, str], ...] = ()
    cpus: str = ""
    then: tuple[Table, ...] = ()
    optional: bool = False


def _cell(spec: Cell, col: Column, obj: Any, top: Any, where: str) -> str:
    if spec is None:
        return ""
    if isinstance(spec, Ratio):
        num, den = (_number_at(obj, p, where) for p in (spec.num, spec.den))
        return show(None if den == 0 else num / den, col.fmt, where, f"{spec.num} / {spec.den}")
    if "{" in spec:
        return fill(spec, obj, where, top)
    value = lookup(obj, spec, where, None if col.optional else _RAISE)
    return show(value, col.fmt, where, repr(spec))


def _number_at(obj: Any, path: str, where: str) -> float:
    value = lookup(obj, path, where)
    try:
        return _number(value)
    except TypeError as exc:
        fail(f"{where}: {path!r}: {exc}")


def _rows(table: Table, root: Path) -> list[tuple[Row | Literal, Any, Any, str]]:
    """``(row, its object, its file's object, its label)``, each EachRow expanded."""
    out: list[tuple[Row | Literal, Any, Any, str]] = []
    for row in table.rows:
        if isinstance(row, Literal):
            out.append((row, None, None, row.label))
            continue
        top = load_json(row.source, root)
        if isinstance(row, Row):
            obj = lookup(top, row.select, row.source)
            label = fill(row.label, obj, row.source, top) if "{" in row.label else row.label
            out.append((row, obj, top, label))
            continue
        items = lookup(top, row.select, row.source)
        if isinstance(items, dict):
            pairs = list(items.items())
        elif isinstance(items, list):
            pairs = list(enumerate(items))
        else:
            fail(f"{row.source}: {row.select!r} is {items!r:.60}, not a list or an object of rows")
        if not pairs:
            fail(f"{row.source}: {row.select!r} is empty (no rows)")
        for key, item in pairs:
            where = f"{row.source} ({row.select}.{key})"
            raw = fill(row.label, item, where, top, _key=key)
            select = f"{row.select}.{key}" if row.select else str(key)
            label = row.labels.get(raw, raw)
            out.append((Row(label, row.source, select, row.bold), item, top, label))
    return out


def _part(table: Table, root: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The caption, table and notes of one table, and the objects of its rows."""
    data = load_json(table.source, root) if table.source else None
    out: list[str] = []
    if table.caption:
        out += [fill(table.caption, data, table.source), ""]
    headers = [table.label_header, *(c.header for c in table.columns)]
    out += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    objects: list[dict[str, Any]] = []
    for row, obj, top, label in _rows(table, root):
        if isinstance(row, Literal):
            cells = list(row.cells) + [""] * (len(table.columns) - len(row.cells))
            out.append("| " + " | ".join([label, *cells]) + " |")
            continue
        specs = row.cells if row.cells is not None else tuple(c.path for c in table.columns)
        if len(specs) != len(table.columns):
            fail(
                f"table {table.name!r}, row {row.label!r}: {len(specs)} cells for {len(table.columns)} columns"
            )
        objects.append(obj)
        where = f"{row.source} ({row.select or 'top level'})"
        cells = []
        for col, spec in zip(table.columns, specs, strict=True):
            cell = _cell(spec, col, obj, top, where)
            cells.append(f"**{cell}**" if col.header in row.bold and cell else cell)
        out.append("| " + " | ".join([label, *cells]) + " |")
    cites = [
        f"{r.label.removeprefix('published ')}: {r.citation}"
        for r in table.rows
        if isinstance(r, Literal)
    ]
    paragraphs = [fill(n, data, table.source) if table.source else n for n in table.notes]
    if cites:
        paragraphs.append(
            "Published rows (typed in, not generated; NoC only, no NoF published): "
            + "; ".join(cites)
            + "."
        )
    for par in paragraphs:
        out += ["", par]
    if table.footer:
        out += ["", *table.footer(table, objects)]
    return out, objects


def _load_phrase(table: Table, root: Path) -> str:
    data = load_json(table.source, root)
    values = [
        (when, show(lookup(data, path, table.source), load_1min, table.source, repr(path)))
        for when, path in table.load
    ]
    said = ", ".join(f"{v} {when}".rstrip() for when, v in values)
    cpus = (
        f" on {show(lookup(data, table.cpus, table.source), integer, table.source, repr(table.cpus))} CPUs"
        if table.cpus
        else ""
    )
    return f"`{Path(table.source).name}`: {said}{cpus}"


def sources(table: Table, root: Path = ROOT) -> list[str]:
    """The files a block reads (an optional part only if its file exists), in order."""
    out: list[str] = []
    for part in _parts(table, root):
        for src in (part.source, *(r.source for r in part.rows if not isinstance(r, Literal))):
            if src and src not in out:
                out.append(src)
    return out


def _parts(table: Table, root: Path) -> list[Table]:
    return [table, *(t for t in table.then if not (t.optional and not (root / t.source).is_file()))]


def render(table: Table, root: Path = ROOT) -> str:
    """The Markdown of ``table`` (without the markers)."""
    parts = _parts(table, root)
    out: list[str] = []
    for part in parts:
        lines, _ = _part(part, root)
        out += ([""] if out else []) + lines
    commands = [
        line.rstrip()
        for p in parts
        if p.command
        for line in fill(p.command, load_json(p.source, root), p.source).splitlines()
    ]
    if commands:
        out += ["", "Reproduce (from the project root):", "", "```", *commands, "```"]
    loads = [_load_phrase(p, root) for p in parts if p.load]
    if loads:
        out += [
            "",
            "Host load average (1 min) while measuring, "
            + "; ".join(loads)
            + " (a shared machine: compare the figures of one run with each other).",
        ]
    if table.source:
        out += [
            "",
            "_Generated by `python benchmarks/readme_tables.py` from "
            + ", ".join(f"`{s}`" for s in sources(table, root))
            + "._",
        ]
    return "\n".join(out)


# --------------------------------------------------------------------------- evaluation tables
def _eval_footer(table: Table, summaries: list[dict[str, Any]]) -> list[str]:
    """How the evaluation rows were made: the command of each, from its summary.json."""
    sources = [r.source for r in table.rows if isinstance(r, Row)]
    lines = ["Reproduce (each writes the folder its row is read from):", "", "```"]
    for src, s in zip(sources, summaries, strict=True):
        out = str(Path(src).parent)
        lines.append(
            fill(
                "mis evaluate --dataset {dataset} --data {data} --predictor {predictor} --workers {workers} "
                "--out {o}",
                s,
                src,
                o=out,
            )
        )
    lines.append("```")
    versions = sorted(
        {fill("{mis_pipeline_version}", s, src) for src, s in zip(sources, summaries, strict=True)}
    )
    lines += [
        "",
        f"_Generated by `python benchmarks/readme_tables.py` from "
        f"{', '.join(f'`{src}`' for src in sources)} (mis-pipeline {', '.join(versions)})._",
    ]
    return lines


EVAL_COLUMNS = (
    Column("NoC@85", "noc.85", fixed(2)),
    Column("NoC@90", "noc.90", fixed(2)),
    Column("NoF@90 (NoC = 20, as published)", "nof_noc_eq_max_clicks.90", integer),
    Column("NoF@90 (never reached)", "nof_never_reached.90", integer),
    Column("IoU@1", "miou_at.0", fixed(3)),
    Column("s/click", "seconds_per_click", sig(2)),
)


EVAL_NOTES = (
    "NoF@90 is counted both ways: samples whose NoC@90 equals the 20-click budget (the ≥20 "
    "column of RITM's and SimpleClick's tables, which also counts a target first reached on the "
    "20th click), and samples that never reach IoU 0.90. s/click is the predictor's time per "
    "click, per-image setup included, on the machine that wrote the file (a shared 2-core VM "
    "here, so only the ratios mean much).",
)


def eval_table(
    name: str,
    dataset: str,
    rows: Sequence[tuple[str, str, tuple[str, ...]]],
    literals: Sequence[Literal] = (),
    notes: Sequence[str] = EVAL_NOTES,
) -> Table:
    """A protocol table over ``benchmarks/results/eval_<dataset>_<predictor>/summary.json``."""
    return Table(
        name=name,
        label_header="predictor",
        columns=EVAL_COLUMNS,
        rows=(
            *literals,
            *(
                Row(label, f"{RESULTS}/eval_{dataset}_{pred}/summary.json", bold=bold)
                for pred, label, bold in rows
            ),
        ),
        notes=tuple(notes),
        footer=_eval_footer,
    )


# --------------------------------------------------------------------------- benchmark tables
def _src(name: str) -> str:
    return f"{RESULTS}/{name}"


SAMPLES = _src("samples.json")
SAMPLE_COMPONENTS = (
    ("decode", "decode"),
    ("tree", "tree"),
    ("proposal", "proposal"),
    ("mask", "mask"),
    ("augment", "augment"),
    ("clicks", "clicks"),
    ("disk maps", "disk_maps"),
    ("other", "other"),
)

BENCH_SAMPLES = Table(
    name="bench-samples",
    source=SAMPLES,
    caption="Cost of {what}, one process and one thread, in *bare decodes* (a PIL open + convert of "
    "the same image files, timed in interleaved blocks in the same process: "
    "{single_process.ms_per_bare_decode:f2} ms here), per sample and per component; goal: at "
    "most {goal_bare_decodes_per_sample:g} bare decodes per sample.",
    label_header="sample path",
    columns=(
        Column("bare decodes / sample", "bare_decodes_per_sample", fixed(2)),
        Column("ms / sample", "ms_per_sample", fixed(1)),
        Column("samples/s per core", "samples_per_s_per_core", fixed(0)),
        *(
            Column(header, f"component_in_bare_decodes.{key}", fixed(2))
            for header, key in SAMPLE_COMPONENTS
        ),
    ),
    rows=(
        Row(
            "`data.decoder=pil` (default)",
            SAMPLES,
            "single_process",
            bold=("bare decodes / sample",),
        ),
        Row("`data.decoder=cv2`", SAMPLES, "single_process_cv2_decoder"),
        Row(
            "public isegm code MIS trains with (reference figure)",
            SAMPLES,
            "reference_isegm",
            cells=(
                "bare_decodes_per_sample",
                "ms_per_sample",
                "samples_per_s_per_core",
                *(None for _ in SAMPLE_COMPONENTS),
            ),
        ),
    ),
    command=f"{NETNS} \\\n    .venv/bin/python benchmarks/bench_samples.py --samples {{single_process.samples}}",
    load=(
        ("at the start", "host.load_average_at_start"),
        ("at the end", "host.load_average_at_end"),
    ),
    cpus="host.cpus",
    then=(
        Table(
            name="",
            source=SAMPLES,
            caption="Two processes against one process measured just before and after them in the same "
            "run (collated torch batches, no disk maps). On a shared host the yardstick is the last "
            "column, what a pure CPU loop gained from a second process at that moment (2.0x on two "
            "idle cores):",
            label_header="parallel front end",
            columns=(
                Column("samples/s", "samples_per_s", fixed(0)),
                Column("one process, samples/s", "single_process_samples_per_s", fixed(0)),
                Column("vs one process", "speedup_vs_single_process", times(2)),
                Column("CPU loop, 2 processes", "cpu_scaling_2_processes", times(2)),
            ),
            rows=(
                Row(
                    "`DataLoader`, {workers} workers, batch {batch_size}",
                    SAMPLES,
                    "dataloader_2_workers",
                ),
                Row("Ray Data, {cpus} CPUs, batch {batch_size}", SAMPLES, "ray_data_2_cpus"),
            ),
        ),
    ),
)

SAMPLING = _src("sampling.json")
BENCH_SAMPLING = Table(
    name="bench-sampling",
    source=SAMPLING,
    caption="Per-call cost of proposal and click sampling at a 448 x 448 crop on the trees of "
    "{images:len} Weizmann horses (`colour_texture` features, Ward merge), one torch thread; "
    "each figure is the minimum over repeats of the mean time of a block of calls:",
    label_header="call",
    columns=(
        Column("µs per call", "", sig(3)),
        Column("plain reference, µs", "", sig(3)),
        Column("speed-up", "", ratio(3)),
    ),
    rows=tuple(
        Row(label, SAMPLING, "results", bold=bold, cells=cells)
        for label, cells, bold in (
            ("`sample_node` (MIS Algorithm 2 + area filter)", ("sample_node_us", None, None), ()),
            ("`node_mask` at 448 x 448", ("node_mask_448_us", None, None), ()),
            (
                "`sample_clicks` (positive and negative clicks)",
                (
                    "sample_clicks_us",
                    "sample_clicks_reference_us",
                    "sample_clicks_speedup_vs_reference",
                ),
                (),
            ),
            ("`click_maps` (numpy, one sample)", ("click_maps_numpy_us", None, None), ()),
            (
                "`click_maps_torch` (CPU, batch of 32, per sample)",
                ("click_maps_torch_batch32_per_sample_us", None, None),
                (),
            ),
            (
                "`next_clicks` (chamfer distance, per sample)",
                (
                    "next_clicks_chamfer_per_sample_us",
                    "next_clicks_reference_per_sample_us",
                    "next_clicks_speedup_vs_reference",
                ),
                (),
            ),
            (
                "sampler per sample (`sample_node` + `node_mask` at image size + `sample_clicks` + `click_maps`)",
                ("sampler_total_us", None, None),
                ("µs per call",),
            ),
            (
                "bare decode of the same files (PIL open + convert)",
                ("bare_decode_us", None, None),
                (),
            ),
        )
    ),
    notes=(
        "The sampler costs {results.sampler_total_in_bare_decodes:f3} bare decodes per training "
        "sample. Most of `click_maps_torch` is allocation: `torch.zeros` of the same maps takes "
        "{results.zeros_batch32_per_sample_us:sig3} µs per sample.",
    ),
    command=".venv/bin/python benchmarks/bench_sampling.py --images {images:len}",
    load=(("at the end", "machine.load_average_1min_at_end"),),
    cpus="machine.cpus",
)

ANNOTATE = _src("annotate.json")
BENCH_ANNOTATE = Table(
    name="bench-annotate",
    source=ANNOTATE,
    caption="Time per click of `mis annotate` with the tree predictor (default settings), the protocol's "
    "first {clicks_per_image} clicks on {images:len} GrabCut images, in ms: *server* = "
    "`predictor.predict` (the `server_ms` of each response), *request* = the whole API request "
    "in process, *click -> overlay* = in headless Chromium from the mouse-down event to the "
    "frame after the overlay was drawn (goal: under 150 ms at 0.5 MP on 2 cores):",
    label_header="images",
    columns=(
        Column("megapixels", "megapixels", value_range(2)),
        Column("server, median", "predict_ms.median", sig(2)),
        Column("server, p90", "predict_ms.p90", sig(2)),
        Column("request, median", "request_ms.median", sig(2)),
        Column("request, p90", "request_ms.p90", sig(2)),
        Column("click -> overlay, median", "browser_ms.median", sig(2)),
        Column("click -> overlay, p90", "browser_ms.p90", sig(2)),
    ),
    rows=(
        Row("GrabCut as published", ANNOTATE, "results.grabcut"),
        Row(
            "upscaled to 0.5 MP (bicubic)",
            ANNOTATE,
            "results.0.5MP",
            bold=("click -> overlay, median",),
        ),
    ),
    command="{command}",
    load=(("before", "machine.loadavg_before"), ("after", "machine.loadavg_after")),
    cpus="machine.cpus",
)

PIPELINE = _src("pipeline.json")
BENCH_PIPELINE = Table(
    name="bench-pipeline",
    source=PIPELINE,
    caption="`mis preprocess` (`{backbone}` features, Ward trees, tree store) with the Ray executor (Ray "
    "{ray_version}) against the in-process executor, seconds of wall time. *Cold* = a fresh process "
    "with no Ray running, as a new user runs it (medians of alternating runs). *Ray executor* = its "
    "defaults: the driver computes from the start and starts a local Ray only when its estimate of "
    "the remaining work exceeds `preprocess.ray_min_local_s` ({ray_min_local_s} s on these {cpus} "
    "CPUs); *images driver / Ray* = who computed them. *Ray only* = `preprocess.driver_works=false`: "
    "Ray started at once and computing every image (its start-up + the rest of the run). *Warm* = "
    "after a 64-image warm-up in the same process (for Ray: an instance already up). Ratios are "
    "Ray / local (below 1: Ray is faster):",
    label_header="corpus",
    columns=(
        Column("images", "images", integer),
        Column("local", "cold.local.run_s", fixed(1)),
        Column("Ray executor", "cold.ray.run_s", fixed(1)),
        Column("Ray / local, cold", "cold.ratio_ray_local", times(2)),
        Column("images driver / Ray", "{cold.ray.driver_images} / {cold.ray.ray_images}"),
        Column("Ray only: start-up + run", "{cold.ray_only.ray_start_s:.1f} + {cold.ray_only.run_without_start_s:.1f}"),
        Column("Ray only / local", "cold.ratio_ray_only_local", times(2)),
        Column("without start-up", "cold.ratio_ray_only_local_without_start", times(2)),
        Column("warm", "warm.ratio_ray_local", times(2)),
        Column("identical trees", "identical_trees", yes_no),
    ),
    rows=(
        EachRow(
            PIPELINE,
            "corpora",
            label="{corpus}",
            labels={
                "horses_40": "first 40 Weizmann horses",
                "horses_327": "all 327 Weizmann horses",
                "synthetic_2000": "synthetic blobs and noise",
            },
            bold=("Ray / local, cold",),
        ),
    ),
    command="{command}",
    load=(("before", "load_average_before"), ("after", "load_average_after")),
    cpus="cpus",
)

MODEL_STEP = _src("model_step.json")
BENCH_MODEL_STEP = Table(
    name="bench-model-step",
    source=MODEL_STEP,
    caption="The SimpleClick model on CPU, batch {batch} at {size} x {size}, {torch_threads} torch "
    "thread(s), random weights: a training step (forward + backward), the same with the MIS "
    "loss (BCE + the paper's 5 x 5 smoothness term) or the public code's 3 x 3 variant, and an "
    "inference forward; ms as best wall time / best process CPU time of N runs after a warm-up "
    "(on a busy host the CPU time is the steadier figure):",
    label_header="arch",
    columns=(
        Column("params", "params", millions),
        Column(
            "fwd + bwd",
            "{train_forward_backward.best_s:ms2} / {train_forward_backward.cpu_best_s:ms2}",
        ),
        Column(
            "+ MIS loss",
            "{train_step_with_mis_loss.best_s:ms2} / {train_step_with_mis_loss.cpu_best_s:ms2}",
        ),
        Column(
            "+ reference loss",
            "{train_step_with_reference_loss.best_s:ms2} / {train_step_with_reference_loss.cpu_best_s:ms2}",
        ),
        Column("inference", "{inference_forward.best_s:ms2} / {inference_forward.cpu_best_s:ms2}"),
    ),
    rows=(EachRow(MODEL_STEP, "archs", label="`{_key}`"),),
    command=".venv/bin/python benchmarks/bench_model.py --archs {archs:keys} --batch {batch} --size {size} "
    "--threads {torch_threads}",
    load=(("at the start", "load_average_at_start"), ("at the end", "load_average_at_end")),
)

TRAIN_STEP = _src("train_step.json")
TRAIN_RAY = _src("train_ray.json")
BENCH_TRAIN_STEP = Table(
    name="bench-train-step",
    source=TRAIN_STEP,
    caption="MIS training of the `{preset}` preset (vit_tiny, 128 px crops, batch 8) on CPU from the "
    "Weizmann horse store, {torch_threads} torch threads: median seconds per optimizer step "
    "and mean share of it spent waiting for data over {steps} steps, the first {skip} left "
    "out as warm-up:",
    label_header="DataLoader workers",
    columns=(
        Column("s / step", "seconds_per_step", fixed(2)),
        Column("samples/s", "samples_per_s", fixed(2)),
        Column("waiting for data", "data_wait_fraction", percent(1)),
    ),
    rows=(
        Row("2 (separate processes)", TRAIN_STEP, "loader_workers_2", bold=("waiting for data",)),
        Row("0 (samples made in the training process)", TRAIN_STEP, "loader_workers_0"),
    ),
    command=f"{HORSE_STORE}\n.venv/bin/python benchmarks/bench_train.py step --store /tmp/horses.zarr "
    "--steps {steps} --skip {skip}",
    load=(("at the start", "load_avg_start"), ("at the end", "load_avg_end")),
    cpus="cpus",
    then=(
        Table(
            name="",
            source=TRAIN_RAY,
            optional=True,
            caption="The same training as one process and as Ray Train with 2 CPU workers (the batch "
            "split between them, each reading its own Ray Data stream), back to back:",
            label_header="run",
            columns=(
                Column("s / step", "seconds_per_step", fixed(2)),
                Column("waiting for data", "data_wait_fraction", percent(1)),
                Column("wall s (with start-up)", "wall_s", fixed(0)),
            ),
            rows=(
                Row("one process", TRAIN_RAY, "single"),
                Row("Ray Train, 2 workers", TRAIN_RAY, "ray_2_workers"),
                Row("one process, again", TRAIN_RAY, "single_again"),
            ),
            notes=(
                "Ray Train / one process: {ray_over_single_step_time:x2} the time per step, "
                "{ray_over_single_wall:x2} the wall time of the whole command.",
            ),
            command=f"{NETNS} \\\n    .venv/bin/python benchmarks/bench_train.py ray --store /tmp/horses.zarr "
            "--steps {steps} --skip {skip}",
            load=(("at the start", "load_avg_start"), ("at the end", "load_avg_end")),
            cpus="cpus",
        ),
    ),
)

TRAIN_CURVE = _src("train_curve.json")
TREE_SUMMARY = _src("eval_grabcut_tree/summary.json")
BENCH_TRAIN_CURVE = Table(
    name="bench-train-curve",
    source=TRAIN_CURVE,
    caption="The `{preset}` preset trained with MIS for {minutes:g} minutes on CPU ({cpus} CPUs, "
    "{torch_threads} torch threads) on the trees of the Weizmann horses: {steps_done} steps, "
    "{samples_seen} samples, training loss {train_loss_first:f3} -> {train_loss_last:f3}; "
    "evaluated on GrabCut ({trained.num_samples} images, 20 clicks, SimpleClick's zoom-in and "
    "flip) against the same initial weights untrained, the training-free tree predictor and "
    "the published MIS model:",
    label_header="predictor",
    columns=(
        Column("NoC@85", "noc85", fixed(2)),
        Column("NoC@90", "noc90", fixed(2)),
        Column("NoF@90 (never reached)", "nof90", integer),
        Column("mIoU@1", "miou_at_1", fixed(3)),
        Column("mIoU@5", "miou_at_5", fixed(3)),
        Column("mIoU@20", "miou_at_20", fixed(3)),
    ),
    rows=(
        Row(
            "`{/preset}` trained {/minutes:g} min ({/steps_done} steps)",
            TRAIN_CURVE,
            "trained",
            bold=("NoC@85", "NoC@90"),
        ),
        Row("`{/preset}` untrained", TRAIN_CURVE, "untrained"),
        Row(
            "`tree` predictor (colour_texture, no training)",
            TREE_SUMMARY,
            cells=(
                "noc.85",
                "noc.90",
                "nof_never_reached.90",
                "miou_at.0",
                "miou_at.4",
                "miou_at.19",
            ),
        ),
        Row(
            "published MIS (ViT-B/16, GPUs)",
            TRAIN_CURVE,
            "published_mis_vit_b",
            cells=("noc85", "noc90", None, None, None, None),
        ),
    ),
    notes=(
        "The tree row is `{tree_predictor.source}`; the published row is {published_mis_vit_b.note} "
        "(NoC only).",
    ),
    command=f"{HORSE_STORE}\n.venv/bin/python benchmarks/bench_train.py curve --store /tmp/horses.zarr "
    "--minutes {minutes:g} --run /tmp/lc/run",
    load=(("at the start", "load_avg_start"),),
    cpus="cpus",
)

METHOD_COLUMNS = (
    Column("NoC@85", "noc.85", fixed(2)),
    Column("NoC@90", "noc.90", fixed(2)),
    Column("NoF@90 (never reached)", "nof_never_reached.90", integer),
    Column("mIoU@1", "miou_at.0", fixed(3)),
    Column("mIoU, last click", "miou_at.-1", fixed(3)),
)

CFR = _src("methods_cfr_taiz.json")
BENCH_METHODS_CFR_TAIZ = Table(
    name="bench-methods-cfr-taiz",
    source=CFR,
    caption="{what}: the first {samples} GrabCut images, {max_clicks} clicks (NoC is {max_clicks} when a "
    "target is never reached), CPU, one evaluation worker; s/click is the predictor's median "
    "time per click over {repeats} turns, forwards/click counts network evaluations:",
    label_header="setting",
    columns=(
        *METHOD_COLUMNS,
        Column("forwards / click", "forwards_per_click", fixed(2)),
        Column("s / click", "seconds_per_click_predict", sig(2)),
        Column("time vs plain", "time_ratio_to_plain", times(1)),
    ),
    rows=(
        EachRow(
            CFR,
            "results",
            label="{setting}",
            labels={
                "plain": "plain (one forward per click)",
                "cfr-2": "CFR-2",
                "a-cfr-4": "A-CFR-4 (adaptive)",
                "taiz": "TAIZ (zoom-in)",
            },
        ),
    ),
    command="python benchmarks/bench_methods.py cfr --checkpoint {checkpoint} --data ../shared/data/GrabCut \\\n"
    "    --limit {samples} --max-clicks {max_clicks} --repeats {repeats} "
    "--out benchmarks/results/methods_cfr_taiz.json",
)

REFCUT = _src("methods_refcut.json")
BENCH_METHODS_REFCUT = Table(
    name="bench-methods-refcut",
    source=REFCUT,
    caption="{what}: {steps} steps of batch {batch_size} per pair source ({train_seconds.supervised:f0} s "
    "with supervised part pairs, {train_seconds.mined:f0} s with pairs mined from the trees, no "
    "part labels), then {eval_samples} held-out part combinations, {max_clicks} clicks, with "
    "references (`--reference auto`) and without:",
    label_header="pairs, references",
    columns=(
        Column("NoC@85", "noc.85", fixed(2)),
        Column("NoC@90", "noc.90", fixed(2)),
        Column("NoF@85", "nof_never_reached.85", integer),
        Column("NoF@90", "nof_never_reached.90", integer),
        Column("mIoU@1", "miou_at.0", fixed(3)),
        Column("mIoU, last click", "miou_at.-1", fixed(3)),
        Column("s / click", "seconds_per_click_predict", sig(2)),
    ),
    rows=(
        EachRow(
            REFCUT,
            "results",
            label="{setting}",
            labels={
                "supervised/auto": "supervised, with references",
                "supervised/none": "supervised, without",
                "mined/auto": "unsupervised (mined), with references",
                "mined/none": "unsupervised (mined), without",
            },
        ),
    ),
    notes=("NoF counts the samples that never reach the IoU within the {max_clicks} clicks.",),
    command="python benchmarks/bench_methods.py refcut --parts-train {parts_train} --parts-eval {parts_eval} \\\n"
    "    --store {store} --steps {steps} --batch {batch_size} --limit {eval_samples} "
    "--max-clicks {max_clicks} --out benchmarks/results/methods_refcut.json",
)

RECALL = _src("proposal_recall.json")
BENCH_PROPOSAL_RECALL = Table(
    name="bench-proposal-recall",
    source=RECALL,
    caption="Proposal recall: the {what} ({objects} GrabCut objects, {proposals_per_image} proposals "
    "per image, `{backbone}` trees, seed {seed}):",
    label_header="sampler",
    columns=(
        Column("recall", "recall", fixed(2)),
        Column("best IoU, median", "best_iou_median", fixed(3)),
        Column("distinct nodes drawn, mean", "distinct_nodes_mean", fixed(1)),
    ),
    rows=(
        Row(
            "`{sampler.sampler}` (default: alpha {sampler.alpha:g}, area filter {sampler.min_area:pct0})",
            RECALL,
            bold=("recall",),
        ),
        EachRow(RECALL, "other_samplers", label="`{_key}`"),
    ),
    notes=(
        "Recall: the share of objects with a proposal at IoU >= {iou_threshold:g}; best IoU: the "
        "best of an object's proposals (mean {best_iou_mean:f3} with the default sampler).",
    ),
    command=".venv/bin/python benchmarks/bench_proposal_recall.py --n {proposals_per_image} --seed {seed}",
)

BENCH_EVAL = _src("bench_evaluate.json")
BENCH_EVALUATE = Table(
    name="bench-evaluate",
    source=BENCH_EVAL,
    caption="The evaluation machinery on {images} GrabCut images, in ms (best of {repeats}), each fast "
    "path against its plain reference where it has one, measured in the same process:",
    label_header="step",
    columns=(
        Column("ms", "", sig(3)),
        Column("reference, ms", "", sig(3)),
        Column("speed-up", "", ratio(3)),
    ),
    rows=tuple(
        Row(label, BENCH_EVAL, bold=bold, cells=cells)
        for label, cells, bold in (
            (
                "clicker distance transform per map (exact integer kernel vs scipy)",
                (
                    "clicker_edt_ms_per_map.exact_kernel",
                    "clicker_edt_ms_per_map.scipy_reference",
                    Ratio(
                        "clicker_edt_ms_per_map.scipy_reference",
                        "clicker_edt_ms_per_map.exact_kernel",
                    ),
                ),
                (),
            ),
            (
                "OpenCV float32 transform per map (RITM's call, not exact)",
                ("clicker_edt_ms_per_map.opencv_float32_ritm", None, None),
                (),
            ),
            (
                "tree MRF ({tree_mrf.leaves} leaves; kernel vs plain Python)",
                (
                    "tree_mrf.kernel_ms",
                    "tree_mrf.reference_ms",
                    Ratio("tree_mrf.reference_ms", "tree_mrf.kernel_ms"),
                ),
                (),
            ),
            (
                "tree predictor, setup per image (features + Ward tree)",
                ("tree_predictor.setup_ms_per_image", None, None),
                (),
            ),
            (
                "tree predictor, per click (MRF + guided filter)",
                ("tree_predictor.ms_per_click", None, None),
                (),
            ),
            (
                "tree predictor, per click with the setup spread over 20 clicks (the protocol's s/click)",
                ("{tree_predictor.protocol_seconds_per_click_20:ms3}", None, None),
                (),
            ),
        )
    ),
    command=".venv/bin/python benchmarks/bench_evaluate.py --images {images} --repeats {repeats}",
    load=(("", "load_average_1min"),),
)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        eval_table(
            "eval-grabcut",
            "grabcut",
            rows=(
                ("graphcut", "`graphcut` (OpenCV GrabCut seeded from the clicks)", ()),
                ("tree", "`tree` (colour_texture, no training, no GPU)", ("NoC@85", "NoC@90")),
                ("oracle", "`oracle` (the single best tree node, colour_texture)", ()),
            ),
            literals=(
                Literal(
                    "published GraphCut / Random Walk / GSC",
                    ("7.98 / 11.36 / 7.10", "10.00 / 13.77 / 9.12"),
                    "the MIS paper's Table 1 (non-deep-learning methods)",
                ),
                Literal(
                    "published MIS (ViT-B, trained on unlabeled SBD images)",
                    ("1.94", "2.32"),
                    "the MIS paper's Table 1 (Li et al., ICCV 2023)",
                ),
            ),
            notes=(
                *EVAL_NOTES,
                "The tree predictor's defaults (evaluate.tree) were chosen on these 50 GrabCut "
                "images; Berkeley was never used to tune them.",
            ),
        ),
        BENCH_SAMPLES,
        BENCH_SAMPLING,
        BENCH_ANNOTATE,
        BENCH_PIPELINE,
        BENCH_MODEL_STEP,
        BENCH_TRAIN_STEP,
        BENCH_TRAIN_CURVE,
        BENCH_METHODS_CFR_TAIZ,
        BENCH_METHODS_REFCUT,
        BENCH_PROPOSAL_RECALL,
        BENCH_EVALUATE,
    )
}


# --------------------------------------------------------------------------- README blocks
_BLOCK = re.compile(
    r"(?P<begin><!-- BEGIN (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(?P<end><!-- END (?P=name) -->)",
    re.DOTALL,
)


def block(name: str, root: Path = ROOT) -> str:
    """The generated block of table ``name``, markers included."""
    return f"<!-- BEGIN {name} -->\n{render(TABLES[name], root)}\n<!-- END {name} -->"


def rewrite(readme_text: str, root: Path = ROOT) -> tuple[str, list[str], list[str]]:
    """``(new text, names of the blocks replaced, names of unknown blocks)``."""
    replaced: list[str] = []
    unknown: list[str] = []

    def sub(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in TABLES:
            unknown.append(name)
            return m.group(0)
        replaced.append(name)
        return block(name, root)

    begins = re.findall(r"<!-- BEGIN ([\w.-]+) -->", readme_text)
    new = _BLOCK.sub(sub, readme_text)
    unmatched = [b for b in begins if b not in replaced and b not in unknown]
    if unmatched:
        raise SystemExit(f"readme_tables: no matching '<!-- END ... -->' for block(s) {unmatched}")
    return new, replaced, unknown


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--readme", type=Path, default=None, help="default: README.md of the project")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if a block is out of date")
    mode.add_argument("--print", metavar="NAME", dest="print_name", help="print one block")
    mode.add_argument("--list", action="store_true", help="list the tables and where they are")
    args = ap.parse_args(argv)

    if args.print_name:
        if args.print_name not in TABLES:
            print(
                f"readme_tables: unknown table {args.print_name!r}; known: {', '.join(TABLES)}",
                file=sys.stderr,
            )
            return 2
        print(block(args.print_name, ROOT))
        return 0
    readme = args.readme or ROOT / "README.md"
    text_in = readme.read_text(encoding="utf-8")
    if args.list:
        for name, t in TABLES.items():
            where = "in README" if f"<!-- BEGIN {name} -->" in text_in else "no markers in README"
            print(f"{name:<24} {where:<22} {', '.join(sources(t))}")
        return 0
    new, replaced, unknown = rewrite(text_in, ROOT)
    for name in unknown:
        print(
            f"readme_tables: README block {name!r} has no table definition (left as is)",
            file=sys.stderr,
        )
    missing = [n for n in TABLES if n not in replaced]
    if args.check:
        if new != text_in:
            print(
                "readme_tables: README tables are out of date; run python benchmarks/readme_tables.py",
                file=sys.stderr,
            )
            return 1
        print(f"README tables up to date ({', '.join(replaced) or 'none found'})")
        return 0
    if new != text_in:
        readme.write_text(new, encoding="utf-8")
    print(
        f"rewrote {len(replaced)} block(s): {', '.join(replaced) or '-'}"
        + (f"; tables without markers in the README: {', '.join(missing)}" if missing else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
