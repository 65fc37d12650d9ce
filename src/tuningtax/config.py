"""params.yaml: Snakemake's config and DVC's params, defined once here as typed pydantic models.

Every choice a field offers (benchmarks, prompt formats, post-processing levels, model families, variants)
is read from its registry, so a new registry entry is a valid value without touching this file. The JSON
schema in schemas/params.schema.json is generated from these models (`python -m tuningtax params
--write-schema`) and a test fails when the two drift. Validation errors name the file, the field path,
what was found and how to fix it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Annotated

from pydantic import Field, StringConstraints, ValidationError

from tuningtax.errors import UserError
from tuningtax.yamlfile import read_yaml
from tuningtax.models.spec import NAME_PATTERN, ModelEntry
from tuningtax.models.variants import VARIANTS, model_key
from tuningtax.postprocess import LEVELS, levels_for
from tuningtax.prompts import FORMATS
from tuningtax.tasks.registry import BENCHMARKS, missing_toolchain
from tuningtax.tasks.schema import DEFAULT_MAX_NEW_TOKENS, MODES
from tuningtax.typed import StrictModel, choice_of, problems, unique_list

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "params.schema.json"

BenchmarkName = choice_of(BENCHMARKS)
FormatName = choice_of(FORMATS)
LevelName = choice_of(LEVELS)
VariantName = choice_of(VARIANTS)


class SandboxParams(StrictModel):
    """Limits for running generated programs (docs/sandbox.md)."""
    timeout_s: float = Field(10.0, ge=0.1, description="wall-clock limit per program")
    memory_mb: int = Field(2048, ge=64, description="address-space limit per program")
    backend: choice_of(("auto", "bwrap", "unshare")) = Field(
        "auto", description="auto: bubblewrap where installed, else unshare/setpriv")
    workers: int = Field(0, ge=0, description="parallel sandboxes; 0 = all cores")


class MaxNewTokens(StrictModel):
    """Per-mode generation budgets (the study: 128-256 for FIM, 512 for Command)."""
    flow: int = Field(DEFAULT_MAX_NEW_TOKENS["flow"], ge=1)
    completion: int = Field(DEFAULT_MAX_NEW_TOKENS["completion"], ge=1)
    command: int = Field(DEFAULT_MAX_NEW_TOKENS["command"], ge=1)


class GenerationParams(StrictModel):
    """Greedy decoding with ONNX Runtime; the effective config is recorded beside every output."""
    batch_size: int = Field(8, ge=1)
    max_prompt_tokens: int = Field(2048, ge=16, description="prefix cut from the left, suffix from the right")
    max_new_tokens: MaxNewTokens = MaxNewTokens()
    provider: choice_of(("cpu", "cuda")) = Field("cpu", description=(
        "ONNX Runtime execution provider; cuda needs the gpu extra and asserts CUDA really runs"))
    last_logits: bool = Field(True, description="export with the LM head on the last position only "
                                                "(faster prefill; parity-checked)")


class SubsetParams(StrictModel):
    """Which tasks are generated for: the same problems in every benchmark (ranked by a seeded hash)."""
    n_problems: int = Field(10, ge=0, description="0 = all 164")
    max_flow_tasks_per_problem: int = Field(3, ge=0, description="0 = all")
    seed: int = 0


class RunParams(StrictModel):
    """One benchmark and the prompt formats it is generated with."""
    benchmark: BenchmarkName
    formats: unique_list(FormatName)


class PairParams(StrictModel):
    """A (base, instruct) pair whose tax is measured; names refer to models (int8 runs as NAME@int8)."""
    base: str
    instruct: str


class SeriesParams(StrictModel):
    """A checkpoint series measured against its starting model (steps come from the models' step field)."""
    start: str
    checkpoints: list[str] = Field(min_length=1)


class ModeSelection(StrictModel):
    """Which benchmark, prompt format and post-processing level a mode's outcome is read from."""
    benchmark: BenchmarkName
    format: FormatName
    level: LevelName


class ThreeModeParams(StrictModel):
    """The per-problem three-mode view: one (benchmark, format, level) per mode; null leaves a mode out."""
    flow: ModeSelection | None = ModeSelection(benchmark="humaneval-single-line", format="fim-psm", level="first-line")
    completion: ModeSelection | None = ModeSelection(benchmark="humaneval-completion", format="completion-raw",
                                              level="stop-cut")
    command: ModeSelection | None = ModeSelection(benchmark="humaneval-command", format="command-chat",
                                           level="code-extract")


class LoraParams(StrictModel):
    """LoRA adapters (peft) on the listed linear layers; the saved checkpoints have them merged in."""
    rank: int = Field(16, ge=1)
    alpha: float = Field(32.0, gt=0, description="scaling numerator: updates are scaled by alpha / rank")
    target_modules: unique_list(str) = Field(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        description="module names (suffixes) that get adapters")


class ArmParams(StrictModel):
    """One arm of the tuning lab: the same start, seed and data order, a different share of FIM examples."""
    fim_share: float = Field(0.0, ge=0.0, le=1.0, description=(
        "share of training problems shown as a FIM example (a line of the solution as the middle) instead "
        "of the NL -> code chat turn"))


class TuningParams(StrictModel):
    """The tuning lab (tune/): supervised fine-tuning of one configured model into a trajectory of
    checkpoints, each evaluated like any model (README, "The tuning lab"). arms: {} turns it off."""
    start: str = Field(description="a key of models: the checkpoint training starts from (step 0)")
    data: choice_of(("mbppplus",)) = Field("mbppplus", description="NL -> code pairs: MBPP+ prompt + canonical "
                                                                   "solution")
    n_examples: int = Field(0, ge=0, description="training problems kept (after the overlap check); 0 = all")
    method: choice_of(("lora", "full")) = "lora"
    lora: LoraParams = LoraParams()
    max_seq_len: int = Field(256, ge=16, description="examples longer than this (prompt + response) are left out")
    batch_size: int = Field(4, ge=1)
    learning_rate: float = Field(0.0005, gt=0)
    warmup_steps: int = Field(2, ge=0, description="linear warm-up, then a constant rate")
    save_steps: unique_list(Annotated[int, Field(ge=1)]) = Field(
        description="steps whose weights are saved as checkpoints (the last is the run's length)")
    seed: int = 0
    arms: dict[Annotated[str, StringConstraints(pattern=NAME_PATTERN)], ArmParams] = Field(
        description="arms keyed by a folder-safe name; each gives checkpoints ARM-stepN")
    evaluate: dict[choice_of(MODES), ModeSelection] = Field(min_length=1, description=(
        "per mode, the benchmark, prompt format and level the tuned checkpoints are generated and scored on"))


class AnalysisParams(StrictModel):
    """Paired statistics and tables."""
    seed: int = Field(0, description="bootstrap seed")
    n_resamples: int = Field(10000, ge=100, description="bootstrap resamples")
    three_mode: ThreeModeParams = ThreeModeParams()
    labels: str | None = Field(None, description=(
        "hand-labelled failures (JSONL) to measure the taxonomy classifier against (Cohen's kappa)"))


class Params(StrictModel):
    """tuningtax params.yaml: every top-level section is required, so DVC can track each one."""
    benchmarks: unique_list(BenchmarkName) = Field(
        description="benchmarks whose tasks are built and gold-gated")
    benchmark_mirror: str = Field(description="folder mirroring upstream benchmark files (checked by sha256); "
                                              "used before the network for data that cannot be derived")
    sandbox: SandboxParams
    # A mapping keyed by name, not a list: DVC addresses each checkpoint's params by its key, so adding or
    # inserting one leaves every other checkpoint's stages untouched.
    models: dict[Annotated[str, StringConstraints(pattern=NAME_PATTERN)], ModelEntry] = Field(
        description="checkpoints under study, keyed by a folder-safe name (it names folders, jobs and stages)")
    variants: unique_list(VariantName)
    generation: GenerationParams
    subset: SubsetParams
    runs: list[RunParams]
    levels: unique_list(LevelName) = Field(description=(
        "post-processing levels, each scored where it applies (a level names the modes it serves; opt-in levels "
        "such as first-line only the benchmarks that list them)"))
    pairs: list[PairParams]
    series: list[SeriesParams]
    analysis: AnalysisParams
    tuning: TuningParams | None = Field(None, description="the tuning lab; null or absent turns it off")


def json_schema() -> dict:
    schema = Params.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def validate_params(config: dict, source: str = "params.yaml") -> dict:
    """The config with every default filled in; UserError listing every problem with its field path and fix."""
    if not isinstance(config, dict):
        raise UserError(f"{source}: expected a mapping of settings, got {type(config).__name__}")
    try:
        filled = Params.model_validate(config).model_dump(mode="json")
    except ValidationError as err:
        found = problems(err, Params)
    else:
        filled = _skip_unscorable(filled, source)
        found = _semantic_problems(filled)
    if found:
        lines = [f"{source}: {len(found)} invalid setting(s):"] + [f"  - {p}" for p in found]
        lines.append("See schemas/params.schema.json for every field, its type and its meaning.")
        raise UserError("\n".join(lines))
    return filled


def _skip_unscorable(config: dict, source: str) -> dict:
    """Leave out the benchmarks (and their runs) whose language's toolchain this machine lacks, saying so: the
    SAFIM Java, C++ and C# splits are opt-in where their compilers are installed."""
    skipped = {name: why for name in config["benchmarks"] if (why := missing_toolchain(name))}
    for why in skipped.values():
        print(f"{source}: field benchmarks: skipping {why}", file=sys.stderr)
    if not skipped:
        return config
    return config | {"benchmarks": [b for b in config["benchmarks"] if b not in skipped],
                     "runs": [r for r in config["runs"] if r["benchmark"] not in skipped]}


def _semantic_problems(config: dict) -> list[str]:
    """Rules between fields: runs, pairs and views must refer to what is configured and fit together."""
    found = []
    names = list(config["models"])
    for i, run in enumerate(config["runs"]):
        bench = BENCHMARKS[run["benchmark"]]
        if bench.name not in config["benchmarks"]:
            found.append(f"field runs[{i}].benchmark: {bench.name!r} is not listed under benchmarks, "
                         "so it would be scored without passing the gold gate; add it there")
        for j, fmt in enumerate(run["formats"]):
            if bench.mode not in FORMATS[fmt].modes:
                found.append(f"field runs[{i}].formats[{j}]: prompt format {fmt!r} serves "
                             f"{', '.join(FORMATS[fmt].modes)} tasks, but {bench.name} is a {bench.mode} benchmark; "
                             f"use one of {', '.join(f for f in FORMATS if bench.mode in FORMATS[f].modes)}")
    known = set(names) | {model_key(n, v) for n in names for v in config["variants"]}
    for i, pair in enumerate(config["pairs"]):
        for role in ("base", "instruct"):
            if pair[role] not in known:
                found.append(f"field pairs[{i}].{role}: {pair[role]!r} is not a configured model; "
                             f"known: {', '.join(sorted(known))}")
    for i, series in enumerate(config["series"]):
        for j, name in enumerate([series["start"], *series["checkpoints"]]):
            if name not in known:
                where = "start" if j == 0 else f"checkpoints[{j - 1}]"
                found.append(f"field series[{i}].{where}: {name!r} is not a configured model")
    for mode in MODES:
        view = config["analysis"]["three_mode"][mode]
        if view is None:
            continue
        bench = BENCHMARKS[view["benchmark"]]
        if bench.mode != mode:
            found.append(f"field analysis.three_mode.{mode}.benchmark: {bench.name} is a {bench.mode} benchmark; "
                         f"pick a {mode} one: {', '.join(b.name for b in BENCHMARKS.values() if b.mode == mode)}")
        elif view["level"] not in levels_for(bench, config["levels"]):
            found.append(f"field analysis.three_mode.{mode}.level: {view['level']!r} is not scored for {bench.name}; "
                         f"pick one of {', '.join(levels_for(bench, config['levels']))}")
    found += _tuning_problems(config)
    if config["runs"] and not config["models"]:
        found.append("field runs: generation runs are configured but models is empty; add a model")
    return found


def _tuning_problems(config: dict) -> list[str]:
    from tuningtax.tune.plan import tuned_models

    tuning = config.get("tuning")
    if not tuning:
        return []
    found = []
    if tuning["start"] not in config["models"]:
        found.append(f"field tuning.start: {tuning['start']!r} is not a key of models; "
                     f"known: {', '.join(config['models'])}")
    for name in tuned_models(config):
        if name in config["models"]:
            found.append(f"field tuning.arms: checkpoint name {name!r} is also a key of models; rename the arm")
    for mode, view in tuning["evaluate"].items():
        bench = BENCHMARKS[view["benchmark"]]
        where = f"field tuning.evaluate.{mode}"
        if bench.mode != mode:
            found.append(f"{where}.benchmark: {bench.name} is a {bench.mode} benchmark; pick a {mode} one")
        elif bench.name not in config["benchmarks"]:
            found.append(f"{where}.benchmark: {bench.name!r} is not listed under benchmarks (gold gate); add it")
        elif bench.mode not in FORMATS[view["format"]].modes:
            found.append(f"{where}.format: {view['format']!r} does not serve {bench.mode} tasks")
        elif view["level"] not in levels_for(bench, config["levels"]):
            found.append(f"{where}.level: {view['level']!r} is not scored for {bench.name}; "
                         f"pick one of {', '.join(levels_for(bench, config['levels']))}")
    return found


def load_params(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    return validate_params(read_yaml(path), str(path))


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
