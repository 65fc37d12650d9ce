"""SAFIM (block, control, api) and EvalPlus (HumanEval+, MBPP+): task building from the mirror, the
scorers' rules (SAFIM's output comparison and API matching, EvalPlus's differential testing, suites,
time limits, tolerance and input types) and SAFIM's truncation."""

from __future__ import annotations

import dataclasses
import json

import pytest

from conftest import BENCHMARK_MIRROR
from tuningtax.errors import UserError
from tuningtax.scoring.stdio import PER_TEST_TIMEOUT_S
from tuningtax.postprocess import levels_for, safim_truncate
from tuningtax.sandbox.cli import config_for_tasks, execute_jobs
from tuningtax.sandbox.core import SandboxConfig
from tuningtax.scoring.scorers import program_for, programs_for
from tuningtax.scoring.table import score_rows
from tuningtax.tasks.registry import build_tasks
from tuningtax.taxonomy.rules import taxonomy_status


@pytest.fixture(scope="module")
def mirror() -> str:
    if not (BENCHMARK_MIRROR / "safim").exists() or not (BENCHMARK_MIRROR / "humanevalplus").exists():
        pytest.skip(f"benchmark mirror absent: {BENCHMARK_MIRROR} (set TUNINGTAX_SHARED)")
    return str(BENCHMARK_MIRROR)


@pytest.fixture(scope="module")
def tasks(mirror) -> dict:
    names = ("safim-block", "safim-control", "safim-api", "humanevalplus-command", "humanevalplus-completion",
             "mbppplus-command")
    return {name: {t.task_id: t for t in build_tasks(name, mirror)} for name in names}


def run(jobs, tmp_path, config=None):
    """execute_jobs on (task, sample, completion) triples; the result rows."""
    plain = [(t.task_id, sample, programs_for(t, completion)) for t, sample, completion in jobs]
    config = config_for_tasks(config or SandboxConfig(workers=2), [t for t, _, _ in jobs])
    return execute_jobs(plain, config, tmp_path / "results.jsonl", None)[0]


# ------------------------------------------------------------------------------------------------ SAFIM
def test_safim_tasks_are_the_python_split_with_the_header_shown_not_run(tasks):
    block = tasks["safim-block"]["block_completion_000016"]
    assert [len(tasks[f"safim-{split}"]) for split in ("block", "control", "api")] == [805, 750, 181]
    assert block.instruction == ""
    assert block.header.startswith("Complete the code in python to solve this programming problem:")
    assert block.canonical_solution == "continue" and block.prompt.endswith("if i in graph[i]:\r\n        ")
    program = program_for(block, block.canonical_solution)
    assert "Complete the code" not in program and "\r" not in program
    # the control twin is cut from the same program, so it is the same problem
    twin = next(t for t in tasks["safim-control"].values() if t.canonical_solution == "i in graph[i]:"
                and t.prompt.endswith("    if "))
    assert twin.source_id == block.source_id


def test_safim_mirror_file_with_another_hash_is_refused(tmp_path):
    bad = tmp_path / "mirror" / "safim"
    bad.mkdir(parents=True)
    (bad / "api_completion.jsonl.gz").write_bytes(b"not the file")
    with pytest.raises(UserError, match="sha256.*differs"):
        build_tasks("safim-api", str(tmp_path / "mirror"))


def test_stdio_scorer_passes_gold_and_judges_output_like_execeval(tasks, tmp_path):
    block = tasks["safim-block"]["block_completion_000016"]
    rows = run([(block, 0, "continue"), (block, 1, "pass"), (block, 2, "continue(\n"),
                (block, 3, "import time; time.sleep(30)")], tmp_path,
               SandboxConfig(workers=2))
    assert [r["status"] for r in rows] == ["passed", "failed", "failed", "failed"]
    assert "wrong answer" in rows[1]["detail"] and "SyntaxError" in rows[2]["detail"]
    assert f"over {PER_TEST_TIMEOUT_S} s" in rows[3]["detail"]


def test_execeval_output_rule():
    """The comparison lives in the scorer's program; its definitions are exercised in-process."""
    from tuningtax.scoring import stdio

    scope: dict = {}
    header = stdio.RUNNER.split("with open(")[0]
    exec(header.format(source="", tests="[]", timeout=1.0, source_file="", compile_command=[], run_command=[],
                       compile_timeout=1.0), scope)
    validate = scope["_validate"]
    assert validate("1 2\n3", "1 2 \n3\n") and validate("1 2 3", "1\n2\n3")
    assert validate("0.5", "0.50000000000001") and not validate("0.5", "0.5001")
    assert validate("YES", "yes") and not validate("Alice", "alice") and not validate("1 2", "1 2 3")


