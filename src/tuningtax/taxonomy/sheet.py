"""`python -m tuningtax label-sheet`: a labelling sheet of failures for hand-labelling (LABELLING.md).

Failures are drawn in a seeded order, round-robin over (benchmark, format, level) so every kind of run is
represented. The sheet shows what a labeller needs (the end of the prefix, the start of the suffix, the
reference, the output, the sandbox status) and never the classifier's category, so labels stay blind.
A labeller fills in `label`; `tabulate --labels` then reports Cohen's kappa of the classifier against it."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from tuningtax.analysis.samples import KEYS as RUN_KEYS
from tuningtax.analysis.samples import load_tasks
from tuningtax.errors import UserError
from tuningtax.jsonl import read_jsonl, write_jsonl

KEY_FIELDS = ("model", "benchmark", "format", "level", "task_id", "sample")


def _tail(text: str, lines: int) -> str:
    return "".join(text.splitlines(keepends=True)[-lines:])


def _head(text: str, lines: int) -> str:
    return "".join(text.splitlines(keepends=True)[:lines])


def build_sheet(samples: list[dict], completions_root: Path, tasks: dict, n: int, seed: int) -> list[dict]:
    failures = [s for s in samples if not s["passed"]]
    groups: dict[tuple, list[dict]] = {}
    for s in sorted(failures, key=lambda s: hashlib.sha256(f"{seed}:{[s[k] for k in KEY_FIELDS]}".encode()).hexdigest()):
        groups.setdefault((s["benchmark"], s["format"], s["level"]), []).append(s)
    picked: list[dict] = []
    while len(picked) < n and any(groups.values()):
        for key in sorted(groups):
            if groups[key] and len(picked) < n:
                picked.append(groups[key].pop(0))
    sheet = []
    levels: dict[Path, dict] = {}  # each post-processed file read once, however many picks it serves
    for s in picked:
        # `model` names the run in tables (NAME@int8); the folders are named by checkpoint and variant.
        folder = completions_root.joinpath(*({**s, "model": s["checkpoint"]}[k] for k in RUN_KEYS))
        path = folder / "levels" / f"{s['level']}.jsonl"
        if path not in levels:
            levels[path] = {(r["task_id"], r["sample"]): r for r in read_jsonl(path)}
        record = levels[path][(s["task_id"], s["sample"])]
        task = tasks[s["benchmark"]][s["task_id"]]
        sheet.append({**{k: s[k] for k in KEY_FIELDS}, "prefix_tail": _tail(task.prompt, 6),
                      "suffix_head": _head(task.suffix, 4), "reference": task.canonical_solution,
                      "output": record["completion"], "status": s["status"], "label": None})
    return sheet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", required=True, type=Path, help="data/07_scores/samples.jsonl")
    parser.add_argument("--tasks", nargs="+", required=True, type=Path)
    parser.add_argument("--completions-root", type=Path, default=Path("data/05_completions"))
    parser.add_argument("--n", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, type=Path)


def run(args: argparse.Namespace) -> int:
    if args.out.exists():
        raise UserError(f"{args.out} exists; a sheet may hold labels: choose another --out")
    sheet = build_sheet(read_jsonl(args.samples), args.completions_root, load_tasks(args.tasks), args.n, args.seed)
    if not sheet:
        raise UserError(f"{args.samples}: no failures to label")
    write_jsonl(args.out, sheet)
    print(f"{args.out}: {len(sheet)} failures to label (fill in `label`, see LABELLING.md)", file=sys.stderr)
    return 0
