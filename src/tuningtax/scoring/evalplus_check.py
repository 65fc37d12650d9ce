"""Scorer `evalplus`: EvalPlus's differential testing (evalplus 0.3.1, evalplus/eval/__init__.py
`unsafe_execute` / `untrusted_check`, evaluate.py `get_groundtruth`), one program per suite:

- the solution is the answer itself (command) or prompt + answer (completion), exec'd in fresh globals;
- expected outputs and the per-input time limits come from the canonical solution, run on a deep copy of
  each input in a child process before the answer is loaded, and timed there: each input's limit is
  max(1 s, 4 x the canonical solution's time), the whole suite's min(60 s, sum of limits) + 1 s;
- an output passes when it equals the expected one; otherwise, when atol != 0 (EvalPlus sets 1e-6 for
  float outputs and keeps it for the later inputs), its type and length must equal the expected ones and
  np.allclose(out, expected, rtol=1e-7, atol) must hold (HumanEval/32, which EvalPlus's evaluator cannot
  pass, is not among the tasks: tuningtax.tasks.evalplus.EXCLUDED);
- MBPP+: inputs get their tuples, sets and complex numbers back (the problem's `input_kind`), and
  EvalPlus's special oracles apply (set equality for some problems, `is not None` for three, own checks
  for Mbpp/164, 295, 558 and 581);
- the first failing input ends the suite (EvalPlus's default fast check); a pass needs every input.

Suites: `base` (HumanEval's inputs) and `plus` (EvalPlus's added inputs). EvalPlus's headline HumanEval+
number counts an answer that passes both.
"""

from __future__ import annotations

import json

from tuningtax.tasks.schema import Task

SUITES = ("base", "plus")
MIN_TIME_LIMIT_S = 1.0  # evalplus.config DEFAULT_MIN_TIME_LIMIT
TIME_LIMIT_FACTOR = 4.0  # evalplus.config DEFAULT_GT_TIME_LIMIT_FACTOR
SUITE_CAP_S = 60.0  # EVALPLUS_TIMEOUT_PER_TASK's default
EVALPLUS_MEMORY_MB = 4096  # EVALPLUS_MAX_MEMORY_BYTES' default (4 GiB)

