"""``python -m tuningtax bench realmix-pass``: what each engine's precision costs in pass@1 on the real mix.

Reads the outputs the last ``bench realmix`` run left in its work folders (``.cache/tuningtax/bench/realmix``)
and scores every engine's outputs the study's way: ``python -m tuningtax postprocess`` at each level the
study scores for the job's benchmark, then ``python -m tuningtax execute`` in the sandbox (``params.yaml``'s
``sandbox`` settings). Run it after the timing run, not beside it: it executes programs.

Each job is scored at one level for every engine: the level where ``ours`` (fp32) passes most, so a
precision's cost is measured on the same post-processing. Per engine and job the report gives passes,
the tasks where only ``ours`` or only the engine passes, and the exact McNemar p-value of that pair.
Transformers eager ran on a sample only, so it is not scored (its tokens are compared with ours by
``bench realmix``). The report (JSON) goes to ``--out``, outside everything DVC tracks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tuningtax.errors import UserError
from tuningtax.jsonl import iter_jsonl, write_jsonl, write_text_atomic

REFERENCE = "ours"


def engine_records(work: Path, engine: str, task_ids: list[str], tokenizer: Any, stops: list[int]) -> list[dict]:
    """The engine's outputs as completion records (task_id, sample, raw_output), in task order."""
    from tuningtax.bench.realmix import _as_output

    ours_file, peer_file = work / f"{engine}.jsonl", work / f"{engine}.json"
    if ours_file.is_file():
        records = [{"task_id": r["task_id"], "sample": r["sample"], "raw_output": r["raw_output"]}
                   for r in iter_jsonl(ours_file)]
    elif peer_file.is_file():
        tokens = json.loads(peer_file.read_text())["tokens"]
        if len(tokens) != len(task_ids):
            raise UserError(f"{peer_file}: {len(tokens)} outputs for {len(task_ids)} tasks; rerun bench realmix")
        records = [{"task_id": t, "sample": 0, "raw_output": _as_output(row, stops, tokenizer)[0]}
                   for t, row in zip(task_ids, tokens)]
    else:
        raise UserError(f"{work} holds no outputs of {engine}; run bench realmix with --engines {engine}")
    if sorted(r["task_id"] for r in records) != sorted(task_ids):
        raise UserError(f"{work}: {engine}'s outputs answer other tasks than the job's; rerun bench realmix")
    return records


def execute(tasks: Path, records: list[dict], levels: list[str], folder: Path, sandbox: dict) -> dict[str, dict]:
    """{level: {task_id: passed}} through the study's own postprocess and execute commands."""
    folder.mkdir(parents=True, exist_ok=True)
    completions, levels_dir, executions = folder / "raw.jsonl", folder / "levels", folder / "executions"
    write_jsonl(completions, records)
    steps = [["postprocess", "--tasks", str(tasks), "--completions", str(completions), "--levels", ",".join(levels),
              "--out", str(levels_dir)],
             ["execute", "--tasks", str(tasks), "--completions", str(levels_dir), "--out", str(executions),
              "--workers", str(sandbox["workers"] or os.cpu_count() or 1), "--timeout", str(sandbox["timeout_s"]),
              "--memory-mb", str(sandbox["memory_mb"]), "--backend", sandbox["backend"]]]
    for step in steps:
        proc = subprocess.run([sys.executable, "-m", "tuningtax", *step], capture_output=True, text=True)
        if proc.returncode != 0:
            raise UserError(f"{step[0]} on {folder} failed:\n{proc.stderr[-1500:]}")
    return {level: {r["task_id"]: bool(r["passed"]) for r in iter_jsonl(executions / f"{level}.jsonl")}
            for level in levels}


def paired(reference: dict[str, bool], other: dict[str, bool]) -> dict[str, Any]:
    only_ref = sum(reference[t] and not other[t] for t in reference)
    only_other = sum(other[t] and not reference[t] for t in reference)
    return {"passed": sum(other.values()), "tasks": len(other), **discordance(only_ref, only_other)}


