# The tuning lab: each arm trains from tuning.start to its last save step in one job; its checkpoints are
# models (tuningtax.tune.plan) that the export -> generate -> execute -> measure rules treat like any other.
from tuningtax.tune.plan import TRAINING_BENCHMARK, arm_dir, checkpoint_dir

ARMS = list(TUNING["arms"]) if TUNING else []


wildcard_constraints:
    arm=alternatives(ARMS),


def training_tasks():
    return f"data/01_tasks/{TRAINING_BENCHMARK[TUNING['data']]}.jsonl"


def start_source():
    return f"data/03_models/{TUNING['start']}.source.txt"


def start_spec():
    return shlex.quote(json.dumps(STUDY_MODELS[TUNING["start"]], sort_keys=True))


def tuning_json():
    return shlex.quote(json.dumps(TUNING, sort_keys=True))


def trajectory_json():
    analysis = {"seed": config["analysis"]["seed"], "n_resamples": config["analysis"]["n_resamples"]}
    return shlex.quote(json.dumps({"tuning": TUNING, **analysis}, sort_keys=True))


def trajectory_findings_json():
    """The findings' analysis JSON for the tuning lab: one series per arm (step 0 = the start model), each mode
    at tuning.evaluate's view; the lab has no base/instruct pairs."""
    steps = {name: m["step"] for name, m in TUNED.items()}
    from tuningtax.tune.plan import checkpoint_name

    series = [{"start": TUNING["start"],
               "checkpoints": [checkpoint_name(arm, step) for step in sorted(TUNING["save_steps"])]} for arm in ARMS]
    analysis = {"pairs": [], "series": series, "steps": steps, "seed": config["analysis"]["seed"],
                "n_resamples": config["analysis"]["n_resamples"], "models": {},
                "three_mode": {mode: TUNING["evaluate"].get(mode) for mode in ("flow", "completion", "command")}}
    return shlex.quote(json.dumps(analysis, sort_keys=True))


if TUNING:

    rule tune_arm:
        input:
            source=start_source(),
            train=training_tasks(),
            validated=training_tasks().replace(".jsonl", ".validated.json"),
            # every task a tuned checkpoint is evaluated on: overlapping training problems are refused
            evaluation=subset_files(TUNED_RUNS),
        output:
            checkpoints=[f"{checkpoint_dir('{arm}', step)}/{name}" for step in sorted(TUNING["save_steps"])
                         for name in CHECKPOINT_FILES],
            train_log=arm_dir("{arm}") + "/train_log.jsonl",
            examples=arm_dir("{arm}") + "/examples.jsonl",
        params:
            spec=start_spec(),
            tuning=tuning_json(),
            start=TUNING["start"],
            out_dir=lambda wildcards, output: os.path.dirname(output.train_log),
            device=GEN["provider"],  # cuda: train on the GPU the generation rules use
            code=code_version("tune"),
        threads: job_threads("tune_arm")
        resources:
            **job_resources("tune_arm"),
        log:
            "logs/tune/{arm}.log",
        shell:
            "{PYTHON} -m tuningtax tune --model {params.start} --spec-json {params.spec} --arm {wildcards.arm} "
            "--tuning-json {params.tuning} --source-file {input.source} --train-tasks {input.train} "
            "--eval-tasks {input.evaluation} --out-dir {params.out_dir} --threads {threads} --device {params.device} "
            "> {log} 2>&1"

    rule validate_train_log:
        input:
            data=rules.tune_arm.output.train_log,
        output:
            arm_dir("{arm}") + "/train_log.validated.json",
        params:
            suite="train_log",  # tuningtax/validation/suites/, part of the code version
            code=code_version("validate"),
        resources:
            **job_resources("validate_train_log"),
        log:
            "logs/validate_train_log/{arm}.log",
        shell:
            "{PYTHON} -m tuningtax validate --suite {params.suite} --input {input.data} --out {output} > {log} 2>&1"

    rule tabulate_trajectory:
        input:
            samples=expand("data/07_scores/{model}/samples.jsonl", model=[TUNING["start"], *TUNED]),
            validated=expand("data/07_scores/{model}/samples.validated.json", model=[TUNING["start"], *TUNED]),
            train_logs=expand(arm_dir("{arm}") + "/train_log.jsonl", arm=ARMS),
            train_logs_validated=expand(arm_dir("{arm}") + "/train_log.validated.json", arm=ARMS),
        output:
            table="results/trajectory/trajectory.md",
            csv="results/trajectory/trajectory.csv",
            loss="results/trajectory/loss.csv",
            plots=report(expand("results/trajectory/{name}.{ext}", name=["trajectory", "loss"], ext=["png", "svg"]),
                         caption="../report/trajectory.rst", category="Trajectory"),
        params:
            trajectory=trajectory_json(),
            out_dir=lambda wildcards, output: os.path.dirname(output.table),
            code=code_version("trajectory"),
        resources:
            **job_resources("tabulate_trajectory"),
        log:
            "logs/tabulate_trajectory.log",
        shell:
            "{PYTHON} -m tuningtax trajectory --samples {input.samples} --train-logs {input.train_logs} "
            "--trajectory-json {params.trajectory} --out-dir {params.out_dir} > {log} 2>&1"


    # Finding 7 (and what the others can say without pairs) on the lab's checkpoints.
    rule check_trajectory_findings:
        input:
            samples=rules.tabulate_trajectory.input.samples,
            validated=rules.tabulate_trajectory.input.validated,
        output:
            markdown="results/trajectory/findings.md",
            table="results/trajectory/findings.csv",
        params:
            analysis=trajectory_findings_json(),
            code=code_version("findings"),
        resources:
            **job_resources("check_trajectory_findings"),
        log:
            "logs/check_trajectory_findings.log",
        shell:
            "{PYTHON} -m tuningtax findings --samples {input.samples} --analysis-json {params.analysis} "
            "--out-md {output.markdown} --out-csv {output.table} > {log} 2>&1"


# `snakemake trajectory` (or `make trajectory`): the tuning lab's table and plots; empty without tuning.
rule trajectory:
    input:
        rules.tabulate_trajectory.output if TUNING else [],
        rules.check_trajectory_findings.output if TUNING else [],
