"""``python -m tuningtax lineage PATH [--row KEY=VALUE,...]``: the chain behind a table (or one row of it).

Walks dvc.lock from the stage that wrote PATH back through every stage whose outputs it read, down to the
checkpoint and the benchmark files, printing for each file its md5 as dvc.lock records it, and for each
stage its params, code version, and the records that admitted its outputs (Great Expectations summaries,
the export's parity report, the generation config, the checkpoint's resolved source). A file whose working
copy differs from dvc.lock, or a stage ``dvc status`` reports as changed, is flagged UNTRACED: its number
cannot be traced to the recorded inputs.
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import json
import re
import sys
from pathlib import Path

import yaml

from tuningtax.errors import UserError

KEY_COLUMNS = ("model", "checkpoint", "variant", "benchmark", "format", "prompt_format", "base", "instruct")


class Lock:
    def __init__(self, root: Path):
        lock_path = root / "dvc.lock"
        if not lock_path.exists():
            raise UserError(f"{lock_path}: not found; run `dvc repro` (and commit dvc.lock) before tracing")
        self.root = root
        self.stages = yaml.safe_load(lock_path.read_text()).get("stages", {})
        self.producer = {out["path"]: name for name, stage in self.stages.items() for out in stage.get("outs", [])}
        self.changed = self._dvc_status()

    def _dvc_status(self) -> set[str] | None:
        from tuningtax.sync import stale_stages

        try:
            return set(stale_stages(self.root))
        except (UserError, FileNotFoundError):
            return None

    def out_of(self, path: str) -> str | None:
        """The tracked out that holds path (the path itself or a folder above it)."""
        parts = Path(path).parts
        for i in range(len(parts), 0, -1):
            candidate = Path(*parts[:i]).as_posix()
            if candidate in self.producer:
                return candidate
        return None

    def file_state(self, path: str, md5: str | None) -> str:
        local = self.root / path
        if not local.exists():
            return "absent here"
        if local.is_dir() or not md5:
            return ""
        from dvc_data.hashfile.hash import file_md5  # the hash dvc.lock records (dvc 3: md5 of the bytes)

        return "matches" if file_md5(str(local)) == md5 else "UNTRACED: working copy differs from dvc.lock"


@functools.lru_cache(maxsize=256)
def _read_summary(path: Path) -> dict:
    return json.loads(path.read_text())


def _validation_summary(root: Path, out: str) -> tuple[str, dict] | None:
    """The GX summary that admitted `out`: its own ({name}.validated.json), else the nearest one in a folder
    above it that lists it (a checkpoint's summary covers all of its runs' files)."""
    base = out[: -len(".jsonl")] if out.endswith(".jsonl") else out
    for own in (f"{base}.validated.json", f"{out}.validated.json"):
        if (root / own).is_file():
            return own, _read_summary(root / own)
    for folder in Path(out).parents:
        if folder.as_posix() in (".", "data"):
            break
        for summary in sorted((root / folder).glob("*.validated.json")):
            data = _read_summary(summary)
            if any(f.get("file") == out for f in data.get("files", [data])):
                return summary.relative_to(root).as_posix(), data
    return None


def _admission(root: Path, out: str) -> list[str]:
    """What admitted an output: its GX summary, parity report, generation config or resolved source."""
    notes = []
    summary = _validation_summary(root, out)
    if summary is not None:
        candidate, data = summary
        files = data.get("files", [data])  # a summary of several files lists them; a file's is itself
        checks = [e["success"] for f in files for e in f.get("expectations", [])]
        notes.append(f"Great Expectations suite {data.get('suite')} ({candidate}): success={data.get('success')}, "
                     f"{sum(checks)}/{len(checks)} expectations met over {len(files)} file(s)")
    config = root / f"{out}.config.json"
    if config.is_file():
        notes.append("generation config: " + json.dumps(json.loads(config.read_text()), sort_keys=True))
    parity = root / out
    if out.startswith("data/04_onnx/") and parity.name == "parity.json" and parity.is_file():
        data = json.loads(parity.read_text())
        notes.append("parity: " + json.dumps({k: data[k] for k in sorted(data) if not isinstance(data[k], (list, dict))},
                                             sort_keys=True))
    onnx = re.match(r"^data/04_onnx/([^/]+)/[^/]+/parity\.json$", out)
    source = root / "data" / "03_models" / f"{onnx.group(1)}.source.txt" if onnx else None
    if source is not None and source.is_file():
        notes.append(f"checkpoint resolved from ({source.relative_to(root)}): " + " ".join(source.read_text().split()))
    return notes


# Where the pipeline's layout puts a checkpoint, variant, benchmark and prompt format in a path.
PATH_KEYS = [re.compile(p) for p in (
    r"^data/(?:01_tasks|02_subsets|06_executions/gold|07_scores/gold)/(?P<benchmark>[^/]+?)\.(?:jsonl|validated\.json|gate\.json)$",
    r"^data/03_models/(?P<model>[^/]+)\.source\.txt$",
    r"^data/04_onnx/(?P<model>[^/]+)/(?P<variant>[^/]+)",
    r"^data/0[56]_[a-z]+/(?P<model>[^/]+)/(?P<variant>[^/]+)/(?P<benchmark>[^/]+)/(?P<format>[a-z-]+)",
    r"^data/0[56]_[a-z]+/(?P<model>[^/]+)/[a-z_]+\.validated\.json$",  # a checkpoint's validation summary
    r"^data/07_scores/(?P<model>[^/]+)/samples",
)]


def path_keys(path: str) -> dict[str, str]:
    for pattern in PATH_KEYS:
        match = pattern.match(path)
        if match:
            return match.groupdict()
    return {}


def row_constraints(row: dict[str, str]) -> dict[str, set[str]]:
    """The checkpoints, variants, benchmarks and formats a table row is computed from."""
    allowed: dict[str, set[str]] = {}
    for column in ("model", "base", "instruct", "checkpoint"):
        if row.get(column):
            name, _, variant = row[column].partition("@")
            allowed.setdefault("model", set()).add(name)
            allowed.setdefault("variant", set()).add(variant or "fp32")
    if row.get("variant"):
        allowed["variant"] = {row["variant"]}
    for column, key in (("benchmark", "benchmark"), ("format", "format"), ("prompt_format", "format")):
        if row.get(column):
            allowed[key] = {row[column]}
    return allowed


def _relevant(path: str, allowed: dict[str, set[str]]) -> bool:
    return all(value in allowed[key] for key, value in path_keys(path).items() if key in allowed)


def trace(root: Path, target: str, row: dict[str, str] | None = None, out=sys.stdout) -> bool:
    """Print the chain; True when every file and stage in it matches dvc.lock."""
    lock = Lock(root)
    held_by = lock.out_of(target)
    # a folder (results/tables) stands for the tracked files in it
    folder = target.rstrip("/") + "/"
    held = [held_by] if held_by is not None else sorted(p for p in lock.producer if p.startswith(folder))
    if not held:
        raise UserError(f"{target}: no stage of dvc.lock writes it (run `dvc repro`, or name a tracked output)")
    traced = True
    seen: set[str] = set()
    allowed = row_constraints(row) if row else {}

    def emit(text: str, depth: int) -> None:
        print("  " * depth + text, file=out)

    def walk(out_path: str, depth: int) -> None:
        nonlocal traced
        stage_name = lock.producer[out_path]
        stage = lock.stages[stage_name]
        md5 = next(o.get("md5") for o in stage["outs"] if o["path"] == out_path)
        state = lock.file_state(out_path, md5)
        traced &= not state.startswith("UNTRACED")
        emit(f"{out_path}  md5 {md5}  [stage {stage_name}]{'  ' + state if state else ''}", depth)
        for note in _admission(root, out_path):
            emit(f"| {note}", depth + 1)
        if stage_name in seen:
            emit("| (its stage is shown above)", depth + 1)
            return
        seen.add(stage_name)
        if lock.changed is None:
            emit("| dvc status unavailable: the stage's match with dvc.lock is not checked", depth + 1)
        elif stage_name in lock.changed:
            traced = False
            emit("| UNTRACED: dvc status reports this stage changed since dvc.lock", depth + 1)
        for params in stage.get("params", {}).values():
            for key, value in sorted(params.items()):
                emit(f"| param {key} = {json.dumps(value, sort_keys=True)}", depth + 1)
        code = [d for d in stage.get("deps", []) if d["path"].startswith("src/")]
        if code:
            digest = hashlib.sha256("".join(f"{d['path']}:{d['md5']}\n" for d in code).encode()).hexdigest()[:16]
            emit(f"| code: {len(code)} source files (import closure), sha256 of their md5s {digest}", depth + 1)
        for dep in stage.get("deps", []):
            path = dep["path"]
            if path.startswith(("src/", "rules/")) or (allowed and not _relevant(path, allowed)):
                continue
            producer = lock.out_of(path)
            if producer is not None and producer in lock.producer:
                walk(producer, depth + 1)
            else:
                state = lock.file_state(path, dep.get("md5"))
                traced &= not state.startswith("UNTRACED")
                emit(f"<- {path}  md5 {dep.get('md5') or dep.get('hash')}  (source){'  ' + state if state else ''}",
                     depth + 1)

    if row:
        emit(f"row {', '.join(f'{k}={v}' for k, v in row.items())} of {target}", 0)
    for path in held:
        walk(path, 0)
    print("every file and stage above matches dvc.lock" if traced else
          "NOT fully traced: the UNTRACED entries above differ from dvc.lock", file=out)
    return traced


def find_row(path: Path, wanted: dict[str, str]) -> dict[str, str]:
    if path.suffix != ".csv":
        raise UserError(f"{path}: --row needs a CSV table")
    with path.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if all(r.get(k) == v for k, v in wanted.items())]
    if not rows:
        raise UserError(f"{path}: no row with {', '.join(f'{k}={v}' for k, v in wanted.items())}")
    if len(rows) > 1:
        raise UserError(f"{path}: {len(rows)} rows match; add columns to --row until one does")
    return rows[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a tracked output, e.g. results/tables/tax.csv")
    parser.add_argument("--row", help="COLUMN=VALUE,... selecting one row of a CSV table")


def run(args: argparse.Namespace) -> int:
    root = Path.cwd()
    target = Path(args.path).as_posix()
    row = None
    if args.row:
        try:
            wanted = dict(item.split("=", 1) for item in args.row.split(","))
        except ValueError:
            raise UserError(f"--row {args.row!r}: expected COLUMN=VALUE[,COLUMN=VALUE...]") from None
        full = find_row(root / target, wanted)
        row = {k: v for k, v in full.items() if k in KEY_COLUMNS}
        print("row: " + json.dumps(full))
    return 0 if trace(root, target, row) else 1
