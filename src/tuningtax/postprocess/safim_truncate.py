"""Level `safim-truncate` (SAFIM benchmarks): SAFIM's own post-processing for its three kinds of hole
(github.com/gonglinyuan/safim, prompt_utils.py), applied after a sentinel cut and, when the answer holds a
fenced block (chat formats), to that block's code, as SAFIM does with `extract_code`:

- block holes (`truncate_line_until_block`): drop the output's last line until prefix + output + suffix
  parses with no tree-sitter ERROR node AND its syntax tree equals that of prefix + `pass` + suffix
  except for whole subtrees at the hole, i.e. the output is a run of complete statements that fits there;
- control-flow holes (`truncate_control`): the first non-blank line, without its newline;
- API-call holes (`truncate_api_call`): cut just after the `)` that closes the first open bracket.

Parsing uses the tree-sitter Python grammar (packages tree-sitter and tree-sitter-python), as SAFIM does;
SAFIM pinned an older grammar (0.20), so rare constructs can parse differently (docs/benchmarks.md).
Opt-in: it applies only to the benchmarks whose registry entry names it.
"""

from __future__ import annotations

import functools

from tuningtax.tasks.schema import Task
from tuningtax.text import cut_at_sentinel, fenced_blocks, pick_code_block

NAME = "safim-truncate"
MODES = ("flow",)
OPT_IN = True


@functools.cache
def _parser():
    import tree_sitter_python
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_python.language()))


def _trace(source: bytes) -> tuple[int, list[tuple[bool, str]]]:
    """(ERROR nodes other than a lone ';', the (enter/leave, node type) sequence of a full tree walk)."""
    errors, events = 0, []
    cursor = _parser().parse(source).walk()
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


def truncate_block(code: str, prefix: str, suffix: str) -> str:
    ls = code.splitlines(keepends=True)
    _, reference = _trace((prefix + "pass" + suffix).encode())
    while ls:
        errors, candidate = _trace((prefix + "".join(ls) + suffix).encode())
        if errors == 0 and len(reference) <= len(candidate):
            matched_prefix, matched_suffix = _common_ends(reference, candidate)
            # `pass` itself is 4 events (pass_statement and its keyword token, entered and left)
            if len(reference) - (matched_prefix - matched_suffix) - 4 == 0:
                break
        ls.pop()
    return "".join(ls)


def truncate_control(code: str) -> str:
    return next((line for line in code.splitlines() if line.strip()), "")


def truncate_api_call(code: str) -> str:
    depth = 0
    for i, ch in enumerate(code):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth <= 0:
                return code[: i + 1]
    return code


def apply(raw_output: str, task: Task) -> str:
    code = cut_at_sentinel(raw_output)
    if block := pick_code_block(fenced_blocks(code)):
        code = block.content
    kind = task.benchmark.removeprefix("safim-")
    if kind == "control":
        return truncate_control(code)
    if kind == "api":
        return truncate_api_call(code)
    return truncate_block(code, task.prompt, task.suffix)
