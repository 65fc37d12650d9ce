"""Benchmark files that cannot be derived offline: read from a local mirror folder or downloaded from a
pinned upstream URL, and accepted only when their sha256 matches the pin. Never copied into the project."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tuningtax.errors import UserError

MIRROR_ENV = "TUNINGTAX_BENCHMARK_MIRROR"


@dataclass(frozen=True)
class PinnedFile:
    benchmark: str  # who asks, for messages
    mirror_subdir: str  # folder of the mirror that holds it (same name as upstream's repository)
    name: str  # file name, as upstream names it
    url: str
    sha256: str


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cache_dir() -> Path:
    return Path(os.environ.get("TUNINGTAX_CACHE", ".cache/tuningtax")) / "downloads"


def locate(pinned: PinnedFile, mirror: str | None) -> Path:
    """The verified file: from a mirror folder (argument, then env var), else the download cache, else the URL."""
    tried = []
    for folder in dict.fromkeys(m for m in (mirror, os.environ.get(MIRROR_ENV)) if m):
        candidate = Path(folder) / pinned.mirror_subdir / pinned.name
        if candidate.exists():
            if (got := _sha256(candidate)) != pinned.sha256:
                raise UserError(f"{candidate}: sha256 {got} differs from the pinned {pinned.sha256}; "
                                "replace the mirror file with the upstream one")
            return candidate
        tried.append(f"mirror {candidate} (absent)")
    cached = _cache_dir() / pinned.sha256 / pinned.name
    if cached.exists() and _sha256(cached) == pinned.sha256:
        return cached
    try:
        with urllib.request.urlopen(pinned.url, timeout=30) as response:
            payload = response.read()
    except (urllib.error.URLError, OSError) as err:
        tried.append(f"{pinned.url} ({err})")
        raise UserError(
            f"{pinned.benchmark}: no source reachable; tried " + "; ".join(tried)
            + f". Fix: set {MIRROR_ENV} (or params.yaml `benchmark_mirror`) to a folder holding "
            f"{pinned.mirror_subdir}/{pinned.name}, or allow network access to {pinned.url.split('/')[2]}"
        ) from None
    if (got := hashlib.sha256(payload).hexdigest()) != pinned.sha256:
        raise UserError(f"{pinned.url}: downloaded sha256 {got} differs from the pinned {pinned.sha256}; not used")
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".part")
    tmp.write_bytes(payload)
    tmp.replace(cached)
    return cached
