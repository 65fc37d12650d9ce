"""The gold gate of every SAFIM and EvalPlus benchmark over all of its tasks: each canonical solution passes
through the same scorer and sandbox that score model outputs (docs/benchmarks.md, "Gold gates")."""

from __future__ import annotations

import json

import pytest

from conftest import BENCHMARK_MIRROR
from tuningtax.cli import main

WIDER = ("humanevalplus-command", "humanevalplus-completion", "mbppplus-command", "safim-block", "safim-control",
         "safim-api")


@pytest.mark.slow  # about 4 minutes on 2 cores for all six
@pytest.mark.parametrize("benchmark", WIDER)
def test_gold_gate_passes_on_every_task(benchmark, tmp_path):
    if not (BENCHMARK_MIRROR / "safim").exists():
        pytest.skip(f"benchmark mirror absent: {BENCHMARK_MIRROR}")
    tasks, gold, gate = tmp_path / "tasks.jsonl", tmp_path / "gold.jsonl", tmp_path / "gate.json"
    assert main(["tasks", "--benchmark", benchmark, "--mirror", str(BENCHMARK_MIRROR), "--out", str(tasks)]) == 0
    assert main(["gold", "--tasks", str(tasks), "--out", str(gold), "--workers", "2"]) == 0
    assert main(["gold-gate", "--tasks", str(tasks), "--results", str(gold), "--out", str(gate)]) == 0
    summary = json.loads(gate.read_text())
    assert summary["gold_pass_rate"] == 1.0 and summary["n_tasks"] == len(tasks.read_text().splitlines())
