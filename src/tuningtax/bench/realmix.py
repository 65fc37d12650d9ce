"""``python -m tuningtax bench realmix``: the default study's generation jobs, end to end, through this
project's engine and the engines a user would pick instead, side by side in one run.

Jobs: every (benchmark, format) of ``params.yaml``'s ``runs`` for one model, on the study's own task
subsets (``data/02_subsets/BENCHMARK.jsonl``; run ``make study`` first) with the study's budgets. For each
job the engines run one after another (load drifts over minutes on a shared machine), each as a fresh
process, so every figure includes start-up and exit:

  ours              ``python -m tuningtax generate`` exactly as the study runs it (continuous batching,
                    prefix reuse, fp32)
  ours-no-prefix    the same without prefix reuse
  ours-static       length-sorted static batches
  ours-task-order   static batches in task order (the engine before continuous batching)
  ours-int8         ``ours`` on the int8 export (built into the bench cache when missing)
  eager             transformers eager fp32, batch 1 (the study's way), on a sample: the first
                    ``--eager-sample`` tasks of each job; its job time is extrapolated as
                    load + tasks x the sample's mean seconds per task
  genai-fp32, genai-int4   ONNX Runtime GenAI on models from its own builder, at ``--batch-size``
  ct2-int8, ct2-fp32   CTranslate2 on models from its own converter, at ``--batch-size``
  llamacpp          llama-cpp-python on the shipped Q4_K_M GGUF, batch 1 (opt-in: it builds from source)

Peers get the prompts as the token ids this project renders (they skip tokenizer and prompt rendering),
greedy, the family's stop tokens, the same budgets; a peer whose package or model is missing is skipped
with its message. Outputs are compared with ``ours`` as decoded text and token count per task.

Figures: tasks/s end to end (all of a job's processes' wall time), useful tok/s (recorded new tokens over
wall time), start-up (process start to first prefill; ours only), exit (last record written to process
end; ours only), prefill and decode shares of generation (continuous scheduler), padding and idle share of
computed positions (ours' schedulers), and each engine's ratio to ``ours``. The report (JSON) goes to
``--out``, outside everything DVC tracks; the load average is recorded at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

from tuningtax.errors import UserError
from tuningtax.jsonl import write_text_atomic

OURS = {"ours": [], "ours-no-prefix": ["--no-prefix-reuse"], "ours-static": ["--scheduler", "static"],
        "ours-task-order": ["--scheduler", "task-order"], "ours-int8": []}
PEERS = ("genai-fp32", "genai-int4", "ct2-int8", "ct2-fp32", "llamacpp")
DEFAULT_ENGINES = ("ours", "ours-no-prefix", "ours-static", "ours-task-order", "eager", "genai-fp32", "genai-int4",
                   "ct2-int8")
PEER_ROOT = Path(".cache/tuningtax/bench/peers")
WORK_ROOT = Path(".cache/tuningtax/bench/realmix")


def log(msg: str) -> None:
    print(f"[bench realmix] {msg}", file=sys.stderr, flush=True)


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def study_jobs(params: dict, model: str) -> list[dict[str, Any]]:
    from tuningtax.prompts import get_format

    role = params["models"][model]["role"]
    jobs = []
    for run in params["runs"]:
        tasks = Path("data/02_subsets") / f"{run['benchmark']}.jsonl"
        if not tasks.exists():
            raise UserError(f"{tasks} does not exist: run the study first (make study)")
        for fmt in run["formats"]:
            if get_format(fmt).needs_chat and role == "base":
                continue
            jobs.append({"benchmark": run["benchmark"], "format": fmt, "tasks": tasks})
    return jobs


def _job_budget(params: dict, tasks_path: Path) -> int:
    from tuningtax.tasks.schema import read_tasks

    modes = {t.mode for t in read_tasks(tasks_path).values()}
    return params["generation"]["max_new_tokens"][modes.pop()]


def run_ours(engine: str, job: dict, spec_json: str, model: str, onnx_dir: Path, params: dict, threads: int,
             batch: int, work: Path) -> dict[str, Any]:
    out = work / f"{engine}.jsonl"
    stats_path = work / f"{engine}.stats.json"
    for stale in (out, stats_path, out.with_name(out.name + ".config.json")):
        stale.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "tuningtax", "generate", "--model", model, "--spec-json", spec_json,
           "--onnx-dir", str(onnx_dir), "--tasks", str(job["tasks"]), "--format", job["format"], "--out", str(out),
           "--batch-size", str(batch), "--max-new-tokens", str(job["max_new_tokens"]),
           "--max-prompt-tokens", str(params["generation"]["max_prompt_tokens"]), "--threads", str(threads),
           "--no-progress", "--stats-out", str(stats_path), *OURS[engine]]
    spawned = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    ended = time.time()
    if proc.returncode != 0:
        raise UserError(f"{engine} on {job['benchmark']}/{job['format']} failed:\n{proc.stderr[-2000:]}")
    stats = json.loads(stats_path.read_text())
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return {"wall_s": ended - spawned, "first_prefill_s": stats["first_prefill_unix"] - spawned,
            "exit_s": ended - stats["finished_unix"], "startup": stats["startup"],
            "generation_s": stats["generation_s"], "schedule": stats["schedule"],
            "outputs": [(r["raw_output"], r["n_new_tokens"]) for r in records]}


def run_eager(jobs: list[dict], hf_dir: Path, tokenizer: Any, stops: list[int], pad_id: int, sample: int,
              threads: int) -> dict[str, dict[str, Any]]:
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    torch.set_num_threads(threads)
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, attn_implementation="eager").eval()
    load_s = time.perf_counter() - start
    results = {}
    with torch.inference_mode():
        for job in jobs:
            config = GenerationConfig(do_sample=False, max_new_tokens=job["max_new_tokens"], eos_token_id=stops,
                                      pad_token_id=pad_id)
            outputs, seconds = [], []
            for ids in job["prompts"][:sample]:
                t0 = time.perf_counter()
                row = torch.tensor([ids], dtype=torch.long)
                new = model.generate(row, attention_mask=torch.ones_like(row), generation_config=config,
                                     use_model_defaults=False)[0, len(ids):].tolist()
                seconds.append(time.perf_counter() - t0)
                outputs.append(_as_output(new, stops, tokenizer))
            per_task = sum(seconds) / len(seconds)
            results[job["name"]] = {"load_s": load_s, "sample": len(seconds), "sample_s": sum(seconds),
                                    "wall_s": load_s + per_task * len(job["prompts"]), "outputs": outputs,
                                    "extrapolated": True}
            log(f"eager {job['name']}: {len(seconds)} tasks in {sum(seconds):.1f} s")
    return results


def _as_output(tokens: list[int], stops: list[int], tokenizer: Any) -> tuple[str, int]:
    body = tokens[:-1] if tokens and tokens[-1] in stops else tokens
    return tokenizer.decode(body, skip_special_tokens=False, clean_up_tokenization_spaces=False), len(tokens)


def peer_model(engine: str, hf_dir: Path, gguf: Path | None) -> Path:
    """The peer's model, built with its own converter into the bench cache when missing."""
    if engine == "llamacpp":
        if gguf is None or not gguf.is_file():
            raise UserError("llamacpp: the shipped GGUF was not found in .cache/tuningtax/gguf")
        return gguf
    out = PEER_ROOT / engine
    if not out.exists():
        kind, precision = engine.split("-")
        extra = ["--precision", precision]
        log(f"building {out} with {kind}'s own converter")
        proc = subprocess.run([sys.executable, "-m", "tuningtax.bench.peers", "build", kind, "--hf-dir", str(hf_dir),
                               "--out", str(out), *extra], capture_output=True, text=True)
        if proc.returncode != 0:
            raise UserError(f"{engine}: build failed: {proc.stderr.strip()[-800:]}")
    return out


