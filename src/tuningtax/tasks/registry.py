"""Benchmark registry: the one list of benchmarks. Adding a benchmark = one builder module + one entry here.

An entry carries everything the pipeline asks about a benchmark: its builder and task count, the mode its
tasks are in (which decides generation budgets, subsets and which prompt formats fit), the post-processing
levels that apply (tuningtax.postprocess.levels_for: every level serving its mode, plus the opt-in levels
it names) and the scorer that
turns a completion into the program the sandbox runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tuningtax.errors import UserError
from tuningtax.scoring.scorers import SCORERS
from tuningtax.scoring.toolchains import TOOLCHAINS, missing_executables
from tuningtax.tasks import evalplus, humaneval, random_span, safim
from tuningtax.tasks.schema import MODES, Task


@dataclass(frozen=True)
class Benchmark:
    name: str
    build: Callable[..., list[Task]]
    expected_count: int
    mode: str  # flow | completion | command: every task it builds is in this mode
    scorer: str = "check-function"  # key of tuningtax.scoring.scorers.SCORERS
    opt_in_levels: tuple[str, ...] = ()  # opt-in post-processing levels that apply to it
    needs_mirror: bool = False  # True when the data cannot be derived offline
    language: str = "python"  # key of tuningtax.scoring.toolchains.TOOLCHAINS: what runs its programs

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"benchmark {self.name}: mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.language not in TOOLCHAINS:
            raise ValueError(f"benchmark {self.name}: language {self.language!r} is not one of {', '.join(TOOLCHAINS)}")
        if self.scorer not in SCORERS:
            raise ValueError(f"benchmark {self.name}: scorer {self.scorer!r} is not one of {', '.join(SCORERS)}")


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("humaneval-command", humaneval.command_tasks, 164, mode="command"),
    Benchmark("humaneval-completion", humaneval.completion_tasks, 164, mode="completion"),
    # first-line is the study's single-line rule: it means nothing for longer holes.
    Benchmark("humaneval-single-line", humaneval.single_line_tasks, 1033, mode="flow", opt_in_levels=("first-line",)),
    Benchmark("humaneval-multi-line", humaneval.multi_line_tasks, 5815, mode="flow"),
    Benchmark("humaneval-random-span", random_span.random_span_tasks, 1640, mode="flow", needs_mirror=True),
    # EvalPlus: HumanEval's problems with base and plus inputs, judged against the canonical solution.
    Benchmark("humanevalplus-command", evalplus.command_tasks, evalplus.kept(164, "HumanEval/"), mode="command",
              scorer="evalplus", needs_mirror=True),
    Benchmark("humanevalplus-completion", evalplus.completion_tasks, evalplus.kept(164, "HumanEval/"),
              mode="completion", scorer="evalplus", needs_mirror=True),
    Benchmark("mbppplus-command", evalplus.mbpp_command_tasks, evalplus.kept(378, "Mbpp/"), mode="command",
              scorer="evalplus", needs_mirror=True),
    # SAFIM, Python split; safim-truncate is SAFIM's own post-processing for its three hole kinds.
    Benchmark("safim-block", safim.block_tasks, 805, mode="flow", scorer="stdio",
              opt_in_levels=("safim-truncate",), needs_mirror=True),
    Benchmark("safim-control", safim.control_tasks, 750, mode="flow", scorer="stdio",
              opt_in_levels=("safim-truncate",), needs_mirror=True),
    Benchmark("safim-api", safim.api_tasks, 181, mode="flow", scorer="safim-api",
              opt_in_levels=("safim-truncate",), needs_mirror=True),
    # SAFIM's Java, C++ and C# splits: opt-in, skipped where the language's toolchain is missing.
    *(Benchmark(safim.benchmark_name(split, lang), safim.builder(split, lang), count, mode="flow",
                scorer="safim-api" if split == "api" else "stdio", opt_in_levels=("safim-truncate",),
                needs_mirror=True, language=lang)
      for lang, counts in (("java", (2479, 2464, 56)), ("cpp", (4968, 4881, 52)), ("csharp", (529, 534, 21)))
      for split, count in zip(("block", "control", "api"), counts)),
)}


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise UserError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None


def build_tasks(name: str, mirror: str | None = None) -> list[Task]:
    bench = get_benchmark(name)
    tasks = bench.build(mirror) if bench.needs_mirror else bench.build()
    if len(tasks) != bench.expected_count:
        raise UserError(f"{name}: built {len(tasks)} tasks, expected {bench.expected_count}; "
                        "the source data changed: check its version")
    wrong = [t.task_id for t in tasks if t.mode != bench.mode or t.benchmark != name]
    if wrong:
        raise UserError(f"{name}: {len(wrong)} task(s) are not {bench.mode} tasks of {name}, e.g. {wrong[0]}; "
                        "the builder and the registry entry disagree")
    return tasks


def missing_toolchain(name: str) -> str | None:
    """Why a benchmark cannot be scored on this machine (its language's executables are not on PATH), or None."""
    bench = get_benchmark(name)
    if not SCORERS[bench.scorer].uses_toolchain:  # the API splits are matched, never compiled
        return None
    missing = missing_executables(bench.language)
    if not missing:
        return None
    return (f"{name} needs {', '.join(missing)} on PATH, which this machine lacks; "
            f"install {TOOLCHAINS[bench.language].install} to include it")
