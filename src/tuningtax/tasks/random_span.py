"""HumanEval random-span infilling (1640 tasks). The spans were drawn at random upstream, so the file
cannot be derived; it is read from a local mirror folder or downloaded from its pinned upstream commit,
and accepted only when its sha256 matches."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from tuningtax.errors import UserError
from tuningtax.jsonl import read_jsonl
from tuningtax.tasks.schema import Task

COMMIT = "88062ff9859c875d04db115b698ed4b0f0395170"
FILE = "HumanEval-RandomSpanInfilling.jsonl.gz"
URL = f"https://raw.githubusercontent.com/openai/human-eval-infilling/{COMMIT}/data/{FILE}"
SHA256 = "b4f330d8a8ff97bf85d9def497dffcae4d741e506449386a877236e422e33e8d"
MIRROR_ENV = "TUNINGTAX_BENCHMARK_MIRROR"
MIRROR_SUBDIR = "humaneval-infilling"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cache_dir() -> Path:
    return Path(os.environ.get("TUNINGTAX_CACHE", ".cache/tuningtax")) / "downloads"


def locate(mirror: str | None) -> Path:
    """The verified file: from a mirror folder (argument, then env var), else the download cache, else the URL."""
    tried = []
    for folder in dict.fromkeys(m for m in (mirror, os.environ.get(MIRROR_ENV)) if m):
        candidate = Path(folder) / MIRROR_SUBDIR / FILE
        if candidate.exists():
            if (got := _sha256(candidate)) != SHA256:
                raise UserError(f"{candidate}: sha256 {got} differs from the pinned {SHA256}; "
                                "replace the mirror file with the upstream one")
            return candidate
        tried.append(f"mirror {candidate} (absent)")
    cached = _cache_dir() / SHA256 / FILE
    if cached.exists() and _sha256(cached) == SHA256:
        return cached
    try:
        with urllib.request.urlopen(URL, timeout=30) as response:
            payload = response.read()
    except (urllib.error.URLError, OSError) as err:
        tried.append(f"{URL} ({err})")
        raise UserError(
            "humaneval-random-span: no source reachable; tried " + "; ".join(tried)
            + f". Fix: set {MIRROR_ENV} (or params.yaml `benchmark_mirror`) to a folder holding "
            f"{MIRROR_SUBDIR}/{FILE}, or allow network access to raw.githubusercontent.com"
        ) from None
    if (got := hashlib.sha256(payload).hexdigest()) != SHA256:
        raise UserError(f"{URL}: downloaded sha256 {got} differs from the pinned {SHA256}; not used")
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".part")
    tmp.write_bytes(payload)
    tmp.replace(cached)
    return cached


def random_span_tasks(mirror: str | None = None) -> list[Task]:
    return [
        Task(task_id=r["task_id"], benchmark="humaneval-random-span", mode="flow", prompt=r["prompt"],
             suffix=r["suffix"], canonical_solution=r["canonical_solution"], test=r["test"],
             entry_point=r["entry_point"], instruction="",
             source_id="/".join(r["task_id"].split("/")[1:3]))
        for r in read_jsonl(locate(mirror))
    ]
