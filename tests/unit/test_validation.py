"""Great Expectations suites stop corrupted intermediates, naming the file and the failed expectation."""

from __future__ import annotations

import json

import pytest

from tuningtax.cli import main
from tuningtax.jsonl import read_jsonl, write_jsonl
from tuningtax.tasks.registry import build_tasks


@pytest.fixture(scope="module")
def task_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / "tasks.jsonl"
    write_jsonl(path, (t.to_record() for t in build_tasks("humaneval-completion")))
    return path


def _validate(path, out, rows=164, benchmark="humaneval-completion"):
    return main(["validate", "--suite", "tasks", "--input", str(path), "--out", str(out),
                 "--param", f"expected_rows={rows}", "--param", f"benchmark={benchmark}"])


def test_valid_tasks_pass_with_deterministic_summary(task_file, tmp_path):
    assert _validate(task_file, tmp_path / "a.json") == 0
    assert _validate(task_file, tmp_path / "b.json") == 0
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert json.loads((tmp_path / "a.json").read_text())["success"] is True


@pytest.mark.parametrize(("corrupt", "expectation"), [
    (lambda rs: rs + [rs[0]], "expect_column_values_to_be_unique(task_id)"),
    (lambda rs: [r | {"mode": "infill"} if i == 3 else r for i, r in enumerate(rs)], "expect_column_values_to_be_in_set(mode)"),
    (lambda rs: [{k: v for k, v in r.items() if k != "suffix"} for r in rs], "expect_table_columns_to_match_set"),
    (lambda rs: rs[:-1], "expect_table_row_count_to_equal"),
    (lambda rs: [r | {"task_id": None} if i == 0 else r for i, r in enumerate(rs)], "expect_column_values_to_not_be_null(task_id)"),
])
def test_corruption_stops_with_named_expectation(task_file, tmp_path, capsys, corrupt, expectation):
    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, corrupt(read_jsonl(task_file)))
    out = tmp_path / "summary.json"
    assert _validate(bad, out) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and expectation in err
    assert not out.exists()


def test_each_checked_file_is_held_to_its_own_parameters(task_file, tmp_path, capsys):
    """One call validates every run of a checkpoint; each --check carries its own row count (its subset's)."""
    short = tmp_path / "short.jsonl"
    write_jsonl(short, read_jsonl(task_file)[:10])
    subset = tmp_path / "subset.jsonl"
    write_jsonl(subset, read_jsonl(task_file)[:10])
    out = tmp_path / "both.json"
    common = ["validate", "--suite", "tasks", "--param", "benchmark=humaneval-completion", "--out", str(out)]
    assert main(common + ["--check", str(task_file), "expected_rows=164",
                          "--check", str(short), f"expected_rows=@{subset}"]) == 0
    summary = json.loads(out.read_text())
    assert [f["file"] for f in summary["files"]] == [str(task_file), str(short)]
    assert [f["n_rows"] for f in summary["files"]] == [164, 10]
    out.unlink()
    # the same files with the row counts swapped: both fail, each named, and nothing is written
    assert main(common + ["--check", str(task_file), f"expected_rows=@{subset}",
                          "--check", str(short), "expected_rows=164"]) == 1
    err = capsys.readouterr().err
    assert f"{task_file}: failed" in err and f"{short}: failed" in err and "expect_table_row_count_to_equal" in err
    assert not out.exists()


def test_a_call_without_files_or_with_a_bad_pair_is_a_clear_error(task_file, tmp_path, capsys):
    out = tmp_path / "none.json"
    assert main(["validate", "--suite", "tasks", "--out", str(out)]) == 2
    assert "--check FILE" in capsys.readouterr().err
    assert main(["validate", "--suite", "tasks", "--out", str(out), "--check", str(task_file), "rows"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert not out.exists()


def test_lineage_finds_the_checkpoint_summary_that_lists_a_file(tmp_path):
    """A level file is admitted by its checkpoint's summary (one validation job over all runs), found by walking
    up from the file; a file no summary lists has none."""
    from tuningtax.lineage import _validation_summary

    listed = "data/06_executions/m/fp32/humaneval-command/command-chat/raw.jsonl"
    summary = {"suite": "executions", "success": True,
               "files": [{"file": listed, "suite": "executions", "success": True, "expectations": []}]}
    (tmp_path / "data/06_executions/m").mkdir(parents=True)
    (tmp_path / "data/06_executions/m/executions.validated.json").write_text(json.dumps(summary))
    found = _validation_summary(tmp_path, listed)
    assert found is not None and found[0] == "data/06_executions/m/executions.validated.json"
    assert _validation_summary(tmp_path, "data/06_executions/m/fp32/humaneval-command/command-chat/stop-cut.jsonl") is None


def test_a_checkpoint_summary_belongs_to_its_checkpoint_in_a_row_trace():
    """lineage --row follows only the row's checkpoint: its per-checkpoint summaries carry the model's name."""
    from tuningtax.lineage import path_keys

    assert path_keys("data/06_executions/tiny-base/executions.validated.json") == {"model": "tiny-base"}
    assert path_keys("data/05_completions/tiny-base/raw_output.validated.json") == {"model": "tiny-base"}
    assert path_keys("data/06_executions/gold/humaneval-command.validated.json") == {"benchmark": "humaneval-command"}
