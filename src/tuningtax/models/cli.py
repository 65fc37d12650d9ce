"""``python -m tuningtax fetch-model`` and ``python -m tuningtax export``.

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
from tuningtax.models.variants import VARIANTS

DEFAULT_ONNX_ROOT = Path("data/03_onnx")


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
    # Read here rather than through tuningtax.config: that module imports every registry, which would put
    # every post-processing level into the code version of export and generation.
    import yaml

    if not params.is_file():
        raise UserError(f"{params} not found; pass --params PATH or --spec-json JSON")
    try:
        config = yaml.safe_load(params.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{params}: not valid YAML: {err}") from None
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


def run_fetch_model(args: argparse.Namespace) -> int:
    from tuningtax.models.offline_qwen import resolve_source

    spec = load_spec(args.model, args.params, args.spec_json)
    resolved = Path(resolve_source(spec)).resolve()
    # The printed path is a tracked record: inside the project it is written relative to it, so checkouts in
    # other folders record the same bytes.
    if resolved.is_relative_to(Path.cwd().resolve()):
        resolved = resolved.relative_to(Path.cwd().resolve())
    print(resolved.as_posix())
    return 0


def add_arguments_export(parser: argparse.ArgumentParser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--variant", choices=VARIANTS, default="fp32")
    parser.add_argument("--out", type=Path, help=f"output folder (default {DEFAULT_ONNX_ROOT}/MODEL/VARIANT)")
    parser.add_argument("--fp32-dir", type=Path, help="int8 only: the fp32 export to quantize (default: OUT/../fp32)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default $OMP_NUM_THREADS or all)")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder")
    parser.add_argument("--last-logits", action="store_true",
                        help="fp32: slice the hidden state to the last position before the LM head (faster prefill, "
                             "no per-position logits); parity-checked like the plain export")
    parser.add_argument("--no-grouped-kv", dest="grouped_kv", action="store_false",
                        help="fp32: keep the exported repeat of KV heads instead of attending with grouped heads "
                             "(the default rewrite gives the same dot products; it exists for comparison)")


def run_export(args: argparse.Namespace) -> int:
    threads = args.threads or default_threads()
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # before torch is imported
    from tuningtax.models.export import export

    spec = load_spec(args.model, args.params, args.spec_json)
    out = args.out or DEFAULT_ONNX_ROOT / spec.name / args.variant
    import torch

    torch.set_num_threads(threads)
    report = export(spec, args.variant, out, threads=threads, fp32_dir=args.fp32_dir, force=args.force,
                    last_logits=args.last_logits, grouped_kv=args.grouped_kv)
    print(json.dumps({k: report[k] for k in ("variant", "prompts_identical", "token_agreement", "passed")}))
    return 0
