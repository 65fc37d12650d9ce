"""scripts/gpu_check.py runs only on a lent GPU machine, so its code paths are dry-run here on the CPU:
the same export, parity and timing functions, with ONNX Runtime's CPU provider in place of CUDA."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # the GPU check script end to end on CPU


@pytest.mark.timeout(600)
def test_gpu_check_dry_run_on_cpu(repo_root, tmp_path):
    import onnxruntime

    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHONPATH": str(repo_root / "src"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(repo_root / "scripts" / "gpu_check.py"), "--device", "cpu", "--tiny-only",
         "--n-prompts", "3", "--prompt-tokens", "12", "--max-new-tokens", "6", "--batch-size", "2",
         "--parity-tokens", "6", "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=580)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())

    for name in ("environment", "onnx_tiny_export_and_parity", "ort_cuda_provider_guard", "transformers_timing",
                 "ort_parity_and_timing"):
        assert report[name]["ok"], (name, report[name].get("error"))
    export = report["onnx_tiny_export_and_parity"]["result"]
    assert export["batch1_identical_to_torch"] and export["left_padded_batch_identical_to_torch"]
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert report["ort_cuda_provider_guard"]["result"]["refused"] is True

    ort = report["ort_parity_and_timing"]["result"]
    assert ort["provider"] == "cpu" and ort["torch_device"] == "cpu"
    tiny = ort["tiny"]
    assert tiny["providers"][0] == "CPUExecutionProvider"
    for parity in ("parity_b1", "parity_b2"):
        assert tiny[parity]["prompts_identical"] == 1.0, tiny[parity]
        assert len(tiny[parity]["first_divergence"]) == 2  # parity rows = the first --batch-size prompts
    for batch in ("b1", "b2"):
        assert tiny[batch]["decode_tok_s"] > 0 and tiny[batch]["prefill_s_per_call"] > 0
    timings = report["transformers_timing"]["result"]["runs"]
    assert timings["eager-fp32-b1"]["token_agreement_vs_fp32_eager"] == 1.0
    assert "ORT cpu tiny vs torch cpu: parity_b1 prompts identical 1.000" in proc.stdout


@pytest.mark.timeout(300)
def test_bound_and_host_loops_side_by_side(repo_root, tmp_path, monkeypatch):
    """The CUDA branch of the ORT step, with the CPU standing in for the GPU: the default loop keeps the cache
    bound to the device, the host loop runs beside it, and both are checked against PyTorch and timed."""
    import argparse

    monkeypatch.syspath_prepend(str(repo_root / "scripts"))
    import gpu_check

    import tuningtax.generate.engine as engine

    calls = []
    real_bound_step, real_host_step = engine._bound_step, engine._host_step

    def recording_bound_step(*args):
        calls.append(("bound", args[-1]))
        return real_bound_step(*args)

    def recording_host_step(*args):
        calls.append(("host", None))
        return real_host_step(*args)

    monkeypatch.setattr(engine, "bind_device_of", lambda s: "cpu" if getattr(s, "get_providers", list)() else None)
    monkeypatch.setattr(engine, "_bound_step", recording_bound_step)
    monkeypatch.setattr(engine, "_host_step", recording_host_step)
    args = argparse.Namespace(ort_provider="cpu", device="cpu", n_prompts=3, prompt_tokens=12, batch_size=2,
                              parity_tokens=6, max_new_tokens=6, export_real=False, budget_s=1e9)
    tiny = gpu_check.ort_parity_and_timing(tmp_path, args)["tiny"]
    for parity in ("parity_b1", "parity_b2", "host_loop_parity_b1"):
        assert tiny[parity]["prompts_identical"] == 1.0, tiny[parity]
    for key in ("b1", "host-b1", "b2", "host-b2"):
        assert tiny[key]["decode_tok_s"] > 0, key
    # greedy calls per loop (each run_ort warms up once; parity uses the first --batch-size prompts): bound =
    # parity b1 (1 + 2) + parity b2 (1 + 1) + b1 (1 + 3) + b2 (1 + 2) = 12; host = parity b1 (3) + b1 (4) + b2 (3).
    assert calls.count(("bound", "cpu")) == 12 and calls.count(("host", None)) == 10 and len(calls) == 22
