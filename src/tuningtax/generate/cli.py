"""`python -m tuningtax generate --model NAME --variant V --tasks T --format F --out C`"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tuningtax.errors import UserError
from tuningtax.models.cli import DEFAULT_ONNX_ROOT, add_spec_arguments, default_threads, load_spec
from tuningtax.models.variants import VARIANTS
from tuningtax.tasks.schema import DEFAULT_MAX_NEW_TOKENS, read_tasks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--variant", default="fp32", choices=VARIANTS)
    parser.add_argument("--onnx-dir", type=Path, help="exported model folder (default data/04_onnx/NAME/VARIANT)")
    parser.add_argument("--tasks", required=True, type=Path)
    parser.add_argument("--format", required=True, dest="prompt_format", help="prompt format (tuningtax.prompts)")
    parser.add_argument("--out", required=True, type=Path, help="completions JSONL (appended per batch; resumable)")
    parser.add_argument("--batch-size", type=int, default=8, help="rows decoded together (slots of the scheduler)")
    parser.add_argument("--scheduler", default="continuous", choices=["continuous", "static", "task-order"],
                        help="continuous: a finished row's slot takes the next prompt; static: fixed batches. Both "
                             "take prompts longest first and give the same tokens; on CUDA static is used "
                             "(it keeps the KV cache on the device); task-order: static batches in task order, the "
                             "benchmark's baseline")
    parser.add_argument("--no-prefix-reuse", action="store_true",
                        help="prefill every prompt in full instead of reusing a shared head's KV cache")
    parser.add_argument("--max-new-tokens", type=int, help="default by mode: " + json.dumps(DEFAULT_MAX_NEW_TOKENS))
    parser.add_argument("--max-prompt-tokens", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--provider", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--stats-out", type=Path,
                        help="write start-up parts, timings and schedule figures as JSON (for benchmarks: it holds "
                             "timings, so never make it a tracked output)")


def run(args: argparse.Namespace) -> int:
    clock = [time.perf_counter()]

    def lap() -> float:  # seconds since the previous lap: the start-up line below
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    from tuningtax.generate.core import GenerationConfig, generate_to_file
    from tuningtax.models.families import get_family, pad_token_id, stop_token_ids
    from tuningtax.generate.engine import load_session, load_tokenizer
    from tuningtax.prompts import render

    imports_s = lap()
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    spec = load_spec(args.model, args.params, args.spec_json)
    family = get_family(spec.family)
    onnx_dir = args.onnx_dir or DEFAULT_ONNX_ROOT / spec.name / args.variant
    if not (onnx_dir / "model.onnx").exists():
        raise UserError(f"{onnx_dir}/model.onnx not found; run `python -m tuningtax export --model {spec.name} "
                        f"--variant {args.variant}` first")
    tasks = list(read_tasks(args.tasks).values())
    modes = {t.mode for t in tasks}
    if args.max_new_tokens is None and len(modes) > 1:
        raise UserError(f"{args.tasks}: mixes modes {sorted(modes)}; pass --max-new-tokens")
    max_new = args.max_new_tokens or DEFAULT_MAX_NEW_TOKENS[modes.pop()]
    tasks_s = lap()
    session = load_session(onnx_dir, threads=args.threads, provider=args.provider)
    session_s = lap()
    tokenizer = load_tokenizer(onnx_dir)
    tokenizer_s = lap()
    prompts = [render(args.prompt_format, t, tokenizer, family, args.max_prompt_tokens, role=spec.role) for t in tasks]
    rendering_s = lap()
    first_prefill_unix = time.time()
    print(f"start-up: imports {imports_s:.2f} s, spec and tasks {tasks_s:.2f} s, ONNX Runtime session {session_s:.2f} s, tokenizer {tokenizer_s:.2f} s, "
          f"{len(prompts)} prompts rendered in {rendering_s:.2f} s", file=sys.stderr)
    stops = stop_token_ids(family, tokenizer)
    config = GenerationConfig(
        model=spec.name, variant=args.variant, family=spec.family, role=spec.role, prompt_format=args.prompt_format,
        batch_size=args.batch_size, scheduler=("static" if args.provider == "cuda" and args.scheduler == "continuous"
                                              else args.scheduler),
        reuse_prefix=not args.no_prefix_reuse and args.scheduler == "continuous" and args.provider != "cuda",
        max_new_tokens=max_new, max_prompt_tokens=args.max_prompt_tokens,
        stop_token_ids=tuple(stops), pad_token_id=pad_token_id(tokenizer, stops),
        extra={"source": spec.source, "revision": spec.revision, "provider": args.provider},
    )
    figures = generate_to_file(tasks, prompts, tokenizer, session, config, args.out, progress=not args.no_progress)
    print(f"{args.out}: {len(tasks)} tasks, {figures['new_tokens']} new tokens in {figures['seconds']:.1f} s "
          f"({figures['tokens_per_s']:.1f} tok/s)", file=sys.stderr)
    work = figures["schedule"]
    print(f"schedule ({config.scheduler}, batch {config.batch_size}): {work['prefill_positions']} prefill positions for "
          f"{work['prompt_tokens']} prompt tokens ({work['reused_prefix_tokens']} reused from a shared prefix), "
          f"{work['decode_row_steps']} decode row-steps of which {work['useful_decode_row_steps']} recorded; "
          f"padding and idle share {100 * work['padding_share']:.1f} %", file=sys.stderr)
    if args.stats_out:
        from tuningtax.jsonl import write_text_atomic

        startup = {"imports_s": imports_s, "spec_and_tasks_s": tasks_s, "session_s": session_s,
                   "tokenizer_s": tokenizer_s, "rendering_s": rendering_s}
        write_text_atomic(args.stats_out, json.dumps({
            "tasks": len(tasks), "startup": startup, "first_prefill_unix": first_prefill_unix,
            "generation_s": figures["seconds"], "new_tokens": figures["new_tokens"], "schedule": work,
            "finished_unix": time.time()}, indent=1) + "\n")
    return 0
