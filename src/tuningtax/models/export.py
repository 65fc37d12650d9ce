"""ONNX export of a model spec with a greedy parity gate.

fp32: optimum ``main_export(..., task="text-generation-with-past")`` from the resolved HF folder, then ORT
greedy tokens must equal PyTorch greedy tokens on a fixed probe set, else the export fails and leaves no
output folder. int8: the fp32 export's MatMul weights quantized to int8 in blocks (``INT8_SCHEME``), an
explicitly named variant whose agreement with the fp32 reference tokens is measured and reported, never gated
or substituted.
Both are built in a temporary sibling folder and renamed into place. ``parity.json`` is deterministic
(no times, hosts or thread counts) so it can be tracked.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from tuningtax.errors import UserError
from tuningtax.jsonl import default_file_mode
from tuningtax.models.families import (Family, bos_ids, encode_text, fim_ids, get_family, pad_token_id,
                                       stop_token_ids)
from tuningtax.models.offline_qwen import log, publish_dir, resolve_source
from tuningtax.models.ort_session import EXTERNAL_DATA_SUFFIXES, check_external_data
from tuningtax.models.spec import ModelSpec
from tuningtax.models.variants import VARIANTS

# int8 = MatMulNBits with 8-bit weights, one scale and zero point per block of 128 input channels, and
# accuracy_level 4: activations are quantized to int8 dynamically at run time, per block, and multiplied with
# integer kernels. Per-tensor ``quantize_dynamic`` was tried first: one activation scale per tensor cannot
# hold Qwen2.5's outlier channels, and greedy tokens left fp32's within the first few positions (0/3 probes
# identical, 24 % token agreement; README "Speed"). accuracy_level 0/1 (fp32 compute) decoded at 1 tok/s.
INT8_SCHEME = {"op": "MatMulNBits", "bits": 8, "block_size": 128, "is_symmetric": False, "accuracy_level": 4,
               "op_types": ["MatMul"]}
MAX_NEW_TOKENS = 16
# (prefix, suffix): suffix None means a plain completion prompt. Short, so parity costs seconds.
PROBES: tuple[tuple[str, str | None], ...] = (
    ("def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n", None),
    ("def add(a, b):\n    return ", "\n\n\nprint(add(2, 3))\n"),
    ("import os\n\n\ndef list_python_files(folder):\n", None),
)
_GRAPH_FILE_SUFFIXES = (".onnx", *EXTERNAL_DATA_SUFFIXES)


def probe_ids(family: Family, tokenizer: Any) -> list[list[int]]:
    """Token ids of the probe prompts: FIM ones in the family's PSM layout, plain ones as BOS? + text."""
    rows = []
    for prefix, suffix in PROBES:
        if suffix is not None and family.has_fim:
            rows.append(fim_ids(family, tokenizer, prefix, suffix))
        else:
            rows.append(bos_ids(family, tokenizer) + encode_text(tokenizer, prefix + (suffix or "")))
    return rows


