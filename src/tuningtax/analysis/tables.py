"""The tables of the tax: pairs, variants, checkpoint series and the per-problem three-mode view, each row
computed from per-task outcomes with tuningtax.analysis.stats (whose docstring states the conventions)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from tuningtax.analysis.stats import binary_outcomes, holm, paired_summary
from tuningtax.errors import UserError
from tuningtax.models.variants import model_key
from tuningtax.tasks.schema import MODES, Task

GROUP = ("benchmark", "prompt_format", "level")
OUTCOME_COLUMNS = ("model", "task_id", *GROUP, "passed")
STAT_COLUMNS = ("n", "pass1_a", "pass1_b", "delta_pts", "rel_delta_pct", "mcnemar_p", "p_holm", "ci_low",
                "ci_high", "only_a", "only_b", "both", "neither")


def _check_outcomes(outcomes: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in OUTCOME_COLUMNS if c not in outcomes.columns]
    if missing:
        raise UserError(f"outcomes: missing column(s) {', '.join(missing)}; expected {', '.join(OUTCOME_COLUMNS)}")
    df = outcomes.loc[:, list(OUTCOME_COLUMNS)].copy()
    empty = [c for c in ("model", "task_id", *GROUP) if df[c].isna().any()]
    if empty:  # groupby would silently drop such rows
        raise UserError(f"outcomes: column(s) {', '.join(empty)} have empty values; every row needs them")
    df["passed"] = binary_outcomes(df["passed"].to_numpy(), "outcomes")
    dup = df.duplicated(["model", *GROUP, "task_id"], keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        raise UserError(f"outcomes: {int(dup.sum())} rows repeat a (model, benchmark, prompt_format, level, "
                        f"task_id), e.g. {tuple(first[['model', *GROUP, 'task_id']])}; pass@1 needs one greedy "
                        "sample per task (keep sample 0)")
    return df


def _paired_groups(df: pd.DataFrame, a_model: str, b_model: str
                   ) -> Iterator[tuple[tuple[str, ...], np.ndarray, np.ndarray]]:
    """(group, outcomes of A, outcomes of B aligned on task_id) for each group both models have.

    Groups only one model has (e.g. a chat prompt format run for the instruct model only) are skipped;
    inside a shared group the task sets must be identical, because a paired test on the intersection
    would silently hide an incomplete run."""
    sides = {}
    for model in (a_model, b_model):
        rows = df[df["model"] == model]
        if rows.empty:
            raise UserError(f"outcomes: no rows for model {model!r}; models present: "
                            f"{', '.join(sorted(map(str, df['model'].unique())))}")
        sides[model] = {key: g.set_index("task_id")["passed"] for key, g in rows.groupby(list(GROUP), sort=True)}
    common = sorted(set(sides[a_model]) & set(sides[b_model]))
    if not common:
        raise UserError(f"outcomes: models {a_model!r} and {b_model!r} share no (benchmark, prompt_format, level)")
    for key in common:
        sa, sb = sides[a_model][key], sides[b_model][key]
        only_a, only_b = sa.index.difference(sb.index), sb.index.difference(sa.index)
        if len(only_a) or len(only_b):
            raise UserError(f"outcomes {key}: {a_model!r} and {b_model!r} were scored on different tasks "
                            f"({len(only_a)} only for {a_model!r}, e.g. {list(only_a[:3])}; {len(only_b)} only "
                            f"for {b_model!r}, e.g. {list(only_b[:3])}); rerun the incomplete one")
        yield key, sa.to_numpy(), sb.reindex(sa.index).to_numpy()


def _with_holm(rows: list[dict], columns: list[str], holm_by: Sequence[str] | None) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=columns)
    if table.empty:
        return table
    if holm_by is None:
        table["p_holm"] = holm(table["mcnemar_p"])
    else:
        table["p_holm"] = table.groupby(list(holm_by), sort=False)["mcnemar_p"].transform(holm)
    return table


def _rename(a: str, b: str) -> dict[str, str]:
    return {"pass1_a": f"pass1_{a}", "pass1_b": f"pass1_{b}", "only_a": f"only_{a}", "only_b": f"only_{b}"}


def tax_table(outcomes: pd.DataFrame, pairs: Sequence[tuple[str, str]], *, seed: int = 0,
              n_resamples: int = 10_000, confidence: float = 0.95,
              holm_by: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (pair, benchmark, prompt_format, level): base vs instruct on the same tasks.

    Columns: base, instruct, benchmark, prompt_format, level, n, pass1_base, pass1_instruct, delta_pts,
    rel_delta_pct, mcnemar_p, p_holm, ci_low, ci_high, only_base, only_instruct, both, neither.
    Holm runs over all rows unless `holm_by` names the columns that define a family."""
    df = _check_outcomes(outcomes)
    names = _rename("base", "instruct")
    columns = ["base", "instruct", *GROUP, *(names.get(c, c) for c in STAT_COLUMNS)]
    rows = []
    for base, instruct in pairs:
        for key, a, b in _paired_groups(df, base, instruct):
            stats = paired_summary(a, b, n_resamples=n_resamples, seed=seed, confidence=confidence)
            rows.append({"base": base, "instruct": instruct, **dict(zip(GROUP, key)),
                         **{names.get(k, k): v for k, v in stats.items()}})
    return _with_holm(rows, columns, holm_by)