def run_peer(engine: str, model_dir: Path, job: dict, stops: list[int], pad_id: int, batch: int, threads: int,
             work: Path, tokenizer: Any) -> dict[str, Any]:
    prompts_path, out = work / "prompts.json", work / f"{engine}.json"
    prompts_path.write_text(json.dumps({"prompts": job["prompts"], "max_new_tokens": job["max_new_tokens"],
                                        "stop_token_ids": stops, "pad_token_id": pad_id}))
    out.unlink(missing_ok=True)
    kind = engine.split("-")[0]
    spawned = time.time()
    proc = subprocess.run([sys.executable, "-m", "tuningtax.bench.peers", "run", kind, "--model-dir", str(model_dir),
                           "--prompts", str(prompts_path), "--out", str(out),
                           "--batch-size", str(1 if kind == "llamacpp" else batch), "--threads", str(threads)],
                          capture_output=True, text=True)
    wall = time.time() - spawned
    if proc.returncode != 0:
        raise UserError(f"{engine}: {proc.stderr.strip()[-800:]}")
    result = json.loads(out.read_text())
    return {"wall_s": wall, "load_s": result["load_s"], "generation_s": result["generate_s"],
            "batch_size": result["batch_size"], "versions": result.get("versions", {}),
            "outputs": [_as_output(t, stops, tokenizer) for t in result["tokens"]]}


