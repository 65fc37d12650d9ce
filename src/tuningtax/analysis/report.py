"""`python -m tuningtax tabulate`: the study's findings recomputed from per-sample data.

Writes results/tables/*.csv and *.md (tax, trajectory, prompt grid, three-mode view, behaviour, taxonomy,
taxonomy agreement), results/plots/*.png and results/metrics.json (DVC metrics). Every number is derived
from the per-checkpoint data/07_scores/{model}/samples.jsonl of this run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from tuningtax.errors import UserError
from tuningtax.jsonl import read_jsonl, write_text_atomic
from tuningtax.taxonomy.sheet import KEY_FIELDS


def _write_table(df: pd.DataFrame, out_dir: Path, name: str, title: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / f"{name}.csv", df.to_csv(index=False, float_format="%.4f", lineterminator="\n"))
    # object dtype keeps each cell's type: tabulate formats the frame's values, which a mixed int/float frame
    # upcasts to float, printing counts as "72.00".
    body = df.astype(object).to_markdown(index=False, floatfmt=".2f") if len(df) else "_no rows_"
    write_text_atomic(out_dir / f"{name}.md", f"# {title}\n\n{body}\n")


def prompt_grid(samples: pd.DataFrame) -> pd.DataFrame:
    """pass@1 (%) per model, benchmark, prompt format and post-processing level, with n."""
    grid = (samples.groupby(["model", "benchmark", "format", "level"], sort=True)["passed"]
            .agg(n="size", pass1=lambda s: 100.0 * s.mean()).reset_index())
    return grid


def _outcomes(samples: pd.DataFrame) -> pd.DataFrame:
    return samples.rename(columns={"format": "prompt_format"})[
        ["model", "task_id", "benchmark", "prompt_format", "level", "passed"]]


def headline_failures(samples: pd.DataFrame, three_mode: dict) -> pd.DataFrame:
    """Failure-category shares per mode and checkpoint, each mode in its headline view (params.yaml
    analysis.three_mode: one benchmark, format and level), so a failure is counted once."""
    from tuningtax.taxonomy.rules import failure_table

    parts = []
    for mode, view in three_mode.items():
        if not view:
            continue
        part = samples[(samples["benchmark"] == view["benchmark"]) & (samples["format"] == view["format"])
                       & (samples["level"] == view["level"])]
        if part.empty:
            continue
        table = failure_table(part, by=["model"])
        parts.append(table.assign(mode=mode, benchmark=view["benchmark"], format=view["format"],
                                  level=view["level"]))
    if not parts:
        raise UserError("analysis.three_mode names no run present in the samples; the failure-share plot needs "
                        "one: set analysis.three_mode in params.yaml to runs that exist")
    table = pd.concat(parts, ignore_index=True)
    return table[["mode", "benchmark", "format", "level", "model", "category", "n", "share"]]


def tabulate(samples: pd.DataFrame, tasks_frame: pd.DataFrame, params: dict, out_dir: Path, plots_dir: Path,
             labels: pd.DataFrame | None) -> dict:
    from tuningtax.analysis import plots
    from tuningtax.analysis.tables import tax_table, three_mode_view, trajectory_table, variant_pairs, variant_table
    from tuningtax.metrics.aggregate import aggregate_metrics
    from tuningtax.taxonomy.rules import FAILURE_CATEGORIES, cohen_kappa, failure_table

    seed, n_resamples = params["seed"], params["n_resamples"]
    grid = prompt_grid(samples)
    _write_table(grid, out_dir, "prompt_grid", "pass@1 (%) by prompt format and post-processing level")
    plots.prompt_grid_heatmap(grid, plots_dir / "prompt_grid")

    outcomes = _outcomes(samples)
    if params["pairs"]:
        tax = tax_table(outcomes, [(p["base"], p["instruct"]) for p in params["pairs"]], seed=seed,
                        n_resamples=n_resamples)
        _write_table(tax, out_dir, "tax", "Instruction-tuning tax: instruct vs base (paired)")
        plots.tax_plot(tax, plots_dir / "tax")
    variants = variant_pairs(samples)
    if variants:
        cost = variant_table(outcomes, variants, seed=seed, n_resamples=n_resamples)
        _write_table(cost, out_dir, "variants", "Variants (int8) against fp32 of the same checkpoint (paired)")
    if params["series"]:
        steps = params["steps"]
        traj = trajectory_table(outcomes, [(s["start"], s["checkpoints"]) for s in params["series"]], seed=seed,
                                n_resamples=n_resamples, steps=steps)
        _write_table(traj, out_dir, "trajectory", "Checkpoints against their starting model")
        plots.trajectory_plot(grid, params["series"], steps, plots_dir / "trajectory")

    views = {mode: sel and {"benchmark": sel["benchmark"], "prompt_format": sel["format"], "level": sel["level"]}
             for mode, sel in params["three_mode"].items()}
    view = three_mode_view(outcomes, tasks_frame, views=views)
    _write_table(view, out_dir, "three_mode", "Per-problem outcome in Flow (share of lines), Completion, Command")
    plots.three_mode_heatmap(view, plots_dir / "three_mode")

    raw = samples[samples["level"] == "raw"]
    behaviour = aggregate_metrics(raw, by=["model", "benchmark", "format"])
    _write_table(behaviour, out_dir, "behaviour", "Behaviour of the raw output (all samples and failed only)")

    taxonomy = failure_table(samples, by=["model", "benchmark", "format", "level"])
    _write_table(taxonomy, out_dir, "taxonomy", "Failure categories (share of failures)")
    plots.failure_shares_plot(headline_failures(samples, params["three_mode"]), plots_dir / "failure_shares")

    metrics = {"pass@1": {f"{r.model}/{r.benchmark}/{r.format}/{r.level}": round(r.pass1, 4)
                          for r in grid.itertuples()}}
    if labels is not None:
        keys = list(KEY_FIELDS)  # the label sheet's join key
        merged = labels[[*keys, "label"]].merge(samples, on=keys, how="left")
        # Labels of samples this run does not have (another subset or model) cannot be compared: count them.
        unmatched = int(merged["category"].isna().sum())
        merged = merged[merged["category"].notna()]
        if merged.empty:
            print("warning: none of the hand-labelled samples is in this run, so the classifier's agreement is "
                  "not measured; label samples of the configured runs (python -m tuningtax label-sheet)",
                  file=sys.stderr)
        unknown = sorted(set(merged["label"]) - set(samples["category"].unique()) - set(FAILURE_CATEGORIES))
        if unknown:
            raise UserError(f"hand labels use unknown categories {unknown}; allowed: {', '.join(FAILURE_CATEGORIES)}")
        kappa = cohen_kappa(merged["label"].tolist(), merged["category"].tolist()) if len(merged) else float("nan")
        agreement = pd.DataFrame([{"n_labelled": len(merged), "n_not_in_run": unmatched,
                                   "agreement": (merged["label"] == merged["category"]).mean() if len(merged)
                                   else float("nan"), "cohen_kappa": kappa}])
        confusion = pd.crosstab(merged["label"], merged["category"]).reset_index()
        _write_table(agreement, out_dir, "taxonomy_agreement", "Classifier against hand labels")
        _write_table(confusion, out_dir, "taxonomy_confusion", "Hand label (rows) against classifier (columns)")
        if len(merged):
            metrics["taxonomy_kappa"] = round(kappa, 4)
    return metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", nargs="+", required=True, type=Path,
                        help="per-checkpoint sample files (data/07_scores/{model}/samples.jsonl), read as one")
    parser.add_argument("--tasks", nargs="+", required=True, type=Path)
    parser.add_argument("--analysis-json", required=True,
                        help="JSON: pairs, series, steps, three_mode, seed, n_resamples (from params.yaml)")
    parser.add_argument("--labels", type=Path, help="hand-labelled failures JSONL (for Cohen's kappa)")
    parser.add_argument("--out-dir", type=Path, default=Path("results/tables"))
    parser.add_argument("--plots-dir", type=Path, default=Path("results/plots"))
    parser.add_argument("--metrics", type=Path, default=Path("results/metrics.json"))


def run(args: argparse.Namespace) -> int:
    try:
        params = json.loads(args.analysis_json)
    except json.JSONDecodeError as err:
        raise UserError(f"--analysis-json is not valid JSON: {err}") from None
    samples = pd.DataFrame([r for path in args.samples for r in read_jsonl(path)])
    if samples.empty:
        raise UserError(f"{', '.join(map(str, args.samples))}: no samples")
    tasks_frame = pd.DataFrame([r for p in args.tasks for r in read_jsonl(p)])
    labels = pd.DataFrame(read_jsonl(args.labels)) if args.labels else None
    metrics = tabulate(samples, tasks_frame, params, args.out_dir, args.plots_dir, labels)
    write_text_atomic(args.metrics, json.dumps(metrics, indent=1, sort_keys=True) + "\n")
    print(f"tables in {args.out_dir}, plots in {args.plots_dir}, metrics in {args.metrics}", file=sys.stderr)
    return 0
