"""`python -m tuningtax explorer`: a static per-sample explorer of one study, and its tables linked to it.

Writes, into --out-dir and nothing else:

    index.html           the explorer: filters (benchmark, mode, model, format, level, failure category,
                         problem, outcome, or a pair of models where one passes and the other fails), kept in
                         the URL hash so a link opens a filtered view; a page of samples at a time, each with
                         its task (prefix, hole, suffix or instruction), raw and post-processed output,
                         outcome, failure category, fidelity markers and stop reason
    report.html          the findings (--findings) and every --tables CSV; each table row with sample keys
                         (model, benchmark, format, level, ... or a pair of models) links to index.html
                         filtered on that row's keys
    data/<benchmark>.js  one per benchmark of the samples: its tasks' texts and its samples' details, loaded
                         by the page (a <script>, since browsers refuse fetch() of file:// URLs) only when a
                         view shows one of its samples

index.html embeds a compact index of every sample (its keys and outcome), so filtering and counting never wait
for a data file. No server, no network, no timestamp: two runs on the same inputs write the same bytes (DVC
versions the files by content). Model output is untrusted text: the page inserts every data string as text,
never as HTML, and the embedded data escapes `<`, `>`, `&`, U+2028/2029 and lone surrogates.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import html
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tuningtax.analysis.explorer_assets import TEMPLATES as ASSETS
from tuningtax.errors import UserError
from tuningtax.jsonl import iter_numbered_jsonl, write_text_atomic
from tuningtax.tasks.schema import Task, read_tasks

PAGE_SIZE = 50
# Filters in the order the hash lists them; the page (explorer.js) and report.html share it.
HASH_KEYS = ("benchmark", "mode", "model", "format", "level", "category", "problem", "outcome", "passes", "fails",
             "page")
REQUIRED = {"model": str, "benchmark": str, "format": str, "level": str, "task_id": str}
# Fields the compact index carries (or the task gives): left out of the per-benchmark details.
INDEXED = ("model", "benchmark", "format", "level", "task_id", "sample", "passed", "category", "mode", "source_id")
# Details shown in the sample's header; the other fields are fidelity markers, in name order.
DETAIL_FIRST = ("checkpoint", "variant", "status", "failure_status", "stop_reason", "n_new_tokens", "raw_output",
                "completion")
BENCHMARK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Pairs of columns naming two models in one table row (tax, variants, trajectory): the first passes, the second
# fails in the linked view.
PAIR_COLUMNS = (("base", "instruct"), ("reference", "variant"), ("start", "checkpoint"))
COLUMN_FILTERS = {"model": "model", "benchmark": "benchmark", "format": "format", "prompt_format": "format",
                  "level": "level", "mode": "mode", "category": "category", "source_id": "problem"}
_UNSAFE = re.compile("[<>&\u2028\u2029\ud800-\udfff]")


def script_json(value: Any) -> str:
    """JSON that is also safe inside an HTML <script> element and as JavaScript source: `</script>`, `<!--`,
    U+2028/2029 and lone surrogates cannot appear in it (each is a \\u escape, which JSON reads back as is)."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def hash_for(filters: dict[str, str]) -> str:
    """The URL hash (without '#') the page reads: keys in HASH_KEYS order, values percent-encoded as
    JavaScript's encodeURIComponent does."""
    return "&".join(f"{key}={quote(str(filters[key]), safe=_URI_SAFE)}" for key in HASH_KEYS
                    if filters.get(key) not in (None, ""))


_URI_SAFE = "-_.!~*'()"


@dataclass
class Study:
    """The samples of one study, sorted, with their tasks."""
    rows: list[dict] = field(default_factory=list)
    tasks: dict[tuple[str, str], Task] = field(default_factory=dict)
    task_order: dict[tuple[str, str], int] = field(default_factory=dict)


