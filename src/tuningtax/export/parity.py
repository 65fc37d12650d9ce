"""The greedy parity gate: PyTorch and ONNX Runtime greedy tokens on a fixed probe set, compared token by
token (batch 1 gates; one left-padded batch is recorded)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from tuningtax.models.families import Family, bos_ids, encode_text, fim_ids

MAX_NEW_TOKENS = 16
# (prefix, suffix): suffix None means a plain completion prompt. Short, so parity costs seconds.
PROBES: tuple[tuple[str, str | None], ...] = (
    ("def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n", None),
    ("def add(a, b):\n    return ", "\n\n\nprint(add(2, 3))\n"),
    ("import os\n\n\ndef list_python_files(folder):\n", None),
)


def probe_ids(family: Family, tokenizer: Any) -> list[list[int]]:
    """Token ids of the probe prompts: FIM ones in the family's PSM layout, plain ones as BOS? + text."""
    rows = []
    for prefix, suffix in PROBES:
        if suffix is not None and family.has_fim:
            rows.append(fim_ids(family, tokenizer, prefix, suffix))
        else:
            rows.append(bos_ids(family, tokenizer) + encode_text(tokenizer, prefix + (suffix or "")))
    return rows


def torch_greedy(hf_dir: Path, rows: list[list[int]], max_new_tokens: int, stop_ids: list[int],
                 pad_id: int) -> list[list[int]]:
    """The PyTorch reference: transformers generate, batch 1, pure greedy (the model's own generation_config,
    e.g. Qwen instruct's repetition_penalty, is deliberately not applied)."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    config = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=stop_ids,
                              pad_token_id=pad_id)
    out = []
    with torch.inference_mode():
        for row in rows:
            ids = torch.tensor([row], dtype=torch.long)
            gen = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config,
                                 use_model_defaults=False)
            out.append(gen[0, len(row):].tolist())
    del model
    gc.collect()
    return out


def _compare(reference: list[int], got: list[int]) -> int | None:
    """Index of the first differing token (None when identical)."""
    for i, (a, b) in enumerate(zip(reference, got)):
        if a != b:
            return i
    return None if len(reference) == len(got) else min(len(reference), len(got))


def parity_report(rows: list[list[int]], reference: list[list[int]], onnx: list[list[int]],
                  onnx_batched: list[list[int]]) -> dict[str, Any]:
    probes = []
    agreeing = total = 0
    for (prefix, suffix), ids, ref, got, batched in zip(PROBES, rows, reference, onnx, onnx_batched):
        first = _compare(ref, got)
        agreeing += len(ref) if first is None else first
        total += len(ref)
        probes.append({"prefix": prefix, "suffix": suffix, "prompt_ids": ids, "reference": ref,
                       "onnx": got, "identical": first is None, "first_divergence": first,
                       "batched_identical": batched == got})
    return {
        "probes": probes,
        "prompts_identical": sum(p["identical"] for p in probes) / len(probes),
        # Tokens after the first divergence are conditioned on different text: count the common prefix only.
        "token_agreement": agreeing / total if total else 1.0,
        "batched_identical": all(p["batched_identical"] for p in probes),
    }


def onnx_tokens(onnx_dir: Path, rows: list[list[int]], stop_ids: list[int], pad_id: int,
                 threads: int) -> tuple[list[list[int]], list[list[int]]]:
    """ORT greedy tokens per probe at batch 1 (the gate) and for all probes as one left-padded batch (recorded)."""
    from tuningtax.generate.engine import greedy, left_pad, load_session

    session = load_session(onnx_dir, threads=threads)
    single = [greedy(session, *left_pad([r], pad_id), MAX_NEW_TOKENS, stop_ids)[0] for r in rows]
    batched = greedy(session, *left_pad(rows, pad_id), MAX_NEW_TOKENS, stop_ids)
    del session
    gc.collect()
    return single, batched
