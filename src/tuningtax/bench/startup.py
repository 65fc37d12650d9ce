"""``python -m tuningtax bench startup``: where a generation job's start-up goes, and what ONNX Runtime's
session options would change, measured side by side in fresh processes (the arms' order rotates each round).

Arms:
  default         ``generate.engine.load_session`` as generation runs it
  no-prepacking   the same options plus ``session.disable_prepacking``: no weight packing at load, slower
                  MatMuls after it
  prepacked       a copy of the export optimised once, with ONNX Runtime's pre-packed weights saved beside it
                  (``session.save_external_prepacked_constant_initializers``) and memory-mapped at load; the
                  copy's build time and size are reported, and the copy is deleted unless ``--keep-prepacked``
  generate        ``python -m tuningtax generate`` on one task of the study with one new token: process start
                  to first prefill, and last record to process exit, with its own start-up parts

Each session arm times, in its own process: importing onnxruntime, building the session, and greedy decoding
of one fixed prompt (``--new-tokens``), whose tokens must equal the default arm's. The report (JSON, medians
and every round) goes to ``--out``, outside everything DVC tracks, with the load average and the memory the
kernel reported free and cached at the start (the session's build allocates the packed weights afresh).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

from tuningtax.errors import UserError
from tuningtax.jsonl import write_text_atomic

SESSION_ARMS = ("default", "no-prepacking", "prepacked")
ARMS = (*SESSION_ARMS, "generate")
WORK_ROOT = Path(".cache/tuningtax/bench/startup")
PROMPT = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
PREPACKED_ENTRIES = {  # ONNX Runtime session config keys (onnxruntime_session_options_config_keys.h)
    "session.optimized_model_external_initializers_file_name": "model.onnx_data",
    "session.optimized_model_external_initializers_min_size_in_bytes": "1024",
    "session.save_external_prepacked_constant_initializers": "1",
}


def log(msg: str) -> None:
    print(f"[bench startup] {msg}", file=sys.stderr, flush=True)


def memory_state() -> dict[str, int]:
    """MiB free, available and cached, from /proc/meminfo (empty where there is none)."""
    wanted = {"MemFree": "free_mib", "MemAvailable": "available_mib", "Cached": "cached_mib"}
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return {}
    state = {}
    for line in lines:
        key, _, rest = line.partition(":")
        if key in wanted:
            state[wanted[key]] = int(rest.split()[0]) // 1024
    return state


def _options(threads: int, entries: dict[str, str]) -> Any:
    """``load_session``'s options (threads, sequential, quiet) plus ``entries``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    for key, value in entries.items():
        opts.add_session_config_entry(key, value)
    return opts


def child(arm: str, model_dir: Path, threads: int, prompt_ids: list[int], new_tokens: int) -> dict[str, Any]:
    """One arm in this (fresh) process: import, session, decode."""
    t0 = time.perf_counter()
    import onnxruntime as ort

    from tuningtax.generate.engine import greedy, left_pad, load_session

    import_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    if arm == "default":
        session = load_session(model_dir, threads=threads)
    else:
        entries = {"session.disable_prepacking": "1"} if arm == "no-prepacking" else {}
        session = ort.InferenceSession(os.fspath(model_dir / "model.onnx"), sess_options=_options(threads, entries),
                                       providers=["CPUExecutionProvider"])
    session_s = time.perf_counter() - t1
    ready_unix = time.time()
    ids, mask = left_pad([prompt_ids], 0)
    t2 = time.perf_counter()
    tokens = greedy(session, ids, mask, new_tokens, stop_ids=())[0]
    return {"import_s": import_s, "session_s": session_s, "ready_unix": ready_unix,
            "decode_s": time.perf_counter() - t2, "tokens": tokens}


def build_prepacked(source: Path, target: Path, threads: int) -> dict[str, Any]:
    """Optimise ``source`` once into ``target`` with its pre-packed weights on disk (in this process)."""
    import onnxruntime as ort

    target.mkdir(parents=True, exist_ok=True)
    opts = _options(threads, PREPACKED_ENTRIES)
    opts.optimized_model_filepath = os.fspath(target / "model.onnx")
    start = time.perf_counter()
    ort.InferenceSession(os.fspath(source / "model.onnx"), sess_options=opts, providers=["CPUExecutionProvider"])
    return {"build_s": time.perf_counter() - start,
            "bytes": sum(f.stat().st_size for f in target.iterdir()),
            "source_bytes": sum(f.stat().st_size for f in source.iterdir() if f.name.startswith("model.onnx"))}


