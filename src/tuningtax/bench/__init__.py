"""Benchmarks print measured figures; each target is a ratio measured side by side in one run.

They live outside every pipeline command's import closure (tuningtax.codeversion): editing one never makes a
result stale, and they write nowhere DVC tracks.
"""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = {
    "sandbox": "tuningtax.bench.sandbox",
    "generate": "tuningtax.bench.generate",
    "agreement": "tuningtax.bench.agreement",
    "tune": "tuningtax.bench.tune",
    "jobs": "tuningtax.bench.jobs",
    "explorer": "tuningtax.bench.explorer",
    "realmix": "tuningtax.bench.realmix",
    "realmix-pass": "tuningtax.bench.realmix_pass",
    "startup": "tuningtax.bench.startup",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="options passed to the benchmark")


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(BENCHMARKS[args.name])
    return int(module.main(args.rest) or 0)