def torch_greedy(hf_dir: Path, rows: list[list[int]], max_new_tokens: int, stop_ids: list[int],
                 pad_id: int) -> list[list[int]]:
    """The PyTorch reference: transformers generate, batch 1, pure greedy (the model's own generation_config,
    e.g. Qwen instruct's repetition_penalty, is deliberately not applied)."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    config = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=stop_ids,
                              pad_token_id=pad_id)
    out = []
    with torch.inference_mode():
        for row in rows:
            ids = torch.tensor([row], dtype=torch.long)
            gen = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config,
                                 use_model_defaults=False)
            out.append(gen[0, len(row):].tolist())
    del model
    gc.collect()
    return out


def _compare(reference: list[int], got: list[int]) -> int | None:
    """Index of the first differing token (None when identical)."""
    for i, (a, b) in enumerate(zip(reference, got)):
        if a != b:
            return i
    return None if len(reference) == len(got) else min(len(reference), len(got))


def parity_report(rows: list[list[int]], reference: list[list[int]], onnx: list[list[int]],
                  onnx_batched: list[list[int]]) -> dict[str, Any]:
    probes = []
    agreeing = total = 0
    for (prefix, suffix), ids, ref, got, batched in zip(PROBES, rows, reference, onnx, onnx_batched):
        first = _compare(ref, got)
        agreeing += len(ref) if first is None else first
        total += len(ref)
        probes.append({"prefix": prefix, "suffix": suffix, "prompt_ids": ids, "reference": ref,
                       "onnx": got, "identical": first is None, "first_divergence": first,
                       "batched_identical": batched == got})
    return {
        "probes": probes,
        "prompts_identical": sum(p["identical"] for p in probes) / len(probes),
        # Tokens after the first divergence are conditioned on different text: count the common prefix only.
        "token_agreement": agreeing / total if total else 1.0,
        "batched_identical": all(p["batched_identical"] for p in probes),
    }


def _onnx_tokens(onnx_dir: Path, rows: list[list[int]], stop_ids: list[int], pad_id: int,
                 threads: int) -> tuple[list[list[int]], list[list[int]]]:
    """ORT greedy tokens per probe at batch 1 (the gate) and for all probes as one left-padded batch (recorded)."""
    from tuningtax.models.ort_session import greedy, left_pad, load_session

    session = load_session(onnx_dir, threads=threads)
    single = [greedy(session, *left_pad([r], pad_id), MAX_NEW_TOKENS, stop_ids)[0] for r in rows]
    batched = greedy(session, *left_pad(rows, pad_id), MAX_NEW_TOKENS, stop_ids)
    del session
    gc.collect()
    return single, batched


def _load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def _header(spec: ModelSpec, variant: str, stop_ids: list[int], edits: list[str]) -> dict[str, Any]:
    return {"model": spec.to_dict(), "variant": variant, "max_new_tokens": MAX_NEW_TOKENS, "stop_ids": stop_ids,
            "graph_edits": edits}


def slice_last_position(onnx_path: Path) -> None:
    """Compute logits for the last position only: a Slice on the LM head's input, rewriting model.onnx and
    leaving the external weights file as it is. The exported graph projects every prompt position onto the
    151,936-wide vocabulary, which dominated prefill (toolchain.md: 3.95 s -> 2.99 s at 300 tokens).
    The graph then cannot give per-position logits (no prompt log-likelihoods)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(os.fspath(onnx_path), load_external_data=False)
    graph = model.graph
    producers = [n for n in graph.node if "logits" in n.output]
    if len(producers) != 1 or producers[0].op_type != "MatMul":
        kind = producers[0].op_type if producers else "nothing"
        raise UserError(f"{onnx_path}: logits come from {kind}, not one MatMul; --last-logits does not apply")
    head = producers[0]
    names = {"starts": [-1], "ends": [np.iinfo(np.int64).max], "axes": [1]}
    for key, value in names.items():
        graph.initializer.append(numpy_helper.from_array(np.array(value, dtype=np.int64), f"last_position_{key}"))
    sliced = "last_position_hidden"
    graph.node.insert(list(graph.node).index(head), helper.make_node(
        "Slice", [head.input[0], *(f"last_position_{k}" for k in names)], [sliced], name="last_position_slice"))
    head.input[0] = sliced
    for out in graph.output:
        if out.name == "logits":
            out.type.tensor_type.shape.dim[1].ClearField("dim_param")
            out.type.tensor_type.shape.dim[1].dim_value = 1
    onnx.save(model, os.fspath(onnx_path))