def summarise(engine: str, per_job: dict[str, dict], jobs: list[dict]) -> dict[str, Any]:
    names = [j["name"] for j in jobs if j["name"] in per_job]
    tasks = sum(len(per_job[n]["outputs"]) if engine != "eager" else len(j["prompts"])
                for j in jobs for n in [j["name"]] if n in per_job)
    wall = sum(per_job[n]["wall_s"] for n in names)
    useful = sum(n_new for n in names for _, n_new in per_job[n]["outputs"])
    summary: dict[str, Any] = {"jobs": len(names), "tasks": tasks, "wall_s": round(wall, 2),
                               "tasks_per_s": round(tasks / wall, 4) if wall else None}
    if engine != "eager":
        summary["useful_tok_s"] = round(useful / wall, 2) if wall else None
    schedules = [per_job[n]["schedule"] for n in names if "schedule" in per_job[n]]
    if schedules:
        computed = sum(s["prefill_positions"] + s["decode_row_steps"] for s in schedules)
        useful_positions = sum(s["prompt_tokens"] - s["reused_prefix_tokens"] + s["useful_decode_row_steps"]
                               for s in schedules)
        prefill_s, decode_s = sum(s["prefill_s"] for s in schedules), sum(s["decode_s"] for s in schedules)
        generation_s = sum(per_job[n]["generation_s"] for n in names)
        summary.update({
            "padding_share": round(1 - useful_positions / computed, 4) if computed else None,
            "reused_prefix_tokens": sum(s["reused_prefix_tokens"] for s in schedules),
            "prompt_tokens": sum(s["prompt_tokens"] for s in schedules),
            "prefill_share": round(prefill_s / generation_s, 4) if prefill_s else None,
            "decode_share": round(decode_s / generation_s, 4) if decode_s else None,
            "first_prefill_s_max": round(max(per_job[n]["first_prefill_s"] for n in names), 2),
            "first_prefill_s_median": round(sorted(per_job[n]["first_prefill_s"] for n in names)[len(names) // 2], 2),
            "exit_s_max": round(max(per_job[n]["exit_s"] for n in names), 3),
            "startup_median_s": {part: round(median(per_job[n]["startup"][part] for n in names), 3)
                                 for part in per_job[names[0]]["startup"]},
        })
    return summary


def agreement(reference: dict[str, dict], other: dict[str, dict]) -> dict[str, int]:
    same = total = 0
    for name, result in other.items():
        if name not in reference:
            continue
        for got, want in zip(result["outputs"], reference[name]["outputs"]):
            total += 1
            same += got == want
    return {"identical": same, "compared": total}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuningtax bench realmix", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--model", help="a model of params.yaml (default: the first)")
    parser.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                        help=f"comma-separated, from {', '.join([*OURS, 'eager', *PEERS])}")
    parser.add_argument("--eager-sample", type=int, default=2, help="tasks per job for transformers eager")
    parser.add_argument("--batch-size", type=int, help="default: params.yaml generation.batch_size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--jobs", help="only these BENCHMARK/FORMAT jobs (comma-separated), run in this order")
    parser.add_argument("--out", type=Path, default=Path(".cache/tuningtax/bench/realmix.json"))
    parser.add_argument("--work", type=Path, default=WORK_ROOT,
                        help="folder for each job's prompts and outputs (bench realmix-pass scores them)")
    args = parser.parse_args(argv)

    from tuningtax.config import load_params
    from tuningtax.generate.engine import load_tokenizer
    from tuningtax.models.families import get_family, pad_token_id, stop_token_ids
    from tuningtax.models.spec import ModelSpec
    from tuningtax.prompts import render
    from tuningtax.tasks.schema import read_tasks

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in (*OURS, "eager", *PEERS)]
    if unknown:
        raise UserError(f"--engines: unknown {unknown}")
    params = load_params(args.params)
    model = args.model or next(iter(params["models"]))
    if model not in params["models"]:
        raise UserError(f"{args.params}: models has no {model!r}")
    spec_fields = params["models"][model]
    spec = ModelSpec(name=model, **{k: spec_fields[k] for k in ("family", "role", "source", "revision")
                                    if k in spec_fields})
    spec_json = json.dumps({"name": model, **spec_fields})
    batch = args.batch_size or params["generation"]["batch_size"]
    onnx_dir = Path("data/04_onnx") / model / "fp32"
    if not (onnx_dir / "model.onnx").exists():
        raise UserError(f"{onnx_dir}/model.onnx not found: run the study first (make study)")
    tokenizer = load_tokenizer(onnx_dir)
    family = get_family(spec.family)
    stops = stop_token_ids(family, tokenizer)
    pad_id = pad_token_id(tokenizer, stops)
    jobs = study_jobs(params, model)
    if args.jobs:
        by_name = {f"{j['benchmark']}/{j['format']}": j for j in jobs}
        wanted = [name.strip() for name in args.jobs.split(",") if name.strip()]
        missing = [name for name in wanted if name not in by_name]
        if missing:
            raise UserError(f"--jobs: {missing} not among this model's jobs {sorted(by_name)}")
        jobs = [by_name[name] for name in wanted]  # in the order given
    for job in jobs:
        job["name"] = f"{job['benchmark']}/{job['format']}"
        job["max_new_tokens"] = _job_budget(params, job["tasks"])
        job["prompts"] = [render(job["format"], t, tokenizer, family, params["generation"]["max_prompt_tokens"],
                                 role=spec.role).input_ids for t in read_tasks(job["tasks"]).values()]

    hf_dir = gguf = None
    if any(e == "eager" or e in PEERS for e in engines):
        from tuningtax.models.sources import cache_root, resolve_source

        hf_dir = resolve_source(spec)
        ggufs = sorted((cache_root() / "gguf").rglob("*.gguf"))
        gguf = ggufs[0] if ggufs else None
    onnx_dirs = {e: onnx_dir for e in OURS}
    if "ours-int8" in engines:
        from tuningtax.bench.generate import BENCH_ONNX_ROOT, _ensure_export

        onnx_dirs["ours-int8"] = Path("data/04_onnx") / model / "int8"
        if not (onnx_dirs["ours-int8"] / "model.onnx").exists():
            onnx_dirs["ours-int8"] = BENCH_ONNX_ROOT.parent / model / "int8"
            _ensure_export(spec, "int8", onnx_dirs["ours-int8"], args.threads, onnx_dir)

    skipped: dict[str, str] = {}
    peer_dirs: dict[str, Path] = {}
    for engine in [e for e in engines if e in PEERS]:
        try:
            peer_dirs[engine] = peer_model(engine, hf_dir, gguf)
        except UserError as err:
            skipped[engine] = str(err)
            log(f"skipping {engine}: {err}")

    report: dict[str, Any] = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                                          "load_average_start": load_average()},
                              "model": model, "batch_size": batch, "threads": args.threads,
                              "eager_sample": args.eager_sample, "work": str(args.work), "jobs": {},
                              "skipped": skipped}
    results: dict[str, dict[str, dict]] = {e: {} for e in engines}
    for done, job in enumerate(jobs, 1):
        work = args.work / job["name"].replace("/", "__")
        work.mkdir(parents=True, exist_ok=True)
        for engine in engines:
            if engine in skipped:
                continue
            try:
                if engine == "eager":
                    # loaded again per job, as each of the study's jobs is a process of its own
                    result = run_eager([job], hf_dir, tokenizer, stops, pad_id, args.eager_sample,
                                       args.threads)[job["name"]]
                elif engine in OURS:
                    result = run_ours(engine, job, spec_json, model, onnx_dirs[engine], params, args.threads,
                                      batch, work)
                else:
                    result = run_peer(engine, peer_dirs[engine], job, stops, pad_id, batch, args.threads, work,
                                      tokenizer)
            except UserError as err:
                skipped[engine] = str(err)
                log(f"skipping {engine} from now on: {err}")
                continue
            results[engine][job["name"]] = result
            log(f"{job['name']}: {engine} {len(job['prompts'])} tasks in {result['wall_s']:.1f} s")
        # rewritten after every job, so an interrupted run keeps what it measured
        write_report(report, results, jobs[:done], engines, args.out)
    print_table(report)
    log(f"report: {args.out}")
    return 0


