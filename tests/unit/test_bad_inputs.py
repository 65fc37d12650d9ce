"""The bad-input table (docs/bad-inputs.md): each malformed input stops with a non-zero exit and one message
naming the file or field and the fix, shows no traceback, and leaves every existing output as it was."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tuningtax.cli import main as cli_main

SPEC = {"name": "m", "family": "qwen2.5-coder", "role": "base", "source": "./ckpt"}
TASK = {"task_id": "T/0", "benchmark": "humaneval-single-line", "mode": "flow", "prompt": "def f():\n",
        "suffix": "", "canonical_solution": "    return 1\n", "test": "def check(c):\n    assert c() == 1\n",
        "entry_point": "f", "instruction": "", "source_id": "T/0"}
PARAMS = (Path(__file__).resolve().parents[2] / "params.yaml").read_text()


def jsonl(*records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def params_with(old: str, new: str) -> str:
    assert old in PARAMS, old
    return PARAMS.replace(old, new, 1)


MODEL_LINE = "  qwen2.5-coder-0.5b-instruct:\n"
# id: (files to write, command, text the message must hold)
CASES = {
    "params: wrong type": ({"p.yaml": params_with("timeout_s: 10.0", "timeout_s: ten")},
                           ["params", "--check", "p.yaml"], "field sandbox.timeout_s: 'ten': input should be a valid number"),
    "params: unknown key": ({"p.yaml": PARAMS + "surprise: 1\n"}, ["params", "--check", "p.yaml"],
                            "field surprise: unknown field 'surprise'; remove it or fix its spelling"),
    "params: unknown benchmark": ({"p.yaml": params_with("  - humaneval-command\n", "  - mbpp\n")},
                                  ["params", "--check", "p.yaml"], "field benchmarks[0]: 'mbpp' is not one of"),
    "params: unknown format": ({"p.yaml": params_with("formats: [fim-psm]", "formats: [fim]")},
                               ["params", "--check", "p.yaml"], "field runs[1].formats[0]: 'fim' is not one of"),
    "params: unknown level": ({"p.yaml": params_with("levels: [raw,", "levels: [rawest,")},
                              ["params", "--check", "p.yaml"], "field levels[0]: 'rawest' is not one of"),
    "params: unknown family": ({"p.yaml": params_with("    family: qwen2.5-coder\n", "    family: gpt\n")},
                               ["params", "--check", "p.yaml"],
                               "field models.qwen2.5-coder-0.5b-instruct.family: 'gpt' is not one of"),
    "params: duplicate model name": ({"p.yaml": params_with(MODEL_LINE, MODEL_LINE.replace(":\n", ": {}\n") + MODEL_LINE)},
                                     ["params", "--check", "p.yaml"], "duplicate key 'qwen2.5-coder-0.5b-instruct'"),
    "params: model name with /": ({"p.yaml": params_with(MODEL_LINE, "  evil/name:\n")},
                                  ["params", "--check", "p.yaml"], "field models.evil/name (its name): 'evil/name' must match"),
    "params: model name ..": ({"p.yaml": params_with(MODEL_LINE, "  '..':\n")},
                              ["params", "--check", "p.yaml"], "field models... (its name): '..' must match"),
    "checkpoint: bad GGUF magic": ({"bad.gguf": "not a gguf at all"},
                                   ["fetch-model", "--model", "m", "--spec-json", json.dumps({**SPEC, "source": "./bad.gguf"})],
                                   "bad.gguf: not a GGUF file (it starts with b'not '"),
    "checkpoint: truncated GGUF": ({"cut.gguf": "GGUF\x03\x00\x00"},
                                   ["fetch-model", "--model", "m", "--spec-json", json.dumps({**SPEC, "source": "./cut.gguf"})],
                                   "cut.gguf: cannot be read as a GGUF model"),
    "checkpoint: HF folder without config.json": ({"ckpt/tokenizer.json": "{}"},
                                                  ["fetch-model", "--model", "m", "--spec-json", json.dumps(SPEC)],
                                                  "./ckpt is not an HF model folder (no config.json)"),
    "checkpoint: truncated model.onnx": ({"onnx/model.onnx": "\x08\x07\x12\x04", "tasks.jsonl": jsonl(TASK),
                                          "out.jsonl": "existing\n"},
                                         ["generate", "--model", "m", "--spec-json", json.dumps(SPEC), "--onnx-dir", "onnx",
                                          "--tasks", "tasks.jsonl", "--format", "fim-psm", "--out", "out.jsonl"],
                                         "onnx/model.onnx: ONNX Runtime cannot load it"),
    "checkpoint: empty model.onnx": ({"onnx/model.onnx": "", "tasks.jsonl": jsonl(TASK), "out.jsonl": "existing\n"},
                                     ["generate", "--model", "m", "--spec-json", json.dumps(SPEC), "--onnx-dir", "onnx",
                                      "--tasks", "tasks.jsonl", "--format", "fim-psm", "--out", "out.jsonl"],
                                     "onnx/model.onnx: ONNX Runtime cannot load it"),
    "checkpoint: export without a tokenizer": ({"onnx/model.onnx": "IDENTITY", "tasks.jsonl": jsonl(TASK),
                                                "out.jsonl": "existing\n"},
                                               ["generate", "--model", "m", "--spec-json", json.dumps(SPEC),
                                                "--onnx-dir", "onnx", "--tasks", "tasks.jsonl", "--format", "fim-psm",
                                                "--out", "out.jsonl"],
                                               "onnx: holds no tokenizer"),
    "tasks: empty file": ({"tasks.jsonl": "", "c.jsonl": jsonl({"task_id": "T/0", "sample": 0, "completion": "x"}),
                           "r.jsonl": "existing\n"},
                          ["execute", "--tasks", "tasks.jsonl", "--completions", "c.jsonl", "--out", "r.jsonl"],
                          "tasks.jsonl: holds no tasks"),
    "tasks: truncated line": ({"tasks.jsonl": jsonl(TASK)[:40], "c.jsonl": "", "r.jsonl": "existing\n"},
                              ["execute", "--tasks", "tasks.jsonl", "--completions", "c.jsonl", "--out", "r.jsonl"],
                              "tasks.jsonl:1: not valid JSON"),
    "tasks: duplicate ids": ({"tasks.jsonl": jsonl(TASK, TASK), "c.jsonl": "", "r.jsonl": "existing\n"},
                             ["execute", "--tasks", "tasks.jsonl", "--completions", "c.jsonl", "--out", "r.jsonl"],
                             "tasks.jsonl:2: task_id 'T/0' appears twice"),
    "tasks: missing fields": ({"tasks.jsonl": jsonl({k: v for k, v in TASK.items() if k != "test"}), "c.jsonl": "",
                               "r.jsonl": "existing\n"},
                              ["execute", "--tasks", "tasks.jsonl", "--completions", "c.jsonl", "--out", "r.jsonl"],
                              "tasks.jsonl:1: missing field(s) test"),
    "completions: empty file": ({"tasks.jsonl": jsonl(TASK), "c.jsonl": "", "r.jsonl": "existing\n"},
                                ["execute", "--tasks", "tasks.jsonl", "--completions", "c.jsonl", "--out", "r.jsonl"],
                                "c.jsonl: holds no completions"),
    "completions: unknown task": ({"tasks.jsonl": jsonl(TASK), "r.jsonl": "existing\n",
                                   "c.jsonl": jsonl({"task_id": "T/9", "sample": 0, "completion": "x"})},
                                  ["execute", "--tasks", "tasks.jsonl", "--completions", "c.jsonl", "--out", "r.jsonl"],
                                  "c.jsonl:1: task_id 'T/9' is not in tasks.jsonl"),
    "completions: truncated line": ({"tasks.jsonl": jsonl(TASK), "r.jsonl": "existing\n",
                                     "c.jsonl": jsonl({"task_id": "T/0", "sample": 0, "completion": "x"})[:20]},
                                    ["execute", "--tasks", "tasks.jsonl", "--completions", "c.jsonl", "--out", "r.jsonl"],
                                    "c.jsonl:1: not valid JSON"),
}


def identity_onnx(path: Path) -> None:
    """A valid ONNX graph (one Identity node): the session loads, so the next check is the one that fails."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_stops_with_one_clear_message(case, tmp_path, monkeypatch, capsys):
    files, argv, message = CASES[case]
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if text == "IDENTITY":
            identity_onnx(tmp_path / name)
        else:
            (tmp_path / name).write_bytes(text.encode("latin-1"))
    monkeypatch.chdir(tmp_path)
    before = digests(tmp_path)
    rc = cli_main(argv)
    err = capsys.readouterr().err
    assert rc != 0
    assert message in err, err
    assert "Traceback" not in err
    after = digests(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before, "an existing file was changed"
    assert not [k for k in after if k not in before and not k.startswith(".cache")], "a new file was left behind"


def test_a_full_disk_keeps_the_old_output_and_says_why(tmp_path):
    tasks, out = tmp_path / "tasks.jsonl", tmp_path / "subset.jsonl"
    tasks.write_text(jsonl(*[{**TASK, "task_id": f"T/{i}", "source_id": f"P/{i}", "prompt": "x" * 2000}
                             for i in range(20)]))
    out.write_text("the previous subset\n")

    def small_disk():  # writes past 8 KiB fail with EFBIG, as ENOSPC would, instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    run = subprocess.run([sys.executable, "-m", "tuningtax", "subset", "--tasks", str(tasks), "--out", str(out),
                          "--n-problems", "0", "--max-per-problem", "0", "--seed", "0"],
                         capture_output=True, text=True, preexec_fn=small_disk, cwd=tmp_path)
    assert run.returncode == 1
    assert f"error: {out}: cannot write (File too large)" in run.stderr and "Traceback" not in run.stderr
    assert out.read_text() == "the previous subset\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["subset.jsonl", "tasks.jsonl"], "no temporary file left"


def test_a_second_generate_on_the_same_output_is_refused(tmp_path):
    from tuningtax.errors import UserError
    from tuningtax.generate.core import generate_to_file

    out = tmp_path / "raw_output.jsonl"
    fd = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another run holds the folder
    try:
        with pytest.raises(UserError, match="another generate is writing it right now"):
            generate_to_file([], [], None, None, None, out, progress=False)
    finally:
        os.close(fd)
    assert list(tmp_path.iterdir()) == []


def test_a_generate_that_fails_releases_its_folder(tmp_path):
    """The lock goes with the run, however it ends: a later generate in the same process is not refused."""
    from tuningtax.generate.core import generate_to_file

    out = tmp_path / "raw_output.jsonl"
    with pytest.raises(AttributeError):  # no config: fails inside, after taking the lock
        generate_to_file([], [], None, None, None, out, progress=False)
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # would raise BlockingIOError if still held
    finally:
        os.close(fd)