def discordance(only_ours: int, only_engine: int) -> dict[str, Any]:
    from tuningtax.analysis.stats import mcnemar_exact_p

    return {"only_ours": only_ours, "only_engine": only_engine,
            "mcnemar_p": round(mcnemar_exact_p(only_ours, only_engine), 4)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuningtax bench realmix-pass", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--report", type=Path, default=Path(".cache/tuningtax/bench/realmix.json"),
                        help="the bench realmix report whose outputs to score")
    parser.add_argument("--work", type=Path, help="the run's work folder (default: the one its report names)")
    parser.add_argument("--out", type=Path, default=Path(".cache/tuningtax/bench/realmix-pass.json"))
    args = parser.parse_args(argv)

    from tuningtax.bench.realmix import WORK_ROOT, study_jobs
    from tuningtax.config import load_params
    from tuningtax.generate.engine import load_tokenizer
    from tuningtax.models.families import get_family, stop_token_ids
    from tuningtax.postprocess import levels_for
    from tuningtax.tasks.schema import read_tasks

    if not args.report.is_file():
        raise UserError(f"{args.report} not found: run python -m tuningtax bench realmix first")
    report = json.loads(args.report.read_text())
    params = load_params(args.params)
    model = report["model"]
    work_root = args.work or Path(report.get("work", WORK_ROOT))
    if model not in params["models"]:
        raise UserError(f"{args.report}: model {model!r} is not in {args.params}")
    engines = [e for e in report["engines"] if e != "eager"]
    if REFERENCE not in engines:
        raise UserError(f"{args.report}: no {REFERENCE} outputs to compare with; run bench realmix with ours")
    tokenizer = load_tokenizer(Path("data/04_onnx") / model / "fp32")
    stops = stop_token_ids(get_family(params["models"][model]["family"]), tokenizer)
    jobs = {f"{j['benchmark']}/{j['format']}": j for j in study_jobs(params, model)}

    out: dict[str, Any] = {"model": model, "report": str(args.report), "jobs": {}, "engines": {}}
    for name in report["jobs_done"]:
        if name not in jobs:
            raise UserError(f"{args.report}: job {name} is not among {args.params}'s runs")
        job, work = jobs[name], work_root / name.replace("/", "__")
        tasks = read_tasks(job["tasks"])
        levels = levels_for(job["benchmark"], params["levels"])
        ran = [e for e in engines if e in report["jobs"][name]["engines"]]
        print(f"[bench realmix-pass] {name}: {len(tasks)} tasks, engines {', '.join(ran)}", file=sys.stderr,
              flush=True)
        reference = execute(job["tasks"], engine_records(work, REFERENCE, list(tasks), tokenizer, stops), levels,
                            work / "pass" / REFERENCE, params["sandbox"])
        level = max(levels, key=lambda lv: (sum(reference[lv].values()), -levels.index(lv)))
        scored = {REFERENCE: {"passed": sum(reference[level].values()), "tasks": len(tasks),
                              "by_level": {lv: sum(v.values()) for lv, v in reference.items()}}}
        for engine in [e for e in ran if e != REFERENCE]:
            other = execute(job["tasks"], engine_records(work, engine, list(tasks), tokenizer, stops), [level],
                            work / "pass" / engine, params["sandbox"])
            scored[engine] = paired(reference[level], other[level])
        out["jobs"][name] = {"level": level, "engines": scored}
        write_text_atomic(args.out, json.dumps(out, indent=1) + "\n")

    for engine in engines:
        rows = [job["engines"][engine] for job in out["jobs"].values() if engine in job["engines"]]
        if not rows:
            continue
        total = {"passed": sum(r["passed"] for r in rows), "tasks": sum(r["tasks"] for r in rows)}
        if engine != REFERENCE:
            total.update(discordance(sum(r["only_ours"] for r in rows), sum(r["only_engine"] for r in rows)))
        total["pass_at_1"] = round(total["passed"] / total["tasks"], 4) if total["tasks"] else None
        out["engines"][engine] = total
    write_text_atomic(args.out, json.dumps(out, indent=1) + "\n")
    print(f"{'engine':<12} {'passed':>7} {'tasks':>6} {'pass@1':>7} {'only ours':>9} {'only it':>8} {'p':>7}")
    for engine, t in out["engines"].items():
        print(f"{engine:<12} {t['passed']:>7} {t['tasks']:>6} {t['pass_at_1']:>7} {t.get('only_ours', ''):>9} "
              f"{t.get('only_engine', ''):>8} {t.get('mcnemar_p', ''):>7}")
    print(f"[bench realmix-pass] report: {args.out}", file=sys.stderr)
    return 0
