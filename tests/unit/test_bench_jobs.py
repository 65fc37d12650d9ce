"""``bench jobs`` reads job times from Snakemake's own log format and totals them per rule."""

from __future__ import annotations

import json

from tuningtax.bench.jobs import main, read_log

LOG = """Building DAG of jobs...
Select jobs to execute...
Execute 2 jobs...
[Sun Dec  6 23:18:10 2026]
localrule validate_completions:
    input: a.jsonl
    jobid: 3
    threads: 1
[Sun Dec  6 23:18:11 2026]
rule generate_completions:
    output: b.jsonl
    jobid: 4
[Sun Dec  6 23:18:19 2026]
Finished jobid: 3 (Rule: validate_completions)
1 of 2 steps (50%) done
[Sun Dec  6 23:18:31 2026]
Finished jobid: 4 (Rule: generate_completions)
2 of 2 steps (100%) done
"""


def test_jobs_are_timed_from_their_start_to_their_finished_line(tmp_path):
    log = tmp_path / "2026-12-06T231810.000000.snakemake.log"
    log.write_text(LOG)
    wall, jobs = read_log(log)
    assert wall == 21 and sorted(jobs) == [("generate_completions", 20), ("validate_completions", 9)]


def test_the_summary_gives_the_validation_share(tmp_path, capsys):
    log = tmp_path / "2026-12-06T231810.000000.snakemake.log"
    log.write_text(LOG)
    assert main([str(log), "--cores", "2", "--out", str(tmp_path / "jobs.json")]) == 0
    summary = json.loads((tmp_path / "jobs.json").read_text())
    assert summary["validation"] == {"jobs": 1, "job_s": 9, "share_of_wall": 9 / 21, "share_of_wall_x_cores": 9 / 42}
    assert summary["rules"]["generate_completions"]["jobs"] == 1
    assert "validation (Great Expectations): 1 jobs" in capsys.readouterr().out
