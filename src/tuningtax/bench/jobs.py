"""`python -m tuningtax bench jobs [LOG ...] [--since ISO] [--cores N] [--out JSON]`: where a study's wall time
went, read from Snakemake's own logs (default: every `.snakemake/log/*.snakemake.log` of the working folder).

Each job's seconds run from the timestamp before its `rule`/`localrule` block to the one before its `Finished
jobid` line (Snakemake writes them to the second, so a job under a second counts as 0 or 1). Per rule it
prints the jobs, their summed seconds and that sum's share of the runs' wall time, plus the share of the
validation rules (Great Expectations) together, against the wall time and against wall time x cores. A DVC
repro runs one Snakemake per stage: the wall time is the sum over the logs read.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
START = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")


def read_log(path: Path) -> tuple[float, list[tuple[str, float]]]:
    """(wall seconds from the first to the last timestamp, [(rule, job seconds), ...]) of one Snakemake log."""
    stamps: list[datetime] = []
    started: dict[str, tuple[str, datetime]] = {}
    pending_rule: tuple[str, datetime] | None = None
    jobs: list[tuple[str, float]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if m := STAMP.match(line):
            stamps.append(datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y"))
        elif (m := START.match(line)) and stamps:
            pending_rule = (m.group(1), stamps[-1])
        elif (m := JOBID.match(line)) and pending_rule:
            started[m.group(1)] = pending_rule
            pending_rule = None
        elif (m := FINISHED.match(line)) and m.group(1) in started and stamps:
            rule, begun = started.pop(m.group(1))
            jobs.append((rule, (stamps[-1] - begun).total_seconds()))
    wall = (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else 0.0
    return wall, jobs


def summarize(logs: list[Path], cores: int) -> dict:
    wall, per_rule = 0.0, defaultdict(lambda: {"jobs": 0, "job_s": 0.0})
    for log in logs:
        log_wall, jobs = read_log(log)
        wall += log_wall
        for rule, seconds in jobs:
            per_rule[rule]["jobs"] += 1
            per_rule[rule]["job_s"] += seconds
    validation = sum(r["job_s"] for name, r in per_rule.items() if name.startswith("validate_"))
    validation_jobs = sum(r["jobs"] for name, r in per_rule.items() if name.startswith("validate_"))
    return {"logs": len(logs), "wall_s": wall, "cores": cores,
            "rules": {name: {**r, "share_of_wall": r["job_s"] / wall if wall else 0.0}
                      for name, r in sorted(per_rule.items(), key=lambda kv: -kv[1]["job_s"])},
            "validation": {"jobs": validation_jobs, "job_s": validation,
                           "share_of_wall": validation / wall if wall else 0.0,
                           "share_of_wall_x_cores": validation / (wall * cores) if wall else 0.0}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuningtax bench jobs", description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="*", type=Path, help="Snakemake logs (default: .snakemake/log/*.snakemake.log)")
    parser.add_argument("--since", help="only logs whose name (an ISO time) is at or after this, e.g. 2026-12-06T23:57")
    parser.add_argument("--cores", type=int, default=2, help="cores the runs had (for the wall x cores share)")
    parser.add_argument("--out", type=Path, help="also write the summary as JSON here")
    args = parser.parse_args(argv)
    logs = args.logs or sorted(Path(".snakemake/log").glob("*.snakemake.log"))
    if args.since:
        logs = [log for log in logs if log.name >= args.since.replace(":", "")]
    if not logs:
        parser.error("no Snakemake logs found: run in the study's folder or name the logs")
    summary = summarize(logs, args.cores)
    print(f"{summary['logs']} Snakemake runs, {summary['wall_s']:.0f} s wall in all, {args.cores} cores")
    print(f"{'rule':<26}{'jobs':>6}{'job s':>9}{'of wall':>9}")
    for name, r in summary["rules"].items():
        print(f"{name:<26}{r['jobs']:>6}{r['job_s']:>9.0f}{r['share_of_wall']:>9.1%}")
    v = summary["validation"]
    print(f"validation (Great Expectations): {v['jobs']} jobs, {v['job_s']:.0f} s = {v['share_of_wall']:.1%} of wall, "
          f"{v['share_of_wall_x_cores']:.1%} of wall x cores")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return 0
