"""`python -m tuningtax tune` on a tiny random Qwen2: checkpoints at the listed steps, a falling loss on a toy
set, identical weights from two runs with one seed, and a killed run that resumes to the same weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a few minutes: four training runs and a kill

from conftest import build_tiny_qwen
from tuningtax.bundle import CHECKPOINT_FILES, unpacked

REPO = Path(__file__).resolve().parents[2]
SPEC = {"name": "tiny", "family": "qwen2.5-coder", "role": "instruct", "source": "./tiny"}
TUNING = {"start": "tiny", "data": "mbppplus", "n_examples": 8, "method": "lora",
          "lora": {"rank": 4, "alpha": 8.0, "target_modules": ["q_proj", "v_proj", "up_proj"]},
          "max_seq_len": 192, "batch_size": 4, "learning_rate": 0.01, "warmup_steps": 0, "save_steps": [2, 4, 6],
          "seed": 0, "arms": {"a": {"fim_share": 0.5}}, "evaluate": {}}


def mbpp_tasks(path: Path) -> Path:
    records = []
    for n in range(12):
        code = f"def f{n}(x):\n    y = x + {n}\n    return y * {n + 1}\n"
        records.append({"task_id": f"Mbpp/{n}", "benchmark": "mbppplus-command", "mode": "command",
                        "prompt": f'"""\nAdd {n}, then multiply by {n + 1}.\n"""\n', "suffix": "",
                        "canonical_solution": code, "test": "", "entry_point": f"f{n}",
                        "instruction": f"Write f{n}(x): add {n} to x, then multiply by {n + 1}.",
                        "source_id": f"Mbpp/{n}"})
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory, qwen_tokenizer_dir):
    root = tmp_path_factory.mktemp("lab")
    build_tiny_qwen(root / "tiny", qwen_tokenizer_dir, seed=3)
    (root / "source.txt").write_text(str(root / "tiny") + "\n")
    mbpp_tasks(root / "train.jsonl")
    return root


def tune_command(root: Path, out: str, state: str, tuning: dict = TUNING) -> list[str]:
    return [sys.executable, "-m", "tuningtax", "tune", "--model", "tiny", "--spec-json", json.dumps(SPEC),
            "--arm", "a", "--tuning-json", json.dumps(tuning), "--source-file", str(root / "source.txt"),
            "--train-tasks", str(root / "train.jsonl"), "--out-dir", str(root / out), "--state-dir",
            str(root / state), "--threads", "1"]


def run_tune(root: Path, out: str, state: str, tuning: dict = TUNING) -> subprocess.CompletedProcess:
    done = subprocess.run(tune_command(root, out, state, tuning), cwd=root, capture_output=True, text=True,
                          timeout=600, env=os.environ | {"PYTHONPATH": str(REPO / "src")})
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def first(lab):
    run_tune(lab, "run1", "state1")
    return lab / "run1"


def weights(folder: Path) -> bytes:
    return (folder / "model.safetensors").read_bytes()


def test_checkpoints_land_at_the_listed_steps(first):
    from transformers import AutoModelForCausalLM

    assert sorted(p.name for p in first.iterdir() if p.is_dir()) == ["step-2", "step-4", "step-6"]
    for step in (2, 4, 6):
        card = json.loads((first / f"step-{step}" / "tuning.json").read_text())
        assert card["step"] == step and card["arm"] == "a" and card["start"] == "tiny"
        assert sorted(p.name for p in (first / f"step-{step}").iterdir()) == sorted(CHECKPOINT_FILES)
        with unpacked(first / f"step-{step}") as folder:  # merged: a plain Qwen2 again
            model = AutoModelForCausalLM.from_pretrained(folder)
        assert not any("lora" in name for name, _ in model.named_parameters())
    assert len({weights(first / f"step-{s}") for s in (2, 4, 6)}) == 3
    log = [json.loads(line) for line in (first / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5, 6]


def test_two_runs_with_one_seed_give_identical_weights(lab, first):
    run_tune(lab, "run2", "state2")
    for step in (2, 4, 6):
        assert weights(lab / "run2" / f"step-{step}") == weights(first / f"step-{step}")
    assert (lab / "run2" / "train_log.jsonl").read_bytes() == (first / "train_log.jsonl").read_bytes()


def test_loss_falls_on_a_toy_set(lab):
    toy = {**TUNING, "method": "full", "n_examples": 4, "save_steps": [30], "learning_rate": 0.005}
    run_tune(lab, "toy", "toy-state", toy)
    loss = [json.loads(line)["loss"] for line in (lab / "toy" / "train_log.jsonl").read_text().splitlines()]
    assert sum(loss[-5:]) / 5 < 0.7 * sum(loss[:5]) / 5, loss


def test_a_killed_run_resumes_to_the_same_weights(lab, first):
    long = {**TUNING, "save_steps": [2, 4, 6, 120]}
    run_tune(lab, "whole", "whole-state", long)
    proc = subprocess.Popen(tune_command(lab, "killed", "killed-state", long), cwd=lab, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=os.environ | {"PYTHONPATH": str(REPO / "src")},
                            start_new_session=True)
    latest = lab / "killed-state" / "latest.pt"
    deadline = time.monotonic() + 300
    while not latest.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (lab / "killed" / "step-120").exists()
    resumed = run_tune(lab, "killed", "killed-state", long)
    assert "resuming from step" in resumed.stderr
    for step in (2, 4, 6, 120):
        assert weights(lab / "killed" / f"step-{step}") == weights(lab / "whole" / f"step-{step}")
    assert (lab / "killed" / "train_log.jsonl").read_bytes() == (lab / "whole" / "train_log.jsonl").read_bytes()
