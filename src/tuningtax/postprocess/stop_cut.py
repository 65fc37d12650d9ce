"""Level `stop-cut`: what a harness with stop sequences would have kept.

Every mode first cuts at a family sentinel that came back as text (`tuningtax.text.SENTINELS`, from the model families).
- flow / completion, hole inside an indented block (every HumanEval hole): cut before the first line,
  after the first, that starts at column 0 with a non-blank character. That generalises the usual list
  (`\\ndef `, `\\nclass `, `\\nif __name__`, `\\nprint(`, `\\n#`, `\\n@`, `\\nassert `, `\\n```) to any
  top-level line: a column-0 line closes the block the hole is in, so it is past the hole (test code,
  `result = f(3)` demos, fences and prose included).
- flow / completion, hole at module level: column-0 lines are legitimate code there (scripts), so only a
  markdown fence line (after the first line) stops.
- command: a chat answer is cut before the closing fence of its first code block; an answer that continues
  the prompt's function (a base model on the plain prompt) is the prompt plus its body cut as above, which
  is the Codex/HumanEval base-model protocol.
The first line is never cut (stop sequences start with "\\n"), and nothing is stripped: the kept text
ends with the newline of its last line, blank lines included.
"""

from __future__ import annotations

from tuningtax.text import (
    continues_prompt, cut_at_column0, cut_at_sentinel, fenced_blocks, hole_in_block, is_fence, lines,
)
from tuningtax.tasks.schema import Task

NAME = "stop-cut"
MODES = ("flow", "completion", "command")


def _cut_at_fence(text: str) -> str:
    ls = lines(text)
    for i in range(1, len(ls)):
        if is_fence(ls[i]):
            return "".join(ls[:i])
    return text


def apply(raw_output: str, task: Task) -> str:
    text = cut_at_sentinel(raw_output)
    if task.mode == "command":
        if continues_prompt(text, task.prompt, task.entry_point):
            return task.prompt + cut_at_column0(text)
        blocks = fenced_blocks(text)
        if blocks and blocks[0].end < len(lines(text)):  # closed: drop the closing fence and all after it
            return "".join(lines(text)[:blocks[0].end])
        return text
    if hole_in_block(task.prompt, task.suffix):
        return cut_at_column0(text)
    return _cut_at_fence(text)
