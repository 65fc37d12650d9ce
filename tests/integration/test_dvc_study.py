"""DVC on a tiny study in a fresh git repository: stages per checkpoint, a no-op repro, sharing through a
local-folder remote, a new checkpoint or a changed one rerunning only itself, and lineage."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, S3_CREDENTIALS, SHARED, build_tiny_qwen, list_bucket, make_bucket

from tuningtax.dvcstages import GROUPS

pytestmark = pytest.mark.slow

ENV = os.environ | {"OMP_NUM_THREADS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                    "GIT_COMMITTER_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1"}
CHECKPOINT_STAGES = ("export", "generate", "execute", "measure")


def sh(cwd: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=ENV, timeout=1500)
    if check:
        assert run.returncode == 0, f"{' '.join(command)}\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    return run


def tm(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh(cwd, sys.executable, "-m", "tuningtax", *args, check=check)


def ran_stages(repro: subprocess.CompletedProcess) -> list[str]:
    return sorted(re.findall(r"^Running stage '([^']+)'", repro.stdout + repro.stderr, flags=re.M))


def ran_jobs(output: str) -> list[str]:
    """rule:wildcards of every job Snakemake ran (its job blocks)."""
    jobs = []
    for block in re.split(r"\n(?=\[.+\]\n(?:local)?rule )", output):
        rule = re.search(r"^(?:local)?rule (\S+):", block, flags=re.M)
        if rule and rule.group(1) != "all":
            wildcards = re.search(r"^    wildcards: (.*)$", block, flags=re.M)
            jobs.append(f"{rule.group(1)}:{wildcards.group(1) if wildcards else ''}")
    return sorted(jobs)


def model_entry(name: str, role: str) -> dict:
    return {"family": "qwen2.5-coder", "role": role, "source": f"./checkpoints/{name}",
            **({"step": 100} if role == "checkpoint" else {})}


def make_project(root: Path, tokenizer: Path) -> Path:
    """The repository's pipeline files, three tiny checkpoints and params for two of them."""
    files = sh(REPO, "git", "ls-files", "-co", "--exclude-standard").stdout.split()
    for name in files:
        if name.startswith(("tests/", "scripts/", "docs/", "labels/", ".dvc/")) or not (REPO / name).is_file():
            continue
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / name)
    for seed, name in enumerate(("tiny-base", "tiny-instruct", "tiny-ckpt"), 1):
        build_tiny_qwen(root / "checkpoints" / name, tokenizer, seed=seed)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update({
        "benchmarks": ["humaneval-completion", "humaneval-command"],
        "benchmark_mirror": str(SHARED / "benchmarks"),
        "models": {"tiny-base": model_entry("tiny-base", "base"),
                   "tiny-instruct": model_entry("tiny-instruct", "instruct")},
        "generation": {**params["generation"], "batch_size": 4,
                       "max_new_tokens": {"flow": 8, "completion": 8, "command": 8}},
        "subset": {"n_problems": 3, "max_flow_tasks_per_problem": 2, "seed": 0},
        "runs": [{"benchmark": "humaneval-completion", "formats": ["completion-raw"]},
                 {"benchmark": "humaneval-command", "formats": ["command-chat"]}],
        "pairs": [{"base": "tiny-base", "instruct": "tiny-instruct"}],
        "analysis": {**params["analysis"], "n_resamples": 200, "labels": None},
        "tuning": None,
    })
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def edit_params(root: Path, change) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    change(params)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def project(tmp_path_factory, qwen_tokenizer_dir):
    root = make_project(tmp_path_factory.mktemp("dvc-study"), qwen_tokenizer_dir)
    tm(root, "dvc-yaml")
    sh(root, "git", "init", "-q")
    sh(root, "dvc", "init", "-q")
    sh(root, "dvc", "remote", "add", "-d", "store", str(root.parent / "remote"))
    first = sh(root, "dvc", "repro")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "study")
    root.joinpath("first_repro.log").write_text(first.stdout + first.stderr)
    return root


