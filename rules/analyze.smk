rule tabulate_scores:
    input:
        executions=execution_dirs(),
        validated=[d + ".validated.json" for d in execution_dirs()],
    output:
        "results/scores.csv",
    params:
        code=code_version("score-table"),
    log:
        "logs/tabulate_scores.log",
    shell:
        "{PYTHON} -m tuningtax score-table --executions {input.executions} --out {output} > {log} 2>&1"


rule validate_scores:
    input:
        data=rules.tabulate_scores.output[0],
        suite=SUITES / "scores.json",
    output:
        "results/scores.validated.json",
    params:
        code=code_version("validate"),
    log:
        "logs/validate_scores.log",
    shell:
        "{PYTHON} -m tuningtax validate --suite {input.suite} --input {input.data} --out {output} > {log} 2>&1"


# One sample file per checkpoint, so adding a checkpoint measures only it.
rule measure_samples:
    input:
        executions=model_executions,
        validated=model_executions_validated,
        raw=model_raw_outputs,
        levels=model_levels,
        tasks=model_subset_files,
    output:
        "data/07_scores/{model}/samples.jsonl",
    params:
        code=code_version("measure"),
    log:
        "logs/measure_samples/{model}.log",
    shell:
        "{PYTHON} -m tuningtax measure --executions {input.executions} --tasks {input.tasks} --out {output} "
        "> {log} 2>&1"


rule validate_samples:
    input:
        data=rules.measure_samples.output[0],
        suite=SUITES / "samples.json",
    output:
        "data/07_scores/{model}/samples.validated.json",
    params:
        code=code_version("validate"),
    log:
        "logs/validate_samples/{model}.log",
    shell:
        "{PYTHON} -m tuningtax validate --suite {input.suite} --input {input.data} --out {output} > {log} 2>&1"


rule tabulate_results:
    input:
        samples=expand(rules.measure_samples.output[0], model=STUDY_MODELS),
        validated=expand(rules.validate_samples.output[0], model=STUDY_MODELS),
        scores_validated=rules.validate_scores.output[0],
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
        labels=labels_arg,
        code=code_version("tabulate"),
    log:
        "logs/tabulate_results.log",
    shell:
        "{PYTHON} -m tuningtax tabulate --samples {input.samples} --tasks {input.tasks} "
        "--analysis-json {params.analysis} {params.labels} --out-dir {output.tables} --plots-dir {output.plots} "
        "--metrics {output.metrics} > {log} 2>&1"