def group_kv_attention(onnx_path: Path, n_heads: int, n_kv_heads: int) -> int:
    """Attend with grouped KV heads instead of repeating them: rewrite model.onnx in place and return the
    number of layers rewritten (0 leaves the file untouched).

    optimum exports transformers' ``repeat_kv`` as an Expand that copies the whole KV cache from
    ``n_kv_heads`` to ``n_heads`` heads in every layer at every step, followed by a transpose and a scaling of
    that copy: at batch 8 the Expand alone took 22-29 % of decode node time (README "Speed"). Query heads
    that share a KV head are consecutive (head h reads KV head h // group), so the query is reshaped to
    [batch, n_kv_heads, group * q_len, head_dim] and multiplied with the cache as it is, and the result is
    reshaped back; every score and every output is the same dot product over head_dim as before. The graph
    must match the pattern in every layer, else nothing is changed."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    if n_kv_heads >= n_heads or n_heads % n_kv_heads:
        return 0
    model = onnx.load(os.fspath(onnx_path), load_external_data=False)
    graph = model.graph
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in graph.node
           for a in n.attribute):
        return 0  # control flow: names used inside subgraphs are invisible to the pruning below
    producer = {o: n for n in graph.node for o in n.output}
    initializers = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def sole(name: str, op: str) -> Any:
        """The one consumer of ``name``, if it is an ``op`` node."""
        found = consumers.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op else None

    def constant(name: str) -> Any:
        if name in initializers:
            return numpy_helper.to_array(initializers[name])
        node = producer.get(name)
        if node is not None and node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            return numpy_helper.to_array(node.attribute[0].t)
        return None

    def reads_only_batch_or_length(node: Any) -> bool:
        """A Shape whose every use is a Gather of dimension 0, 2 or 3: unchanged when the heads are not repeated."""
        if node.op_type != "Shape" or node.attribute:
            return False
        uses = consumers.get(node.output[0], [])
        return bool(uses) and all(u.op_type == "Gather" and u.input[0] == node.output[0]
                                  and (c := constant(u.input[1])) is not None and c.size == 1
                                  and int(c.reshape(-1)[0]) in (0, 2, 3) for u in uses)

    def repeated(present: str) -> tuple[Any, Any] | None:
        """(Expand, Reshape) of transformers' repeat_kv applied to graph output ``present``."""
        unsqueezes = [n for n in consumers.get(present, []) if n.op_type == "Unsqueeze" and n.input[0] == present]
        expand = len(unsqueezes) == 1 and sole(unsqueezes[0].output[0], "Expand")
        reshape = expand and expand.input[0] == unsqueezes[0].output[0] and sole(expand.output[0], "Reshape")
        return (expand, reshape) if reshape and reshape.input[0] == expand.output[0] else None

    plans = []
    layers = sorted({o.name.split(".")[1] for o in graph.output if o.name.startswith("present.")}, key=int)
    for layer in layers:
        key, value = repeated(f"present.{layer}.key"), repeated(f"present.{layer}.value")
        if not key or not value:
            return 0
        key_uses = consumers.get(key[1].output[0], [])
        transposes = [n for n in key_uses if n.op_type == "Transpose"]
        transpose = transposes[0] if len(transposes) == 1 else None
        if not transpose or not all(n is transpose or reads_only_batch_or_length(n) for n in key_uses):
            return 0
        scale = sole(transpose.output[0], "Mul")
        factor = scale and constant(scale.input[1])
        scores = scale and sole(scale.output[0], "MatMul")
        mixed = sole(value[1].output[0], "MatMul")
        perm = [list(a.ints) for a in transpose.attribute if a.name == "perm"]
        if (not scores or scores.input[1] != scale.output[0] or scale.input[0] != transpose.output[0]
                or factor is None or factor.size != 1 or perm != [[0, 1, 3, 2]]
                or not mixed or mixed.input[1] != value[1].output[0]):
            return 0
        plans.append((layer, key, value, transpose, scale, scores, mixed))
    if not plans:
        return 0

    def shape_const(name: str, dims: list[int]) -> str:
        graph.initializer.append(numpy_helper.from_array(np.array(dims, dtype=np.int64), name))
        return name

    # Reshape's 0 copies the input's dimension there and -1 takes the rest: batch and head_dim or kv_len stay.
    to_groups = shape_const("grouped_kv_to_groups", [0, n_kv_heads, -1, 0])
    to_heads = shape_const("grouped_kv_to_heads", [0, n_heads, -1, 0])
    nodes = list(graph.node)
    dead: set[int] = set()
    for layer, key, value, transpose, scale, scores, mixed in plans:
        prefix = f"grouped_kv.{layer}"
        present_key, present_value = f"present.{layer}.key", f"present.{layer}.value"
        for node in consumers.get(key[1].output[0], []):  # e.g. the Shape the causal mask reads kv_len from
            if node is not transpose:
                node.input[list(node.input).index(key[1].output[0])] = present_key
        transpose.input[0] = present_key
        query = scores.input[0]
        new = [
            helper.make_node("Reshape", [query, to_groups], [f"{prefix}.query"], name=f"{prefix}/query"),
            helper.make_node("MatMul", [f"{prefix}.query", scale.output[0]], [f"{prefix}.scores"],
                             name=f"{prefix}/scores"),
            helper.make_node("Reshape", [f"{prefix}.scores", to_heads], [scores.output[0]], name=f"{prefix}/heads"),
            helper.make_node("Reshape", [mixed.input[0], to_groups], [f"{prefix}.probs"], name=f"{prefix}/probs"),
            helper.make_node("MatMul", [f"{prefix}.probs", present_value], [f"{prefix}.mixed"],
                             name=f"{prefix}/mixed"),
            helper.make_node("Reshape", [f"{prefix}.mixed", to_heads], [mixed.output[0]], name=f"{prefix}/out"),
        ]
        dead |= {id(scores), id(mixed)}
        # The new nodes replace the two MatMuls in place, which keeps the node list topologically sorted.
        at = next(i for i, n in enumerate(nodes) if n is mixed)
        nodes[at:at] = new[3:]
        at = next(i for i, n in enumerate(nodes) if n is scores)
        nodes[at:at] = new[:3]
    kept = [n for n in nodes if id(n) not in dead]
    # Drop what only fed the removed nodes (the Expands, their shapes, the repeated Reshapes).
    needed = {o.name for o in graph.output}
    alive = []
    for node in reversed(kept):
        if any(o in needed for o in node.output):
            alive.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(alive))
    onnx.save(model, os.fspath(onnx_path))
    return len(plans)


