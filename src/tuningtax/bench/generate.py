"""``python -m tuningtax bench generate``: greedy decoding speed of transformers eager vs ONNX Runtime fp32/int8,
measured side by side in one run on the same prompts.

Engines (all greedy argmax, no stop tokens, so every row decodes exactly ``--max-new-tokens`` tokens):
  eager        transformers ``generate``, fp32, ``attn_implementation="eager"``, batch 1
  ort-fp32-b1  the project's numpy greedy loop (``engine.greedy``) over the fp32 export, batch 1
  ort-fp32-bN  the same, N prompts per call (``--batch-size``, default 8)
  ort-int8-b1, ort-int8-bN  the same over the int8 export (export.INT8_SCHEME)

Prompts: ``--n-prompts`` humaneval-single-line tasks rendered with fim-psm, one task per HumanEval problem
(its longest), keeping problems whose prompt has at least ``--prompt-tokens`` tokens and cutting each to
exactly that many (so batches carry no padding and every call sees the same prompt length).

Definitions (per engine, summed over its calls):
  prefill_s   from the start of a call to the end of its first forward pass (for transformers: until its
              streamer receives the first new token, i.e. including that argmax)
  decode_s    from the end of the first forward pass to the call's return
  decode_tok_s = rows x (max_new_tokens - 1) / decode_s   (tokens 2..N; token 1 comes from the prefill)
  e2e_tok_s   = rows x max_new_tokens / (prefill_s + decode_s)
  token_agreement  position-wise fraction of identical tokens vs the reference engine (eager when run)
  prompts_identical  fraction of prompts whose whole token sequence equals the reference's
Bandwidth floor (batch 1 decode): every decoded token reads each weight once, except embedding tables, which
are only gathered (one row per token): weight_bytes = initializer bytes minus those consumed only by Gather.
Copy bandwidth = 2 x bytes / time of a numpy copy (read + write, the STREAM convention), best of
``--copy-repeats`` with 1 and ``--threads`` threads, the higher kept (a higher bandwidth = a stricter floor).
floor_tok_s = bandwidth / weight_bytes; floor_tok_s_1_thread uses the 1-thread copy (the convention of the
figures the study's issue quotes: 26-30 GB/s, fp32 floor 13-15 tok/s), and both percentages are reported.
KV-cache and activation traffic are ignored (about 7 MB per token at 300 tokens for the 0.5B model, under
0.5 % of its fp32 weights).
Each engine first runs one untimed 2-token warm-up at its batch size on a short prompt.
int8 against fp32: after the engines above, ``--ratio-rounds`` paired rounds at each batch size where both
variants ran, both sessions loaded, the two variants back to back in each round and the first of the pair
alternating between rounds (load on this shared machine drifts over minutes, and the engines above run
minutes apart). Each round's int8/fp32 decode ratio is recorded; the goals take the median over rounds, and
every round must reproduce its engine's tokens exactly.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tuningtax.errors import UserError
from tuningtax.models.spec import OFFLINE_QWEN, ModelSpec

MODEL_NAME = "qwen2.5-coder-0.5b-instruct"
ONNX_ROOT = Path("data/04_onnx") / MODEL_NAME  # the study's exports, read if present, never written
BENCH_ONNX_ROOT = Path(".cache/tuningtax/bench/onnx") / MODEL_NAME  # where a missing export is made
BENCHMARK = "humaneval-single-line"
PROMPT_FORMAT = "fim-psm"
WARMUP_TOKENS = 16
GOAL_BATCH_VS_EAGER, GOAL_INT8_VS_FP32, GOAL_FLOOR = 4.0, 2.0, 0.6


def log(msg: str) -> None:
    print(f"[bench generate] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Prompt:
    task_id: str
    input_ids: list[int]
    sha256: str


@dataclass
class Run:
    """One engine's measurements, summed over its calls."""
    engine: str
    tokens: list[list[int]]
    prefill_s: float
    decode_s: float
    calls: int

    @property
    def decode_tok_s(self) -> float | None:
        """Tokens 2..N of every row over the decode time (token 1 comes from the prefill); the rows are of
        equal length (``_check_lengths``)."""
        new = len(self.tokens[0]) if self.tokens else 0
        return len(self.tokens) * (new - 1) / self.decode_s if self.decode_s > 0 else None

    @property
    def e2e_tok_s(self) -> float:
        return sum(map(len, self.tokens)) / (self.prefill_s + self.decode_s)


