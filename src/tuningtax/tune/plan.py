"""The checkpoints a tuning section yields, known before training so that the DAG is static.

Arm ``A`` saved at step ``n`` is the model ``A-stepN`` (role checkpoint, step n), read from
``data/03_checkpoints/A/step-N``; it is evaluated on ``tuning.evaluate`` only. Step 0 is the start model.
"""

from __future__ import annotations

CHECKPOINT_ROOT = "data/03_checkpoints"
TRAINING_BENCHMARK = {"mbppplus": "mbppplus-command"}  # tuning.data -> the benchmark whose tasks are trained on
# The fields of `tuning` that change the weights of every arm (evaluate and arms do not: an arm's own entry
# is tracked on its own, so adding an arm retrains none of the others).
TRAINING_FIELDS = ("start", "data", "n_examples", "method", "lora", "max_seq_len", "batch_size", "learning_rate",
                   "warmup_steps", "save_steps", "seed")


def checkpoint_name(arm: str, step: int) -> str:
    return f"{arm}-step{step}"


def checkpoint_dir(arm: str, step: int) -> str:
    return f"{CHECKPOINT_ROOT}/{arm}/step-{step}"


def arm_dir(arm: str) -> str:
    return f"{CHECKPOINT_ROOT}/{arm}"


def tuned_models(config: dict) -> dict[str, dict]:
    """{name: models-entry} of every checkpoint the tuning section saves, in arm then step order."""
    tuning = config.get("tuning")
    if not tuning or tuning["start"] not in config["models"]:
        return {}
    family = config["models"][tuning["start"]]["family"]
    return {checkpoint_name(arm, step): {"family": family, "role": "checkpoint", "step": step,
                                         "source": "./" + checkpoint_dir(arm, step), "revision": None}
            for arm in tuning["arms"] for step in sorted(tuning["save_steps"])}

