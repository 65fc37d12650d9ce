# tuningtax: the fine-grained DAG. Rules only wire paths, params, logs and threads; every step is
# `python -m tuningtax <command>` (src/tuningtax). Config = params.yaml (validated in rules/common.smk).
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/tasks.smk"
include: "rules/gold.smk"
include: "rules/models.smk"
include: "rules/generate.smk"
include: "rules/execute.smk"
include: "rules/analyze.smk"
include: "rules/tune.smk"


rule all:
    input:
        "results/gold.csv",
        "results/scores.csv" if RUNS else [],
        "results/metrics.json" if RUNS else [],
        "results/findings.validated.json" if RUNS else [],
        "results/plots/plots.validated.json" if RUNS else [],
        "results/explorer/index.html" if RUNS else [],
    default_target: True
