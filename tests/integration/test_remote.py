"""The tiny study beyond one process: every job a separate process against storage outside the working tree
(cluster-generic + fs storage), through the SLURM executor with fake sbatch/squeue/sacct/srun, with S3 (a
local moto server) as the default storage, and a Kubernetes dry run. Each must give the tables of a plain
local run, byte for byte."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, S3_CREDENTIALS, SHARED, build_tiny_qwen, list_bucket, make_bucket

pytestmark = pytest.mark.slow  # four small studies, each job a Snakemake process of its own

FAKES = REPO / "tests" / "fakes"
SHARED_FS = ["persistence", "software-deployment", "sources", "source-cache"]  # not input-output: storage only
ENV = os.environ | {"OMP_NUM_THREADS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def study_params(instruct: Path) -> dict:
    """One tiny checkpoint, single-line Flow and Command, 2 problems: every rule, few jobs (each job here is a
    Snakemake process of its own, about 7 s of start-up on 2 cores)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update({
        "benchmarks": ["humaneval-single-line", "humaneval-command"],
        "benchmark_mirror": str(SHARED / "benchmarks"),  # a param the cluster profile maps to a shared folder
        "models": {"tiny-instruct": {"family": "qwen2.5-coder", "role": "instruct", "source": str(instruct)}},
        "generation": {**params["generation"], "batch_size": 4,
                       "max_new_tokens": {"flow": 8, "completion": 8, "command": 8}},
        "subset": {"n_problems": 2, "max_flow_tasks_per_problem": 2, "seed": 0},
        "runs": [{"benchmark": "humaneval-single-line", "formats": ["fim-psm"]},
                 {"benchmark": "humaneval-command", "formats": ["command-chat"]}],
        "pairs": [],
        "analysis": {**params["analysis"], "n_resamples": 200,
                     "three_mode": {**params["analysis"]["three_mode"], "completion": None,
                                    "command": {"benchmark": "humaneval-command", "format": "command-chat",
                                                "level": "code-extract"}}},
        "tuning": None,
    })
    return params


def snakemake(root: Path, *args: str, env: dict | None = None, timeout: int = 2400) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(root),
                          "--configfile", str(root / "params.yaml"), *args],
                         capture_output=True, text=True, env=ENV | (env or {}), timeout=timeout)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-6000:]
    return run


def project(root: Path, model: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(study_params(model)))
    return root


def tables(folder: Path) -> dict[str, bytes]:
    files = sorted((folder / "results" / "tables").glob("*.csv")) + [folder / "results" / "scores.csv"]
    return {f.relative_to(folder).as_posix(): f.read_bytes() for f in files}


