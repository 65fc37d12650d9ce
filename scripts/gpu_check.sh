#!/usr/bin/env bash
# GPU check for a one-GPU machine without network: prints nvidia-smi, then runs scripts/gpu_check.py
# (package versions, tiny ONNX export + parity on the CPU provider, the CUDA-provider guard, transformers
# timing of a random-weight model with the real Qwen2.5-Coder-0.5B architecture, ORT on CUDA against
# PyTorch on the same GPU where onnxruntime has the CUDA provider). Results: $OUT/gpu.json when
# $OUT is set, else results/bench/gpu.json. Extra arguments go to gpu_check.py (see its --help), e.g.
#   scripts/gpu_check.sh                          # on the GPU machine, about 3 minutes on an H100
#   scripts/gpu_check.sh --device cpu --tiny-only # dry run anywhere (ORT on the CPU provider), under a minute
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-/opt/torch/.venv/bin/python3}"
[ -x "$PY" ] || PY=python3
echo "== nvidia-smi"
nvidia-smi || echo "nvidia-smi not available"
echo "== python: $PY"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
# No network on the GPU machine: make any accidental hub lookup fail fast instead of hanging.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# The script's own --budget-s (170 s) skips timing configurations; this outer limit only catches a hang.
# Raise it with --budget-s, e.g. GPU_CHECK_TIMEOUT_S=480 scripts/gpu_check.sh --export-real --budget-s 400.
limit="${GPU_CHECK_TIMEOUT_S:-230}"
timeout "$limit" "$PY" scripts/gpu_check.py "$@"
rc=$?
[ $rc -eq 124 ] && echo "*** gpu_check.py hit the $limit s limit; the JSON holds the steps finished before it ***"
exit $rc
