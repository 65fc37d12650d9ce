"""Scorer `stdio`: a program read from stdin and judged on its stdout, as SAFIM judges its block and
control-flow tasks through ExecEval (github.com/ntunlp/ExecEval, execution_engine.py):

- the candidate is the task's prefix + completion + suffix with every carriage return removed;
- it must compile (a syntax error fails the task), then runs once per unit test as its own interpreter
  process (`-W ignore -OO -s -S`, as ExecEval runs PyPy: asserts are off), stdin = the test's input;
- a test passes when the process exits 0 and its output matches one of the expected outputs by ExecEval's
  `validate_outputs`: equal line by line after stripping, or else equal token by token, where two tokens
  that both read as numbers may differ by 1e-12 and yes/no/true/false ignore case;
- tests run in order and the first failure ends the program (ExecEval's stop_on_first_fail); a pass needs
  every test.

Differences from ExecEval, stated in docs/benchmarks.md: CPython instead of PyPy 3.9 (slower, so the
per-test limit is wider), numbers compared as floats (53-bit) rather than 129-bit MPFR.

Java, C++ and C# programs (SAFIM's other splits) are compiled once by their toolchain
(tuningtax.scoring.toolchains; a compiler error fails the task, as ExecEval's COMPILATION_ERROR does), then
run per unit test the same way.

The whole runner below is one program the sandbox runs; its only inputs are the literals spliced in.
"""

from __future__ import annotations

import json

from tuningtax.scoring.toolchains import TOOLCHAINS
from tuningtax.tasks.schema import Task

# ExecEval gives PyPy 2 s x factor 2; CPython is several times slower on loops. At 8 s the gold solutions of
# block_completion_004781 and control_completion_004687 / 004694 timed out on 2 busy cores (bwrap and unshare).
PER_TEST_TIMEOUT_S = 16.0
COMPILE_TIMEOUT_S = 60.0  # g++ -O2 -static and javac take a few seconds; a busy machine several times that

RUNNER = r'''
import subprocess as _sp, sys as _sys

_SOURCE = {source!r}
_TESTS = {tests}
_TIMEOUT = {timeout!r}
_FILE = {source_file!r}
_COMPILE_TIMEOUT = {compile_timeout!r}
_COMPILE = {compile_command!r}
_RUN = {run_command!r}
_BOOL = {{"yes", "no", "true", "false"}}


def _as_number(token):
    try:
        return float(token)
    except ValueError:
        return None


def _validate(expected, actual):
    lines1, lines2 = expected.strip().split("\n"), actual.strip().split("\n")
    if len(lines1) == len(lines2) and all(a.strip() == b.strip() for a, b in zip(lines1, lines2)):
        return True
    tokens1, tokens2 = expected.strip().split(), actual.strip().split()
    if len(tokens1) != len(tokens2):
        return False
    for tok1, tok2 in zip(tokens1, tokens2):
        num1, num2 = _as_number(tok1), _as_number(tok2)
        if num1 is not None and num2 is not None:
            if abs(num1 - num2) > 1e-12:
                return False
            continue
        tok1 = tok1.lower() if tok1.lower() in _BOOL else tok1
        tok2 = tok2.lower() if tok2.lower() in _BOOL else tok2
        if tok1 != tok2:
            return False
    return True


with open(_FILE, "w", encoding="utf-8") as _fh:
    _fh.write(_SOURCE)
if not _COMPILE:
    compile(_SOURCE, _FILE, "exec")
else:
    try:
        _built = _sp.run(_COMPILE, stdin=_sp.DEVNULL, capture_output=True, timeout=_COMPILE_TIMEOUT)
    except _sp.TimeoutExpired:
        raise TimeoutError(f"compilation: over {{_COMPILE_TIMEOUT}} s") from None
    if _built.returncode != 0:
        _lines = (_built.stdout + _built.stderr).decode(errors="ignore").strip().splitlines()
        _first = next((_line for _line in _lines if "error" in _line.lower()), _lines[0] if _lines else "no message")
        raise SyntaxError(f"compilation failed: {{_first.strip()}}")
_RUN = [_sys.executable if _part == "{{python}}" else _part for _part in _RUN]
for _n, _test in enumerate(_TESTS):
    try:
        _run = _sp.run(_RUN, input=_test["input"].encode("ascii", "ignore"), capture_output=True, timeout=_TIMEOUT)
    except _sp.TimeoutExpired:
        raise TimeoutError(f"unit test {{_n}}: over {{_TIMEOUT}} s") from None
    if _run.returncode != 0:
        _tail = _run.stderr.decode(errors="ignore").strip().splitlines()[-1:] or ["no message"]
        raise RuntimeError(f"unit test {{_n}}: exit code {{_run.returncode}}: {{_tail[0]}}")
    _actual = _run.stdout.decode(errors="ignore").strip()
    if not any(_validate(_expected.replace("\r", ""), _actual) for _expected in _test["output"]):
        raise AssertionError(f"unit test {{_n}}: wrong answer")
'''


def stdio_program(task: Task, completion: str) -> str:
    from tuningtax.tasks.registry import get_benchmark

    source = (task.prompt + completion + task.suffix).replace("\r", "")
    source_file, compile_command, run_command = TOOLCHAINS[get_benchmark(task.benchmark).language].commands(source)
    return RUNNER.format(source=source, tests=repr(json.loads(task.test)), timeout=PER_TEST_TIMEOUT_S,
                         source_file=source_file, compile_command=compile_command, run_command=run_command,
                         compile_timeout=COMPILE_TIMEOUT_S)
