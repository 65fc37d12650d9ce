rule fetch_model:
    input:
        checkpoint=local_checkpoint,
    output:
        "data/03_models/{model}.source.txt",
    params:
        spec=spec_json,
        code=code_version("fetch-model"),
    log:
        "logs/fetch_model/{model}.log",
    shell:
        "{PYTHON} -m tuningtax fetch-model --model {wildcards.model} --spec-json {params.spec} "
        "> {output} 2> {log}"


rule export_onnx:
    input:
        source=rules.fetch_model.output[0],
    output:
        directory("data/04_onnx/{model}/fp32"),
    params:
        spec=spec_json,
        last_logits="--last-logits" if GEN["last_logits"] else "",
        code=code_version("export"),
    threads: workflow.cores
    resources:
        mem_mb=8000,
    log:
        "logs/export_onnx/{model}/fp32.log",
    shell:
        "{PYTHON} -m tuningtax export --model {wildcards.model} --spec-json {params.spec} --variant fp32 "
        "--out {output} --threads {threads} --force {params.last_logits} > {log} 2>&1"


rule quantize_onnx:
    input:
        fp32="data/04_onnx/{model}/fp32",
    output:
        directory("data/04_onnx/{model}/int8"),
    params:
        spec=spec_json,
        code=code_version("export"),
    threads: workflow.cores
    log:
        "logs/export_onnx/{model}/int8.log",
    shell:
        "{PYTHON} -m tuningtax export --model {wildcards.model} --spec-json {params.spec} --variant int8 "
        "--fp32-dir {input.fp32} --out {output} --threads {threads} --force > {log} 2>&1"
