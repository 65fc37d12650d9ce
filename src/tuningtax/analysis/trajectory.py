"""``python -m tuningtax trajectory``: the tuning lab's results, from per-sample data and the loss logs.

results/trajectory/trajectory.{csv,md}: per mode, arm and save step, pass@1 of the checkpoint against step 0
(the start model) on the same tasks, with the paired statistics of the tax table (McNemar's exact p, Holm
across every checkpoint of a mode, bootstrap CI of the difference). trajectory.{png,svg}: pass@1 against
step, one panel per mode, one line per arm. loss.csv and loss.{png,svg}: the training loss per step.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from tuningtax.errors import UserError
from tuningtax.jsonl import read_jsonl, write_text_atomic


def trajectory_rows(samples: pd.DataFrame, tuning: dict, *, seed: int, n_resamples: int) -> pd.DataFrame:
    from tuningtax.analysis.tables import trajectory_table
    from tuningtax.tune.plan import checkpoint_name

    steps = sorted(tuning["save_steps"])
    arm_of = {checkpoint_name(arm, s): arm for arm in tuning["arms"] for s in steps}
    step_of = {checkpoint_name(arm, s): s for arm in tuning["arms"] for s in steps}
    series = [(tuning["start"], [checkpoint_name(arm, s) for s in steps]) for arm in tuning["arms"]]
    parts = []
    for mode, view in tuning["evaluate"].items():
        keep = ((samples["benchmark"] == view["benchmark"]) & (samples["format"] == view["format"])
                & (samples["level"] == view["level"]))
        outcomes = samples[keep].rename(columns={"format": "prompt_format"})
        present = set(outcomes["model"])
        missing = [n for n in [tuning["start"], *step_of] if n not in present]
        if missing:
            raise UserError(f"no {mode} samples ({view['benchmark']} {view['format']} {view['level']}) for "
                            f"{', '.join(missing)}; run their measure step first")
        # One call per mode: Holm's correction then spans every checkpoint of every arm of that mode.
        table = trajectory_table(outcomes, series, seed=seed, n_resamples=n_resamples, steps=step_of)
        parts.append(table.assign(mode=mode, arm=table["checkpoint"].map(arm_of)))
    table = pd.concat(parts, ignore_index=True)
    first = ["mode", "arm", "step"]
    return table[first + [c for c in table.columns if c not in first]]


def _figure():
    from tuningtax.analysis.plots import _figure as figure

    plt = figure()
    plt.rcParams["svg.hashsalt"] = "tuningtax"  # fixed element ids: reruns write identical SVG
    return plt


def _save_both(fig, stem: Path) -> None:
    from tuningtax.analysis.plots import PNG_METADATA

    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(stem.with_suffix(".png"), dpi=110, bbox_inches="tight", metadata=PNG_METADATA)
    fig.savefig(stem.with_suffix(".svg"), bbox_inches="tight", metadata={"Date": None, "Creator": None})
    _figure().close(fig)


def trajectory_plot(table: pd.DataFrame, stem: Path) -> None:
    """pass@1 against step, a panel per mode, a line per arm (step 0 = the start model)."""
    plt = _figure()
    modes = list(dict.fromkeys(table["mode"]))
    fig, axes = plt.subplots(1, len(modes), figsize=(4.5 * len(modes), 3.6), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        part = table[table["mode"] == mode]
        for arm, g in part.groupby("arm", sort=False):
            g = g.sort_values("step")
            ax.plot([0, *g["step"]], [g["pass1_start"].iloc[0], *g["pass1_checkpoint"]], marker="o", label=arm)
        first = part.iloc[0]
        ax.set_title(f"{mode}: {first['benchmark']} {first['prompt_format']} {first['level']} "
                     f"(n={int(first['n'])})", fontsize=8)
        ax.set_xlabel("training step")
        ax.set_ylabel("pass@1 (%)")
        ax.legend(fontsize=7)
    _save_both(fig, stem)


def loss_plot(loss: pd.DataFrame, stem: Path) -> None:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for arm, g in loss.groupby("arm", sort=False):
        ax.plot(g["step"], g["loss"], marker=".", label=arm)
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (response tokens)")
    ax.legend(fontsize=7)
    _save_both(fig, stem)


def loss_summary(loss: pd.DataFrame, save_steps: list[int]) -> pd.DataFrame:
    """Mean loss per arm over each stretch between save steps (one batch's loss is noisy)."""
    edges = [0, *sorted(save_steps)]
    rows = []
    for arm, g in loss.groupby("arm", sort=False):
        for lo, hi in zip(edges, edges[1:]):
            part = g[(g["step"] > lo) & (g["step"] <= hi)]
            rows.append({"arm": arm, "steps": f"{lo + 1}-{hi}", "mean_loss": part["loss"].mean(),
                         "response_tokens": int(part["response_tokens"].sum())})
    return pd.DataFrame(rows)


def write_tables(table: pd.DataFrame, loss: pd.DataFrame, tuning: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "trajectory.csv", table.to_csv(index=False, float_format="%.4f", lineterminator="\n"))
    write_text_atomic(out_dir / "loss.csv", loss.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    shown = table[["mode", "arm", "step", "benchmark", "prompt_format", "level", "n", "pass1_start",
                   "pass1_checkpoint", "delta_pts", "ci_low", "ci_high", "mcnemar_p", "p_holm", "only_start",
                   "only_checkpoint"]]
    arms = ", ".join(f"{a} (FIM share {v['fim_share']})" for a, v in tuning["arms"].items())
    text = (f"# Tuning trajectory from {tuning['start']}\n\n"
            f"Arms: {arms}; {tuning['method']} fine-tuning, seed {tuning['seed']}. Step 0 is the start model; "
            "pass1_start is its pass@1 (%), delta_pts the checkpoint's minus it, with the bootstrap 95 % CI, "
            "McNemar's exact p and Holm's correction across every checkpoint of a mode.\n\n"
            + shown.astype(object).to_markdown(index=False, floatfmt=".2f")
            + "\n\n## Training loss (mean per stretch of steps)\n\n"
            + loss_summary(loss, tuning["save_steps"]).astype(object).to_markdown(index=False, floatfmt=".4f")
            + "\n")
    write_text_atomic(out_dir / "trajectory.md", text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", nargs="+", required=True, type=Path,
                        help="samples.jsonl of the start model and of every tuned checkpoint")
    parser.add_argument("--train-logs", nargs="+", required=True, type=Path, help="each arm's train_log.jsonl")
    parser.add_argument("--trajectory-json", required=True, help="JSON: tuning (params.yaml), seed, n_resamples")
    parser.add_argument("--out-dir", type=Path, default=Path("results/trajectory"))


def run(args: argparse.Namespace) -> int:
    try:
        params = json.loads(args.trajectory_json)
    except json.JSONDecodeError as err:
        raise UserError(f"--trajectory-json is not valid JSON: {err}") from None
    tuning = params["tuning"]
    samples = pd.DataFrame([r for path in args.samples for r in read_jsonl(path)])
    if samples.empty:
        raise UserError(f"{', '.join(map(str, args.samples))}: no samples")
    loss = pd.DataFrame([r for path in args.train_logs for r in read_jsonl(path)])
    table = trajectory_rows(samples, tuning, seed=params["seed"], n_resamples=params["n_resamples"])
    write_tables(table, loss, tuning, args.out_dir)
    trajectory_plot(table, args.out_dir / "trajectory")
    loss_plot(loss, args.out_dir / "loss")
    print(f"trajectory table, loss and plots in {args.out_dir}", file=sys.stderr)
    return 0
