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
from tuningtax.jsonl import expand_jsonl_inputs, read_jsonl, write_jsonl
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


def index_completions(paths: list[Path]) -> tuple[dict[tuple, Path], dict[tuple, Path]]:
    """Generation records by (model, variant, benchmark, format) and post-processed files by those keys plus
    level, from the files' own paths (so the files may sit anywhere storage puts them)."""
    raw, levels = {}, {}
    for path in paths:
        if path.name == "raw_output.jsonl":
            raw[tuple(keys_from_path(path.parent, KEYS).values())] = path
        elif path.parent.name == "levels":
            level_keys = tuple(keys_from_path(path.parent.parent, KEYS).values())
            levels[(*level_keys, path.stem)] = path
        else:
            raise UserError(f"{path}: expected .../{{format}}/raw_output.jsonl or "
                            ".../{format}/levels/{level}.jsonl")
    return raw, levels


def collect(execution_files: list[Path], completion_files: list[Path],
            tasks: dict[str, dict[str, Task]]) -> list[dict]:
    raw_files, level_files = index_completions(completion_files)
    rows = []
    for result_file in execution_files:
        keys = keys_from_path(result_file.parent, KEYS)
        run, level = tuple(keys[k] for k in KEYS), result_file.stem
        if run not in raw_files or (*run, level) not in level_files:
            raise UserError(f"{result_file}: its raw_output.jsonl or levels/{level}.jsonl was not given with "
                            "--completions; pass every file the executions were made from")
        generation = {(r["task_id"], r["sample"]): r for r in read_jsonl(raw_files[run])}
        processed = {(r["task_id"], r["sample"]): r for r in read_jsonl(level_files[(*run, level)])}
        bench_tasks = tasks.get(keys["benchmark"])
        if bench_tasks is None:
            raise UserError(f"{result_file}: no task file for benchmark {keys['benchmark']!r}; pass it with --tasks")
        for result in read_jsonl(result_file):
            key = (result["task_id"], result["sample"])
            if key not in processed or key not in generation:
                raise UserError(f"{result_file}: {key} has no completion in {level_files[(*run, level)]}; the "
                                "files are out of step: rerun the pipeline")
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
                # the texts themselves, so the explorer shows what was scored without a second join
                "raw_output": gen["raw_output"], "completion": post["completion"],
            })
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executions", nargs="+", required=True, type=Path,
                        help="execution results .../{model}/{variant}/{benchmark}/{format}/{level}.jsonl, or "
                             "folders of them")
    parser.add_argument("--completions", nargs="+", required=True, type=Path,
                        help="the generation records (.../{format}/raw_output.jsonl) and post-processed files "
                             "(.../{format}/levels/{level}.jsonl) the executions were made from")
    parser.add_argument("--tasks", nargs="+", required=True, type=Path, help="the task files the runs used")
    parser.add_argument("--out", required=True, type=Path, help="per-sample JSONL")


def run(args: argparse.Namespace) -> int:
    executions = expand_jsonl_inputs(args.executions, "execution results")
    rows = collect(sorted(executions), args.completions, load_tasks(args.tasks))
    if not rows:
        raise UserError("no execution results found in the given folders")
    frame = pd.DataFrame(rows)
    # NaN is not JSON: metrics that do not apply are null.
    records = [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
               for r in frame.astype(object).to_dict("records")]
    write_jsonl(args.out, records)
    print(f"{args.out}: {len(records)} samples", file=sys.stderr)
    return 0
