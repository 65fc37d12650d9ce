rule execute_completions:
    input:
        tasks=rules.subset_tasks.output[0],
        completions=rules.postprocess_completions.output[0],
        validated=rules.validate_postprocessed.output[0],
    output:
        "data/05_executions/{model}/{variant}/{benchmark}/{format}/{level}.jsonl",
    params:
        sandbox=lambda w, threads: sandbox_args(threads),
        code=code_version("sandbox", "tasks/schema.py"),
    threads: workflow.cores
    log:
        "logs/execute_completions/{model}/{variant}/{benchmark}/{format}/{level}.log",
    shell:
        "{PYTHON} -m tuningtax execute --tasks {input.tasks} --completions {input.completions} --out {output} "
        "{params.sandbox} --timings logs/timings/{wildcards.model}/{wildcards.variant}/{wildcards.benchmark}/"
        "{wildcards.format}/{wildcards.level}.jsonl > {log} 2>&1"


rule validate_executions:
    input:
        data=rules.execute_completions.output[0],
        tasks=rules.subset_tasks.output[0],
        suite=SUITES / "executions.json",
    output:
        "data/05_executions/{model}/{variant}/{benchmark}/{format}/{level}.validated.json",
    params:
        code=code_version("validation"),
    log:
        "logs/validate_executions/{model}/{variant}/{benchmark}/{format}/{level}.log",
    shell:
        "{PYTHON} -m tuningtax validate --suite {input.suite} --input {input.data} --out {output} "
        "--param expected_rows=@{input.tasks} > {log} 2>&1"
