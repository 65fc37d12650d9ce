"""``python -m tuningtax bench agreement``: per-sample agreement between this project's scorers and the
reference scorers, on the same completions.

- EvalPlus benchmarks (humanevalplus-*, mbppplus-command): EvalPlus's own evaluator (``evalplus.evaluate``
  from evalplus 0.3.1, run in its own environment through ``uv tool run``, reading the benchmark file through
  HUMANEVAL_OVERRIDE_PATH / MBPP_OVERRIDE_PATH cut down to the problems in the completions) against
  ``execute``'s scorer, suite by suite (base, plus).
- SAFIM benchmarks: SAFIM's own rules, taken from a checkout of github.com/gonglinyuan/safim (api:
  ``syntax_match`` of its evaluate.py) and of github.com/ntunlp/ExecEval (block, control: the
  ``validate_outputs`` that ``init_validate_outputs`` of execution_engine.py builds; it needs gmpy2),
  executed from their source files, against ``execute``'s scorer. Programs run in this project's sandbox
  on both sides: only the rule differs.

Completions are the post-processed files of a study (``data/05_completions/.../{benchmark}/{format}/levels``,
every level) plus each problem's canonical solution. Disagreements are listed one per line. Writes only
under --work (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tuningtax.errors import UserError
from tuningtax.jsonl import read_jsonl
from tuningtax.sandbox.cli import config_for_tasks, execute_jobs
from tuningtax.sandbox.core import SandboxConfig
from tuningtax.scoring.scorers import programs_for
from tuningtax.tasks.evalplus import HUMANEVALPLUS, MBPPPLUS
from tuningtax.scoring.stdio import COMPILE_TIMEOUT_S, PER_TEST_TIMEOUT_S
from tuningtax.scoring.toolchains import TOOLCHAINS
from tuningtax.tasks.registry import build_tasks, get_benchmark
from tuningtax.tasks.safim import split_of
from tuningtax.tasks.schema import Task
from tuningtax.tasks.upstream import locate

EVALPLUS = "evalplus==0.3.1"
EVALPLUS_FILES = {"humanevalplus": ("humaneval", HUMANEVALPLUS, "HUMANEVAL_OVERRIDE_PATH"),
                  "mbppplus": ("mbpp", MBPPPLUS, "MBPP_OVERRIDE_PATH")}


def samples_of(benchmark: str, completions_root: Path, tasks: dict[str, Task]) -> list[dict]:
    """One record per (source, task): every level of every run of the benchmark, then the gold answers."""
    samples = []
    for path in sorted(completions_root.glob(f"*/*/{benchmark}/*/levels/*.jsonl")):
        run = "/".join(path.relative_to(completions_root).parts[:4]) + ":" + path.stem
        samples += [{"source": run, "task_id": r["task_id"], "completion": r["completion"]}
                    for r in read_jsonl(path) if r["task_id"] in tasks]
    problems = sorted({s["task_id"] for s in samples}) or sorted(tasks)
    samples += [{"source": "gold", "task_id": t, "completion": tasks[t].canonical_solution} for t in problems]
    return samples


def run_in_sandbox(samples: list[dict], programs: list[dict[str, str]], tasks: dict[str, Task], out: Path,
                   workers: int) -> list[dict]:
    """execute's rows for one {suite: program} per sample, under the limits the samples' scorer needs."""
    jobs = [(s["task_id"], n, p) for n, (s, p) in enumerate(zip(samples, programs))]
    config = config_for_tasks(SandboxConfig(workers=workers), [tasks[s["task_id"]] for s in samples])
    return execute_jobs(jobs, config, out, None)[0]


def ours(samples: list[dict], tasks: dict[str, Task], work: Path, workers: int) -> list[dict]:
    programs = [programs_for(tasks[s["task_id"]], s["completion"]) for s in samples]
    return run_in_sandbox(samples, programs, tasks, work / "ours.jsonl", workers)


# ------------------------------------------------------------------------------------------------ EvalPlus
def evalplus_reference(benchmark: str, samples: list[dict], work: Path, mirror: str | None, workers: int,
                       evalplus_command: list[str]) -> list[dict[str, bool]]:
    dataset, pinned, override_env = EVALPLUS_FILES[benchmark.split("-")[0]]
    wanted = {s["task_id"] for s in samples}
    with gzip.open(locate(pinned, mirror), "rt", encoding="utf-8") as fh:
        problems = [line for line in fh if json.loads(line)["task_id"] in wanted]
    override = work / f"{dataset}-override.jsonl"
    override.write_text("".join(problems), encoding="utf-8")
    # evalplus reads prompt + completion for completions, the solution alone for whole programs
    field = "completion" if get_benchmark(benchmark).mode == "completion" else "solution"
    sample_file = work / "evalplus-samples.jsonl"
    sample_file.write_text("".join(json.dumps({"task_id": s["task_id"], field: s["completion"]}) + "\n"
                                   for s in samples), encoding="utf-8")
    # an old results file would be reloaded as-is (or, with --i-just-wanna-run, make evalplus ask on stdin)
    (work / "evalplus-samples_eval_results.json").unlink(missing_ok=True)
    env = {**os.environ, override_env: str(override), "XDG_CACHE_HOME": str(work / "cache")}
    command = [*evalplus_command, "--dataset", dataset, "--samples", str(sample_file), "--parallel", str(workers),
               "--i-just-wanna-run"]
    print("$ " + " ".join(command), file=sys.stderr)
    done = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    (work / "evalplus.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise UserError(f"evalplus failed (exit {done.returncode}); its output: {work / 'evalplus.log'}")
    print("\n".join(line for line in done.stdout.splitlines() if "pass@" in line or "tests)" in line), file=sys.stderr)
    results = json.loads((work / "evalplus-samples_eval_results.json").read_text())["eval"]
    seen: dict[str, int] = {}
    verdicts = []
    for s in samples:  # evalplus keeps each task's samples in file order
        n = seen[s["task_id"]] = seen.get(s["task_id"], -1) + 1
        record = results[s["task_id"]][n]
        verdicts.append({"base": record["base_status"] == "pass", "plus": record["plus_status"] == "pass"})
    return verdicts


# --------------------------------------------------------------------------------------------------- SAFIM
def _functions(path: Path, names: tuple[str, ...], constants: tuple[str, ...] = ()) -> str:
    """The source of the named top-level functions and assignments of a file, to run them as written."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    kept = [node for node in tree.body
            if (isinstance(node, ast.FunctionDef) and node.name in names)
            or (isinstance(node, ast.Assign) and any(getattr(t, "id", None) in constants for t in node.targets))]
    missing = set(names) - {n.name for n in kept if isinstance(n, ast.FunctionDef)}
    if missing:
        raise UserError(f"{path}: has no {', '.join(sorted(missing))}; is it the reference checkout?")
    return "\n\n".join(ast.get_source_segment(source, node) for node in kept)


