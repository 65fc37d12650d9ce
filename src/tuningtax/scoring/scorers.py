"""Scorer registry: how a task and a completion become the program the sandbox runs. A benchmark's registry
entry names its scorer; adding one = a function `(task, completion) -> program` plus one entry below.

The sandbox counts a pass only when the program returned, exit code 0, and the child then wrote its random
per-sample marker to a status pipe (docs/sandbox.md): a program passes only when every statement of it,
the tests included, ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tuningtax.tasks.schema import Task


@dataclass(frozen=True)
class Scorer:
    name: str
    build_program: Callable[[Task, str], str]
    summary: str


def check_function_program(task: Task, completion: str) -> str:
    """HumanEval's protocol: the task's test defines check(candidate), called on the entry point. Command
    answers are whole programs; Flow and Completion answers are spliced between prefix and suffix."""
    check = f"\n{task.test}\ncheck({task.entry_point})\n"
    if task.mode == "command":
        return completion + "\n" + check
    return task.prompt + completion + task.suffix + "\n" + check


SCORERS: dict[str, Scorer] = {s.name: s for s in (
    Scorer("check-function", check_function_program, "test defines check(candidate); called on the entry point"),
)}


def program_for(task: Task, completion: str) -> str:
    """The exact program the sandbox runs for this completion, by the scorer of the task's benchmark."""
    from tuningtax.tasks.registry import get_benchmark

    return SCORERS[get_benchmark(task.benchmark).scorer].build_program(task, completion)
