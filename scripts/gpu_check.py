"""GPU check: transformers greedy decoding speed on one GPU, and what ONNX Runtime can do on that machine.

Written for a machine with torch (CUDA), transformers 5.x, onnx and an onnxruntime that may be a CPU-only
build, no optimum and no network. Real weights cannot reach it (2.5 GB), so two random-weight models are built
in place: a tiny Qwen2 and one with the real Qwen2.5-Coder-0.5B architecture. Random weights give meaningless
tokens but the same arithmetic per token, which is all timing needs.

Steps (each recorded in the JSON; a failing step is recorded and the next one runs):
  1. environment: package versions, GPU name, ``onnxruntime.get_available_providers()``.
  2. ONNX export of the tiny model without optimum (optimum-onnx 0.1.0 requires transformers < 4.58 and does not
     import with 5.x: ``transformers.modeling_utils.get_parameter_dtype`` is gone): a wrapper with the same
     input/output names as optimum's ``text-generation-with-past`` export, traced by torch.onnx's TorchScript
     exporter. Its greedy tokens through ``tuningtax.generate.engine.greedy`` (CPU provider) are compared
     with PyTorch's, batch 1 and a left-padded batch.
  3. ``load_session(..., provider="cuda")`` must refuse to run unless CUDAExecutionProvider is really first
     (a CPU-only build, or onnxruntime-gpu failing to start CUDA, would otherwise silently run on CPU).
  4. transformers ``generate`` timing: eager and sdpa attention x fp32 and bf16 x batch 1 and ``--batch-size``,
     greedy, exactly ``--max-new-tokens`` tokens (no EOS), the same random prompts for every configuration.
  5. On ``--ort-provider`` (default: ``--device``; skipped for cuda where CUDAExecutionProvider is missing): the
     project's greedy loop over the tiny export (and the real-architecture one with ``--export-real``), its tokens
     against PyTorch fp32 on ``--device`` at batch 1 and ``--batch-size`` (parity), then timed as the bench does
     (``tuningtax.bench.generate.run_ort``). On CUDA the loop keeps the KV cache on the GPU through IO binding;
     the host loop (cache copied through numpy every step) is checked at batch 1 and timed beside it.
     ``--device cpu --ort-provider cpu`` runs the same code anywhere (tests/test_gpu_check.py does).
Timing definitions as in ``tuningtax.bench.generate``: prefill = start of ``generate`` until the first new token
reaches the streamer; decode tok/s = rows x (new tokens - 1) / the rest.
A time budget (``--budget-s``) skips remaining timing configurations rather than overrun the machine's slot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

T0 = time.perf_counter()
TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
# Qwen2.5-Coder-0.5B-Instruct as read from its GGUF (toolchain.md): untied head, rope_theta 1e6.
REAL = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
            num_key_value_heads=2)
VOCAB = 151_936


def log(msg: str) -> None:
    print(f"[gpu_check {time.perf_counter() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def write(report: dict[str, Any], out: Path) -> None:
    report["total_seconds"] = round(time.perf_counter() - T0, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


def step(report: dict[str, Any], name: str, fn: Callable[[], Any], out: Path) -> Any:
    """Run one step; its result or its error goes into the report, and the script goes on either way. The JSON
    is rewritten after every step so that an outside timeout still leaves the finished steps behind."""
    log(f"step {name}")
    start = time.perf_counter()
    try:
        result = fn()
        report[name] = {"ok": True, "seconds": round(time.perf_counter() - start, 2), "result": result}
        return result
    except Exception as err:  # noqa: BLE001 - every failure is data for the report
        report[name] = {"ok": False, "seconds": round(time.perf_counter() - start, 2),
                        "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-2000:]}
        log(f"step {name} FAILED: {type(err).__name__}: {err}")
        return None
    finally:
        write(report, out)


def environment(device: str) -> dict[str, Any]:
    import importlib.metadata as md

    versions = {}
    for pkg in ("torch", "transformers", "onnx", "onnxruntime", "onnxruntime-gpu", "numpy", "optimum",
                "optimum-onnx", "onnxscript", "accelerate"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    env: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine(),
                           "cpu_count": os.cpu_count(), "versions": versions, "device": device,
                           "cuda_available": torch.cuda.is_available(), "torch_cuda": torch.version.cuda}
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
        env["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    try:
        import onnxruntime as ort

        # The version and path of the module really imported: an onnxruntime-gpu found first on PYTHONPATH
        # shadows a CPU build installed beside torch, and their distribution versions both show above.
        env["ort_version"], env["ort_module"] = ort.__version__, ort.__file__
        env["ort_providers"] = ort.get_available_providers()
        env["ort_device"] = ort.get_device()
    except Exception as err:  # noqa: BLE001
        env["ort_providers"] = f"onnxruntime unusable: {err}"
    providers = env["ort_providers"]
    env["cuda_ep_available"] = isinstance(providers, list) and "CUDAExecutionProvider" in providers
    print(json.dumps(env, indent=1))
    if not env["cuda_ep_available"]:
        print("*** onnxruntime here has NO CUDAExecutionProvider (CPU-only build): ONNX Runtime cannot use this GPU. "
              "Only transformers is timed on the GPU; ONNX is exported and checked on the CPU provider. ***",
              flush=True)
    return env


def build_model(arch: dict[str, int], device: str, seed: int = 0) -> Any:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    # No bos/eos ids: generate then has nothing to stop on, so every row decodes exactly max_new_tokens.
    config = Qwen2Config(vocab_size=VOCAB, max_position_embeddings=32768, rope_theta=1_000_000.0,
                         tie_word_embeddings=False, bos_token_id=None, eos_token_id=None, pad_token_id=0, **arch)
    torch.manual_seed(seed)
    with torch.device(device):  # initialise on the GPU: random init of 630M parameters on a CPU takes long
        model = Qwen2ForCausalLM(config)
    return model.eval()


def random_prompts(n: int, length: int, seed: int = 1) -> torch.Tensor:
    """The same prompts for every configuration: fixed-seed ids, all of one length (no padding in batches)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1000, VOCAB - 1000, (n, length), generator=g)


