"""`python -m tuningtax tasks --benchmark NAME --out PATH`"""

from __future__ import annotations

import argparse
import sys

from tuningtax.jsonl import write_jsonl
from tuningtax.tasks.registry import BENCHMARKS, build_tasks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS))
    parser.add_argument("--out", required=True, help="task JSONL to write")
    parser.add_argument("--mirror", default=None,
                        help="local folder mirroring the upstream benchmark files (random-span only)")


def run(args: argparse.Namespace) -> int:
    tasks = build_tasks(args.benchmark, args.mirror)
    n = write_jsonl(args.out, (t.to_record() for t in tasks))
    print(f"{args.benchmark}: wrote {n} tasks to {args.out}", file=sys.stderr)
    return 0
