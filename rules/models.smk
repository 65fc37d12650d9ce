rule fetch_model:
    input:
        checkpoint=local_checkpoint,
    output:
        "data/03_models/{model}.source.txt",
    params:
        spec=spec_json,
        source_dir=source_dir_arg,
        code=code_version("fetch-model"),
    resources:
        **job_resources("fetch_model"),
    log:
        "logs/fetch_model/{model}.log",
    shell:
        "{PYTHON} -m tuningtax fetch-model --model {wildcards.model} --spec-json {params.spec} {params.source_dir} "
        "> {output} 2> {log}"


# An export is a fixed set of files (tuningtax.bundle.ONNX_FILES), never a folder output.
rule export_onnx:
    input:
        source=rules.fetch_model.output[0],
        checkpoint=tuned_checkpoint,
    output:
        onnx_files("{model}", "fp32"),
    params:
        spec=spec_json,
        source_dir=source_dir_arg,
        out_dir=lambda wildcards, output: os.path.dirname(output[0]),
        last_logits="--last-logits" if GEN["last_logits"] else "",
        code=code_version("export"),
    threads: job_threads("export_onnx")
    resources:
        **job_resources("export_onnx"),
    log:
        "logs/export_onnx/{model}/fp32.log",
    shell:
        "{PYTHON} -m tuningtax export --model {wildcards.model} --spec-json {params.spec} --variant fp32 "
        "--out {params.out_dir} {params.source_dir} --threads {threads} --force {params.last_logits} > {log} 2>&1"


rule quantize_onnx:
    input:
        fp32=onnx_files("{model}", "fp32"),
    output:
        onnx_files("{model}", "int8"),
    params:
        spec=spec_json,
        fp32_dir=lambda wildcards, input: os.path.dirname(input.fp32[0]),
        out_dir=lambda wildcards, output: os.path.dirname(output[0]),
        code=code_version("export"),
    threads: job_threads("quantize_onnx")
    resources:
        **job_resources("quantize_onnx"),
    log:
        "logs/export_onnx/{model}/int8.log",
    shell:
        "{PYTHON} -m tuningtax export --model {wildcards.model} --spec-json {params.spec} --variant int8 "
        "--fp32-dir {params.fp32_dir} --out {params.out_dir} --threads {threads} --force > {log} 2>&1"
