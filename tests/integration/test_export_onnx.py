"""ONNX export of the tiny random Qwen2 (real tokenizer): fp32 parity gate, int8 agreement report, the
numpy greedy loop against transformers, and the CLI commands."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tuningtax.bundle import ASSETS, ONNX_FILES
from tuningtax.errors import UserError
import tuningtax.export as export_mod
from tuningtax.export import export
from tuningtax.models.families import fim_ids, stop_token_ids
from tuningtax.generate.engine import greedy, left_pad, load_session
from tuningtax.models.spec import ModelSpec

pytestmark = pytest.mark.slow  # ONNX exports of a tiny model (about a minute)

PAD = 151643


@pytest.fixture(scope="module")
def spec(tiny_qwen_dir) -> ModelSpec:
    return ModelSpec.from_dict({"name": "tiny-qwen", "family": "qwen2.5-coder", "role": "instruct",
                                "source": str(tiny_qwen_dir)})


@pytest.fixture(scope="module")
def onnx_root(tmp_path_factory, spec) -> Path:
    root = tmp_path_factory.mktemp("onnx") / "tiny-qwen"
    export(spec, "fp32", root / "fp32", threads=1)
    export(spec, "int8", root / "int8", threads=1)
    return root


@pytest.fixture(scope="module")
def torch_model(tiny_qwen_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_qwen_dir).eval()


@pytest.fixture(scope="module")
def tokenizer(tiny_qwen_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_qwen_dir)


def torch_generate(model, ids: np.ndarray, mask: np.ndarray, max_new: int, stops: list[int]) -> list[list[int]]:
    import torch
    from transformers import GenerationConfig

    config = GenerationConfig(do_sample=False, max_new_tokens=max_new, eos_token_id=stops, pad_token_id=PAD)
    out = model.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), generation_config=config,
                         use_model_defaults=False)[:, ids.shape[1]:].tolist()
    rows = []
    for row in out:  # generate pads finished rows: cut after the first stop token
        cut = next((i + 1 for i, t in enumerate(row) if t in stops), len(row))
        rows.append(row[:cut])
    return rows


def test_fp32_export_passes_parity(onnx_root):
    report = json.loads((onnx_root / "fp32" / "parity.json").read_text())
    assert report["passed"] is True and report["gated"] is True
    assert report["prompts_identical"] == 1.0 and report["token_agreement"] == 1.0
    assert report["variant"] == "fp32" and report["model"]["name"] == "tiny-qwen"
    assert len(report["probes"]) == 3 and all(len(p["reference"]) == 16 for p in report["probes"])
    assert report["probes"][1]["prompt_ids"][0] == 151659  # the FIM probe uses the family's layout
    # a fixed set of named files (tuningtax.bundle): the config and tokenizer travel in assets.tar
    assert sorted(p.name for p in (onnx_root / "fp32").iterdir()) == sorted(ONNX_FILES)
    with tarfile.open(onnx_root / "fp32" / ASSETS) as tar:
        assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= set(tar.getnames())
    assert not [p for p in onnx_root.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_int8_reports_agreement(onnx_root):
    report = json.loads((onnx_root / "int8" / "parity.json").read_text())
    assert report["variant"] == "int8" and report["gated"] is False and report["passed"] is None
    assert 0.0 <= report["token_agreement"] <= 1.0 and 0.0 <= report["prompts_identical"] <= 1.0
    fp32 = json.loads((onnx_root / "fp32" / "parity.json").read_text())
    assert [p["reference"] for p in report["probes"]] == [p["reference"] for p in fp32["probes"]]
    assert sorted(p.name for p in (onnx_root / "int8").iterdir()) == sorted(ONNX_FILES)
    assert (onnx_root / "int8" / ASSETS).read_bytes() == (onnx_root / "fp32" / ASSETS).read_bytes()
    assert report["quantization"] == export_mod.INT8_SCHEME


def test_int8_replaces_every_weight_matmul_with_8bit_blocks(onnx_root):
    import onnx
    from onnx import helper

    def weight_matmuls(model):
        names = {i.name for i in model.graph.initializer}
        return [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in names]

    fp32 = onnx.load(str(onnx_root / "fp32" / "model.onnx"), load_external_data=False)
    int8 = onnx.load(str(onnx_root / "int8" / "model.onnx"), load_external_data=False)
    quantized = [n for n in int8.graph.node if n.op_type == "MatMulNBits"]
    assert len(quantized) == len(weight_matmuls(fp32)) > 0 and weight_matmuls(int8) == []
    for node in quantized:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert (attrs["bits"], attrs["block_size"], attrs["accuracy_level"]) == (8, 128, 4)


def test_parity_json_is_deterministic(onnx_root, spec, tmp_path):
    export(spec, "int8", tmp_path / "int8", threads=1, fp32_dir=onnx_root / "fp32")
    assert (tmp_path / "int8" / "parity.json").read_bytes() == (onnx_root / "int8" / "parity.json").read_bytes()


def test_parity_failure_leaves_no_output(spec, tmp_path, monkeypatch):
    real = export_mod.torch_greedy

    def wrong_reference(*args, **kwargs):
        rows = real(*args, **kwargs)
        rows[0] = [rows[0][0] + 1, *rows[0][1:]]
        return rows

    monkeypatch.setattr(export_mod, "torch_greedy", wrong_reference)
    out = tmp_path / "tiny-qwen" / "fp32"
    with pytest.raises(UserError, match=r"failed parity: greedy tokens differ from PyTorch on probe\(s\) \[0\]"):
        export(spec, "fp32", out, threads=1)
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_export_refuses_existing_output_and_missing_fp32(spec, tmp_path):
    (tmp_path / "fp32").mkdir()
    with pytest.raises(UserError, match="already exists; delete it or pass --force"):
        export(spec, "fp32", tmp_path / "fp32")
    with pytest.raises(UserError, match="int8 is built from the fp32 export"):
        export(spec, "int8", tmp_path / "int8")
    with pytest.raises(UserError, match="variant 'fp16' is unknown"):
        export(spec, "fp16", tmp_path / "x")


def test_greedy_equals_torch_batch1(onnx_root, torch_model, tokenizer):
    session = load_session(onnx_root / "fp32", threads=1)
    stops = stop_token_ids("qwen2.5-coder", tokenizer)
    for row in ([1, 2, 3], fim_ids("qwen2.5-coder", tokenizer, "def f(x):\n    return ", "\n")):
        ids, mask = left_pad([row], PAD)
        assert greedy(session, ids, mask, 12, stops) == torch_generate(torch_model, ids, mask, 12, stops)


def test_greedy_equals_torch_left_padded_batch(onnx_root, torch_model, tokenizer):
    session = load_session(onnx_root / "fp32", threads=1)
    stops = stop_token_ids("qwen2.5-coder", tokenizer)
    rows = [tokenizer("def fib(n):\n", add_special_tokens=False).input_ids,
            fim_ids("qwen2.5-coder", tokenizer, "import os\n\n\ndef main():\n    ", "\n\nmain()\n"),
            [42]]
    ids, mask = left_pad(rows, PAD)
    batched = greedy(session, ids, mask, 12, stops)
    assert batched == torch_generate(torch_model, ids, mask, 12, stops)
    assert batched == [greedy(session, *left_pad([r], PAD), 12, stops)[0] for r in rows]  # batch-size invariant


def test_greedy_stop_token_ends_a_row(onnx_root, torch_model):
    session = load_session(onnx_root / "fp32", threads=1)
    free = greedy(session, *left_pad([[1, 2, 3]], PAD), 10, [])[0]
    stop = free[4]
    cut = free[: free.index(stop) + 1]
    ids, mask = left_pad([[1, 2, 3]], PAD)
    assert greedy(session, ids, mask, 10, [stop]) == [cut] == torch_generate(torch_model, ids, mask, 10, [stop])


def test_io_bound_cache_gives_the_same_tokens(onnx_root, torch_model, tokenizer):
    """The IO-binding loop (the CUDA path) run on the CPU: same tokens as the host loop and torch, with a stop
    token ending one row early; for fp32 and int8. The step stamps of the bench proxy are taken on it too."""
    from tuningtax.bench.generate import _TimedSession

    stops = stop_token_ids("qwen2.5-coder", tokenizer)
    rows = [tokenizer("def fib(n):\n", add_special_tokens=False).input_ids, [1, 2, 3], [42]]
    ids, mask = left_pad(rows, PAD)
    for variant in ("fp32", "int8"):
        session = load_session(onnx_root / variant, threads=1)
        host = greedy(session, ids, mask, 12, stops)
        stop = host[1][4]
        assert greedy(session, ids, mask, 12, stops, bind_device="cpu") == host
        cut = greedy(session, ids, mask, 12, [stop], bind_device="cpu")
        assert len(cut[1]) <= 5 and cut[1][-1] == stop and max(map(len, cut)) > len(cut[1])  # one row ends early
        assert cut == greedy(session, ids, mask, 12, [stop])
        timed = _TimedSession(session)
        assert greedy(timed, ids, mask, 12, stops, bind_device="cpu") == host
        assert len(timed.run_ends) == max(len(t) for t in host)
    fp32 = load_session(onnx_root / "fp32", threads=1)
    assert greedy(fp32, ids, mask, 12, stops, bind_device="cpu") == torch_generate(torch_model, ids, mask, 12, stops)


def test_last_logits_graph_edit_keeps_tokens(spec, onnx_root, tmp_path):
    report = export(spec, "fp32", tmp_path / "fp32", threads=1, last_logits=True)
    assert report["passed"] and report["graph_edits"] == ["last_position_logits", "grouped_kv_attention"]
    reference = json.loads((onnx_root / "fp32" / "parity.json").read_text())
    assert [p["onnx"] for p in report["probes"]] == [p["onnx"] for p in reference["probes"]]
    session = load_session(tmp_path / "fp32")
    ids, mask = left_pad([[1, 2, 3, 4]], PAD)
    feed = {"input_ids": ids, "attention_mask": mask, "position_ids": np.arange(4)[None]}
    for inp in session.get_inputs():
        if inp.name.startswith("past_key_values."):
            feed[inp.name] = np.zeros((1, inp.shape[1], 0, inp.shape[3]), dtype=np.float32)
    assert session.run(["logits"], feed)[0].shape == (1, 1, 151936)


def test_cli_fetch_and_export(spec, tmp_path, monkeypatch, capsys):
    from tuningtax import cli

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # run_export sets it when absent; keep the test process clean
    monkeypatch.setitem(cli.COMMANDS, "fetch-model", ("tuningtax.models.cli", "fetch"))
    monkeypatch.setitem(cli.COMMANDS, "export", ("tuningtax.export.cli", "export"))
    spec_json = json.dumps(spec.to_dict())
    assert cli.main(["fetch-model", "--model", "tiny-qwen", "--spec-json", spec_json]) == 0
    assert capsys.readouterr().out.strip() == spec.source
    out = tmp_path / "onnx"
    assert cli.main(["export", "--model", "tiny-qwen", "--spec-json", spec_json, "--out", str(out),
                     "--threads", "1"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["passed"] is True
    assert cli.main(["export", "--model", "tiny-qwen", "--spec-json", spec_json, "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["export", "--model", "other", "--spec-json", spec_json]) == 2
    shutil.rmtree(out)


def _run_steps(session, rows: list[list[int]], steps: int) -> list[np.ndarray]:
    """Logits of a left-padded prefill and then ``steps`` single-token decode steps through the KV cache."""
    ids, mask = left_pad(rows, PAD)
    positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
    past = {i.name: np.zeros((len(rows), i.shape[1], 0, i.shape[3]), dtype=np.float32)
            for i in session.get_inputs() if i.name.startswith("past_key_values.")}
    names = [o.name for o in session.get_outputs()]
    logits = []
    for _ in range(steps + 1):
        out = dict(zip(names, session.run(names, {"input_ids": ids, "attention_mask": mask,
                                                  "position_ids": positions, **past})))
        logits.append(out["logits"][:, -1])
        past = {"past_key_values." + n[len("present."):]: v for n, v in out.items() if n.startswith("present.")}
        ids = out["logits"][:, -1].argmax(-1)[:, None].astype(np.int64)
        mask = np.concatenate([mask, np.ones((len(rows), 1), dtype=np.int64)], axis=1)
        positions = positions[:, -1:] + 1
    return logits


@pytest.fixture(scope="module")
def plain_fp32(tmp_path_factory, spec) -> Path:
    """The tiny model exported without the grouped-KV edit (the exporter's own repeat_kv graph)."""
    out = tmp_path_factory.mktemp("plain") / "fp32"
    export(spec, "fp32", out, threads=1, grouped_kv=False)
    return out


def test_grouped_kv_attention_keeps_logits_and_drops_the_repeat(onnx_root, plain_fp32):
    import onnx

    plain = json.loads((plain_fp32 / "parity.json").read_text())
    grouped = json.loads((onnx_root / "fp32" / "parity.json").read_text())
    assert plain["graph_edits"] == [] and grouped["graph_edits"] == ["grouped_kv_attention"]

    def repeats(folder: Path) -> int:  # repeat_kv starts by unsqueezing the cache
        graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
        return sum(n.op_type == "Unsqueeze" and n.input[0].startswith("present.") for n in graph.node)

    assert repeats(plain_fp32) == 4 and repeats(onnx_root / "fp32") == 0  # 2 layers x (key, value)
    rows = [[11, 12, 13, 14, 15, 16, 17], [21, 22, 23]]  # a padded row: the mask must still line up
    for got, want in zip(_run_steps(load_session(onnx_root / "fp32"), rows, 3),
                         _run_steps(load_session(plain_fp32), rows, 3), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def _unchanged(path: Path, n_heads: int, n_kv_heads: int) -> bool:
    before = path.read_bytes()
    return export_mod.group_kv_attention(path, n_heads=n_heads, n_kv_heads=n_kv_heads) == 0 \
        and path.read_bytes() == before


def test_grouped_kv_attention_leaves_other_graphs_untouched(onnx_root, plain_fp32, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    shutil.copytree(onnx_root / "fp32", tmp_path / "grouped")
    assert _unchanged(tmp_path / "grouped" / "model.onnx", 4, 2)  # already grouped: no pattern left
    shutil.copytree(plain_fp32, tmp_path / "plain")
    assert _unchanged(tmp_path / "plain" / "model.onnx", 4, 4)  # no KV sharing to undo

    # Layer 1's repeated key gets one more reader (it would see 2 heads instead of 4): no layer is touched.
    model = onnx.load(str(tmp_path / "plain" / "model.onnx"), load_external_data=False)
    expand = next(n for n in model.graph.node if n.op_type == "Expand" and "layers.1/" in n.name
                  and "Expand_1" not in n.name)
    reshape = next(n for n in model.graph.node if n.op_type == "Reshape" and expand.output[0] in n.input)
    model.graph.node.append(helper.make_node("Identity", [reshape.output[0]], ["extra_reader"]))
    model.graph.output.append(helper.make_tensor_value_info("extra_reader", TensorProto.FLOAT, None))
    partial = tmp_path / "plain" / "partial.onnx"
    onnx.save(model, str(partial))
    assert _unchanged(partial, 4, 2)

    # A graph without a KV cache output is no candidate, and saving it again would already change it.
    no_cache = tmp_path / "no_cache.onnx"
    onnx.save(helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])), str(no_cache))
    assert _unchanged(no_cache, 4, 2)


def test_int8_refuses_fp32_graph_flags(spec, onnx_root, tmp_path):
    for flags, name in (({"last_logits": True}, "--last-logits"), ({"grouped_kv": False}, "--no-grouped-kv")):
        with pytest.raises(UserError, match=f"{name} applies to fp32 exports"):
            export(spec, "int8", tmp_path / "int8", fp32_dir=onnx_root / "fp32", **flags)
    assert not (tmp_path / "int8").exists()
