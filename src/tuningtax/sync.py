"""``python -m tuningtax pull`` and ``python -m tuningtax verify``: sharing results through a DVC remote, and
checking that a clean rerun reproduces the committed dvc.lock.

``pull``: ``dvc pull`` restores every tracked output with fresh mtimes and no Snakemake metadata, so Snakemake
alone would judge them stale by mtime. Once ``dvc status`` confirms by content that every stage matches
dvc.lock, ``snakemake --touch --forceall`` records them as current (in DAG order, with metadata), so both
``dvc repro`` and ``snakemake -n`` then have nothing to do. If any stage differs, nothing is touched.

``verify``: reruns every stage (``dvc repro --force``) and prints each output whose hash differs from the
dvc.lock committed before the run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from tuningtax.errors import UserError


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("+ " + " ".join(command), file=sys.stderr, flush=True)
    return subprocess.run(command, **kwargs)


def stale_stages(cwd: Path | None = None) -> dict:
    """``dvc status --json``: stage -> what differs from dvc.lock (empty when everything matches)."""
    status = _run(["dvc", "status", "--json"], cwd=cwd, capture_output=True, text=True)
    if status.returncode != 0:
        raise UserError(f"dvc status failed:\n{status.stderr[-2000:]}")
    return json.loads(status.stdout or "{}")


def add_arguments_pull(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--remote", "-r", help="DVC remote (default: the one set with dvc remote add -d)")
    parser.add_argument("--no-fetch", action="store_true", help="skip dvc pull; only mark the outputs current")


def run_pull(args: argparse.Namespace) -> int:
    if not args.no_fetch:
        pull = _run(["dvc", "pull", *(["--remote", args.remote] if args.remote else [])])
        if pull.returncode != 0:
            raise UserError("dvc pull failed (see above); nothing was marked current")
    stale = stale_stages()
    if stale:
        raise UserError("these stages differ from dvc.lock, so Snakemake's view was left as it is: "
                        f"{', '.join(sorted(stale))}; run `dvc repro` to rebuild them")
    from tuningtax.dvcstages import TARGET_ONLY_RULES  # the study and the trajectory: every tracked output

    touch = _run([sys.executable, "-m", "snakemake", "--touch", "--forceall", "--cores", "1", "--quiet", "--",
                  *TARGET_ONLY_RULES])
    if touch.returncode != 0:
        raise UserError("snakemake --touch failed (see above)")
    print("every output matches dvc.lock; Snakemake records them as current", file=sys.stderr)
    return 0


def lock_outputs(lock: dict) -> dict[str, str]:
    """out path -> its md5 in a parsed dvc.lock."""
    return {out["path"]: out.get("md5", "") for stage in lock.get("stages", {}).values()
            for out in stage.get("outs", [])}


def differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    lines = []
    for path in sorted(set(before) | set(after)):
        if before.get(path) != after.get(path):
            lines.append(f"{path}: {before.get(path) or '(absent)'} -> {after.get(path) or '(absent)'}")
    return lines


def add_arguments_verify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lock", type=Path, default=Path("dvc.lock"))


def run_verify(args: argparse.Namespace) -> int:
    if not args.lock.exists():
        raise UserError(f"{args.lock}: not found; run `dvc repro` once and commit dvc.lock")
    before = lock_outputs(yaml.safe_load(args.lock.read_text()))
    repro = _run(["dvc", "repro", "--force"])
    if repro.returncode != 0:
        raise UserError("dvc repro --force failed (see above)")
    after = lock_outputs(yaml.safe_load(args.lock.read_text()))
    diff = differences(before, after)
    if diff:
        print(f"{len(diff)} of {len(before)} outputs differ from the committed {args.lock}:")
        print("\n".join(diff))
        return 1
    print(f"all {len(before)} outputs are byte-identical to the committed {args.lock}")
    return 0
