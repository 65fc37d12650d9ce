"""Level `raw`: the generated text exactly as decoded (the generated ids only, as the generator decoded them)."""

from __future__ import annotations

from tuningtax.tasks.schema import Task

NAME = "raw"
MODES = ("flow", "completion", "command")


def apply(raw_output: str, task: Task) -> str:
    return raw_output
