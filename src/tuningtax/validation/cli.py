"""`python -m tuningtax validate --suite NAME --input FILE --out SUMMARY [--param k=v ...]`

Writes a deterministic JSON summary only when the suite passes; otherwise exits 1 naming the file and each
failed expectation (so nothing downstream consumes unvalidated data)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tuningtax.errors import UserError
from tuningtax.jsonl import read_jsonl, write_text_atomic
from tuningtax.validation.core import ValidationFailed, describe_failures, load_suite_spec, validate_frame


def _parse_param(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param {text!r}: expected KEY=VALUE")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", required=True, help="suite name in gx/expectations/ or a JSON path")
    parser.add_argument("--input", required=True, help="JSONL or CSV file to validate")
    parser.add_argument("--out", required=True, help="summary JSON, written only on success")
    parser.add_argument("--param", action="append", type=_parse_param, default=[], metavar="KEY=VALUE")


def load_frame(path: Path):
    import pandas as pd

    if not path.exists():
        raise UserError(f"{path}: file not found")
    if path.suffix == ".csv":
        return pd.read_csv(path, keep_default_na=True)
    records = read_jsonl(path)
    return pd.DataFrame.from_records(records)


def run(args: argparse.Namespace) -> int:
    path = Path(args.input)
    summary = validate_frame(load_frame(path), load_suite_spec(args.suite), dict(args.param))
    summary = {"file": str(path), **summary}
    if not summary["success"]:
        raise ValidationFailed(describe_failures(summary, str(path)))
    write_text_atomic(args.out, json.dumps(summary, indent=1, sort_keys=True, default=str) + "\n")
    print(f"{path}: suite {summary['suite']!r} passed ({summary['n_rows']} rows)", file=sys.stderr)
    return 0
