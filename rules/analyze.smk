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
        plots=report(expand("results/plots/{name}.{ext}", name=PLOTS, ext=["png", "svg"]),
                     caption="../report/plots.rst", category="Plots"),
        plot_data=expand("results/plots/{name}.csv", name=PLOTS),
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


# The study's seven findings, each a check with its statistic and a verdict (tuningtax.analysis.findings).
rule check_findings:
    input:
        samples=expand("data/07_scores/{model}/samples.jsonl", model=STUDY_MODELS),
        validated=expand("data/07_scores/{model}/samples.validated.json", model=STUDY_MODELS),
    output:
        markdown=report("results/findings.md", caption="../report/findings.rst", category="Findings"),
        table="results/findings.csv",
    params:
        analysis=findings_json(),
        code=code_version("findings"),
    resources:
        **job_resources("check_findings"),
    log:
        "logs/check_findings.log",
    shell:
        "{PYTHON} -m tuningtax findings --samples {input.samples} --analysis-json {params.analysis} "
        "--out-md {output.markdown} --out-csv {output.table} > {log} 2>&1"


# The suites of the analysis outputs sit beside the code that writes them (a new one leaves every other
# validation's code version, and so the study, untouched); each is a declared input.
rule validate_findings:
    input:
        data=rules.check_findings.output.table,
        suite=local(project_path("src/tuningtax/analysis/suites/findings.json")),
    output:
        "results/findings.validated.json",
    params:
        code=code_version("validate"),
    resources:
        **job_resources("validate_findings"),
    log:
        "logs/validate_findings.log",
    shell:
        "{PYTHON} -m tuningtax validate --suite {input.suite} --input {input.data} --out {output} > {log} 2>&1"


rule validate_plots:
    input:
        data=rules.tabulate_results.output.plot_data,
        suite=local(project_path("src/tuningtax/analysis/suites/plot_data.json")),
    output:
        "results/plots/plots.validated.json",
    params:
        code=code_version("validate"),
    resources:
        **job_resources("validate_plots"),
    log:
        "logs/validate_plots.log",
    shell:
        "{PYTHON} -m tuningtax validate --suite {input.suite} --input {input.data} --out {output} > {log} 2>&1"


# One static page per study: every sample beside its task, filterable; report.html links each table row to it.
EXPLORER_TABLES = [t for t in ("prompt_grid", "tax", "trajectory", "three_mode") if t in TABLES]


rule build_explorer:
    input:
        samples=expand("data/07_scores/{model}/samples.jsonl", model=STUDY_MODELS),
        validated=expand("data/07_scores/{model}/samples.validated.json", model=STUDY_MODELS),
        tasks=subset_files(),
        tables=expand("results/tables/{name}.csv", name=EXPLORER_TABLES),
        findings=rules.check_findings.output.table,
        findings_validated=rules.validate_findings.output[0],
    output:
        page=report("results/explorer/index.html", caption="../report/explorer.rst", category="Explorer"),
        report_page="results/explorer/report.html",
        # one per benchmark some checkpoint has samples of (a base model skips chat-only runs)
        data=expand("results/explorer/data/{benchmark}.js",
                    benchmark=sorted({b for model in STUDY_MODELS for b, _ in runs_of(model)})),
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.page),
        code=code_version("explorer"),
    resources:
        **job_resources("build_explorer"),
    log:
        "logs/build_explorer.log",
    shell:
        "{PYTHON} -m tuningtax explorer --samples {input.samples} --tasks {input.tasks} --tables {input.tables} "
        "--findings {input.findings} --out-dir {params.out_dir} > {log} 2>&1"
