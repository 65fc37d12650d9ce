"""Benchmark registry: one builder per benchmark name. Adding a benchmark = one module + one entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tuningtax.errors import UserError
from tuningtax.tasks import humaneval, random_span
from tuningtax.tasks.schema import Task


@dataclass(frozen=True)
class Benchmark:
    name: str
    build: Callable[..., list[Task]]
    expected_count: int
    needs_mirror: bool = False  # True when the data cannot be derived offline


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("humaneval-command", humaneval.command_tasks, 164),
    Benchmark("humaneval-completion", humaneval.completion_tasks, 164),
    Benchmark("humaneval-single-line", humaneval.single_line_tasks, 1033),
    Benchmark("humaneval-multi-line", humaneval.multi_line_tasks, 5815),
    Benchmark("humaneval-random-span", random_span.random_span_tasks, 1640, needs_mirror=True),
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
    return tasks
