"""params.yaml: Snakemake's config and DVC's params, defined once here as typed dataclasses.

The JSON schema in schemas/params.schema.json is generated from these classes
(`python -m tuningtax params --write-schema`) and a test fails when the two drift. Validation errors name
the file, the field path, what was found and how to fix it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from tuningtax.errors import UserError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "params.schema.json"

Benchmark = Literal["humaneval-command", "humaneval-completion", "humaneval-single-line",
                    "humaneval-multi-line", "humaneval-random-span"]


@dataclass
class SandboxParams:
    """Limits for running generated programs (README, "Sandbox")."""
    timeout_s: float = field(default=10.0, metadata={"minimum": 0.1, "doc": "wall-clock limit per program"})
    memory_mb: int = field(default=2048, metadata={"minimum": 64, "doc": "address-space limit per program"})
    backend: Literal["auto", "bwrap", "unshare"] = field(
        default="auto", metadata={"doc": "auto: bubblewrap where installed, else unshare/setpriv"})
    workers: int = field(default=0, metadata={"minimum": 0, "doc": "parallel sandboxes; 0 = all cores"})


@dataclass
class Params:
    benchmarks: list[Benchmark] = field(
        default_factory=lambda: ["humaneval-command", "humaneval-completion", "humaneval-single-line",
                                 "humaneval-multi-line", "humaneval-random-span"],
        metadata={"minItems": 1, "uniqueItems": True, "doc": "benchmarks whose tasks are built and gold-gated"})
    benchmark_mirror: str = field(
        default="../shared/benchmarks",
        metadata={"doc": "folder mirroring upstream benchmark files (checked by sha256); "
                         "used before the network for data that cannot be derived"})
    sandbox: SandboxParams = field(default_factory=SandboxParams)


def _schema_for(tp, meta: dict | None = None) -> dict:
    meta = dict(meta or {})
    doc = meta.pop("doc", None)
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        schema = {"type": "object", "additionalProperties": False,
                  "properties": {f.name: _schema_for(hints[f.name], dict(f.metadata)) for f in dataclasses.fields(tp)},
                  "required": [f.name for f in dataclasses.fields(tp)]}
        if tp.__doc__ and not tp.__doc__.startswith(tp.__name__ + "("):
            schema["description"] = tp.__doc__.strip().splitlines()[0]
    elif origin is Literal:
        schema = {"enum": list(typing.get_args(tp))}
    elif origin is list:
        schema = {"type": "array", "items": _schema_for(typing.get_args(tp)[0])}
    elif tp is bool:
        schema = {"type": "boolean"}
    elif tp is int:
        schema = {"type": "integer"}
    elif tp is float:
        schema = {"type": "number"}
    elif tp is str:
        schema = {"type": "string"}
    else:
        raise TypeError(f"no schema mapping for {tp!r}")
    if doc:
        schema["description"] = doc
    schema.update(meta)
    return schema


def json_schema() -> dict:
    schema = _schema_for(Params)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "tuningtax params.yaml", **schema}


def _path(error) -> str:
    parts = ""
    for p in error.absolute_path:
        parts += f"[{p}]" if isinstance(p, int) else (f".{p}" if parts else str(p))
    return parts or "(top level)"


def validate_params(config: dict, source: str = "params.yaml") -> None:
    """Raise UserError listing every schema violation with its field path and a fix."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(json_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{source}: {len(errors)} invalid setting(s):"]
        for e in errors:
            lines.append(f"  - field {_path(e)}: {e.message}")
        lines.append("See schemas/params.schema.json for every field, its type and its meaning.")
        raise UserError("\n".join(lines))


def load_params(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML: {err}") from None
    validate_params(config, str(path))
    return config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", metavar="PARAMS", help="validate a params file")
    parser.add_argument("--write-schema", action="store_true", help=f"regenerate {SCHEMA_PATH.name}")


def run(args: argparse.Namespace) -> int:
    if args.write_schema:
        SCHEMA_PATH.parent.mkdir(exist_ok=True)
        SCHEMA_PATH.write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {SCHEMA_PATH}", file=sys.stderr)
    if args.check:
        load_params(args.check)
        print(f"{args.check}: valid", file=sys.stderr)
    return 0
