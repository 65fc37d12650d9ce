"""What each rule asks a scheduler for (memory, run time, CPUs, GPU): the one place it is decided.

The rules read ``rule_resources(rule, config)``; a cluster profile overrides any of it per rule
(``set-resources: {export_onnx: {mem_mb: 200000}}``). Model-bound steps scale with the checkpoint's size in
billions of parameters, read from ``models.<name>.size_b`` when given, else from the name or source
(``...-1.5B...``), else 1. The figures are bounds, not measurements of the big sizes: fp32 weights take 4 GB
per billion parameters, and the export holds them about three times over (PyTorch model, traced graph, ONNX
Runtime session of the parity check); run times extrapolate this machine's measurements (docs/cluster.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SIZE_IN_NAME = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])")
GIB = 1024


@dataclass(frozen=True)
class Need:
    mem_mb: int  # fixed part
    mem_mb_per_b: int = 0  # per billion parameters of the rule's model
    runtime: int = 30  # minutes, fixed part
    runtime_per_b: int = 0
    cpus: int = 1
    uses_gpu: bool = False  # asks for a GPU when generation.provider is cuda


NEEDS = {
    "fetch_model": Need(mem_mb=4 * GIB, mem_mb_per_b=6 * GIB, runtime=20, runtime_per_b=5, cpus=2),
    # optimum traces and the parity check runs on the CPU (ONNX Runtime's CPU tokens are the reference), so a
    # GPU would sit idle: export asks for CPUs and memory only
    "export_onnx": Need(mem_mb=8 * GIB, mem_mb_per_b=14 * GIB, runtime=30, runtime_per_b=20, cpus=8),
    "quantize_onnx": Need(mem_mb=4 * GIB, mem_mb_per_b=10 * GIB, runtime=20, runtime_per_b=10, cpus=4),
    "generate_completions": Need(mem_mb=6 * GIB, mem_mb_per_b=6 * GIB, runtime=60, runtime_per_b=30, cpus=4,
                                 uses_gpu=True),
    "tune_arm": Need(mem_mb=12 * GIB, mem_mb_per_b=20 * GIB, runtime=60, runtime_per_b=60, cpus=4, uses_gpu=True),
    "run_gold": Need(mem_mb=4 * GIB, runtime=60, cpus=4),
    "execute_completions": Need(mem_mb=4 * GIB, runtime=60, cpus=4),
    "tabulate_results": Need(mem_mb=4 * GIB, runtime=30, cpus=1),
}
SMALL = Need(mem_mb=2 * GIB, runtime=15, cpus=1)  # validation, subsets, tables, measures


def model_size_b(entry: dict | None) -> float:
    """Billions of parameters: models.<name>.size_b, else a figure in the name or source, else 1."""
    if not entry:
        return 1.0
    if entry.get("size_b"):
        return float(entry["size_b"])
    for text in (entry.get("name", ""), entry.get("source", "")):
        found = SIZE_IN_NAME.findall(str(text))
        if found:
            return float(found[-1])
    return 1.0


def rule_resources(rule: str, model: dict | None = None, provider: str = "cpu") -> dict[str, int]:
    """mem_mb, runtime (minutes), cpus_per_task and gpu for one job of ``rule`` on ``model``'s checkpoint."""
    need = NEEDS.get(rule, SMALL)
    size = model_size_b(model)
    return {"mem_mb": int(need.mem_mb + need.mem_mb_per_b * size),
            "runtime": int(need.runtime + need.runtime_per_b * size),
            "cpus_per_task": need.cpus,
            "gpu": int(need.uses_gpu and provider == "cuda")}
