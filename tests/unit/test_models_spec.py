"""Model spec validation and spec look-up (params file or inline JSON)."""

from __future__ import annotations

import json

import pytest

from tuningtax.errors import UserError
from tuningtax.models.cli import load_spec
from tuningtax.models.spec import OFFLINE_QWEN, ModelSpec, source_kind

GOOD = {"name": "qwen-1.5b", "family": "qwen2.5-coder", "role": "base", "source": "Qwen/Qwen2.5-Coder-1.5B",
        "revision": "main"}


def test_valid_spec_round_trips():
    spec = ModelSpec.from_dict(GOOD)
    assert spec.source_kind == "hub" and spec.step is None
    assert ModelSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("source", "kind"),
    [(OFFLINE_QWEN, "offline"), ("models/q.gguf", "gguf"), ("./ckpt/step-100", "local"), ("/abs/folder", "local"),
     ("deepseek-ai/deepseek-coder-1.3b-base", "hub")],
)
def test_source_kinds(source, kind):
    assert source_kind(source) == kind


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"family": "gpt-9"}, "field family: 'gpt-9' is not one of 'qwen2.5-coder'"),
        ({"role": "chat"}, "field role: 'chat' is not one of 'base', 'instruct' or 'checkpoint'"),
        ({"name": "bad/name"}, "field name: 'bad/name' must match"),
        ({"revision": None}, "needs field revision"),
        ({"step": 5}, "field step is only for role checkpoint"),
        ({"role": "checkpoint"}, "role checkpoint needs field step"),
        ({"role": "checkpoint", "step": -1}, "role checkpoint needs field step"),
        ({"source": "data/models/x"}, "field source 'data/models/x' is neither"),
        ({"sorce": "x"}, "field sorce: unknown field 'sorce'; remove it or fix its spelling (allowed: family, role"),
        ({"name": 3}, "field name: 3: input should be a valid string"),
        ({"step": "5", "role": "checkpoint"}, "field step: '5': input should be a valid integer"),
        ({"source": ""}, "field source: '' is too short"),
        ({"family": None}, "field family: None is not one of"),
    ],
)
def test_spec_errors_name_the_field(change, message):
    with pytest.raises(UserError, match=None) as err:
        ModelSpec.from_dict({**GOOD, **change}, where="params.yaml: models[0]")
    assert message in str(err.value)
    assert str(err.value).startswith("params.yaml: models[0]")


def test_checkpoint_and_non_hub_sources_need_no_revision():
    spec = ModelSpec.from_dict({"name": "ck", "family": "qwen2.5-coder", "role": "checkpoint", "step": 200,
                                "source": "./data/03_models/ck-200"})
    assert spec.step == 200 and spec.revision is None


def test_not_a_mapping():
    with pytest.raises(UserError, match="expected a mapping"):
        ModelSpec.from_dict(["x"])


def test_load_spec_from_params(tmp_path):
    params = tmp_path / "params.yaml"
    entry = {k: v for k, v in GOOD.items() if k != "name"}
    params.write_text("models:\n  qwen-1.5b: " + json.dumps(entry) + "\n  other: {family: generic, role: base, "
                      "source: ./x}\n")
    assert load_spec("qwen-1.5b", params) == ModelSpec.from_dict(GOOD)
    with pytest.raises(UserError, match="no model named 'nope'.*known: qwen-1.5b, other"):
        load_spec("nope", params)
    params.write_text("models:\n  - " + json.dumps(GOOD) + "\n")
    with pytest.raises(UserError, match="needs a top-level 'models:' mapping"):
        load_spec("qwen-1.5b", params)
    params.write_text("models:\n  qwen-1.5b: " + json.dumps(GOOD) + "\n")
    with pytest.raises(UserError, match="field name is the entry's key"):
        load_spec("qwen-1.5b", params)
    params.write_text("models:\n  qwen-1.5b: " + json.dumps({**entry, "role": "boss"}) + "\n")
    with pytest.raises(UserError, match=r"params.yaml: models.qwen-1.5b: field role"):
        load_spec("qwen-1.5b", params)
    with pytest.raises(UserError, match="not found"):
        load_spec("qwen-1.5b", tmp_path / "missing.yaml")


def test_load_spec_inline_json_wins(tmp_path):
    assert load_spec("qwen-1.5b", tmp_path / "absent.yaml", json.dumps(GOOD)).name == "qwen-1.5b"
    with pytest.raises(UserError, match="describes model 'qwen-1.5b' but --model is 'x'"):
        load_spec("x", tmp_path / "absent.yaml", json.dumps(GOOD))
    with pytest.raises(UserError, match="not valid JSON"):
        load_spec("x", tmp_path / "absent.yaml", "{")


def test_fetch_model_checks_a_tuned_checkpoint_at_a_relative_source_dir(tmp_path, monkeypatch, capsys):
    """The workflow passes a tuned checkpoint's folder relative to the working directory and without "./"
    (storage plugins map relative paths only); it is a folder, never read as a hub id."""
    from tuningtax.cli import main

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "data" / "03_checkpoints" / "sft" / "step-8"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    spec = {"name": "sft-step8", "family": "qwen2.5-coder", "role": "checkpoint", "step": 8,
            "source": "./data/03_checkpoints/sft/step-8"}
    args = ["fetch-model", "--model", "sft-step8", "--spec-json", json.dumps(spec)]
    assert main([*args, "--source-dir", "data/03_checkpoints/sft/step-8"]) == 0
    assert capsys.readouterr().out.strip() == "data/03_checkpoints/sft/step-8"  # the spec's source, recorded
    assert main([*args, "--source-dir", "data/03_checkpoints/sft/step-9"]) != 0  # a missing folder still fails
    assert "data/03_checkpoints/sft/step-9" in capsys.readouterr().err
