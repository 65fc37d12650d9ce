"""Peer inference engines run on token-id prompts, greedy, for comparison with the project's own ONNX Runtime
engine (``generate.engine.greedy``). One job per fresh process, so end-to-end time includes loading::

    python -m tuningtax.bench.peers run ENGINE --model-dir DIR --prompts PROMPTS.json --out OUT.json \\
        --batch-size B --threads T
    python -m tuningtax.bench.peers build ENGINE --hf-dir HF --out DIR [--precision fp32|int4|int8]

Engines:
  genai     onnxruntime-genai on a folder made by its own model builder (genai_config.json + model.onnx)
  ct2       CTranslate2 on a converted folder, computing in the precision it was converted to
  llamacpp  llama-cpp-python on a GGUF file (``--model-dir`` is the .gguf path); batch 1 only

PROMPTS.json: {"prompts": [[id, ...], ...], "max_new_tokens": N, "stop_token_ids": [id, ...], "pad_token_id": P}
OUT.json: {"engine", "tokens", "load_s", "generate_s", "batch_size", "versions"}; ``tokens[i]`` are prompt i's new
tokens, greedy argmax, ending with the stop token when one was hit, else exactly N long (as ``engine.greedy``).
``load_s`` is loading the model, ``generate_s`` everything after it.

Every engine is forced to pure argmax: the model's generation_config (Qwen's sets repetition_penalty 1.1),
genai_config.json's search section and CTranslate2's defaults are overridden, and every engine stops at any of
``stop_token_ids`` instead of its own EOS list.

Batching (genai, ct2): prompts are sorted longest first and cut into batches of ``--batch-size`` so each batch
holds prompts of similar length (little padding); results go back in prompt order. genai takes a left-padded
[batch, width] matrix and masks every ``pad_token_id`` it sees, so a prompt that itself contains the pad id would
have that token masked: such prompts are refused in batches of more than one. CTranslate2 needs no padding
(it feeds the common prefix length at once and the rest of each prompt token by token).
Batching is not exact in either peer (measured on Qwen2.5-Coder-0.5B): genai fp32 gives batch 1's tokens for
unpadded rows but a left-padded row's logits move by up to ~10 (argmax flips at near-ties); CTranslate2 int8
flips near-ties between batch sizes. Compare peers' batched tokens to their own batch 1, not only the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from tuningtax.errors import UserError

ENGINES = ("genai", "ct2", "llamacpp")
# module to import, pip requirement named in the error, distributions whose versions go into OUT.json
PACKAGES = {
    "genai": ("onnxruntime_genai", "onnxruntime-genai==0.18.0", ("onnxruntime-genai", "onnxruntime", "numpy")),
    "ct2": ("ctranslate2", "ctranslate2==4.8.5", ("ctranslate2", "numpy")),
    "llamacpp": ("llama_cpp", "llama-cpp-python", ("llama-cpp-python", "numpy")),
}
GENAI_PRECISIONS = ("fp32", "int4")
# CTranslate2 quantization names by the precision names the bench uses
CT2_PRECISIONS = {"int8": "int8", "fp32": "float32"}
# what `build ENGINE --precision` accepts, the default first
BUILD_PRECISIONS = {"genai": GENAI_PRECISIONS, "ct2": tuple(CT2_PRECISIONS)}


@dataclass(frozen=True)
class Job:
    prompts: list[list[int]]
    max_new_tokens: int
    stop_token_ids: list[int]
    pad_token_id: int


def require(engine: str) -> Any:
    """The engine's package, or a UserError naming the pip command."""
    module, requirement, _ = PACKAGES[engine]
    try:
        return __import__(module)
    except ImportError as err:
        raise UserError(f"engine {engine!r} needs the {module} package ({err}): "
                        f"pip install {requirement}") from None


def versions(engine: str) -> dict[str, str]:
    found = {}
    for dist in PACKAGES[engine][2]:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return found


def _int_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


def read_job(path: Path) -> Job:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read it as JSON ({err})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    prompts = data.get("prompts")
    if not isinstance(prompts, list) or not prompts or not all(_int_list(p) and p for p in prompts):
        raise UserError(f"{path}: 'prompts' must be a non-empty list of non-empty lists of token ids")
    n = data.get("max_new_tokens")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise UserError(f"{path}: 'max_new_tokens' must be an integer >= 1")
    stops = data.get("stop_token_ids", [])
    if not _int_list(stops):
        raise UserError(f"{path}: 'stop_token_ids' must be a list of token ids")
    pad = data.get("pad_token_id")
    if not isinstance(pad, int) or isinstance(pad, bool):
        raise UserError(f"{path}: 'pad_token_id' must be a token id")
    return Job(prompts, n, stops, pad)


