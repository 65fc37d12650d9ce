"""Unbiased pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code", eq. 1):
pass@k = E_task[1 - C(n - c, k) / C(n, k)] for n samples of which c pass, computed as a stable product."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections import defaultdict

import numpy as np

from tuningtax.errors import UserError
from tuningtax.jsonl import read_jsonl, write_text_atomic


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) passes."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1 or k > n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def per_task_counts(results: list[dict]) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        counts[r["task_id"]][0] += 1
        counts[r["task_id"]][1] += bool(r["passed"])
    return {task: (n, c) for task, (n, c) in counts.items()}


def pass_at_k_table(results: list[dict], ks: list[int]) -> tuple[list[dict], dict[str, float]]:
    """Per-task rows (task_id, n, c, pass@k...) and the mean over tasks for each k that every task allows."""
    counts = per_task_counts(results)
    if not counts:
        raise UserError("no results to score")
    n_min = min(n for n, _ in counts.values())
    usable = [k for k in ks if k <= n_min]
    rows = [{"task_id": t, "n": n, "c": c, **{f"pass@{k}": pass_at_k(n, c, k) for k in usable}}
            for t, (n, c) in counts.items()]
    aggregate = {f"pass@{k}": float(np.mean([row[f"pass@{k}"] for row in rows])) for k in usable}
    return rows, aggregate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", required=True, help="execution results JSONL")
    parser.add_argument("--k", default="1", help="comma-separated k values (default 1)")
    parser.add_argument("--out", required=True, help="per-task CSV; the aggregate is printed")


def run(args: argparse.Namespace) -> int:
    ks = [int(k) for k in args.k.split(",")]
    rows, aggregate = pass_at_k_table(read_jsonl(args.results), ks)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(args.out, buf.getvalue())
    for k, v in aggregate.items():
        print(f"{k} = {v:.4f} over {len(rows)} tasks", file=sys.stderr)
    return 0
