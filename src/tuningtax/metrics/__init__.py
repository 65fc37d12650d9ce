"""Behavioural metrics of generated code: the study's "Table 7" (with its two bugs fixed) and more.

Each metric is a pure function `fn(sample, task, passed) -> bool | float | int | str | None`, registered
below (one entry: name, kind, function; METRICS and METRIC_KINDS are views of that one list) with a kind (flag: bool, aggregated as a rate; value: float, aggregated as a mean;
count: int, mean; category: str, aggregated as shares). None means "not applicable" (a suffix copy when the
task has no suffix) and is left out of rates and means.

Which text: `sample["completion"]` (the text spliced into the program and executed at that post-processing
level), or `sample["raw_output"]` when the record has no completion yet. At the `raw` level both are the
model's own output, so model behaviour is read from raw-level rows; another level's rows explain that
level's scored failures. Nothing is stripped: indentation is part of a middle.

Definitions and decisions
- code_token_ratio: Python's `tokenize` on the text, after a prelude that opens every indentation level the
  text uses (a middle cut from a function body may start deep and dedent to levels it never opened; that
  is not a tokenize error; the prelude's tokens are not counted). Layout tokens (NEWLINE, NL, INDENT, DEDENT,
  ENCODING, ENDMARKER) and whitespace-only ERRORTOKENs are not counted. Code-like: NAME (keywords included),
  NUMBER, STRING, OP and the f-string parts; not code-like: COMMENT and any other ERRORTOKEN (`$`, `?`,
  backticks, stray quotes such as the apostrophe in "Here's", emoji). Ratio = code-like / counted; 0 when
  nothing is counted or tokenize fails (IndentationError, unterminated triple-quoted string), as in the
  study; an unclosed bracket at the end is not a failure (the tokens read so far count), because a middle
  may open a bracket that the suffix closes. `code_token_ratio_low` is ratio < 0.40. The measure is
  lexical: English made only of words lexes as NAMEs; prose is what the natural-language markers measure.
- natural-language markers (count of lines; `nl_marker` = at least one). Only lines outside fenced code
  blocks and outside multi-line strings are judged, and a line that compiles as Python (alone, or as a
  block header) is never a marker. Kinds, first match per line:
  heading: `#{1,6} text` at column 0 whose next non-blank line is markdown or prose (a fence, a bullet,
    a sentence, a bold label, inline code) — never by its `#`s alone. In Python `# text` is a comment
    and `## text` is too; what tells a heading apart is that prose or a fence follows it, not code.
    Indented `#` lines are never headings (chatter is not indented, comments in bodies are), and a `#`
    line followed by code, by another `#` line or by nothing is a comment. This fixes the study's bug of
    counting `# comment` lines in code as markdown headings.
  lead_in: "Here is", "Here's", "This function", "The code", "Explanation", "Note", "Sure", ... at col 0.
  bullet: `- text`, `* text`, `1. text` (up to 3 spaces in) that is not Python (`- x` is an expression).
  prose: a sentence at column 0 (a word, whitespace, another word) whose first word is no keyword.
- special_token_leak: any special token of any registered model family in the text (`tuningtax.text.SENTINELS`,
  derived from models/families.py, the same strings post-processing cuts at): Qwen's `<|...|>`, DeepSeek's
  full-width `<｜...｜>` (U+FF5C; the study missed these), StarCoder's `<fim_prefix>` `<file_sep>` ...,
  CodeLlama's `<PRE>` `<SUF>` `<MID>` `<EOT>` and `</s>`, Gemma's `<start_of_turn>` `<end_of_turn>` `<eos>`.
- extra_defs: `def`/`class` statements in the text beyond those in the reference (multiset difference of
  (keyword, name)); None for command tasks, whose answers may legitimately add helpers.
- suffix_copy: the text holds the suffix's first non-blank line (compared stripped) more often than the
  reference middle does; None without a suffix or when that line has no letter or digit (`)`, `]`).
- prefix_reemission: the text repeats the end of the prefix: it defines the prompt's entry point again,
  or (hole mid-line) starts with the prefix's unfinished line, or (hole at a line start) its first
  non-blank line equals one of the prefix's last 3 non-blank lines; in each case only when the reference
  does not do the same. None for command tasks (their answers are meant to contain the signature).
- over_generation: more non-blank lines than the reference + max(2, half the reference's), or a suffix copy
  (the text ran past the point where the suffix starts).
- length_ratio: characters of the text / characters of the reference (not a rate: 1 = same length).
- markdown_fence: a ``` or ~~~ fence line (tuningtax.text's fences, the ones code-extract extracts). unwrapped_parses: when the text has a fence or a marker, whether
  the code inside (the first python/untagged fenced block, else the text without marker lines) is
  non-blank and makes the program compile: the wrapper, not the code, was the problem.
- parses: the spliced program prompt + text + suffix (flow, completion) or the text (command) compiles.
  `compile()` rather than `ast.parse()`: it also rejects `return` outside a function, which would fail at
  run time as a SyntaxError all the same.
- edit_similarity: difflib.SequenceMatcher(autojunk=False).ratio() of text and reference, in [0, 1].
- indent_match (flow): the leading whitespace of the first non-blank line equals the reference's.
- stop_reason: the sample's `stop_reason` field as written by generation (category).
- empty: only whitespace. comment_only: every non-blank line is a `#` comment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuningtax.metrics import fidelity
from tuningtax.tasks.schema import Task

MetricValue = bool | float | int | str | None
MetricFn = Callable[[Mapping[str, Any], Task, "bool | None"], MetricValue]
FLAG, VALUE, COUNT, CATEGORY = "flag", "value", "count", "category"
KINDS = (FLAG, VALUE, COUNT, CATEGORY)


@dataclass(frozen=True)
class Metric:
    name: str  # its column in samples.jsonl and the tables
    kind: str  # one of KINDS: how it is aggregated
    compute: MetricFn


REGISTRY: tuple[Metric, ...] = (
    Metric("empty", FLAG, fidelity.empty),
    Metric("comment_only", FLAG, fidelity.comment_only),
    Metric("code_token_ratio", VALUE, fidelity.code_token_ratio),
    Metric("code_token_ratio_low", FLAG, fidelity.code_token_ratio_low),
    Metric("nl_marker_count", COUNT, fidelity.nl_marker_count),
    Metric("nl_marker", FLAG, fidelity.nl_marker),
    Metric("extra_defs", COUNT, fidelity.extra_defs),
    Metric("extra_def", FLAG, fidelity.extra_def),
    Metric("special_token_leak", FLAG, fidelity.special_token_leak),
    Metric("markdown_fence", FLAG, fidelity.markdown_fence),
    Metric("unwrapped_parses", FLAG, fidelity.unwrapped_parses),
    Metric("suffix_copy", FLAG, fidelity.suffix_copy),
    Metric("prefix_reemission", FLAG, fidelity.prefix_reemission),
    Metric("over_generation", FLAG, fidelity.over_generation),
    Metric("length_ratio", VALUE, fidelity.length_ratio),
    Metric("parses", FLAG, fidelity.parses),
    Metric("edit_similarity", VALUE, fidelity.edit_similarity),
    Metric("indent_match", FLAG, fidelity.indent_match),
    Metric("stop_reason", CATEGORY, fidelity.stop_reason),
)

METRICS: dict[str, MetricFn] = {m.name: m.compute for m in REGISTRY}
METRIC_KINDS: dict[str, str] = {m.name: m.kind for m in REGISTRY}


def compute_metrics(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> dict[str, MetricValue]:
    if passed is None and isinstance(sample.get("passed"), (bool, np.bool_)):
        passed = bool(sample["passed"])
    return {name: fn(sample, task, passed) for name, fn in METRICS.items()}
