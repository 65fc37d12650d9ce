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
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from tuningtax.errors import UserError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "params.schema.json"

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"

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
class ModelParams:
    """One checkpoint (keyed by its name): base, instruct, or an intermediate tuning checkpoint (role checkpoint
    + step)."""
    family: str = field(metadata={"enum": "FAMILIES", "doc": "FIM template, stop tokens, chat handling"})
    role: Literal["base", "instruct", "checkpoint"]
    source: str = field(metadata={"minLength": 1, "doc": "hub id (owner/name), ./local/hf/folder, a .gguf file, "
                                                          "or offline-qwen2.5-coder-0.5b-instruct"})
    revision: str | None = field(default=None, metadata={"doc": "hub revision or commit (required for hub ids)"})
    step: int | None = field(default=None, metadata={"doc": "training step (role checkpoint only)"})


@dataclass
class MaxNewTokens:
    """Per-mode generation budgets (the study: 128-256 for FIM, 512 for Command)."""
    flow: int = field(default=128, metadata={"minimum": 1})
    completion: int = field(default=256, metadata={"minimum": 1})
    command: int = field(default=512, metadata={"minimum": 1})


@dataclass
class GenerationParams:
    """Greedy decoding with ONNX Runtime; the effective config is recorded beside every output."""
    batch_size: int = field(default=8, metadata={"minimum": 1})
    max_prompt_tokens: int = field(default=2048, metadata={"minimum": 16, "doc": "prefix cut from the left, "
                                                                                 "suffix from the right"})
    max_new_tokens: MaxNewTokens = field(default_factory=MaxNewTokens)
    provider: Literal["cpu", "cuda"] = field(default="cpu", metadata={
        "doc": "ONNX Runtime execution provider; cuda needs the gpu extra and asserts CUDA really runs"})
    last_logits: bool = field(default=True, metadata={"doc": "export with the LM head on the last position "
                                                             "only (faster prefill; parity-checked)"})


@dataclass
class SubsetParams:
    """Which tasks are generated for: the same problems in every benchmark (ranked by a seeded hash)."""
    n_problems: int = field(default=10, metadata={"minimum": 0, "doc": "0 = all 164"})
    max_flow_tasks_per_problem: int = field(default=3, metadata={"minimum": 0, "doc": "0 = all"})
    seed: int = 0


@dataclass
class RunParams:
    """One benchmark and the prompt formats it is generated with."""
    benchmark: Benchmark
    formats: list[Literal["fim-psm", "fim-spm", "fim-chat", "holefiller", "completion-raw", "command-chat"]] = \
        field(metadata={"minItems": 1, "uniqueItems": True})


@dataclass
class PairParams:
    """A (base, instruct) pair whose tax is measured; names refer to models (int8 runs as NAME@int8)."""
    base: str
    instruct: str


@dataclass
class SeriesParams:
    """A checkpoint series measured against its starting model (steps come from the models' step field)."""
    start: str
    checkpoints: list[str] = field(metadata={"minItems": 1})


@dataclass
class ModeSelection:
    """Which prompt format and post-processing level a mode's outcome is read from."""
    format: Literal["fim-psm", "fim-spm", "fim-chat", "holefiller", "completion-raw", "command-chat"]
    level: Literal["raw", "stop-cut", "first-line", "code-extract", "syntax-truncate"]


@dataclass
class ThreeModeParams:
    """The per-problem three-mode view: one (format, level) per mode."""
    flow: ModeSelection = field(default_factory=lambda: ModeSelection("fim-psm", "first-line"))
    completion: ModeSelection = field(default_factory=lambda: ModeSelection("completion-raw", "stop-cut"))
    command: ModeSelection = field(default_factory=lambda: ModeSelection("command-chat", "code-extract"))


@dataclass
class AnalysisParams:
    """Paired statistics and tables."""
    seed: int = field(default=0, metadata={"doc": "bootstrap seed"})
    n_resamples: int = field(default=10000, metadata={"minimum": 100, "doc": "bootstrap resamples"})
    three_mode: ThreeModeParams = field(default_factory=ThreeModeParams)
    labels: str | None = field(default=None, metadata={
        "doc": "hand-labelled failures (JSONL) to measure the taxonomy classifier against (Cohen's kappa)"})


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
    # A mapping keyed by name, not a list: DVC addresses each checkpoint's params by its key, so adding or
    # inserting one leaves every other checkpoint's stages untouched.
    models: dict[str, ModelParams] = field(default_factory=dict, metadata={
        "propertyNames": {"pattern": MODEL_NAME_PATTERN},
        "doc": "checkpoints under study, keyed by a folder-safe name"})
    variants: list[Literal["fp32", "int8"]] = field(default_factory=lambda: ["fp32"],
                                                   metadata={"minItems": 1, "uniqueItems": True})
    generation: GenerationParams = field(default_factory=GenerationParams)
    subset: SubsetParams = field(default_factory=SubsetParams)
    runs: list[RunParams] = field(default_factory=list)
    levels: list[Literal["raw", "stop-cut", "first-line", "code-extract", "syntax-truncate"]] = field(
        default_factory=lambda: ["raw", "stop-cut", "first-line", "code-extract", "syntax-truncate"],
        metadata={"minItems": 1, "uniqueItems": True,
                  "doc": "post-processing levels, each scored; first-line applies to single-line tasks only"})
    pairs: list[PairParams] = field(default_factory=list)
    series: list[SeriesParams] = field(default_factory=list)
    analysis: AnalysisParams = field(default_factory=AnalysisParams)


