"""``bench realmix-pass`` scores each engine's outputs the study's way (postprocess, then the sandbox) and pairs
them with ours: a peer that answers wrongly where ours answers right shows up as tasks only ours passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tuningtax.bench import realmix_pass
from tuningtax.errors import UserError
from tuningtax.jsonl import write_jsonl
from tuningtax.tasks.registry import build_tasks

JOB = "humaneval-single-line/fim-psm"


@pytest.fixture
def scored_run(tmp_path, monkeypatch, qwen_tokenizer_dir):
    """A finished realmix run: ours answers every task with its true middle, ct2-int8 with a wrong line."""
    from tuningtax.generate.engine import load_tokenizer

    params = yaml.safe_load(Path("params.yaml").read_text())
    params["models"] = {"tiny": {"family": "qwen2.5-coder", "role": "instruct",
                                 "source": "offline-qwen2.5-coder-0.5b-instruct"}}
    params["runs"] = [{"benchmark": "humaneval-single-line", "formats": ["fim-psm"]}]
    params["tuning"]["start"], params["tuning"]["arms"] = "tiny", {}
    params["benchmark_mirror"] = str(Path(params["benchmark_mirror"]).resolve())
    params["sandbox"]["workers"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    tasks = [t for t in build_tasks("humaneval-single-line") if t.source_id in {"HumanEval/0", "HumanEval/2"}][:3]
    write_jsonl(tmp_path / "data/02_subsets/humaneval-single-line.jsonl", (t.to_record() for t in tasks))
    (tmp_path / "data/04_onnx/tiny").mkdir(parents=True)
    (tmp_path / "data/04_onnx/tiny/fp32").symlink_to(qwen_tokenizer_dir, target_is_directory=True)
    work = tmp_path / ".cache/tuningtax/bench/realmix" / JOB.replace("/", "__")
    write_jsonl(work / "ours.jsonl", ({"task_id": t.task_id, "sample": 0, "raw_output": t.canonical_solution}
                                      for t in tasks))
    tokenizer = load_tokenizer(qwen_tokenizer_dir)
    wrong = tokenizer.encode("    raise ValueError('no')\n", add_special_tokens=False)
    (work / "ct2-int8.json").write_text(json.dumps({"tokens": [wrong for _ in tasks]}))
    report = {"model": "tiny", "jobs_done": [JOB], "engines": {"ours": {}, "ct2-int8": {}, "eager": {}},
              "jobs": {JOB: {"engines": {"ours": {}, "ct2-int8": {}, "eager": {}}}}}
    (tmp_path / ".cache/tuningtax/bench/realmix.json").write_text(json.dumps(report))
    monkeypatch.chdir(tmp_path)
    return tmp_path, len(tasks)


def test_peer_outputs_are_scored_and_paired_with_ours(scored_run, capsys):
    folder, n_tasks = scored_run
    assert realmix_pass.main([]) == 0
    out = json.loads((folder / ".cache/tuningtax/bench/realmix-pass.json").read_text())
    job = out["jobs"][JOB]
    assert job["engines"]["ours"]["passed"] == n_tasks, job  # true middles pass at the chosen level
    assert job["engines"]["ct2-int8"] == {"passed": 0, "tasks": n_tasks, "only_ours": n_tasks, "only_engine": 0,
                                          "mcnemar_p": 0.25}
    assert out["engines"]["ct2-int8"]["pass_at_1"] == 0.0 and out["engines"]["ours"]["pass_at_1"] == 1.0
    assert "eager" not in out["engines"]  # ran on a sample only
    assert "ct2-int8" in capsys.readouterr().out


def test_missing_outputs_name_the_engine(scored_run):
    folder, _ = scored_run
    (folder / ".cache/tuningtax/bench/realmix" / JOB.replace("/", "__") / "ct2-int8.json").unlink()
    with pytest.raises(UserError, match="no outputs of ct2-int8"):
        realmix_pass.main([])


def test_without_a_realmix_report_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="run python -m tuningtax bench realmix first"):
        realmix_pass.main([])