SAFIM_API_PROGRAM = '''
import ast, re
{functions}
if not syntax_match({completion!r}, {truth!r}, {language!r}):
    raise AssertionError("no match by SAFIM's syntax_match")
'''

# ExecEval runs each test as its own process and judges stdout with validate_outputs (first failure ends).
EXECEVAL_PROGRAM = '''
import subprocess, sys
import gmpy2
{functions}
source = {source!r}
open({source_file!r}, "w").write(source)
if {compile_command!r}:
    assert subprocess.run({compile_command!r}, capture_output=True,
                          timeout={compile_timeout!r}).returncode == 0, "compilation error"
else:
    compile(source, "test.py", "exec")
command = [sys.executable if part == "{{python}}" else part for part in {run_command!r}]
for test in {tests!r}:
    run = subprocess.run(command, input=test["input"].encode("ascii", "ignore"), capture_output=True,
                         timeout={timeout!r})
    assert run.returncode == 0, "runtime error"
    result = run.stdout.decode(errors="ignore").strip()
    assert any(validate_outputs(expected.replace("\\r", ""), result) for expected in test["output"]), "wrong answer"
'''


def safim_reference(benchmark: str, samples: list[dict], tasks: dict[str, Task], work: Path, workers: int,
                    safim_repo: Path | None, execeval_repo: Path | None) -> list[dict[str, bool]]:
    language = get_benchmark(benchmark).language
    toolchain = TOOLCHAINS[language]
    if split_of(benchmark) == "api":
        if safim_repo is None:
            raise UserError(f"{benchmark}: pass --safim-repo, a checkout of github.com/gonglinyuan/safim")
        functions = _functions(safim_repo / "evaluate.py", ("get_function_call_params", "function_calls_match",
                                                             "syntax_match"))
        programs = [SAFIM_API_PROGRAM.format(functions=functions, completion=s["completion"], language=language,
                                             truth=tasks[s["task_id"]].canonical_solution) for s in samples]
    else:
        if execeval_repo is None:
            raise UserError(f"{benchmark}: pass --execeval-repo, a checkout of github.com/ntunlp/ExecEval")
        # ExecEval builds its comparison in a factory (init_validate_outputs), the engine calls what it returns
        functions = _functions(execeval_repo / "execution_engine" / "execution_engine.py",
                               ("init_validate_outputs",)) + "\n\nvalidate_outputs = init_validate_outputs()"
        programs = []
        for s in samples:
            task = tasks[s["task_id"]]
            source = (task.prompt + s["completion"] + task.suffix).replace("\r", "")
            # the compile and run commands are SAFIM's runtimes (the same on both sides); only the rule differs
            source_file, compile_command, run_command = toolchain.commands(source)
            programs.append(EXECEVAL_PROGRAM.format(
                functions=functions, tests=json.loads(task.test), source=source, source_file=source_file,
                compile_command=compile_command, run_command=run_command, compile_timeout=COMPILE_TIMEOUT_S,
                timeout=PER_TEST_TIMEOUT_S))
    rows = run_in_sandbox(samples, [{"": p} for p in programs], tasks, work / "reference.jsonl", workers)
    for row in rows:
        if row["status"] == "failed" and "ModuleNotFoundError" in row["detail"]:
            raise UserError(f"the reference rule cannot run: {row['detail']}; install gmpy2 in the venv")
    return [{"all": r["passed"]} for r in rows]


