"""`python -m tuningtax subset`: a deterministic subset of a task file, chosen by problem.

Problems (source_id) are ranked by sha256(seed:source_id), so every benchmark cut from HumanEval keeps the
same problems and the per-problem three-mode view lines up across Flow, Completion and Command. Within a
problem, tasks are ranked the same way and at most `max_per_problem` are kept (0 = all)."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from tuningtax.errors import UserError
from tuningtax.jsonl import read_jsonl, write_jsonl


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def select(records: list[dict], n_problems: int, max_per_problem: int, seed: int) -> list[dict]:
    """Keep the first n_problems problems by rank (0 = all), in the original file order."""
    problems = sorted({r["source_id"] for r in records}, key=lambda p: _rank(seed, p))
    chosen = set(problems if n_problems == 0 else problems[:n_problems])
    kept: dict[str, list[str]] = {}
    for r in sorted((r for r in records if r["source_id"] in chosen), key=lambda r: _rank(seed, r["task_id"])):
        bucket = kept.setdefault(r["source_id"], [])
        if max_per_problem == 0 or len(bucket) < max_per_problem:
            bucket.append(r["task_id"])
    keep = {t for ids in kept.values() for t in ids}
    return [r for r in records if r["task_id"] in keep]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--n-problems", type=int, default=0, help="problems to keep (0 = all)")
    parser.add_argument("--max-per-problem", type=int, default=0, help="tasks kept per problem (0 = all)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    if args.n_problems < 0 or args.max_per_problem < 0:
        raise UserError("--n-problems and --max-per-problem must be >= 0")
    records = read_jsonl(args.tasks)
    kept = select(records, args.n_problems, args.max_per_problem, args.seed)
    if not kept:
        raise UserError(f"{args.tasks}: the subset is empty")
    write_jsonl(args.out, kept)
    print(f"{args.out}: {len(kept)} of {len(records)} tasks "
          f"({len({r['source_id'] for r in kept})} problems)", file=sys.stderr)
    return 0
