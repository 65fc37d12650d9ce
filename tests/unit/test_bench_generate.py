"""``bench generate`` end to end on the tiny random Qwen2: JSON structure and agreement fields, no timings."""

from __future__ import annotations

import json

import pytest

from tuningtax.errors import UserError
from tuningtax.generate.bench import agreement, main


def test_agreement_is_position_wise():
    got = agreement([[1, 2, 3], [4, 5, 6]], [[1, 9, 3], [4, 5, 6]])
    assert got == {"token_agreement": 5 / 6, "prompts_identical": 0.5, "first_divergence": [1, None]}


def test_unknown_engine_is_refused(tmp_path):
    with pytest.raises(UserError, match="unknown engine"):
        main(["--engines", "ort-fp16-b1", "--hf-dir", str(tmp_path)])


def test_end_to_end_tiny(tiny_qwen_dir, tiny_qwen_onnx, tmp_path, capsys):
    out = tmp_path / "generate.json"
    int8 = tmp_path / "int8"
    assert main(["--hf-dir", str(tiny_qwen_dir), "--fp32-dir", str(tiny_qwen_onnx), "--int8-dir", str(int8),
                 "--n-prompts", "2", "--prompt-tokens", "48", "--max-new-tokens", "8", "--batch-size", "2",
                 "--threads", "1", "--copy-mb", "8", "--copy-repeats", "1", "--out", str(out)]) == 0
    assert (int8 / "model.onnx").exists()  # exported on demand
    report = json.loads(out.read_text())
    assert list(report) == ["benchmark", "definitions", "setup", "bandwidth", "weights", "reference_engine",
                            "engines", "goals"]
    assert report["reference_engine"] == "eager"
    assert [p["n_tokens"] for p in report["setup"]["prompts"]] == [48, 48]
    engines = {e["engine"]: e for e in report["engines"]}
    assert list(engines) == ["eager", "ort-fp32-b1", "ort-fp32-b2", "ort-int8-b1", "ort-int8-b2"]
    for e in engines.values():
        assert 0.0 <= e["token_agreement"] <= 1.0 and 0.0 <= e["prompts_identical"] <= 1.0
        assert len(e["first_divergence"]) == 2
        assert e["decode_tok_s"] > 0 and e["prefill_s_total"] > 0
    for name in ("ort-fp32-b1", "ort-fp32-b2"):  # the tiny export is parity-gated against transformers
        assert engines[name]["token_agreement"] == 1.0 and engines[name]["prompts_identical"] == 1.0
    assert engines["ort-fp32-b1"]["pct_of_floor"] is not None and engines["ort-fp32-b2"]["pct_of_floor"] is None
    # the floor from the best copy bandwidth is never below the 1-thread one, so its percentage is never above
    one = engines["ort-fp32-b1"]
    assert one["floor_tok_s"] >= one["floor_tok_s_1_thread"] and one["pct_of_floor"] <= one["pct_of_floor_1_thread"]
    w = report["weights"]
    # The tiny model's 32-wide MatMuls are padded to int8 blocks of 128, so int8 is not smaller here.
    assert 0 < w["int8"]["bytes_per_token"] and 0 < w["fp32"]["bytes_per_token"] < w["fp32"]["initializer_bytes"]
    assert w["int8"]["gather_only_bytes"] == w["fp32"]["gather_only_bytes"] > 0  # the embedding stays fp32
    assert [g["met"] in (True, False) for g in report["goals"]] == [True] * 7
    assert "decode tok/s" in capsys.readouterr().out
