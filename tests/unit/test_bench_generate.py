"""``bench generate`` end to end on the tiny random Qwen2: JSON structure and agreement fields, no timings."""

from __future__ import annotations

import json

import pytest

from tuningtax.errors import UserError
from tuningtax.bench import generate as bench
from tuningtax.bench.generate import Run, agreement, main, ratio_rounds


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
                            "engines", "int8_vs_fp32_rounds", "goals"]
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
    rounds = report["int8_vs_fp32_rounds"]
    assert list(rounds) == ["b1", "b2"]
    for batch, paired in rounds.items():
        assert [r["first"] for r in paired["rounds"]] == ["fp32", "int8", "fp32"]  # default 3 rounds, alternating
        goal = next(g for g in report["goals"] if g["goal"].startswith(f"ORT int8 {batch} "))
        assert goal["value"] == paired["median"] and "median of 3 paired rounds" in goal["goal"]
        assert paired["min"] <= paired["median"] <= paired["max"]
    assert "decode tok/s" in capsys.readouterr().out


def _fake_run_ort(calls, tokens_of):
    def run(engine, session, prompts, batch, max_new, pad_id):
        calls.append(engine)
        return Run(engine, tokens_of(engine), prefill_s=1.0, decode_s=2.0 if session == "fp32" else 1.0, calls=1)
    return run


def test_ratio_rounds_alternate_the_pair_and_take_the_median(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(bench, "run_ort", _fake_run_ort(calls, lambda engine: [[1, 2, 3]]))
    main_runs = {e: Run(e, [[1, 2, 3]], 1.0, 1.0, 1) for e in ("ort-fp32-b8", "ort-int8-b8")}
    got = ratio_rounds({"fp32": "fp32", "int8": "int8"}, [], [8], 3, 3, 0, main_runs)
    assert [c.split(" round")[0] for c in calls] == ["ort-fp32-b8", "ort-int8-b8", "ort-int8-b8", "ort-fp32-b8",
                                                     "ort-fp32-b8", "ort-int8-b8"]
    # decode 2 s for fp32 and 1 s for int8 over the same tokens: int8 is 2x in every round
    assert [r["ratio"] for r in got["b8"]["rounds"]] == [2.0, 2.0, 2.0] and got["b8"]["median"] == 2.0


def test_ratio_rounds_refuse_a_round_with_other_tokens(monkeypatch):
    monkeypatch.setattr(bench, "run_ort", _fake_run_ort([], lambda engine: [[1, 2, 4]] if "int8" in engine
                                                        else [[1, 2, 3]]))
    main_runs = {e: Run(e, [[1, 2, 3]], 1.0, 1.0, 1) for e in ("ort-fp32-b8", "ort-int8-b8")}
    with pytest.raises(RuntimeError, match="ort-int8-b8: round 1 decoded other tokens"):
        ratio_rounds({"fp32": "fp32", "int8": "int8"}, [], [8], 1, 3, 0, main_runs)


def test_goals_fall_back_to_the_single_runs_without_rounds():
    records = {"ort-fp32-b8": {"decode_tok_s": 80.0}, "ort-int8-b8": {"decode_tok_s": 150.0}}
    without = next(g for g in bench.goals(records, 8) if g["goal"].startswith("ORT int8 b8 "))
    assert "single run" in without["goal"] and without["value"] == without["single_run_value"] == 1.88
    assert without["met"] is False
    paired = {"b8": {"rounds": [{}, {}, {}], "median": 2.05}}
    with_rounds = next(g for g in bench.goals(records, 8, paired) if g["goal"].startswith("ORT int8 b8 "))
    assert with_rounds["value"] == 2.05 and with_rounds["single_run_value"] == 1.88 and with_rounds["met"] is True
