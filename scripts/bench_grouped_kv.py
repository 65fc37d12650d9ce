"""Batch decode speed of the exported graph with repeated KV heads (``export --no-grouped-kv``) against the
grouped-KV graph (the default export), fp32 and int8, side by side in one run on the prompts of
``bench generate``, in interleaved rounds so that drift on a shared machine hits both graphs alike.

    .venv/bin/python scripts/bench_grouped_kv.py [--rounds 2] [--batch-size 8] [--threads 2]

Missing exports are built first: the grouped ones in data/04_onnx/MODEL/{fp32,int8} (as the study builds
them) and the repeated-KV ones in data/04_onnx/MODEL-repeated-kv/{fp32,int8}. Prints decode tok/s per round
and the token agreement between the two graphs of each variant.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-prompts", type=int, default=8)
    parser.add_argument("--prompt-tokens", type=int, default=300)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    from transformers import AutoTokenizer

    from tuningtax.bench.generate import MODEL_NAME, ONNX_ROOT, agreement, run_ort, select_prompts
    from tuningtax.export import export
    from tuningtax.models.families import pad_token_id, stop_token_ids
    from tuningtax.models.sources import resolve_source
    from tuningtax.generate.engine import load_session
    from tuningtax.models.spec import OFFLINE_QWEN, ModelSpec

    spec = ModelSpec(name=MODEL_NAME, family="qwen2.5-coder", role="instruct", source=OFFLINE_QWEN, revision="0.9.0")
    roots = {"repeated": ONNX_ROOT.with_name(f"{MODEL_NAME}-repeated-kv"), "grouped": ONNX_ROOT}
    for name, root in roots.items():
        if not (root / "fp32" / "model.onnx").exists():
            export(spec, "fp32", root / "fp32", threads=args.threads, last_logits=True, grouped_kv=name == "grouped",
                   force=True)
        if not (root / "int8" / "model.onnx").exists():
            export(spec, "int8", root / "int8", threads=args.threads, fp32_dir=root / "fp32", force=True)

    tokenizer = AutoTokenizer.from_pretrained(resolve_source(spec))
    pad_id = pad_token_id(tokenizer, stop_token_ids("qwen2.5-coder", tokenizer))
    prompts = select_prompts(tokenizer, "qwen2.5-coder", args.n_prompts, args.prompt_tokens)
    print(f"{len(prompts)} prompts x {args.prompt_tokens} tokens, {args.max_new_tokens} new tokens, batch "
          f"{args.batch_size}, {args.threads} threads; load average {os.getloadavg()[0]:.2f} at start")
    tokens: dict[tuple[str, str], list[list[int]]] = {}
    for round_no in range(1, args.rounds + 1):
        for variant in ("fp32", "int8"):
            for name, root in roots.items():
                session = load_session(root / variant, threads=args.threads)
                run = run_ort(f"{variant}-{name}", session, prompts, args.batch_size, args.max_new_tokens, pad_id)
                del session
                gc.collect()
                tokens.setdefault((variant, name), run.tokens)
                print(f"round {round_no} {variant} {name:>8}: prefill {run.prefill_s / run.calls:6.2f} s/call, "
                      f"decode {run.decode_tok_s:7.1f} tok/s", flush=True)
    for variant in ("fp32", "int8"):
        same = agreement(tokens[(variant, "repeated")], tokens[(variant, "grouped")])
        print(f"{variant} grouped vs repeated: token agreement {same['token_agreement']:.3f}, prompts identical "
              f"{same['prompts_identical']:.3f}")
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
