"""Edits of an exported decoder graph, each checked by the same greedy parity gate as the plain export:
logits for the last position only, and attention over grouped KV heads instead of repeated ones."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tuningtax.errors import UserError


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
    that copy: at batch 8 the Expand alone took 22-29 % of decode node time (docs/speed.md). Query heads
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