def _build_fp32(spec: ModelSpec, tmp: Path, threads: int, last_logits: bool, grouped_kv: bool) -> dict[str, Any]:
    from optimum.exporters.onnx import main_export

    hf_dir = resolve_source(spec)
    log(f"exporting {spec.name} from {hf_dir} to ONNX fp32 (about a minute for 0.5B parameters)")
    # optimum's own validation compares random inputs at 1e-5; the greedy parity below is the stronger gate.
    start = time.perf_counter()
    main_export(os.fspath(hf_dir), output=tmp, task="text-generation-with-past", do_validation=False)
    gc.collect()
    log(f"exported in {time.perf_counter() - start:.0f} s")
    edits = []
    if last_logits:
        slice_last_position(tmp / "model.onnx")
        edits.append("last_position_logits")
    if grouped_kv:
        config = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
        heads = config.get("num_attention_heads", 0)
        if group_kv_attention(tmp / "model.onnx", heads, config.get("num_key_value_heads", heads)):
            edits.append("grouped_kv_attention")
    tokenizer = _load_tokenizer(tmp)
    family = get_family(spec.family)
    stop_ids = stop_token_ids(family, tokenizer)
    pad_id = pad_token_id(tokenizer, stop_ids)
    rows = probe_ids(family, tokenizer)
    log(f"parity check: PyTorch vs ONNX Runtime greedy, {len(rows)} probes x {MAX_NEW_TOKENS} tokens")
    start = time.perf_counter()
    reference = torch_greedy(hf_dir, rows, MAX_NEW_TOKENS, stop_ids, pad_id)
    log(f"PyTorch reference in {time.perf_counter() - start:.0f} s")
    start = time.perf_counter()
    single, batched = _onnx_tokens(tmp, rows, stop_ids, pad_id, threads)
    log(f"ONNX Runtime tokens in {time.perf_counter() - start:.0f} s")
    report = {**_header(spec, "fp32", stop_ids, edits), "reference_engine": "transformers generate, greedy, batch 1",
              **parity_report(rows, reference, single, batched)}
    report["gated"] = True
    report["passed"] = report["prompts_identical"] == 1.0
    if not report["passed"]:
        bad = [i for i, p in enumerate(report["probes"]) if not p["identical"]]
        raise UserError(
            f"ONNX export of {spec.name} failed parity: greedy tokens differ from PyTorch on probe(s) {bad} "
            f"(token agreement {report['token_agreement']:.3f}); no output was written"
        )
    return report


