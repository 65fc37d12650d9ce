"""Lexical evidence in model output: natural-language marker lines and the share of code-like tokens.

Read by the behavioural metrics (tuningtax.metrics) and, through them, by the failure taxonomy. Fences and
"does it compile" come from tuningtax.text, the rules post-processing uses too. Definitions are in the
metrics package docstring.
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize
from functools import lru_cache

from tuningtax.text import compiles, fenced_blocks, is_fence, split_lines


def _is_python_line(line: str) -> bool:
    code = line.strip()
    return bool(code) and (compiles(code + "\n") or compiles(code + "\n    pass\n"))


def indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


@lru_cache(maxsize=8192)
def _tokens(text: str) -> tuple[tuple[tokenize.TokenInfo, ...], str | None]:
    """Tokens of `text` (rows 1-based within it) and the error that stopped tokenizing (None when none).

    A middle cut from a function body may start deep and dedent to a level it never opened (12 spaces,
    then 8, then 4), which tokenize rejects although the program it belongs to is fine. So a prelude of
    one line per distinct indentation of the text, shallowest first, opens every level beforehand; its
    tokens are dropped. tokenize checks only indentation consistency, not grammar, so `_` lines suffice."""
    widths: dict[int, str] = {}
    for line in split_lines(text):
        if line.strip():
            widths.setdefault(len(indent(line).expandtabs(8)), indent(line))  # tokenize's tab size
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
    lines = split_lines(text)
    masked = _string_rows(text)
    for block in fenced_blocks(text):
        masked.update(range(max(block.start, 0), min(block.end, len(lines) - 1) + 1))
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
    if line.startswith("`") and not is_fence(line):
        return "prose"  # Python never starts a line with a backtick
    m = _SENTENCE_RE.match(line)
    if (m and m.group(1) not in _KEYWORDS) or _LABEL_RE.match(line):
        return "prose"
    return None


def _is_markdown_context(line: str) -> bool:
    return is_fence(line) or _marker_kind(line) is not None


@lru_cache(maxsize=8192)
def nl_markers(text: str) -> tuple[tuple[int, str], ...]:
    """(0-based line, kind) of every natural-language marker line; see the module docstring."""
    lines = split_lines(text)
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

