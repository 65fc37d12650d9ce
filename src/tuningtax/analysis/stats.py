"""Paired statistics of the instruction-tuning tax, recomputed from per-task outcomes (the tables that use
them: tuningtax.analysis.tables).

Input is one binary outcome per (model, benchmark, prompt_format, level, task_id): with greedy decoding
pass@1 of a task is 1 when its single sample passed. Two models are compared on the same tasks only; every
derived number (pass@1, Δ, relative Δ, p-values, CI, overlap) comes from those outcomes, never from another
table (the study printed relative changes that disagree with its own cells).

Conventions
- Units: pass@1, Δ and the CI of Δ are percentage points (0–100), as in the study's tables; Δ = B − A
  (instruct − base, checkpoint − start), so a tax is negative.
- Relative Δ = Δ / pass@1(A) × 100 %. It is NaN when pass@1(A) is 0 (also when B is 0): a change relative
  to nothing is undefined, and NaN (unlike ±inf) prints as empty and cannot leak into means unnoticed.
- McNemar: the exact two-sided test on the discordant pairs b (only A solved) and c (only B solved):
  p = min(1, 2 · P[X ≤ min(b, c)]), X ~ Binomial(b + c, 1/2), computed with integer arithmetic. This is
  statsmodels' `mcnemar(table, exact=True)` and scipy's `binomtest(b, b + c).pvalue` (the tests check
  both). No discordant pair gives p = 1.
- Bootstrap CI of Δ: percentile interval over `n_resamples` paired resamples of tasks (a task's A and B
  outcomes move together). Resampling n tasks with replacement and averaging d = B − A has exactly the
  distribution of a multinomial draw of counts over d's distinct values, so that is how it is drawn:
  identical in distribution to index resampling, O(n_resamples · 3) instead of O(n_resamples · n).
  numpy Generator(PCG64(seed)); every row uses the same seed, so a row's CI depends only on its own
  outcomes and the seed, not on which other rows share the table.
- Holm: step-down Holm–Bonferroni over a table's McNemar p-values (the whole table, or each family named
  by `holm_by`); NaN p-values are left NaN and do not count towards the family size. Equal to statsmodels'
  `multipletests(method="holm")` (tested).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tuningtax.errors import UserError

# ---------------------------------------------------------------------------------------------- scalars

@dataclass(frozen=True)
class Overlap:
    """Solved-set overlap of two models on the same tasks (the study's Venn diagram)."""
    both: int
    only_a: int
    only_b: int
    neither: int


def binary_outcomes(values: Iterable, what: str = "outcomes") -> np.ndarray:
    """0/1 int array; bools and 0/1 numbers pass, anything else (NaN, None, "yes") is a user error."""
    arr = np.asarray(values if isinstance(values, (np.ndarray, pd.Series)) else list(values))
    if arr.dtype.kind in "OUS" and not all(isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating))
                                           for v in arr.tolist()):
        bad = sorted({repr(v) for v in arr.tolist() if not isinstance(v, (bool, int, float))})[:5]
        raise UserError(f"{what}: passed must be 0/1 or true/false, found {', '.join(bad)}")
    num = arr.astype(float)
    if not np.isin(num, (0.0, 1.0)).all():
        bad = sorted({repr(v) for v in num[~np.isin(num, (0.0, 1.0))].tolist()})[:5]
        raise UserError(f"{what}: passed must be 0/1 or true/false, found {', '.join(bad)}")
    return num.astype(np.int64)


def _paired_arrays(a: Iterable, b: Iterable) -> tuple[np.ndarray, np.ndarray]:
    a, b = binary_outcomes(a, "outcomes of A"), binary_outcomes(b, "outcomes of B")
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired outcomes need two 1-d arrays of equal length, got {a.shape} and {b.shape}")
    return a, b


def overlap(a: Iterable, b: Iterable) -> Overlap:
    a, b = _paired_arrays(a, b)
    return Overlap(both=int(np.sum((a == 1) & (b == 1))), only_a=int(np.sum((a == 1) & (b == 0))),
                   only_b=int(np.sum((a == 0) & (b == 1))), neither=int(np.sum((a == 0) & (b == 0))))


def pass_at_1_pct(outcomes: Iterable) -> float:
    x = binary_outcomes(outcomes)
    return float("nan") if x.size == 0 else 100.0 * int(x.sum()) / x.size


def relative_delta_pct(pass_a_pct: float, pass_b_pct: float) -> float:
    """(B − A) / A × 100; NaN when A is 0 or either value is NaN (see module docstring)."""
    if math.isnan(pass_a_pct) or math.isnan(pass_b_pct) or pass_a_pct == 0:
        return float("nan")
    return (pass_b_pct - pass_a_pct) / pass_a_pct * 100.0


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts, in exact integer arithmetic."""
    if only_a < 0 or only_b < 0:
        raise ValueError("discordant counts must be non-negative")
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1))  # P[X <= k] * 2**n
    return min(1.0, 2 * tail / 2**n)  # int / int is correctly rounded, even for huge n


def bootstrap_delta_ci(a: Iterable, b: Iterable, *, n_resamples: int = 10_000, seed: int = 0,
                       confidence: float = 0.95) -> tuple[float, float]:
    """Percentile CI of Δ = pass@1(B) − pass@1(A) in points, from paired resamples of tasks."""
    if n_resamples < 1:
        raise ValueError("n_resamples must be >= 1")
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie in (0, 1)")
    a, b = _paired_arrays(a, b)
    n = a.size
    if n == 0:
        return float("nan"), float("nan")
    values, counts = np.unique(100.0 * (b - a), return_counts=True)
    rng = np.random.Generator(np.random.PCG64(seed))
    draws = rng.multinomial(n, counts / n, size=n_resamples)  # (n_resamples, distinct d values)
    means = draws @ values / n
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def holm(pvalues: Iterable[float]) -> np.ndarray:
    """Holm-adjusted p-values in input order; NaN stays NaN and is not counted in the family."""
    p = np.asarray(list(pvalues), dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m:
        order = np.argsort(q, kind="stable")
        adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * q[order]))
        res = np.empty(m)
        res[order] = adjusted
        out[ok] = res
    return out


def paired_summary(a: Iterable, b: Iterable, *, n_resamples: int = 10_000, seed: int = 0,
                   confidence: float = 0.95) -> dict[str, float | int]:
    """Every per-comparison statistic except the Holm column (which needs the whole table)."""
    a, b = _paired_arrays(a, b)
    ov = overlap(a, b)
    pa, pb = pass_at_1_pct(a), pass_at_1_pct(b)
    lo, hi = bootstrap_delta_ci(a, b, n_resamples=n_resamples, seed=seed, confidence=confidence)
    n = a.size
    return {"n": n, "pass1_a": pa, "pass1_b": pb,
            "delta_pts": 100.0 * (int(b.sum()) - int(a.sum())) / n if n else float("nan"),
            "rel_delta_pct": relative_delta_pct(pa, pb),
            "mcnemar_p": mcnemar_exact_p(ov.only_a, ov.only_b) if n else float("nan"),
            "ci_low": lo, "ci_high": hi,
            "only_a": ov.only_a, "only_b": ov.only_b, "both": ov.both, "neither": ov.neither}


# ---------------------------------------------------------------------------------------------- tables
