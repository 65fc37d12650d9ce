rule subset_tasks:
    input:
        tasks=rules.build_tasks.output[0],
        validated=rules.validate_tasks.output[0],
        gate=rules.gate_gold.output[0],
    output:
        "data/02_subsets/{benchmark}.jsonl",
    params:
        n=config["subset"]["n_problems"],
        per=flow_tasks_per_problem,
        seed=config["subset"]["seed"],
        code=code_version("subset"),
    resources:
        **job_resources("subset_tasks"),
    log:
        "logs/subset_tasks/{benchmark}.log",
    shell:
        "{PYTHON} -m tuningtax subset --tasks {input.tasks} --out {output} --n-problems {params.n} "
        "--max-per-problem {params.per} --seed {params.seed} > {log} 2>&1"


rule generate_completions:
    input:
        tasks=rules.subset_tasks.output[0],
        onnx=onnx_files("{model}", "{variant}"),
    output:
        completions="data/05_completions/{model}/{variant}/{benchmark}/{format}/raw_output.jsonl",
        config="data/05_completions/{model}/{variant}/{benchmark}/{format}/raw_output.jsonl.config.json",
    params:
        spec=spec_json,
        max_new=max_new_tokens,
        batch=GEN["batch_size"],
        max_prompt=GEN["max_prompt_tokens"],
        provider=GEN["provider"],
        onnx_dir=lambda wildcards, input: os.path.dirname(input.onnx[0]),
        code=code_version("generate"),
    threads: job_threads("generate_completions")
    resources:
        **job_resources("generate_completions"),
    log:
        "logs/generate_completions/{model}/{variant}/{benchmark}/{format}.log",
    shell:
        "{PYTHON} -m tuningtax generate --model {wildcards.model} --spec-json {params.spec} "
        "--variant {wildcards.variant} --onnx-dir {params.onnx_dir} --tasks {input.tasks} --format {wildcards.format} "
        "--out {output.completions} --batch-size {params.batch} --max-new-tokens {params.max_new} "
        "--max-prompt-tokens {params.max_prompt} --threads {threads} --provider {params.provider} > {log} 2>&1"


rule validate_completions:
    input:
        data=model_raw_outputs,
        tasks=model_subset_files,
    output:
        "data/05_completions/{model}/raw_output.validated.json",
    params:
        checks=validation_checks(with_token_budget=True),
        suite="completions",  # tuningtax/validation/suites/, part of the code version
        code=code_version("validate"),
    resources:
        **job_resources("validate_completions"),
    log:
        "logs/validate_completions/{model}.log",
    shell:
        "{PYTHON} -m tuningtax validate --suite {params.suite} {params.checks} --out {output} > {log} 2>&1"


# One job per level: each level is its own named file.
rule postprocess_completions:
    input:
        tasks=rules.subset_tasks.output[0],
        completions=rules.generate_completions.output.completions,
        validated=rules.validate_completions.output[0],
    output:
        "data/05_completions/{model}/{variant}/{benchmark}/{format}/levels/{level}.jsonl",
    params:
        code=code_version("postprocess"),
    resources:
        **job_resources("postprocess_completions"),
    log:
        "logs/postprocess_completions/{model}/{variant}/{benchmark}/{format}/{level}.log",
    shell:
        "{PYTHON} -m tuningtax postprocess --tasks {input.tasks} --completions {input.completions} "
        "--levels {wildcards.level} --out {output} > {log} 2>&1"


rule validate_postprocessed:
    input:
        data=model_level_files,
        tasks=model_subset_files,
    output:
        "data/05_completions/{model}/levels.validated.json",
    params:
        checks=validation_checks(),
        suite="postprocessed",  # tuningtax/validation/suites/, part of the code version
        code=code_version("validate"),
    resources:
        **job_resources("validate_postprocessed"),
    log:
        "logs/validate_postprocessed/{model}.log",
    shell:
        "{PYTHON} -m tuningtax validate --suite {params.suite} {params.checks} --out {output} > {log} 2>&1"