def quantize_int8(source: Path, target: Path) -> None:
    """Write ``target`` (graph + one external data file) with ``source``'s MatMul weights as ``INT8_SCHEME``."""
    import onnx
    from onnxruntime.quantization import QuantFormat
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    check_external_data(source.parent, hard_links_allowed=False)
    config = DefaultWeightOnlyQuantConfig(
        block_size=INT8_SCHEME["block_size"], is_symmetric=INT8_SCHEME["is_symmetric"],
        accuracy_level=INT8_SCHEME["accuracy_level"], bits=INT8_SCHEME["bits"], quant_format=QuantFormat.QOperator,
        op_types_to_quantize=tuple(INT8_SCHEME["op_types"]))
    quantizer = MatMulNBitsQuantizer(onnx.load(os.fspath(source)), algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(os.fspath(target), use_external_data_format=True)
    for item in target.parent.iterdir():  # onnx writes the data file 0600, like mkstemp
        item.chmod(default_file_mode())


def _build_int8(spec: ModelSpec, tmp: Path, fp32_dir: Path, threads: int) -> dict[str, Any]:
    fp32_parity = fp32_dir / "parity.json"
    if not (fp32_dir / "model.onnx").exists() or not fp32_parity.exists():
        raise UserError(f"int8 is built from the fp32 export, not found at {fp32_dir}; "
                        f"run `python -m tuningtax export --model {spec.name} --variant fp32` first")
    ref = json.loads(fp32_parity.read_text(encoding="utf-8"))
    if not ref.get("passed"):
        raise UserError(f"{fp32_parity}: the fp32 export did not pass parity; re-export fp32")
    log(f"quantizing {fp32_dir} to int8 ({INT8_SCHEME['op']}, blocks of {INT8_SCHEME['block_size']})")
    quantize_int8(fp32_dir / "model.onnx", tmp / "model.onnx")
    for item in fp32_dir.iterdir():  # config, generation config and tokenizer files travel with the graph
        if item.is_file() and item.name != "parity.json" and not item.name.endswith(_GRAPH_FILE_SUFFIXES):
            shutil.copy2(item, tmp / item.name)
    tokenizer = _load_tokenizer(tmp)
    stop_ids = stop_token_ids(get_family(spec.family), tokenizer)
    rows = probe_ids(get_family(spec.family), tokenizer)
    if rows != [p["prompt_ids"] for p in ref["probes"]]:
        raise UserError(f"{fp32_parity}: its probes do not match this version's probe set; re-export fp32")
    reference = [p["reference"] for p in ref["probes"]]
    single, batched = _onnx_tokens(tmp, rows, stop_ids, pad_token_id(tokenizer, stop_ids), threads)
    report = {**_header(spec, "int8", stop_ids, ref.get("graph_edits", [])), "quantization": INT8_SCHEME,
              "reference_engine": "transformers generate, greedy, batch 1 (tokens recorded in fp32 parity.json)",
              **parity_report(rows, reference, single, batched)}
    report["gated"] = False  # int8 is reported, not gated: it is its own named variant
    report["passed"] = None
    return report


def export(spec: ModelSpec, variant: str, out_dir: Path, threads: int = 1, fp32_dir: Path | None = None,
           force: bool = False, last_logits: bool = False, grouped_kv: bool = True) -> dict[str, Any]:
    """Export ``spec`` as ``variant`` into ``out_dir`` (created atomically); returns the parity report.

    ``last_logits`` (fp32 only; int8 inherits it from its fp32 source) applies ``slice_last_position``
    before the parity check; ``grouped_kv`` (fp32, likewise inherited) applies ``group_kv_attention`` where the
    graph repeats KV heads. Both edits are listed in parity.json's ``graph_edits``."""
    if variant not in VARIANTS:
        raise UserError(f"variant {variant!r} is unknown; expected one of {', '.join(VARIANTS)}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise UserError(f"{out_dir} already exists; delete it or pass --force to rebuild it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        if variant == "fp32":
            report = _build_fp32(spec, tmp, threads, last_logits, grouped_kv)
        else:
            if last_logits or not grouped_kv:
                raise UserError(f"{'--last-logits' if last_logits else '--no-grouped-kv'} applies to fp32 exports; "
                                "int8 inherits the graph of its fp32 source")
            report = _build_int8(spec, tmp, Path(fp32_dir) if fp32_dir else out_dir.parent / "fp32", threads)
        _write_json(tmp / "parity.json", report)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        publish_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"wrote {out_dir} (prompts identical {report['prompts_identical']:.3f}, "
        f"token agreement {report['token_agreement']:.3f})")
    return report
