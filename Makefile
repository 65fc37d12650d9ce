# `make study` and `make test` each set up the environment first; setup is idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= $(shell nproc)
# The CPU build of torch: a local wheel folder when the machine has one, else PyTorch's CPU index.
WHEELS ?= /opt/wheels
TORCH_SOURCE := $(if $(wildcard $(WHEELS)),--find-links $(WHEELS),--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
# EXTRA: cpu or gpu (the ONNX Runtime build), plus any of slurm, kubernetes, s3 (comma-separated); naming only
# cluster extras keeps the CPU build: `make setup EXTRA=slurm` installs cpu,slurm.
EXTRA ?= cpu
comma := ,
EXTRAS = $(if $(filter cpu gpu,$(subst $(comma), ,$(EXTRA))),$(EXTRA),cpu$(comma)$(EXTRA))
# The tests drive the cluster profiles through their plugins; the study's default install has none of them.
TEST_EXTRA := $(EXTRA),slurm,kubernetes,s3

.PHONY: setup study trajectory test test-fast verify pull bench-sandbox clean-results

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.9

# --compile-bytecode: every job is a fresh interpreter, and where PYTHONDONTWRITEBYTECODE is set (or the venv is
# read-only) nothing caches compiled modules, so each import of Great Expectations, Snakemake or pandas would
# compile them from source again (docs/speed.md, "Compiled bytecode").
$(VENV)/.installed-%: $(BIN)/python pyproject.toml constraints.txt Makefile
	$(BIN)/uv pip install --python $(BIN)/python $(TORCH_SOURCE) --compile-bytecode \
	    -c constraints.txt -e ".[$*]" --group test
	touch $@

setup: $(VENV)/.installed-$(EXTRAS)

# DVC runs each stage's Snakemake targets; the venv goes first on PATH so stages find its snakemake.
RUN := PATH="$(CURDIR)/$(BIN):$$PATH"

# The study's tables and the gold table (and every stage they need); the tuning lab is `make trajectory`.
study: setup
	$(BIN)/python -m tuningtax dvc-yaml --check
	$(RUN) $(BIN)/dvc repro tables gold-table
	$(BIN)/snakemake --cores 1 --configfile params.yaml --report report/report.html

# The tuning lab (params.yaml tuning:): train both arms, evaluate every saved checkpoint, tabulate the trajectory.
trajectory: setup
	$(BIN)/python -m tuningtax dvc-yaml --check
	$(RUN) $(BIN)/dvc repro trajectory

# Rerun every stage from a clean state and compare each output's hash with the committed dvc.lock.
verify: setup
	$(RUN) $(BIN)/python -m tuningtax verify

# Fetch every tracked output from the DVC remote, then mark Snakemake's view of them current.
pull: setup
	$(RUN) $(BIN)/python -m tuningtax pull

# Every test; CI runs this. The slowest 25 are listed at the end (CI has a time limit to keep).
test:
	$(MAKE) setup EXTRA=$(TEST_EXTRA)
	$(BIN)/python -m pytest --durations=25

# Everything not marked slow (pytest.mark.slow: whole studies, ONNX exports): a few minutes on 2 cores.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

bench-sandbox: setup
	$(BIN)/python -m tuningtax bench sandbox

clean-results:
	rm -rf results data/01_tasks data/06_executions
