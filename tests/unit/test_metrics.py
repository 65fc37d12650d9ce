"""Behavioural metrics on crafted outputs, including regression tests for the study's two bugs."""

from __future__ import annotations

import math
from difflib import SequenceMatcher

import pandas as pd
import pytest

from tuningtax.errors import UserError
from tuningtax.metrics import METRIC_KINDS, METRICS, compute_metrics
from tuningtax.metrics.aggregate import aggregate_metrics, metrics_frame
from tuningtax.metrics.markers import code_token_share, is_markdown_heading, nl_markers
from tuningtax.tasks.schema import Task

PREFIX = "def add_all(xs):\n    total = 0\n    for x in xs:\n"
FLOW = Task("F/0", "toy-infilling", "flow", PREFIX, "    return total\n", "        total += x\n",
            "def check(f):\n    assert f([1, 2]) == 3\n", "add_all", "", "Toy/0")
COMMAND = Task("C/0", "toy-command", "command", "def add_all(xs):\n", "",
               "def add_all(xs):\n    return sum(xs)\n", "", "add_all", "Sum a list.", "Toy/0")


def m(name: str, text: str, task: Task = FLOW, **extra):
    return METRICS[name]({"completion": text, **extra}, task, None)


# ---------------------------------------------------------------------------------------------- headings

@pytest.mark.parametrize("text", [
    "# comment\nx = 1\n",                                  # column 0 comment followed by code
    "        # increment the counter\n        total += x\n",
    "    # increment the counter\n",
    "x = 1\n# comment\n",                                  # trailing comment: nothing follows it
    "# first\n# second\nx = 1\n",                          # a block of comments
    "## helpers\ndef helper():\n    return 1\n",           # '##' comments exist in Python too
    "```python\n# Explanation\nThe code below\n```\n",     # inside a fence everything is code
])
def test_python_comments_are_not_markdown_headings(text):
    assert all(kind != "heading" for _, kind in nl_markers(text))


@pytest.mark.parametrize("text", [
    "## Explanation\nThe loop adds each element.\n",
    "### Step 1: sum\n```python\n        total += x\n```\n",
    "# Solution\n\nHere is the code:\n",
    "## Notes\n- the total starts at 0\n",
])
def test_markdown_headings_are_found(text):
    assert is_markdown_heading(text, 0)
    assert m("nl_marker", text) is True


def test_natural_language_marker_kinds():
    text = ("Sure! Here's the fix:\n```python\n        total += x\n```\n- adds each element\n"
            "1. Loop over the list\nThe loop adds each element to the total.\n")
    assert [kind for _, kind in nl_markers(text)] == ["lead_in", "bullet", "bullet", "prose"]
    assert m("nl_marker_count", text) == 4
    # code lines that look a bit like prose or bullets are not markers
    assert nl_markers("- x\nprint(x)\nreturn total\nelse:\nnotes = 1\n") == ()
    # prose inside a multi-line string is not a marker
    assert nl_markers('doc = """\nThis function adds numbers.\n"""\n') == ()


# ---------------------------------------------------------------------------------------------- tokens

@pytest.mark.parametrize("leak", [
    "<|endoftext|>", "<|im_end|>", "<|fim_middle|>", "<|file_sep|>", "<|repo_name|>",  # Qwen
    "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", "<｜end▁of▁sentence｜>", "<|EOT|>",  # DeepSeek
    "<fim_prefix>", "<fim_middle>", "<file_sep>", "<repo_name>", "<filename>",  # StarCoder
    "<PRE>", "<SUF>", "<MID>", "<EOT>", "</s>",  # CodeLlama
    "<|file_separator|>", "<end_of_turn>", "<start_of_turn>", "<eos>",  # CodeGemma
])
def test_special_tokens_of_every_family(leak):
    assert m("special_token_leak", f"        total += x\n{leak}def main():\n") is True


def test_deepseek_full_width_bars_regression():
    # the study's patterns used ASCII '|' and missed DeepSeek's U+FF5C bars
    assert "\uff5c" in "<｜end▁of▁sentence｜>"
    assert m("special_token_leak", "        total += x<｜end▁of▁sentence｜>") is True


@pytest.mark.parametrize("text", ["x = a < b | c > d\n", 's = "<div>"\n', "if a<b and c>d:\n    pass\n",
                                  "y = x<|z\n"])
def test_no_special_token_in_ordinary_code(text):
    assert m("special_token_leak", text) is False


