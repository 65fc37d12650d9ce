"""Benchmarks print measured figures; each target is a ratio measured side by side in one run."""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = {
    "sandbox": "tuningtax.sandbox.bench",
    "generate": "tuningtax.generate.bench",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="options passed to the benchmark")


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(BENCHMARKS[args.name])
    return int(module.main(args.rest) or 0)
