"""Regenerate the README's result tables from the result files committed under benchmarks/results.

The README marks each generated block with a pair of HTML comments, which Markdown hides::

    <!-- BEGIN eval-grabcut -->
    (everything here is replaced by the table named "eval-grabcut")
    <!-- END eval-grabcut -->

Each table is declared once in :data:`TABLES` as columns (a header, a dotted path into a JSON
file, a format) and rows (a JSON file, optionally an object inside it, and the label of the
row), plus literal rows for published figures. The script reads only committed files, so a
number in the README cannot drift from the file it came from: rerun the benchmark, commit its
JSON, run this script, commit the README.

Usage (from the project root)::

    python benchmarks/readme_tables.py            # rewrite every block found in README.md
    python benchmarks/readme_tables.py --check    # exit 1 if a block is out of date (CI)
    python benchmarks/readme_tables.py --print eval-grabcut   # print one block (with markers)
    python benchmarks/readme_tables.py --list     # tables, their sources, and README status

Adding a table for another benchmark JSON: append a :class:`Table` to :data:`TABLES` (paths
such as ``"results.0.images_per_s"`` index into lists by position and into objects by key) and
put its two markers where the table belongs in the README.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = "benchmarks/results"

Formatter = Callable[[Any], str]


# --------------------------------------------------------------------------- formats
def fixed(digits: int) -> Formatter:
    """``1.2345 -> "1.23"`` for ``digits=2``; integers and missing values pass through."""

    def fmt(v: Any) -> str:
        return _missing(v) or f"{float(v):.{digits}f}"

    return fmt


def sig(digits: int) -> Formatter:
    """Significant digits: ``0.03312 -> "0.033"``, ``0.8164 -> "0.82"`` for ``digits=2``."""

    def fmt(v: Any) -> str:
        if _missing(v):
            return _missing(v)
        x = float(v)
        if x == 0:
            return "0"
        decimals = max(digits - 1 - math.floor(math.log10(abs(x))), 0)
        return f"{x:.{decimals}f}"

    return fmt


def integer(v: Any) -> str:
    return _missing(v) or str(int(v))


def text(v: Any) -> str:
    return _missing(v) or str(v)


def _missing(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else ""


# --------------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class Column:
    """One table column: ``header``, the dotted ``path`` of its value in a row's JSON object,
    and how to print it."""

    header: str
    path: str
    fmt: Formatter = text


@dataclass(frozen=True)
class Row:
    """A row read from ``source`` (a JSON file relative to the project root); ``select`` is the
    dotted path of the row's object inside the file ("" = the whole file). ``bold`` names the
    headers of cells printed in bold."""

    label: str
    source: str
    select: str = ""
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
    """A generated README block: a Markdown table and lines under it (provenance)."""

    name: str
    label_header: str
    columns: tuple[Column, ...]
    rows: tuple[Row | Literal, ...]
    notes: tuple[str, ...] = ()  # paragraphs under the table
    footer: Callable[[Table, list[dict[str, Any]]], list[str]] | None = field(default=None, compare=False)


def get_path(obj: Any, path: str) -> Any:
    """``get_path({"noc": {"90": 8.1}}, "noc.90") -> 8.1``; list items by index; None if absent."""
    cur = obj
    for part in path.split(".") if path else []:
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and re.fullmatch(r"-?\d+", part):
            i = int(part)
            cur = cur[i] if -len(cur) <= i < len(cur) else None
        else:
            return None
        if cur is None:
            return None
    return cur


def load_json(source: str, root: Path = ROOT) -> Any:
    path = root / source
    if not path.is_file():
        raise SystemExit(f"readme_tables: {source} does not exist (run the benchmark that writes it)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SystemExit(f"readme_tables: {source} is not valid JSON: {exc}") from exc


def render(table: Table, root: Path = ROOT) -> str:
    """The Markdown of ``table`` (without the markers)."""
    headers = [table.label_header, *(c.header for c in table.columns)]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    objects: list[dict[str, Any]] = []
    for row in table.rows:
        if isinstance(row, Literal):
            cells = list(row.cells) + [""] * (len(table.columns) - len(row.cells))
            lines.append("| " + " | ".join([row.label, *cells]) + " |")
            continue
        obj = get_path(load_json(row.source, root), row.select)
        if obj is None:
            raise SystemExit(f"readme_tables: {row.source} has nothing at {row.select!r}")
        objects.append(obj)
        cells = []
        for col in table.columns:
            cell = col.fmt(get_path(obj, col.path))
            cells.append(f"**{cell}**" if col.header in row.bold else cell)
        lines.append("| " + " | ".join([row.label, *cells]) + " |")
    cites = [f"{r.label.removeprefix('published ')}: {r.citation}" for r in table.rows if isinstance(r, Literal)]
    paragraphs = list(table.notes)
    if cites:
        paragraphs.append("Published rows (typed in, not generated; NoC only, no NoF published): "
                          + "; ".join(cites) + ".")
    out = list(lines)
    for par in paragraphs:
        out += ["", par]
    if table.footer:
        out += ["", *table.footer(table, objects)]
    return "\n".join(out)


# --------------------------------------------------------------------------- the tables
def _eval_footer(table: Table, summaries: list[dict[str, Any]]) -> list[str]:
    """How the evaluation rows were made: the command of each, from its summary.json."""
    sources = [r.source for r in table.rows if isinstance(r, Row)]
    lines = ["Reproduce (each writes the folder its row is read from):", "", "```"]
    for src, s in zip(sources, summaries, strict=True):
        out = str(Path(src).parent)
        lines.append(
            f"mis evaluate --dataset {s['dataset']} --data {s['data']} --predictor {s['predictor']} "
            f"--workers {s.get('workers', 1)} --out {out}"
        )
    lines.append("```")
    versions = sorted({str(s.get("mis_pipeline_version")) for s in summaries})
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


def eval_table(name: str, dataset: str, rows: Sequence[tuple[str, str, tuple[str, ...]]],
               literals: Sequence[Literal] = (), notes: Sequence[str] = EVAL_NOTES) -> Table:
    """A protocol table over ``benchmarks/results/eval_<dataset>_<predictor>/summary.json``."""
    return Table(
        name=name,
        label_header="predictor",
        columns=EVAL_COLUMNS,
        rows=(
            *literals,
            *(Row(label, f"{RESULTS}/eval_{dataset}_{pred}/summary.json", bold=bold) for pred, label, bold in rows),
        ),
        notes=tuple(notes),
        footer=_eval_footer,
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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readme", type=Path, default=None, help="default: README.md of the project")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if a block is out of date")
    mode.add_argument("--print", metavar="NAME", dest="print_name", help="print one block")
    mode.add_argument("--list", action="store_true", help="list the tables and where they are")
    args = ap.parse_args(argv)

    if args.print_name:
        if args.print_name not in TABLES:
            print(f"readme_tables: unknown table {args.print_name!r}; known: {', '.join(TABLES)}", file=sys.stderr)
            return 2
        print(block(args.print_name, ROOT))
        return 0
    readme = args.readme or ROOT / "README.md"
    text_in = readme.read_text(encoding="utf-8")
    if args.list:
        for name, t in TABLES.items():
            where = "in README" if f"<!-- BEGIN {name} -->" in text_in else "no markers in README"
            sources = sorted({r.source for r in t.rows if isinstance(r, Row)})
            print(f"{name:<20} {where:<22} {', '.join(sources)}")
        return 0
    new, replaced, unknown = rewrite(text_in, ROOT)
    for name in unknown:
        print(f"readme_tables: README block {name!r} has no table definition (left as is)", file=sys.stderr)
    missing = [n for n in TABLES if n not in replaced]
    if args.check:
        if new != text_in:
            print("readme_tables: README tables are out of date; run python benchmarks/readme_tables.py",
                  file=sys.stderr)
            return 1
        print(f"README tables up to date ({', '.join(replaced) or 'none found'})")
        return 0
    if new != text_in:
        readme.write_text(new, encoding="utf-8")
    print(f"rewrote {len(replaced)} block(s): {', '.join(replaced) or '-'}"
          + (f"; tables without markers in the README: {', '.join(missing)}" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
