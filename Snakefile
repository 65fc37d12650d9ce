# tuningtax: the fine-grained DAG. Rules only wire paths, params, logs and threads; every step is
# `python -m tuningtax <command>` (src/tuningtax). Config = params.yaml (validated in rules/common.smk).
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


include: "rules/common.smk"
include: "rules/tasks.smk"
include: "rules/execute.smk"


rule all:
    input:
        "results/gold.csv",
    default_target: True
