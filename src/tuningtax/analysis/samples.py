"""`python -m tuningtax measure`: one row per scored sample, with its outcome, fidelity metrics and failure
category, joined from the pipeline's layout:

    data/05_completions/{model}/{variant}/{benchmark}/{format}/raw_output.jsonl   (generation record)
    data/05_completions/{model}/{variant}/{benchmark}/{format}/levels/{level}.jsonl (post-processed)
    data/06_executions/{model}/{variant}/{benchmark}/{format}/{level}.jsonl        (sandbox results)

Everything downstream (tax tables, behaviour, taxonomy) is recomputed from this file, never from
aggregates, so a derived number cannot disagree with its cells."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from tuningtax.errors import UserError
from tuningtax.jsonl import read_jsonl, write_jsonl
from tuningtax.metrics import compute_metrics
from tuningtax.models.variants import model_key
from tuningtax.scoring.table import keys_from_path
from tuningtax.tasks.schema import Task, read_tasks
from tuningtax.taxonomy.rules import classify, taxonomy_status

KEYS = ("model", "variant", "benchmark", "format")


def load_tasks(paths: list[Path]) -> dict[str, dict[str, Task]]:
    """benchmark -> task_id -> Task."""
    tasks: dict[str, dict[str, Task]] = {}
    for path in paths:
        for task in read_tasks(path).values():
            tasks.setdefault(task.benchmark, {})[task.task_id] = task
    return tasks


def collect(execution_dirs: list[Path], completions_root: Path, tasks: dict[str, dict[str, Task]]) -> list[dict]:
    rows = []
    for exec_dir in execution_dirs:
        keys = keys_from_path(exec_dir, KEYS)
        gen_dir = completions_root.joinpath(*(keys[k] for k in KEYS))
        generation = {(r["task_id"], r["sample"]): r for r in read_jsonl(gen_dir / "raw_output.jsonl")}
        bench_tasks = tasks.get(keys["benchmark"])
        if bench_tasks is None:
            raise UserError(f"{exec_dir}: no task file for benchmark {keys['benchmark']!r}; pass it with --tasks")
        for result_file in sorted(exec_dir.glob("*.jsonl")):
            level = result_file.stem
            processed = {(r["task_id"], r["sample"]): r for r in read_jsonl(gen_dir / "levels" / f"{level}.jsonl")}
            for result in read_jsonl(result_file):
                key = (result["task_id"], result["sample"])
                if key not in processed or key not in generation:
                    raise UserError(f"{result_file}: {key} has no completion in {gen_dir}; the folders are out of "
                                    "step: rerun the pipeline")
                gen, post = generation[key], processed[key]
                sample = {"raw_output": gen["raw_output"], "completion": post["completion"],
                          "stop_reason": gen["stop_reason"]}
                task = bench_tasks[result["task_id"]]
                metrics = compute_metrics(sample, task, bool(result["passed"]))
                status = taxonomy_status(result["status"], result.get("detail", ""))
                rows.append({
                    **keys, "model": model_key(keys["model"], keys["variant"]), "checkpoint": keys["model"],
                    "level": level,
                    "task_id": result["task_id"], "source_id": task.source_id, "mode": task.mode,
                    "sample": result["sample"], "passed": bool(result["passed"]), "status": result["status"],
                    "failure_status": status, "n_new_tokens": gen["n_new_tokens"],
                    "category": classify(result, None, metrics),
                    **metrics,
                })
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executions", nargs="+", required=True, type=Path,
                        help="execution folders .../{model}/{variant}/{benchmark}/{format}")
    parser.add_argument("--completions-root", type=Path, default=Path("data/05_completions"),
                        help="where each execution folder's generation and levels are read (declared as "
                             "the rule's inputs)")
    parser.add_argument("--tasks", nargs="+", required=True, type=Path, help="the task files the runs used")
    parser.add_argument("--out", required=True, type=Path, help="per-sample JSONL")


def run(args: argparse.Namespace) -> int:
    rows = collect(args.executions, args.completions_root, load_tasks(args.tasks))
    if not rows:
        raise UserError("no execution results found in the given folders")
    frame = pd.DataFrame(rows)
    # NaN is not JSON: metrics that do not apply are null.
    records = [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
               for r in frame.astype(object).to_dict("records")]
    write_jsonl(args.out, records)
    print(f"{args.out}: {len(records)} samples", file=sys.stderr)
    return 0
