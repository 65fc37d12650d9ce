"""The behavioural metrics themselves, one pure function each: `fn(sample, task, passed)`.

Registered, with their kinds, in tuningtax.metrics (whose docstring defines each one). The text a metric
reads is `output_text(sample)`; fences, sentinels and compiling come from tuningtax.text.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from difflib import SequenceMatcher
from typing import Any

from tuningtax.metrics.markers import code_token_share, indent, nl_markers
from tuningtax.tasks.schema import Task
from tuningtax.text import compiles, fenced_blocks, find_sentinel, is_fence, nonblank, pick_code_block, split_lines

LOW_CODE_TOKEN_RATIO = 0.40
PREFIX_TAIL_LINES = 3


def output_text(sample: Mapping[str, Any]) -> str:
    text = sample.get("completion")
    if text is None:
        text = sample.get("raw_output")
    return text if isinstance(text, str) else ""



_DEF_RE = re.compile(r"^[ \t]*(?:async[ \t]+)?(def|class)[ \t]+([A-Za-z_]\w*)", re.M)


def _defs(code: str) -> Counter:
    return Counter(_DEF_RE.findall(code))


def _splice(task: Task, text: str) -> str:
    return text if task.mode == "command" else task.prompt + text + task.suffix


def _first_nonblank(text: str) -> str | None:
    return next(iter(nonblank(split_lines(text))), None)


def _unwrapped(text: str) -> str:
    """The code a wrapper surrounds: the preferred fenced block, else the text minus marker lines."""
    block = pick_code_block(fenced_blocks(text))
    if block is not None:
        return block.content
    lines = split_lines(text)
    drop = {i for i, _ in nl_markers(text)}
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)



def empty(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool:
    return not output_text(sample).strip()


def comment_only(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool:
    code = nonblank(split_lines(output_text(sample)))
    return bool(code) and all(line.lstrip().startswith("#") for line in code)


def code_token_ratio(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> float:
    return code_token_share(output_text(sample))


def code_token_ratio_low(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool:
    return code_token_share(output_text(sample)) < LOW_CODE_TOKEN_RATIO


def nl_marker_count(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> int:
    return len(nl_markers(output_text(sample)))


def nl_marker(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool:
    return bool(nl_markers(output_text(sample)))


def extra_defs(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> int | None:
    if task.mode == "command":
        return None
    return sum((_defs(output_text(sample)) - _defs(task.canonical_solution)).values())


def extra_def(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool | None:
    n = extra_defs(sample, task, passed)
    return None if n is None else n > 0


def special_token_leak(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool:
    return find_sentinel(output_text(sample)) >= 0


def markdown_fence(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool:
    return any(is_fence(line) for line in split_lines(output_text(sample)))


def unwrapped_parses(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool | None:
    text = output_text(sample)
    if not (markdown_fence(sample, task) or nl_markers(text)):
        return None
    code = _unwrapped(text)
    return bool(code.strip()) and compiles(_splice(task, code))


def suffix_copy(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool | None:
    first = _first_nonblank(task.suffix)
    if task.mode == "command" or first is None or not re.search(r"[A-Za-z0-9]", first):
        return None
    target = first.strip()

    def count(code: str) -> int:
        return sum(line.strip() == target for line in split_lines(code))
    return count(output_text(sample)) > count(task.canonical_solution)


def prefix_reemission(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool | None:
    if task.mode == "command":
        return None
    text, ref = output_text(sample), task.canonical_solution
    ep = task.entry_point

    def defines_entry(code: str) -> bool:
        return bool(ep) and ("def", ep) in _defs(code)
    if defines_entry(task.prompt) and defines_entry(text) and not defines_entry(ref):
        return True
    prompt_lines = split_lines(task.prompt)
    tail = prompt_lines[-1] if prompt_lines else ""
    if tail.strip():  # the hole continues a line: re-emission starts with that unfinished line
        head = tail.lstrip()
        return text.lstrip().startswith(head) and not ref.lstrip().startswith(head)
    first, ref_first = _first_nonblank(text), _first_nonblank(ref)
    if first is None or not re.search(r"[A-Za-z0-9]", first):
        return False
    recent = {line.strip() for line in nonblank(prompt_lines)[-PREFIX_TAIL_LINES:]}
    return first.strip() in recent and (ref_first is None or ref_first.strip() != first.strip())


def over_generation(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool:
    n_ref = len(nonblank(split_lines(task.canonical_solution)))
    slack = max(2, math.ceil(n_ref / 2))
    return (len(nonblank(split_lines(output_text(sample)))) > n_ref + slack
            or suffix_copy(sample, task, passed) is True)


def length_ratio(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> float | None:
    if not task.canonical_solution:
        return None
    return len(output_text(sample)) / len(task.canonical_solution)


def parses(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool:
    return compiles(_splice(task, output_text(sample)))


def edit_similarity(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> float:
    return SequenceMatcher(None, output_text(sample), task.canonical_solution, autojunk=False).ratio()


def indent_match(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool | None:
    first, ref_first = _first_nonblank(output_text(sample)), _first_nonblank(task.canonical_solution)
    if task.mode != "flow" or first is None or ref_first is None:
        return None
    return indent(first) == indent(ref_first)


def stop_reason(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> str | None:
    value = sample.get("stop_reason")
    return None if value is None else str(value)

