# One job per level (each result file is named). Cluster profiles pack executions into grouped submissions
# (profiles/slurm: groups, group-components); a checkpoint's validation stays a job of its own.
rule execute_completions:
    input:
        tasks=rules.subset_tasks.output[0],
        completions=rules.postprocess_completions.output[0],
        validated=rules.validate_postprocessed.output[0],
    output:
        "data/06_executions/{model}/{variant}/{benchmark}/{format}/{level}.jsonl",
    params:
        sandbox=sandbox_args,
        code=code_version("execute"),
    threads: job_threads("execute_completions")
    resources:
        **job_resources("execute_completions"),
    log:
        run="logs/execute_completions/{model}/{variant}/{benchmark}/{format}/{level}.log",
        timings="logs/timings/{model}/{variant}/{benchmark}/{format}/{level}.jsonl",
    shell:
        "{PYTHON} -m tuningtax execute --tasks {input.tasks} --completions {input.completions} --out {output} "
        "{params.sandbox} --timings {log.timings} > {log.run} 2>&1"


rule validate_executions:
    input:
        data=model_executions,
        tasks=model_subset_files,
    output:
        "data/06_executions/{model}/executions.validated.json",
    params:
        checks=validation_checks(),
        suite="executions",  # tuningtax/validation/suites/, part of the code version
        code=code_version("validate"),
    resources:
        **job_resources("validate_executions"),
    log:
        "logs/validate_executions/{model}.log",
    shell:
        "{PYTHON} -m tuningtax validate --suite {params.suite} {params.checks} --out {output} > {log} 2>&1"
