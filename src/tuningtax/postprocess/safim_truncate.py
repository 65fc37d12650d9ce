"""Level `safim-truncate` (SAFIM benchmarks): SAFIM's own post-processing for its three kinds of hole
(github.com/gonglinyuan/safim, prompt_utils.py), applied after a sentinel cut and, when the answer holds a
fenced block (chat formats), to that block's code, as SAFIM does with `extract_code`:

- block holes (`truncate_line_until_block`): drop the output's last line until prefix + output + suffix
  parses with no tree-sitter ERROR node AND its syntax tree equals that of prefix + `pass` + suffix (Java,
  C++, C#: prefix + suffix) except for whole subtrees at the hole, i.e. the output is a run of complete
  statements that fits there;
- control-flow holes (`truncate_control`): Python, the first non-blank line, without its newline; Java, C++
  and C#, everything before the `)` that closes a bracket the output did not open (the `for (...)` or
  `if (...)` condition);
- API-call holes (`truncate_api_call`): cut just after the `)` that closes the first open bracket.

Parsing uses tree-sitter with the grammar of the task's language (packages tree-sitter-python, -java,
-cpp and -c-sharp), as SAFIM does; SAFIM pinned older grammars (0.20), so rare constructs can parse
differently (docs/benchmarks.md).
Opt-in: it applies only to the benchmarks whose registry entry names it.
"""

from __future__ import annotations

import functools

from tuningtax.tasks.registry import BENCHMARKS
from tuningtax.tasks.safim import split_of
from tuningtax.tasks.schema import Task
from tuningtax.text import cut_at_sentinel, fenced_blocks, pick_code_block

NAME = "safim-truncate"
MODES = ("flow",)
OPT_IN = True


GRAMMARS = {"python": "tree_sitter_python", "java": "tree_sitter_java", "cpp": "tree_sitter_cpp",
            "csharp": "tree_sitter_c_sharp"}


@functools.cache
def _parser(language: str):
    import importlib

    from tree_sitter import Language, Parser

    return Parser(Language(importlib.import_module(GRAMMARS[language]).language()))


def _trace(source: bytes, language: str = "python") -> tuple[int, list[tuple[bool, str]]]:
    """(ERROR nodes other than a lone ';', the (enter/leave, node type) sequence of a full tree walk)."""
    errors, events = 0, []
    cursor = _parser(language).parse(source).walk()
    while True:
        node = cursor.node
        if node.type == "ERROR" and node.text != b";":
            errors += 1
        events.append((True, node.type))
        if cursor.goto_first_child():
            continue
        while True:
            events.append((False, cursor.node.type))
            if cursor.goto_next_sibling():
                break
            if not cursor.goto_parent():
                return errors, events


def _common_ends(a: list, b: list) -> tuple[int, int]:
    p = 0
    while p < len(a) and p < len(b) and a[p] == b[p]:
        p += 1
    q = 0
    while -q < len(a) and -q < len(b) and a[q - 1] == b[q - 1]:
        q -= 1
    return p, q


def truncate_block(code: str, prefix: str, suffix: str, language: str = "python") -> str:
    ls = code.splitlines(keepends=True)
    # Python's empty block needs a statement; `pass` itself is 4 events (pass_statement and its keyword
    # token, entered and left). A brace language's empty block is just prefix + suffix.
    filler, filler_events = ("pass", 4) if language == "python" else ("", 0)
    _, reference = _trace((prefix + filler + suffix).encode(), language)
    while ls:
        errors, candidate = _trace((prefix + "".join(ls) + suffix).encode(), language)
        if errors == 0 and len(reference) <= len(candidate):
            matched_prefix, matched_suffix = _common_ends(reference, candidate)
            if len(reference) - (matched_prefix - matched_suffix) - filler_events == 0:
                break
        ls.pop()
    return "".join(ls)


def _closing_brackets(code: str):
    """(index, depth after it) of each `)`, counting every bracket character as SAFIM does (literals too)."""
    depth = 0
    for i, ch in enumerate(code):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            yield i, depth


def truncate_control(code: str, language: str = "python") -> str:
    if language == "python":
        return next((line for line in code.splitlines() if line.strip()), "")
    return next((code[:i] for i, depth in _closing_brackets(code) if depth == -1), code)


def truncate_api_call(code: str) -> str:
    return next((code[: i + 1] for i, depth in _closing_brackets(code) if depth <= 0), code)


def apply(raw_output: str, task: Task) -> str:
    code = cut_at_sentinel(raw_output)
    if block := pick_code_block(fenced_blocks(code)):
        code = block.content
    bench = BENCHMARKS.get(task.benchmark)  # a task from outside the registry is taken as a Python block
    language = bench.language if bench else "python"
    kind = split_of(task.benchmark) if task.benchmark.startswith("safim-") else "block"
    if kind == "control":
        return truncate_control(code, language)
    if kind == "api":
        return truncate_api_call(code)
    return truncate_block(code, task.prompt, task.suffix, language)
