"""`python -m tuningtax findings`: the study's seven findings checked on this run's checkpoints.

Every number is recomputed from the per-sample rows (data/07_scores/{model}/samples.jsonl; sample 0 of each
task, the greedy one) with the paired statistics of tuningtax.analysis.stats and tables; nothing is copied
from another table. Each check is one row of results/findings.csv, and each finding ends in one verdict.

Verdict rule (every row): a row states a claim with a sign (e.g. "instruct − base < 0"). It is
`supported` when its Holm-adjusted p (Holm over the rows of that finding) is below 0.05 and the effect has the
claimed sign, `contradicted` when the adjusted p is below 0.05 and the effect has the opposite sign, and
`not enough data` otherwise; then `n_needed_80pct` gives the problems (or failures, finding 5) that 80 % power
at two-sided α = 0.05 would need to detect the observed effect, or 10 points where the observed effect is 0.
Summary rows (a family, a series, a finding "overall") take the majority verdict of their rows: supported
when more than half are supported, contradicted when more than half are contradicted, else not enough data.

Which outcomes each check reads ("selection"): for a comparison of models and a mode, every benchmark of that
mode that all of them have; in it the prompt format and post-processing level of the `three_mode` view of
that mode where the benchmark has them for all the models, else the alphabetically first shared format and
the first shared level of LEVEL_FALLBACK (a level such as first-line exists for single-line holes only). The
scope column names what was used. Finding 6 reads level `raw`, every shared format.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tuningtax.analysis.stats import binary_outcomes, holm, mcnemar_exact_p, paired_summary
from tuningtax.errors import UserError
from tuningtax.jsonl import expand_jsonl_inputs, read_jsonl, write_text_atomic
from tuningtax.tasks.schema import MODES

ALPHA = 0.05
POWER = 0.80
TARGET_EFFECT = 0.10  # the effect (as a proportion: 10 points) sized for when the observed effect is 0
VERDICTS = ("supported", "contradicted", "not enough data")
NOT_ENOUGH = "not enough data"
COLUMNS = ("finding", "claim", "scope", "statistic", "value", "ci_low", "ci_high", "p", "p_holm", "n", "verdict",
           "n_needed_80pct", "note")
REQUIRED_COLUMNS = ("model", "benchmark", "format", "level", "task_id", "source_id", "mode", "passed", "category")
MARKERS = ("nl_marker", "extra_def", "code_token_ratio_low")
# Failure categories that are verbosity (extra code or natural language); checked against the taxonomy below.
VERBOSITY_CATEGORIES = ("format_wrapper", "irrelevant_natural_language", "suffix_duplication", "redundant_extra_code")
LEVEL_FALLBACK = ("safim-truncate", "syntax-truncate", "stop-cut", "code-extract", "raw")

PAIRS_HINT = ("no pair configured: add the base model to `models:` in params.yaml (role: base) and a `pairs:` "
              "entry {base: BASE, instruct: INSTRUCT}")
SERIES_HINT = ("no series configured: add a `series:` entry {start: BASE, checkpoints: [CKPT, ...]} in "
               "params.yaml, each checkpoint in `models:` with its `step`")

FINDINGS = {
    1: "The tax exists: instruct models lose Flow (infilling) pass@1 against their base, for most pairs",
    2: "Instruct models gain in Completion (code with NL guidance) but lose at precise insertion (Flow), "
       "on the same problems",
    3: "Size does not remove the tax",
    4: "Base and instruct solve largely the same problems, but exclusive successes differ by mode: base more in "
       "Flow, instruct more in Completion",
    5: "Tuning shifts failures toward verbosity (extra code, natural language)",
    6: "The verbosity shift shows across all outputs (raw level), not only failures",
    7: "Along a tuning trajectory Command rises and Flow falls (Completion stays above the start)",
}
METHODS = {
    1: "Per pair and Flow benchmark: Δ pass@1 = instruct − base in points on the same tasks, 95 % paired "
       "bootstrap CI, exact McNemar p; claimed sign: Δ < 0.",
    2: "Per pair, on the problems (source_id) that have both Flow and Completion tasks: Δ Completion and Δ Flow "
       "(task level, McNemar), and the per-problem difference Δ Completion − Δ Flow (Flow as the share of the "
       "problem's Flow tasks passed; t CI, one-sample t-test; claimed > 0). The verdict counts the last rows.",
    3: "Per pair, all Flow benchmarks pooled (paired by task): Δ pass@1 and McNemar p, grouped by family "
       "(models: family, else the name before the size) and size (parsed from the checkpoint name, else its "
       "`source`, e.g. 1.5b, 7B). A family with two sizes or more is supported when the tax is significant at "
       "its largest size (majority of the pairs of that size).",
    4: "Per pair and mode (the mode's benchmarks pooled): tasks only the base solves against tasks only the "
       "instruct solves; value = instruct's share of exclusive successes (%), Clopper-Pearson CI, exact McNemar "
       "(binomial) p; claimed < 50 % in Flow, > 50 % in Completion. Command rows are shown but not counted.",
    5: "Per pair and mode: the share of failures in the verbosity categories (" + ", ".join(VERBOSITY_CATEGORIES)
       + "), instruct − base in points; CI from paired bootstrap over tasks, Fisher exact p; claimed > 0; n "
       "and n_needed_80pct count failures of both models together.",
    6: "Per pair, mode and marker at level raw (every prompt format both ran): marker rate instruct − base in "
       "points on the same tasks, paired bootstrap CI, exact McNemar p; claimed > 0.",
    7: "Per series and mode (pooled benchmarks, start = step 0, checkpoints at their `step`): each task's OLS "
       "slope of pass/fail on step, times the last step = fitted change over the trajectory (points); their "
       "mean equals the slope of pass@1; t CI and one-sample t-test across tasks. Claimed: Command > 0, Flow < "
       "0; Completion: last checkpoint − start > 0 (McNemar). A series is supported when Command and Flow "
       "both are, contradicted when either is.",
}


# ---------------------------------------------------------------------------------------------- power

def _z(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


def n_mcnemar(discordant: float, delta: float, *, alpha: float = ALPHA, power: float = POWER) -> int:
    """Problems a paired binary comparison needs (Connor 1987, the McNemar test's sample size):

        n = ⌈ (z_{1−α/2} · √ψ + z_{power} · √(ψ − δ²))² / δ² ⌉

    ψ = discordant share (p10 + p01), δ = p01 − p10 the difference of the two pass rates (proportions), with
    |δ| ≤ ψ ≤ 1."""
    if delta == 0 or not abs(delta) <= discordant <= 1:
        raise ValueError(f"need 0 < |delta| <= discordant <= 1, got delta={delta}, discordant={discordant}")
    num = _z(1 - alpha / 2) * math.sqrt(discordant) + _z(power) * math.sqrt(discordant - delta**2)
    return math.ceil(num**2 / delta**2)


def n_needed_paired(only_a: int, only_b: int, n: int) -> int:
    """`n_mcnemar` at the observed δ and ψ. δ = 0 is replaced by the 10-point target. Assumption: where the
    observed discordant share is below |δ| (no discordant pair, or a target above what was seen), ψ = 2|δ|
    (capped at 1), i.e. discordant pairs split 3:1 in the effect's direction."""
    delta = (only_b - only_a) / n if n else 0.0
    psi = (only_a + only_b) / n if n else 0.0
    if delta == 0:
        delta = TARGET_EFFECT
    if psi < abs(delta):
        psi = min(1.0, 2 * abs(delta))
    return n_mcnemar(psi, delta)


def n_two_proportions(p1: float, p2: float, *, alpha: float = ALPHA, power: float = POWER) -> int:
    """Per-group size for two independent proportions (normal approximation, pooled variance under H0):

        n = ⌈ (z_{1−α/2} · √(2 p̄ (1 − p̄)) + z_{power} · √(p1 (1 − p1) + p2 (1 − p2)))²
              / (p1 − p2)² ⌉,
        p̄ = (p1 + p2) / 2."""
    if p1 == p2:
        raise ValueError("p1 and p2 must differ")
    pbar = (p1 + p2) / 2
    num = _z(1 - alpha / 2) * math.sqrt(2 * pbar * (1 - pbar)) + _z(power) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(num**2 / (p1 - p2) ** 2)


def n_needed_shares(p_base: float, p_instruct: float) -> int:
    """Failures of both models together (2 × `n_two_proportions`). Assumptions: an unobserved base share is
    0.5; an unobserved or equal instruct share is the base share + 0.10 (− 0.10 above 0.9)."""
    p1 = 0.5 if math.isnan(p_base) else p_base
    p2 = p1 if math.isnan(p_instruct) else p_instruct
    if p2 == p1:
        p2 = p1 + TARGET_EFFECT if p1 <= 1 - TARGET_EFFECT else p1 - TARGET_EFFECT
    return 2 * n_two_proportions(p1, p2)


def n_one_sample(mean: float, sd: float, *, alpha: float = ALPHA, power: float = POWER) -> int:
    """Units a one-sample (paired-difference) test of a mean needs, normal approximation:

        n = ⌈ ((z_{1−α/2} + z_{power}) · σ / μ)² ⌉

    in proportion units. μ = 0 is replaced by 0.10; assumption: σ = 0.5 where it is not observable (fewer
    than two units, or all units equal)."""
    mu = TARGET_EFFECT if mean == 0 or math.isnan(mean) else abs(mean)
    sigma = 0.5 if math.isnan(sd) or sd == 0 else sd
    return max(2, math.ceil(((_z(1 - alpha / 2) + _z(power)) * sigma / mu) ** 2))


# ---------------------------------------------------------------------------------------------- tests

def mean_test(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float, float, float]:
    """(mean, ci_low, ci_high, p, sd) of a one-sample t-test of mean 0. With every value equal the t-test is
    undefined: p = 1 for a zero mean, else the exact sign-flip p 2 · 0.5ⁿ. Fewer than two values: NaN p."""
    from scipy import stats

    x = np.asarray(list(values), dtype=float)
    n = x.size
    if n == 0:
        return (math.nan,) * 5
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, math.nan, math.nan, math.nan
    sd = float(x.std(ddof=1))
    if sd == 0:
        return mean, mean, mean, 1.0 if mean == 0 else min(1.0, 2 * 0.5**n), 0.0
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, float(stats.ttest_1samp(x, 0.0).pvalue), sd


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    from scipy.stats import binomtest

    if n == 0:
        return math.nan, math.nan
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def fisher_p(table: Sequence[Sequence[int]]) -> float:
    from scipy.stats import fisher_exact

    return float(fisher_exact(np.asarray(table, dtype=np.int64)).pvalue)


# ---------------------------------------------------------------------------------------------- names

_SIZE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)([bm])(?![a-z0-9])", re.IGNORECASE)


