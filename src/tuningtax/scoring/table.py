"""`python -m tuningtax score-table`: pass@1 per (model, variant, benchmark, format, level, suite) with n.

`suite` is `all` (a completion passes when every test ran and passed: the headline number) and, for
benchmarks whose scorer has suites (EvalPlus: `base`, `plus`), one more row per suite. EvalPlus's
"HumanEval+" figure is the `all` row (base and plus inputs), its "HumanEval" figure the `base` row.

Execution files are named by the pipeline's layout
`.../{model}/{variant}/{benchmark}/{format}/{level}.jsonl`; the keys are read from that path. A folder
stands for the *.jsonl files in it."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from tuningtax.errors import UserError
from tuningtax.jsonl import expand_jsonl_inputs, read_jsonl, write_text_atomic
from tuningtax.scoring.passk import pass_at_k_table

KEYS = ("model", "variant", "benchmark", "format", "level")
ALL_SUITES = "all"


def keys_from_path(path: Path, keys: tuple[str, ...] = KEYS) -> dict[str, str]:
    """The run's keys from the last ``len(keys)`` parts of a results file (its .jsonl dropped) or folder."""
    parts = path.with_suffix("").parts if path.suffix == ".jsonl" else path.parts
    if len(parts) < len(keys):
        layout = "/".join("{" + k + "}" for k in keys)
        raise UserError(f"{path}: expected a path ending in {layout}{'.jsonl' if path.suffix == '.jsonl' else ''}")
    return dict(zip(keys, parts[-len(keys):]))


def score_rows(paths: list[Path]) -> list[dict]:
    rows = []
    for path in expand_jsonl_inputs(paths, "execution results"):
        results = read_jsonl(path)
        if not results:
            raise UserError(f"{path}: no execution results")
        keys = keys_from_path(path)
        rows.append(_score(keys, ALL_SUITES, results))
        suites = dict.fromkeys(s for r in results for s in r.get("suites", {}))
        for suite in suites:
            rows.append(_score(keys, suite, [r | {"passed": r["suites"][suite] == "passed"} for r in results]))
    return sorted(rows, key=lambda r: (*(r[k] for k in KEYS), r["suite"] != ALL_SUITES, r["suite"]))


def _score(keys: dict, suite: str, results: list[dict]) -> dict:
    _, aggregate = pass_at_k_table(results, [1])
    return {**keys, "suite": suite, "n": len({r["task_id"] for r in results}),
            "n_passed": sum(bool(r["passed"]) for r in results if r["sample"] == 0), "pass@1": aggregate["pass@1"]}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executions", nargs="+", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)


def run(args: argparse.Namespace) -> int:
    rows = score_rows(args.executions)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*KEYS, "suite", "n", "n_passed", "pass@1"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row | {"pass@1": f"{row['pass@1']:.4f}"})
    write_text_atomic(args.out, buf.getvalue())
    return 0
