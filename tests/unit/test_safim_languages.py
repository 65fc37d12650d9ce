"""SAFIM's Java, C++ and C# splits: task building, the compiled stdin/stdout scorer, API matching and
truncation in brace languages, and the opt-in rule (a benchmark whose toolchain is missing is skipped with a
message, never an error)."""

from __future__ import annotations

import pytest

from conftest import BENCHMARK_MIRROR
from tuningtax.config import validate_params
from tuningtax.postprocess import levels_for, safim_truncate
from tuningtax.sandbox.cli import config_for_tasks, execute_jobs
from tuningtax.sandbox.core import SandboxConfig
from tuningtax.scoring import toolchains
from tuningtax.scoring.scorers import program_for, programs_for
from tuningtax.scoring.stdio import COMPILE_TIMEOUT_S, PER_TEST_TIMEOUT_S
from tuningtax.tasks.registry import BENCHMARKS, build_tasks, missing_toolchain
from tuningtax.yamlfile import read_yaml

LANGUAGES = ("java", "cpp", "csharp")


@pytest.fixture(scope="module")
def mirror() -> str:
    if not (BENCHMARK_MIRROR / "safim").exists():
        pytest.skip(f"benchmark mirror absent: {BENCHMARK_MIRROR} (set TUNINGTAX_SHARED)")
    return str(BENCHMARK_MIRROR)


@pytest.fixture(scope="module")
def tasks(mirror) -> dict:
    names = [f"safim-{split}-{lang}" for lang in LANGUAGES for split in ("block", "control", "api")]
    return {name: {t.task_id: t for t in build_tasks(name, mirror)} for name in names}


def needs_toolchain(language: str) -> None:
    if missing := toolchains.missing_executables(language):
        pytest.skip(f"{language} toolchain absent ({', '.join(missing)}): {toolchains.TOOLCHAINS[language].install}")


def run(jobs, tmp_path):
    plain = [(t.task_id, sample, programs_for(t, completion)) for t, sample, completion in jobs]
    config = config_for_tasks(SandboxConfig(workers=2), [t for t, _, _ in jobs])
    return execute_jobs(plain, config, tmp_path / "results.jsonl", None)[0]


def test_language_splits_are_registered_with_their_language_and_scorer():
    for lang in LANGUAGES:
        block, control, api = (BENCHMARKS[f"safim-{split}-{lang}"] for split in ("block", "control", "api"))
        assert {block.language, control.language, api.language} == {lang}
        assert (block.scorer, control.scorer, api.scorer) == ("stdio", "stdio", "safim-api")
        assert "safim-truncate" in levels_for(block.name)
    assert BENCHMARKS["safim-block"].language == "python"


def test_each_language_split_is_cut_at_its_own_placeholder(tasks):
    counts = {name: len(by_id) for name, by_id in tasks.items()}
    assert counts["safim-block-java"] == 2479 and counts["safim-control-cpp"] == 4881
    assert counts["safim-api-csharp"] == 21
    java = tasks["safim-block-java"]["block_completion_000000"]
    assert java.header.startswith("Complete the code in java") and "TODO" not in java.prompt + java.suffix
    assert java.benchmark == "safim-block-java" and java.mode == "flow"
    # ExecEval names the Java file after its first public class
    program = program_for(java, java.canonical_solution)
    assert "public class D {" in java.prompt and "_FILE = 'D.java'" in program
    assert toolchains.java_main_class("import x;\npublic final class Codeforces {\n}") == "Codeforces"
    assert toolchains.java_main_class("class Hidden {}") == "Main"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_compiled_scorer_passes_gold_and_fails_a_wrong_or_uncompilable_answer(tasks, tmp_path, lang):
    needs_toolchain(lang)
    task = next(iter(tasks[f"safim-control-{lang}"].values()))
    rows = run([(task, 0, task.canonical_solution), (task, 1, task.canonical_solution + " @@ ("),
                (task, 2, "false")], tmp_path)
    assert [r["status"] for r in rows] == ["passed", "failed", "failed"], rows
    assert "compilation failed" in rows[1]["detail"]


def test_compiled_scorer_enforces_the_per_test_time_limit(tasks, tmp_path):
    needs_toolchain("cpp")
    task = next(iter(tasks["safim-block-cpp"].values()))
    rows = run([(task, 0, task.canonical_solution + "\nwhile (true) {}\n")], tmp_path)
    assert rows[0]["status"] != "passed" and f"over {PER_TEST_TIMEOUT_S} s" in rows[0]["detail"]


def test_limits_cover_the_compile_step_and_the_jvm(tasks):
    base = SandboxConfig(timeout_s=10, memory_mb=2048)
    java = config_for_tasks(base, [next(iter(tasks["safim-block-java"].values()))])
    python_like = config_for_tasks(base, [next(iter(tasks["safim-api-cpp"].values()))])
    assert java.memory_mb >= toolchains.TOOLCHAINS["java"].memory_mb and java.timeout_s > COMPILE_TIMEOUT_S
    assert (python_like.timeout_s, python_like.memory_mb) == (10, 2048)


def test_api_match_outside_python_is_whitespace_free_equality(tasks):
    task = next(iter(tasks["safim-api-java"].values()))
    truth = task.canonical_solution
    exec(program_for(task, " ".join(truth)), {})  # whitespace anywhere is ignored
    # Python's rule would accept another function with the same arguments; SAFIM's rule for Java does not
    renamed = "other" + truth[truth.index("("):] if "(" in truth else truth + "x"
    with pytest.raises(AssertionError):
        exec(program_for(task, renamed), {})


def test_safim_truncate_in_brace_languages(tasks):
    block = tasks["safim-block-java"]["block_completion_000000"]
    tail = "\n\t\t\t}\n\t\t}\n\t\tSystem.out.println(1);\n"
    assert safim_truncate.apply(block.canonical_solution + tail, block).rstrip("\n") == block.canonical_solution
    control = next(iter(tasks["safim-control-cpp"].values()))
    assert safim_truncate.apply(control.canonical_solution + ") {\n  x++;\n}", control) == control.canonical_solution
    api = next(iter(tasks["safim-api-csharp"].values()))
    assert safim_truncate.apply(api.canonical_solution + ";\n  more();", api) == api.canonical_solution


def test_a_benchmark_whose_toolchain_is_missing_is_skipped_with_a_message(monkeypatch, capsys):
    params = read_yaml("params.yaml")
    params["benchmarks"] = [*params["benchmarks"], "safim-block-csharp"]
    params["runs"] = [*params["runs"], {"benchmark": "safim-block-csharp", "formats": ["fim-psm"]}]
    real_which = toolchains.shutil.which
    monkeypatch.setattr(toolchains.shutil, "which", lambda exe: None if exe == "csc" else real_which(exe))
    assert "csc" in missing_toolchain("safim-block-csharp") and missing_toolchain("safim-api-csharp") is None
    filled = validate_params(params)
    assert "safim-block-csharp" not in filled["benchmarks"]
    assert all(run["benchmark"] != "safim-block-csharp" for run in filled["runs"])
    message = capsys.readouterr().err
    assert "skipping safim-block-csharp" in message and "mono-complete" in message
    monkeypatch.setattr(toolchains.shutil, "which", lambda exe: "/usr/bin/" + exe)
    assert "safim-block-csharp" in validate_params(params)["benchmarks"]