def write_report(report: dict, results: dict, jobs: list[dict], engines: list[str], out: Path) -> None:
    report["machine"]["load_average_end"] = load_average()
    report["jobs_done"] = [job["name"] for job in jobs]
    for job in jobs:
        report["jobs"][job["name"]] = {
            "tasks": len(job["prompts"]), "max_new_tokens": job["max_new_tokens"],
            "prompt_tokens": sum(map(len, job["prompts"])),
            "engines": {e: {k: v for k, v in results[e][job["name"]].items() if k != "outputs"}
                        for e in engines if job["name"] in results.get(e, {})}}
    summaries = {e: summarise(e, results[e], jobs) for e in engines if results.get(e)}
    reference = results.get("ours", {})
    for engine, summary in summaries.items():
        if engine != "ours" and reference:
            summary["identical_to_ours"] = agreement(reference, results[engine])
            if summary.get("tasks_per_s") and summaries.get("ours", {}).get("tasks_per_s"):
                summary["ours_speedup"] = round(summaries["ours"]["tasks_per_s"] / summary["tasks_per_s"], 3)
    report["engines"] = summaries
    report["goals"] = goals(results, jobs, summaries)
    write_text_atomic(out, json.dumps(report, indent=1) + "\n")


def goals(results: dict, jobs: list[dict], summaries: dict) -> dict[str, Any]:
    """The issue's targets, each as measured here (None where an engine did not run)."""
    ours = results.get("ours", {})
    flow = [j["name"] for j in jobs if j["format"].startswith("fim-psm")]

    def rate(engine: str, names: list[str]) -> float | None:
        got = results.get(engine, {})
        if not names or any(n not in got for n in names):
            return None
        tasks = sum(len(next(j for j in jobs if j["name"] == n)["prompts"]) for n in names)
        return tasks / sum(got[n]["wall_s"] for n in names)

    out: dict[str, Any] = {}
    if rate("eager", flow) and rate("ours", flow):
        out["flow_vs_eager_batch_1"] = round(rate("ours", flow) / rate("eager", flow), 2)
    chat, psm = "humaneval-single-line/fim-chat", "humaneval-single-line/fim-psm"
    if chat in ours and psm in ours:
        out["fim_chat_per_task_over_fim_psm"] = round(rate("ours", [psm]) / rate("ours", [chat]), 2)
    # each peer against ours at equal or lower precision: fp32 peers against ours fp32, the rest against int8
    for engine in [e for e in summaries if e in PEERS]:
        mine = "ours" if engine.endswith("fp32") else "ours-int8"
        names = [j["name"] for j in jobs if j["name"] in results.get(engine, {})]
        if rate(mine, names) and rate(engine, names):
            out[f"{mine}_over_{engine}"] = round(rate(mine, names) / rate(engine, names), 3)
    synthetic = Path(".cache/tuningtax/bench/generate.json")
    if synthetic.exists() and summaries.get("ours", {}).get("useful_tok_s"):
        figure = json.loads(synthetic.read_text()).get("engines", {}).get("ort-fp32-b8", {}).get("decode_tok_s")
        if figure:
            out["useful_tok_s_over_synthetic_batch_8"] = round(summaries["ours"]["useful_tok_s"] / figure, 3)
    return out


