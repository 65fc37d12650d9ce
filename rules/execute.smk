rule execute_completions:
    input:
        tasks=rules.subset_tasks.output[0],
        completions=rules.postprocess_completions.output[0],
        validated=rules.validate_postprocessed.output[0],
    output:
        directory("data/06_executions/{model}/{variant}/{benchmark}/{format}"),
    params:
        sandbox=sandbox_args,
        code=code_version("execute"),
    threads: workflow.cores
    log:
        run="logs/execute_completions/{model}/{variant}/{benchmark}/{format}.log",
        timings="logs/timings/{model}/{variant}/{benchmark}/{format}.jsonl",
    shell:
        "{PYTHON} -m tuningtax execute --tasks {input.tasks} --completions {input.completions} --out {output} "
        "{params.sandbox} --timings {log.timings} > {log.run} 2>&1"


rule validate_executions:
    input:
        data=rules.execute_completions.output[0],
        tasks=rules.subset_tasks.output[0],
        suite=SUITES / "executions.json",
    output:
        "data/06_executions/{model}/{variant}/{benchmark}/{format}.validated.json",
    params:
        code=code_version("validate"),
    log:
        "logs/validate_executions/{model}/{variant}/{benchmark}/{format}.log",
    shell:
        "{PYTHON} -m tuningtax validate --suite {input.suite} --input {input.data} --out {output} "
        "--param expected_rows=@{input.tasks} > {log} 2>&1"
