"""``python -m tuningtax export``: a model spec to ONNX (fp32 or int8) with its parity check."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from tuningtax.models.cli import DEFAULT_ONNX_ROOT, add_spec_arguments, default_threads, load_spec
from tuningtax.models.variants import VARIANTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--variant", choices=VARIANTS, default="fp32")
    parser.add_argument("--out", type=Path, help=f"output folder (default {DEFAULT_ONNX_ROOT}/MODEL/VARIANT)")
    parser.add_argument("--fp32-dir", type=Path, help="int8 only: the fp32 export to quantize (default: OUT/../fp32)")
    parser.add_argument("--source-dir", type=Path,
                        help="fp32: read the checkpoint from this folder instead of the spec's source (a workflow "
                             "passes the files it declared, wherever storage put them)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default $OMP_NUM_THREADS or all)")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder")
    parser.add_argument("--last-logits", action="store_true",
                        help="fp32: slice the hidden state to the last position before the LM head (faster prefill, "
                             "no per-position logits); parity-checked like the plain export")
    parser.add_argument("--no-grouped-kv", dest="grouped_kv", action="store_false",
                        help="fp32: keep the exported repeat of KV heads instead of attending with grouped heads "
                             "(the default rewrite gives the same dot products; it exists for comparison)")


def run(args: argparse.Namespace) -> int:
    threads = args.threads or default_threads()
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # before torch is imported
    from tuningtax.export import export

    spec = load_spec(args.model, args.params, args.spec_json)
    out = args.out or DEFAULT_ONNX_ROOT / spec.name / args.variant
    import torch

    torch.set_num_threads(threads)
    report = export(spec, args.variant, out, threads=threads, fp32_dir=args.fp32_dir, force=args.force,
                    last_logits=args.last_logits, grouped_kv=args.grouped_kv, source_dir=args.source_dir)
    print(json.dumps({k: report[k] for k in ("variant", "prompts_identical", "token_agreement", "passed")}))
    return 0
