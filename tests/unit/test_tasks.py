"""Task schema and benchmark builders; the derived infilling sets must equal OpenAI's official files."""

from __future__ import annotations

import dataclasses
import gzip
import json

import pytest

from conftest import INFILLING_MIRROR
from tuningtax.errors import UserError
from tuningtax.tasks import random_span, upstream
from tuningtax.tasks.registry import BENCHMARKS, build_tasks
from tuningtax.scoring.scorers import program_for
from tuningtax.tasks.schema import FIELDS, MODES, Task, task_from_record

OFFICIAL_FIELDS = ("task_id", "prompt", "suffix", "canonical_solution", "test", "entry_point")


def _official(name: str) -> list[dict]:
    path = INFILLING_MIRROR / name
    if not path.exists():
        pytest.skip(f"benchmark mirror absent: {path} (set TUNINGTAX_SHARED to the shared folder)")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.mark.parametrize(("benchmark", "official"), [
    ("humaneval-single-line", "HumanEval-SingleLineInfilling.jsonl.gz"),
    ("humaneval-multi-line", "HumanEval-MultiLineInfilling.jsonl.gz"),
])
def test_derived_infilling_equals_official(benchmark, official):
    derived = [t.to_record() for t in build_tasks(benchmark)]
    expected = _official(official)
    assert len(derived) == len(expected) == BENCHMARKS[benchmark].expected_count
    for ours, theirs in zip(derived, expected, strict=True):
        assert {k: ours[k] for k in OFFICIAL_FIELDS} == {k: theirs[k] for k in OFFICIAL_FIELDS}, ours["task_id"]


def test_every_record_has_the_schema_and_round_trips():
    for name in ("humaneval-command", "humaneval-completion", "humaneval-single-line"):
        tasks = build_tasks(name)
        assert len({t.task_id for t in tasks}) == len(tasks)
        for task in tasks:
            record = task.to_record()
            assert tuple(record) == FIELDS
            assert task_from_record(record) == task
            assert task.benchmark == name


def test_modes_and_programs():
    command = build_tasks("humaneval-command")[0]
    completion = build_tasks("humaneval-completion")[0]
    assert command.mode == "command" and "```python" in command.instruction and command.entry_point in command.instruction
    assert command.canonical_solution.startswith(command.prompt)
    assert completion.mode == "completion" and completion.suffix == ""
    # command programs stand alone; flow/completion programs splice prefix + middle + suffix
    assert program_for(command, "X").startswith("X\n")
    assert program_for(completion, "BODY").startswith(completion.prompt + "BODY")
    assert program_for(completion, "BODY").rstrip().endswith(f"check({completion.entry_point})")


def test_bad_record_names_the_field():
    record = build_tasks("humaneval-completion")[0].to_record()
    del record["entry_point"]
    with pytest.raises(UserError, match="entry_point"):
        task_from_record(record, "x.jsonl:1")
    record = build_tasks("humaneval-completion")[0].to_record() | {"mode": "infill"}
    with pytest.raises(UserError, match="mode"):
        task_from_record(record)


def test_random_span_from_mirror_verifies_hash(tmp_path, monkeypatch):
    if not (INFILLING_MIRROR / random_span.FILE).exists():
        pytest.skip(f"benchmark mirror absent: {INFILLING_MIRROR}")
    monkeypatch.setenv("TUNINGTAX_CACHE", str(tmp_path / "cache"))
    tasks = build_tasks("humaneval-random-span", str(INFILLING_MIRROR.parent))
    assert len(tasks) == 1640 and tasks[0].source_id == "HumanEval/0"
    bad = tmp_path / "mirror" / random_span.PINNED.mirror_subdir
    bad.mkdir(parents=True)
    (bad / random_span.FILE).write_bytes(b"not the file")
    with pytest.raises(UserError, match="sha256"):
        build_tasks("humaneval-random-span", str(tmp_path / "mirror"))


def test_random_span_unreachable_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNINGTAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(upstream.MIRROR_ENV, raising=False)
    pinned = dataclasses.replace(random_span.PINNED, url="http://127.0.0.1:9/unreachable.jsonl.gz")
    with pytest.raises(UserError, match="no source reachable.*TUNINGTAX_BENCHMARK_MIRROR"):
        upstream.locate(pinned, str(tmp_path / "empty"))


def test_tasks_cli_writes_file_and_rejects_unknown(tmp_path):
    from tuningtax.cli import main

    out = tmp_path / "t.jsonl"
    assert main(["tasks", "--benchmark", "humaneval-completion", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 164
    with pytest.raises(SystemExit):
        main(["tasks", "--benchmark", "nope", "--out", str(out)])


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_every_benchmark_entry_names_a_mode_a_scorer_and_its_levels(name):
    from tuningtax.postprocess import levels_for
    from tuningtax.scoring.scorers import SCORERS

    bench = BENCHMARKS[name]
    assert bench.name == name and bench.mode in MODES and bench.scorer in SCORERS and bench.expected_count > 0
    assert "raw" in levels_for(bench)
    task = Task("x/0", name, bench.mode, "def f():\n", "" if bench.mode != "flow" else "\n", "    return 1\n",
                "def check(c):\n    assert c() == 1\n", "f", "Write f.", "x/0")
    if bench.scorer == "check-function":  # the other scorers: tests/unit/test_benchmarks_wider.py
        program = program_for(task, "def f():\n    return 1\n" if bench.mode == "command" else "    return 1\n")
        assert program.rstrip().endswith("check(f)") and compile(program, name, "exec")
