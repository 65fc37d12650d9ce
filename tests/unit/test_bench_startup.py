"""``bench startup`` on the tiny random Qwen2 in a scratch study folder: every arm runs in its own process, the
order rotates, the pre-packed copy decodes the default's tokens and is removed afterwards (no timings asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tuningtax.bench import startup
from tuningtax.errors import UserError
from tuningtax.jsonl import write_jsonl
from tuningtax.tasks.registry import build_tasks


@pytest.fixture
def study(tmp_path, monkeypatch, tiny_qwen_dir, tiny_qwen_onnx):
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["models"] = {"tiny": {"family": "qwen2.5-coder", "role": "instruct", "source": str(tiny_qwen_dir)}}
    params["runs"] = [{"benchmark": "humaneval-single-line", "formats": ["fim-psm"]}]
    params["tuning"]["start"], params["tuning"]["arms"] = "tiny", {}
    params["benchmark_mirror"] = str(Path(params["benchmark_mirror"]).resolve())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    tasks = [t for t in build_tasks("humaneval-single-line") if t.source_id == "HumanEval/0"]
    write_jsonl(tmp_path / "data/02_subsets/humaneval-single-line.jsonl", (t.to_record() for t in tasks))
    (tmp_path / "data/04_onnx/tiny").mkdir(parents=True)
    (tmp_path / "data/04_onnx/tiny/fp32").symlink_to(tiny_qwen_onnx, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_startup_end_to_end_tiny(study, capsys):
    out, work = study / "startup.json", study / "work"
    assert startup.main(["--rounds", "2", "--threads", "1", "--new-tokens", "4", "--work", str(work),
                         "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["arms"] == ["default", "no-prepacking", "prepacked", "generate"]
    assert [r["order"] for r in report["rounds"]] == [["default", "no-prepacking", "prepacked", "generate"],
                                                      ["no-prepacking", "prepacked", "generate", "default"]]
    # the pre-packed copy is the same graph and weights: the same greedy tokens
    assert report["tokens_identical_to_default"]["prepacked"] is True
    assert report["tokens_identical_to_default"]["default"] is True
    assert isinstance(report["tokens_identical_to_default"]["no-prepacking"], bool)
    copy = report["prepacked_copy"]
    assert copy["bytes"] > 0 and copy["source_bytes"] > 0 and copy["build_s"] > 0
    assert not (work / "prepacked").exists()  # removed unless --keep-prepacked
    for arm in ("default", "no-prepacking", "prepacked"):
        m = report["median"][arm]
        assert 0 < m["session_s"] < m["ready_s"] < m["wall_s"] and m["decode_s"] > 0 and m["import_s"] > 0
    gen = report["median"]["generate"]
    assert 0 < gen["session_s"] < gen["first_prefill_s"] < gen["wall_s"] and gen["exit_s"] >= 0
    assert set(report["goals"]) == {"first_prefill_under_5_s", "exit_under_1_s"}
    assert set(report["ratios"]) == {"session_default_over_prepacked", "decode_no_prepacking_over_default"}
    assert "pre-packed copy: built in" in capsys.readouterr().out


def test_unknown_arm_is_refused_before_any_work(study):
    out = study / "startup.json"
    with pytest.raises(UserError, match="unknown.*'mmap'"):
        startup.main(["--arms", "default,mmap", "--out", str(out)])
    assert not out.exists()


def test_missing_export_is_a_clear_error(study):
    with pytest.raises(UserError, match="run the study first"):
        startup.main(["--onnx-dir", str(study / "nowhere"), "--arms", "default"])


def test_summarise_takes_each_figures_median():
    rounds = [{"a": {"x": 1.0, "n": 3}}, {"a": {"x": 5.0, "n": 3}}, {"a": {"x": 2.0, "n": 3}}]
    assert startup.summarise(rounds, ["a"]) == {"a": {"x": 2.0, "n": 3}}


def test_a_failed_round_removes_the_prepacked_copy(study, monkeypatch):
    work = study / "work"

    def fail(arm, *args):
        assert (work / "prepacked" / "model.onnx").exists()  # built before the rounds
        raise UserError(f"bench startup: arm {arm} failed")

    monkeypatch.setattr(startup, "run_session_arm", fail)
    with pytest.raises(UserError, match="arm prepacked failed"):
        startup.main(["--arms", "prepacked", "--rounds", "1", "--threads", "1", "--work", str(work),
                      "--out", str(study / "startup.json")])
    assert not (work / "prepacked").exists() and not (study / "startup.json").exists()
