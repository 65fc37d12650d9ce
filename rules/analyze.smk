rule tabulate_scores:
    input:
        executions=execution_files(),
        validated=expand("data/06_executions/{model}/executions.validated.json", model=STUDY_MODELS),
    output:
        "results/scores.csv",
    params:
        code=code_version("score-table"),
    resources:
        **job_resources("tabulate_scores"),
    log:
        "logs/tabulate_scores.log",
    shell:
        "{PYTHON} -m tuningtax score-table --executions {input.executions} --out {output} > {log} 2>&1"


rule validate_scores:
    input:
        data=rules.tabulate_scores.output[0],
    output:
        "results/scores.validated.json",
    params:
        suite="scores",  # tuningtax/validation/suites/, part of the code version
        code=code_version("validate"),
    resources:
        **job_resources("validate_scores"),
    log:
        "logs/validate_scores.log",
    shell:
        "{PYTHON} -m tuningtax validate --suite {params.suite} --input {input.data} --out {output} > {log} 2>&1"


# One sample file per checkpoint, so adding a checkpoint measures only it.
rule measure_samples:
    input:
        executions=model_executions,
        validated=model_executions_validated,
        completions=model_completion_files,
        tasks=model_subset_files,
    output:
        "data/07_scores/{model}/samples.jsonl",
    params:
        code=code_version("measure"),
    resources:
        **job_resources("measure_samples"),
    log:
        "logs/measure_samples/{model}.log",
    shell:
        "{PYTHON} -m tuningtax measure --executions {input.executions} --completions {input.completions} "
        "--tasks {input.tasks} --out {output} "
        "> {log} 2>&1"


rule validate_samples:
    input:
        data=rules.measure_samples.output[0],
    output:
        "data/07_scores/{model}/samples.validated.json",
    params:
        suite="samples",  # tuningtax/validation/suites/, part of the code version
        code=code_version("validate"),
    resources:
        **job_resources("validate_samples"),
    log:
        "logs/validate_samples/{model}.log",
    shell:
        "{PYTHON} -m tuningtax validate --suite {params.suite} --input {input.data} --out {output} > {log} 2>&1"


# Every table and plot is named (no folder outputs); tuningtax.analysis.report.output_names says which.
TABLES, PLOTS = output_names(
    {"pairs": config["pairs"], "series": config["series"]}, config["variants"], bool(config["analysis"]["labels"]))


rule tabulate_results:
    input:
        samples=expand("data/07_scores/{model}/samples.jsonl", model=STUDY_MODELS),
        validated=expand("data/07_scores/{model}/samples.validated.json", model=STUDY_MODELS),
        scores_validated=rules.validate_scores.output[0],
        tasks=subset_files(),
        labels=[local(project_path(config["analysis"]["labels"]))] if config["analysis"]["labels"] else [],
    output:
        tables=report(expand("results/tables/{name}.csv", name=TABLES), caption="../report/tables.rst",
                      category="Tables"),
        markdown=expand("results/tables/{name}.md", name=TABLES),
        plots=report(expand("results/plots/{name}.png", name=PLOTS), caption="../report/plots.rst",
                     category="Plots"),
        metrics="results/metrics.json",
    params:
        analysis=analysis_json(),
        labels=labels_arg,
        tables_dir=lambda wildcards, output: os.path.dirname(output.tables[0]),
        plots_dir=lambda wildcards, output: os.path.dirname(output.plots[0]),
        code=code_version("tabulate"),
    resources:
        **job_resources("tabulate_results"),
    log:
        "logs/tabulate_results.log",
    shell:
        "{PYTHON} -m tuningtax tabulate --samples {input.samples} --tasks {input.tasks} "
        "--analysis-json {params.analysis} {params.labels} --out-dir {params.tables_dir} --plots-dir {params.plots_dir} "
        "--metrics {output.metrics} > {log} 2>&1"
