"""PNG plots (matplotlib, Agg backend; fixed metadata so reruns are byte-identical)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PNG_METADATA = {"Software": None}  # matplotlib otherwise stamps its version string


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata=PNG_METADATA)
    _figure().close(fig)


def tax_plot(tax: pd.DataFrame, path: Path) -> None:
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
    _save(fig, path)


def trajectory_plot(grid: pd.DataFrame, series: list[dict], steps: dict[str, int], path: Path) -> None:
    """pass@1 against training step, one line per (benchmark, format, level)."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 4))
    for s in series:
        models = [s["start"], *s["checkpoints"]]
        part = grid[grid["model"].isin(models)].copy()
        part["step"] = part["model"].map(lambda m: steps.get(m, 0))
        for (bench, fmt, level), g in part.groupby(["benchmark", "format", "level"]):
            g = g.sort_values("step")
            ax.plot(g["step"], g["pass1"], marker="o", label=f"{bench} {fmt} {level}")
    ax.set_xlabel("training step")
    ax.set_ylabel("pass@1 (%)")
    ax.legend(fontsize=6)
    _save(fig, path)


def three_mode_heatmap(view: pd.DataFrame, path: Path) -> None:
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
    _save(fig, path)