def test_stages_sit_at_the_checkpoint_grain(project):
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    expected = {f"{s}-{m}" for s in CHECKPOINT_STAGES for m in ("tiny-base", "tiny-instruct")}
    assert expected <= set(stages)
    assert {"tasks-humaneval-completion", "tasks-humaneval-command", "gold-table", "tables"} <= set(stages)
    outs = [o for s in stages.values() for o in s["outs"]]
    assert len(outs) == len(set(outs)), "an output belongs to two stages"
    assert not any(a != b and b.startswith(a + "/") for a in outs for b in outs), "overlapping outs"
    for name, stage in stages.items():
        assert "always_changed" not in stage and stage["cmd"].startswith("snakemake --cores all --allowed-rules ")
    assert "models.tiny-base" in stages["generate-tiny-base"]["params"]
    assert not any("tiny-instruct" in p for p in stages["generate-tiny-base"]["params"])
    assert "src/tuningtax/jsonl.py" in stages["generate-tiny-base"]["deps"]
    assert not any(d.startswith("src/tuningtax/bench") for s in stages.values() for d in s["deps"])
    assert ran_stages(subprocess.CompletedProcess([], 0, (project / "first_repro.log").read_text(), "")) \
        == sorted(stages)
    tm(project, "dvc-yaml", "--check")


def test_a_second_repro_runs_nothing_and_status_is_clean(project):
    repro = sh(project, "dvc", "repro")
    assert ran_stages(repro) == []
    assert "up to date" in sh(project, "dvc", "status").stdout
    assert "Nothing to be done" in sh(project, sys.executable, "-m", "snakemake", "-n", "--cores", "1").stdout


def test_push_clone_pull_recomputes_nothing(project, tmp_path):
    sh(project, "dvc", "push", "-q")
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(project), str(clone))
    tm(clone, "pull")
    assert "up to date" in sh(clone, "dvc", "status").stdout
    assert ran_stages(sh(clone, "dvc", "repro")) == []
    dry = sh(clone, sys.executable, "-m", "snakemake", "-n", "--cores", "1")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]
    for table in sorted((project / "results" / "tables").glob("*")) + [project / "results" / "scores.csv"]:
        assert table.read_bytes() == (clone / table.relative_to(project)).read_bytes(), table.name


def test_the_round_trip_through_an_s3_remote_recomputes_nothing(project, tmp_path, s3_endpoint):
    """The same round trip with the DVC cache pushed to an S3 remote (a local S3 server): push, clone, pull."""
    pytest.importorskip("dvc_s3", reason="make setup EXTRA=s3")
    make_bucket(s3_endpoint, "tuningtax-dvc")
    s3 = ENV | S3_CREDENTIALS
    sh(project, "dvc", "remote", "add", "--local", "s3store", "s3://tuningtax-dvc/cache")
    sh(project, "dvc", "remote", "modify", "--local", "s3store", "endpointurl", s3_endpoint)
    assert subprocess.run(["dvc", "push", "-q", "-r", "s3store"], cwd=project, env=s3).returncode == 0
    assert any(k.startswith("cache/files/md5/") for k in list_bucket(s3_endpoint, "tuningtax-dvc"))
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(project), str(clone))
    sh(clone, "dvc", "remote", "add", "--local", "s3store", "s3://tuningtax-dvc/cache")
    sh(clone, "dvc", "remote", "modify", "--local", "s3store", "endpointurl", s3_endpoint)
    pull = subprocess.run([sys.executable, "-m", "tuningtax", "pull", "--remote", "s3store"], cwd=clone, env=s3,
                          capture_output=True, text=True, timeout=900)
    assert pull.returncode == 0, pull.stdout[-2000:] + pull.stderr[-2000:]
    assert ran_stages(sh(clone, "dvc", "repro")) == []
    dry = sh(clone, sys.executable, "-m", "snakemake", "-n", "--cores", "1")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]
    for table in sorted((project / "results" / "tables").glob("*")):
        assert table.read_bytes() == (clone / table.relative_to(project)).read_bytes(), table.name


