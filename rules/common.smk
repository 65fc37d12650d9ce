import os
import shlex
import sys
from pathlib import Path

from tuningtax.codeversion import code_version
from tuningtax.config import validate_params
from tuningtax.errors import UserError
from tuningtax.models.spec import source_kind
from tuningtax.tasks.registry import BENCHMARKS

try:
    validate_params(config, "params.yaml (or --config overrides)")
except UserError as err:
    raise WorkflowError(str(err))

# The interpreter Snakemake runs under is the project's venv; rules call the same one.
PYTHON = shlex.quote(sys.executable)
SUITES = Path(workflow.basedir) / "gx" / "expectations"


def project_path(path):
    """Paths in params.yaml are relative to the project (the Snakefile's folder), whatever --directory is."""
    return str(Path(workflow.basedir) / path) if path and not Path(path).is_absolute() else path


# Where verified benchmark files are read from: not a param, since the sha256 check makes the content
# independent of the location (moving the mirror must not rerun the study).
MIRROR = project_path(config["benchmark_mirror"])


# Each rule passes code_version(COMMAND) as a param: the hash of the import closure of the tuningtax
# command its shell line runs (tuningtax.codeversion), so an edit reruns exactly the steps that can run it.


def sandbox_args(threads):
    sb = config["sandbox"]
    return (f"--workers {threads} --timeout {sb['timeout_s']} --memory-mb {sb['memory_mb']} "
            f"--backend {sb['backend']}")


wildcard_constraints:
    benchmark="|".join(BENCHMARKS),


# ---- models, generation and scoring -------------------------------------------------------------
import json

MODELS = {name: {"name": name, **{k: v for k, v in m.items() if v is not None}} for name, m in config["models"].items()}
RUNS = [(r["benchmark"], f) for r in config["runs"] for f in r["formats"]]
GEN = config["generation"]
MODE_OF = {"humaneval-command": "command", "humaneval-completion": "completion"}


def mode_of(benchmark):
    return MODE_OF.get(benchmark, "flow")


def levels_for(benchmark):
    """first-line is the study's single-line rule; it means nothing for longer holes or Command."""
    return [l for l in config["levels"] if l != "first-line" or benchmark == "humaneval-single-line"]


def local_checkpoint(model):
    source = MODELS[model]["source"]
    return [os.path.normpath(source)] if source_kind(source) in ("local", "gguf") else []


def spec_json(model):
    return shlex.quote(json.dumps(MODELS[model], sort_keys=True))


def run_dirs(root, models=None):
    """ROOT/{model}/{variant}/{benchmark}/{format} for every configured run (of the given models only)."""
    return [f"{root}/{m}/{v}/{b}/{f}" for m in (models or MODELS) for v in config["variants"] for b, f in RUNS]


def execution_dirs(models=None):
    return run_dirs("data/05_executions", models)


def completion_dirs(models=None):
    return run_dirs("data/04_completions", models)


wildcard_constraints:
    model="|".join(MODELS) or "^$",
    variant="fp32|int8",
    format="fim-psm|fim-spm|fim-chat|holefiller|completion-raw|command-chat",
    level="raw|stop-cut|first-line|code-extract|syntax-truncate",


def subset_files():
    return sorted({f"data/02_subsets/{b}.jsonl" for b, _ in RUNS})


def analysis_json():
    """Everything `tabulate` needs from params, passed inline (code never re-reads params.yaml)."""
    steps = {name: m["step"] for name, m in MODELS.items() if m.get("step") is not None}
    analysis = {"pairs": config["pairs"], "series": config["series"], "steps": steps,
                "three_mode": config["analysis"]["three_mode"], "seed": config["analysis"]["seed"],
                "n_resamples": config["analysis"]["n_resamples"]}
    return shlex.quote(json.dumps(analysis, sort_keys=True))
