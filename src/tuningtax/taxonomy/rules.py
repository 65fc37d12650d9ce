"""Rule-based failure taxonomy: (sample, execution result, metrics) -> one category.

Rules run in order and the first match wins. Passing samples are `passed`. For failures the order goes
from causes that make every later judgement meaningless to causes that only remain when the output has
the right shape, so a sample gets the most upstream explanation of why it failed:

 1. empty_output — the output is empty, whitespace or comments only: there is no code to judge.
 2. special_token_leak — a sentinel or chat token of any family in the text. A template or stop-token
    defect; everything after the token is not meant as answer, so it also explains the syntax errors
    and prose that may follow it.
 3. format_wrapper — a markdown fence or chat wrapper (lead-in prose) around code that, unwrapped, makes
    the program compile (metric `unwrapped_parses`): the presentation failed, not the code. Before
    prose and syntax errors because the wrapper is what causes them.
 4. irrelevant_natural_language — natural-language markers (headings, lead-ins, bullets, sentences)
    the unwrapping does not explain away: the model talked instead of (or besides) coding.
 5. suffix_duplication — the output repeats the suffix's first line: the model wrote past the hole into
    code that already follows. Before redundant code because it is its most specific form, and before
    syntax errors because duplicated block headers (`else:`) are a common cause of them.
 6. redundant_extra_code — extra def/class, prefix re-emission or over-generation beyond the hole. A
    cause rather than a symptom, so before syntax_error (a re-emitted header often breaks the indentation
    of the body that follows; the study's manual labels count those failures as redundant code too).
 7. syntax_error — the spliced program does not compile (a SyntaxError in the sandbox, or metric
    `parses` false) with none of the causes above.
 8. timeout_or_runtime_error — status timeout, error (an exception other than the test's assertion),
    oom, killed, no_marker (the program ended without reaching the end of the tests) or an exception
    other than a failed assertion (`taxonomy_status` derives these from the sandbox status and detail).
 9. functional_mismatch — the default: well-formed code that ran and gave wrong answers.

Inputs: `metrics` as produced by tuningtax.metrics.compute_metrics (missing or None metrics
count as "no"); the status comes from `result` (keys status, passed), falling back to the sample's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

RUNTIME_STATUSES = frozenset({"timeout", "error", "oom", "killed", "no_marker", "runtime_error"})
_SYNTAX_ERRORS = ("SyntaxError", "IndentationError", "TabError")


def taxonomy_status(status: str, detail: str = "") -> str:
    """The sandbox reports every exception as `failed`; its detail names the exception. A failed
    assertion is a wrong answer; a syntax error or any other exception is not."""
    if status != "failed":
        return status
    if detail.startswith(_SYNTAX_ERRORS):
        return "syntax_error"
    if detail.startswith("AssertionError") or not detail:
        return "failed"
    return "runtime_error"

Evidence = Mapping[str, Any]


@dataclass(frozen=True)
class Rule:
    category: str
    matches: Callable[[Evidence, Evidence], bool]  # (metrics, result) -> bool
    summary: str


def _yes(metrics: Evidence, *names: str) -> bool:
    return any(metrics.get(name) is True or metrics.get(name) is np.True_ for name in names)


RULES: tuple[Rule, ...] = (
    Rule("empty_output", lambda m, r: _yes(m, "empty", "comment_only"),
         "empty, whitespace-only or comment-only output"),
    Rule("special_token_leak", lambda m, r: _yes(m, "special_token_leak"),
         "a special token of any model family appears in the output"),
    Rule("format_wrapper", lambda m, r: _yes(m, "unwrapped_parses"),
         "markdown fence or chat wrapper around code that compiles once unwrapped"),
    Rule("irrelevant_natural_language", lambda m, r: _yes(m, "nl_marker"),
         "natural-language text (headings, lead-ins, bullets, sentences) in place of or beside the code"),
    Rule("suffix_duplication", lambda m, r: _yes(m, "suffix_copy"),
         "the output repeats the first line of the suffix"),
    Rule("redundant_extra_code", lambda m, r: _yes(m, "extra_def", "prefix_reemission", "over_generation"),
         "extra def/class, re-emitted prefix or more code than the hole needs"),
    Rule("syntax_error", lambda m, r: r.get("status") == "syntax_error" or m.get("parses") is False
         or m.get("parses") is np.False_,
         "the program does not compile"),
    Rule("timeout_or_runtime_error", lambda m, r: r.get("status") in RUNTIME_STATUSES,
         "timeout, exception, out of memory or a crashed worker"),
    Rule("functional_mismatch", lambda m, r: True, "well-formed code that ran and failed the tests"),
)

CATEGORIES: tuple[str, ...] = ("passed", *(rule.category for rule in RULES))
FAILURE_CATEGORIES: tuple[str, ...] = CATEGORIES[1:]


def _passed(value: Any) -> bool:
    return value is not None and value is not pd.NA and not (isinstance(value, float) and np.isnan(value)) \
        and bool(value)


def classify(sample: Evidence, result: Evidence | None, metrics: Evidence) -> str:
    """The category of one sample; `result` may be None when the sample carries status/passed itself. A
    sandbox `failed` is read through `taxonomy_status` (with the `detail` beside it), so every caller gets
    syntax and runtime errors apart from wrong answers."""
    outcome = {"status": sample.get("status"), "passed": sample.get("passed"), "detail": sample.get("detail")}
    if result is not None:
        outcome.update({k: result[k] for k in ("status", "passed", "detail") if k in result})
    outcome["status"] = taxonomy_status(outcome["status"], outcome["detail"] or "")
    if _passed(outcome["passed"]):
        return "passed"
    for rule in RULES:
        if rule.matches(metrics, outcome):
            return rule.category
    raise AssertionError("the last rule matches everything")  # pragma: no cover


def classify_frame(samples_with_metrics: pd.DataFrame) -> pd.Series:
    """`classify` on each row of a frame holding status, passed and the metric columns."""
    records = samples_with_metrics.to_dict("records")
    return pd.Series([classify(r, None, r) for r in records], index=samples_with_metrics.index,
                     name="category", dtype=object)


def failure_table(labelled: pd.DataFrame, by: Sequence[str] = (), category: str = "category") -> pd.DataFrame:
    """Failure categories per group: n and share of the group's failures (NaN when it has none). Every
    group lists every failure category, zeros included, so tables of different models line up."""
    by = list(by)
    failures = labelled[labelled[category] != "passed"]
    keys = [tuple(k) for k in labelled[by].drop_duplicates().sort_values(by).to_numpy().tolist()] if by else [()]
    rows = []
    for key in keys:
        part = failures
        for col, value in zip(by, key):
            part = part[part[col] == value]
        counts = part[category].value_counts()
        total = int(counts.sum())
        for cat in FAILURE_CATEGORIES:
            n = int(counts.get(cat, 0))
            rows.append({**dict(zip(by, key)), "category": cat, "n": n,
                         "share": n / total if total else float("nan")})
    return pd.DataFrame(rows, columns=[*by, "category", "n", "share"])


def cohen_kappa(labels_a: Sequence[str], labels_b: Sequence[str]) -> float:
    """Cohen's kappa of two raters' labels on the same items: (p_o − p_e) / (1 − p_e).

    NaN when chance agreement is already 1 (both raters used one and the same single category): agreement
    beyond chance is then undefined."""
    a, b = list(labels_a), list(labels_b)
    if len(a) != len(b):
        raise ValueError(f"need one label per item from each rater, got {len(a)} and {len(b)}")
    if not a:
        raise ValueError("no labels")
    cats = sorted(set(a) | set(b), key=str)
    index = {c: i for i, c in enumerate(cats)}
    table = np.zeros((len(cats), len(cats)))
    for x, y in zip(a, b):
        table[index[x], index[y]] += 1
    n = table.sum()
    p_o = np.trace(table) / n
    p_e = float(table.sum(axis=1) @ table.sum(axis=0)) / n**2
    if np.isclose(p_e, 1.0):
        return float("nan")
    return float((p_o - p_e) / (1.0 - p_e))