def batches(prompts: Sequence[Sequence[int]], batch_size: int) -> list[list[int]]:
    """Prompt indices, longest first (ties in prompt order, as the project's own scheduler takes them), cut
    into groups of ``batch_size``."""
    from tuningtax.generate.scheduler import length_order

    order = length_order(prompts)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def cut_at_stop(tokens: Sequence[int], stops: set[int], limit: int) -> list[int]:
    """The first ``limit`` tokens, ending at (and including) the first stop token."""
    out = []
    for t in tokens[:limit]:
        out.append(int(t))
        if t in stops:
            break
    return out


# ---------------------------------------------------------------- genai

def genai_load(model_dir: Path, job: Job, threads: int) -> Any:
    og = require("genai")
    if not (model_dir / "genai_config.json").is_file():
        raise UserError(f"{model_dir} holds no genai_config.json; build it first: "
                        f"python -m tuningtax.bench.peers build genai --hf-dir HF --out {model_dir}")
    try:
        genai_config = json.loads((model_dir / "genai_config.json").read_text(encoding="utf-8"))
        vocab_size = int(genai_config["model"]["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"{model_dir}/genai_config.json: cannot read model.vocab_size ({err}); rebuild it") from None
    config = og.Config(os.fspath(model_dir))
    # genai insists on an EOS inside the vocabulary: without stop ids, the last id, an untrained padding row of the
    # embedding that argmax does not pick (genai_generate refuses it if it ever does)
    stops = job.stop_token_ids or [vocab_size - 1]
    # Thread counts, pad id and pure argmax, whatever the builder wrote into the search section. An overlay's
    # eos_token_id list is appended to the config's (0.18), an integer replaces it: set one, then add the rest.
    config.overlay(json.dumps({
        "model": {
            "decoder": {"session_options": {"intra_op_num_threads": threads, "inter_op_num_threads": 1}},
            "eos_token_id": stops[0],
            "pad_token_id": job.pad_token_id,
        },
        "search": {"do_sample": False, "num_beams": 1, "top_k": 1, "top_p": 1.0, "temperature": 1.0,
                   "repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "min_length": 0},
    }))
    if len(stops) > 1:
        config.overlay(json.dumps({"model": {"eos_token_id": stops[1:]}}))
    return og.Model(config), vocab_size


def genai_generate(loaded: Any, job: Job, rows: list[list[int]]) -> list[list[int]]:
    import numpy as np
    import onnxruntime_genai as og

    model, vocab_size = loaded
    if len(rows) > 1 and any(job.pad_token_id in r for r in rows):
        raise UserError(f"a prompt contains pad_token_id {job.pad_token_id}, which genai masks as padding in a "
                        "batch; run with --batch-size 1 or choose another pad id")
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), job.pad_token_id, dtype=np.int32)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = r  # left padding: every row's next token is at the last position
    params = og.GeneratorParams(model)
    # max_length bounds the KV buffer (shared past/present, allocated at max_length): the builder's default
    # of the full context would allocate gigabytes per row.
    params.set_search_options(max_length=width + job.max_new_tokens, batch_size=len(rows), do_sample=False,
                              num_beams=1, top_k=1, temperature=1.0, repetition_penalty=1.0)
    generator = og.Generator(model, params)
    generator.append_tokens(ids)
    stops = set(job.stop_token_ids)
    out: list[list[int]] = [[] for _ in rows]
    done = [False] * len(rows)
    while not all(done) and not generator.is_done():
        generator.generate_next_token()
        for i, t in enumerate(generator.get_next_tokens().tolist()):
            if not done[i]:
                out[i].append(int(t))
                done[i] = t in stops or len(out[i]) >= job.max_new_tokens
    del generator
    if not job.stop_token_ids and any(vocab_size - 1 in r for r in out):
        raise UserError("genai stopped a row at its stand-in EOS although no stop ids were given; pass stop ids")
    return out


# ---------------------------------------------------------------- ct2

def ct2_load(model_dir: Path, job: Job, threads: int) -> Any:
    ctranslate2 = require("ct2")
    if not (model_dir / "model.bin").is_file():
        raise UserError(f"{model_dir} holds no model.bin; convert it first: "
                        f"python -m tuningtax.bench.peers build ct2 --hf-dir HF --out {model_dir}")
    # "default" keeps the quantization chosen at conversion: int8 or float32 by the folder's build
    generator = ctranslate2.Generator(os.fspath(model_dir), device="cpu", compute_type="default",
                                      intra_threads=threads, inter_threads=1)
    return generator, _ct2_vocabulary(model_dir)


def _ct2_vocabulary(model_dir: Path) -> list[str]:
    """id -> token string: generate_batch takes prompts as token strings."""
    json_path, txt_path = model_dir / "vocabulary.json", model_dir / "vocabulary.txt"
    if json_path.is_file():
        return json.loads(json_path.read_text(encoding="utf-8"))
    if txt_path.is_file():
        return txt_path.read_text(encoding="utf-8").split("\n")
    raise UserError(f"{model_dir} holds no vocabulary.json or vocabulary.txt; convert the model again")


def ct2_generate(loaded: Any, job: Job, rows: list[list[int]]) -> list[list[int]]:
    generator, vocab = loaded
    try:
        prompts = [[vocab[t] for t in r] for r in rows]
    except IndexError:
        raise UserError(f"a prompt holds a token id outside the model's {len(vocab)}-token vocabulary") from None
    results = generator.generate_batch(
        prompts, max_batch_size=len(rows), beam_size=1, sampling_topk=1, sampling_topp=1.0,
        sampling_temperature=1.0, repetition_penalty=1.0, no_repeat_ngram_size=0, min_length=0,
        # end_token replaces the model's EOS list; an empty list would fall back to it, so without stop ids
        # pass an id past the vocabulary, which argmax never picks
        end_token=job.stop_token_ids or [len(vocab)], return_end_token=True,
        max_length=job.max_new_tokens, include_prompt_in_result=False,
    )
    stops = set(job.stop_token_ids)
    return [cut_at_stop(r.sequences_ids[0], stops, job.max_new_tokens) for r in results]


# ---------------------------------------------------------------- llama.cpp

def llamacpp_load(model_path: Path, job: Job, threads: int) -> Any:
    llama_cpp = require("llamacpp")
    if not model_path.is_file():
        raise UserError(f"{model_path} is not a file; llamacpp takes the .gguf path as --model-dir")
    longest = max(len(p) for p in job.prompts)
    return llama_cpp.Llama(model_path=os.fspath(model_path), n_ctx=longest + job.max_new_tokens + 8,
                           n_threads=threads, n_threads_batch=threads, n_batch=512, logits_all=False,
                           verbose=False)


def llamacpp_generate(llm: Any, job: Job, rows: list[list[int]]) -> list[list[int]]:
    stops = set(job.stop_token_ids)
    out = []
    for row in rows:
        # reset() drops the cached tokens: generate() would otherwise reuse the previous prompt's common prefix
        llm.reset()
        tokens: list[int] = []
        # temp 0 makes llama-cpp-python's sampler chain (penalties, then) greedy; penalties all neutral
        for t in llm.generate(row, top_k=1, top_p=1.0, min_p=0.0, typical_p=1.0, temp=0.0, repeat_penalty=1.0,
                              frequency_penalty=0.0, presence_penalty=0.0, reset=True):
            tokens.append(int(t))
            if t in stops or len(tokens) >= job.max_new_tokens:
                break
        out.append(tokens)
    return out


LOADERS: dict[str, Callable[[Path, Job, int], Any]] = {
    "genai": genai_load, "ct2": ct2_load, "llamacpp": llamacpp_load}
GENERATORS: dict[str, Callable[[Any, Job, list[list[int]]], list[list[int]]]] = {
    "genai": genai_generate, "ct2": ct2_generate, "llamacpp": llamacpp_generate}


def run(engine: str, model_dir: Path, job: Job, batch_size: int, threads: int) -> dict[str, Any]:
    if engine == "llamacpp" and batch_size != 1:
        raise UserError("engine llamacpp runs batch 1 only: pass --batch-size 1")
    require(engine)  # a missing package is reported before a missing model
    if not model_dir.exists():
        raise UserError(f"{model_dir} does not exist")
    start = time.perf_counter()
    model = LOADERS[engine](model_dir, job, threads)
    loaded = time.perf_counter()
    tokens: list[list[int]] = [[] for _ in job.prompts]
    for group in batches(job.prompts, batch_size):
        for i, row in zip(group, GENERATORS[engine](model, job, [job.prompts[i] for i in group])):
            tokens[i] = row
    end = time.perf_counter()
    return {"engine": engine, "tokens": tokens, "load_s": loaded - start, "generate_s": end - loaded,
            "batch_size": batch_size, "versions": versions(engine)}


def write_json_atomic(path: Path, data: Any) -> None:
    from tuningtax.jsonl import write_text_atomic

    write_text_atomic(path, json.dumps(data) + "\n")


# ---------------------------------------------------------------- build

# onnxruntime-genai 0.18's builder is written against transformers 5: it imports two Qwen3.5 classes at
# module level and iterates config.rope_scaling, which transformers 4.x leaves None for Qwen2. Neither matters
# for the models built here, so placeholders and an empty dict let it run on the project's transformers.
_BUILDER_SHIM = """
import runpy, sys, transformers
for name in ("Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration"):
    if not hasattr(transformers, name):
        setattr(transformers, name, type(name, (), {}))
_load = transformers.AutoConfig.from_pretrained
def _from_pretrained(*args, **kwargs):
    config = _load(*args, **kwargs)
    if getattr(config, "rope_scaling", {}) is None:
        config.rope_scaling = {}
    return config
transformers.AutoConfig.from_pretrained = _from_pretrained
sys.argv = ["onnxruntime_genai.models.builder"] + sys.argv[1:]
runpy.run_module("onnxruntime_genai.models.builder", run_name="__main__", alter_sys=True)
"""


def _fresh_dir(out: Path, force: bool) -> Path:
    """A temporary sibling of ``out`` to build into (renamed onto ``out`` at the end, so an interrupted build
    never looks finished)."""
    if out.exists() and not force:
        raise UserError(f"{out} already exists; pass --force to rebuild it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.building."))
    tmp.chmod(0o755)  # mkdtemp's 0700 would otherwise become the published folder's mode
    return tmp


