"""One entry point for Snakemake, tests and people: ``python -m tuningtax <command>``.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``.
Modules are imported lazily so ``--help`` and light commands stay fast (Great Expectations and
torch take seconds to import).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tuningtax.errors import UserError

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "tasks": ("tuningtax.tasks.cli", "build a benchmark's task JSONL"),
    "subset": ("tuningtax.tasks.subset", "a deterministic per-problem subset of a task file"),
    "validate": ("tuningtax.validation.cli", "validate an intermediate with its Great Expectations suite"),
    "execute": ("tuningtax.sandbox.cli", "run completions against unit tests in the sandbox"),
    "gold": ("tuningtax.scoring.gold", "run canonical solutions through the sandbox (gold gate)"),
    "gold-gate": ("tuningtax.scoring.gold", "refuse a benchmark whose gold pass rate is below 100 percent"),
    "gold-table": ("tuningtax.scoring.gold", "tabulate gold pass rates (results/gold.csv)"),
    "postprocess": ("tuningtax.postprocess.cli", "apply post-processing levels to raw generations"),
    "fetch-model": ("tuningtax.models.cli", "download and convert a model checkpoint to an HF folder"),
    "export": ("tuningtax.export.cli", "export a model to ONNX (fp32 or int8) with a parity check"),
    "generate": ("tuningtax.generate.cli", "greedy generation with ONNX Runtime (batched, resumable)"),
    "score-table": ("tuningtax.scoring.table", "results/scores.csv: pass@1 per run and level"),
    "measure": ("tuningtax.analysis.samples", "per-sample outcomes, fidelity metrics and failure categories"),
    "tabulate": ("tuningtax.analysis.report", "tax, behaviour and taxonomy tables, plots and DVC metrics"),
    "findings": ("tuningtax.analysis.findings", "the study's seven findings checked on the configured checkpoints"),
    "explorer": ("tuningtax.analysis.explorer", "a static per-sample explorer page and the tables linked to it"),
    "label-sheet": ("tuningtax.taxonomy.sheet", "a blind sheet of failures to hand-label"),
    "passk": ("tuningtax.scoring.passk", "unbiased pass@k per task and aggregated"),
    "params": ("tuningtax.config", "validate params.yaml or write its JSON schema"),
    "bench": ("tuningtax.bench", "benchmarks that print measured figures"),
    "code-version": ("tuningtax.codeversion", "a pipeline command's code version (its import closure)"),
    "pull": ("tuningtax.sync", "dvc pull, then mark the restored outputs current for Snakemake"),
    "verify": ("tuningtax.sync", "rerun every stage and compare each output's hash with dvc.lock"),
    "lineage": ("tuningtax.lineage", "the chain of files, params and code behind a table or one of its rows"),
    "trajectory": ("tuningtax.analysis.trajectory", "the tuning lab's trajectory table, loss curve and plots"),
    "tune": ("tuningtax.tune.cli", "fine-tune a checkpoint into a trajectory (the tuning lab, one arm)"),
    "dvc-yaml": ("tuningtax.dvcstages", "generate dvc.yaml from the Snakemake DAG (--check: fail if stale)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tuningtax", description=__doc__.splitlines()[0],
                                     epilog="--debug before the command shows tracebacks behind error messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_module=module, _name=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # --debug (first) shows the traceback behind an error a user can act on; without it, one line.
    debug = bool(argv) and argv[0] == "--debug"
    argv = argv[1:] if debug else argv
    parser = build_parser()
    # Parse the command name first, then let its module add the rest of the arguments.
    known, _ = parser.parse_known_args(argv[:1] if argv and not argv[0].startswith("-") else argv)
    module = importlib.import_module(known._module)
    sub_parser = argparse.ArgumentParser(prog=f"python -m tuningtax {known._name}",
                                         description=COMMANDS[known._name][1])
    add = getattr(module, f"add_arguments_{known._name.replace('-', '_')}", None) or module.add_arguments
    run = getattr(module, f"run_{known._name.replace('-', '_')}", None) or module.run
    add(sub_parser)
    args = sub_parser.parse_args(argv[1:])
    try:
        return int(run(args) or 0)
    except UserError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # the machine, not the input: a full disk, a permission, a vanished file
        if debug:
            raise
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}; free space or fix the permission and rerun "
              "(nothing was overwritten; --debug shows the traceback)", file=sys.stderr)
        return 1