def load_tasks(paths: list[Path]) -> tuple[dict[tuple[str, str], Task], dict[tuple[str, str], int]]:
    """(benchmark, task_id) -> Task, and each task's position in the files (the page's task order)."""
    tasks: dict[tuple[str, str], Task] = {}
    where: dict[tuple[str, str], Path] = {}
    for path in paths:
        for task in read_tasks(path).values():
            key = (task.benchmark, task.task_id)
            if key in tasks and tasks[key] != task:
                raise UserError(f"{path}: task {task.task_id!r} of benchmark {task.benchmark!r} differs from the one "
                                f"in {where[key]}; pass one task file per benchmark")
            tasks.setdefault(key, task)
            where.setdefault(key, path)
    return tasks, {key: i for i, key in enumerate(tasks)}


def _number(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    return value


def load_study(sample_paths: list[Path], task_paths: list[Path]) -> Study:
    tasks, order = load_tasks(task_paths)
    task_files = ", ".join(map(str, task_paths))
    rows, seen = [], {}
    for path in sample_paths:
        for lineno, record in iter_numbered_jsonl(path):
            where = f"{path}:{lineno}"
            missing = [name for name in REQUIRED if name not in record]
            if missing:
                raise UserError(f"{where}: sample lacks field(s) {', '.join(missing)}; pass the samples "
                                "`python -m tuningtax measure` writes (data/07_scores/{model}/samples.jsonl)")
            wrong = [name for name, kind in REQUIRED.items() if not isinstance(record[name], kind)]
            if wrong:
                raise UserError(f"{where}: field(s) {', '.join(wrong)} must be strings")
            if not BENCHMARK_NAME.match(record["benchmark"]):
                raise UserError(f"{where}: benchmark {record['benchmark']!r} cannot name a data file; use letters, "
                                "digits, '.', '_' and '-'")
            passed = record.get("passed")
            if passed is not None and not isinstance(passed, bool):
                raise UserError(f"{where}: passed is {passed!r}; expected true, false or null")
            sample = record.get("sample", 0)
            if not isinstance(sample, int) or isinstance(sample, bool):
                raise UserError(f"{where}: sample is {sample!r}; expected an integer")
            key = (record["benchmark"], record["task_id"])
            if key not in tasks:
                raise UserError(f"{where}: task {record['task_id']!r} of benchmark {record['benchmark']!r} is in "
                                f"none of the --tasks files ({task_files}); pass the task file the samples were "
                                "scored on")
            ident = (record["model"], record.get("variant"), record["benchmark"], record["format"], record["level"],
                     record["task_id"], sample)
            if ident in seen:
                raise UserError(f"{where}: the same sample as {seen[ident]} (model, variant, benchmark, format, "
                                "level, task_id, sample); pass each samples file once")
            seen[ident] = where
            rows.append({**record, "sample": sample, "passed": passed})
    if not rows:
        raise UserError(f"{', '.join(map(str, sample_paths))}: no samples")
    rows.sort(key=lambda r: (r["benchmark"], order[(r["benchmark"], r["task_id"])], r["model"],
                             str(r.get("variant") or ""), r["format"], r["level"], r["sample"]))
    return Study(rows=rows, tasks=tasks, task_order=order)


class _Interner:
    def __init__(self) -> None:
        self.values: list[str] = []
        self.index: dict[str, int] = {}

    def __call__(self, value: str) -> int:
        if value not in self.index:
            self.index[value] = len(self.values)
            self.values.append(value)
        return self.index[value]


def _kind(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if all(isinstance(v, bool) for v in present):
        return "b"
    if all(isinstance(v, str) for v in present):
        return "s"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "n"
    return "j"


def benchmark_data(rows: list[dict], tasks: list[Task]) -> dict:
    """A benchmark's data file: its tasks' texts, and per sample (in index order) the fields the index leaves
    out, strings (outputs shared across levels included) stored once in `strs`."""
    strs = _Interner()
    names = sorted({name for row in rows for name in row} - set(INDEXED))
    cols = [name for name in DETAIL_FIRST if name in names] + [name for name in names if name not in DETAIL_FIRST]
    kinds = [_kind([row.get(name) for row in rows]) for name in cols]

    def encode(value: Any, kind: str) -> Any:
        if value is None:
            return None
        if kind == "b":
            return int(value)
        if kind == "s":
            return strs(value)
        return _number(value)

    encoded = [[encode(row.get(name), kind) for name, kind in zip(cols, kinds)] for row in rows]
    return {"tasks": [[t.header, t.prompt, t.canonical_solution, t.suffix, t.instruction] for t in tasks],
            "cols": cols, "kinds": kinds, "rows": encoded, "strs": strs.values}


def build(study: Study) -> tuple[dict, dict[str, dict]]:
    """(the page's index, {benchmark: its data file's object})."""
    lists = {key: sorted({str(row[field]) for row in study.rows})
             for key, field in (("benchmark", "benchmark"), ("model", "model"), ("format", "format"),
                                ("level", "level"))}
    lists["category"] = sorted({str(r["category"]) for r in study.rows if r.get("category") is not None})
    used = sorted({(r["benchmark"], r["task_id"]) for r in study.rows}, key=study.task_order.__getitem__)
    lists["mode"] = sorted({study.tasks[key].mode for key in used})
    lists["problem"] = sorted({study.tasks[key].source_id for key in used})
    position = {key: {value: i for i, value in enumerate(values)} for key, values in lists.items()}
    columns: dict[str, list[int]] = {c: [] for c in "bmfltspc"}
    benchmarks, data = [], {}
    start = 0
    for bench in lists["benchmark"]:
        bench_rows = [r for r in study.rows if r["benchmark"] == bench]
        bench_tasks = [key for key in used if key[0] == bench]
        task_index = {key[1]: i for i, key in enumerate(bench_tasks)}
        tasks = [study.tasks[key] for key in bench_tasks]
        benchmarks.append({"name": bench, "file": f"data/{bench}.js", "start": start, "n": len(bench_rows),
                           "tasks": [[t.task_id, position["mode"][t.mode], position["problem"][t.source_id]]
                                     for t in tasks]})
        for row in bench_rows:
            columns["b"].append(position["benchmark"][bench])
            columns["m"].append(position["model"][row["model"]])
            columns["f"].append(position["format"][row["format"]])
            columns["l"].append(position["level"][row["level"]])
            columns["t"].append(task_index[row["task_id"]])
            columns["s"].append(row["sample"])
            columns["p"].append(-1 if row["passed"] is None else int(row["passed"]))
            columns["c"].append(-1 if row.get("category") is None else position["category"][str(row["category"])])
        data[bench] = benchmark_data(bench_rows, tasks)
        start += len(bench_rows)
    index = {"version": 1, "page_size": PAGE_SIZE, "total": start, "lists": lists, "benchmarks": benchmarks,
             "rows": columns}
    return index, data


def _fill(template: str, values: dict[str, str]) -> str:
    """One pass over the template, so a value never has its own text substituted."""
    return re.sub(r"\{\{([A-Z_]+)\}\}", lambda m: values[m.group(1)], template)


def index_html(index: dict) -> str:
    script = (ASSETS / "explorer.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return _fill((ASSETS / "index.html").read_text(encoding="utf-8"),
                 {"CSS": (ASSETS / "explorer.css").read_text(encoding="utf-8"), "SCRIPT": script,
                  "SCRIPT_HASH": f"sha256-{digest}", "INDEX": script_json(index)})


def data_js(bench: str, data: dict) -> str:
    return f"TTX.register({script_json(bench)},{script_json(data)});\n"


# --- report.html ---------------------------------------------------------------------------------------------

def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.exists():
        raise UserError(f"{path}: file not found")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise UserError(f"{path}: empty CSV (no header); rerun the step that wrote it")
    header, body = rows[0], rows[1:]
    for lineno, row in enumerate(body, 2):
        if len(row) != len(header):
            raise UserError(f"{path}:{lineno}: {len(row)} cells for {len(header)} columns")
    return header, body


def row_filters(header: list[str], row: list[str]) -> dict[str, str] | None:
    """The explorer filters a table row stands for (None: the table has no column the explorer filters on)."""
    cells = dict(zip(header, row))
    filters: dict[str, str] = {}
    for first, second in PAIR_COLUMNS:
        if first in cells and second in cells:
            if cells[first] and cells[second]:
                filters.update(outcome="paired", passes=cells[first], fails=cells[second])
            break
    else:
        if cells.get("model"):
            filters["model"] = cells["model"]
    for column, key in COLUMN_FILTERS.items():
        if key != "model" and cells.get(column):
            filters[key] = cells[column]
    if cells.get("subset") == "failed" and "outcome" not in filters:
        filters["outcome"] = "fail"
    linkable = set(COLUMN_FILTERS) | {"subset"} | {c for pair in PAIR_COLUMNS for c in pair}
    return filters if linkable & set(header) else None


def _table_html(title: str, anchor: str, header: list[str], body: list[list[str]]) -> str:
    linked = bool(body) and row_filters(header, body[0]) is not None
    out = [f'<section id="{html.escape(anchor)}"><h2>{html.escape(title)}</h2>']
    if not body:
        out.append("<p><em>no rows</em></p></section>")
        return "\n".join(out)
    out.append("<table><thead><tr>" + ("<th>samples</th>" if linked else "")
               + "".join(f"<th>{html.escape(c)}</th>" for c in header) + "</tr></thead><tbody>")
    for row in body:
        cells = "".join(f"<td>{html.escape(c)}</td>" for c in row)
        if linked:
            href = "index.html#" + hash_for(row_filters(header, row) or {})
            cells = f'<td><a class="explore" href="{html.escape(href)}">view</a></td>' + cells
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table></section>")
    return "\n".join(out)


def report_html(tables: list[Path], findings: Path | None) -> str:
    sections, toc = [], []
    named = ([("findings", "Findings", findings)] if findings else []) + [(p.stem, p.name, p) for p in tables]
    anchors: set[str] = set()
    for stem, title, path in named:
        anchor = stem
        while anchor in anchors:
            anchor += "-"
        anchors.add(anchor)
        header, body = read_csv(path)
        sections.append(_table_html(title, anchor, header, body))
        toc.append(f'<li><a href="#{html.escape(anchor)}">{html.escape(title)}</a></li>')
    return _fill((ASSETS / "report.html").read_text(encoding="utf-8"),
                 {"CSS": (ASSETS / "explorer.css").read_text(encoding="utf-8"), "TOC": "\n".join(toc),
                  "TABLES": "\n".join(sections)})


# --- command -------------------------------------------------------------------------------------------------

def write_explorer(samples: list[Path], tasks: list[Path], tables: list[Path], findings: Path | None,
                   out_dir: Path) -> list[Path]:
    """Build everything before writing anything, so bad input leaves the folder as it was."""
    study = load_study(samples, tasks)
    index, data = build(study)
    files = {out_dir / "index.html": index_html(index), out_dir / "report.html": report_html(tables, findings)}
    files.update({out_dir / "data" / f"{bench}.js": data_js(bench, d) for bench, d in data.items()})
    for path, text in files.items():
        write_text_atomic(path, text)
    return list(files)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", nargs="+", required=True, type=Path,
                        help="per-checkpoint sample files (data/07_scores/{model}/samples.jsonl)")
    parser.add_argument("--tasks", nargs="+", required=True, type=Path,
                        help="the task files the samples were scored on (data/02_subsets/*.jsonl)")
    parser.add_argument("--tables", nargs="*", default=[], type=Path,
                        help="results tables (CSV) to show in report.html, each row linked to its samples")
    parser.add_argument("--findings", type=Path, help="the findings CSV, shown first in report.html")
    parser.add_argument("--out-dir", type=Path, default=Path("results/explorer"))


def run(args: argparse.Namespace) -> int:
    written = write_explorer(args.samples, args.tasks, args.tables, args.findings, args.out_dir)
    print(f"explorer in {args.out_dir}: index.html (open it in a browser), report.html, "
          f"{len(written) - 2} data file(s)", file=sys.stderr)
    return 0
