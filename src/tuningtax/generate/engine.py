"""Generation's engine: ONNX Runtime sessions of an optimum ``text-generation-with-past`` export and a plain
numpy greedy loop over them (left padding, KV cache, IO binding on CUDA).

Why not ``ORTModelForCausalLM.generate``: it adds about 8-9 ms of Python per token and decodes with the
model's own generation_config; this loop is pure argmax with an explicit stop list (toolchain.md:
10.5 vs 9.4 tok/s on the 0.5B model, batch 1). Inputs are left-padded so every row's next token sits
at the last position; position ids follow transformers (cumulative sum of the mask), so batch size does
not change what a row sees.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tuningtax.errors import UserError

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
# ONNX Runtime's CUDA provider multiplies float32 in TF32 on Ampere and later unless told not to: an fp32
# export would then no longer give the tokens its parity check vouched for.
PROVIDER_OPTIONS = {"cuda": {"use_tf32": "0"}}
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


EXTERNAL_DATA_SUFFIXES = (".onnx_data", ".onnx.data", ".data")


def check_external_data(onnx_dir: str | Path, hard_links_allowed: bool = True) -> None:
    """Refuse, with the file and the fix, external weight files that ONNX tools will not read: ONNX Runtime
    rejects a symlink leaving the model folder, and ``onnx.load`` any symlink or file with several hard links
    (exports shared between checkouts with ``ln -s`` or ``cp -al``)."""
    for item in sorted(Path(onnx_dir).iterdir()):
        if not item.name.endswith(EXTERNAL_DATA_SUFFIXES):
            continue
        if item.is_symlink():
            raise UserError(f"{item} is a symbolic link; ONNX Runtime and onnx refuse external weights that are "
                            f"links: replace it with a copy (cp --remove-destination \"$(readlink -f {item})\" {item})")
        if not hard_links_allowed and item.stat().st_nlink > 1:
            raise UserError(f"{item} has {item.stat().st_nlink} hard links; onnx refuses to read such weights: "
                            f"replace it with a copy (cp {item} {item}.copy && mv {item}.copy {item})")


def load_session(onnx_dir: str | Path, threads: int = 1, provider: str = "cpu") -> Any:
    """An InferenceSession on ``onnx_dir/model.onnx`` with explicit thread counts (oversubscription on a
    busy 2-core machine collapses throughput), failing loudly if the requested provider is not first."""
    import onnxruntime as ort

    path = Path(onnx_dir) / "model.onnx"
    if not path.exists():
        raise UserError(f"{path} does not exist; export the model first (python -m tuningtax export)")
    check_external_data(path.parent)
    if provider not in PROVIDERS:
        raise UserError(f"provider {provider!r} is unknown; expected one of {', '.join(PROVIDERS)}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    wanted = PROVIDERS[provider]
    first = (wanted, PROVIDER_OPTIONS[provider]) if provider in PROVIDER_OPTIONS else wanted
    providers = [first] if provider == "cpu" else [first, PROVIDERS["cpu"]]
    try:
        session = ort.InferenceSession(os.fspath(path), sess_options=opts, providers=providers)
    except Exception as err:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
        first_line = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: ONNX Runtime cannot load it ({first_line}); the export is damaged: rebuild it "
                        "with `python -m tuningtax export ... --force`") from None
    # onnxruntime-gpu silently falls back to CPU when CUDA cannot start: refuse that.
    if session.get_providers()[0] != wanted:
        raise UserError(f"{wanted} requested but the session runs on {session.get_providers()}")
    return session


def load_tokenizer(folder: str | Path) -> Any:
    """The tokenizer saved beside an export (in its assets.tar) or in an HF folder; a folder without one is a
    UserError."""
    from tuningtax.bundle import unpacked

    with unpacked(folder) as files:
        return _load_tokenizer_files(Path(folder), files)


def _unloadable(folder: Path, err: Exception) -> UserError:
    return UserError(f"{folder}: its tokenizer cannot be loaded ({str(err).splitlines()[0][:200]}); rebuild the folder")


def _load_tokenizer_files(folder: Path, files: Path) -> Any:
    from tuningtax.models.tokenizer import FastTokenizer, plain_folder

    if not any((files / name).exists() for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        raise UserError(f"{folder}: holds no tokenizer (tokenizer.json / tokenizer_config.json); the export or "
                        "checkpoint folder is incomplete: rebuild it")
    try:
        if plain_folder(files):  # no transformers (and torch) import: seconds off every generation job
            return FastTokenizer(files)
    except Exception as err:  # tokenizers raises plain Exception for a damaged tokenizer.json
        raise _unloadable(folder, err) from None
    try:
        from transformers import AutoTokenizer

        # transformers 4.57.6 warns that any local folder saved by 4.57.3+ may hold Mistral's broken regex
        # and asks for fix_mistral_regex=True. For these tokenizers that is a false positive
        # (huggingface/transformers#44031) and the "fix" changes their token ids; passing False keeps them and
        # silences the warning.
        return AutoTokenizer.from_pretrained(files, fix_mistral_regex=False)
    except (OSError, ValueError) as err:
        raise _unloadable(folder, err) from None


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask) int64 arrays, rows right-aligned."""
    if not rows or any(len(r) == 0 for r in rows):
        raise ValueError("every row needs at least one token")
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = r
        mask[i, width - len(r):] = 1
    return ids, mask