def time_generate(model: Any, prompts: torch.Tensor, batch: int, max_new: int) -> dict[str, Any]:
    from transformers import GenerationConfig
    from transformers.generation.streamers import BaseStreamer

    class Clock(BaseStreamer):
        def __init__(self) -> None:
            self.stamps: list[float] = []

        def put(self, value: Any) -> None:  # generate calls value.cpu() first, which synchronises the GPU
            self.stamps.append(time.perf_counter())

        def end(self) -> None:
            pass

    device = model.device
    config = GenerationConfig(do_sample=False, max_new_tokens=max_new, eos_token_id=None, pad_token_id=0)
    warm = prompts[:batch, :16].to(device)
    model.generate(warm, attention_mask=torch.ones_like(warm), generation_config=GenerationConfig(
        do_sample=False, max_new_tokens=2, eos_token_id=None, pad_token_id=0))
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    prefill = decode = 0.0
    tokens: list[list[int]] = []
    for i in range(0, len(prompts), batch):
        ids = prompts[i:i + batch].to(device)
        clock = Clock()
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config, streamer=clock)
        new = out[:, ids.shape[1]:].cpu()
        end = time.perf_counter()
        prefill += clock.stamps[1] - start
        decode += end - clock.stamps[1]
        tokens += new.tolist()
    rows = len(tokens)
    lengths = {len(t) for t in tokens}
    result = {"batch_size": batch, "calls": -(-rows // batch), "rows": rows, "new_tokens": sorted(lengths),
              "prefill_s_per_call": round(prefill / -(-rows // batch), 4),
              "prefill_tok_s": round(prompts.numel() / prefill, 1),
              "decode_tok_s": round(rows * (max_new - 1) / decode, 2),
              "e2e_tok_s": round(rows * max_new / (prefill + decode), 2)}
    if device.type == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    result["_tokens"] = tokens
    return result


def timing(arch: dict[str, int], device: str, args: argparse.Namespace) -> dict[str, Any]:
    from tuningtax.bench.generate import agreement

    prompts = random_prompts(args.n_prompts, args.prompt_tokens)
    model = build_model(arch, device)
    runs: dict[str, Any] = {}
    reference: list[list[int]] | None = None
    for dtype_name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        model = model.to(dtype)
        for attn in ("eager", "sdpa"):
            model.set_attn_implementation(attn)
            for batch in dict.fromkeys((1, args.batch_size)):
                key = f"{attn}-{dtype_name}-b{batch}"
                if time.perf_counter() - T0 > args.budget_s:
                    runs[key] = {"skipped": f"time budget of {args.budget_s} s spent"}
                    continue
                with torch.inference_mode():
                    r = time_generate(model, prompts, batch, args.max_new_tokens)
                tokens = r.pop("_tokens")
                reference = reference or tokens  # eager-fp32-b1 runs first
                same = agreement(reference, tokens)
                r.update(token_agreement_vs_fp32_eager=round(same["token_agreement"], 4),
                         prompts_identical_vs_fp32_eager=round(same["prompts_identical"], 4))
                runs[key] = r
                log(f"{key}: prefill {r['prefill_s_per_call']:.3f} s/call, decode {r['decode_tok_s']:.1f} tok/s")
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"n_prompts": args.n_prompts, "prompt_tokens": args.prompt_tokens, "max_new_tokens": args.max_new_tokens,
            "runs": runs}


# ------------------------------------------------------------------------------------------------ ONNX

class PastWrapper(torch.nn.Module):
    """Flat tensors in and out with optimum's names, so ``engine.greedy`` drives it unchanged.

    The 4-D additive mask (causal x padding) is built here from ``attention_mask``: transformers uses a 4-D mask
    as given, which keeps its shape-dependent Python mask logic out of the traced graph. Logits are returned
    for the last position only (like the project's ``--last-logits`` export)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.n_layers = model.config.num_hidden_layers

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        from transformers import DynamicCache

        q_len, kv_len = input_ids.shape[1], attention_mask.shape[1]
        key_pos = torch.arange(kv_len, device=input_ids.device)[None, :]
        query_pos = torch.arange(q_len, device=input_ids.device)[:, None] + (kv_len - q_len)
        allowed = (key_pos <= query_pos)[None, None] & attention_mask[:, None, None, :].bool()
        dtype = self.model.dtype
        mask = torch.where(allowed, torch.tensor(0.0, dtype=dtype), torch.tensor(torch.finfo(dtype).min, dtype=dtype))
        cache = DynamicCache(ddp_cache_data=[(past[2 * i], past[2 * i + 1]) for i in range(self.n_layers)])
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, past_key_values=cache,
                         use_cache=True)
        presents = [t for layer in out.past_key_values.layers for t in (layer.keys, layer.values)]
        return (out.logits[:, -1:, :], *presents)


def export_onnx(model: Any, out_dir: Path) -> Path:
    cfg = model.config
    heads, head_dim = cfg.num_key_value_heads, cfg.hidden_size // cfg.num_attention_heads
    past_names = [f"past_key_values.{i}.{kv}" for i in range(cfg.num_hidden_layers) for kv in ("key", "value")]
    present_names = [f"present.{i}.{kv}" for i in range(cfg.num_hidden_layers) for kv in ("key", "value")]
    batch, seq, past_len = 2, 3, 4  # past > 0 so the cache concatenation is traced
    model = model.float().cpu().eval()
    model.set_attn_implementation("eager")
    example = (torch.ones(batch, seq, dtype=torch.long), torch.ones(batch, past_len + seq, dtype=torch.long),
               torch.arange(past_len, past_len + seq).repeat(batch, 1),
               *[torch.zeros(batch, heads, past_len, head_dim) for _ in past_names])
    axes: dict[str, dict[int, str]] = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total"},
                                       "position_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch"}}
    axes.update({n: {0: "batch", 2: "past"} for n in past_names})
    axes.update({n: {0: "batch", 2: "total"} for n in present_names})
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.onnx"
    with torch.no_grad():
        torch.onnx.export(PastWrapper(model), example, os.fspath(path), input_names=["input_ids", "attention_mask",
                          "position_ids", *past_names], output_names=["logits", *present_names], dynamic_axes=axes,
                          opset_version=18, dynamo=False)
    return path


def torch_greedy(model: Any, rows: list[list[int]], max_new: int) -> list[list[int]]:
    from transformers import GenerationConfig

    config = GenerationConfig(do_sample=False, max_new_tokens=max_new, eos_token_id=None, pad_token_id=0)
    out = []
    with torch.inference_mode():
        for row in rows:
            ids = torch.tensor([row], device=model.device)
            out.append(model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config)[0,
                       len(row):].tolist())
    return out


def onnx_tiny(work: Path, max_new: int) -> dict[str, Any]:
    from tuningtax.generate.engine import greedy, left_pad, load_session

    model = build_model(TINY, "cpu")
    export_onnx(model, work / "tiny")
    rows = [random_prompts(1, 40, seed=2)[0].tolist(), random_prompts(1, 23, seed=3)[0].tolist()]
    reference = torch_greedy(model, rows, max_new)
    session = load_session(work / "tiny", threads=2)
    single = [greedy(session, *left_pad([r], 0), max_new, [])[0] for r in rows]
    batched = greedy(session, *left_pad(rows, 0), max_new, [])
    return {"graph_bytes": (work / "tiny" / "model.onnx").stat().st_size, "max_new_tokens": max_new,
            "batch1_identical_to_torch": single == reference,
            "left_padded_batch_identical_to_torch": batched == reference,
            "first_tokens": {"torch": reference[0][:8], "ort": single[0][:8]}}


def cuda_refusal(work: Path) -> dict[str, Any]:
    from tuningtax.errors import UserError
    from tuningtax.generate.engine import load_session

    try:
        session = load_session(work / "tiny", threads=2, provider="cuda")
    except UserError as err:
        return {"refused": True, "message": str(err)}
    return {"refused": False, "providers": session.get_providers()}


class HostLoop:
    """A session seen without its providers, so ``engine.greedy`` takes the host loop (the KV cache copied
    through numpy every step) even on CUDA: the loop that IO binding replaced, timed beside it."""

    def __init__(self, session: Any) -> None:
        self.get_inputs, self.get_outputs, self.run = session.get_inputs, session.get_outputs, session.run


def ort_parity_and_timing(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """ONNX Runtime on ``--ort-provider`` against PyTorch fp32 (TF32 off) on ``--device``, same weights, same prompts:
    token parity at batch 1 and ``--batch-size`` (``bench.agreement``), then timing through ``bench.run_ort`` (the
    bench's prefill/decode split). On CUDA, the IO-bound loop and the host loop (``host-`` keys) side by side."""
    from tuningtax.bench.generate import Prompt, agreement, run_ort
    from tuningtax.generate.engine import bind_device_of, load_session

    torch.backends.cuda.matmul.allow_tf32 = False
    prompts = [Prompt(f"random-{i}", row, "") for i, row in
               enumerate(random_prompts(args.n_prompts, args.prompt_tokens).tolist())]
    parity_rows = [p.input_ids for p in prompts[:args.batch_size]]
    out: dict[str, Any] = {"provider": args.ort_provider, "torch_device": args.device,
                           "parity_new_tokens": args.parity_tokens}
    targets = [("tiny", TINY, "cpu")]  # the tiny export of step 2 was built on the CPU from seed 0
    if args.export_real:
        targets.append(("real-arch", REAL, args.device))
    for name, arch, init_device in targets:
        folder = work / name
        model = build_model(arch, init_device)  # seed 0: the same weights as any earlier export of this arch
        if not (folder / "model.onnx").exists():
            export_onnx(model, folder)  # moves the model to the CPU
        model = model.float().to(args.device).eval()
        model.set_attn_implementation("eager")
        reference = torch_greedy(model, parity_rows, args.parity_tokens)
        del model
        if args.device == "cuda":
            torch.cuda.empty_cache()
        session = load_session(folder, threads=2, provider=args.ort_provider)
        result: dict[str, Any] = {"providers": session.get_providers(),
                                  "provider_options": session.get_provider_options()}
        for batch in dict.fromkeys((1, args.batch_size)):
            tokens = run_ort(f"{name}-parity-b{batch}", session, prompts[:len(parity_rows)], batch,
                             args.parity_tokens, 0).tokens
            result[f"parity_b{batch}"] = agreement(reference, tokens)
        loops = {"": session}
        if bind_device_of(session):  # CUDA: the IO-bound loop (default) and, side by side, the host loop
            loops["host-"] = HostLoop(session)
            result["host_loop_parity_b1"] = agreement(reference, run_ort(
                f"{name}-host-parity-b1", loops["host-"], prompts[:len(parity_rows)], 1, args.parity_tokens, 0).tokens)
        for batch in dict.fromkeys((1, args.batch_size)):
            for prefix, loop in loops.items():
                key = f"{prefix}b{batch}"
                if time.perf_counter() - T0 > args.budget_s:
                    result[key] = {"skipped": f"time budget of {args.budget_s} s spent"}
                    continue
                run = run_ort(f"{name}-{key}", loop, prompts, batch, args.max_new_tokens, 0)
                result[key] = {"prefill_s_per_call": round(run.prefill_s / run.calls, 4),
                               "decode_tok_s": round(run.decode_tok_s, 2), "e2e_tok_s": round(run.e2e_tok_s, 2)}
                log(f"ort {args.ort_provider} {name}-{key}: {result[key]}")
        out[name] = result
        del session
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--tiny-only", action="store_true", help="time the tiny model instead of the real architecture")
    parser.add_argument("--export-real", action="store_true",
                        help="also export the real-architecture model to ONNX and check and time it on ONNX Runtime")
    parser.add_argument("--ort-provider", choices=("cuda", "cpu"),
                        help="ONNX Runtime provider for the parity and timing step (default: --device)")
    parser.add_argument("--parity-tokens", type=int, default=32, help="new tokens compared against PyTorch")
    parser.add_argument("--n-prompts", type=int, default=8)
    parser.add_argument("--prompt-tokens", type=int, default=300)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--budget-s", type=float, default=170.0, help="skip timing configurations after this")
    parser.add_argument("--out", type=Path, help="JSON path (default $OUT/gpu.json, else results/bench/gpu.json)")
    args = parser.parse_args(argv)
    args.ort_provider = args.ort_provider or args.device
    if args.device == "cuda" and not torch.cuda.is_available():
        print("*** CUDA is not available to torch here; rerun with --device cpu for a dry run ***", flush=True)
        return 2
    default = Path(os.environ["OUT"]) / "gpu.json" if os.environ.get("OUT") else Path("results/bench/gpu.json")
    out = args.out or default
    report: dict[str, Any] = {"script": "scripts/gpu_check.py", "args": {k: (str(v) if isinstance(v, Path) else v)
                                                                          for k, v in vars(args).items()}}
    env = step(report, "environment", lambda: environment(args.device), out) or {}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        step(report, "onnx_tiny_export_and_parity", lambda: onnx_tiny(work, 16), out)
        step(report, "ort_cuda_provider_guard", lambda: cuda_refusal(work), out)
        arch = TINY if args.tiny_only else REAL
        step(report, "transformers_timing", lambda: {"model": "tiny" if args.tiny_only else "qwen2.5-coder-0.5b-arch",
                                                     **timing(arch, args.device, args)}, out)
        if args.ort_provider == "cpu" or env.get("cuda_ep_available"):
            step(report, "ort_parity_and_timing", lambda: ort_parity_and_timing(work, args), out)
        else:
            report["ort_parity_and_timing"] = {"ok": False,
                                               "skipped": "onnxruntime has no CUDAExecutionProvider here"}
    write(report, out)
    print_summary(report)
    print(f"wrote {out}")
    return 0


def print_summary(report: dict[str, Any]) -> None:
    for name in ("onnx_tiny_export_and_parity", "ort_cuda_provider_guard", "ort_parity_and_timing"):
        r = report.get(name, {})
        shown = r.get("result", r.get("error", r.get("skipped")))
        print(f"{name}: {'ok' if r.get('ok') else 'NOT OK'}: {json.dumps(shown)[:400]}")
    ort = report.get("ort_parity_and_timing", {}).get("result") or {}
    for name, r in ort.items():
        if isinstance(r, dict) and "providers" in r:
            cells = [f"{k} prompts identical {v['prompts_identical']:.3f}" for k, v in r.items() if "parity_" in k]
            cells += [f"{k} decode {v['decode_tok_s']} tok/s" for k, v in r.items()
                      if k.removeprefix("host-")[1:].isdigit() and "decode_tok_s" in v]
            print(f"ORT {ort['provider']} {name} vs torch {ort['torch_device']}: {'; '.join(cells)}")
    t = report.get("transformers_timing", {})
    if not t.get("ok"):
        print(f"transformers_timing: FAILED: {t.get('error')}")
        return
    res = t["result"]
    print(f"transformers timing, {res['model']}: {res['n_prompts']} prompts x {res['prompt_tokens']} tokens, "
          f"{res['max_new_tokens']} new tokens, greedy")
    print(f"{'config':>16} {'prefill s/call':>14} {'prefill tok/s':>13} {'decode tok/s':>12} {'e2e tok/s':>10} "
          f"{'agree':>6} {'peak GiB':>8}")
    for key, r in res["runs"].items():
        if "skipped" in r:
            print(f"{key:>16} skipped: {r['skipped']}")
            continue
        print(f"{key:>16} {r['prefill_s_per_call']:>14.4f} {r['prefill_tok_s']:>13.1f} {r['decode_tok_s']:>12.2f} "
              f"{r['e2e_tok_s']:>10.2f} {r['token_agreement_vs_fp32_eager']:>6.3f} {r.get('peak_memory_gib', '-'):>8}")


if __name__ == "__main__":
    sys.exit(main())
