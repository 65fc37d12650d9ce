"""Code versions are import closures: what a command can import makes it stale, nothing else does."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tuningtax.cli import COMMANDS
from tuningtax.codeversion import code_version, command_files, import_closure
REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "tuningtax"
# Every command a rule's shell line runs.
PIPELINE_COMMANDS = sorted({c for smk in (REPO / "rules").glob("*.smk")
                            for c in re.findall(r"-m tuningtax ([a-z][a-z-]*)", smk.read_text())})


def _copy_src(tmp_path: Path) -> Path:
    copy = tmp_path / "src" / "tuningtax"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_generation_closure_holds_the_modules_it_writes_and_reads_with():
    files = {p.relative_to(SRC).as_posix() for p in command_files("generate")}
    assert {"jsonl.py", "tasks/schema.py", "generate/core.py", "generate/engine.py", "prompts/fim.py",
            "cli.py", "errors.py"} <= files


def test_no_pipeline_command_can_import_a_benchmark():
    assert len(PIPELINE_COMMANDS) >= 14 and set(PIPELINE_COMMANDS) <= set(COMMANDS)
    for command in PIPELINE_COMMANDS:
        files = {p.relative_to(SRC).as_posix() for p in command_files(command)}
        assert not any(f.startswith("bench/") for f in files), command
        assert not {"dvcstages.py", "lineage.py", "sync.py"} & files, command


def test_editing_jsonl_makes_generation_stale(tmp_path):
    copy = _copy_src(tmp_path)
    before = code_version("generate", copy)
    (copy / "jsonl.py").write_text((copy / "jsonl.py").read_text() + "\n# a comment\n")
    code_version.cache_clear()
    assert code_version("generate", copy) != before


@pytest.mark.parametrize("bench", ["bench/__init__.py", "bench/generate.py", "bench/sandbox.py"])
def test_editing_a_benchmark_makes_nothing_stale(tmp_path, bench):
    copy = _copy_src(tmp_path)
    before = {c: code_version(c, copy) for c in PIPELINE_COMMANDS}
    (copy / bench).write_text((copy / bench).read_text() + "\n# a comment\n")
    code_version.cache_clear()
    assert {c: code_version(c, copy) for c in PIPELINE_COMMANDS} == before


def test_lazy_and_relative_imports_are_followed(tmp_path):
    pkg = tmp_path / "tuningtax"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("def f():\n    from . import b\n")
    (pkg / "sub" / "b.py").write_text("from tuningtax.c import thing\n")
    (pkg / "c.py").write_text("thing = 1\n")
    (pkg / "unused.py").write_text("")
    names = {p.relative_to(pkg).as_posix() for p in import_closure(("tuningtax.sub.a",), pkg)}
    assert names == {"__init__.py", "sub/__init__.py", "sub/a.py", "sub/b.py", "c.py"}