def variant_pairs(samples: pd.DataFrame) -> list[tuple[str, str]]:
    """(fp32 run, other variant's run) for every checkpoint run in fp32 and in another variant, by the names
    runs go by in tables (``models.variants.model_key``)."""
    if not {"checkpoint", "variant"} <= set(samples.columns):
        return []
    runs = samples[["checkpoint", "variant"]].drop_duplicates()
    pairs = []
    for checkpoint, variants in sorted(runs.groupby("checkpoint")["variant"]):
        others = sorted(set(variants) - {"fp32"}) if "fp32" in set(variants) else []
        pairs += [(model_key(checkpoint, "fp32"), model_key(checkpoint, v)) for v in others]
    return pairs


def variant_table(outcomes: pd.DataFrame, pairs: Sequence[tuple[str, str]], *, seed: int = 0,
                  n_resamples: int = 10_000, confidence: float = 0.95) -> pd.DataFrame:
    """The cost of a variant (int8) against fp32 of the same checkpoint on the same tasks: ``tax_table``'s
    statistics with its base/instruct columns named reference/variant."""
    table = tax_table(outcomes, pairs, seed=seed, n_resamples=n_resamples, confidence=confidence)
    return table.rename(columns=lambda c: c.replace("instruct", "variant").replace("base", "reference"))


def trajectory_table(outcomes: pd.DataFrame, series: Sequence[tuple[str, Sequence[str]]], *, seed: int = 0,
                     n_resamples: int = 10_000, confidence: float = 0.95,
                     holm_by: Sequence[str] | None = None, steps: Mapping[str, int] | None = None) -> pd.DataFrame:
    """Each checkpoint of a fine-tuning series against the series' starting model.

    `series` = [(start_model, [checkpoints ordered by training step])]; step is the checkpoint's training step
    from `steps` (model name -> step, as in params.yaml; empty for a model without one, such as the instruct
    end of a series), else its 1-based position in the series.
    Columns: start, checkpoint, step, benchmark, prompt_format, level, n, pass1_start, pass1_checkpoint,
    delta_pts, rel_delta_pct, mcnemar_p, p_holm, ci_low, ci_high, only_start, only_checkpoint, both, neither."""
    df = _check_outcomes(outcomes)
    names = _rename("start", "checkpoint")
    columns = ["start", "checkpoint", "step", *GROUP, *(names.get(c, c) for c in STAT_COLUMNS)]
    rows = []
    for start, checkpoints in series:
        for position, checkpoint in enumerate(checkpoints, 1):
            step = steps.get(checkpoint) if steps is not None else position  # None: a model without a step
            for key, a, b in _paired_groups(df, start, checkpoint):
                stats = paired_summary(a, b, n_resamples=n_resamples, seed=seed, confidence=confidence)
                rows.append({"start": start, "checkpoint": checkpoint, "step": step, **dict(zip(GROUP, key)),
                             **{names.get(k, k): v for k, v in stats.items()}})
    return _with_holm(rows, columns, holm_by)


