"""The numpy greedy loop's mechanics on a fake ORT session (the real-graph checks live in
tests/integration/test_export_onnx.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tuningtax.errors import UserError
from tuningtax.generate.engine import bind_device_of, greedy, left_pad, load_session

VOCAB = 50


class FakeSession:
    """One layer, one KV head. Next token = (last input token + 1) % VOCAB; records what it was fed."""

    def __init__(self):
        self.feeds = []

    def get_inputs(self):
        names = ["input_ids", "attention_mask", "position_ids", "past_key_values.0.key", "past_key_values.0.value"]
        return [SimpleNamespace(name=n, shape=["batch", 1, "past", 4], type="tensor(float)") for n in names]

    def get_outputs(self):
        return [SimpleNamespace(name=n) for n in ("logits", "present.0.key", "present.0.value")]

    def run(self, names, feed):
        self.feeds.append(feed)
        ids = feed["input_ids"]
        batch, seq = ids.shape
        logits = np.zeros((batch, seq, VOCAB), dtype=np.float32)
        logits[np.arange(batch), -1, (ids[:, -1] + 1) % VOCAB] = 1.0
        past_len = feed["past_key_values.0.key"].shape[2]
        present = np.zeros((batch, 1, past_len + seq, 4), dtype=np.float32)
        assert feed["attention_mask"].shape == (batch, past_len + seq)
        return [logits, present, present]


def test_left_pad():
    ids, mask = left_pad([[1, 2, 3], [4]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [0, 0, 4]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert ids.dtype == np.int64
    with pytest.raises(ValueError):
        left_pad([[1], []], 0)


def test_greedy_stops_per_row_and_positions_follow_the_mask():
    session = FakeSession()
    ids, mask = left_pad([[10, 11, 12], [20]], pad_id=0)
    out = greedy(session, ids, mask, max_new_tokens=5, stop_ids=[15])
    assert out == [[13, 14, 15], [21, 22, 23, 24, 25]]  # row 0 ends on its stop token, included
    first = session.feeds[0]
    assert first["position_ids"].tolist() == [[0, 1, 2], [0, 0, 0]]
    assert first["past_key_values.0.key"].shape == (2, 1, 0, 4)
    assert session.feeds[1]["position_ids"].tolist() == [[3], [1]]
    assert session.feeds[1]["input_ids"].tolist() == [[13], [21]]


def test_greedy_ends_early_when_all_rows_stop():
    session = FakeSession()
    out = greedy(session, *left_pad([[1], [2]], 0), max_new_tokens=10, stop_ids=[2, 3])
    assert out == [[2], [3]] and len(session.feeds) == 1


def test_load_session_missing_model(tmp_path):
    with pytest.raises(UserError, match="does not exist; export the model first"):
        load_session(tmp_path)


def _toy_matmul_export(folder):
    """A one-MatMul graph whose 64x64 weight lives in model.onnx_data, like the real exports."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(64 * 64, dtype=np.float32).reshape(64, 64) / 4096, "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "toy",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [weight])
    folder.mkdir(parents=True)
    onnx.save(helper.make_model(graph), str(folder / "model.onnx"), save_as_external_data=True,
              location="model.onnx_data", size_threshold=0)
    return folder


def test_symlinked_weights_are_refused_with_the_fix(tmp_path):
    source = _toy_matmul_export(tmp_path / "source")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "model.onnx").write_bytes((source / "model.onnx").read_bytes())
    (shared / "model.onnx_data").symlink_to(source / "model.onnx_data")
    with pytest.raises(UserError, match=r"model.onnx_data is a symbolic link.*replace it with a copy"):
        load_session(shared)
    load_session(source)  # the real file loads


def test_quantizing_hard_linked_weights_is_refused_and_writes_nothing(tmp_path):
    from tuningtax.export import quantize_int8

    source = _toy_matmul_export(tmp_path / "source")
    (tmp_path / "other-checkout.onnx_data").hardlink_to(source / "model.onnx_data")
    target = tmp_path / "int8"
    target.mkdir()
    with pytest.raises(UserError, match=r"model.onnx_data has 2 hard links.*replace it with a copy"):
        quantize_int8(source / "model.onnx", target / "model.onnx")
    assert list(target.iterdir()) == []
    (tmp_path / "other-checkout.onnx_data").unlink()
    quantize_int8(source / "model.onnx", target / "model.onnx")
    assert (target / "model.onnx").exists()


def test_cuda_session_asks_for_true_fp32_and_refuses_a_cpu_fallback(tmp_path, monkeypatch):
    """The CUDA provider is asked for with TF32 off (its default would change fp32 tokens), CPU after it; a
    session that nonetheless lands on the CPU is refused."""
    import onnxruntime as ort

    asked = {}

    class LandsOnCpu:
        def __init__(self, path, sess_options, providers):
            asked["providers"] = providers

        def get_providers(self):
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(ort, "InferenceSession", LandsOnCpu)
    folder = _toy_matmul_export(tmp_path / "toy")
    with pytest.raises(UserError, match=r"CUDAExecutionProvider requested but the session runs on \['CPUExecutionProvider'\]"):
        load_session(folder, provider="cuda")
    assert asked["providers"] == [("CUDAExecutionProvider", {"use_tf32": "0"}), "CPUExecutionProvider"]
    load_session_cpu = load_session(folder, provider="cpu")
    assert asked["providers"] == ["CPUExecutionProvider"] and load_session_cpu.get_providers() == ["CPUExecutionProvider"]


def test_bind_device_follows_the_first_provider():
    """IO binding (cache kept on the GPU) for a CUDA session; the host loop for CPU sessions and for proxies
    that show no providers."""
    def session(providers):
        return SimpleNamespace(get_providers=lambda: providers)

    assert bind_device_of(session(["CUDAExecutionProvider", "CPUExecutionProvider"])) == "cuda"
    assert bind_device_of(session(["CPUExecutionProvider"])) is None
    assert bind_device_of(session([])) is None
    assert bind_device_of(FakeSession()) is None
