rule run_gold:
    input:
        tasks=rules.build_tasks.output[0],
        validated=rules.validate_tasks.output[0],
    output:
        "data/06_executions/gold/{benchmark}.jsonl",
    params:
        sandbox=sandbox_args,
        code=code_version("gold"),
    threads: job_threads("run_gold")
    resources:
        **job_resources("run_gold"),
    log:
        run="logs/run_gold/{benchmark}.log",
        timings="logs/timings/gold/{benchmark}.jsonl",
    shell:
        "{PYTHON} -m tuningtax gold --tasks {input.tasks} --out {output} {params.sandbox} "
        "--timings {log.timings} > {log.run} 2>&1"


rule validate_gold:
    input:
        data=rules.run_gold.output[0],
    output:
        "data/06_executions/gold/{benchmark}.validated.json",
    params:
        expected_rows=expected_task_count,
        suite="executions",  # tuningtax/validation/suites/, part of the code version
        code=code_version("validate"),
    resources:
        **job_resources("validate_gold"),
    log:
        "logs/validate_gold/{benchmark}.log",
    shell:
        "{PYTHON} -m tuningtax validate --suite {params.suite} --input {input.data} --out {output} "
        "--param expected_rows={params.expected_rows} > {log} 2>&1"


rule gate_gold:
    input:
        tasks=rules.build_tasks.output[0],
        results=rules.run_gold.output[0],
        validated=rules.validate_gold.output[0],
    output:
        "data/07_scores/gold/{benchmark}.gate.json",
    params:
        code=code_version("gold-gate"),
    resources:
        **job_resources("gate_gold"),
    log:
        "logs/gate_gold/{benchmark}.log",
    shell:
        "{PYTHON} -m tuningtax gold-gate --tasks {input.tasks} --results {input.results} --out {output} "
        "> {log} 2>&1"


rule tabulate_gold:
    input:
        expand("data/07_scores/gold/{benchmark}.gate.json", benchmark=config["benchmarks"]),
    output:
        "results/gold.csv",
    params:
        code=code_version("gold-table"),
    resources:
        **job_resources("tabulate_gold"),
    log:
        "logs/tabulate_gold.log",
    shell:
        "{PYTHON} -m tuningtax gold-table --gates {input} --out {output} > {log} 2>&1"
