"""HumanEval+ and MBPP+ (EvalPlus, Liu et al., NeurIPS 2023): HumanEval's 164 and MBPP's 378 (sanitized,
curated) problems with EvalPlus's inputs, judged by differential testing against the canonical solution
(tuningtax.scoring.evalplus_check): `base` = the original inputs, `plus` = EvalPlus's added ones.

Read from the pinned releases (github.com/evalplus/humanevalplus_release v0.1.10, mbppplus_release
v0.2.0) or the local mirror, by sha256. HumanEval+ problem ids are HumanEval's (`HumanEval/0`), so subsets
keep the same problems as the other HumanEval benchmarks and the per-problem views line up.

MBPP+ inputs are stored as JSON, which has no tuples, sets or complex numbers; EvalPlus converts them back
per problem (evalplus/data/mbpp.py `mbpp_deserialize_inputs`). MBPP_INPUT_KINDS below is that table, by
problem number; the scorer applies the conversion in the sandbox.
"""

from __future__ import annotations

import json

from tuningtax.jsonl import read_jsonl
from tuningtax.tasks.humaneval import COMMAND_INSTRUCTION
from tuningtax.tasks.schema import Task
from tuningtax.tasks.upstream import PinnedFile, locate

HUMANEVALPLUS = PinnedFile(
    "humanevalplus", "humanevalplus", "HumanEvalPlus.jsonl.gz",
    "https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/HumanEvalPlus.jsonl.gz",
    "272720b90ac375502c8ed23cd791c2a93dfb22a911641a494da74a426c09f101")

MBPPPLUS = PinnedFile(
    "mbppplus", "mbppplus", "MbppPlus.jsonl.gz",
    "https://github.com/evalplus/mbppplus_release/releases/download/v0.2.0/MbppPlus.jsonl.gz",
    "af43697e8791c4c149bdfd6b489d8b5412507551ac20e28a439f650b8225db63")

# evalplus 0.3.1 mbpp_deserialize_inputs, as data: conversion kind -> MBPP problem numbers.
_KIND_OF_PROBLEMS = {
    "args-tuples": (2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726,
                    740, 744, 809),
    "args-lists-of-tuples": (63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780),
    "first-list-of-tuples": (75, 413, 444, 753),
    "second-tuple": (106, 750),
    "list-of-sets": (115,),
    "float-complex": (124,),
    "first-tuple": (250, 405, 446, 617, 720, 763, 808),
    "tuples-of-tuples": (259, 401, 445),
    "first-mixed-tuple": (278,),
    "first-tuple-of-three": (307,),
    "dict-of-tuples": (722,),
    "complex": (252,),
    "all-tuples": (580, 615, 791),
}
MBPP_INPUT_KINDS = {n: kind for kind, numbers in _KIND_OF_PROBLEMS.items() for n in numbers}
# EvalPlus compares only `output is not None` for these (evaluate.py, _special_oracle.py).
MBPP_OUTPUT_NOT_NONE = ("check_str", "text_match_three", "text_starta_endb")

# Problems no answer can pass under EvalPlus's own evaluator, left out by id (README, "Benchmarks").
EXCLUDED: dict[str, str] = {
    "HumanEval/32": "evalplus 0.3.1 fails every answer to find_zero, the canonical solution included: its "
                    "special oracle `continue`s past the step that records the input as passed",
    "Mbpp/255": "evalplus 0.3.1 fails the canonical solution on the plus inputs under its default 4 GiB memory "
                "limit (one answer holds about 1.66 million tuples)",
}


def kept(total: int, id_prefix: str) -> int:
    return total - sum(task_id.startswith(id_prefix) for task_id in EXCLUDED)


def judge_spec(problem: dict, dataset: str) -> str:
    """What the evalplus scorer needs besides the answer, as the task's `test` (JSON)."""
    kind = MBPP_INPUT_KINDS.get(int(problem["task_id"].split("/")[1]), "") if dataset == "mbpp" else ""
    return json.dumps({"dataset": dataset, "atol": problem["atol"], "reference": problem["prompt"]
                       + problem["canonical_solution"], "base_input": problem["base_input"],
                       "plus_input": problem["plus_input"], "input_kind": kind,
                       "output_not_none": dataset == "mbpp" and problem["entry_point"] in MBPP_OUTPUT_NOT_NONE},
                      sort_keys=True)


def _problems(mirror: str | None) -> list[dict]:
    return [p for p in read_jsonl(locate(HUMANEVALPLUS, mirror)) if p["task_id"] not in EXCLUDED]


def command_tasks(mirror: str | None = None) -> list[Task]:
    return [
        Task(task_id=p["task_id"], benchmark="humanevalplus-command", mode="command", prompt=p["prompt"],
             suffix="", canonical_solution=p["prompt"] + p["canonical_solution"], test=judge_spec(p, "humaneval"),
             entry_point=p["entry_point"], instruction=COMMAND_INSTRUCTION.format(prompt=p["prompt"].strip()),
             source_id=p["task_id"])
        for p in _problems(mirror)
    ]


def completion_tasks(mirror: str | None = None) -> list[Task]:
    return [
        Task(task_id=p["task_id"], benchmark="humanevalplus-completion", mode="completion", prompt=p["prompt"],
             suffix="", canonical_solution=p["canonical_solution"], test=judge_spec(p, "humaneval"),
             entry_point=p["entry_point"], instruction="", source_id=p["task_id"])
        for p in _problems(mirror)
    ]


def mbpp_command_tasks(mirror: str | None = None) -> list[Task]:
    return [
        Task(task_id=p["task_id"], benchmark="mbppplus-command", mode="command", prompt=p["prompt"], suffix="",
             canonical_solution=p["canonical_solution"], test=judge_spec(p, "mbpp"), entry_point=p["entry_point"],
             instruction=COMMAND_INSTRUCTION.format(prompt=p["prompt"].strip()), source_id=p["task_id"])
        for p in read_jsonl(locate(MBPPPLUS, mirror)) if p["task_id"] not in EXCLUDED
    ]
