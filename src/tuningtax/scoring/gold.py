"""The gold gate: every canonical solution must pass through the same program builder and sandbox that
score model outputs. A benchmark below 100 % is refused (its failing task ids are named), because a
harness that fails its own reference answers would charge models for its own defects.

Commands: `gold` (run), `gold-gate` (one benchmark: refuse < 100 %), `gold-table` (results/gold.csv).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from tuningtax.errors import UserError
from tuningtax.jsonl import read_jsonl, write_text_atomic
from tuningtax.sandbox.cli import add_sandbox_arguments, config_for_tasks, execute_jobs, sandbox_config_from_args
from tuningtax.scoring.scorers import programs_for
from tuningtax.tasks.schema import read_tasks


class GoldGateFailed(UserError):
    exit_code = 1


def add_arguments_gold(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", required=True)
    parser.add_argument("--out", required=True, help="results JSONL (same schema as `execute`)")
    add_sandbox_arguments(parser)


def run_gold(args: argparse.Namespace) -> int:
    tasks = read_tasks(args.tasks)
    config = config_for_tasks(sandbox_config_from_args(args), tasks.values())
    jobs = [(t.task_id, 0, programs_for(t, t.canonical_solution)) for t in tasks.values()]
    results, _ = execute_jobs(jobs, config, args.out, args.timings)
    passed = sum(r["passed"] for r in results)
    print(f"{args.tasks}: {passed}/{len(results)} canonical solutions passed", file=sys.stderr)
    return 0


def gate_summary(tasks: list[dict], results: list[dict], tasks_path: str) -> dict:
    benchmarks = {t["benchmark"] for t in tasks}
    if len(benchmarks) != 1:
        raise UserError(f"{tasks_path}: expected one benchmark per task file, found {sorted(benchmarks)}")
    by_id = {r["task_id"]: r for r in results if r["sample"] == 0}
    missing = [t["task_id"] for t in tasks if t["task_id"] not in by_id]
    failing = [t["task_id"] for t in tasks if t["task_id"] in by_id and not by_id[t["task_id"]]["passed"]]
    n_passed = len(tasks) - len(missing) - len(failing)
    return {"benchmark": benchmarks.pop(), "n_tasks": len(tasks), "n_passed": n_passed,
            "gold_pass_rate": n_passed / len(tasks), "failing": failing, "missing": missing,
            "statuses": {t: by_id[t]["status"] for t in failing}}


def add_arguments_gold_gate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", required=True)
    parser.add_argument("--results", required=True, help="output of `gold`")
    parser.add_argument("--out", required=True, help="gate JSON, written only when every task passed")


def run_gold_gate(args: argparse.Namespace) -> int:
    summary = gate_summary(read_jsonl(args.tasks), read_jsonl(args.results), args.tasks)
    if summary["failing"] or summary["missing"]:
        shown = ", ".join(f"{t} ({summary['statuses'][t]})" for t in summary["failing"][:20])
        raise GoldGateFailed(
            f"{args.results}: gold pass rate of {summary['benchmark']} is {summary['gold_pass_rate']:.2%}, "
            f"below 100 %; refusing to score it. Failing: {shown or 'none'}"
            + (f"; without a result: {', '.join(summary['missing'][:20])}" if summary["missing"] else "")
            + ". Fix the task builder or the sandbox limits (see the log of the gold rule).")
    write_text_atomic(args.out, json.dumps(summary, indent=1, sort_keys=True) + "\n")
    print(f"{summary['benchmark']}: gold gate passed ({summary['n_tasks']} tasks)", file=sys.stderr)
    return 0


def add_arguments_gold_table(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gates", nargs="+", required=True, help="gate JSON files from `gold-gate`")
    parser.add_argument("--out", required=True, help="CSV: benchmark, n_tasks, gold_pass_rate")


def run_gold_table(args: argparse.Namespace) -> int:
    rows = sorted((json.loads(Path(p).read_text()) for p in args.gates), key=lambda g: g["benchmark"])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["benchmark", "n_tasks", "gold_pass_rate"])
    for g in rows:
        writer.writerow([g["benchmark"], g["n_tasks"], f"{g['gold_pass_rate']:.4f}"])
    write_text_atomic(args.out, buf.getvalue())
    return 0
