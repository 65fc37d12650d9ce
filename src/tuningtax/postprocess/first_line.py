"""Level `first-line` (single-line holes): the study's rule, the first non-empty generated line, in the
shape of the benchmark's middle.

HumanEval-SingleLineInfilling's middle is one whole line, leading indentation and trailing "\\n" included
(all 1033 official canonical solutions end with exactly one "\\n"), so the kept line keeps its
indentation and gets a "\\n" when generation stopped before one. When the hole starts mid-line (the prefix
does not end with "\\n"), the answer is the rest of that line, even if empty: a later line would land on
the prefix's line. Otherwise an output with no non-blank line gives "".
Not defined for command tasks (their answer is a whole program).
"""

from __future__ import annotations

from tuningtax.postprocess._text import continues_line, cut_at_sentinel, lines
from tuningtax.tasks.schema import Task

NAME = "first-line"
MODES = ("flow", "completion")


def apply(raw_output: str, task: Task) -> str:
    ls = lines(cut_at_sentinel(raw_output))
    if not ls:
        return ""
    if continues_line(task.prompt):
        line = ls[0]
    else:
        line = next((line for line in ls if line.strip()), "")
        if not line:
            return ""
    return line if line.endswith("\n") else line + "\n"