def _empty_past(session: Any, batch: int) -> dict[str, np.ndarray]:
    past = {}
    for inp in session.get_inputs():
        if inp.name.startswith("past_key_values."):
            _, heads, _, head_dim = inp.shape  # [batch, kv_heads, past_len, head_dim]
            past[inp.name] = np.zeros((batch, heads, 0, head_dim), dtype=_ORT_DTYPES.get(inp.type, np.float32))
    return past


def _host_step(session: Any, out_names: list[str], present_to_past: dict[str, str]) -> Any:
    """One forward pass through numpy: the KV cache comes back to the host and goes in again next step."""
    def step(feed: dict[str, np.ndarray], past: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        outputs = dict(zip(out_names, session.run(out_names, {**feed, **past})))
        return outputs["logits"], {present_to_past[n]: outputs[n] for n in present_to_past}
    return step


def _bound_step(session: Any, out_names: list[str], present_to_past: dict[str, str], device: str) -> Any:
    """One forward pass through IO binding: each step's ``present`` tensors stay on ``device`` and are bound as
    the next step's ``past``; only ids, mask and positions go in and the logits come out through the host."""
    binding = session.io_binding()

    def step(feed: dict[str, np.ndarray], past: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        for name, array in feed.items():
            binding.bind_cpu_input(name, array)
        for name, value in past.items():
            if isinstance(value, np.ndarray):  # the empty cache of the first step
                binding.bind_cpu_input(name, value)
            else:
                binding.bind_ortvalue_input(name, value)
        for name in out_names:
            binding.bind_output(name, "cpu" if name == "logits" else device)
        session.run_with_iobinding(binding)
        values = dict(zip(out_names, binding.get_outputs()))
        return values["logits"].numpy(), {present_to_past[n]: values[n] for n in present_to_past}
    return step


def bind_device_of(session: Any) -> str | None:
    """Where IO binding keeps the KV cache: ``cuda`` when the session runs on CUDA, else None (the host loop)."""
    providers = session.get_providers() if hasattr(session, "get_providers") else []
    return "cuda" if providers and providers[0] == PROVIDERS["cuda"] else None


def greedy(
    session: Any,
    input_ids: np.ndarray,
    attention_mask: np.ndarray,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    bind_device: str | None = None,
) -> list[list[int]]:
    """Greedy tokens per row (a stop token, when hit, is the row's last element, as in transformers).

    ``input_ids``/``attention_mask`` are left-padded [batch, seq] int64 arrays (see ``left_pad``).
    ``bind_device`` keeps the KV cache on that device between steps through IO binding; by default that is
    ``cuda`` for a session on the CUDA provider (copying the cache through the host every step is the cost
    there) and the plain host loop otherwise. Both paths give the same tokens (tested on the CPU).
    """
    input_ids = np.asarray(input_ids, dtype=np.int64)
    mask = np.asarray(attention_mask, dtype=np.int64)
    batch = input_ids.shape[0]
    names = {i.name for i in session.get_inputs()}
    out_names = [o.name for o in session.get_outputs()]
    present_to_past = {n: "past_key_values." + n[len("present."):] for n in out_names if n.startswith("present.")}
    device = bind_device or bind_device_of(session)
    step = (_bound_step(session, out_names, present_to_past, device) if device
            else _host_step(session, out_names, present_to_past))
    past: dict[str, Any] = _empty_past(session, batch)
    positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
    stops = set(int(s) for s in stop_ids)
    done = np.zeros(batch, dtype=bool)
    generated: list[list[int]] = [[] for _ in range(batch)]
    ids = input_ids
    for _ in range(max_new_tokens):
        feed = {"input_ids": ids, "attention_mask": mask}
        if "position_ids" in names:
            feed["position_ids"] = positions
        logits, past = step(feed, past)
        next_ids = logits[:, -1, :].argmax(axis=-1).astype(np.int64)
        for row in np.flatnonzero(~done):
            token = int(next_ids[row])
            generated[row].append(token)
            if token in stops:
                done[row] = True
        if done.all():
            break
        ids = next_ids[:, None]  # finished rows keep decoding; their tokens are simply not recorded
        mask = np.concatenate([mask, np.ones((batch, 1), dtype=np.int64)], axis=1)
        positions = positions[:, -1:] + 1
    return generated
