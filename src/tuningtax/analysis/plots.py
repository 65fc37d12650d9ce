"""The study's plots, each written as NAME.png, NAME.svg and NAME.csv (the exact frame drawn), side by side so
a figure can be checked against its numbers. matplotlib, Agg backend; fixed metadata and SVG ids, so reruns
are byte-identical (DVC versions them by content)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PNG_METADATA = {"Software": None}  # matplotlib otherwise stamps its version string
SVG_METADATA = {"Date": None, "Creator": None}
PLOT_SUFFIXES = (".png", ".svg", ".csv")


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "tuningtax"  # fixed element ids: reruns write identical SVG
    return plt


def _save(fig, stem: Path, data: pd.DataFrame) -> None:
    """Write ``fig`` as stem.png and stem.svg, the frame it was drawn from as stem.csv, and close it."""
    from tuningtax.jsonl import write_text_atomic

    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(stem.with_suffix(".png"), dpi=110, bbox_inches="tight", metadata=PNG_METADATA)
    fig.savefig(stem.with_suffix(".svg"), bbox_inches="tight", metadata=SVG_METADATA)
    write_text_atomic(stem.with_suffix(".csv"), data.to_csv(index=False, float_format="%.4f", lineterminator="\n"))
    _figure().close(fig)


def tax_plot(tax: pd.DataFrame, stem: Path) -> None:
    """Δ pass@1 (instruct − base, points) per benchmark/format/level with the bootstrap 95 % CI."""
    plt = _figure()
    labels = [f"{r.base}→{r.instruct}\n{r.benchmark} {r.prompt_format} {r.level}" for r in tax.itertuples()]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(tax) + 1.5))
    y = range(len(tax))
    ax.errorbar(tax["delta_pts"], list(y), xerr=[tax["delta_pts"] - tax["ci_low"], tax["ci_high"] - tax["delta_pts"]],
                fmt="o", capsize=3)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(list(y), labels, fontsize=7)
    ax.set_xlabel("Δ pass@1, instruct − base (points), 95 % bootstrap CI")
    ax.invert_yaxis()
    columns = ["base", "instruct", "benchmark", "prompt_format", "level", "n", "delta_pts", "ci_low", "ci_high",
               "mcnemar_p", "p_holm"]
    _save(fig, stem, tax[columns])


def trajectory_plot(grid: pd.DataFrame, series: list[dict], steps: dict[str, int], stem: Path) -> None:
    """pass@1 against training step, one line per (benchmark, format, level)."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = []
    for s in series:
        models = [s["start"], *s["checkpoints"]]
        part = grid[grid["model"].isin(models)].copy()
        part["step"] = part["model"].map(lambda m: steps.get(m, 0))
        part["start"] = s["start"]
        for (bench, fmt, level), g in part.groupby(["benchmark", "format", "level"]):
            g = g.sort_values("step")
            ax.plot(g["step"], g["pass1"], marker="o", label=f"{bench} {fmt} {level}")
            drawn.append(g)
    ax.set_xlabel("training step")
    ax.set_ylabel("pass@1 (%)")
    ax.legend(fontsize=6)
    columns = ["start", "model", "step", "benchmark", "format", "level", "n", "pass1"]
    _save(fig, stem, pd.concat(drawn, ignore_index=True)[columns] if drawn else pd.DataFrame(columns=columns))


def three_mode_heatmap(view: pd.DataFrame, stem: Path) -> None:
    """Problems (rows) × (model, mode) columns; Flow is the share of lines infilled correctly."""
    plt = _figure()
    wide = view.pivot(index="source_id", columns="model", values=["flow", "completion", "command"])
    wide = wide.reindex(list(dict.fromkeys(view["source_id"])))
    fig, ax = plt.subplots(figsize=(1.2 * wide.shape[1] + 2, 0.25 * len(wide) + 1.5))
    image = ax.imshow(wide.to_numpy(dtype=float), aspect="auto", cmap="RdYlGn", vmin=0, vmax=1)
    ax.set_xticks(range(wide.shape[1]), [f"{m}\n{mode}" for mode, m in wide.columns], fontsize=7, rotation=30,
                  ha="right")
    ax.set_yticks(range(len(wide)), wide.index, fontsize=7)
    fig.colorbar(image, ax=ax, label="pass (Flow: share of lines)")
    _save(fig, stem, view)


def prompt_grid_heatmap(grid: pd.DataFrame, stem: Path) -> None:
    """pass@1 per (benchmark, prompt format) row and post-processing level column, one panel per model;
    blank where a level does not apply to the run."""
    plt = _figure()
    models = sorted(grid["model"].unique())
    levels = list(dict.fromkeys(grid["level"]))
    rows = sorted({(r.benchmark, r.format) for r in grid.itertuples()})
    fig, axes = plt.subplots(1, len(models), figsize=(1.0 * len(levels) * len(models) + 3, 0.45 * len(rows) + 1.8),
                             squeeze=False)
    for ax, model in zip(axes[0], models):
        wide = (grid[grid["model"] == model].pivot(index=["benchmark", "format"], columns="level", values="pass1")
                .reindex(index=pd.MultiIndex.from_tuples(rows, names=["benchmark", "format"]), columns=levels))
        image = ax.imshow(wide.to_numpy(dtype=float), aspect="auto", cmap="RdYlGn", vmin=0, vmax=100)
        for (i, j), value in pd.DataFrame(wide.to_numpy(dtype=float)).stack().dropna().items():
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(levels)), levels, fontsize=7, rotation=30, ha="right")
        ax.set_yticks(range(len(rows)), [f"{b} {f}" for b, f in rows], fontsize=7)
        ax.set_title(model, fontsize=8)
    fig.colorbar(image, ax=list(axes[0]), label="pass@1 (%)")
    _save(fig, stem, grid)


def failure_shares_plot(shares: pd.DataFrame, stem: Path) -> None:
    """Share of failures per category, a stacked bar per checkpoint, one panel per mode (each mode at the level
    its headline view uses)."""
    plt = _figure()
    modes = list(dict.fromkeys(shares["mode"]))
    categories = list(dict.fromkeys(shares["category"]))
    models = sorted(shares["model"].unique())
    fig, axes = plt.subplots(1, len(modes), figsize=(4.5 * len(modes) + 2, 0.5 * len(models) + 1.8), squeeze=False,
                             sharey=True)
    colours = plt.get_cmap("tab10")
    for ax, mode in zip(axes[0], modes):
        part = shares[shares["mode"] == mode].pivot(index="model", columns="category", values="share")
        part = part.reindex(index=models, columns=categories).fillna(0.0)
        left = pd.Series(0.0, index=models)
        for k, category in enumerate(categories):
            ax.barh(models, part[category], left=left, color=colours(k % 10), label=category)
            left = left + part[category]
        failures = shares[shares["mode"] == mode].groupby("model")["n"].sum().reindex(models).fillna(0)
        for model, n in failures.items():
            ax.text(1.01, model, f"n={int(n)}", va="center", fontsize=6, transform=ax.get_yaxis_transform())
        first = shares[shares["mode"] == mode].iloc[0]
        ax.set_title(f"{mode}: {first['benchmark']} {first['format']} {first['level']}", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of failures")
        ax.tick_params(axis="y", labelsize=7)
    axes[0][-1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.08, 0.5))
    _save(fig, stem, shares)
