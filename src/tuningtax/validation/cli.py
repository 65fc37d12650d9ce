"""`python -m tuningtax validate --suite NAME {--input FILE [FILE|DIR ...] | --check FILE [k=v ...] ...}
--out SUMMARY [--param k=v ...]`

Writes a deterministic JSON summary only when every file passes; otherwise exits 1 naming each failing
file and expectation (so nothing downstream consumes unvalidated data). A folder stands for the *.jsonl
files in it. `--check` names one file with parameters of its own (its benchmark's row count, say), so one
call validates every run of a checkpoint: Great Expectations' start-up (about 5 s) is paid once per call."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from tuningtax.errors import UserError
from tuningtax.jsonl import expand_jsonl_inputs, read_jsonl, write_text_atomic
from tuningtax.validation.core import ValidationFailed, describe_failures, load_suite_spec, validate_frame


@functools.lru_cache(maxsize=None)
def _count_records(path: str) -> int:  # one subset file serves many --check files
    return len(read_jsonl(path))


def _parse_param(text: str) -> tuple[str, object]:
    """KEY=VALUE (JSON where it parses, else a string); KEY=@FILE is the number of records in FILE."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param {text!r}: expected KEY=VALUE")
    key, value = text.split("=", 1)
    if value.startswith("@"):
        return key, _count_records(value[1:])
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", required=True,
                        help="suite name (src/tuningtax/validation/suites/NAME.json) or a JSON path")
    parser.add_argument("--input", nargs="+", default=[], help="JSONL or CSV files, or folders of *.jsonl")
    parser.add_argument("--check", action="append", nargs="+", default=[], metavar="FILE [KEY=VALUE]",
                        help="one file and parameters of its own (over --param's); repeatable")
    parser.add_argument("--out", required=True, help="summary JSON, written only on success")
    parser.add_argument("--param", action="append", type=_parse_param, default=[], metavar="KEY=VALUE",
                        help="suite parameter; KEY=@FILE counts the records of FILE")


def load_frame(path: Path):
    import pandas as pd

    if not path.exists():
        raise UserError(f"{path}: file not found")
    if path.suffix == ".csv":
        return pd.read_csv(path, keep_default_na=True)
    records = read_jsonl(path)
    return pd.DataFrame.from_records(records)


def _checks(args: argparse.Namespace) -> list[tuple[Path, dict]]:
    """(file, its suite parameters) for every --input and --check."""
    if not args.input and not args.check:
        raise UserError("validate: name the files to check with --input FILE ... or --check FILE [KEY=VALUE ...]")
    shared = dict(args.param)
    checks = [(path, shared) for path in expand_jsonl_inputs(args.input, "files to validate")] if args.input else []
    for file, *pairs in args.check:
        try:
            own = dict(_parse_param(pair) for pair in pairs)
        except argparse.ArgumentTypeError as err:
            raise UserError(f"--check {file}: {err}") from None
        checks.append((Path(file), {**shared, **own}))
    return checks


def run(args: argparse.Namespace) -> int:
    spec = load_suite_spec(args.suite)
    summaries, failures = [], []
    for path, params in _checks(args):
        summary = {"file": str(path), **validate_frame(load_frame(path), spec, params)}
        summaries.append(summary)
        if not summary["success"]:
            failures.append(describe_failures(summary, str(path)))
    if failures:
        raise ValidationFailed("\n".join(failures))
    document = summaries[0] if len(summaries) == 1 else {"suite": spec["name"], "success": True, "files": summaries}
    write_text_atomic(args.out, json.dumps(document, indent=1, sort_keys=True, default=str) + "\n")
    for summary in summaries:
        print(f"{summary['file']}: suite {summary['suite']!r} passed ({summary['n_rows']} rows)", file=sys.stderr)
    return 0
