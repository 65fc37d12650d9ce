#!/usr/bin/env bash
# Submit command for Snakemake's cluster-generic executor in the remote-safety test: each job script runs as
# its own detached process (its own session), in the background, and its id is printed. Every submission is
# appended to $FAKE_CLUSTER_LOG/submissions.log.
set -euo pipefail
jobscript="${*: -1}"
log_dir="${FAKE_CLUSTER_LOG:?set FAKE_CLUSTER_LOG to a folder}"
id="$$-$RANDOM"
printf '%s %s\n' "$id" "$jobscript" >> "$log_dir/submissions.log"
setsid bash "$jobscript" > "$log_dir/job-$id.out" 2>&1 < /dev/null &
echo "$id"
