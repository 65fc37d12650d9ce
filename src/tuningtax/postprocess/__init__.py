"""Post-processing levels: named, pure functions `(raw_output, task) -> completion`, each kept beside the
raw output so every score can say how much of it the post-processing made.

Every level reads the raw output (the decoded generated ids); `syntax-truncate` alone builds on
`code-extract`. Adding a level = one module with NAME, MODES and `apply` (and OPT_IN = True when it applies
only to the benchmarks that name it), plus one entry below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tuningtax.errors import UserError
from tuningtax.postprocess import code_extract, first_line, raw, safim_truncate, stop_cut, syntax_truncate
from tuningtax.tasks.registry import Benchmark, get_benchmark
from tuningtax.tasks.schema import Task


@dataclass(frozen=True)
class Level:
    name: str
    apply: Callable[[str, Task], str]
    modes: tuple[str, ...]  # task modes the level is defined for
    summary: str
    opt_in: bool = False  # applies only to benchmarks listing it in opt_in_levels

    def __call__(self, raw_output: str, task: Task) -> str:
        if task.mode not in self.modes:
            raise UserError(f"post-processing level {self.name!r} is not defined for {task.mode} tasks "
                            f"({task.task_id}); it applies to: {', '.join(self.modes)}")
        return self.apply(raw_output, task)


def _level(module) -> Level:
    summary = " ".join((module.__doc__ or "").strip().split("\n\n")[0].split())
    return Level(module.NAME, module.apply, tuple(module.MODES), summary, bool(getattr(module, "OPT_IN", False)))


LEVELS: dict[str, Level] = {lv.name: lv for lv in map(_level, (
    raw,
    stop_cut,
    first_line,
    code_extract,
    syntax_truncate,
    safim_truncate,
))}


def get_level(name: str) -> Level:
    try:
        return LEVELS[name]
    except KeyError:
        raise UserError(f"unknown post-processing level {name!r}; known: {', '.join(LEVELS)}") from None


def apply_levels(raw_output: str, task: Task, levels: Iterable[str]) -> dict[str, str]:
    """{level name: completion} for each requested level, in the order given."""
    return {name: get_level(name)(raw_output, task) for name in levels}


def levels_for(benchmark: Benchmark | str, configured: Iterable[str] | None = None) -> list[str]:
    """The levels scored for a benchmark, in the order given (default: the registry's): those serving its mode,
    opt-in ones only where its registry entry names them."""
    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    names = list(LEVELS) if configured is None else list(configured)
    return [n for n, level in ((n, get_level(n)) for n in names)
            if bench.mode in level.modes and (not level.opt_in or n in bench.opt_in_levels)]
