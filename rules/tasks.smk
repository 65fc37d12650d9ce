rule build_tasks:
    output:
        "data/01_tasks/{benchmark}.jsonl",
    params:
        code=code_version("tasks"),
    log:
        "logs/build_tasks/{benchmark}.log",
    shell:
        "{PYTHON} -m tuningtax tasks --benchmark {wildcards.benchmark} --mirror {MIRROR:q} "
        "--out {output} > {log} 2>&1"


rule validate_tasks:
    input:
        data=rules.build_tasks.output[0],
        suite=SUITES / "tasks.json",
    output:
        "data/01_tasks/{benchmark}.validated.json",
    params:
        expected_rows=expected_task_count,
        code=code_version("validate"),
    log:
        "logs/validate_tasks/{benchmark}.log",
    shell:
        "{PYTHON} -m tuningtax validate --suite {input.suite} --input {input.data} --out {output} "
        "--param expected_rows={params.expected_rows} --param benchmark={wildcards.benchmark} > {log} 2>&1"