@pytest.mark.parametrize(("completion", "passes"), [
    ("np.sum(grad, axis=0)", True),
    ("np.mean(grad,axis = 0)", True),  # SAFIM compares the arguments, not the function
    ("np.sum(grad)", False),
    ("np.sum(grad, axis=0))", False),
    ("np.sum(grad, axis=1)", False),
])
def test_api_scorer_is_safims_argument_match(tasks, completion, passes):
    task = tasks["safim-api"]["block_completion_000129"]
    assert task.canonical_solution == "np.sum(grad, axis=0)"
    program = program_for(task, completion)
    if passes:
        exec(program, {})
    else:
        with pytest.raises(AssertionError):
            exec(program, {})


def test_safim_truncate_follows_safims_rules(tasks):
    block = tasks["safim-block"]["block_completion_000016"]
    assert levels_for("safim-block") == ["raw", "stop-cut", "code-extract", "syntax-truncate", "safim-truncate"]
    assert "safim-truncate" not in levels_for("humaneval-single-line")
    assert safim_truncate.apply("continue\n    val = start[i]\n    for j in graph[i]:\n", block) == "continue\n"
    assert safim_truncate.apply("```python\ncontinue\n```\nThis skips it.", block) == "continue\n"
    control = next(iter(tasks["safim-control"].values()))
    assert safim_truncate.apply("\n  x > 0:\n    y = 1\n", control) == "  x > 0:"
    api = tasks["safim-api"]["block_completion_000129"]
    assert safim_truncate.apply("np.sum(grad, axis=0)\n        more(code)", api) == "np.sum(grad, axis=0)"
    unchanged = [t for t in tasks["safim-block"].values()
                 if safim_truncate.apply(t.canonical_solution, t) == t.canonical_solution]
    # SAFIM's rule leaves every true block whole except the two whose block is `pass` (docs/benchmarks.md)
    assert len(unchanged) == 803


# --------------------------------------------------------------------------------------------- EvalPlus
def test_evalplus_tasks_keep_humaneval_problem_ids(tasks):
    command = tasks["humanevalplus-command"]["HumanEval/0"]
    spec = json.loads(command.test)
    assert len(tasks["humanevalplus-command"]) == 163 and "HumanEval/32" not in tasks["humanevalplus-command"]
    assert len(tasks["mbppplus-command"]) == 377 and "Mbpp/255" not in tasks["mbppplus-command"]
    assert command.source_id == "HumanEval/0" and command.mode == "command"
    assert len(spec["base_input"]) == 7 and len(spec["plus_input"]) > 7
    assert tasks["humanevalplus-completion"]["HumanEval/0"].canonical_solution.lstrip().startswith("sorted_numbers")


def test_evalplus_scores_base_and_plus_separately(tasks, tmp_path):
    task = tasks["humanevalplus-command"]["HumanEval/0"]
    canonical = task.canonical_solution
    # HumanEval's inputs are lists of 5-6 numbers; EvalPlus adds empty ones, where this answer fails
    no_empty = canonical.replace("    sorted_numbers = sorted(numbers)\n", "    sorted_numbers = sorted(numbers)\n"
                                 "    sorted_numbers[0]\n")
    assert no_empty != canonical
    rows = run([(task, 0, canonical), (task, 1, no_empty), (task, 2, "def has_close_elements(n, t):\n    return 1")],
               tmp_path)
    assert rows[0]["passed"] and rows[0]["suites"] == {"base": "passed", "plus": "passed"}
    assert not rows[1]["passed"] and rows[1]["suites"] == {"base": "passed", "plus": "failed"}
    assert "IndexError" in rows[1]["detail"]
    # the detail is the program's own message, so the taxonomy reads it like any other
    assert taxonomy_status(rows[1]["status"], rows[1]["detail"]) == "runtime_error"
    assert not rows[2]["passed"] and rows[2]["suites"]["base"] == "failed"
    assert rows[2]["detail"].startswith("AssertionError: base input")
    assert taxonomy_status(rows[2]["status"], rows[2]["detail"]) == "failed"  # a wrong answer
    (tmp_path / "m" / "fp32" / "humanevalplus-command" / "command-chat").mkdir(parents=True)
    path = tmp_path / "m" / "fp32" / "humanevalplus-command" / "command-chat" / "raw.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    scores = {r["suite"]: r["n_passed"] for r in score_rows([path])}
    assert set(scores) == {"all", "base", "plus"}
    assert scores["all"] <= min(scores["base"], scores["plus"])