def profile_groups() -> list[str]:
    """profiles/slurm's grouping, passed on the command line to the other executors."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    return ["--groups", *(f"{r}={g}" for r, g in profile["groups"].items()),
            "--group-components", *(f"{g}={n}" for g, n in profile["group-components"].items())]


@pytest.fixture(scope="module")
def model(tmp_path_factory, qwen_tokenizer_dir) -> Path:
    return build_tiny_qwen(tmp_path_factory.mktemp("remote-model") / "tiny-instruct", qwen_tokenizer_dir, seed=2)


@pytest.fixture(scope="module")
def local_tables(tmp_path_factory, model) -> dict[str, bytes]:
    root = project(tmp_path_factory.mktemp("local-run"), model)
    snakemake(root, "--cores", "2")
    found = tables(root)
    assert {"results/tables/prompt_grid.csv", "results/tables/three_mode.csv", "results/scores.csv"} <= set(found)
    return found


def test_every_job_apart_against_storage_outside_the_tree(tmp_path, model, local_tables):
    """cluster-generic: each job (or group of jobs) a separate process started by a submit script; fs storage:
    every declared input is fetched from a folder outside the working tree and every output sent there, so a
    file a rule reads without declaring it is missing where the job runs."""
    root, store, log = project(tmp_path / "run", model), tmp_path / "store", tmp_path / "cluster"
    log.mkdir()
    submit = str(FAKES / "cluster" / "submit.sh")
    snakemake(root, "--executor", "cluster-generic", "--cluster-generic-submit-cmd", submit,
              "--jobs", "2", "--default-storage-provider", "fs", "--default-storage-prefix", str(store),
              "--shared-fs-usage", *SHARED_FS, *profile_groups(), env={"FAKE_CLUSTER_LOG": str(log)})
    assert tables(store) == local_tables
    assert not (root / "data").exists() and not (root / "results").exists()  # everything went to storage
    submissions = (log / "submissions.log").read_text().splitlines()
    # a run's validation, post-processing, execution and checks arrive as one submission
    assert any("/snakejob.score_" in s for s in submissions), submissions
    assert len(submissions) < 40, len(submissions)


def test_the_same_harness_fails_a_rule_that_reads_an_undeclared_file(tmp_path):
    """The check above can fail: a rule reading a file another rule wrote, without declaring it."""
    (tmp_path / "Snakefile").write_text(
        'rule all:\n    input: "results/b.txt"\n'
        'rule a:\n    output: "data/a.txt"\n    shell: "echo a > {output}"\n'
        'rule b:\n    input: "data/a.txt"\n    output: "results/b.txt"\n    shell: "cat data/a.txt > {output}"\n')
    log = tmp_path / "cluster"
    log.mkdir()
    run = subprocess.run([sys.executable, "-m", "snakemake", "-d", str(tmp_path), "-s", str(tmp_path / "Snakefile"),
                          "--executor", "cluster-generic", "--cluster-generic-submit-cmd",
                          str(FAKES / "cluster" / "submit.sh"), "--jobs", "1", "--default-storage-provider", "fs",
                          "--default-storage-prefix", str(tmp_path / "store"), "--shared-fs-usage", *SHARED_FS],
                         capture_output=True, text=True, env=ENV | {"FAKE_CLUSTER_LOG": str(log)}, timeout=600)
    assert run.returncode != 0
    assert "Error in rule b" in run.stdout + run.stderr
    assert (tmp_path / "store" / "data" / "a.txt").exists()


def test_slurm_submissions_ask_for_what_each_rule_needs(tmp_path, model, local_tables):
    """profiles/slurm through fake sbatch/squeue/sacct/srun (tests/fakes/slurm) that record their arguments and
    run each job here; the nodes share the filesystem, as on most SLURM sites."""
    root, state = project(tmp_path / "run", model), tmp_path / "slurm"
    calls = state / "calls.log"
    # generation asks for a GPU only with generation.provider cuda; this machine has none, so the profile is
    # edited as on such a site (the fake srun runs the job on the CPU)
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile["set-resources"]["generate_completions"].update({"gpu": 1, "gpu_model": "h100"})
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "config.yaml").write_text(yaml.safe_dump(profile))
    snakemake(root, "--profile", str(tmp_path / "profile"), "--jobs", "4",
              "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1",
              env={"PATH": f"{FAKES / 'slurm'}:{ENV['PATH']}", "FAKE_SLURM_STATE": str(state),
                   "FAKE_SLURM_LOG": str(calls), "FAKE_SLURM_LONGPOLL": "30"})
    records = [json.loads(line) for line in calls.read_text().splitlines()]
    sbatch = [" ".join(r["argv"]) for r in records if r["cmd"] == "sbatch"]
    by_rule = {}
    for call in sbatch:  # --comment rule_NAME_wildcards_... for one job, rule_GROUP_RULES... for a group
        comment = re.search(r"--comment (\S+)", call).group(1)
        by_rule.setdefault(comment.split("_wildcards_")[0].removeprefix("rule_"), []).append(call)
    generate = by_rule["generate_completions"]
    assert len(generate) == 2 and all("--gpus=h100:1" in c and "-p gpu" in c for c in generate), generate
    others = [c for name, cs in by_rule.items() if name != "generate_completions" for c in cs]
    assert others and not any("--gpus" in c or "--gres" in c for c in others)
    export = by_rule["export_onnx"][0]
    assert re.search(r"--mem \d+", export) and "-t " in export and "--cpus-per-task=" in export
    assert any(name.startswith("score_") for name in by_rule), sorted(by_rule)  # grouped: one submission
    assert len(sbatch) < 30, sorted(by_rule)
    assert tables(root) == local_tables


@pytest.fixture(scope="module")
def s3_study(tmp_path_factory, model, s3_endpoint):
    """The tiny study with Snakemake's S3 storage plugin on a local S3 server and profiles/s3 as the workflow
    profile: (working folder, storage arguments)."""
    make_bucket(s3_endpoint, "tuningtax-study")
    root = project(tmp_path_factory.mktemp("s3-run"), model)
    storage = ["--default-storage-prefix", "s3://tuningtax-study/run", "--storage-s3-endpoint-url", s3_endpoint]
    snakemake(root, "--workflow-profile", str(REPO / "profiles" / "s3"), *storage, "--cores", "2", env=S3_CREDENTIALS)
    return root, storage


def test_s3_as_the_default_storage(tmp_path, s3_study, local_tables, s3_endpoint):
    """The outputs land in the bucket, the tables equal the local run's, and a second run finds nothing to do."""
    import boto3

    root, storage = s3_study
    keys = list_bucket(s3_endpoint, "tuningtax-study")
    assert "run/results/tables/prompt_grid.csv" in keys and "run/data/07_scores/tiny-instruct/samples.jsonl" in keys
    assert not (root / "data").exists()
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    download = tmp_path / "download"
    for name in local_tables:
        (download / name).parent.mkdir(parents=True, exist_ok=True)
        client.download_file("tuningtax-study", f"run/{name}", str(download / name))
    assert tables(download) == local_tables
    again = snakemake(root, "--workflow-profile", str(REPO / "profiles" / "s3"), *storage, "--cores", "2",
                      env=S3_CREDENTIALS)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_kubernetes_dry_run_plans_every_job(s3_study):
    pytest.importorskip("snakemake_executor_plugin_kubernetes", reason="make setup EXTRA=kubernetes")
    root, storage = s3_study
    run = snakemake(root, "-n", "--forceall", "--profile", str(REPO / "profiles" / "kubernetes"), *storage,
                    env=S3_CREDENTIALS)
    out = run.stdout + run.stderr
    for rule in ("export_onnx", "generate_completions", "execute_completions", "tabulate_results"):
        assert f"rule {rule}:" in out, rule


