"""Metric tables: one row per sample with every registered metric, and their rates, means and shares per
group (all samples, failed samples)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tuningtax.errors import UserError
from tuningtax.metrics import CATEGORY, METRIC_KINDS, METRICS, compute_metrics
from tuningtax.tasks.schema import Task

TEXT_FIELDS = ("raw_output", "completion", "prompt_sha256")


def metrics_frame(samples: Iterable[Mapping[str, Any]], tasks: Mapping[str, Task]) -> pd.DataFrame:
    """One row per sample: its scalar fields (model, level, passed, status ... as given; the long text
    fields are dropped) followed by every metric. `tasks` maps task_id to Task (one benchmark)."""
    rows = []
    for sample in samples:
        task = tasks.get(sample["task_id"])
        if task is None:
            raise UserError(f"sample for unknown task {sample['task_id']!r}; pass the task file it was made from")
        rows.append({**{k: v for k, v in sample.items() if k not in TEXT_FIELDS},
                     **compute_metrics(sample, task)})
    return pd.DataFrame(rows)


def _is_failed(value: Any) -> bool:
    """passed is False (or 0); unknown outcomes (None, NaN) are not failures."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return False
    return not bool(value)


def _numeric(series: pd.Series) -> pd.Series:
    return series.map(lambda v: np.nan if v is None or (isinstance(v, float) and math.isnan(v)) else float(v))


def aggregate_metrics(samples_with_metrics: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Rates (flags), means (values, counts) and category shares per group, for all samples and for failed
    samples only (column `subset` = all | failed; failed = passed is False). Every group gets both rows;
    n = samples in the subset, a metric is NaN where no sample of the subset has it applicable."""
    df = samples_with_metrics
    by = list(by)
    present = [name for name in METRICS if name in df.columns]
    categories = {name: sorted({str(v) for v in df[name].dropna()}) for name in present
                  if METRIC_KINDS[name] == CATEGORY}
    failed_mask = (df["passed"].map(_is_failed) if "passed" in df.columns
                   else pd.Series(False, index=df.index)).astype(bool)
    groups = df.groupby(by, sort=True, dropna=False) if by else [((), df)]
    rows = []
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        for subset, part in (("all", group), ("failed", group[failed_mask.loc[group.index]])):
            row: dict[str, Any] = {**dict(zip(by, key)), "subset": subset, "n": len(part)}
            for name in present:
                if METRIC_KINDS[name] == CATEGORY:
                    values = part[name].dropna().astype(str)
                    for cat in categories[name]:
                        row[f"{name}={cat}"] = float((values == cat).mean()) if len(values) else float("nan")
                else:
                    row[name] = float(_numeric(part[name]).mean()) if len(part) else float("nan")
            rows.append(row)
    return pd.DataFrame(rows)
