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