def test_a_reexport_with_the_same_graph_reruns_nothing_downstream(project):
    forced = sh(project, "dvc", "repro", "--force", "--single-item", "export-tiny-base")
    assert ran_stages(forced) == ["export-tiny-base"]
    assert "up to date" in sh(project, "dvc", "status").stdout, "the re-export changed the graph's bytes"


def test_a_new_checkpoint_reruns_only_itself_and_the_tables(project):
    before = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    edit_params(project, lambda p: p["models"].update({"tiny-ckpt": model_entry("tiny-ckpt", "checkpoint")}))
    tm(project, "dvc-yaml")
    after = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    added = {f"{s}-tiny-ckpt" for s in CHECKPOINT_STAGES}
    assert set(after) - set(before) == added
    assert [n for n in before if before[n] != after[n]] == ["tables"]
    repro = sh(project, "dvc", "repro")
    assert ran_stages(repro) == sorted(added | {"tables"})
    jobs = ran_jobs(repro.stdout + repro.stderr)
    table_rules = GROUPS["tables"][0]  # the study-wide rules of the tables stage
    assert all("tiny-ckpt" in j or j.split(":")[0] in table_rules for j in jobs), jobs
    assert {"tabulate_results", "check_findings", "build_explorer"} <= {j.split(":")[0] for j in jobs}
    print(f"new checkpoint: {len(ran_stages(repro))} stages, {len(jobs)} jobs ran")


def test_a_param_of_one_checkpoint_reruns_only_that_checkpoint(project):
    edit_params(project, lambda p: p["models"]["tiny-instruct"].update({"revision": "v2"}))
    tm(project, "dvc-yaml", "--check")  # a changed param needs no new dvc.yaml
    repro = sh(project, "dvc", "repro")
    assert ran_stages(repro) == sorted({f"{s}-tiny-instruct" for s in CHECKPOINT_STAGES} | {"tables"})


def test_lineage_traces_a_row_back_to_its_checkpoint_and_flags_drift(project):
    trace = tm(project, "lineage", "results/scores.csv", "--row",
               "model=tiny-base,benchmark=humaneval-command,level=raw")
    out = trace.stdout
    for expected in ("[stage tables]", "[stage execute-tiny-base]", "[stage generate-tiny-base]",
                     "data/04_onnx/tiny-base/fp32", "parity:", "generation config:", "checkpoints/tiny-base",
                     "Great Expectations suite", "param models.tiny-base", "every file and stage above matches"):
        assert expected in out, expected
    assert "-tiny-instruct]" not in out and "data/04_onnx/tiny-instruct" not in out
    samples = project / "data" / "07_scores" / "tiny-base" / "samples.jsonl"
    samples.write_text(samples.read_text() + "\n")
    drift = tm(project, "lineage", "results/tables", check=False)
    assert drift.returncode == 1 and "UNTRACED" in drift.stdout


def test_snakemake_alone_reruns_only_a_new_checkpoint(tmp_path, qwen_tokenizer_dir):
    root = make_project(tmp_path, qwen_tokenizer_dir)
    command = (sys.executable, "-m", "snakemake", "--cores", "2")
    sh(root, *command)
    edit_params(root, lambda p: p["models"].update({"tiny-ckpt": model_entry("tiny-ckpt", "checkpoint")}))
    second = sh(root, *command)
    jobs = ran_jobs(second.stdout + second.stderr)
    assert jobs and all("tiny-ckpt" in j or j.split(":")[0] in GROUPS["tables"][0] for j in jobs), jobs
    print(f"snakemake, new checkpoint: {len(jobs)} jobs ran")
