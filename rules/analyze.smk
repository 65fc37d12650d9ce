rule tabulate_scores:
    input:
        executions=execution_files(),
        validated=[f.replace(".jsonl", ".validated.json") for f in execution_files()],
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
