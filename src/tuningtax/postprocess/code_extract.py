"""Level `code-extract`: the code inside a chat answer.

1. Cut at a sentinel that came back as text.
2. Fenced answer: the first ```python block (else the first untagged block, else the first block of any
   language), its lines exactly as written; an unclosed fence (generation ran out) keeps everything after
   it. Blocks with nothing but whitespace are ignored (a stray closing fence after code is not a block).
3. Unfenced answer: leading chatter lines ("Here is the code:", "Sure!") are dropped together with the
   blank lines after them, and the text is cut at the first chatter line or fence line after the code
   (`text.is_prose` decides what chatter is; indented lines are never chatter). When the hole starts
   mid-line, the first line is the rest of the prefix's line and is never judged.
4. flow / completion: instruct models often re-emit the code around the hole. A re-emitted prefix is
   recognised by the prefix's last (up to 3) non-blank lines appearing in the code (the code's lines
   compared with trailing whitespace ignored; shorter windows only when the code starts with a line of
   the prefix, i.e. it visibly restarted the file); everything up to them is dropped. A re-emitted suffix
   is recognised by the suffix's first (up to 3) non-blank lines and dropped with everything after it (a
   suffix of one or two lines only when no indented code follows it). Lines are compared whole: a hole
   ending mid-line (random spans) gets no suffix removal, since a short line tail like `)` matches anywhere.
   A removal that would leave only whitespace is not made: the middle then *is* a line that also occurs
   next to the hole (a gold middle may repeat a neighbouring line).
5. command: the whole function. An answer without the prompt's `def` continues the prompt (a base model on
   the plain prompt): the result is the prompt plus the body cut at the first column-0 line.
"""

from __future__ import annotations

from tuningtax.text import (
    continues_line, continues_prompt, cut_at_column0, cut_at_sentinel, fenced_blocks, is_fence, is_prose,
    lines, pick_code_block, string_state,
)
from tuningtax.tasks.schema import Task

NAME = "code-extract"
MODES = ("flow", "completion", "command")
WINDOW = 3  # context lines that must match to call something a re-emission


def drop_chatter(text: str, keep_first: bool = False, state: str | None = None) -> str:
    """Drop leading chatter (and the blank lines after it) and cut at the first chatter or fence line after
    the code. Lines inside a triple-quoted string are never chatter; `state` is the string left open by
    the text before (the prefix)."""
    ls = lines(text)
    inside: list[bool] = []  # does line i start inside a triple-quoted string?
    for line in ls:
        inside.append(state is not None)
        state = string_state(line, state)

    def chatter(i: int) -> bool:
        return not inside[i] and (is_prose(ls[i]) or is_fence(ls[i]))

    start = 1 if keep_first else 0
    first_code = start
    while first_code < len(ls) and chatter(first_code):
        first_code += 1
    if first_code > start:
        while first_code < len(ls) and not ls[first_code].strip():
            first_code += 1
    end = next((i for i in range(first_code + 1, len(ls)) if chatter(i)), len(ls))
    return "".join(ls[:start] + ls[first_code:end])


def _nonblank_index(ls: list[str]) -> list[int]:
    return [i for i, line in enumerate(ls) if line.strip()]


def _find_window(ls: list[str], window: list[str]) -> int | None:
    """Position k in the non-blank lines of `ls` where `window` (lines compared without trailing
    whitespace) starts; None if absent."""
    nb = _nonblank_index(ls)
    want = [w.rstrip() for w in window]
    for k in range(len(nb) - len(want) + 1):
        got = [ls[nb[k + t]].rstrip() for t in range(len(want))]
        if got == want:
            return k
    return None


def strip_reemitted_prefix(code: str, prefix: str) -> str:
    pls = lines(prefix)
    partial = pls.pop() if pls and not pls[-1].endswith("\n") else ""
    context = [line for line in pls if line.strip()]
    if not context:
        return code
    trailing_blank = len(pls) - 1 - max(i for i, line in enumerate(pls) if line.strip())
    ls = lines(code)
    nb = _nonblank_index(ls)
    if not nb:
        return code
    restarted = ls[nb[0]].rstrip() in {line.rstrip() for line in context} or bool(
        partial.strip() and ls[nb[0]].startswith(partial))
    sizes = range(min(WINDOW, len(context)), 0, -1) if restarted else [min(WINDOW, len(context))]
    for size in sizes:
        k = _find_window(ls, context[-size:])
        if k is None:
            continue
        rest = ls[nb[k + size - 1] + 1:]
        # the blank lines that end the prefix were re-emitted too (HumanEval holes on a body's first line
        # follow an extra blank line)
        for _ in range(trailing_blank):
            if rest and not rest[0].strip():
                rest = rest[1:]
        if partial:  # the line the hole sits in was re-emitted too: keep what follows the prefix's part
            while rest and not rest[0].strip():
                rest = rest[1:]
            if not rest or not rest[0].startswith(partial):
                continue
            rest = [rest[0][len(partial):]] + rest[1:]
        text = "".join(rest)
        return text if text.strip() else code
    return code


def strip_reemitted_suffix(code: str, suffix: str) -> str:
    sls = lines(suffix)
    context = [line for line in sls if line.strip()][:WINDOW]
    if not context:
        return code
    ls = lines(code)
    nb = _nonblank_index(ls)
    k = _find_window(ls, context)
    if k is None:
        return code
    # A window shorter than WINDOW is the whole suffix (one or two lines, e.g. `    return result`), which a
    # middle may legitimately contain: count it as re-emitted only when no indented code follows it, i.e.
    # the code ends there or goes on at column 0 (tests, demos) as it would after the function's end.
    after = ls[nb[k + len(context) - 1] + 1:]
    if len(context) < WINDOW and any(line.strip() and line[0] in " \t" for line in after):
        return code
    cut = nb[k]
    # the blank lines that start the suffix were re-emitted too
    leading_blank = next(i for i, line in enumerate(sls) if line.strip())
    while leading_blank and cut > 0 and not ls[cut - 1].strip():
        cut, leading_blank = cut - 1, leading_blank - 1
    text = "".join(ls[:cut])
    return text if text.strip() else code


def apply(raw_output: str, task: Task) -> str:
    text = cut_at_sentinel(raw_output)
    block = pick_code_block([b for b in fenced_blocks(text) if b.content.strip()])
    if block is not None:
        code = block.content
    else:
        flowing = task.mode != "command"
        code = drop_chatter(text, keep_first=flowing and continues_line(task.prompt),
                            state=string_state(task.prompt) if flowing else None)
    if task.mode == "command":
        if continues_prompt(code, task.prompt, task.entry_point):
            return task.prompt + cut_at_column0(code)
        return code
    return strip_reemitted_suffix(strip_reemitted_prefix(code, task.prompt), task.suffix)
