"""The Snakemake workflow end to end on a small config, its determinism, and its agreement with dvc.yaml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]


def _snakemake(workdir: Path, *args: str, config: dict | None = None) -> subprocess.CompletedProcess:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(config or {})
    if "models" in (config or {}):
        params["tuning"] = None  # its start model is params.yaml's
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    return subprocess.run([*SNAKEMAKE, "-d", str(workdir), "--configfile", str(workdir / "params.yaml"), *args],
                          capture_output=True, text=True, env=env, timeout=900)


def test_dry_run_of_the_default_study(tmp_path):
    run = _snakemake(tmp_path, "-n", "--cores", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    for rule in ("build_tasks", "validate_tasks", "run_gold", "validate_gold", "gate_gold", "tabulate_gold"):
        assert f"rule {rule}:" in run.stdout + run.stderr


def test_bad_params_stop_before_anything_runs(tmp_path):
    run = _snakemake(tmp_path, "-n", "--cores", "1", config={"sandbox": {"timeout_s": "ten"}})
    assert run.returncode != 0
    assert "field sandbox.timeout_s: 'ten': input should be a valid number" in run.stderr + run.stdout


@pytest.mark.slow  # two clean runs of the gold part of a study
@pytest.mark.parametrize("benchmarks", [["humaneval-completion", "humaneval-command"]])
def test_small_study_builds_gold_table_deterministically(tmp_path, benchmarks):
    outputs = []
    for name in ("a", "b"):
        workdir = tmp_path / name
        workdir.mkdir()
        run = _snakemake(workdir, "--cores", "2", config={"benchmarks": benchmarks, "runs": [], "models": {}})
        assert run.returncode == 0, run.stderr[-4000:]
        outputs.append(workdir)
    table = (outputs[0] / "results" / "gold.csv").read_text().splitlines()
    assert table[0] == "benchmark,n_tasks,gold_pass_rate"
    assert sorted(table[1:]) == sorted(f"{b},164,1.0000" for b in benchmarks)
    tracked = sorted(p.relative_to(outputs[0]) for d in ("data", "results") for p in (outputs[0] / d).rglob("*")
                     if p.is_file())
    assert tracked, "no outputs"
    for rel in tracked:
        assert (outputs[0] / rel).read_bytes() == (outputs[1] / rel).read_bytes(), f"{rel} differs between runs"


def test_committed_dvc_yaml_is_generated_from_the_snakemake_dag():
    """dvc.yaml is generated from the Snakefile's DAG (python -m tuningtax dvc-yaml); a stale copy fails."""
    run = subprocess.run([sys.executable, "-m", "tuningtax", "dvc-yaml", "--check"], cwd=REPO,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_dvc_stages_hold_every_snakemake_output_once(tmp_path):
    """Every job output of the default study belongs to exactly one DVC stage, and each stage's deps are its
    jobs' inputs from outside it."""
    from tuningtax.dvcstages import TARGET_ONLY_RULES, build_stages, parse_dry_run

    run = _snakemake(tmp_path, "-n", "--forceall", "--printshellcmds", "--cores", "1", "--", *TARGET_ONLY_RULES)
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = parse_dry_run(run.stdout + run.stderr)
    files = {o for j in jobs for o in j.outputs}
    assert files
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    outs = [o for s in stages.values() for o in s["outs"]]
    assert sorted(outs) == sorted(files)
    for stage in stages.values():
        assert "always_changed" not in stage and "persist" not in str(stage)
    configured = set(yaml.safe_load((REPO / "params.yaml").read_text())["models"])
    assert build_stages(jobs, REPO, configured, workdir=tmp_path) == stages


def test_tuned_checkpoints_get_their_own_stages_and_stay_out_of_the_study_tables():
    from tuningtax.bundle import CHECKPOINT_FILES
    from tuningtax.config import validate_params
    from tuningtax.tune.plan import tuned_models

    params = validate_params(yaml.safe_load((REPO / "params.yaml").read_text()))
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    tuned = tuned_models(params)
    assert tuned
    for name, entry in tuned.items():
        for group in ("export", "generate", "execute", "measure"):
            assert f"{group}-{name}" in stages
        folder = entry["source"].removeprefix("./")
        assert {f"{folder}/{f}" for f in CHECKPOINT_FILES} <= set(stages[f"export-{name}"]["deps"])
        assert f"data/07_scores/{name}/samples.jsonl" in stages["trajectory"]["deps"]
    assert not [d for d in stages["tables"]["deps"] if any(f"/{name}/" in d for name in tuned)]
    for arm in params["tuning"]["arms"]:
        assert f"tuning.arms.{arm}" in stages[f"tune-{arm}"]["params"]
