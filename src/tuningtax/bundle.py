"""Folders as a fixed set of named files, so every output a rule declares is a file.

Remote storage (Snakemake's S3/GCS/fs plugins) and cluster jobs move declared files only, and folder outputs
break there. A folder artifact (an ONNX export, a tuned HF checkpoint) is therefore published as its large
files under fixed names (``model.onnx`` + ``model.onnx_data``, ``model.safetensors``) and one deterministic
``assets.tar`` holding everything else (config, tokenizer, generation config). ``unpacked`` gives a reader the
whole folder back, in a temporary directory, without copying the large files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from tuningtax.errors import UserError

ASSETS = "assets.tar"
ONNX_GRAPH, ONNX_DATA = "model.onnx", "model.onnx_data"
ONNX_FILES = (ONNX_GRAPH, ONNX_DATA, "parity.json", ASSETS)  # what an export folder holds, by name
CHECKPOINT_WEIGHTS = "model.safetensors"
CHECKPOINT_FILES = (CHECKPOINT_WEIGHTS, "tuning.json", ASSETS)


def _reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """No owner, time or mode from the machine that packed it: the same folder gives the same bytes."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o644
    return info


def pack_assets(folder: Path, keep: Iterable[str]) -> list[str]:
    """Move every file of ``folder`` not named in ``keep`` into ``folder/assets.tar``; returns their names."""
    keep = set(keep) | {ASSETS}
    members = sorted(p for p in folder.iterdir() if p.name not in keep)
    if any(not p.is_file() for p in members):
        bad = next(p for p in members if not p.is_file())
        raise UserError(f"{bad}: only plain files can be packed into {ASSETS}")
    with tarfile.open(folder / ASSETS, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in members:
            tar.add(path, arcname=path.name, filter=_reset)
    for path in members:
        path.unlink()
    return [p.name for p in members]


@contextlib.contextmanager
def unpacked(folder: str | os.PathLike) -> Iterator[Path]:
    """The whole folder: ``folder`` itself when it holds no assets.tar, else a temporary folder with the assets
    extracted and the other files linked (symbolic links: nothing large is copied)."""
    folder = Path(folder)
    assets = folder / ASSETS
    if not assets.exists():
        yield folder
        return
    tmp = Path(tempfile.mkdtemp(prefix="tuningtax-unpacked-"))
    try:
        with tarfile.open(assets) as tar:
            for member in tar.getmembers():
                if not member.isfile() or "/" in member.name or member.name.startswith("."):
                    raise UserError(f"{assets}: unexpected member {member.name!r}; rebuild it")
            tar.extractall(tmp, filter="data")
        for path in folder.iterdir():
            if path.name != ASSETS and not (tmp / path.name).exists():
                (tmp / path.name).symlink_to(path.resolve())
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def single_external_data(onnx_path: Path) -> None:
    """Rewrite the graph so that all its weights sit in one ``model.onnx_data`` beside it, whatever the exporter
    chose (none below 2 GB, ``model.onnx.data`` from the quantizer), so an export is always the same files."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    graph = onnx.load(os.fspath(onnx_path), load_external_data=False)
    tensors = [t for t in onnx.external_data_helper._get_all_tensors(graph) if uses_external_data(t)]
    locations = {ExternalDataInfo(t).location for t in tensors}
    if locations == {ONNX_DATA}:
        return
    if len(locations) == 1:  # one file under another name: rename it and point the graph at the new name
        (onnx_path.parent / locations.pop()).rename(onnx_path.parent / ONNX_DATA)
        for tensor in tensors:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = ONNX_DATA
        onnx.save(graph, os.fspath(onnx_path))
        return
    full = onnx.load(os.fspath(onnx_path))  # inline or several files: gather every weight into one
    old = [onnx_path.parent / name for name in locations]
    onnx.save(full, os.fspath(onnx_path), save_as_external_data=True, all_tensors_to_one_file=True,
              location=ONNX_DATA, size_threshold=0)
    for path in old:
        if path.name != ONNX_DATA:
            path.unlink(missing_ok=True)
