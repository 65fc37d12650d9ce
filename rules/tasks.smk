rule build_tasks:
    output:
        "data/01_tasks/{benchmark}.jsonl",
    params:
        code=code_version("tasks"),
    resources:
        **job_resources("build_tasks"),
    log:
        "logs/build_tasks/{benchmark}.log",
    shell:
        "{PYTHON} -m tuningtax tasks --benchmark {wildcards.benchmark} --mirror {MIRROR:q} "
        "--out {output} > {log} 2>&1"


rule validate_tasks:
    input:
        data=rules.build_tasks.output[0],
    output:
        "data/01_tasks/{benchmark}.validated.json",
    params:
        expected_rows=expected_task_count,
        suite="tasks",  # tuningtax/validation/suites/, part of the code version
        code=code_version("validate"),
    resources:
        **job_resources("validate_tasks"),
    log:
        "logs/validate_tasks/{benchmark}.log",
    shell:
        "{PYTHON} -m tuningtax validate --suite {params.suite} --input {input.data} --out {output} "
        "--param expected_rows={params.expected_rows} --param benchmark={wildcards.benchmark} > {log} 2>&1"
