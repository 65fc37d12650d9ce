"""``python -m tuningtax execute``: run completions against their tasks' unit tests in the sandbox.

Results JSONL, one line per completion, sorted by (task order in the tasks file, sample):
task_id, sample, status, passed, sandbox (the backend that ran it), duration_s, detail, and for scorers with
suites (EvalPlus: base, plus) `suites`, each suite's status; then the row passes when every suite passed and
its status and detail are those of the first suite that did not. With ``--timings PATH`` the durations go
to PATH instead, so the results file is byte-identical across runs (DVC-tracked outputs hold no timings).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from tuningtax.errors import UserError
from tuningtax.jsonl import expand_jsonl_inputs, iter_numbered_jsonl, write_jsonl
from tuningtax.sandbox.core import (BACKENDS, SandboxConfig, SandboxError, isolation_summary, resolved_backend,
                                    run_programs)
from tuningtax.scoring.scorers import limits_for, programs_for
from tuningtax.tasks.schema import read_tasks


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    """Limits and backend, shared by `execute` and `gold` so both run programs the same way."""
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=float, default=10.0, help="wall-clock seconds per program")
    parser.add_argument("--memory-mb", type=int, default=2048, help="address-space limit per process")
    parser.add_argument("--backend", choices=("auto", *BACKENDS), default="auto")
    parser.add_argument("--timings", help="write task_id, sample, duration_s to this JSONL instead of into --out "
                                          "(with a `file` field when --completions is a folder)")


def sandbox_config_from_args(args: argparse.Namespace) -> SandboxConfig:
    if args.workers < 1 or args.timeout <= 0 or args.memory_mb < 64:
        raise UserError("--workers must be >= 1, --timeout > 0 and --memory-mb >= 64")
    return SandboxConfig(timeout_s=args.timeout, memory_mb=args.memory_mb, workers=args.workers,
                         backend=args.backend)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", required=True, help="task JSONL (python -m tuningtax tasks)")
    parser.add_argument("--completions", required=True,
                        help="JSONL with task_id, sample (int), completion; or a folder of such files")
    parser.add_argument("--out", required=True, help="results JSONL to write (a folder when --completions is one)")
    add_sandbox_arguments(parser)


Job = tuple[str, int, dict[str, str]]  # task_id, sample, {suite: program}


def load_jobs(tasks_path: str, completions_path: str, tasks: dict | None = None) -> list[Job]:
    """(task_id, sample, {suite: program}) sorted by task order then sample; UserError on any inconsistency.
    ``tasks``: ``read_tasks(tasks_path)`` when the caller has it already."""
    tasks = read_tasks(tasks_path) if tasks is None else tasks
    order = {task_id: n for n, task_id in enumerate(tasks)}
    jobs, seen = [], set()
    path = Path(completions_path)
    for lineno, record in iter_numbered_jsonl(path):
        where = f"{path}:{lineno}"
        task_id, sample, completion = record.get("task_id"), record.get("sample"), record.get("completion")
        if not isinstance(task_id, str) or not isinstance(completion, str):
            raise UserError(f"{where}: task_id and completion must be strings")
        if not isinstance(sample, int) or isinstance(sample, bool):
            raise UserError(f"{where}: sample must be an integer, got {sample!r}")
        if task_id not in tasks:
            raise UserError(f"{where}: task_id {task_id!r} is not in {tasks_path}; use the tasks file the "
                            "completions were generated from")
        if (task_id, sample) in seen:
            raise UserError(f"{where}: duplicate (task_id, sample) = ({task_id!r}, {sample})")
        seen.add((task_id, sample))
        jobs.append((task_id, sample, programs_for(tasks[task_id], completion)))
    if not jobs:
        raise UserError(f"{path}: holds no completions; rerun the step that wrote it (generate / postprocess)")
    jobs.sort(key=lambda job: (order[job[0]], job[1]))
    return jobs


def execute_jobs(jobs: list[Job], config: SandboxConfig, out: str | Path,
                 timings: str | Path | None, extra: dict | None = None) -> tuple[list[dict], list[dict]]:
    """Run the programs and write the results; (result rows, timing rows). With `timings` the durations are
    kept out of the results (and written there unless `extra` is given: then the caller collects them, each
    timing row carrying `extra`'s fields)."""
    flat = [program for _, _, programs in jobs for program in programs.values()]
    try:
        results = iter(run_programs(flat, config, progress=len(flat) > 20))
    except SandboxError as err:
        raise UserError(f"sandbox unavailable: {err}") from None
    backend = resolved_backend(config)  # callers never pass an empty job list (load_jobs refuses one)
    print(f"sandbox backend {backend}: {isolation_summary(backend)}", file=sys.stderr)
    rows, timing_rows = [], []
    for task_id, sample, programs in jobs:
        by_suite = {suite: next(results) for suite in programs}
        first_failing = next((s for s, r in by_suite.items() if not r.passed), None)
        res = by_suite[first_failing if first_failing is not None else next(iter(by_suite))]
        passed = first_failing is None
        row = {"task_id": task_id, "sample": sample, "status": res.status, "passed": passed, "sandbox": backend}
        duration = round(sum(r.duration_s for r in by_suite.values()), 3)
        if timings:
            timing_rows.append({**(extra or {}), "task_id": task_id, "sample": sample, "duration_s": duration})
        else:
            row["duration_s"] = duration
        if len(by_suite) > 1:  # which suite failed is read here; the detail stays the program's own message
            row["suites"] = {suite: r.status for suite, r in by_suite.items()}
        rows.append(row | {"detail": res.detail})
    write_jsonl(out, rows)
    if timings and extra is None:
        write_jsonl(timings, timing_rows)
    return rows, timing_rows


def config_for_tasks(config: SandboxConfig, tasks) -> SandboxConfig:
    """The configured limits, with the wall timeout and memory raised where the tasks' scorer needs more."""
    timeout_s, memory_mb = limits_for(tasks, config.timeout_s, config.memory_mb)
    return dataclasses.replace(config, timeout_s=timeout_s, memory_mb=memory_mb)


def run(args: argparse.Namespace) -> int:
    tasks = read_tasks(args.tasks)
    config = config_for_tasks(sandbox_config_from_args(args), tasks.values())
    completions = Path(args.completions)
    if not completions.is_dir():
        execute_jobs(load_jobs(args.tasks, args.completions, tasks), config, args.out, args.timings)
        return 0
    # A folder (one file per post-processing level): every file is checked before anything runs.
    planned = [(f, load_jobs(args.tasks, str(f), tasks)) for f in expand_jsonl_inputs([completions], "completions")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    all_timings = []
    for path, jobs in planned:
        all_timings += execute_jobs(jobs, config, out / path.name, args.timings, extra={"file": path.name})[1]
    if args.timings:
        write_jsonl(args.timings, all_timings)  # one file for the folder: a declared log of the rule
    return 0