def test_code_token_ratio_definition():
    assert code_token_share("        total += x\n") == 1.0
    assert code_token_share("x = 1  # note\n") == pytest.approx(3 / 4)  # x = 1 are code, the comment is not
    assert code_token_share("What? $5\n") == pytest.approx(2 / 4)  # What, 5 vs ?, $ (spaces not counted)
    assert code_token_share("") == 0.0
    assert code_token_share("    # only a comment\n") == 0.0
    assert code_token_share('x = """unterminated\n') == 0.0  # tokenize fails -> 0, as in the study
    assert code_token_share("foo(a,\n") == 1.0  # an unclosed bracket the suffix may close is no failure
    # a middle that starts deep and dedents to levels it never opened tokenizes
    assert code_token_share("            a += 1\n        elif b:\n            a -= 1\n    return a\n") == 1.0
    assert m("code_token_ratio_low", "    # only a comment\n") is True
    assert m("code_token_ratio_low", "        total += x\n") is False


# ---------------------------------------------------------------------------------------------- hole fidelity

def test_extra_defs():
    assert m("extra_defs", "        total += x\n\ndef helper(y):\n    return y\n\nclass A:\n    pass\n") == 2
    assert m("extra_def", "        total += x\n") is False
    assert m("extra_defs", "def add_all(xs):\n    return sum(xs)\n") == 1
    assert m("extra_defs", "def add_all(xs):\n    return 1\ndef g():\n    pass\n", COMMAND) is None


def test_suffix_copy():
    assert m("suffix_copy", "        total += x\n    return total\n") is True
    assert m("suffix_copy", "        total += x\n") is False
    assert m("suffix_copy", "anything", COMMAND) is None
    closing = Task("F/1", "t", "flow", "x = foo(\n", ")\n", "    1,\n", "", "", "", "s")
    assert m("suffix_copy", "    1,\n)\n", closing) is None  # a lone ')' says nothing
    repeats = Task("F/2", "t", "flow", "def f():\n", "    return 1\n", "    if g():\n        return 1\n",
                   "", "f", "", "s")
    assert m("suffix_copy", "    if g():\n        return 1\n", repeats) is False  # the reference has it too


def test_prefix_reemission():
    assert m("prefix_reemission", "def add_all(xs):\n    total = 0\n") is True
    assert m("prefix_reemission", "    for x in xs:\n        total += x\n") is True
    assert m("prefix_reemission", "        total += x\n") is False
    mid = Task("F/3", "t", "flow", "def f(x):\n    return ", "\n", "x + 1", "", "f", "", "s")
    assert m("prefix_reemission", "return x + 1", mid) is True
    assert m("prefix_reemission", "x + 1", mid) is False
    assert m("prefix_reemission", "def add_all(xs):\n    return sum(xs)\n", COMMAND) is None


def test_over_generation_and_length_ratio():
    assert m("over_generation", "        total += x\n        total += 0\n        pass\n") is False  # 3 <= 1 + 2
    assert m("over_generation", "        total += x\n" * 4) is True
    assert m("over_generation", "        total += x\n    return total\n") is True  # ran into the suffix
    assert m("length_ratio", "        total += x\n") == 1.0
    assert m("length_ratio", "x") == pytest.approx(1 / len("        total += x\n"))


def test_fences_parsing_and_indentation():
    fenced = "```python\n        total += x\n```\n"
    assert m("markdown_fence", fenced) is True and m("markdown_fence", "        total += x\n") is False
    assert m("unwrapped_parses", fenced) is True
    assert m("unwrapped_parses", "```python\n        total += (x\n```\n") is False
    assert m("unwrapped_parses", "        total += x\n") is None  # nothing to unwrap
    assert m("unwrapped_parses", "Here is the line:\n        total += x\n") is True
    assert m("parses", "        total += x\n") is True
    assert m("parses", fenced) is False
    assert m("parses", "    total += x\n") is False  # the for loop loses its body
    assert m("parses", "def add_all(xs):\n    return sum(xs)\n", COMMAND) is True
    assert m("parses", "return 1\n", COMMAND) is False  # compile() rejects what ast.parse() accepts
    assert m("indent_match", "\n        total += x\n") is True
    assert m("indent_match", "    total += x\n") is False
    assert m("indent_match", "") is None and m("indent_match", "x", COMMAND) is None