def parse_size_b(text: str | None) -> float | None:
    """Parameter count in billions from a name such as qwen2.5-coder-1.5b-instruct or Qwen/…-7B (135m →
    0.135); None when the name carries none."""
    match = _SIZE.search(text or "")
    if not match:
        return None
    value = float(match.group(1))
    return value if match.group(2).lower() == "b" else value / 1000


def _size_label(size: float) -> str:
    return f"{size:g}b"


def model_size(name: str, models: Mapping) -> float | None:
    """From the checkpoint name, else from its `source` in models:."""
    base_name = name.split("@", 1)[0]
    size = parse_size_b(base_name)
    if size is None:
        size = parse_size_b(str((models.get(base_name) or {}).get("source") or ""))
    return size


def model_family(name: str, models: Mapping) -> str:
    """models: family, else the name up to its size (qwen2.5-coder-1.5b-instruct → qwen2.5-coder)."""
    base_name = name.split("@", 1)[0]
    family = (models.get(base_name) or {}).get("family")
    if family:
        return str(family)
    match = _SIZE.search(base_name)
    return base_name[:match.start()].rstrip("-_/ ") or base_name if match else base_name


# ---------------------------------------------------------------------------------------------- input

@dataclass(frozen=True)
class Params:
    pairs: tuple[tuple[str, str], ...]
    series: tuple[tuple[str, tuple[str, ...]], ...]
    steps: Mapping[str, float]
    three_mode: Mapping[str, Mapping | None]
    seed: int
    n_resamples: int
    models: Mapping[str, Mapping]


