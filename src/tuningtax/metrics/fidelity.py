"""Behavioural metrics of generated code: the study's "Table 7" (with its two bugs fixed) and more.

Each metric is a pure function `fn(sample, task, passed) -> bool | float | int | str | None`, registered in
METRICS with a kind in METRIC_KINDS (flag: bool, aggregated as a rate; value: float, aggregated as a mean;
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
- special_token_leak: any family's special tokens in the text: `<|...|>` (Qwen, ChatML, CodeGemma,
  DeepSeek's `<|EOT|>`), DeepSeek's full-width `<｜...｜>` (U+FF5C, e.g. `<｜fim▁begin｜>`,
  `<｜end▁of▁sentence｜>`; the study missed these), StarCoder `<fim_prefix>` `<file_sep>` `<repo_name>` ...,
  CodeLlama `<PRE>` `<SUF>` `<MID>` `<EOT>` and Llama's `</s>`, Gemma `<start_of_turn>` `<end_of_turn>`
  `<eos>` `<bos>` `<pad>`.
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
- markdown_fence: a ``` or ~~~ fence line. unwrapped_parses: when the text has a fence or a marker, whether
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

import io
import keyword
import math
import re
import tokenize
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from tuningtax.errors import UserError
from tuningtax.tasks.schema import Task

MetricValue = bool | float | int | str | None
MetricFn = Callable[[Mapping[str, Any], Task, "bool | None"], MetricValue]

LOW_CODE_TOKEN_RATIO = 0.40
PREFIX_TAIL_LINES = 3
FLAG, VALUE, COUNT, CATEGORY = "flag", "value", "count", "category"

METRICS: dict[str, MetricFn] = {}
METRIC_KINDS: dict[str, str] = {}


def _metric(kind: str) -> Callable[[MetricFn], MetricFn]:
    def register(fn: MetricFn) -> MetricFn:
        METRICS[fn.__name__] = fn
        METRIC_KINDS[fn.__name__] = kind
        return fn
    return register


# ---------------------------------------------------------------------------------------------- text

def output_text(sample: Mapping[str, Any]) -> str:
    text = sample.get("completion")
    if text is None:
        text = sample.get("raw_output")
    return text if isinstance(text, str) else ""


def _lines(text: str) -> list[str]:
    """Lines without their "\\n"; only "\\n" splits (str.splitlines also splits on \\f, \\u2028 ...)."""
    return text.split("\n") if text else []


def _nonblank(lines: Iterable[str]) -> list[str]:
    return [line for line in lines if line.strip()]


@lru_cache(maxsize=8192)
def _compiles(source: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning on odd escapes is not a failure
        try:
            compile(source, "<candidate>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            return False
    return True


def _is_python_line(line: str) -> bool:
    code = line.strip()
    return bool(code) and (_compiles(code + "\n") or _compiles(code + "\n    pass\n"))


_FENCE_RE = re.compile(r"^[ \t]{0,3}(```+|~~~+)[ \t]*([^\s`]*)")
_CLOSE_RE = re.compile(r"^[ \t]{0,3}(```+|~~~+)[ \t]*$")
_PYTHON_TAGS = frozenset({"python", "py", "python3", "py3"})


def _fences(lines: Sequence[str]) -> list[tuple[int, int, str]]:
    """(opening line, closing line or len(lines) when unclosed, tag) of each fenced block."""
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE_RE.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not _CLOSE_RE.match(lines[j]):
            j += 1
        blocks.append((i, j, m.group(2).lower()))
        i = j + 1
    return blocks


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


@lru_cache(maxsize=8192)
def _tokens(text: str) -> tuple[tuple[tokenize.TokenInfo, ...], str | None]:
    """Tokens of `text` (rows 1-based within it) and the error that stopped tokenizing (None when none).

    A middle cut from a function body may start deep and dedent to a level it never opened (12 spaces,
    then 8, then 4), which tokenize rejects although the program it belongs to is fine. So a prelude of
    one line per distinct indentation of the text, shallowest first, opens every level beforehand; its
    tokens are dropped. tokenize checks only indentation consistency, not grammar, so `_` lines suffice."""
    widths: dict[int, str] = {}
    for line in _lines(text):
        if line.strip():
            widths.setdefault(len(_indent(line).expandtabs(8)), _indent(line))  # tokenize's tab size
    prelude = [widths[w] + "_\n" for w in sorted(widths) if w > 0]
    skip = len(prelude)
    out: list[tokenize.TokenInfo] = []
    error = None
    try:
        for tok in tokenize.generate_tokens(io.StringIO("".join(prelude) + text).readline):
            if tok.start[0] > skip:
                out.append(tok._replace(start=(tok.start[0] - skip, tok.start[1]),
                                        end=(tok.end[0] - skip, tok.end[1])))
    except tokenize.TokenError as err:
        error = str(err.args[0])
    except (IndentationError, SyntaxError) as err:
        error = f"{type(err).__name__}: {err.msg}"
    return tuple(out), error


def _string_rows(text: str) -> set[int]:
    """0-based rows inside multi-line strings (after the row where the string starts)."""
    rows: set[int] = set()
    for tok in _tokens(text)[0]:
        if tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
            rows.update(range(tok.start[0], tok.end[0]))  # tokenize rows are 1-based: start row excluded
    return rows


def _prose_rows(text: str) -> set[int]:
    """Rows the natural-language rules may judge: outside fences and multi-line strings."""
    lines = _lines(text)
    masked = _string_rows(text)
    for start, end, _ in _fences(lines):
        masked.update(range(start, min(end, len(lines) - 1) + 1))
    return {i for i in range(len(lines)) if i not in masked}


# ---------------------------------------------------------------------------------------------- markers

_ATX_RE = re.compile(r"^#{1,6}[ \t]+\S")
_LEAD_IN_RE = re.compile(
    r"^[*_>\s]{0,4}(?:here is|here's|here are|this function|this code|this implementation|this solution|"
    r"this will|the function|the code|the above|the following|below is|explanation|note|sure|certainly|"
    r"i have|i've|i'll|let me|let's|to solve|in this|we can|you can)\b", re.IGNORECASE)
_BULLET_RE = re.compile(r"^[ ]{0,3}(?:[-*+]|\d{1,3}[.)])[ \t]+\S")
_SENTENCE_RE = re.compile(r"^(?:\*\*)?([A-Za-z][\w'’]*)(?:\*\*)?[,:;!.?]?[ \t]+[A-Za-z`'\"(*]")
_LABEL_RE = re.compile(r"^\**[A-Z][\w'’ ]{0,30}\**[!.:]\**[ \t]*$")  # "Sure!", "**Explanation:**"
_KEYWORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)


def _marker_kind(line: str) -> str | None:
    """The marker kind of one line, ignoring headings (which need the next line)."""
    if not line.strip() or line.lstrip().startswith("#") or _is_python_line(line):
        return None
    if line[0] not in " \t" and _LEAD_IN_RE.match(line):
        return "lead_in"
    if _BULLET_RE.match(line):
        return "bullet"
    if line.startswith("`") and not _FENCE_RE.match(line):
        return "prose"  # Python never starts a line with a backtick
    m = _SENTENCE_RE.match(line)
    if (m and m.group(1) not in _KEYWORDS) or _LABEL_RE.match(line):
        return "prose"
    return None


def _is_markdown_context(line: str) -> bool:
    return bool(_FENCE_RE.match(line)) or _marker_kind(line) is not None


@lru_cache(maxsize=8192)
def nl_markers(text: str) -> tuple[tuple[int, str], ...]:
    """(0-based line, kind) of every natural-language marker line; see the module docstring."""
    lines = _lines(text)
    judged = _prose_rows(text)
    found = []
    for i in sorted(judged):
        line = lines[i]
        if _ATX_RE.match(line):
            nxt = next((lines[j] for j in range(i + 1, len(lines)) if lines[j].strip()), None)
            if nxt is not None and not _ATX_RE.match(nxt) and _is_markdown_context(nxt):
                found.append((i, "heading"))
            continue
        kind = _marker_kind(line)
        if kind:
            found.append((i, kind))
    return tuple(found)


def is_markdown_heading(text: str, line_no: int) -> bool:
    return (line_no, "heading") in nl_markers(text)


# ---------------------------------------------------------------------------------------------- tokens

# One alternative per family; DeepSeek's bars are U+FF5C (full width) and its separators U+2581.
SPECIAL_TOKEN_RE = re.compile(
    r"<[|｜][^\s<>|｜]{1,64}[|｜]>"  # <|fim_prefix|> <|endoftext|> <|im_end|> <|file_separator|> <|EOT|> <｜fim▁begin｜>
    r"|<(?:fim_(?:prefix|suffix|middle|pad)|file_sep|repo_name|reponame|filename|gh_stars"
    r"|issue_(?:start|comment|closed)|jupyter_(?:start|text|code|output|script)|empty_output"
    r"|commit_(?:before|msg|after))>"  # StarCoder / StarCoder2
    r"|<(?:PRE|SUF|MID|EOT)>|</s>"  # CodeLlama, Llama EOS
    r"|<(?:start_of_turn|end_of_turn|eos|bos|pad)>"  # Gemma / CodeGemma
)

_CODE_TOKEN_TYPES = frozenset(
    t for t in (tokenize.NAME, tokenize.NUMBER, tokenize.STRING, tokenize.OP,
                getattr(tokenize, "FSTRING_START", None), getattr(tokenize, "FSTRING_MIDDLE", None),
                getattr(tokenize, "FSTRING_END", None)) if t is not None)
_LAYOUT_TOKEN_TYPES = frozenset({tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
                                 tokenize.ENCODING, tokenize.ENDMARKER})


@lru_cache(maxsize=8192)
def code_token_share(text: str) -> float:
    tokens, error = _tokens(text)
    if error is not None and error != "EOF in multi-line statement":
        return 0.0
    counted = [t for t in tokens if t.type not in _LAYOUT_TOKEN_TYPES
               and not (t.type == tokenize.ERRORTOKEN and not t.string.strip())]
    if not counted:
        return 0.0
    return sum(t.type in _CODE_TOKEN_TYPES for t in counted) / len(counted)


_DEF_RE = re.compile(r"^[ \t]*(?:async[ \t]+)?(def|class)[ \t]+([A-Za-z_]\w*)", re.M)


def _defs(code: str) -> Counter:
    return Counter(_DEF_RE.findall(code))


def _splice(task: Task, text: str) -> str:
    return text if task.mode == "command" else task.prompt + text + task.suffix


def _first_nonblank(text: str) -> str | None:
    return next(iter(_nonblank(_lines(text))), None)


def _unwrapped(text: str) -> str:
    """The code a wrapper surrounds: the preferred fenced block, else the text minus marker lines."""
    lines = _lines(text)
    blocks = _fences(lines)
    if blocks:
        for wanted in (lambda tag: tag in _PYTHON_TAGS, lambda tag: tag == "", lambda tag: True):
            for start, end, tag in blocks:
                if wanted(tag):
                    return "".join(line + "\n" for line in lines[start + 1:end])
    drop = {i for i, _ in nl_markers(text)}
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)


# ---------------------------------------------------------------------------------------------- metrics

@_metric(FLAG)
def empty(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool:
    return not output_text(sample).strip()


@_metric(FLAG)
def comment_only(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool:
    code = _nonblank(_lines(output_text(sample)))
    return bool(code) and all(line.lstrip().startswith("#") for line in code)


@_metric(VALUE)
def code_token_ratio(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> float:
    return code_token_share(output_text(sample))


@_metric(FLAG)
def code_token_ratio_low(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool:
    return code_token_share(output_text(sample)) < LOW_CODE_TOKEN_RATIO


@_metric(COUNT)
def nl_marker_count(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> int:
    return len(nl_markers(output_text(sample)))


@_metric(FLAG)
def nl_marker(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool:
    return bool(nl_markers(output_text(sample)))


@_metric(COUNT)
def extra_defs(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> int | None:
    if task.mode == "command":
        return None
    return sum((_defs(output_text(sample)) - _defs(task.canonical_solution)).values())


@_metric(FLAG)
def extra_def(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool | None:
    n = extra_defs(sample, task, passed)
    return None if n is None else n > 0


@_metric(FLAG)
def special_token_leak(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool:
    return SPECIAL_TOKEN_RE.search(output_text(sample)) is not None


@_metric(FLAG)
def markdown_fence(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool:
    return any(_FENCE_RE.match(line) for line in _lines(output_text(sample)))


@_metric(FLAG)
def unwrapped_parses(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool | None:
    text = output_text(sample)
    if not (markdown_fence(sample, task) or nl_markers(text)):
        return None
    code = _unwrapped(text)
    return bool(code.strip()) and _compiles(_splice(task, code))


@_metric(FLAG)
def suffix_copy(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool | None:
    first = _first_nonblank(task.suffix)
    if task.mode == "command" or first is None or not re.search(r"[A-Za-z0-9]", first):
        return None
    target = first.strip()

    def count(code: str) -> int:
        return sum(line.strip() == target for line in _lines(code))
    return count(output_text(sample)) > count(task.canonical_solution)


@_metric(FLAG)
def prefix_reemission(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool | None:
    if task.mode == "command":
        return None
    text, ref = output_text(sample), task.canonical_solution
    ep = task.entry_point

    def defines_entry(code: str) -> bool:
        return bool(ep) and ("def", ep) in _defs(code)
    if defines_entry(task.prompt) and defines_entry(text) and not defines_entry(ref):
        return True
    prompt_lines = _lines(task.prompt)
    tail = prompt_lines[-1] if prompt_lines else ""
    if tail.strip():  # the hole continues a line: re-emission starts with that unfinished line
        head = tail.lstrip()
        return text.lstrip().startswith(head) and not ref.lstrip().startswith(head)
    first, ref_first = _first_nonblank(text), _first_nonblank(ref)
    if first is None or not re.search(r"[A-Za-z0-9]", first):
        return False
    recent = {line.strip() for line in _nonblank(prompt_lines)[-PREFIX_TAIL_LINES:]}
    return first.strip() in recent and (ref_first is None or ref_first.strip() != first.strip())


@_metric(FLAG)
def over_generation(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool:
    n_ref = len(_nonblank(_lines(task.canonical_solution)))
    slack = max(2, math.ceil(n_ref / 2))
    return (len(_nonblank(_lines(output_text(sample)))) > n_ref + slack
            or suffix_copy(sample, task, passed) is True)


@_metric(VALUE)
def length_ratio(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> float | None:
    if not task.canonical_solution:
        return None
    return len(output_text(sample)) / len(task.canonical_solution)


@_metric(FLAG)
def parses(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool:
    return _compiles(_splice(task, output_text(sample)))


@_metric(VALUE)
def edit_similarity(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> float:
    return SequenceMatcher(None, output_text(sample), task.canonical_solution, autojunk=False).ratio()


@_metric(FLAG)
def indent_match(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> bool | None:
    first, ref_first = _first_nonblank(output_text(sample)), _first_nonblank(task.canonical_solution)
    if task.mode != "flow" or first is None or ref_first is None:
        return None
    return _indent(first) == _indent(ref_first)


@_metric(CATEGORY)
def stop_reason(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> str | None:
    value = sample.get("stop_reason")
    return None if value is None else str(value)


# ---------------------------------------------------------------------------------------------- tables

def compute_metrics(sample: Mapping[str, Any], task: Task, passed: bool | None = None) -> dict[str, MetricValue]:
    if passed is None and isinstance(sample.get("passed"), (bool, np.bool_)):
        passed = bool(sample["passed"])
    return {name: fn(sample, task, passed) for name, fn in METRICS.items()}


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