def test_evalplus_time_limit_comes_from_the_canonical_runtime(tasks, tmp_path):
    task = tasks["humanevalplus-command"]["HumanEval/0"]
    sleepy = "    time.sleep(1.5)\n    sorted_numbers"
    slow = "import time\n" + task.canonical_solution.replace("    sorted_numbers", sleepy, 1)
    rows = run([(task, 0, slow)], tmp_path)
    assert not rows[0]["passed"] and "over 1.00 s" in rows[0]["detail"]


def test_evalplus_float_tolerance_and_mbpp_input_types(tasks, tmp_path):
    mean_dev = tasks["humanevalplus-command"]["HumanEval/4"]  # mean_absolute_deviation: float output
    nudged = mean_dev.canonical_solution.replace("return sum(abs(x - mean) for x in numbers) / len(numbers)",
                                                 "return sum(abs(x - mean) for x in numbers) / len(numbers) + 1e-9")
    assert nudged != mean_dev.canonical_solution
    far = nudged.replace("+ 1e-9", "+ 1e-3")
    similar = tasks["mbppplus-command"]["Mbpp/2"]  # inputs are tuples; EvalPlus compares as sets
    as_list = "def similar_elements(a, b):\n    assert isinstance(a, tuple)\n    return list(set(a) & set(b))[::-1]\n"
    rows = run([(mean_dev, 0, nudged), (mean_dev, 1, far), (similar, 0, as_list)], tmp_path)
    assert [r["passed"] for r in rows] == [True, False, True], [r["detail"] for r in rows]


def test_scorers_raise_the_sandbox_limits_they_need(tasks):
    config = SandboxConfig(timeout_s=10, memory_mb=2048)
    assert config_for_tasks(config, [tasks["humanevalplus-command"]["HumanEval/0"]]).memory_mb == 4096
    assert config_for_tasks(config, [tasks["safim-block"]["block_completion_000016"]]).timeout_s > 56
    plain = build_tasks("humaneval-command")[:1]
    assert dataclasses.asdict(config_for_tasks(config, plain)) == dataclasses.asdict(config)


# ------------------------------------------------------------------------------------------ validation
def test_tasks_suite_reads_each_scorers_requirements(tasks, tmp_path):
    from tuningtax.validation.core import load_suite_spec as load_suite, validate_frame
    import pandas as pd

    block = [t.to_record() for t in list(tasks["safim-block"].values())[:3]]
    params = {"expected_rows": 3, "benchmark": "safim-block"}
    assert validate_frame(pd.DataFrame(block), load_suite("tasks"), params)["success"]
    broken = [dict(r, test="def check(candidate): pass") if n == 1 else r for n, r in enumerate(block)]
    assert not validate_frame(pd.DataFrame(broken), load_suite("tasks"), params)["success"]
    plain = [t.to_record() for t in build_tasks("humaneval-command")[:2]]
    as_check = {"expected_rows": 2, "benchmark": "humaneval-command"}
    assert validate_frame(pd.DataFrame(plain), load_suite("tasks"), as_check)["success"]
    assert not validate_frame(pd.DataFrame([dict(r, test="") for r in plain]), load_suite("tasks"), as_check)["success"]


# ------------------------------------------------------------------------------------------- agreement
def test_agreement_compares_suite_by_suite_and_names_each_disagreement():
    from tuningtax.bench.agreement import compare

    samples = [{"source": "m/fp32/b/f:raw", "task_id": "T/0"}, {"source": "gold", "task_id": "T/0"}]
    ours = [{"passed": False, "suites": {"base": "passed", "plus": "failed"}, "detail": "plus: wrong output"},
            {"passed": True, "suites": {"base": "passed", "plus": "passed"}, "detail": ""}]
    counts, disagreements = compare(samples, ours, [{"base": True, "plus": True}, {"base": True, "plus": True}])
    assert counts == {"base": [2, 2], "plus": [1, 2]}
    assert disagreements == ["m/fp32/b/f:raw T/0 [plus]: ours fail (plus: wrong output), reference pass"]


def test_agreement_runs_reference_functions_from_their_source(tmp_path):
    from tuningtax.bench.agreement import _functions

    (tmp_path / "evaluate.py").write_text("import nothing_installed\nLIMIT = 3\n\ndef f(x):\n    return x + LIMIT\n"
                                          "\ndef g():\n    pass\n")
    scope: dict = {}
    exec(_functions(tmp_path / "evaluate.py", ("f",), ("LIMIT",)), scope)
    assert scope["f"](1) == 4 and "g" not in scope
    with pytest.raises(UserError, match="has no h"):
        _functions(tmp_path / "evaluate.py", ("h",))