def print_table(report: dict) -> None:
    print(f"{'engine':<16} {'tasks':>5} {'wall s':>8} {'tasks/s':>8} {'tok/s':>7} {'pad %':>6} {'ours x':>7} "
          f"{'same as ours':>12}")
    for engine, s in report["engines"].items():
        same = s.get("identical_to_ours")
        same_text = f"{same['identical']}/{same['compared']}" if same else ""
        pad = s.get("padding_share")
        print(f"{engine:<16} {s['tasks']:>5} {s['wall_s']:>8.1f} {s['tasks_per_s'] or 0:>8.3f} "
              f"{s.get('useful_tok_s') or 0:>7.1f} {'' if pad is None else f'{100 * pad:.1f}':>6} "
              f"{s.get('ours_speedup') or '':>7} {same_text:>12}")
    ours = report["engines"].get("ours", {})
    if ours:
        print(f"ours: start-up to first prefill median {ours['first_prefill_s_median']} s, max "
              f"{ours['first_prefill_s_max']} s; exit max {ours['exit_s_max']} s; prefill share "
              f"{ours['prefill_share']}, decode share {ours['decode_share']}")
    for name, value in report["goals"].items():
        print(f"goal {name}: {value}")
    for engine, why in report["skipped"].items():
        print(f"skipped {engine}: {why}")
    m = report["machine"]
    print(f"load average {m['load_average_start']} at start, {m['load_average_end']} at end, on {m['cpu_count']} CPUs")
