"""Atomic writes keep the umask's file mode: mkstemp alone would leave every output private (0600)."""

from __future__ import annotations

import os
import stat

import pytest

from tuningtax.jsonl import read_jsonl, write_jsonl, write_text_atomic


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_jsonl(tmp_path / "a.jsonl", [{"x": 1}])
        write_text_atomic(tmp_path / "b.txt", "b\n")
    finally:
        os.umask(old)
    for name in ("a.jsonl", "b.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert list(read_jsonl(tmp_path / "a.jsonl")) == [{"x": 1}]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left behind