def parse_params(text: str) -> Params:
    """The --analysis-json string (tabulate's, plus `models`), checked field by field."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"--analysis-json is not valid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise UserError("--analysis-json must be a JSON object (keys pairs, series, steps, three_mode, seed, "
                        "n_resamples, models)")
    pairs = raw.get("pairs") or []
    if not isinstance(pairs, list):
        raise UserError("--analysis-json pairs: must be a list of {base, instruct} (params.yaml pairs:)")
    parsed_pairs = []
    for i, p in enumerate(pairs):
        if not (isinstance(p, dict) and isinstance(p.get("base"), str) and isinstance(p.get("instruct"), str)):
            raise UserError(f"--analysis-json pairs[{i}]: {p!r} needs `base` and `instruct` model names "
                            "(params.yaml pairs:)")
        parsed_pairs.append((p["base"], p["instruct"]))
    series = raw.get("series") or []
    if not isinstance(series, list):
        raise UserError("--analysis-json series: must be a list of {start, checkpoints} (params.yaml series:)")
    parsed_series = []
    for i, s in enumerate(series):
        ok = isinstance(s, dict) and isinstance(s.get("start"), str) and isinstance(s.get("checkpoints"), list) \
            and all(isinstance(c, str) for c in s["checkpoints"])
        if not ok:
            raise UserError(f"--analysis-json series[{i}]: {s!r} needs `start` (a model) and `checkpoints` (a list "
                            "of models) (params.yaml series:)")
        parsed_series.append((s["start"], tuple(s["checkpoints"])))
    steps = raw.get("steps") or {}
    if not isinstance(steps, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for v in steps.values()):
        raise UserError("--analysis-json steps: must map model names to numeric tuning steps (models: step)")
    three_mode = raw.get("three_mode") or {}
    if not isinstance(three_mode, dict) or set(three_mode) - set(MODES):
        raise UserError(f"--analysis-json three_mode: keys must be modes ({', '.join(MODES)}), got "
                        f"{sorted(three_mode) if isinstance(three_mode, dict) else three_mode!r}")
    for mode, view in three_mode.items():
        if view is not None and not isinstance(view, dict):
            raise UserError(f"--analysis-json three_mode.{mode}: must be null or {{benchmark, format, level}}")
    models = raw.get("models") or {}
    if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
        raise UserError("--analysis-json models: must map model names to {family, role, source} "
                        "(params.yaml models:)")
    seed, n_resamples = raw.get("seed", 0), raw.get("n_resamples", 10_000)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UserError(f"--analysis-json seed: must be an integer, got {seed!r} (params.yaml analysis.seed)")
    if not isinstance(n_resamples, int) or isinstance(n_resamples, bool) or n_resamples < 1:
        raise UserError(f"--analysis-json n_resamples: must be a positive integer, got {n_resamples!r} "
                        "(params.yaml analysis.n_resamples)")
    return Params(tuple(parsed_pairs), tuple(parsed_series), dict(steps), dict(three_mode), seed, n_resamples,
                  dict(models))


def load_samples(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Per-sample rows of every file (folders: their *.jsonl), checked; sample 0 of each task is kept."""
    files = expand_jsonl_inputs(paths, "samples")
    records = [r for path in files for r in read_jsonl(path)]
    where = ", ".join(map(str, files))
    if not records:
        raise UserError(f"{where}: no samples; run the measure step (python -m tuningtax measure) first")
    return prepare_samples(pd.DataFrame(records), where)