# ---------------------------------------------------------------------------------------------------- main
def compare(samples: list[dict], ours_rows: list[dict], reference: list[dict[str, bool]]) -> tuple[dict, list[str]]:
    counts: dict[str, list[int]] = {}
    disagreements = []
    for sample, row, ref in zip(samples, ours_rows, reference):
        for suite, ref_pass in ref.items():
            our_pass = row["passed"] if suite == "all" else row["suites"][suite] == "passed"
            agree = counts.setdefault(suite, [0, 0])
            agree[0] += our_pass == ref_pass
            agree[1] += 1
            if our_pass != ref_pass:
                disagreements.append(f"{sample['source']} {sample['task_id']} [{suite}]: ours "
                                     f"{'pass' if our_pass else 'fail'} ({row['detail'][:120]}), reference "
                                     f"{'pass' if ref_pass else 'fail'}")
    return counts, disagreements


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tuningtax bench agreement", description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", action="append", required=True,
                        help="humanevalplus-command, humanevalplus-completion, mbppplus-command, safim-block, "
                             "safim-control, safim-api or a SAFIM language split such as safim-block-java "
                             "(repeatable)")
    parser.add_argument("--completions-root", type=Path, default=Path("data/05_completions"))
    parser.add_argument("--mirror", default="../shared/benchmarks")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--evalplus-command", default=f"uv tool run --from {EVALPLUS} evalplus.evaluate",
                        help="how to start EvalPlus's evaluator (default: its pinned release in its own env)")
    parser.add_argument("--safim-repo", type=Path)
    parser.add_argument("--execeval-repo", type=Path)
    parser.add_argument("--work", type=Path, help="keep the files of both sides here (default: a temp folder)")
    args = parser.parse_args(argv)
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    evalplus_command = [uv if part == "uv" else part for part in args.evalplus_command.split()]
    status = 0
    for benchmark in args.benchmark:
        tasks = {t.task_id: t for t in build_tasks(benchmark, args.mirror)}
        samples = samples_of(benchmark, args.completions_root, tasks)
        with tempfile.TemporaryDirectory(prefix="tuningtax-agreement-") as tmp:
            work = (args.work / benchmark) if args.work else Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            print(f"{benchmark}: {len(samples)} samples ({sum(s['source'] == 'gold' for s in samples)} gold)",
                  file=sys.stderr)
            ours_rows = ours(samples, tasks, work, args.workers)
            if get_benchmark(benchmark).scorer == "evalplus":
                reference = evalplus_reference(benchmark, samples, work, args.mirror, args.workers, evalplus_command)
            else:
                reference = safim_reference(benchmark, samples, tasks, work, args.workers, args.safim_repo,
                                            args.execeval_repo)
            counts, disagreements = compare(samples, ours_rows, reference)
        n_model = sum(s["source"] != "gold" for s in samples)
        for suite, (agree, total) in counts.items():
            print(f"{benchmark} [{suite}]: agreement {agree}/{total} = {agree / total:.1%} "
                  f"({n_model} model samples + {total - n_model} gold)")
        for line in disagreements:
            print("  disagree: " + line)
        status |= bool(disagreements)
    return status
