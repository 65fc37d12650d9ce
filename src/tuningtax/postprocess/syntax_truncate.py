"""Level `syntax-truncate`: code-extract, then cut at a line boundary chosen by the compiler.

Candidates are the line-boundary prefixes of the code-extract output (each ends with its "\\n"; the last is
the whole text). A candidate must contain a non-blank character: the empty middle compiles for most holes
(a statement removed from a block usually leaves a valid block), so "shortest that parses" would
otherwise always answer "nothing".
- flow: the SHORTEST candidate such that prefix + candidate + suffix compiles. The suffix fixes where the
  middle must end, so the first point at which the spliced program is whole is where the model should
  have stopped; anything longer that still parses is surplus (typically a re-emitted suffix or test code,
  which also parses). Exact for single-line holes; for multi-line holes it can stop early when the
  suffix happens to complete a shorter candidate (e.g. a block header whose body is the suffix's next line):
  measured on the official files, every single-line gold middle comes back unchanged, but 4002 of 5815
  multi-line ones and 213 of 1640 random-span ones (holes ending mid-line, which line candidates cannot
  express) are shortened. Read this level beside stop-cut and code-extract for those benchmarks.
- completion: the LONGEST candidate such that prompt + candidate compiles (nothing after the hole pins the
  end; only a broken tail, e.g. generation cut by the token limit, is dropped).
- command: the LONGEST candidate that compiles on its own.
When no candidate compiles, the code-extract output is returned unchanged (it fails either way, and the
record keeps what the model wrote). Characters inside a line are never candidates: a mid-line cut almost
always truncates an identifier, and trying every character costs one compile per character.
"""

from __future__ import annotations

from tuningtax.postprocess import code_extract
from tuningtax.text import compiles, lines
from tuningtax.tasks.schema import Task

NAME = "syntax-truncate"
MODES = ("flow", "completion", "command")


def apply(raw_output: str, task: Task) -> str:
    code = code_extract.apply(raw_output, task)
    ls = lines(code)
    candidates = ["".join(ls[:i]) for i in range(1, len(ls) + 1)]
    candidates = [c for c in candidates if c.strip()]
    if task.mode == "flow":
        return next((c for c in candidates if compiles(task.prompt + c + task.suffix)), code)
    head = task.prompt if task.mode == "completion" else ""
    return next((c for c in reversed(candidates) if compiles(head + c)), code)
