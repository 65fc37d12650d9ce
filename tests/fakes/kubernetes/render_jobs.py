"""The Job bodies snakemake-executor-plugin-kubernetes (0.5) would submit, without a cluster: Snakemake runs
in this process with the Kubernetes client mocked; each create_namespaced_job body is recorded, and every job
is then reported failed, so nothing runs. Usage: python render_jobs.py OUT.json SNAKEMAKE-ARGS..."""

import json
import sys
from unittest import mock

import kubernetes

jobs = []
batch = mock.MagicMock(name="BatchV1Api")
batch.create_namespaced_job.side_effect = lambda namespace, body, **_: jobs.append(body) or body
batch.read_namespaced_job_status.return_value = kubernetes.client.V1Job(
    status=kubernetes.client.V1JobStatus(failed=1))
core = mock.MagicMock(name="CoreV1Api")
core.list_namespaced_pod.return_value = kubernetes.client.V1PodList(items=[])

out, args = sys.argv[1], sys.argv[2:]
with mock.patch("kubernetes.config.load_kube_config"), \
        mock.patch("kubernetes.client.BatchV1Api", return_value=batch), \
        mock.patch("kubernetes.client.CoreV1Api", return_value=core):
    from snakemake.cli import main

    try:
        main([*args, "--executor", "kubernetes", "--keep-going"])
    except SystemExit:
        pass
serialize = kubernetes.client.ApiClient().sanitize_for_serialization
with open(out, "w") as fh:
    json.dump([serialize(body) for body in jobs], fh, indent=1)