def _task_frame(tasks: pd.DataFrame | Iterable[Task]) -> pd.DataFrame:
    cols = ["task_id", "benchmark", "mode", "source_id"]
    if isinstance(tasks, pd.DataFrame):
        missing = [c for c in cols if c not in tasks.columns]
        if missing:
            raise UserError(f"tasks: missing column(s) {', '.join(missing)}")
        return tasks.loc[:, cols].drop_duplicates()
    return pd.DataFrame([(t.task_id, t.benchmark, t.mode, t.source_id) for t in tasks], columns=cols)


def three_mode_view(outcomes: pd.DataFrame, tasks: pd.DataFrame | Iterable[Task], *,
                    views: Mapping[str, Mapping[str, str] | None]) -> pd.DataFrame:
    """Per problem (source_id) and model, the three modes side by side.

    `views` maps each mode (flow, completion, command) to the outcomes it is read from: a `benchmark` and
    optional column filters, e.g. {"flow": {"benchmark": "humaneval-single-line", "level": "first-line"},
    "command": {"benchmark": "humaneval-command", "prompt_format": "command-chat"}}; a mode left out or None
    is NaN throughout. flow = share of the problem's Flow tasks passed (flow_n of them), completion and
    command = 0/1; NaN where a model has no outcome in that mode. After the filters a (model, benchmark,
    task_id) must have one outcome, or the view would mix levels. Rows follow the order of problems in `tasks`."""
    df = _check_outcomes(outcomes)
    unknown_modes = sorted(set(views) - set(MODES))
    if unknown_modes:
        raise UserError(f"three_mode_view: view key(s) {', '.join(unknown_modes)} are not modes ({', '.join(MODES)})")
    parts_in = []
    for mode in MODES:
        view = views.get(mode)
        if not view:
            continue
        if "benchmark" not in view:
            raise UserError(f"three_mode_view: the {mode} view names no benchmark")
        keep = pd.Series(True, index=df.index)
        for column, value in view.items():
            if column not in df.columns:
                raise UserError(f"three_mode_view: cannot select on column {column!r}")
            keep &= df[column] == value
        parts_in.append(df[keep].assign(view_mode=mode))
    df = pd.concat(parts_in) if parts_in else df.iloc[:0].assign(view_mode="")
    dup = df.duplicated(["model", "benchmark", "task_id"], keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        raise UserError(f"three_mode_view: {first['model']!r} has several outcomes for {first['benchmark']} "
                        f"{first['task_id']} (prompt formats / levels: "
                        f"{sorted(set(map(tuple, df[dup][['prompt_format', 'level']].to_numpy().tolist())))}); "
                        "name a prompt_format and a level in that mode's view")
    tf = _task_frame(tasks)
    merged = df.merge(tf[["task_id", "benchmark", "source_id"]], on=["benchmark", "task_id"], how="left")
    unknown = merged["source_id"].isna()
    if unknown.any():
        row = merged[unknown].iloc[0]
        raise UserError(f"three_mode_view: outcome for unknown task {row['benchmark']} {row['task_id']}")
    flow = merged[merged["view_mode"] == "flow"].groupby(["model", "source_id"])["passed"].agg(["size", "mean"])
    flow.columns = ["flow_n", "flow"]
    parts = [flow]
    for mode in MODES[1:]:
        part = merged[merged["view_mode"] == mode].groupby(["model", "source_id"])["passed"].first()
        parts.append(part.rename(mode).astype(float))
    view = pd.concat(parts, axis=1).reset_index()
    view["flow_n"] = view["flow_n"].fillna(0).astype(int)
    order = {s: i for i, s in enumerate(dict.fromkeys(tf["source_id"]))}
    view = view.sort_values(["model", "source_id"], key=lambda s: s.map(order) if s.name == "source_id" else s,
                            kind="stable")
    return view.loc[:, ["model", "source_id", "flow_n", "flow", "completion", "command"]].reset_index(drop=True)