def _publish(tmp: Path, out: Path) -> None:
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old."))
        os.replace(out, old / out.name)
        shutil.rmtree(old)
    os.replace(tmp, out)


def _check_hf(hf_dir: Path) -> None:
    if not (hf_dir / "config.json").is_file():
        raise UserError(f"{hf_dir} is not a Hugging Face model folder (no config.json)")


def build_genai(hf_dir: Path, out: Path, precision: str, threads: int, force: bool) -> None:
    require("genai")
    _check_hf(hf_dir)
    tmp = _fresh_dir(out, force)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    try:
        with tempfile.TemporaryDirectory(prefix="genai-builder-cache.") as cache:
            cmd = [sys.executable, "-c", _BUILDER_SHIM, "-i", os.fspath(hf_dir), "-o", os.fspath(tmp),
                   "-p", precision, "-e", "cpu", "-c", cache]
            if subprocess.run(cmd, env=env).returncode != 0:
                raise UserError(f"onnxruntime-genai's model builder failed on {hf_dir} (its output is above)")
        if not (tmp / "genai_config.json").is_file():
            raise UserError(f"onnxruntime-genai's model builder wrote no genai_config.json for {hf_dir}")
        _publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_ct2(hf_dir: Path, out: Path, precision: str, threads: int, force: bool) -> None:
    ctranslate2 = require("ct2")
    _check_hf(hf_dir)
    import torch

    torch.set_num_threads(threads)
    tmp = _fresh_dir(out, force)
    try:
        # the weights' precision; ct2_load computes in it ("default")
        converter = ctranslate2.converters.TransformersConverter(os.fspath(hf_dir), low_cpu_mem_usage=True)
        converter.convert(os.fspath(tmp), quantization=CT2_PRECISIONS[precision], force=True)
        _publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- CLI

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tuningtax.bench.peers", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="greedy tokens and timings of one engine on PROMPTS.json")
    r.add_argument("engine", choices=ENGINES)
    r.add_argument("--model-dir", required=True, type=Path, help="model folder (llamacpp: the .gguf file)")
    r.add_argument("--prompts", required=True, type=Path)
    r.add_argument("--out", required=True, type=Path)
    r.add_argument("--batch-size", type=int, default=1)
    r.add_argument("--threads", type=int, default=1)
    b = sub.add_parser("build", help="convert a Hugging Face folder for an engine")
    b.add_argument("engine", choices=("genai", "ct2"))
    b.add_argument("--hf-dir", required=True, type=Path)
    b.add_argument("--out", required=True, type=Path)
    b.add_argument("--precision", choices=sorted({p for ps in BUILD_PRECISIONS.values() for p in ps}),
                   help="genai: fp32 (default) or int4; ct2: int8 (default) or fp32")
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--force", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    for name in ("batch_size", "threads"):
        if getattr(args, name, 1) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "run":
            job = read_job(args.prompts)
            write_json_atomic(args.out, run(args.engine, args.model_dir, job, args.batch_size, args.threads))
        else:
            choices = BUILD_PRECISIONS[args.engine]
            if args.precision is not None and args.precision not in choices:
                raise UserError(f"--precision {args.precision} is not built for {args.engine}; "
                                f"choose one of {', '.join(choices)}")
            build = build_genai if args.engine == "genai" else build_ct2
            build(args.hf_dir, args.out, args.precision or choices[0], args.threads, args.force)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
