"""Scorer `safim-api`: SAFIM's rule for API-call holes (github.com/gonglinyuan/safim, evaluate.py
`syntax_match`), which compares the completion with the true call, never running anything:

- all whitespace is removed from both (inside string literals too);
- Python only: when both then parse as one Python call expression, they match when their positional
  arguments (in order) and keyword arguments (in any order) have equal ASTs; the called function itself is
  not compared;
- otherwise (and always for Java, C++ and C#) the two whitespace-free strings must be equal.

The program built here performs that comparison in the sandbox, like every other scorer: the completion
is only ever a string literal in it.
"""

from __future__ import annotations

from tuningtax.tasks.schema import Task

RUNNER = r'''
import ast as _ast, re as _re


def _arguments(call):
    return [_ast.dump(a) for a in call.args], {{k.arg: _ast.dump(k.value) for k in call.keywords}}


def _syntax_match(code1, code2):
    code1, code2 = _re.sub(r"\s+", "", code1).strip(), _re.sub(r"\s+", "", code2).strip()
    if not {python!r}:
        return code1 == code2
    try:
        tree1, tree2 = _ast.parse(code1, mode="eval"), _ast.parse(code2, mode="eval")
        if isinstance(tree1.body, _ast.Call) and isinstance(tree2.body, _ast.Call):
            return _arguments(tree1.body) == _arguments(tree2.body)
    except Exception:
        pass
    return code1 == code2


if not _syntax_match({completion!r}, {truth!r}):
    raise AssertionError("the call does not match the true API call")
'''


def api_match_program(task: Task, completion: str) -> str:
    from tuningtax.tasks.registry import get_benchmark

    python = get_benchmark(task.benchmark).language == "python"
    return RUNNER.format(completion=completion, truth=task.canonical_solution, python=python)
