"""params.yaml schema: generated from the typed config, in sync, with clear errors."""

from __future__ import annotations

import json

import pytest
import yaml

from tuningtax.config import SCHEMA_PATH, json_schema, load_params, validate_params
from tuningtax.errors import UserError


def test_committed_schema_matches_typed_config():
    assert json.loads(SCHEMA_PATH.read_text()) == json_schema(), \
        "schemas/params.schema.json is stale: run `python -m tuningtax params --write-schema`"


def test_repository_params_are_valid(repo_root):
    load_params(repo_root / "params.yaml")


def test_errors_name_file_field_and_value(repo_root, tmp_path):
    config = yaml.safe_load((repo_root / "params.yaml").read_text())
    config["sandbox"]["timeout_s"] = -3
    config["benchmarks"] = ["humaneval-single-line", "mbpp-typo"]
    config["surprise"] = 1
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(config))
    with pytest.raises(UserError) as err:
        load_params(bad)
    message = str(err.value)
    assert str(bad) in message
    assert "field sandbox.timeout_s: -3 is less than the minimum 0.1" in message
    assert "field benchmarks[1]: 'mbpp-typo' is not one of 'humaneval-command'" in message
    assert "field surprise: unknown field 'surprise'; remove it or fix its spelling (allowed: benchmarks," in message


def test_names_and_cross_field_rules_are_checked(repo_root):
    config = yaml.safe_load((repo_root / "params.yaml").read_text())
    config["models"]["bad/name"] = config["models"].pop(next(iter(config["models"])))
    del config["pairs"]
    with pytest.raises(UserError) as err:
        validate_params(config)
    assert "field models.bad/name (its name): 'bad/name' must match" in str(err.value)
    assert "field pairs: missing; add it" in str(err.value)
    config = yaml.safe_load((repo_root / "params.yaml").read_text())
    config["runs"][0]["formats"] = ["command-chat"]  # a command format on a flow benchmark
    config["analysis"]["three_mode"]["flow"]["benchmark"] = "humaneval-command"
    config["analysis"]["three_mode"]["completion"]["level"] = "first-line"  # opt-in: single-line only
    with pytest.raises(UserError) as err:
        validate_params(config)
    message = str(err.value)
    assert "field runs[0].formats[0]: prompt format 'command-chat' serves command tasks" in message
    assert "field analysis.three_mode.flow.benchmark: humaneval-command is a command benchmark" in message
    assert "field analysis.three_mode.completion.level: 'first-line' is not scored for humaneval-completion" in message


def test_defaults_are_filled_in(repo_root):
    config = yaml.safe_load((repo_root / "params.yaml").read_text())
    del config["sandbox"]["workers"], config["generation"]["max_new_tokens"]
    filled = validate_params(config)
    assert filled["sandbox"]["workers"] == 0
    assert filled["generation"]["max_new_tokens"] == {"flow": 128, "completion": 256, "command": 512}


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "x.yaml").write_text("benchmarks: [\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_params(tmp_path / "x.yaml")
    with pytest.raises(UserError):
        validate_params({"benchmarks": []})


@pytest.mark.parametrize("overlay", sorted(p.name for p in (SCHEMA_PATH.parent.parent / "configs").glob("*.yaml")))
def test_config_overlays_are_valid_on_params(repo_root, overlay):
    from snakemake.utils import update_config  # how `--configfile params.yaml OVERLAY` merges them

    config = yaml.safe_load((repo_root / "params.yaml").read_text())
    update_config(config, yaml.safe_load((repo_root / "configs" / overlay).read_text()))
    validate_params(config, f"params.yaml + configs/{overlay}")
    assert config["models"], "the overlay keeps params.yaml's models"
