"""`python -m tuningtax postprocess --tasks T --completions C [--levels raw,stop-cut,...] --out DIR`

Writes one completions JSONL per level (`DIR/<level>.jsonl`, or `--out PATH.jsonl` for a single level),
records in the input's order with fields task_id, sample, level, completion, raw_output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tuningtax.errors import UserError
from tuningtax.jsonl import iter_jsonl, write_jsonl
from tuningtax.postprocess import LEVELS, get_level
from tuningtax.tasks.schema import Task, read_tasks

REQUIRED = ("task_id", "sample", "raw_output")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", required=True, help="task JSONL the completions answer")
    parser.add_argument("--completions", required=True, help="completions JSONL (task_id, sample, raw_output)")
    parser.add_argument("--levels", default=None,
                        help=f"comma-separated levels among {', '.join(LEVELS)}; "
                             "default: every level defined for all the tasks' modes")
    parser.add_argument("--out", required=True, help="output folder (<level>.jsonl each), or a .jsonl path "
                                                     "when exactly one level is asked for")


def _levels(arg: str | None, tasks: dict[str, Task]) -> list[str]:
    if arg is None:
        modes = {t.mode for t in tasks.values()}
        return [name for name, level in LEVELS.items() if modes <= set(level.modes)]
    names = [n.strip() for n in arg.split(",") if n.strip()]
    if not names:
        raise UserError("--levels is empty; give at least one level")
    for name in names:
        get_level(name)  # unknown names fail before any work
    return list(dict.fromkeys(names))


def _outputs(out: str, levels: list[str]) -> dict[str, Path]:
    path = Path(out)
    if path.suffix == ".jsonl":
        if len(levels) != 1:
            raise UserError(f"--out {out} is a file but {len(levels)} levels were asked for; give a folder")
        return {levels[0]: path}
    return {name: path / f"{name}.jsonl" for name in levels}


def run(args: argparse.Namespace) -> int:
    tasks: dict[str, Task] = read_tasks(args.tasks)
    levels = _levels(args.levels, tasks)
    outputs = _outputs(args.out, levels)

    rows: dict[str, list[dict]] = {name: [] for name in levels}
    seen: set[tuple[str, object]] = set()
    for i, record in enumerate(iter_jsonl(args.completions), 1):
        where = f"{args.completions}:{i}"
        missing = [f for f in REQUIRED if f not in record]
        if missing:
            raise UserError(f"{where}: missing field(s) {', '.join(missing)}")
        if not isinstance(record["raw_output"], str):
            raise UserError(f"{where}: raw_output must be a string")
        task = tasks.get(record["task_id"])
        if task is None:
            raise UserError(f"{where}: task {record['task_id']!r} is not in {args.tasks}; "
                            "were the completions made from another task file?")
        key = (record["task_id"], record["sample"])
        if key in seen:
            raise UserError(f"{where}: task {key[0]!r} sample {key[1]!r} appears twice")
        seen.add(key)
        for name in levels:
            rows[name].append({"task_id": task.task_id, "sample": record["sample"], "level": name,
                               "completion": get_level(name)(record["raw_output"], task),
                               "raw_output": record["raw_output"]})
    for name, path in outputs.items():
        n = write_jsonl(path, rows[name])
        print(f"postprocess {name}: wrote {n} completions to {path}", file=sys.stderr)
    return 0