def _schema_for(tp, meta: dict | None = None) -> dict:
    meta = dict(meta or {})
    doc = meta.pop("doc", None)
    if meta.get("enum") == "FAMILIES":  # the model-family registry is the single source of truth
        from tuningtax.models.families import FAMILIES

        meta["enum"] = list(FAMILIES)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        schema = {"anyOf": [_schema_for(inner[0]), {"type": "null"}]}
    elif dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        fields_ = dataclasses.fields(tp)
        schema = {"type": "object", "additionalProperties": False,
                  "properties": {f.name: _schema_for(hints[f.name], dict(f.metadata)) for f in fields_},
                  "required": [f.name for f in fields_ if f.default is dataclasses.MISSING
                               and f.default_factory is dataclasses.MISSING or tp is Params]}
        if tp.__doc__ and not tp.__doc__.startswith(tp.__name__ + "("):
            schema["description"] = tp.__doc__.strip().splitlines()[0]
    elif origin is Literal:
        schema = {"enum": list(typing.get_args(tp))}
    elif origin is list:
        schema = {"type": "array", "items": _schema_for(typing.get_args(tp)[0])}
    elif origin is dict:
        schema = {"type": "object", "additionalProperties": _schema_for(typing.get_args(tp)[1])}
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


def model_key(model: str, variant: str) -> str:
    """The name a run goes by in tables and pairs: fp32 is the model itself, other variants are marked."""
    return model if variant == "fp32" else f"{model}@{variant}"


def validate_params(config: dict, source: str = "params.yaml") -> None:
    """Raise UserError listing every schema violation with its field path and a fix."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(json_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    problems = [f"field {_path(e)}: {e.message}" for e in errors]
    if not errors:
        problems = _semantic_problems(config)
    if problems:
        lines = [f"{source}: {len(problems)} invalid setting(s):"] + [f"  - {p}" for p in problems]
        lines.append("See schemas/params.schema.json for every field, its type and its meaning.")
        raise UserError("\n".join(lines))


def _semantic_problems(config: dict) -> list[str]:
    """Rules a JSON schema cannot say: cross-field constraints between models, runs and benchmarks."""
    problems = []
    names = list(config["models"])
    for name, model in config["models"].items():
        try:
            model_spec(name, model, where=f"field models.{name}")
        except UserError as err:
            problems.append(str(err))
    for i, run in enumerate(config["runs"]):
        if run["benchmark"] not in config["benchmarks"]:
            problems.append(f"field runs[{i}].benchmark: {run['benchmark']!r} is not listed under benchmarks, "
                            "so it would be scored without passing the gold gate; add it there")
    known = set(names) | {model_key(n, v) for n in names for v in config["variants"]}
    for i, pair in enumerate(config["pairs"]):
        for role in ("base", "instruct"):
            if pair[role] not in known:
                problems.append(f"field pairs[{i}].{role}: {pair[role]!r} is not a configured model; "
                                f"known: {', '.join(sorted(known))}")
    for i, series in enumerate(config["series"]):
        for j, name in enumerate([series["start"], *series["checkpoints"]]):
            if name not in known:
                where = "start" if j == 0 else f"checkpoints[{j - 1}]"
                problems.append(f"field series[{i}].{where}: {name!r} is not a configured model")
    if config["runs"] and not config["models"]:
        problems.append("field runs: generation runs are configured but models is empty; add a model")
    return problems


def model_spec(name: str, entry: dict, where: str):
    """The ModelSpec of one ``models:`` entry (its key is its name)."""
    from tuningtax.models.spec import ModelSpec

    if not isinstance(entry, dict):
        return ModelSpec.from_dict(entry, where=where)  # refuses it, naming the type
    if "name" in entry:
        raise UserError(f"{where}: field name is the entry's key under models:; remove it")
    return ModelSpec.from_dict({"name": name, **{k: v for k, v in entry.items() if v is not None}}, where=where)


def read_yaml(path: Path):
    """The parsed file, or a UserError naming it when it is not valid YAML."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML: {err}") from None


def load_params(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    config = read_yaml(path)
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