def test_edit_similarity_empty_comment_only_and_stop_reason():
    out = "        total = total + x\n"
    assert m("edit_similarity", "        total += x\n") == 1.0
    assert m("edit_similarity", out) == pytest.approx(
        SequenceMatcher(None, out, FLOW.canonical_solution, autojunk=False).ratio())
    assert 0.0 <= m("edit_similarity", "zzz") < 0.2
    assert m("empty", " \n\t\n") is True and m("empty", "x") is False
    assert m("comment_only", "  # a\n\n# b\n") is True and m("comment_only", "# a\nx = 1\n") is False
    assert m("comment_only", "") is False
    assert m("stop_reason", "x", stop_reason="max_new_tokens") == "max_new_tokens"
    assert m("stop_reason", "x") is None


def test_completion_is_judged_before_raw_output():
    sample = {"raw_output": "```python\n        total += x\n```", "completion": "        total += x\n"}
    assert METRICS["markdown_fence"](sample, FLOW, None) is False
    assert METRICS["markdown_fence"]({"raw_output": sample["raw_output"]}, FLOW, None) is True


def test_registry_kinds_and_compute_metrics():
    values = compute_metrics({"completion": "        total += x\n", "stop_reason": "stop_token:<|endoftext|>"},
                             FLOW)
    assert set(values) == set(METRICS) == set(METRIC_KINDS)
    for name, value in values.items():
        kind = METRIC_KINDS[name]
        assert value is None or isinstance(value, {"flag": bool, "value": float, "count": int,
                                                   "category": str}[kind]), name


def test_canonical_middles_look_clean():
    """No false positives on the reference middles of all 1033 single-line tasks."""
    from tuningtax.tasks.humaneval import single_line_tasks

    for task in single_line_tasks():
        v = compute_metrics({"completion": task.canonical_solution}, task)
        assert v["parses"] and v["indent_match"] and v["edit_similarity"] == 1.0, task.task_id
        assert not any(v[k] for k in ("nl_marker", "special_token_leak", "suffix_copy", "prefix_reemission",
                                      "over_generation", "extra_def", "markdown_fence", "empty")), task.task_id


# ---------------------------------------------------------------------------------------------- tables

def test_metrics_frame_and_aggregate():
    samples = [
        {"task_id": "F/0", "model": "a", "passed": True, "completion": "        total += x\n",
         "stop_reason": "stop_token:<|endoftext|>"},
        {"task_id": "F/0", "model": "a", "passed": False, "completion": "```python\n        total += x\n```\n",
         "stop_reason": "max_new_tokens"},
        {"task_id": "F/0", "model": "a", "passed": False, "completion": "", "stop_reason": "max_new_tokens"},
        {"task_id": "F/0", "model": "b", "passed": True, "completion": "        total += x\n",
         "stop_reason": "max_new_tokens"},
    ]
    frame = metrics_frame(samples, {"F/0": FLOW})
    assert "completion" not in frame.columns and frame["model"].tolist() == ["a", "a", "a", "b"]
    agg = aggregate_metrics(frame, by=["model"])
    assert agg[["model", "subset", "n"]].values.tolist() == [["a", "all", 3], ["a", "failed", 2],
                                                            ["b", "all", 1], ["b", "failed", 0]]
    a_all, a_failed = agg.iloc[0], agg.iloc[1]
    assert a_all["markdown_fence"] == pytest.approx(1 / 3) and a_failed["markdown_fence"] == pytest.approx(0.5)
    assert a_failed["empty"] == pytest.approx(0.5)
    assert a_all["stop_reason=max_new_tokens"] == pytest.approx(2 / 3)
    assert a_all["stop_reason=stop_token:<|endoftext|>"] == pytest.approx(1 / 3)
    # indent_match is not applicable to the empty output: the rate is over the two others
    assert a_all["indent_match"] == pytest.approx(1 / 2)
    assert math.isnan(agg.iloc[3]["parses"])  # no failed sample for model b
    rates = [c for c in agg.columns if METRIC_KINDS.get(c.split("=")[0]) in ("flag", "category")]
    rates += ["code_token_ratio", "edit_similarity"]
    values = agg[rates].stack().dropna()
    assert ((values >= 0) & (values <= 1)).all()
    overall = aggregate_metrics(frame)
    assert overall["n"].tolist() == [4, 2]
    with pytest.raises(UserError, match="unknown task"):
        metrics_frame([{"task_id": "nope", "completion": ""}], {"F/0": FLOW})


def test_aggregate_tolerates_missing_passed_values():
    frame = pd.DataFrame({"passed": [True, None, False], "empty": [False, True, True]})
    agg = aggregate_metrics(frame)
    assert agg["n"].tolist() == [3, 1] and agg["empty"].tolist() == pytest.approx([2 / 3, 1.0])