def prepare_samples(samples: pd.DataFrame, where: str = "samples") -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in samples.columns]
    if missing:
        raise UserError(f"{where}: missing field(s) {', '.join(missing)}; these are the samples.jsonl written by "
                        "`python -m tuningtax measure` (data/07_scores/MODEL/samples.jsonl)")
    df = samples.copy()
    if "sample" in df.columns:
        df = df[df["sample"] == 0]
    empty = [c for c in ("model", "benchmark", "format", "level", "task_id", "mode") if df[c].isna().any()]
    if empty:
        raise UserError(f"{where}: field(s) {', '.join(empty)} are empty in some rows; regenerate the samples")
    bad_modes = sorted(set(df["mode"]) - set(MODES))
    if bad_modes:
        raise UserError(f"{where}: field mode has {bad_modes}; expected one of {', '.join(MODES)}")
    df["passed"] = binary_outcomes(df["passed"].to_numpy(), f"{where}: field passed")
    df["source_id"] = df["source_id"].where(df["source_id"].notna(), df["task_id"])
    for marker in MARKERS:
        if marker in df.columns:
            df[marker] = [_flag(v, where, marker) for v in df[marker].tolist()]
        else:
            df[marker] = math.nan
    dup = df.duplicated(["model", "benchmark", "format", "level", "task_id"], keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        raise UserError(f"{where}: {int(dup.sum())} rows repeat a (model, benchmark, format, level, task_id), "
                        f"e.g. {tuple(first[['model', 'benchmark', 'format', 'level', 'task_id']])}; pass each "
                        "model's samples.jsonl once")
    return df.reset_index(drop=True)


def _flag(value, where: str, field: str) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    if isinstance(value, (bool, np.bool_)) or value in (0, 1):
        return float(bool(value))
    raise UserError(f"{where}: field {field} must be true, false or null, found {value!r}")


def check_models(samples: pd.DataFrame, params: Params, where: str = "the samples") -> None:
    present = set(samples["model"])
    named = [(f"pairs[{i}].{side}", m) for i, pair in enumerate(params.pairs)
             for side, m in zip(("base", "instruct"), pair)]
    named += [(f"series[{i}].start", s) for i, (s, _) in enumerate(params.series)]
    named += [(f"series[{i}].checkpoints[{j}]", c) for i, (_, cs) in enumerate(params.series)
              for j, c in enumerate(cs)]
    for field, model in named:
        if model not in present:
            raise UserError(f"--analysis-json {field}: model {model!r} has no samples in {where} (models there: "
                            f"{', '.join(sorted(map(str, present)))}); fix the name in params.yaml or add its "
                            f"samples (data/07_scores/{model}/samples.jsonl, from the measure step)")


# ---------------------------------------------------------------------------------------------- selection

@dataclass(frozen=True)
class Selection:
    benchmark: str
    format: str
    level: str
    how: str  # "view" or "fallback"

    def label(self) -> str:
        return f"{self.benchmark} {self.format} {self.level}" + (" (fallback level)" if self.how == "fallback" else "")


def select(samples: pd.DataFrame, models: Sequence[str], mode: str, view: Mapping | None) -> list[Selection]:
    """One (format, level) per benchmark of `mode` that every model has (see the module docstring)."""
    rows = samples[(samples["mode"] == mode) & samples["model"].isin(models)]
    out = []
    for bench in sorted(map(str, rows["benchmark"].unique())):
        b = rows[rows["benchmark"] == bench]
        per_model = [b[b["model"] == m] for m in models]
        if any(p.empty for p in per_model):
            continue
        formats = set.intersection(*(set(p["format"]) for p in per_model))
        if not formats:
            continue
        want_format = (view or {}).get("format")
        fmt = want_format if want_format in formats else sorted(formats)[0]
        levels = set.intersection(*(set(p.loc[p["format"] == fmt, "level"]) for p in per_model))
        if not levels:  # the models share the format but were scored at no common level
            continue
        want_level = (view or {}).get("level")
        if want_level in levels:
            level, how = want_level, "view"
        else:
            level, how = next((lv for lv in LEVEL_FALLBACK if lv in levels), sorted(levels)[0]), "fallback"
        out.append(Selection(bench, fmt, level, how))
    return out


def raw_selection(samples: pd.DataFrame, models: Sequence[str], mode: str) -> list[Selection]:
    """Every (benchmark, format) of `mode` that all models ran, at level raw."""
    rows = samples[(samples["mode"] == mode) & samples["model"].isin(models) & (samples["level"] == "raw")]
    keys = [set(map(tuple, rows.loc[rows["model"] == m, ["benchmark", "format"]].to_numpy().tolist()))
            for m in models]
    shared = set.intersection(*keys) if keys else set()
    return [Selection(b, f, "raw", "view") for b, f in sorted(shared)]


def aligned(samples: pd.DataFrame, models: Sequence[str], sels: Sequence[Selection], value: str = "passed"
            ) -> pd.DataFrame:
    """Rows (benchmark, format, task_id) sorted, one column per model with `value`, plus source_id. Every model
    must have the same tasks in each selection (a paired test on the intersection would hide an incomplete
    run)."""
    if not sels:
        return pd.DataFrame(columns=["benchmark", "format", "task_id", "source_id", *models])
    keys = pd.DataFrame([(s.benchmark, s.format, s.level) for s in sels], columns=["benchmark", "format", "level"])
    rows = samples[samples["model"].isin(models)].merge(keys, on=["benchmark", "format", "level"])
    index = ["benchmark", "format", "task_id"]
    for sel in sels:
        part = rows[(rows["benchmark"] == sel.benchmark) & (rows["format"] == sel.format)]
        tasks = {m: set(part.loc[part["model"] == m, "task_id"]) for m in models}
        ref = models[0]
        for m in models[1:]:
            if tasks[m] != tasks[ref]:
                only_ref, only_m = sorted(tasks[ref] - tasks[m]), sorted(tasks[m] - tasks[ref])
                raise UserError(f"samples {sel.label()}: {ref!r} and {m!r} were scored on different tasks "
                                f"({len(only_ref)} only for {ref!r}, e.g. {only_ref[:3]}; {len(only_m)} only for "
                                f"{m!r}, e.g. {only_m[:3]}); rerun the incomplete one on the same subset")
    table = rows.pivot(index=index, columns="model", values=value)
    source = rows.drop_duplicates(index).set_index(index)["source_id"]
    table = table.reindex(columns=list(models)).join(source).sort_index().reset_index()
    return table[[*index, "source_id", *models]]


# ---------------------------------------------------------------------------------------------- rows

def _row(finding: int, claim: str, scope: str, statistic: str, value=math.nan, ci=(math.nan, math.nan),
         p=math.nan, n=None, *, effect=None, sign: int = 0, n_needed=None, note: str = "", unit: bool = True,
         key: bool = True, verdict: str | None = None) -> dict:
    """A check row; `effect` (default: value) is compared against `sign`; unit rows get Holm and a verdict."""
    return {"finding": finding, "claim": claim, "scope": scope, "statistic": statistic, "value": value,
            "ci_low": ci[0], "ci_high": ci[1], "p": p, "p_holm": math.nan, "n": n, "verdict": verdict,
            "n_needed_80pct": n_needed, "note": note, "_effect": value if effect is None else effect,
            "_sign": sign, "_unit": unit, "_key": key}


def verdict_of(effect: float, p_holm: float, sign: int) -> str:
    """supported / contradicted / not enough data (the module docstring's rule)."""
    if effect is None or p_holm is None or math.isnan(effect) or math.isnan(p_holm) or p_holm >= ALPHA \
            or effect == 0:
        return NOT_ENOUGH
    return "supported" if (effect > 0) == (sign > 0) else "contradicted"


def majority(verdicts: Sequence[str]) -> str:
    if sum(v == "supported" for v in verdicts) * 2 > len(verdicts):
        return "supported"
    if sum(v == "contradicted" for v in verdicts) * 2 > len(verdicts):
        return "contradicted"
    return NOT_ENOUGH


def _finish(rows: list[dict]) -> list[dict]:
    """Holm over the finding's unit rows, then each unit row's verdict."""
    units = [r for r in rows if r["_unit"]]
    adjusted = holm([r["p"] if r["p"] is not None and not math.isnan(r["p"]) else math.nan for r in units])
    for r, q in zip(units, adjusted):
        r["p_holm"] = float(q)
        if r["verdict"] is None:
            r["verdict"] = verdict_of(r["_effect"], r["p_holm"], r["_sign"])
    return rows


def _summary(finding: int, rows: Sequence[dict], scope: str = "overall", claim: str | None = None,
             note: str = "") -> dict:
    verdicts = [r["verdict"] for r in rows]
    verdict = majority(verdicts)
    counts = {v: verdicts.count(v) for v in VERDICTS}
    needed = [r["n_needed_80pct"] for r in rows if r["verdict"] == NOT_ENOUGH and r["n_needed_80pct"] is not None]
    text = (f"{counts['supported']} supported, {counts['contradicted']} contradicted, "
            f"{counts[NOT_ENOUGH]} not enough data")
    if verdict == NOT_ENOUGH and not needed and rows:
        text += " (rows disagree)"
    return _row(finding, claim or FINDINGS[finding], scope, "rows supported", counts["supported"], n=len(rows),
                n_needed=max(needed) if verdict == NOT_ENOUGH and needed else None,
                note="; ".join(x for x in (text, note) if x), unit=False, key=False, verdict=verdict)


def _no_config(finding: int, hint: str, n_needed: int) -> list[dict]:
    return [_row(finding, FINDINGS[finding], "overall", "none", n=0, n_needed=n_needed, note=hint, unit=False,
                 key=False, verdict=NOT_ENOUGH)]


def _pct(x: float) -> str:
    return "nan" if x is None or math.isnan(x) else f"{x:.2f}"


def _paired_row(finding: int, claim: str, scope: str, statistic: str, a, b, params: Params, sign: int,
                note: str = "", key: bool = True, names: tuple[str, str] = ("base", "instruct")) -> dict:
    """Δ (B − A, points) with bootstrap CI and McNemar p from paired 0/1 arrays."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.size == 0:
        return _row(finding, claim, scope, statistic, n=0, sign=sign, key=key, n_needed=n_needed_paired(0, 0, 0),
                    note="; ".join(x for x in ("no shared tasks", note) if x))
    s = paired_summary(a, b, n_resamples=params.n_resamples, seed=params.seed)
    detail = (f"{names[0]} {_pct(s['pass1_a'])} → {names[1]} {_pct(s['pass1_b'])}; only {names[0]} {s['only_a']}, "
              f"only {names[1]} {s['only_b']}, both {s['both']}, neither {s['neither']}")
    return _row(finding, claim, scope, statistic, s["delta_pts"], (s["ci_low"], s["ci_high"]), s["mcnemar_p"],
                s["n"], sign=sign, key=key, n_needed=n_needed_paired(s["only_a"], s["only_b"], s["n"]),
                note="; ".join(x for x in (detail, note) if x))


def _view(params: Params, mode: str) -> Mapping | None:
    return params.three_mode.get(mode)


def _labels(sels: Sequence[Selection]) -> str:
    return ", ".join(s.label() for s in sels)


# ---------------------------------------------------------------------------------------------- findings

def finding_1(samples: pd.DataFrame, params: Params) -> list[dict]:
    from tuningtax.analysis.tables import tax_table

    if not params.pairs:
        return _no_config(1, PAIRS_HINT, n_needed_paired(0, 0, 0))
    rows = []
    for base, instruct in params.pairs:
        sels = select(samples, (base, instruct), "flow", _view(params, "flow"))
        if not sels:
            rows.append(_row(1, "instruct − base < 0 in Flow", f"{base}→{instruct} Flow", "Δ pass@1 (points)",
                             n=0, sign=-1, n_needed=n_needed_paired(0, 0, 0),
                             note="no Flow benchmark run by both; add one to runs: in params.yaml") | {"_base": base})
            continue
        how = {s.benchmark: s for s in sels}
        keys = pd.DataFrame([(s.benchmark, s.format, s.level) for s in sels], columns=["benchmark", "format", "level"])
        outcomes = samples.merge(keys, on=["benchmark", "format", "level"]).rename(columns={"format": "prompt_format"})
        table = tax_table(outcomes[["model", "task_id", "benchmark", "prompt_format", "level", "passed"]],
                          [(base, instruct)], seed=params.seed, n_resamples=params.n_resamples)
        for t in table.itertuples():
            sel = how[t.benchmark]
            note = (f"pass@1 {_pct(t.pass1_base)} → {_pct(t.pass1_instruct)}; only base {t.only_base}, only "
                    f"instruct {t.only_instruct}, both {t.both}, neither {t.neither}"
                    + ("; level: fallback, the benchmark lacks the three_mode flow level"
                       if sel.how == "fallback" else ""))
            rows.append(_row(1, "instruct − base < 0 in Flow", f"{base}→{instruct} {t.benchmark} {t.prompt_format} "
                             f"{t.level}", "Δ pass@1 (points)", t.delta_pts, (t.ci_low, t.ci_high), t.mcnemar_p,
                             int(t.n), sign=-1, n_needed=n_needed_paired(int(t.only_base), int(t.only_instruct),
                                                                          int(t.n)), note=note) | {"_base": base})
    _finish(rows)
    by_family: dict[str, list[float]] = {}
    for r in rows:
        if not math.isnan(r["value"]):
            by_family.setdefault(model_family(r["_base"], params.models), []).append(r["value"])
    family_note = "mean Δ by family: " + ", ".join(f"{fam} {_pct(float(np.mean(v)))}" for fam, v in
                                                   sorted(by_family.items())) if by_family else ""
    return rows + [_summary(1, rows, note=family_note)]


def finding_2(samples: pd.DataFrame, params: Params) -> list[dict]:
    if not params.pairs:
        return _no_config(2, PAIRS_HINT, n_one_sample(0.0, math.nan))
    rows = []
    for base, instruct in params.pairs:
        pair = (base, instruct)
        flow_sels = select(samples, pair, "flow", _view(params, "flow"))
        comp_sels = select(samples, pair, "completion", _view(params, "completion"))
        flow, comp = aligned(samples, pair, flow_sels), aligned(samples, pair, comp_sels)
        problems = sorted(set(flow["source_id"]) & set(comp["source_id"]))
        name = f"{base}→{instruct}"
        if not problems:
            missing = ("Completion" if comp.empty else "Flow" if flow.empty
                       else "Flow and Completion on the same problems")
            rows.append(_row(2, "Δ Completion − Δ Flow > 0", f"{name} same problems",
                             "Δ Completion − Δ Flow (points)", n=0, sign=1, n_needed=n_one_sample(0.0, math.nan),
                             note=f"no problem with {missing} tasks for both; add a completion benchmark of the same "
                                  "problems to runs: in params.yaml"))
            continue
        flow, comp = flow[flow["source_id"].isin(problems)], comp[comp["source_id"].isin(problems)]
        k = len(problems)
        rows.append(_paired_row(2, "instruct − base > 0 in Completion", f"{name} Completion: {_labels(comp_sels)}; "
                                f"{k} problems", "Δ pass@1 (points)", comp[base], comp[instruct], params, 1,
                                key=False))
        rows.append(_paired_row(2, "instruct − base < 0 in Flow", f"{name} Flow: {_labels(flow_sels)}; same {k} "
                                "problems", "Δ pass@1 (points)", flow[base], flow[instruct], params, -1, key=False))
        d_comp = (comp[instruct] - comp[base]).groupby(comp["source_id"]).mean()
        d_flow = (flow[instruct] - flow[base]).groupby(flow["source_id"]).mean()
        diff = (d_comp - d_flow.reindex(d_comp.index)).to_numpy(dtype=float)
        mean, lo, hi, p, sd = mean_test(diff)
        rows.append(_row(2, "Δ Completion − Δ Flow > 0", f"{name} per problem, {k} problems",
                         "Δ Completion − Δ Flow (points)", 100 * mean, (100 * lo, 100 * hi), p, k, sign=1,
                         n_needed=n_one_sample(mean, sd),
                         note=f"Δ Completion {_pct(100 * d_comp.mean())}, Δ Flow {_pct(100 * d_flow.mean())} "
                              "(per-problem means); paired t-test"))
    _finish(rows)
    return rows + [_summary(2, [r for r in rows if r["_key"]])]


def finding_3(samples: pd.DataFrame, params: Params) -> list[dict]:
    if not params.pairs:
        return _no_config(3, PAIRS_HINT + ", with pairs of at least two sizes of one family", n_needed_paired(0, 0, 0))
    rows, meta = [], []
    for base, instruct in params.pairs:
        sels = select(samples, (base, instruct), "flow", _view(params, "flow"))
        table = aligned(samples, (base, instruct), sels)
        family = model_family(base, params.models)
        size = model_size(base, params.models)
        size = model_size(instruct, params.models) if size is None else size
        label = _size_label(size) if size is not None else "size ?"
        note = "size parsed from the name or its models: source" if size is not None else \
            "no size in the name or models: source (e.g. 7b); left out of the family comparison"
        rows.append(_paired_row(3, "instruct − base < 0 in Flow at this size",
                                f"{family} {label} {base}→{instruct} "
                                f"Flow pooled: {_labels(sels)}", "Δ pass@1 (points)", table[base], table[instruct],
                                params, -1, note=note))
        meta.append((family, size))
    _finish(rows)
    groups = []
    for family in sorted({f for f, _ in meta}):
        members = [(r, s) for r, (f, s) in zip(rows, meta) if f == family and s is not None]
        sizes = sorted({s for _, s in members})
        if len(sizes) < 2:
            have = ", ".join(_size_label(s) for s in sizes) or "none parsed"
            groups.append(_row(3, FINDINGS[3], f"family {family}", "sizes", len(sizes), n=len(members), unit=False,
                               key=True, verdict=NOT_ENOUGH,
                               n_needed=max((r["n_needed_80pct"] for r, _ in members),
                                            default=n_needed_paired(0, 0, 0)),
                               note=f"sizes: {have}; add pairs of another {family} size to pairs: in params.yaml "
                                    "(their base and instruct in models:)"))
            continue
        largest = [r for r, s in members if s == sizes[-1]]
        group = _summary(3, largest, scope=f"family {family}, largest size {_size_label(sizes[-1])}",
                         note="sizes: " + ", ".join(_size_label(s) for s in sizes))
        group.update(statistic="Δ pass@1 at the largest size (points)",
                     value=float(np.mean([r["value"] for r in largest])),
                     n=sum(r["n"] or 0 for r in largest), _key=True)
        groups.append(group)
    return rows + groups + [_summary(3, groups)]


def finding_4(samples: pd.DataFrame, params: Params) -> list[dict]:
    if not params.pairs:
        return _no_config(4, PAIRS_HINT, n_needed_paired(0, 0, 0))
    expected = {"flow": (-1, "base"), "completion": (1, "instruct"), "command": (1, "instruct")}
    rows = []
    for base, instruct in params.pairs:
        for mode in MODES:
            sign, who = expected[mode]
            sels = select(samples, (base, instruct), mode, _view(params, mode))
            table = aligned(samples, (base, instruct), sels)
            a, b = table[base].to_numpy(dtype=int), table[instruct].to_numpy(dtype=int)
            only_a, only_b = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
            both, n = int(((a == 1) & (b == 1)).sum()), len(table)
            exclusive = only_a + only_b
            share = 100 * only_b / exclusive if exclusive else math.nan
            lo, hi = clopper_pearson(only_b, exclusive)
            solved = both + exclusive
            jaccard = both / solved if solved else math.nan
            note = (f"only base {only_a}, only instruct {only_b}, both {both}, neither {n - solved}; "
                    f"Jaccard of solved sets {_pct(jaccard)}" + ("" if sels else f"; no {mode} benchmark run by both")
                    + ("; not part of the study's claim, not counted" if mode == "command" else ""))
            rows.append(_row(4, f"more exclusive successes for the {who} in {mode}",
                             f"{base}→{instruct} {mode}: {_labels(sels) or 'none'}", "instruct share of exclusive "
                             "successes (%)", share, (100 * lo, 100 * hi), mcnemar_exact_p(only_a, only_b) if n else
                             math.nan, n, effect=share - 50 if exclusive else math.nan, sign=sign,
                             n_needed=n_needed_paired(only_a, only_b, n), note=note, key=mode != "command"))
    _finish(rows)
    return rows + [_summary(4, [r for r in rows if r["_key"]])]


def _share_ci(fb, vb, fi, vi, params: Params) -> tuple[float, float]:
    """Percentile CI of (verbose/failed of instruct − of base) × 100 over paired resamples of tasks (drawn as
    multinomial counts over the distinct per-task patterns, like stats.bootstrap_delta_ci)."""
    patterns = np.stack([fb, vb, fi, vi], axis=1).astype(np.int64)
    if len(patterns) == 0:
        return math.nan, math.nan
    values, counts = np.unique(patterns, axis=0, return_counts=True)
    rng = np.random.Generator(np.random.PCG64(params.seed))
    draws = rng.multinomial(len(patterns), counts / len(patterns), size=params.n_resamples)
    sums = draws @ values  # (n_resamples, 4)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = 100 * (sums[:, 3] / sums[:, 2] - sums[:, 1] / sums[:, 0])
    diff = diff[~np.isnan(diff)]
    if diff.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(diff, [0.025, 0.975])
    return float(lo), float(hi)


def finding_5(samples: pd.DataFrame, params: Params) -> list[dict]:
    from tuningtax.taxonomy.rules import FAILURE_CATEGORIES, failure_table

    unknown = sorted(set(VERBOSITY_CATEGORIES) - set(FAILURE_CATEGORIES))
    if unknown:  # pragma: no cover - guards a taxonomy rename
        raise AssertionError(f"verbosity categories {unknown} are not failure categories")
    if not params.pairs:
        return _no_config(5, PAIRS_HINT, n_needed_shares(math.nan, math.nan))
    rows = []
    for base, instruct in params.pairs:
        for mode in MODES:
            pair = (base, instruct)
            sels = select(samples, pair, mode, _view(params, mode))
            table = aligned(samples, pair, sels, value="category")
            keys = pd.DataFrame([(s.benchmark, s.format, s.level) for s in sels],
                                columns=["benchmark", "format", "level"])
            chosen = samples[samples["model"].isin(pair)].merge(keys, on=["benchmark", "format", "level"])
            shares = failure_table(chosen, by=["model"]) if len(chosen) else pd.DataFrame(
                columns=["model", "category", "n", "share"])
            counts = {}
            for m in pair:
                part = shares[shares["model"] == m]
                failed = int(part["n"].sum())
                verbose = int(part.loc[part["category"].isin(VERBOSITY_CATEGORIES), "n"].sum())
                mismatch = int(part.loc[part["category"] == "functional_mismatch", "n"].sum())
                counts[m] = (failed, verbose, mismatch)
            (fb, vb, mb), (fi, vi, mi) = counts[base], counts[instruct]
            sb, si = (vb / fb if fb else math.nan), (vi / fi if fi else math.nan)
            value = 100 * (si - sb)
            p = fisher_p([[vb, fb - vb], [vi, fi - vi]]) if fb and fi else math.nan
            arrays = [(table[m] != "passed").to_numpy(int) for m in pair]
            verbose_arrays = [table[m].isin(VERBOSITY_CATEGORIES).to_numpy(int) for m in pair]
            ci = _share_ci(arrays[0], verbose_arrays[0], arrays[1], verbose_arrays[1], params)
            note = (f"verbosity share base {_pct(100 * sb)} % ({vb}/{fb}) → instruct {_pct(100 * si)} % ({vi}/{fi}); "
                    f"functional mismatch base {_pct(100 * mb / fb if fb else math.nan)} % → instruct "
                    f"{_pct(100 * mi / fi if fi else math.nan)} %"
                    + ("" if sels else f"; no {mode} benchmark run by both"))
            rows.append(_row(5, "verbosity share of failures: instruct − base > 0",
                             f"{base}→{instruct} {mode}: {_labels(sels) or 'none'}", "Δ verbosity share of failures "
                             "(points)", value, ci, p, fb + fi, sign=1, n_needed=n_needed_shares(sb, si), note=note))
    _finish(rows)
    return rows + [_summary(5, rows)]


def finding_6(samples: pd.DataFrame, params: Params) -> list[dict]:
    if not params.pairs:
        return _no_config(6, PAIRS_HINT, n_needed_paired(0, 0, 0))
    rows, unmeasured = [], set()
    for base, instruct in params.pairs:
        pair = (base, instruct)
        for mode in MODES:
            sels = raw_selection(samples, pair, mode)
            for marker in MARKERS:
                table = aligned(samples, pair, sels, value=marker)
                known = table[[base, instruct]].notna().all(axis=1)
                if sels and not table[[base, instruct]].notna().to_numpy().any():
                    unmeasured.add(f"{marker} in {mode}")  # e.g. extra_def in command: not applicable
                    continue
                dropped = int((~known).sum())
                note = "" if sels else f"no {mode} samples at level raw run by both"
                if dropped:
                    note = f"{dropped} tasks without the marker for one model left out"
                rows.append(_paired_row(6, f"{marker} rate: instruct − base > 0",
                                        f"{base}→{instruct} {mode} raw {marker}: "
                                        f"{', '.join(f'{s.benchmark} {s.format}' for s in sels) or 'none'}",
                                        f"Δ {marker} rate (points)", table.loc[known, base],
                                        table.loc[known, instruct],
                                        params, 1, note=note))
    _finish(rows)
    by_mode = {m: [r["value"] for r in rows if f" {m} raw " in r["scope"] and not math.isnan(r["value"])]
               for m in MODES}
    means = {m: float(np.mean(v)) for m, v in by_mode.items() if v}
    note = "mean Δ by mode: " + ", ".join(f"{m} {_pct(v)}" for m, v in means.items()) if means else ""
    if unmeasured:
        note += ("; " if note else "") + "not measured (no row): " + ", ".join(sorted(unmeasured))
    return rows + [_summary(6, rows, note=note)]


def _series_steps(start: str, checkpoints: Sequence[str], steps: Mapping[str, float]
                  ) -> tuple[list[str], list[float], str]:
    with_step = [c for c in checkpoints if c in steps]
    if not with_step:
        return [start, *checkpoints], [0.0, *range(1, len(checkpoints) + 1)], \
            "no checkpoint has a step (models: step); positions 1..k used as steps"
    missing = [c for c in checkpoints if c not in steps]
    note = f"without a step, left out: {', '.join(missing)}" if missing else ""
    return [start, *with_step], [0.0, *(float(steps[c]) for c in with_step)], note


def finding_7(samples: pd.DataFrame, params: Params) -> list[dict]:
    if not params.series:
        return _no_config(7, SERIES_HINT, n_one_sample(0.0, math.nan))
    rows, series_rows = [], []
    claims = {"flow": ("Flow falls along the trajectory", -1), "command": ("Command rises along the trajectory", 1),
              "completion": ("Completion stays above the start (last checkpoint − start > 0)", 1)}
    per_series = []
    for start, checkpoints in params.series:
        models, x, step_note = _series_steps(start, checkpoints, params.steps)
        x = np.asarray(x, dtype=float)
        mine = {}
        for mode in MODES:
            claim, sign = claims[mode]
            sels = select(samples, models, mode, _view(params, mode))
            table = aligned(samples, models, sels)
            y = table[list(models)].to_numpy(dtype=float)
            curve = ", ".join(f"{step:g}: {_pct(100 * y[:, j].mean()) if len(y) else 'nan'}"
                              for j, step in enumerate(x))
            note = "; ".join(v for v in (f"pass@1 by step: {curve}", step_note,
                                         "" if sels else f"no {mode} benchmark run by every model") if v)
            scope = f"{start}→{models[-1]} {mode}: {_labels(sels) or 'none'}"
            if mode == "completion":
                last = models[int(np.argmax(x))]
                row = _paired_row(7, claim, scope, "Δ pass@1 last checkpoint − start (points)", table[start],
                                  table[last], params, sign, note=note, names=("start", "last"))
            elif len(set(x.tolist())) < 2 or len(y) == 0:
                row = _row(7, claim, scope, "fitted change over the trajectory (points)", n=len(y), sign=sign,
                           n_needed=n_one_sample(0.0, math.nan), note=note + "; fewer than two steps")
            else:
                xc = x - x.mean()
                change = (y @ xc) / (xc @ xc) * x.max()  # per task: OLS slope × last step
                mean, lo, hi, p, sd = mean_test(change)
                row = _row(7, claim, scope, "fitted change over the trajectory (points)", 100 * mean,
                           (100 * lo, 100 * hi), p, len(y), sign=sign, n_needed=n_one_sample(mean, sd), note=note)
            rows.append(row)
            mine[mode] = row
        per_series.append((start, models, mine))
    _finish(rows)
    for start, models, mine in per_series:
        pair = [mine["command"]["verdict"], mine["flow"]["verdict"]]
        verdict = "supported" if pair == ["supported"] * 2 else "contradicted" if "contradicted" in pair else NOT_ENOUGH
        needed = [mine[m]["n_needed_80pct"] for m in ("command", "flow") if mine[m]["verdict"] == NOT_ENOUGH]
        series_rows.append(_row(7, FINDINGS[7], f"series {start}→{models[-1]}", "Command and Flow rows supported",
                                sum(v == "supported" for v in pair), n=2, unit=False, key=True, verdict=verdict,
                                n_needed=max(needed) if verdict == NOT_ENOUGH and needed else None,
                                note=f"command {pair[0]}, flow {pair[1]}"))
    return rows + series_rows + [_summary(7, series_rows)]


CHECKS: dict[int, Callable[[pd.DataFrame, Params], list[dict]]] = {
    1: finding_1, 2: finding_2, 3: finding_3, 4: finding_4, 5: finding_5, 6: finding_6, 7: finding_7}


def check_findings(samples: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Every check row of the seven findings, in a fixed order (findings, then pairs/series as configured,
    benchmarks sorted, modes flow, completion, command); the last row of each finding is its overall verdict."""
    check_models(samples, params)
    rows = [r for finding in sorted(CHECKS) for r in CHECKS[finding](samples, params)]
    for r in rows:
        if r["verdict"] != NOT_ENOUGH:
            r["n_needed_80pct"] = None
    return pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)  # object: counts stay ints