def test_kubernetes_job_specs_ask_for_what_each_rule_needs(tmp_path, s3_study):
    """The Job bodies the plugin would submit for the generation jobs (their inputs are in the bucket), with a
    GPU asked for by override as on a cluster with generation.provider cuda."""
    pytest.importorskip("snakemake_executor_plugin_kubernetes", reason="make setup EXTRA=kubernetes")
    root, storage = s3_study
    out = tmp_path / "jobs.json"
    subprocess.run([sys.executable, str(FAKES / "kubernetes" / "render_jobs.py"), str(out),
                    "-s", str(REPO / "Snakefile"), "-d", str(root), "--configfile", str(root / "params.yaml"),
                    "--profile", str(REPO / "profiles" / "kubernetes"), *storage,
                    "--forcerun", "generate_completions", "--set-resources", "generate_completions:gpu=1",
                    "--until", "generate_completions"],
                   capture_output=True, text=True, env=ENV | S3_CREDENTIALS, timeout=900)
    bodies = json.loads(out.read_text())
    containers = [b["spec"]["template"]["spec"]["containers"][0] for b in bodies]
    generate = [c for c in containers if "--allowed-rules generate_completions" in c["args"][-1]
                or "generate_completions" in " ".join(c["args"])]
    assert len(generate) == 2, [c["args"][-1][-300:] for c in containers]
    for container in generate:
        requests = container["resources"]["requests"]
        assert requests["nvidia.com/gpu"] == "1" and requests["memory"].endswith("M") and "cpu" in requests
        assert container["image"] == "YOUR-REGISTRY/tuningtax:latest"
