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


LANGUAGE_SPLITS = [f"safim-{split}-{lang}" for lang in ("java", "cpp", "csharp")
                   for split in ("block", "control", "api")]
SAMPLE = 24  # evenly spaced tasks of a block or control split: a full C++ split is ~5,000 compilations


@pytest.mark.slow  # about 30 s per split on 2 cores
@pytest.mark.parametrize("benchmark", LANGUAGE_SPLITS)
def test_gold_gate_passes_on_a_sample_of_each_language_split(benchmark, tmp_path):
    from tuningtax.tasks.registry import missing_toolchain

    if not (BENCHMARK_MIRROR / "safim").exists():
        pytest.skip(f"benchmark mirror absent: {BENCHMARK_MIRROR}")
    if why := missing_toolchain(benchmark):
        pytest.skip(why)
    tasks, sample, gold, gate = (tmp_path / name for name in ("tasks.jsonl", "sample.jsonl", "gold.jsonl", "gate.json"))
    assert main(["tasks", "--benchmark", benchmark, "--mirror", str(BENCHMARK_MIRROR), "--out", str(tasks)]) == 0
    lines = tasks.read_text().splitlines(keepends=True)
    step = max(1, len(lines) // SAMPLE) if "-api-" not in benchmark else 1
    sample.write_text("".join(lines[::step][:SAMPLE] if step > 1 else lines))
    assert main(["gold", "--tasks", str(sample), "--out", str(gold), "--workers", "2"]) == 0
    assert main(["gold-gate", "--tasks", str(sample), "--results", str(gold), "--out", str(gate)]) == 0
    assert json.loads(gate.read_text())["gold_pass_rate"] == 1.0
