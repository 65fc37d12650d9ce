"""docs/extending.md holds: its five recipes, applied exactly as written to a copy of the project, give a
pipeline whose params validate, whose dry run schedules the new benchmark, format, level and family, and
whose commands build, validate, post-process and measure with them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SHARED

RECIPES = REPO / "docs" / "extending.md"
BLOCK = re.compile(r"<!-- (?P<directive>[^>]*?) -->\n```(?:python|yaml)\n(?P<body>.*?)```", re.S)
NEW_MODULES = {"src/tuningtax/tasks/toy_infill.py", "src/tuningtax/prompts/suffix_first.py",
               "src/tuningtax/postprocess/drop_trailing_comments.py", "src/tuningtax/metrics/line_count.py"}
REGISTRIES = {"src/tuningtax/tasks/registry.py", "src/tuningtax/prompts/__init__.py",
              "src/tuningtax/postprocess/__init__.py", "src/tuningtax/models/families.py",
              "src/tuningtax/metrics/__init__.py"}


def copy_project(root: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if name.startswith(("tests/", "scripts/", "docs/", "data/", "results/", ".dvc")):
            continue
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)


def apply_recipes(root: Path) -> tuple[set[str], set[str], dict]:
    """Apply every block of docs/extending.md; (new files, edited files, params overlay)."""
    created, edited, overlay = set(), set(), None
    blocks = list(BLOCK.finditer(RECIPES.read_text(encoding="utf-8")))
    assert blocks, f"{RECIPES}: no recipe blocks found"
    for m in blocks:
        directive, body = m["directive"].strip(), m["body"]
        if directive == "params":
            overlay = yaml.safe_load(body)
            continue
        kind, _, rest = directive.partition(": ")
        path, _, anchor = rest.partition(" | after: ")
        target = root / path
        if kind == "file":
            assert not target.exists(), f"{path} already exists"
            target.write_text(body, encoding="utf-8")
            created.add(path)
            continue
        text = target.read_text(encoding="utf-8").split("\n")
        if kind == "import":  # beside the module's other first-party imports
            at = next(i for i, line in enumerate(text) if line.startswith("from tuningtax"))
        elif kind == "entry":
            hits = [i for i, line in enumerate(text) if line.rstrip() == anchor]
            assert len(hits) == 1, f"{path}: anchor {anchor!r} found {len(hits)} times"
            at = hits[0] + 1
        else:
            raise AssertionError(f"{RECIPES}: unknown directive {directive!r}")
        text[at:at] = body.rstrip("\n").split("\n")
        target.write_text("\n".join(text), encoding="utf-8")
        edited.add(path)
    assert overlay is not None, f"{RECIPES}: no params block"
    return created, edited, overlay


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    root = tmp_path_factory.mktemp("extended")
    copy_project(root)
    created, edited, overlay = apply_recipes(root)
    env = os.environ | {"PYTHONPATH": str(root / "src"), "OMP_NUM_THREADS": "1"}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, *args], cwd=root, capture_output=True, text=True, env=env,
                              timeout=600)
        if check:
            assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    run("-m", "tuningtax", "params", "--write-schema")
    from snakemake.utils import update_config  # how an overlay merges into params.yaml

    params = yaml.safe_load((root / "params.yaml").read_text())
    update_config(params, overlay)
    params["benchmark_mirror"] = str(SHARED / "benchmarks")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "checkpoints" / "toy-model").mkdir(parents=True)
    return root, run, created, edited


def test_each_recipe_is_one_new_module_plus_one_registry_entry(extended):
    root, run, created, edited = extended
    assert created == NEW_MODULES
    assert edited == REGISTRIES
    probe = run("-c", "import tuningtax, json; from tuningtax.tasks.registry import BENCHMARKS;"
                      "from tuningtax.prompts import FORMATS; from tuningtax.postprocess import LEVELS;"
                      "from tuningtax.models.families import FAMILIES; from tuningtax.metrics import METRIC_KINDS;"
                      "print(json.dumps([tuningtax.__file__, BENCHMARKS['toy-infill'].mode, "
                      "FORMATS['suffix-first'].modes, LEVELS['drop-trailing-comments'].modes, "
                      "FAMILIES['toy-coder'].sentinels, METRIC_KINDS['line_count']]))")
    where, mode, format_modes, level_modes, sentinels, kind = json.loads(probe.stdout)
    assert Path(where).is_relative_to(root), "the copy's package must be the one imported"
    assert (mode, format_modes, kind) == ("flow", ["flow", "completion"], "count")
    assert level_modes == ["flow", "completion", "command"] and "<|fim_middle|>" in sentinels


def test_the_schema_offers_the_new_names_and_the_params_validate(extended):
    root, run, *_ = extended
    schema = (root / "schemas" / "params.schema.json").read_text()
    for name in ("toy-infill", "suffix-first", "drop-trailing-comments", "toy-coder"):
        assert f'"{name}"' in schema, name
    run("-m", "tuningtax", "params", "--check", "params.yaml")


def test_the_dry_run_schedules_the_new_entries(extended):
    root, run, *_ = extended
    dry = run("-m", "snakemake", "-n", "--forceall", "--printshellcmds", "--cores", "1")
    out = dry.stdout + dry.stderr
    assert "tasks --benchmark toy-infill" in out
    assert "--model toy-model" in out and '"family": "toy-coder"' in out
    assert re.search(r"generate --model toy-model .*--tasks data/02_subsets/toy-infill\.jsonl --format suffix-first",
                     out)
    # the new level applies to every mode (one post-processing job per level); first-line, opt-in, stays with
    # the single-line benchmark
    def scheduled_levels(benchmark):
        return set(re.findall(rf"--completions data/05_completions/[^/\s]+/[^/\s]+/{benchmark}/[^/\s]+/"
                              r"raw_output\.jsonl --levels (\S+) ", out))
    assert scheduled_levels("toy-infill") == {"raw", "stop-cut", "code-extract", "drop-trailing-comments"}
    assert scheduled_levels("humaneval-single-line") == {"raw", "stop-cut", "first-line", "code-extract",
                                                         "drop-trailing-comments"}
    run("-m", "tuningtax", "dvc-yaml")
    assert "generate-toy-model" in (root / "dvc.yaml").read_text()


@pytest.mark.slow  # four commands, two Great Expectations runs
def test_the_commands_build_validate_postprocess_and_measure_with_them(extended, qwen_tokenizer_dir, tmp_path):
    root, run, *_ = extended
    tasks = tmp_path / "tasks.jsonl"
    run("-m", "tuningtax", "tasks", "--benchmark", "toy-infill", "--out", str(tasks))
    run("-m", "tuningtax", "validate", "--suite", "tasks", "--input", str(tasks),
        "--out", str(tmp_path / "tasks.validated.json"), "--param", "expected_rows=3",
        "--param", "benchmark=toy-infill")
    raw = "    total = a + b\n# adds the numbers\n"
    rows = [{"task_id": f"Toy/{i}", "sample": 0, "raw_output": raw} for i in range(3)]
    (tmp_path / "raw.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run("-m", "tuningtax", "postprocess", "--tasks", str(tasks), "--completions", str(tmp_path / "raw.jsonl"),
        "--levels", "raw,drop-trailing-comments", "--out", str(tmp_path / "levels"))
    level_file = tmp_path / "levels" / "drop-trailing-comments.jsonl"
    assert json.loads(level_file.read_text().splitlines()[0])["completion"] == "    total = a + b\n"
    # the suite's allowed levels come from the registry, so the new level passes it
    run("-m", "tuningtax", "validate", "--suite", "postprocessed", "--input", str(level_file),
        "--out", str(tmp_path / "levels.validated.json"), "--param", f"expected_rows=@{tasks}")
    check = run("-c", f"""
import json
from transformers import AutoTokenizer
from tuningtax.jsonl import read_jsonl
from tuningtax.metrics import compute_metrics
from tuningtax.models.families import fim_ids
from tuningtax.prompts import render
from tuningtax.tasks.schema import task_from_record
task = task_from_record(next(iter(read_jsonl({str(tasks)!r}))))
tok = AutoTokenizer.from_pretrained({str(qwen_tokenizer_dir)!r})
prompt = render("suffix-first", task, tok, "toy-coder", 64, "base")
print(json.dumps([prompt.text, compute_metrics({{"completion": {raw!r}}}, task)["line_count"],
                  fim_ids("toy-coder", tok, "a", "b") == fim_ids("qwen2.5-coder", tok, "a", "b")]))
""")
    text, line_count, same_layout = json.loads(check.stdout)
    assert text == "# The code after the hole:\n#     return total\ndef add(a, b):\n"
    assert line_count == 2 and same_layout is True
