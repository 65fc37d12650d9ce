"""Export variants of a checkpoint (the variant registry) and the name a run goes by in tables and pairs."""

from __future__ import annotations

# fp32: the exported graph as is; int8: its MatMul weights quantized (tuningtax.export.quantize).
VARIANTS = ("fp32", "int8")


def model_key(model: str, variant: str) -> str:
    """fp32 is the model itself, other variants are marked: NAME@int8."""
    return model if variant == "fp32" else f"{model}@{variant}"
