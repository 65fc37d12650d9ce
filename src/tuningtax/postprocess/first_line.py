"""Level `first-line` (single-line holes): the study's rule, the first non-empty generated line, in the
shape of the benchmark's middle.

HumanEval-SingleLineInfilling's middle is one whole line, leading indentation and trailing "\\n" included
(all 1033 official canonical solutions end with exactly one "\\n"), so the kept line keeps its
indentation and gets a "\\n" when generation stopped before one. When the hole starts mid-line (the prefix
does not end with "\\n"), the answer is the rest of that line, even if empty: a later line would land on
the prefix's line. Otherwise an output with no non-blank line gives "".
Defined for Flow only and opt-in: it applies to the benchmarks whose registry entry names it (single-line
holes), never to longer holes, completions or commands.
"""

from __future__ import annotations

from tuningtax.text import continues_line, cut_at_sentinel, lines
from tuningtax.tasks.schema import Task

NAME = "first-line"
MODES = ("flow",)
OPT_IN = True


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
