rule tabulate_scores:
    input:
        executions=execution_dirs(),
        validated=[d + ".validated.json" for d in execution_dirs()],
        suite=SUITES / "scores.json",
    output:
        "results/scores.csv",
    params:
        code=code_version("scoring", "validation"),
    log:
        "logs/tabulate_scores.log",
    shell:
        "({PYTHON} -m tuningtax score-table --executions {input.executions} --out {output} && "
        "{PYTHON} -m tuningtax validate --suite {input.suite} --input {output} --out logs/scores.validated.json) "
        "> {log} 2>&1"


rule measure_samples:
    input:
        executions=execution_dirs(),
        validated=[d + ".validated.json" for d in execution_dirs()],
        tasks=subset_files(),
    output:
        "data/06_scores/samples.jsonl",
    params:
        code=code_version("analysis/samples.py", "metrics", "taxonomy"),
    log:
        "logs/measure_samples.log",
    shell:
        "{PYTHON} -m tuningtax measure --executions {input.executions} --tasks {input.tasks} --out {output} "
        "> {log} 2>&1"


rule validate_samples:
    input:
        data=rules.measure_samples.output[0],
        suite=SUITES / "samples.json",
    output:
        "data/06_scores/samples.validated.json",
    params:
        code=code_version("validation"),
    log:
        "logs/validate_samples.log",
    shell:
        "{PYTHON} -m tuningtax validate --suite {input.suite} --input {input.data} --out {output} > {log} 2>&1"


rule tabulate_results:
    input:
        samples=rules.measure_samples.output[0],
        validated=rules.validate_samples.output[0],
        tasks=subset_files(),
        labels=[project_path(config["analysis"]["labels"])] if config["analysis"]["labels"] else [],
    output:
        tables=report(directory("results/tables"), patterns=["{name}.csv"], caption="../report/tables.rst",
                      category="Tables"),
        plots=report(directory("results/plots"), patterns=["{name}.png"], caption="../report/plots.rst",
                     category="Plots"),
        metrics="results/metrics.json",
    params:
        analysis=analysis_json(),
        labels=lambda w, input: f"--labels {input.labels}" if input.labels else "",
        code=code_version("analysis", "metrics", "taxonomy"),
    log:
        "logs/tabulate_results.log",
    shell:
        "{PYTHON} -m tuningtax tabulate --samples {input.samples} --tasks {input.tasks} "
        "--analysis-json {params.analysis} {params.labels} --out-dir {output.tables} --plots-dir {output.plots} "
        "--metrics {output.metrics} > {log} 2>&1"
