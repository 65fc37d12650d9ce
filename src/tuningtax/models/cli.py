"""``python -m tuningtax fetch-model``, and the model-spec look-up every model command shares.

The model spec comes inline (``--spec-json``, as Snakemake passes it from ``params:``) or from the
``models:`` mapping of a params file; code never re-reads the config behind Snakemake's back when the spec
is given inline.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from tuningtax.errors import UserError
from tuningtax.models.spec import ModelSpec

DEFAULT_ONNX_ROOT = Path("data/04_onnx")


def load_spec(name: str, params: Path = Path("params.yaml"), spec_json: str | None = None) -> ModelSpec:
    if spec_json is not None:
        try:
            data = json.loads(spec_json)
        except json.JSONDecodeError as err:
            raise UserError(f"--spec-json is not valid JSON: {err}") from None
        spec = ModelSpec.from_dict(data, where="--spec-json")
        if spec.name != name:
            raise UserError(f"--spec-json describes model {spec.name!r} but --model is {name!r}")
        return spec
    # tuningtax.yamlfile, not tuningtax.config: config imports every registry, which would put every
    # post-processing level into the code version of export and generation.
    from tuningtax.yamlfile import read_yaml

    if not params.is_file():
        raise UserError(f"{params} not found; pass --params PATH or --spec-json JSON")
    config = read_yaml(params)
    models = config.get("models") if isinstance(config, dict) else None
    if not isinstance(models, dict):
        raise UserError(f"{params}: needs a top-level 'models:' mapping of model name -> spec")
    if name not in models:
        raise UserError(f"{params}: no model named {name!r} under models:; known: {', '.join(map(str, models))}")
    entry, where = models[name], f"{params}: models.{name}"
    if isinstance(entry, dict) and "name" in entry:
        raise UserError(f"{where}: field name is the entry's key under models:; remove it")
    return ModelSpec.from_dict({"name": name, **entry} if isinstance(entry, dict) else entry, where=where)


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model name (its key under models:)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default params.yaml)")
    parser.add_argument("--spec-json", help="the model spec inline as JSON (overrides --params)")


def default_threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


def add_arguments_fetch_model(parser: argparse.ArgumentParser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--source-dir", type=Path,
                        help="a local checkpoint's files where the workflow's storage put them: checked there, and "
                             "the spec's source is recorded")


def run_fetch_model(args: argparse.Namespace) -> int:
    from tuningtax.models.sources import resolve_source

    spec = load_spec(args.model, args.params, args.spec_json)
    if args.source_dir is not None:
        if spec.source_kind != "local":
            raise UserError(f"--source-dir is for local checkpoints; model {spec.name} comes from {spec.source}")
        # A folder by definition: written as ./path, since a bare relative path reads as a hub id (owner/name).
        folder = args.source_dir.as_posix() if args.source_dir.is_absolute() else f"./{args.source_dir.as_posix()}"
        resolve_source(spec.model_copy(update={"source": folder}))
        print(Path(spec.source).as_posix())
        return 0
    resolved = Path(resolve_source(spec)).resolve()
    # The printed path is a tracked record: inside the project it is written relative to it, so checkouts in
    # other folders record the same bytes.
    if resolved.is_relative_to(Path.cwd().resolve()):
        resolved = resolved.relative_to(Path.cwd().resolve())
    print(resolved.as_posix())
    return 0