# ---------------------------------------------------------------------------------------------- output

def _cell(value, column: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        # p-values keep 4 significant digits: at 4 decimals a decisive p of 2e-6 would read as 0
        return f"{float(value):.4g}" if column in ("p", "p_holm") else f"{float(value):.4f}"
    return str(value)


def render_csv(table: pd.DataFrame) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in table.to_dict("records"):
        writer.writerow([_cell(_int_or(record[c]) if c in ("n", "n_needed_80pct", "finding") else record[c], c)
                         for c in COLUMNS])
    return out.getvalue()


def _int_or(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def _md(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, float) and digits == 4 and 0 < value < 1e-4:
        return "<0.0001"
    return f"{value:.{digits}f}" if isinstance(value, (float, np.floating)) else str(value).replace("|", "\\|")


def render_markdown(table: pd.DataFrame, n_samples: int, models: Sequence[str]) -> str:
    lines = ["# The study's seven findings on this run's checkpoints", "",
             "Each finding is checked from the per-sample outcomes (sample 0 of each task, "
             f"{n_samples} rows of {len(models)} model runs: {', '.join(models)}) with paired tests on the same "
             "tasks. A row is **supported** when its Holm-adjusted p (Holm over that finding's rows) is below 0.05 "
             "and the effect has the claimed sign, **contradicted** when the adjusted p is below 0.05 and the "
             "effect has the opposite sign, and **not enough data** otherwise; then it gives the number of "
             "problems that 80 % power (two-sided α = 0.05) would need to detect the observed effect, or a "
             "10-point difference where the observed effect is 0. Summary rows take the majority verdict of their "
             "rows. Values in points (percentage points) unless the statistic says otherwise; 95 % CIs. "
             "Outcomes of a mode: every benchmark of that mode the compared models all ran, at the three_mode "
             "view's prompt format and level where the benchmark has them, else the first shared format and the "
             f"first shared level of {', '.join(LEVEL_FALLBACK)} (the scope column names what was used).", ""]
    header = ["scope", "statistic", "value", "95 % CI", "p", "p (Holm)", "n", "verdict", "n for 80 % power", "note"]
    for finding in sorted(FINDINGS):
        part = table[table["finding"] == finding]
        overall = part.iloc[-1]["verdict"] if len(part) else NOT_ENOUGH
        lines += [f"## Finding {finding}: {FINDINGS[finding]}", "", METHODS[finding], "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in part.to_dict("records"):
            ci = "" if _md(r["ci_low"]) == "" else f"[{_md(r['ci_low'])}, {_md(r['ci_high'])}]"
            cells = [r["scope"], r["statistic"], _md(r["value"]), ci, _md(r["p"], 4), _md(r["p_holm"], 4),
                     _md(_int_or(r["n"])), r["verdict"], _md(_int_or(r["n_needed_80pct"])), r["note"]]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
        lines += ["", f"Verdict: **{overall}**", ""]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", nargs="+", required=True, type=Path,
                        help="per-checkpoint sample files (data/07_scores/{model}/samples.jsonl) or folders")
    parser.add_argument("--analysis-json", required=True,
                        help="JSON: pairs, series, steps, three_mode, seed, n_resamples (as for tabulate) and "
                             "models (params.yaml models:)")
    parser.add_argument("--out-md", type=Path, default=Path("results/findings.md"))
    parser.add_argument("--out-csv", type=Path, default=Path("results/findings.csv"))


def run(args: argparse.Namespace) -> int:
    params = parse_params(args.analysis_json)
    samples = load_samples(args.samples)
    check_models(samples, params, where=", ".join(map(str, args.samples)))
    table = check_findings(samples, params)
    models = sorted(map(str, samples["model"].unique()))
    write_text_atomic(args.out_csv, render_csv(table))
    write_text_atomic(args.out_md, render_markdown(table, len(samples), models))
    overall = table.groupby("finding", sort=True)["verdict"].last()
    print("findings: " + ", ".join(f"{f}: {v}" for f, v in overall.items())
          + f" (in {args.out_md}, {args.out_csv})", file=sys.stderr)
    return 0
