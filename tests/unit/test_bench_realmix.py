"""``bench realmix`` end to end on the tiny random Qwen2 in a scratch study folder: every engine's outputs are
compared with the study's engine, the schedulers agree, and the report carries the figures (no timings
asserted)."""

from __future__ import annotations

import json

import pytest
import yaml

from tuningtax.bench import realmix
from tuningtax.errors import UserError
from tuningtax.jsonl import write_jsonl
from tuningtax.tasks.registry import build_tasks


@pytest.fixture
def study(tmp_path, monkeypatch, tiny_qwen_dir, tiny_qwen_onnx):
    from pathlib import Path

    params = yaml.safe_load(Path("params.yaml").read_text())
    params["models"] = {"tiny": {"family": "qwen2.5-coder", "role": "instruct", "source": str(tiny_qwen_dir)}}
    params["runs"] = [{"benchmark": "humaneval-single-line", "formats": ["fim-psm", "fim-chat"]}]
    params["tuning"]["start"], params["tuning"]["arms"] = "tiny", {}
    params["benchmark_mirror"] = str(Path(params["benchmark_mirror"]).resolve())
    params["generation"]["max_new_tokens"]["flow"] = 6
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    tasks = [t for t in build_tasks("humaneval-single-line") if t.source_id in {"HumanEval/0", "HumanEval/2"}]
    write_jsonl(tmp_path / "data/02_subsets/humaneval-single-line.jsonl", (t.to_record() for t in tasks))
    (tmp_path / "data/04_onnx/tiny").mkdir(parents=True)
    (tmp_path / "data/04_onnx/tiny/fp32").symlink_to(tiny_qwen_onnx, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path, len(tasks)


def test_realmix_end_to_end_tiny(study, capsys):
    folder, n_tasks = study
    out = folder / "realmix.json"
    assert realmix.main(["--engines", "ours,ours-no-prefix,ours-static,ours-task-order,eager", "--eager-sample", "2",
                         "--batch-size", "3", "--threads", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert list(report["jobs"]) == ["humaneval-single-line/fim-psm", "humaneval-single-line/fim-chat"]
    engines = report["engines"]
    assert set(engines) == {"ours", "ours-no-prefix", "ours-static", "ours-task-order", "eager"}
    for name in ("ours-no-prefix", "ours-static", "ours-task-order"):
        assert engines[name]["identical_to_ours"] == {"identical": 2 * n_tasks, "compared": 2 * n_tasks}, name
    # eager runs a sample of 2 per job, greedy fp32 like ours: the same outputs
    assert engines["eager"]["identical_to_ours"] == {"identical": 4, "compared": 4}
    assert engines["ours"]["reused_prefix_tokens"] > 0 and engines["ours-no-prefix"]["reused_prefix_tokens"] == 0
    assert engines["ours"]["padding_share"] == 0.0 and engines["ours-task-order"]["padding_share"] > 0
    assert engines["ours"]["first_prefill_s_max"] > 0 and engines["ours"]["exit_s_max"] >= 0
    assert set(report["goals"]) >= {"flow_vs_eager_batch_1", "fim_chat_per_task_over_fim_psm"}
    assert "ours-task-order" in capsys.readouterr().out


def test_realmix_without_the_study_is_a_clear_error(tmp_path, monkeypatch):
    from pathlib import Path

    (tmp_path / "params.yaml").write_text(Path("params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="run the study first"):
        realmix.main(["--engines", "ours"])


def test_unknown_engine_is_refused():
    with pytest.raises(UserError, match="unknown"):
        realmix.main(["--engines", "ours,vllm"])


def test_jobs_run_in_the_order_given_and_an_unknown_job_is_refused(study):
    folder, _ = study
    out = folder / "realmix.json"
    with pytest.raises(UserError, match="humaneval-single-line/holefiller.*not among"):
        realmix.main(["--engines", "ours", "--jobs", "humaneval-single-line/holefiller", "--out", str(out)])
    assert not out.exists()
    assert realmix.main(["--engines", "ours", "--jobs", "humaneval-single-line/fim-chat,humaneval-single-line/fim-psm",
                         "--batch-size", "3", "--threads", "1", "--out", str(out), "--work", str(folder / "w")]) == 0
    report = json.loads(out.read_text())
    assert report["jobs_done"] == ["humaneval-single-line/fim-chat", "humaneval-single-line/fim-psm"]
    # outputs land in --work, and the report names it for bench realmix-pass
    assert (folder / "w/humaneval-single-line__fim-chat/ours.jsonl").is_file() and report["work"] == str(folder / "w")
