"""Deterministic JSONL I/O: sorted keys are not used (field order is the schema's), UTF-8, "\n" endings,
atomic replacement so a failed run never leaves a half-written output behind."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from tuningtax.errors import UserError


def dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(", ", ": "))


def expand_jsonl_inputs(inputs: Iterable[str | os.PathLike], what: str) -> list[Path]:
    """Files as given, each folder replaced by its ``*.jsonl`` files (sorted); a folder without any is an error
    naming ``what`` it should have held."""
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(item.glob("*.jsonl"))
            if not found:
                raise UserError(f"{item}: folder holds no *.jsonl {what}")
            paths += found
        else:
            paths.append(item)
    return paths


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    for _, record in iter_numbered_jsonl(path):
        yield record


def iter_numbered_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """(line number, record) pairs, blank lines skipped, so errors can name the line."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{lineno}: not valid JSON ({err.msg}); fix or regenerate the file") from None
            if not isinstance(record, dict):
                raise UserError(f"{path}:{lineno}: each line must be a JSON object")
            yield lineno, record


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    return list(iter_jsonl(path))


def default_file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask (mkstemp's files are 0600)."""
    try:  # read, not set: os.umask(0) would briefly open every file other threads create
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o077)
    os.umask(umask)
    return 0o666 & ~umask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, default_file_mode())  # outputs readable like any other file, not private to the writer
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as err:  # e.g. a full disk: the old file stays as it was, the message names the new one
        Path(tmp).unlink(missing_ok=True)
        raise OSError(err.errno, f"cannot write ({err.strerror})", str(path)) from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    lines = [dumps(r) + "\n" for r in records]
    write_text_atomic(path, "".join(lines))
    return len(lines)