# ---------------------------------------------------------------------------------------------- prompts

def select_prompts(tokenizer: Any, family: str, n: int, prompt_tokens: int) -> list[Prompt]:
    from tuningtax.prompts import render
    from tuningtax.tasks.registry import build_tasks

    longest: dict[str, Any] = {}  # source problem -> its task with the most prefix + suffix text
    for t in build_tasks(BENCHMARK):
        best = longest.get(t.source_id)
        if best is None or len(t.prompt) + len(t.suffix) > len(best.prompt) + len(best.suffix):
            longest[t.source_id] = t
    full = [(len(render(PROMPT_FORMAT, t, tokenizer, family, 1 << 20).input_ids), t) for t in longest.values()]
    chosen = [t for length, t in full if length >= prompt_tokens][:n]
    if len(chosen) < n:
        raise UserError(f"only {len(chosen)} {BENCHMARK} problems have fim-psm prompts of >= {prompt_tokens} "
                        f"tokens; lower --prompt-tokens or --n-prompts")
    out = []
    for t in chosen:
        r = render(PROMPT_FORMAT, t, tokenizer, family, prompt_tokens)
        out.append(Prompt(t.task_id, r.input_ids, r.sha256))
    return out


# ------------------------------------------------------------------------------------------- bandwidth

def copy_bandwidth(mb: int, repeats: int, threads: int) -> dict[str, Any]:
    """GB/s of a numpy copy of ``mb`` MB, counted as read + write; numpy's copyto releases the GIL, so
    ``threads`` Python threads each copying a slice run in parallel."""
    n = mb * (1 << 20) // 8
    src = np.ones(n, dtype=np.float64)  # touched: no lazily mapped zero pages
    dst = np.empty_like(src)
    np.copyto(dst, src)

    def best(k: int) -> float:
        bounds = np.linspace(0, n, k + 1).astype(int)
        jobs = [lambda a=a, b=b: np.copyto(dst[a:b], src[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        times = []
        for _ in range(repeats):
            workers = [threading.Thread(target=j) for j in jobs]
            start = time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            times.append(time.perf_counter() - start)
        return 2 * src.nbytes / min(times) / 1e9

    result = {"array_mb": mb, "repeats": repeats, "gb_s_1_thread": round(best(1), 2),
              "gb_s_threads": round(best(max(1, threads)), 2), "threads": threads}
    result["gb_s"] = max(result["gb_s_1_thread"], result["gb_s_threads"])
    return result


def weight_bytes(onnx_dir: Path) -> dict[str, int]:
    """Initializer bytes of ``onnx_dir/model.onnx`` and those read per decoded token (all but Gather-only ones)."""
    import onnx
    from onnx import helper

    model = onnx.load(os.fspath(onnx_dir / "model.onnx"), load_external_data=False)
    consumers: dict[str, set[str]] = {}
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            consumers.setdefault(name, set()).add(node.op_type if not (node.op_type == "Gather" and i == 0)
                                                  else "Gather-data")
    total = gathered = 0
    for init in model.graph.initializer:
        size = int(np.prod(init.dims, dtype=np.int64)) * helper.tensor_dtype_to_np_dtype(init.data_type).itemsize
        total += size
        if consumers.get(init.name) == {"Gather-data"}:
            gathered += size
    return {"initializer_bytes": total, "gather_only_bytes": gathered, "bytes_per_token": total - gathered}


# ---------------------------------------------------------------------------------------------- engines

class _TimedSession:
    """Proxy of an ORT session recording when each ``run`` returns, so the production greedy loop is timed as is."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.run_ends: list[float] = []

    def get_inputs(self) -> Any:
        return self._session.get_inputs()

    def get_outputs(self) -> Any:
        return self._session.get_outputs()

    def get_providers(self) -> Any:  # none shown for a session without them: greedy then takes the host loop
        return self._session.get_providers() if hasattr(self._session, "get_providers") else []

    def io_binding(self) -> Any:
        return self._session.io_binding()

    def run(self, names: Any, feed: Any) -> Any:
        out = self._session.run(names, feed)
        self.run_ends.append(time.perf_counter())
        return out

    def run_with_iobinding(self, binding: Any) -> None:
        # The logits are bound to the host, so the run returns once the device has finished the step: the
        # stamp marks the step's end, as with run().
        self._session.run_with_iobinding(binding)
        self.run_ends.append(time.perf_counter())


def _batches(prompts: Sequence[Prompt], size: int) -> list[list[list[int]]]:
    rows = [p.input_ids for p in prompts]
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def run_ort(engine: str, session: Any, prompts: Sequence[Prompt], batch: int, max_new: int, pad_id: int) -> Run:
    from tuningtax.generate.engine import greedy, left_pad

    greedy(session, *left_pad([prompts[0].input_ids[:WARMUP_TOKENS]] * batch, pad_id), 2, [])
    tokens: list[list[int]] = []
    prefill = decode = 0.0
    batches = _batches(prompts, batch)
    for rows in batches:
        timed = _TimedSession(session)
        ids, mask = left_pad(rows, pad_id)
        start = time.perf_counter()
        out = greedy(timed, ids, mask, max_new, [])  # no stop ids: every row decodes max_new tokens
        end = time.perf_counter()
        prefill += timed.run_ends[0] - start
        decode += end - timed.run_ends[0]
        tokens += out
        log(f"{engine}: {len(tokens)}/{len(prompts)} prompts")
    return _check_lengths(Run(engine, tokens, prefill, decode, len(batches)), max_new)


def run_eager(hf_dir: Path, prompts: Sequence[Prompt], max_new: int, pad_id: int, threads: int) -> Run:
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig
    from transformers.generation.streamers import BaseStreamer

    class Clock(BaseStreamer):
        """generate() hands the prompt, then each new token, to its streamer: stamp each hand-over."""

        def __init__(self) -> None:
            self.stamps: list[float] = []

        def put(self, value: Any) -> None:
            self.stamps.append(time.perf_counter())

        def end(self) -> None:
            pass

    torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, attn_implementation="eager").eval()
    # use_model_defaults=False keeps the model's repetition penalty out, but generate() still fills a None
    # eos_token_id from the model's generation_config (4.57 legacy branch): clear it there, so nothing stops a row.
    model.generation_config.eos_token_id = None
    config = GenerationConfig(do_sample=False, max_new_tokens=max_new, eos_token_id=None, pad_token_id=pad_id)

    def generate(row: list[int], n: int, clock: Clock | None) -> list[int]:
        ids = torch.tensor([row], dtype=torch.long)
        cfg = config if n == max_new else GenerationConfig(**{**config.to_diff_dict(), "max_new_tokens": n})
        out = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=cfg,
                             use_model_defaults=False, streamer=clock)
        return out[0, len(row):].tolist()

    tokens: list[list[int]] = []
    prefill = decode = 0.0
    with torch.inference_mode():
        generate(prompts[0].input_ids[:WARMUP_TOKENS], 2, None)
        for p in prompts:
            clock = Clock()
            start = time.perf_counter()
            tokens.append(generate(p.input_ids, max_new, clock))
            end = time.perf_counter()
            prefill += clock.stamps[1] - start
            decode += end - clock.stamps[1]
            log(f"eager: {len(tokens)}/{len(prompts)} prompts")
    del model
    gc.collect()
    return _check_lengths(Run("eager", tokens, prefill, decode, len(prompts)), max_new)


def ratio_rounds(sessions: dict[str, Any], prompts: Sequence[Prompt], batches: Sequence[int], rounds: int,
                 max_new: int, pad_id: int, runs: dict[str, Run]) -> dict[str, dict[str, Any]]:
    """int8/fp32 decode ratios from ``rounds`` paired rounds per batch size: fp32 then int8 in even rounds,
    int8 then fp32 in odd ones, so a drift in machine load favours neither. Each round must give exactly the
    tokens of its engine's main run (``runs``): a ratio is only meaningful for identical work."""
    out: dict[str, dict[str, Any]] = {}
    for batch in batches:
        per_round = []
        for i in range(rounds):
            order = ("fp32", "int8") if i % 2 == 0 else ("int8", "fp32")
            speeds = {}
            for variant in order:
                engine = f"ort-{variant}-b{batch}"
                run = run_ort(f"{engine} round {i + 1}/{rounds}", sessions[variant], prompts, batch, max_new, pad_id)
                if run.tokens != runs[engine].tokens:
                    raise RuntimeError(f"{engine}: round {i + 1} decoded other tokens than its main run; "
                                       f"ONNX Runtime is not deterministic here, so no ratio is reported")
                speeds[variant] = run.decode_tok_s
            per_round.append({"first": order[0],
                              "fp32_decode_tok_s": _r(speeds["fp32"], 2), "int8_decode_tok_s": _r(speeds["int8"], 2),
                              "ratio": _r(speeds["int8"] / speeds["fp32"], 3)})
        ratios = [r["ratio"] for r in per_round]
        # All three at the same precision, so min <= median <= max holds as printed.
        out[f"b{batch}"] = {"rounds": per_round, "median": _r(statistics.median(ratios), 2),
                            "min": _r(min(ratios), 2), "max": _r(max(ratios), 2)}
    return out


def _check_lengths(run: Run, max_new: int) -> Run:
    # Equal token counts are what make the engines' tok/s comparable: a silent early stop would inflate one.
    bad = sorted({len(t) for t in run.tokens} - {max_new})
    if bad:
        raise RuntimeError(f"{run.engine}: rows of {bad} new tokens, expected exactly {max_new}")
    return run


# ---------------------------------------------------------------------------------------------- report

def agreement(reference: list[list[int]], got: list[list[int]]) -> dict[str, Any]:
    same = total = 0
    first: list[int | None] = []
    for ref, row in zip(reference, got, strict=True):
        width = max(len(ref), len(row))
        hits = [i < len(ref) and i < len(row) and ref[i] == row[i] for i in range(width)]
        same += sum(hits)
        total += width
        first.append(None if all(hits) else hits.index(False))
    return {"token_agreement": same / total if total else 1.0,
            "prompts_identical": sum(f is None for f in first) / len(first) if first else 1.0,
            "first_divergence": first}


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


def engine_record(run: Run, batch: int, variant: str, n_prompt_tokens: int, reference: Run, eager: Run | None,
                  floor: dict[str, Any] | None) -> dict[str, Any]:
    decode_tok_s, e2e = run.decode_tok_s, run.e2e_tok_s
    rec: dict[str, Any] = {
        "engine": run.engine,
        "runtime": "transformers" if run.engine == "eager" else "onnxruntime",
        "variant": variant,
        "batch_size": batch,
        "calls": run.calls,
        "prefill_s_total": _r(run.prefill_s),
        "prefill_s_per_call": _r(run.prefill_s / run.calls),
        "prefill_tok_s": _r(n_prompt_tokens / run.prefill_s, 1),
        "decode_s_total": _r(run.decode_s),
        "decode_tok_s": _r(decode_tok_s, 2),
        "e2e_tok_s": _r(e2e, 2),
    }
    if eager is not None:
        rec["decode_x_eager"] = _r(decode_tok_s / eager.decode_tok_s if decode_tok_s else None, 2)
        rec["e2e_x_eager"] = _r(e2e / eager.e2e_tok_s, 2)
        rec["prefill_x_eager"] = _r(eager.prefill_s / run.prefill_s, 2)  # > 1 = faster prefill than eager
    rec.update(agreement(reference.tokens, run.tokens))
    rec["token_agreement"] = _r(rec["token_agreement"], 4)
    rec["prompts_identical"] = _r(rec["prompts_identical"], 4)
    if floor is not None:
        rec["weight_bytes_per_token"] = floor["bytes_per_token"]
        rec["floor_tok_s"] = _r(floor["floor_tok_s"], 2)
        rec["floor_tok_s_1_thread"] = _r(floor["floor_tok_s_1_thread"], 2)
        at_batch_1 = batch == 1 and decode_tok_s
        rec["pct_of_floor"] = _r(100 * decode_tok_s / floor["floor_tok_s"], 1) if at_batch_1 else None
        rec["pct_of_floor_1_thread"] = _r(100 * decode_tok_s / floor["floor_tok_s_1_thread"], 1) if at_batch_1 else None
    return rec


def goals(records: dict[str, dict[str, Any]], batch: int,
          rounds: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The issue's targets, each evaluated only when the engines it needs ran (met None otherwise); the int8
    ratios from the paired ``rounds`` (``ratio_rounds``) where they ran, else from the single engine runs."""
    def get(engine: str, key: str) -> Any:
        return records.get(engine, {}).get(key)

    def ratio(a: str, b: str) -> float | None:
        x, y = get(a, "decode_tok_s"), get(b, "decode_tok_s")
        return round(x / y, 2) if x and y else None

    big = f"b{batch}"
    out = []
    x = get(f"ort-fp32-{big}", "decode_x_eager")
    same = get(f"ort-fp32-{big}", "prompts_identical") if "eager" in records else None
    out.append({"goal": f"ORT fp32 batch {batch} decode >= {GOAL_BATCH_VS_EAGER:g}x eager, tokens identical to eager",
                "value": x, "prompts_identical": same,
                "met": None if x is None or same is None else bool(x >= GOAL_BATCH_VS_EAGER and same == 1.0)})
    for b in ("b1", big):
        single = ratio(f"ort-int8-{b}", f"ort-fp32-{b}")
        paired = (rounds or {}).get(b)
        x = paired["median"] if paired else single
        how = f"median of {len(paired['rounds'])} paired rounds" if paired else "single run"
        out.append({"goal": f"ORT int8 {b} decode >= {GOAL_INT8_VS_FP32:g}x ORT fp32 {b} ({how}; pass@1 parity: "
                            f"measured elsewhere)", "value": x, "single_run_value": single,
                    "met": None if x is None else bool(x >= GOAL_INT8_VS_FP32)})
    for v in ("fp32", "int8"):
        for key, copy in (("pct_of_floor", "best copy bandwidth"), ("pct_of_floor_1_thread", "1-thread copy")):
            x = get(f"ort-{v}-b1", key)
            out.append({"goal": f"ORT {v} batch 1 decode >= {100 * GOAL_FLOOR:g} % of the bandwidth floor ({copy})",
                        "value": x, "met": None if x is None else bool(x >= 100 * GOAL_FLOOR)})
    return out


def print_table(report: dict[str, Any]) -> None:
    cols = [("engine", "engine", "{}"), ("batch", "batch_size", "{}"),
            ("prefill s/call", "prefill_s_per_call", "{:.3f}"),
            ("prefill tok/s", "prefill_tok_s", "{:.1f}"), ("decode tok/s", "decode_tok_s", "{:.2f}"),
            ("e2e tok/s", "e2e_tok_s", "{:.2f}"), ("decode x eager", "decode_x_eager", "{:.2f}"),
            ("prefill x eager", "prefill_x_eager", "{:.2f}"), ("tok agree", "token_agreement", "{:.3f}"),
            ("prompts same", "prompts_identical", "{:.3f}"), ("floor tok/s", "floor_tok_s", "{:.1f}"),
            ("% floor", "pct_of_floor", "{:.1f}"), ("% 1-thread floor", "pct_of_floor_1_thread", "{:.1f}")]
    table = [[h for h, _, _ in cols]]
    for rec in report["engines"]:
        table.append([("-" if rec.get(k) is None else f.format(rec[k])) for _, k, f in cols])
    widths = [max(len(r[i]) for r in table) for i in range(len(cols))]
    s = report["setup"]
    print(f"{s['n_prompts']} prompts x {s['prompt_tokens']} tokens ({PROMPT_FORMAT}, {BENCHMARK}), "
          f"{s['max_new_tokens']} new tokens, no stop tokens, {s['threads']} threads, {s['cpu_count']} CPUs; "
          f"reference for agreement: {report['reference_engine']}; load average (1 min) {s['loadavg_1_5_15_start'][0]} "
          f"at start, {s['loadavg_1_5_15_end'][0]} at end")
    bw = report["bandwidth"]
    if bw:
        print(f"copy bandwidth {bw['gb_s']:.1f} GB/s (1 thread {bw['gb_s_1_thread']:.1f}, {bw['threads']} threads "
              f"{bw['gb_s_threads']:.1f}; read+write of {bw['array_mb']} MB, best of {bw['repeats']})")
    for row in table:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    for batch, paired in report["int8_vs_fp32_rounds"].items():
        each = ", ".join(f"{r['ratio']:.2f} ({r['first']} first)" for r in paired["rounds"])
        print(f"int8/fp32 decode {batch}, paired rounds: {each}; median {paired['median']:.2f}")
    for g in report["goals"]:
        status = {True: "MET", False: "NOT MET", None: "not measured"}[g["met"]]
        print(f"[{status}] {g['goal']}: {g['value']}")


# ------------------------------------------------------------------------------------------------ main

def _ensure_export(spec: ModelSpec, variant: str, out: Path, threads: int, fp32_dir: Path) -> None:
    from tuningtax.export import export

    if (out / "model.onnx").exists():
        return
    log(f"{out} missing: exporting {variant}")
    if variant == "fp32":
        export(spec, "fp32", out, threads=threads, last_logits=True)  # as the study exports (params.yaml)
    else:
        export(spec, "int8", out, threads=threads, fp32_dir=fp32_dir)


def engine_names(batch: int) -> list[str]:
    return ["eager", "ort-fp32-b1", f"ort-fp32-b{batch}", "ort-int8-b1", f"ort-int8-b{batch}"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuningtax bench generate",
                                     description=(__doc__ or "").splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--hf-dir", type=Path, help="HF folder for eager (default: the offline Qwen, converted)")
    parser.add_argument("--fp32-dir", type=Path, help="fp32 export (default: the study's if present, else one "
                                                      f"made in {BENCH_ONNX_ROOT})")
    parser.add_argument("--int8-dir", type=Path, help="int8 export (default as for --fp32-dir)")
    parser.add_argument("--family", default="qwen2.5-coder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-prompts", type=int, default=8)
    parser.add_argument("--prompt-tokens", type=int, default=300)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8, help="the batched ORT engines' batch size")
    parser.add_argument("--engines", help="comma-separated subset of: eager, ort-fp32-b1, ort-fp32-bN, "
                                          "ort-int8-b1, ort-int8-bN (default all)")
    parser.add_argument("--copy-mb", type=int, default=1024, help="array size for the copy-bandwidth probe")
    parser.add_argument("--copy-repeats", type=int, default=5)
    parser.add_argument("--ratio-rounds", type=int, default=3,
                        help="paired int8/fp32 rounds per batch size after the engines (0: ratios from one run each)")
    parser.add_argument("--out", type=Path, default=Path(".cache/tuningtax/bench/generate.json"))
    args = parser.parse_args(argv)
    # DVC tracks data/04_onnx: the bench reads the study's exports there but makes missing ones elsewhere.
    for variant in ("fp32", "int8"):
        if getattr(args, f"{variant}_dir") is None:
            study = ONNX_ROOT / variant
            setattr(args, f"{variant}_dir", study if (study / "model.onnx").exists() else BENCH_ONNX_ROOT / variant)
    if args.max_new_tokens < 2 or args.n_prompts < 1 or args.batch_size < 1 or args.threads < 1:
        raise UserError("--max-new-tokens must be >= 2; --n-prompts, --batch-size and --threads >= 1")
    if args.ratio_rounds < 0:
        raise UserError("--ratio-rounds must be >= 0")
    known = engine_names(args.batch_size)
    engines = known if not args.engines else [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in known]
    if unknown or not engines:
        raise UserError(f"unknown engine(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}")
    engines = [e for e in known if e in engines]  # canonical order

    if args.hf_dir is None:
        from tuningtax.models.sources import resolve_source

        spec = ModelSpec(name=MODEL_NAME, family=args.family, role="instruct", source=OFFLINE_QWEN, revision="0.9.0")
        hf_dir = resolve_source(spec)
    else:
        hf_dir = args.hf_dir.resolve()
        spec = ModelSpec(name=hf_dir.name, family=args.family, role="instruct", source=str(hf_dir))
    from transformers import AutoTokenizer

    from tuningtax.models.families import pad_token_id, stop_token_ids

    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    stops = stop_token_ids(args.family, tokenizer)
    pad_id = pad_token_id(tokenizer, stops)
    prompts = select_prompts(tokenizer, args.family, args.n_prompts, args.prompt_tokens)
    n_prompt_tokens = sum(len(p.input_ids) for p in prompts)
    log(f"{len(prompts)} prompts of {args.prompt_tokens} tokens; engines: {', '.join(engines)}")

    dirs = {"fp32": args.fp32_dir, "int8": args.int8_dir}
    need_int8 = any(e.startswith("ort-int8") for e in engines)
    # int8 is quantized from the fp32 export, so fp32 is needed also when only a missing int8 is asked for.
    if any(e.startswith("ort-fp32") for e in engines) or (need_int8 and not (args.int8_dir / "model.onnx").exists()):
        _ensure_export(spec, "fp32", args.fp32_dir, args.threads, args.fp32_dir)
    if need_int8:
        _ensure_export(spec, "int8", args.int8_dir, args.threads, args.fp32_dir)

    bandwidth: dict[str, Any] = {}
    floors: dict[str, dict[str, Any]] = {}
    if any(e.startswith("ort-") for e in engines):
        log(f"copy bandwidth probe ({args.copy_mb} MB)")
        bandwidth = copy_bandwidth(args.copy_mb, args.copy_repeats, args.threads)
        for variant in ("fp32", "int8"):
            if any(e.startswith(f"ort-{variant}") for e in engines):
                wb = weight_bytes(dirs[variant])
                floors[variant] = {**wb, "floor_tok_s": bandwidth["gb_s"] * 1e9 / wb["bytes_per_token"],
                                   "floor_tok_s_1_thread": bandwidth["gb_s_1_thread"] * 1e9 / wb["bytes_per_token"]}

    load_start = os.getloadavg()  # recorded: other processes on the machine skew every figure below
    # ORT first, eager last: once torch's OpenMP pool exists its spinning threads can steal cores from ORT.
    runs: dict[str, Run] = {}
    paired_batches = [b for b in dict.fromkeys((1, args.batch_size))
                      if f"ort-fp32-b{b}" in engines and f"ort-int8-b{b}" in engines] if args.ratio_rounds else []
    sessions: dict[str, Any] = {}  # fp32's is kept for the paired rounds only: it is 2.5 GB for the 0.5B model
    for variant in ("fp32", "int8"):
        wanted = [e for e in engines if e.startswith(f"ort-{variant}")]
        if not wanted:
            continue
        from tuningtax.generate.engine import load_session

        sessions[variant] = load_session(dirs[variant], threads=args.threads)
        for e in wanted:
            batch = int(e.rsplit("-b", 1)[1])
            runs[e] = run_ort(e, sessions[variant], prompts, batch, args.max_new_tokens, pad_id)
        if not paired_batches:
            del sessions[variant]
            gc.collect()
    rounds = (ratio_rounds(sessions, prompts, paired_batches, args.ratio_rounds, args.max_new_tokens, pad_id, runs)
              if paired_batches else {})
    sessions.clear()
    gc.collect()
    if "eager" in engines:
        runs["eager"] = run_eager(hf_dir, prompts, args.max_new_tokens, pad_id, args.threads)

    eager = runs.get("eager")
    reference = eager or runs[engines[0]]
    records: dict[str, dict[str, Any]] = {}
    for e in engines:
        variant = "fp32" if e == "eager" else e.split("-")[1]
        batch = 1 if e == "eager" else int(e.rsplit("-b", 1)[1])
        floor = floors.get(variant) if e != "eager" else None
        records[e] = engine_record(runs[e], batch, variant, n_prompt_tokens, reference, eager, floor)
    import onnxruntime
    import transformers

    report: dict[str, Any] = {
        "benchmark": "generate",
        "definitions": {
            "prefill_s": "start of a call to the end of its first forward pass (transformers: first streamed token)",
            "decode_tok_s": "rows x (max_new_tokens - 1) / time from the end of the first forward to the return",
            "e2e_tok_s": "rows x max_new_tokens / (prefill + decode time)",
            "token_agreement": "position-wise fraction of tokens equal to the reference engine's",
            "prompts_identical": "fraction of prompts whose tokens all equal the reference engine's",
            "floor_tok_s": "copy bandwidth (2 x bytes / numpy copy time, best of 1 and N threads) / weight bytes "
                           "read per token (initializers minus Gather-only embedding tables)",
            "floor_tok_s_1_thread": "the same with the 1-thread copy bandwidth",
            "int8_vs_fp32_rounds": "per batch size, int8/fp32 decode_tok_s in paired rounds run after the engines "
                                   "(the pair back to back, its order alternating); the goals use the median",
        },
        "setup": {
            "model_hf_dir": str(hf_dir), "fp32_dir": str(args.fp32_dir), "int8_dir": str(args.int8_dir),
            "benchmark": BENCHMARK, "prompt_format": PROMPT_FORMAT, "n_prompts": len(prompts),
            "prompt_tokens": args.prompt_tokens, "max_new_tokens": args.max_new_tokens, "stop_tokens": [],
            "batch_size": args.batch_size, "threads": args.threads, "cpu_count": os.cpu_count(),
            "machine": platform.machine(), "python": platform.python_version(),
            "loadavg_1_5_15_start": [round(x, 2) for x in load_start],
            "loadavg_1_5_15_end": [round(x, 2) for x in os.getloadavg()],
            "onnxruntime": onnxruntime.__version__, "transformers": transformers.__version__,
            "prompts": [{"task_id": p.task_id, "n_tokens": len(p.input_ids), "sha256": p.sha256} for p in prompts],
        },
        "bandwidth": bandwidth,
        "weights": {v: {k: (round(x, 2) if isinstance(x, float) else x) for k, x in f.items()}
                    for v, f in floors.items()},
        "reference_engine": reference.engine,
        "engines": list(records.values()),
        "int8_vs_fp32_rounds": rounds,
        "goals": goals(records, args.batch_size, rounds),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_table(report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))

