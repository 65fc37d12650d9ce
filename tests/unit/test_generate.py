"""Generation: token-id slicing, stop reasons, batch invariance, resume after kill -9 (tiny random model)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tuningtax.cli import main
from tuningtax.jsonl import read_jsonl, write_jsonl
from tuningtax.tasks.registry import build_tasks

SPEC = {"name": "tiny-qwen", "family": "qwen2.5-coder", "role": "instruct", "source": "/unused"}


@pytest.fixture(scope="module")
def task_file(tmp_path_factory):
    # 10 single-line tasks from 3 problems: prompts of different lengths, so left padding matters.
    tasks = [t for t in build_tasks("humaneval-single-line") if t.source_id in {"HumanEval/0", "HumanEval/2", "HumanEval/4"}]
    path = tmp_path_factory.mktemp("gen") / "tasks.jsonl"
    write_jsonl(path, (t.to_record() for t in tasks))
    return path


def _args(onnx, tasks, out, batch, fmt="fim-psm", max_new=24):
    return ["generate", "--model", "tiny-qwen", "--spec-json", json.dumps(SPEC), "--onnx-dir", str(onnx),
            "--tasks", str(tasks), "--format", fmt, "--out", str(out), "--batch-size", str(batch),
            "--max-new-tokens", str(max_new), "--threads", "1", "--no-progress"]


def test_records_and_config(tiny_qwen_onnx, task_file, tmp_path):
    out = tmp_path / "c.jsonl"
    assert main(_args(tiny_qwen_onnx, task_file, out, 4)) == 0
    records = read_jsonl(out)
    assert [r["task_id"] for r in records] == [r["task_id"] for r in read_jsonl(task_file)]
    for r in records:
        assert set(r) == {"task_id", "sample", "raw_output", "n_prompt_tokens", "n_new_tokens", "stop_reason",
                          "prompt_sha256"}
        assert 1 <= r["n_new_tokens"] <= 24
        if r["stop_reason"].startswith("stop_token:"):
            assert r["stop_reason"].split(":", 1)[1] not in r["raw_output"]  # the stop token is sliced off as an id
        else:
            assert r["stop_reason"] == "max_new_tokens" and r["n_new_tokens"] == 24
    config = json.loads((tmp_path / "c.jsonl.config.json").read_text())
    assert config["do_sample"] is False and config["max_new_tokens"] == 24 and 151643 in config["stop_token_ids"]


def test_batch_1_and_batch_8_give_the_same_tokens(tiny_qwen_onnx, task_file, tmp_path):
    assert main(_args(tiny_qwen_onnx, task_file, tmp_path / "b1.jsonl", 1)) == 0
    assert main(_args(tiny_qwen_onnx, task_file, tmp_path / "b8.jsonl", 8)) == 0
    assert (tmp_path / "b1.jsonl").read_bytes() == (tmp_path / "b8.jsonl").read_bytes()


@pytest.mark.parametrize("fmt", ["fim-psm", "fim-chat"])
def test_schedulers_and_prefix_reuse_write_the_same_file(tiny_qwen_onnx, task_file, tmp_path, capsys, fmt):
    static = tmp_path / "static.jsonl"
    assert main([*_args(tiny_qwen_onnx, task_file, static, 8, fmt), "--scheduler", "static"]) == 0
    assert "scheduler\": \"static\"" in (tmp_path / "static.jsonl.config.json").read_text()
    for name, batch, extra in (("c3", 3, []), ("c8", 8, []), ("plain", 8, ["--no-prefix-reuse"])):
        capsys.readouterr()
        assert main([*_args(tiny_qwen_onnx, task_file, tmp_path / f"{name}.jsonl", batch, fmt), *extra]) == 0
        reused = int(capsys.readouterr().err.split(" reused from a shared prefix")[0].rsplit("(", 1)[1])
        assert (tmp_path / f"{name}.jsonl").read_bytes() == static.read_bytes(), name
        # chat prompts share the template's head; every fim-psm prompt of a problem its code before the holes
        assert (reused > 0) == (name != "plain"), (name, reused)


def test_resume_keeps_records_finished_out_of_order(tiny_qwen_onnx, task_file, tmp_path):
    full = tmp_path / "full.jsonl"
    assert main(_args(tiny_qwen_onnx, task_file, full, 4)) == 0
    lines = full.read_bytes().splitlines(keepends=True)
    out = tmp_path / "c.jsonl"
    partial = tmp_path / "c.jsonl.partial"  # what continuous batching leaves: rows in the order they ended
    partial.write_bytes(b"".join([lines[7], lines[2], lines[9], lines[0]]) + lines[5][:20])
    (tmp_path / "full.jsonl.config.json").rename(tmp_path / "c.jsonl.partial.config.json")
    assert main(_args(tiny_qwen_onnx, task_file, out, 4)) == 0
    assert out.read_bytes() == full.read_bytes() and not partial.exists()


def test_a_partial_with_a_foreign_record_refuses(tiny_qwen_onnx, task_file, tmp_path, capsys):
    out = tmp_path / "c.jsonl"
    assert main(_args(tiny_qwen_onnx, task_file, out, 4)) == 0
    lines = out.read_bytes().splitlines(keepends=True)
    partial = tmp_path / "c.jsonl.partial"
    partial.write_bytes(lines[0] + lines[0].replace(b"HumanEval/0", b"HumanEval/99"))
    (tmp_path / "c.jsonl.config.json").rename(tmp_path / "c.jsonl.partial.config.json")
    out.unlink()
    capsys.readouterr()
    assert main(_args(tiny_qwen_onnx, task_file, out, 4)) == 2
    assert "c.jsonl.partial:2" in capsys.readouterr().err and not out.exists()


def test_resume_after_torn_write_is_byte_identical(tiny_qwen_onnx, task_file, tmp_path):
    full = tmp_path / "full.jsonl"
    assert main(_args(tiny_qwen_onnx, task_file, full, 4)) == 0
    part = tmp_path / "part.jsonl"
    assert main(_args(tiny_qwen_onnx, task_file, part, 4)) == 0
    lines = part.read_bytes().split(b"\n")
    part.unlink()
    torn = tmp_path / "part.jsonl.partial"  # what a killed run leaves: 1.5 batches and a torn line
    torn.write_bytes(b"\n".join(lines[:6]) + b"\n" + lines[6][:17])
    (tmp_path / "part.jsonl.config.json").rename(tmp_path / "part.jsonl.partial.config.json")
    assert main(_args(tiny_qwen_onnx, task_file, part, 4)) == 0
    assert not torn.exists()
    assert part.read_bytes() == full.read_bytes()


@pytest.mark.parametrize("data_at", ["partial", "final"])
def test_kill_between_the_two_renames_resumes(tiny_qwen_onnx, task_file, tmp_path, data_at):
    out = tmp_path / "c.jsonl"
    assert main(_args(tiny_qwen_onnx, task_file, out, 4)) == 0
    finished = out.read_bytes()
    partial = tmp_path / "c.jsonl.partial"
    # The sidecar has moved, the data has not: finishing (partial -> final) or resuming (final -> partial).
    if data_at == "partial":
        out.rename(partial)
    else:
        (tmp_path / "c.jsonl.config.json").rename(tmp_path / "c.jsonl.partial.config.json")
    assert main(_args(tiny_qwen_onnx, task_file, out, 4)) == 0
    assert out.read_bytes() == finished and not partial.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl", "c.jsonl.config.json"]


def test_resume_after_kill_9_is_byte_identical(tiny_qwen_onnx, task_file, tmp_path):
    full = tmp_path / "full.jsonl"
    assert main(_args(tiny_qwen_onnx, task_file, full, 2, max_new=48)) == 0
    out = tmp_path / "killed.jsonl"
    cmd = [sys.executable, "-m", "tuningtax", *_args(tiny_qwen_onnx, task_file, out, 2, max_new=48)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        partial = tmp_path / "killed.jsonl.partial"
        if partial.exists() and partial.stat().st_size > 0:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    if proc.returncode != -signal.SIGKILL:
        pytest.skip("generation finished before it could be killed")
    assert not out.exists() and 0 < len(partial.read_bytes().splitlines()) < 10
    # Snakemake deletes a killed job's declared outputs before rerunning it; the partial work survives.
    (tmp_path / "killed.jsonl.config.json").unlink(missing_ok=True)
    assert main(_args(tiny_qwen_onnx, task_file, out, 2, max_new=48)) == 0
    assert out.read_bytes() == full.read_bytes()


def test_rerun_with_another_config_refuses(tiny_qwen_onnx, task_file, tmp_path):
    out = tmp_path / "c.jsonl"
    assert main(_args(tiny_qwen_onnx, task_file, out, 4)) == 0
    before = out.read_bytes()
    assert main(_args(tiny_qwen_onnx, task_file, out, 4, max_new=8)) == 2
    assert out.read_bytes() == before


def test_missing_export_is_a_clear_error(task_file, tmp_path, capsys):
    assert main(_args(tmp_path / "nowhere", task_file, tmp_path / "c.jsonl", 4)) == 2
    assert "export" in capsys.readouterr().err


@pytest.mark.slow  # two fresh interpreters importing transformers
def test_tokenizer_loads_without_the_false_mistral_regex_warning(tiny_qwen_dir):
    """In a fresh interpreter (transformers' log handler binds stderr at import): the default load warns,
    the project's load does not, and both give the same ids (nothing was "fixed")."""
    code = (f"import json, sys; from transformers import AutoTokenizer; from tuningtax.generate.engine import "
            f"load_tokenizer; tok = (load_tokenizer if sys.argv[1] == 'ours' else AutoTokenizer.from_pretrained)"
            f"({str(tiny_qwen_dir)!r}); print(json.dumps(tok('def f(x):\\n    return x  # <|fim_prefix|>\\n')"
            f"['input_ids']))")
    runs = {who: subprocess.run([sys.executable, "-c", code, who], capture_output=True, text=True, timeout=300)
            for who in ("default", "ours")}
    assert all(r.returncode == 0 for r in runs.values()), runs
    assert "incorrect regex pattern" in runs["default"].stderr  # control: the check bites
    assert "incorrect regex pattern" not in runs["ours"].stderr
    assert runs["ours"].stdout == runs["default"].stdout
