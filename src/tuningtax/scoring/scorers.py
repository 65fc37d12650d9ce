"""Scorer registry: how a task and a completion become the program(s) the sandbox runs. A benchmark's
registry entry names its scorer; adding one = a program builder plus one entry below.

The sandbox counts a pass only when the program returned, exit code 0, and the child then wrote its random
per-sample marker to a status pipe (docs/sandbox.md): a program passes only when every statement of it,
the tests included, ran. A scorer with suites (EvalPlus's base and plus inputs) builds one program per
suite; the completion passes when every suite passes, and each suite's outcome is kept beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tuningtax.scoring.api_match import api_match_program
from tuningtax.scoring.evalplus_check import (EVALPLUS_MEMORY_MB, SUITE_CAP_S, SUITES as EVALPLUS_SUITES,
                                              evalplus_program)
from tuningtax.scoring.stdio import COMPILE_TIMEOUT_S, PER_TEST_TIMEOUT_S, stdio_program
from tuningtax.scoring.toolchains import TOOLCHAINS
from tuningtax.tasks.schema import Task


IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"


@dataclass(frozen=True)
class Scorer:
    name: str
    build_program: Callable[..., str]  # (task, completion) or, with suites, (task, completion, suite)
    summary: str
    suites: tuple[str, ...] = ()
    # Programs that enforce their own per-test limits need this much wall time at least (the sandbox's
    # configured timeout applies when it is longer).
    min_timeout_s: float = 0.0
    min_memory_mb: int = 0  # likewise for the address-space limit
    # Compiles and runs the task's language (tuningtax.scoring.toolchains), whose limits then apply too.
    uses_toolchain: bool = False
    # What every task of its benchmarks carries (checked by the `tasks` expectation suite).
    test_pattern: str = r"def check\("
    entry_point_pattern: str = IDENTIFIER


def check_function_program(task: Task, completion: str) -> str:
    """HumanEval's protocol: the task's test defines check(candidate), called on the entry point. Command
    answers are whole programs; Flow and Completion answers are spliced between prefix and suffix."""
    check = f"\n{task.test}\ncheck({task.entry_point})\n"
    if task.mode == "command":
        return completion + "\n" + check
    return task.prompt + completion + task.suffix + "\n" + check


SCORERS: dict[str, Scorer] = {s.name: s for s in (
    Scorer("check-function", check_function_program, "test defines check(candidate); called on the entry point"),
    Scorer("stdio", stdio_program, "SAFIM/ExecEval: run per unit test on its stdin, compare stdout leniently",
           min_timeout_s=7 * PER_TEST_TIMEOUT_S + 5, test_pattern=r'^\[\{"input": ', entry_point_pattern="^$",
           uses_toolchain=True),
    Scorer("safim-api", api_match_program, "SAFIM: the call's arguments match the true call's (AST)",
           test_pattern="^$", entry_point_pattern="^$"),
    Scorer("evalplus", evalplus_program, "EvalPlus: outputs equal the canonical solution's, per-input time limits",
           # the canonical solution runs first (untimed, as EvalPlus runs it), then the answer within its cap
           suites=EVALPLUS_SUITES, min_timeout_s=2 * SUITE_CAP_S + 5, min_memory_mb=EVALPLUS_MEMORY_MB,
           test_pattern='"base_input": '),
)}


def scorer_of(task: Task) -> Scorer:
    from tuningtax.tasks.registry import get_benchmark

    return SCORERS[get_benchmark(task.benchmark).scorer]


def programs_for(task: Task, completion: str) -> dict[str, str]:
    """{suite: program} by the scorer of the task's benchmark; the one suite of a plain scorer is ""."""
    scorer = scorer_of(task)
    if not scorer.suites:
        return {"": scorer.build_program(task, completion)}
    return {suite: scorer.build_program(task, completion, suite) for suite in scorer.suites}


def program_for(task: Task, completion: str) -> str:
    """The one program of a scorer without suites (benchmarks with suites: programs_for)."""
    programs = programs_for(task, completion)
    if len(programs) != 1:
        raise ValueError(f"{task.benchmark} is scored by {len(programs)} programs; use programs_for")
    return next(iter(programs.values()))


def limits_for(tasks, timeout_s: float, memory_mb: int) -> tuple[float, int]:
    """The sandbox's (wall timeout, memory) for these tasks: the configured ones, or more where a scorer
    needs it."""
    from tuningtax.tasks.registry import get_benchmark

    tasks = list(tasks)
    scorers = {scorer_of(t).name: scorer_of(t) for t in tasks}.values()
    # a compiled language adds its compile step to the wall time and may need more address space (the JVM)
    toolchains = {TOOLCHAINS[get_benchmark(t.benchmark).language] for t in tasks if scorer_of(t).uses_toolchain}
    compile_s = COMPILE_TIMEOUT_S if any(t.compile for t in toolchains) else 0.0
    return (max([timeout_s, *(s.min_timeout_s + compile_s for s in scorers)]),
            max([memory_mb, *(s.min_memory_mb for s in scorers), *(t.memory_mb for t in toolchains)]))