def run_session_arm(arm: str, model_dir: Path, threads: int, prompt_file: Path, new_tokens: int) -> dict[str, Any]:
    spawned = time.time()
    proc = subprocess.run([sys.executable, "-m", "tuningtax.bench.startup", "--child", arm, "--onnx-dir",
                           str(model_dir), "--threads", str(threads), "--prompt-json", str(prompt_file),
                           "--new-tokens", str(new_tokens)], capture_output=True, text=True)
    ended = time.time()
    if proc.returncode != 0:
        raise UserError(f"bench startup: arm {arm} failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["ready_s"] = result.pop("ready_unix") - spawned  # process start to a session ready to prefill
    result["wall_s"] = ended - spawned
    return result


def run_generate_arm(job: dict[str, Any], spec_json: str, model: str, onnx_dir: Path, params: dict, threads: int,
                     work: Path) -> dict[str, Any]:
    """``generate`` as ``bench realmix`` runs it for ``ours`` (the study's batch size and prompt limit)."""
    from tuningtax.bench.realmix import run_ours

    result = run_ours("ours", job, spec_json, model, onnx_dir, params, threads,
                      params["generation"]["batch_size"], work)
    return {"first_prefill_s": result["first_prefill_s"], "exit_s": result["exit_s"], "wall_s": result["wall_s"],
            **result["startup"]}


def summarise(rounds: list[dict[str, dict]], arms: list[str]) -> dict[str, dict[str, float]]:
    """Per arm, the median of every numeric figure over the rounds."""
    summary = {}
    for arm in arms:
        keys = [k for k, v in rounds[0][arm].items() if isinstance(v, (int, float))]
        summary[arm] = {k: round(median(r[arm][k] for r in rounds), 3) for k in keys}
    return summary


def _one_task(params: dict, model: str, work: Path) -> dict[str, Any]:
    """The study's first job for ``model`` cut to its first task (in a file of its own) and one new token."""
    from tuningtax.bench.realmix import study_jobs

    job = study_jobs(params, model)[0]
    one = work / "task.jsonl"
    one.write_text(job["tasks"].read_text().splitlines()[0] + "\n")
    return {**job, "tasks": one, "max_new_tokens": 1}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuningtax bench startup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--model", help="a model of params.yaml (default: the first)")
    parser.add_argument("--onnx-dir", type=Path, help="default: data/04_onnx/MODEL/fp32")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, from {', '.join(ARMS)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=32, help="greedy tokens each session arm decodes")
    parser.add_argument("--work", type=Path, default=WORK_ROOT)
    parser.add_argument("--keep-prepacked", action="store_true", help="keep the pre-packed copy (as large as "
                        "the export's weights and their packed form together)")
    parser.add_argument("--out", type=Path, default=Path(".cache/tuningtax/bench/startup.json"))
    parser.add_argument("--child", choices=SESSION_ARMS, help=argparse.SUPPRESS)
    parser.add_argument("--prompt-json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        prompt_ids = json.loads(args.prompt_json.read_text())
        print(json.dumps(child(args.child, args.onnx_dir, args.threads, prompt_ids, args.new_tokens)))
        return 0

    from tuningtax.bench.realmix import load_average
    from tuningtax.config import load_params
    from tuningtax.generate.engine import load_tokenizer

    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise UserError(f"--arms: unknown {unknown}; choose from {', '.join(ARMS)}")
    if args.rounds < 1:
        raise UserError(f"--rounds must be >= 1, got {args.rounds}")
    params = load_params(args.params)
    model = args.model or next(iter(params["models"]))
    if model not in params["models"]:
        raise UserError(f"{args.params}: models has no {model!r}")
    onnx_dir = args.onnx_dir or Path("data/04_onnx") / model / "fp32"
    if not (onnx_dir / "model.onnx").exists():
        raise UserError(f"{onnx_dir}/model.onnx not found: run the study first (make study) or pass --onnx-dir")
    args.work.mkdir(parents=True, exist_ok=True)
    prompt_ids = list(load_tokenizer(onnx_dir).encode(PROMPT, add_special_tokens=False))
    prompt_file = args.work / "prompt.json"
    prompt_file.write_text(json.dumps(prompt_ids))

    report: dict[str, Any] = {"model": model, "onnx_dir": str(onnx_dir), "threads": args.threads,
                              "prompt_tokens": len(prompt_ids), "new_tokens": args.new_tokens,
                              "load_average_start": load_average(), "memory_start": memory_state(),
                              "arms": arms}
    model_dirs = {"default": onnx_dir, "no-prepacking": onnx_dir}
    prepacked = args.work / "prepacked"
    if "prepacked" in arms:
        shutil.rmtree(prepacked, ignore_errors=True)
        need = 2 * sum(f.stat().st_size for f in onnx_dir.iterdir() if f.name.startswith("model.onnx"))
        free = shutil.disk_usage(args.work).free
        if free < need + (1 << 30):
            raise UserError(f"{args.work}: the pre-packed copy needs about {need >> 20} MiB and "
                            f"{free >> 20} MiB are free; leave out the prepacked arm (--arms) or free space")
    spec_json = json.dumps({"name": model, **params["models"][model]})
    if "generate" in arms:
        generate_job = _one_task(params, model, args.work)
        report["generate_format"] = generate_job["format"]

    rounds = []
    try:  # a failed build or round leaves no multi-gigabyte copy behind
        if "prepacked" in arms:
            log(f"building the pre-packed copy in {prepacked}")
            report["prepacked_copy"] = build_prepacked(onnx_dir, prepacked, args.threads)
            model_dirs["prepacked"] = prepacked
        for number in range(args.rounds):
            order = arms[number % len(arms):] + arms[:number % len(arms)]
            results = {}
            for arm in order:
                results[arm] = (run_generate_arm(generate_job, spec_json, model, onnx_dir, params, args.threads,
                                                 args.work) if arm == "generate" else
                                run_session_arm(arm, model_dirs[arm], args.threads, prompt_file, args.new_tokens))
                shown = results[arm].get("first_prefill_s", results[arm].get("session_s"))
                log(f"round {number + 1}: {arm} {shown:.2f} s")
            rounds.append({"order": order, **results})
    finally:
        if "prepacked" in arms and not args.keep_prepacked:
            shutil.rmtree(prepacked, ignore_errors=True)

    reference = rounds[0]["default"]["tokens"] if "default" in arms else None
    report["tokens_identical_to_default"] = {
        arm: all(r[arm]["tokens"] == reference for r in rounds) for arm in arms if arm in SESSION_ARMS
    } if reference is not None else {}
    for r in rounds:
        for arm in arms:
            r[arm].pop("tokens", None)
    report["median"] = summarise(rounds, arms)
    report["rounds"] = rounds
    report["load_average_end"] = load_average()
    med = report["median"]
    ratios = {}
    if {"default", "prepacked"} <= set(arms):
        ratios["session_default_over_prepacked"] = round(med["default"]["session_s"] / med["prepacked"]["session_s"], 2)
    if {"default", "no-prepacking"} <= set(arms):
        ratios["decode_no_prepacking_over_default"] = round(
            med["no-prepacking"]["decode_s"] / med["default"]["decode_s"], 2)
    report["ratios"] = ratios
    if "generate" in arms:
        report["goals"] = {"first_prefill_under_5_s": {"value": med["generate"]["first_prefill_s"],
                                                       "met": med["generate"]["first_prefill_s"] < 5.0},
                           "exit_under_1_s": {"value": med["generate"]["exit_s"], "met": med["generate"]["exit_s"] < 1.0}}
    write_text_atomic(args.out, json.dumps(report, indent=1) + "\n")

    print(f"{'arm':<15}{'ready s':>9}{'session s':>11}{'decode s':>10}{'first prefill s':>17}{'exit s':>8}")
    for arm in arms:
        m = med[arm]
        cells = [m.get("ready_s"), m.get("session_s"), m.get("decode_s"), m.get("first_prefill_s"), m.get("exit_s")]
        texts = ["" if c is None else f"{c:.2f}" for c in cells]
        print(f"{arm:<15}" + "".join(text.rjust(width) for text, width in zip(texts, (9, 11, 10, 17, 8))))
    for name, value in ratios.items():
        print(f"{name}: {value}")
    if "prepacked_copy" in report:
        copy = report["prepacked_copy"]
        print(f"pre-packed copy: built in {copy['build_s']:.1f} s, {copy['bytes'] >> 20} MiB "
              f"(the export's weights: {copy['source_bytes'] >> 20} MiB)")
    print(f"tokens identical to default: {report['tokens_identical_to_default']}; report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
