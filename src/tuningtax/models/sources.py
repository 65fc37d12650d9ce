"""Where a checkpoint's weights come from: every source kind (hub id, local HF folder, GGUF file, the offline
default) resolved to a local Hugging Face folder, and the cache that GGUF conversions are kept in.

A GGUF is converted once with the running transformers (a folder saved by another major version can load
silently wrong: rope_theta) into a content-addressed cache ``<cache>/hf/<sha256[:16]>/``, built in a
temporary folder and renamed into place, so an interrupted run never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from tuningtax.bundle import ASSETS
from tuningtax.errors import UserError
from tuningtax.models.spec import ModelSpec

DONE_MARKER = "source.json"  # written last into a converted folder: its presence marks the folder complete
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
    if (out / DONE_MARKER).exists():
        return out
    with open(gguf, "rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise UserError(f"{gguf}: not a GGUF file (it starts with {magic!r}, a GGUF with b'GGUF'); "
                        "check the model's source in params.yaml")
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        log(f"converting {gguf.name} to an HF folder with transformers {transformers.__version__} (about a minute)")
        try:
            model = AutoModelForCausalLM.from_pretrained(os.fspath(gguf.parent), gguf_file=gguf.name,
                                                         dtype=torch.float32)
        except Exception as err:  # gguf's reader raises ValueError, struct and numpy errors on a cut file
            raise UserError(f"{gguf}: cannot be read as a GGUF model ({type(err).__name__}: "
                            f"{str(err).splitlines()[0][:200] if str(err) else ''}); the file may be truncated: "
                            "fetch it again") from None
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
        (tmp / DONE_MARKER).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        try:
            publish_dir(tmp, out)
        except OSError:
            if not (out / DONE_MARKER).exists():  # lost a race to a complete folder: fine; anything else is not
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"converted model cached at {out}")
    return out


def resolve_source(spec: ModelSpec) -> Path:
    """A local HF folder (config.json, weights, tokenizer) for any source kind."""
    kind = spec.source_kind
    if kind == "offline":
        from tuningtax.models.offline_qwen import fetch_offline_qwen

        return fetch_offline_qwen()
    if kind == "gguf":
        gguf = Path(spec.source).expanduser().resolve()
        if not gguf.is_file():
            raise UserError(f"model {spec.name}: GGUF file {spec.source} does not exist")
        log(f"hashing {gguf.name}")
        return convert_gguf(gguf, sha256_file(gguf), provenance={"source": spec.source})
    if kind == "local":
        folder = Path(spec.source).expanduser()
        if not (folder / "config.json").is_file() and not (folder / ASSETS).is_file():
            raise UserError(f"model {spec.name}: {spec.source} is not an HF model folder (no config.json)")
        return folder
    from huggingface_hub import snapshot_download

    log(f"fetching {spec.source}@{spec.revision} from the hub")
    try:
        return Path(snapshot_download(repo_id=spec.source, revision=spec.revision))
    except Exception as err:  # network, auth, missing revision: all need the user's action
        raise UserError(f"model {spec.name}: cannot fetch {spec.source}@{spec.revision}: {err}") from err
