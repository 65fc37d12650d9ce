"""The peer runner's pure parts: batching, stop handling, job validation, the missing-package error."""
import json
import sys

import pytest

from tuningtax.bench import peers
from tuningtax.errors import UserError


def test_batches_are_longest_first_with_ties_in_prompt_order_and_cover_every_prompt():
    prompts = [[1] * 3, [1] * 7, [1] * 3, [1] * 5, [1]]
    groups = peers.batches(prompts, 2)
    assert groups == [[1, 3], [0, 2], [4]]
    assert sorted(i for g in groups for i in g) == list(range(len(prompts)))


def test_cut_at_stop_keeps_the_stop_token_and_respects_the_limit():
    assert peers.cut_at_stop([5, 6, 2, 7], {2}, 10) == [5, 6, 2]
    assert peers.cut_at_stop([5, 6, 2, 7], {2}, 2) == [5, 6]
    assert peers.cut_at_stop([5, 6], set(), 4) == [5, 6]


def test_read_job_names_the_file_and_field(tmp_path):
    good = {"prompts": [[1, 2]], "max_new_tokens": 4, "stop_token_ids": [2], "pad_token_id": 0}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(good))
    assert peers.read_job(path) == peers.Job([[1, 2]], 4, [2], 0)
    for field, bad in (("prompts", [[]]), ("max_new_tokens", 0), ("stop_token_ids", [-1]), ("pad_token_id", None)):
        path.write_text(json.dumps({**good, field: bad}))
        with pytest.raises(UserError, match=rf"{path}.*'{field}'"):
            peers.read_job(path)
    with pytest.raises(UserError, match="does not exist"):
        peers.read_job(tmp_path / "absent.json")


def test_a_missing_peer_package_is_a_clear_error_with_the_pip_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes the import fail even where it is installed
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"prompts": [[1]], "max_new_tokens": 1, "stop_token_ids": [], "pad_token_id": 0}))
    out = tmp_path / "out.json"
    code = peers.main(["run", "llamacpp", "--model-dir", str(tmp_path / "m.gguf"), "--prompts", str(job),
                       "--out", str(out)])
    assert code != 0
    assert "pip install llama-cpp-python" in capsys.readouterr().err
    assert not out.exists()


def test_run_returns_tokens_in_prompt_order_whatever_the_batch_order(tmp_path, monkeypatch):
    seen_batches = []

    def fake_generate(model, job, rows):
        seen_batches.append([len(r) for r in rows])
        return [[len(r), 2] for r in rows]  # each row's answer names its prompt length, then a stop token

    monkeypatch.setattr(peers, "require", lambda engine: None)
    monkeypatch.setitem(peers.LOADERS, "ct2", lambda model_dir, job, threads: object())
    monkeypatch.setitem(peers.GENERATORS, "ct2", fake_generate)
    job = peers.Job([[1] * 2, [1] * 5, [1] * 3], 4, [2], 0)
    result = peers.run("ct2", tmp_path, job, batch_size=2, threads=1)
    assert seen_batches == [[5, 3], [2]]
    assert result["tokens"] == [[2, 2], [5, 2], [3, 2]]
    assert result["batch_size"] == 2 and result["load_s"] >= 0 and result["generate_s"] >= 0


@pytest.mark.parametrize(("engine", "precision"), [("ct2", "int4"), ("genai", "int8")])
def test_a_precision_the_engine_does_not_build_is_refused_before_any_work(tmp_path, capsys, engine, precision):
    out = tmp_path / "model"
    code = peers.main(["build", engine, "--hf-dir", str(tmp_path / "hf"), "--out", str(out), "--precision", precision])
    assert code != 0
    assert f"--precision {precision} is not built for {engine}" in capsys.readouterr().err
    assert not out.exists()