RUNNER = r'''
import copy as _copy, json as _json, math as _math, os as _os, pickle as _pickle, signal as _signal, time as _time
import numpy as _np

_SPEC = _json.loads({spec!r})
_ENTRY = {entry!r}


def _tuples(x):
    return tuple(_tuples(i) for i in x) if isinstance(x, list) else x


# evalplus/data/mbpp.py mbpp_deserialize_inputs, by kind (tuningtax.tasks.evalplus.MBPP_INPUT_KINDS)
_CONVERT = {{
    "": lambda inp: inp,
    "args-tuples": lambda inp: [tuple(a) for a in inp],
    "args-lists-of-tuples": lambda inp: [[tuple(a) for a in arg] for arg in inp],
    "first-list-of-tuples": lambda inp: [[tuple(a) for a in inp[0]]] + [inp[1]],
    "second-tuple": lambda inp: [inp[0]] + [tuple(inp[1])],
    "list-of-sets": lambda inp: [[set(i) if isinstance(i, list) and len(i) else {{}} for i in inp[0]]],
    "float-complex": lambda inp: (float(inp[0]), complex(inp[1])),
    "first-tuple": lambda inp: [tuple(inp[0])] + [inp[1]],
    "tuples-of-tuples": lambda inp: [tuple(tuple(a) for a in arg) for arg in inp],
    "first-mixed-tuple": lambda inp: [tuple(tuple(i) if isinstance(i, list) else i for i in inp[0])],
    "first-tuple-of-three": lambda inp: [tuple(inp[0])] + [inp[1], inp[2]],
    "dict-of-tuples": lambda inp: [{{k: tuple(v) for k, v in inp[0].items()}}] + inp[1:],
    "complex": lambda inp: [complex(inp[0])],
    "all-tuples": _tuples,
}}
_INPUTS = [_CONVERT[_SPEC["input_kind"]](inp) for inp in _SPEC["inputs"]]


def _reference():
    """Expected outputs and times of the canonical solution, computed in a child process."""
    read_end, write_end = _os.pipe()
    pid = _os.fork()
    if pid == 0:
        _os.close(read_end)
        try:
            scope = {{}}
            exec(_SPEC["reference"], scope)
            fn, outs, times = scope[_ENTRY], [], []
            for inp in _INPUTS:
                inp = _copy.deepcopy(inp)
                start = _time.time()
                outs.append(fn(*inp))
                times.append(_time.time() - start)
            if _SPEC["output_not_none"]:
                outs = [o is not None for o in outs]
            payload = _pickle.dumps(("ok", outs, times))
        except BaseException as err:
            payload = _pickle.dumps(("error", repr(err), None))
        view = memoryview(payload)
        while view:
            view = view[_os.write(write_end, view):]
        _os._exit(0)
    _os.close(write_end)
    chunks = []
    while chunk := _os.read(read_end, 1 << 20):
        chunks.append(chunk)
    _os.waitpid(pid, 0)
    status, outs, times = _pickle.loads(b"".join(chunks))
    if status != "ok":
        raise RuntimeError(f"the canonical solution failed: {{outs}}")
    return outs, times


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout("over its time limit")


def _is_floats(x):
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    if isinstance(x, _np.ndarray):
        return x.dtype == _np.float64 or x.dtype == _np.float32
    return False


def _surface_area(base_edge, height):  # oracle for Mbpp/581
    slant_height = _math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant_height) / 2)


def _digit_distance_nums(num1, num2):  # oracle for Mbpp/558
    a, b = str(num1), str(num2)
    width = max(len(a), len(b))
    return sum(abs(int(x) - int(y)) for x, y in zip(a.zfill(width), b.zfill(width)))


_SET_EQ = {{"similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly", "larg_nnum",
           "intersection_array", "find_dissimilar", "Diff"}}


def _mbpp_match(out, exp, inp, exact, atol):
    if _ENTRY == "are_equivalent":  # Mbpp/164
        return True
    if _ENTRY == "sum_div":  # Mbpp/295
        return exact or out == 0
    if _ENTRY == "surface_Area":  # Mbpp/581
        return exact or abs(out - _surface_area(*inp)) <= atol
    if _ENTRY == "digit_distance_nums":  # Mbpp/558
        return exact or out == _digit_distance_nums(*inp)
    if _ENTRY in _SET_EQ:
        return set(out) == set(exp)
    if _SPEC["output_not_none"]:
        return out == exp if isinstance(out, bool) else exp == (out is not None)
    return exact


_expected, _times = _reference()
_limits = [max({min_limit!r}, {factor!r} * t) for t in _times]
_deadline = _time.monotonic() + min({cap!r}, sum(_limits)) + 1
_scope = {{}}
exec(compile({solution!r}, "<solution>", "exec"), _scope)
_fn = _scope[_ENTRY]
_atol = _SPEC["atol"]
_signal.signal(_signal.SIGALRM, _alarm)
for _n, (_inp, _exp) in enumerate(zip(_INPUTS, _expected)):
    _left = _deadline - _time.monotonic()
    if _left <= 0:
        raise _Timeout(f"{suite} input {{_n}}: the suite is over its time limit")
    _signal.setitimer(_signal.ITIMER_REAL, min(_limits[_n], _left))
    try:
        _out = _fn(*_inp)
    except _Timeout:
        raise _Timeout(f"{suite} input {{_n}}: over {{_limits[_n]:.2f}} s") from None
    finally:
        _signal.setitimer(_signal.ITIMER_REAL, 0)
    _exact = _out == _exp
    if _SPEC["dataset"] == "mbpp":
        _exact = _mbpp_match(_out, _exp, _inp, _exact, _atol)
    if _atol == 0 and _is_floats(_exp):
        _atol = 1e-6
    if not _exact and _atol != 0:
        assert type(_out) == type(_exp), f"{suite} input {{_n}}: wrong output type"
        if isinstance(_exp, (list, tuple)):
            assert len(_out) == len(_exp), f"{suite} input {{_n}}: wrong output length"
        assert _np.allclose(_out, _exp, rtol=1e-07, atol=_atol), f"{suite} input {{_n}}: wrong output"
    else:
        assert _exact, f"{suite} input {{_n}}: wrong output"
'''


def evalplus_program(task: Task, completion: str, suite: str) -> str:
    spec = json.loads(task.test)
    solution = completion if task.mode == "command" else task.prompt + completion
    inner = json.dumps({"dataset": spec["dataset"], "atol": spec["atol"], "reference": spec["reference"],
                        "inputs": spec[f"{suite}_input"], "input_kind": spec["input_kind"],
                        "output_not_none": spec["output_not_none"]})
    return RUNNER.format(spec=inner, entry=task.entry_point, solution=solution, suite=suite,
                         min_limit=MIN_TIME_LIMIT_S, factor=TIME_LIMIT_FACTOR, cap=SUITE_CAP_S)
