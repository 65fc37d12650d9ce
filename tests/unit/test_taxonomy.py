"""Failure taxonomy: one crafted sample per category (the labelling guide's examples), rule order,
tables, and Cohen's kappa against statsmodels."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tuningtax.metrics import compute_metrics
from tuningtax.tasks.schema import Task
from tuningtax.taxonomy import rules
from tuningtax.taxonomy.rules import CATEGORIES, classify, classify_frame, cohen_kappa, failure_table

# The hole of LABELLING.md's running example.
TASK = Task("F/0", "toy-infilling", "flow", "def add_all(xs):\n    total = 0\n    for x in xs:\n",
            "    return total\n", "        total += x\n", "", "add_all", "", "Toy/0")


def label(text: str, status: str = "failed") -> str:
    sample = {"completion": text}
    return classify(sample, {"status": status, "passed": status == "passed"}, compute_metrics(sample, TASK))


@pytest.mark.parametrize(("category", "text", "status"), [
    ("passed", "        total += x\n", "passed"),
    ("empty_output", "", "failed"),
    ("empty_output", "        # add x to the total\n", "failed"),
    ("special_token_leak", "        total += x\n<｜end▁of▁sentence｜>def main():\n", "syntax_error"),
    ("special_token_leak", "        total += x<|file_sep|>README.md\n", "syntax_error"),
    ("format_wrapper", "```python\n        total += x\n```\n", "syntax_error"),
    ("format_wrapper", "Here is the missing line:\n```python\n        total += x\n```", "syntax_error"),
    ("format_wrapper", "Sure! Here's the code:\n        total += x\n", "syntax_error"),
    ("irrelevant_natural_language", "## Explanation\nThe loop adds each element to the total.\n", "syntax_error"),
    ("irrelevant_natural_language", "- iterate over xs\n- add each item\n", "syntax_error"),
    ("irrelevant_natural_language", "```python\n        total += (x\n```\nThis is broken.\n", "syntax_error"),
    ("suffix_duplication", "        total += x\n    return total\n", "failed"),
    ("suffix_duplication", "        total += x\n\n    return total\n\nprint(add_all([1, 2]))\n", "failed"),
    ("redundant_extra_code", "        total += x\n\ndef helper(y):\n    return y\n", "failed"),
    ("redundant_extra_code", "    for x in xs:\n        total += x\n", "failed"),
    ("redundant_extra_code", "def add_all(xs):\n    total = 0\n", "failed"),
    ("redundant_extra_code", "        total += x\n" + "        print(total)\n" * 5, "failed"),
    ("syntax_error", "    total += x\n", "syntax_error"),
    ("syntax_error", "        total += (x\n", "syntax_error"),
    ("timeout_or_runtime_error", "        total += y\n", "error"),
    ("timeout_or_runtime_error", "        while True: total += x\n", "timeout"),
    ("timeout_or_runtime_error", "        total += x\n", "oom"),
    ("functional_mismatch", "        total -= x\n", "failed"),
    ("functional_mismatch", "        total = x\n", "failed"),
])
def test_each_category(category, text, status):
    assert label(text, status) == category


def test_guide_explains_every_category_in_rule_order():
    guide = (Path(rules.__file__).parent / "LABELLING.md").read_text(encoding="utf-8")
    for number, category in enumerate(CATEGORIES[1:], 1):
        assert re.search(rf"^### {number}\. {category}$", guide, re.M), category
        assert re.search(rf"^\| {number} \| `{category}` \|", guide, re.M), category
    assert CATEGORIES == ("passed", "empty_output", "special_token_leak", "format_wrapper",
                          "irrelevant_natural_language", "suffix_duplication", "redundant_extra_code",
                          "syntax_error", "timeout_or_runtime_error", "functional_mismatch")


def test_first_match_wins():
    # a leak inside a fenced answer: the leak is the upstream cause
    assert label("```python\n        total += x\n```<|im_end|>\n", "syntax_error") == "special_token_leak"
    # a fenced answer that also repeats the suffix: the wrapper is judged first
    assert label("```python\n        total += x\n    return total\n```\n", "syntax_error") == "format_wrapper"
    # redundant code that breaks the syntax is redundant code, not a syntax error
    assert label("def add_all(xs):\n  total = 0\n", "syntax_error") == "redundant_extra_code"
    # a runtime status does not override a shape problem
    assert label("        total += x\n    return total\n", "error") == "suffix_duplication"


def test_status_fallback_and_missing_metrics():
    assert classify({"passed": True}, None, {}) == "passed"
    assert classify({"passed": False, "status": "timeout"}, None, {}) == "timeout_or_runtime_error"
    assert classify({"passed": False, "status": "syntax_error"}, None, {"parses": None}) == "syntax_error"
    assert classify({}, {"passed": False, "status": "failed"}, {}) == "functional_mismatch"
    assert classify({"passed": None}, None, {"empty": np.True_}) == "empty_output"


def test_classify_frame_and_failure_table():
    texts = {"a": ["        total += x\n", "", "        total -= x\n", ""],
             "b": ["        total += x\n", "        total += x\n", "        total += x\n", "        total += x\n"]}
    rows = []
    for model, outs in texts.items():
        for i, text in enumerate(outs):
            ok = text == "        total += x\n"
            rows.append({"model": model, "task_id": f"T/{i}", "passed": ok, "status": "passed" if ok else "failed",
                         **compute_metrics({"completion": text}, TASK)})
    frame = pd.DataFrame(rows)
    frame["category"] = classify_frame(frame)
    assert frame["category"].tolist()[:4] == ["passed", "empty_output", "functional_mismatch", "empty_output"]
    table = failure_table(frame, by=["model"])
    assert len(table) == 2 * (len(CATEGORIES) - 1)
    a = table[table["model"] == "a"].set_index("category")
    assert a.loc["empty_output", "n"] == 2 and a.loc["empty_output", "share"] == pytest.approx(2 / 3)
    assert a.loc["functional_mismatch", "share"] == pytest.approx(1 / 3) and a.loc["syntax_error", "n"] == 0
    assert table[table["model"] == "b"]["share"].isna().all()  # b has no failure
    assert failure_table(frame)["n"].sum() == 3


def test_cohen_kappa_hand_value_and_statsmodels():
    from statsmodels.stats.inter_rater import cohens_kappa

    # 2x2: agree 20 (yes) + 15 (no), disagree 5 + 10: p_o = 0.7, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5 -> 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    rng = np.random.default_rng(5)
    cats = list(CATEGORIES[1:])
    for _ in range(5):
        x = rng.choice(cats, 60)
        y = np.where(rng.random(60) < 0.6, x, rng.choice(cats, 60))
        labels = sorted(set(x) | set(y))
        table = np.array([[np.sum((x == i) & (y == j)) for j in labels] for i in labels])
        assert cohen_kappa(x, y) == pytest.approx(cohens_kappa(table).kappa)
    assert cohen_kappa(["a", "b"], ["a", "b"]) == 1.0
    assert math.isnan(cohen_kappa(["a", "a"], ["a", "a"]))
    with pytest.raises(ValueError):
        cohen_kappa(["a"], ["a", "b"])


def test_classify_reads_a_sandbox_failure_through_its_detail():
    # The sandbox reports every exception as `failed`; the detail says which (see taxonomy_status).
    failed = {"passed": False, "status": "failed"}
    assert classify({}, {**failed, "detail": "SyntaxError: invalid syntax"}, {"parses": None}) == "syntax_error"
    assert classify({}, {**failed, "detail": "NameError: name 'x' is not defined"}, {}) == \
        "timeout_or_runtime_error"
    assert classify({**failed, "detail": "AssertionError"}, None, {}) == "functional_mismatch"
