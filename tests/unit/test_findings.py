"""`python -m tuningtax findings`: synthetic samples where each finding's truth is known."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tuningtax.analysis import findings as fd
from tuningtax.errors import UserError
from tuningtax.jsonl import write_jsonl

ROOT = Path(__file__).resolve().parents[2]
VIEWS = {"flow": {"benchmark": "humaneval-single-line", "format": "fim-psm", "level": "first-line"},
         "completion": {"benchmark": "humaneval-completion", "format": "completion-raw", "level": "stop-cut"},
         "command": {"benchmark": "humanevalplus-command", "format": "command-chat", "level": "code-extract"}}
BENCH = {mode: (v["benchmark"], v["format"], v["level"]) for mode, v in VIEWS.items()}
N = 40


def model_rows(model: str, passes: dict[str, int], *, verbose: bool = False, nl: int = 0, n: int = N) -> list[dict]:
    """Rows of one model: task i of a mode passes when i < passes[mode] (nested sets, so every pair of
    models differs only in one direction); each task at level raw and at its view level. Failures are
    redundant_extra_code when `verbose`, else functional_mismatch; the three markers on the first `nl` tasks
    (extra_def is null in command)."""
    rows = []
    for mode, (bench, fmt, level) in BENCH.items():
        for i in range(n):
            ok = i < passes.get(mode, 0)
            for lv in ("raw", level):
                rows.append({"model": model, "checkpoint": model, "variant": "fp32", "benchmark": bench,
                             "format": fmt, "level": lv, "task_id": f"P{i}/{mode}", "source_id": f"P{i}",
                             "mode": mode, "sample": 0, "passed": ok, "status": "passed" if ok else "failed",
                             "category": "passed" if ok else ("redundant_extra_code" if verbose else
                                                              "functional_mismatch"),
                             "nl_marker": i < nl, "extra_def": i < nl if mode != "command" else None,
                             "code_token_ratio_low": i < nl})
    return rows


def params(pairs=(), series=(), steps=None, models=None, n_resamples=200) -> dict:
    return {"pairs": [{"base": b, "instruct": i} for b, i in pairs],
            "series": [{"start": s, "checkpoints": list(c)} for s, c in series], "steps": steps or {},
            "three_mode": VIEWS, "seed": 0, "n_resamples": n_resamples, **({"models": models} if models else {})}


def check(rows: list[dict], p: dict) -> pd.DataFrame:
    samples = fd.prepare_samples(pd.DataFrame(rows))
    return fd.check_findings(samples, fd.parse_params(json.dumps(p)))


def overall(table: pd.DataFrame, finding: int) -> dict:
    part = table[table["finding"] == finding]
    assert part.iloc[-1]["scope"].startswith("overall")
    return part.iloc[-1].to_dict()


TAX_BASE = {"flow": 30, "completion": 10, "command": 5}
TAX_INSTRUCT = {"flow": 10, "completion": 30, "command": 35}


@pytest.fixture(scope="module")
def tax_table():
    rows = model_rows("fam-1.5b", TAX_BASE) + model_rows("fam-1.5b-instruct", TAX_INSTRUCT, verbose=True, nl=30)
    return check(rows, params(pairs=[("fam-1.5b", "fam-1.5b-instruct")]))


# ---------------------------------------------------------------------------------------------- power

def test_connor_sample_size_hand_computed():
    # psi = 0.1, delta = 0.1: (1.95996*sqrt(.1) + 0.84162*sqrt(.09))^2 / .01 = 76.09 -> 77
    assert fd.n_mcnemar(0.1, 0.1) == 77
    assert fd.n_needed_paired(2, 2, 40) == 77  # observed delta 0 -> 10-point target at the observed psi
    # no discordant pair: assumed psi = 2|delta| = 0.2 -> (1.95996*sqrt(.2) + 0.84162*sqrt(.19))^2/.01 = 154.6
    assert fd.n_needed_paired(0, 0, 40) == 155
    assert fd.n_two_proportions(0.5, 0.6) == 388  # the textbook value for 50 % vs 60 %
    with pytest.raises(ValueError):
        fd.n_mcnemar(0.05, 0.1)  # |delta| cannot exceed the discordant share


def test_sizes_and_families_parse_from_names():
    assert fd.parse_size_b("qwen2.5-coder-1.5b-instruct") == 1.5
    assert fd.parse_size_b("Qwen/Qwen2.5-Coder-7B-Instruct") == 7
    assert fd.parse_size_b("deepseek-coder-6.7b-base") == 6.7
    assert fd.parse_size_b("smollm-135m") == pytest.approx(0.135)
    assert fd.parse_size_b("qwen2.5-coder") is None
    assert fd.model_family("qwen2.5-coder-1.5b-instruct", {}) == "qwen2.5-coder"
    assert fd.model_family("x", {"x": {"family": "fam"}}) == "fam"
    assert fd.model_size("tiny", {"tiny": {"source": "Qwen/Qwen2.5-Coder-0.5B"}}) == 0.5


# ---------------------------------------------------------------------------------------------- findings

def test_known_tax_is_supported_with_its_numbers(tax_table):
    rows = tax_table[(tax_table["finding"] == 1) & (tax_table["scope"] != "overall")]
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["scope"] == "fam-1.5b→fam-1.5b-instruct humaneval-single-line fim-psm first-line"
    assert row["value"] == pytest.approx(-50.0) and row["n"] == 40
    assert row["p"] == pytest.approx(2 / 2**20)  # 20 discordant pairs, all one way
    assert row["ci_low"] < row["value"] < row["ci_high"] < 0
    assert row["verdict"] == "supported" and pd.isna(row["n_needed_80pct"])
    assert overall(tax_table, 1)["verdict"] == "supported"


def test_every_finding_of_the_built_truth(tax_table):
    for finding in (2, 4, 5, 6):
        assert overall(tax_table, finding)["verdict"] == "supported", finding
    f2 = tax_table[(tax_table["finding"] == 2) & (tax_table["statistic"] == "Δ Completion − Δ Flow (points)")]
    assert f2.iloc[0]["value"] == pytest.approx(100.0)  # +50 completion, −50 flow on the same 40 problems
    f4 = tax_table[tax_table["finding"] == 4]
    f4 = f4.set_index(f4["scope"].str.split().str[1])
    assert f4.loc["flow:", "value"] == 0.0 and f4.loc["completion:", "value"] == 100.0
    f5 = tax_table[(tax_table["finding"] == 5) & tax_table["scope"].str.contains(" flow: ")].iloc[0]
    assert f5["value"] == pytest.approx(100.0) and f5["n"] == 10 + 30  # failures of base + instruct
    nl = tax_table[(tax_table["finding"] == 6) & tax_table["scope"].str.contains("flow raw nl_marker")].iloc[0]
    assert nl["value"] == pytest.approx(75.0) and nl["verdict"] == "supported"
    # extra_def is null throughout command: no row, and the summary says so
    assert not tax_table["scope"].str.contains("command raw extra_def").any()
    assert "not measured (no row): extra_def in command" in overall(tax_table, 6)["note"]
    assert overall(tax_table, 6)["n"] == 8
    # one size only: finding 3 cannot be judged, and says which params entry would enable it
    f3 = overall(tax_table, 3)
    assert f3["verdict"] == "not enough data"
    fam = tax_table[(tax_table["finding"] == 3) & (tax_table["scope"] == "family fam")].iloc[0]
    assert "add pairs of another fam size to pairs:" in fam["note"] and fam["n_needed_80pct"] > 0


def test_equal_models_are_not_enough_data_with_the_sample_size():
    base = model_rows("m-1b", {"flow": 20, "completion": 20, "command": 20})
    inst = [dict(r) for r in model_rows("m-1b-it", {"flow": 20, "completion": 20, "command": 20})]
    for r in inst:  # two discordant pairs each way in flow: Δ = 0, ψ = 0.1
        if r["mode"] == "flow" and r["task_id"] in ("P0/flow", "P1/flow", "P20/flow", "P21/flow"):
            r["passed"] = not r["passed"]
            r["category"] = "passed" if r["passed"] else "functional_mismatch"
    table = check(base + inst, params(pairs=[("m-1b", "m-1b-it")]))
    row = table[(table["finding"] == 1) & (table["scope"] != "overall")].iloc[0]
    assert row["value"] == 0.0 and row["p"] == 1.0
    assert row["verdict"] == "not enough data" and row["n_needed_80pct"] == 77
    assert overall(table, 1)["verdict"] == "not enough data"


def test_instruct_winning_contradicts_the_tax():
    rows = model_rows("a-7b", TAX_INSTRUCT) + model_rows("a-7b-instruct", TAX_BASE)
    table = check(rows, params(pairs=[("a-7b", "a-7b-instruct")]))
    row = table[(table["finding"] == 1) & (table["scope"] != "overall")].iloc[0]
    assert row["value"] == pytest.approx(50.0) and row["verdict"] == "contradicted"
    assert overall(table, 1)["verdict"] == "contradicted"


def test_two_sizes_of_a_family_judge_finding_3():
    rows = (model_rows("fam-1.5b", TAX_BASE) + model_rows("fam-1.5b-instruct", TAX_INSTRUCT)
            + model_rows("fam-7b", TAX_BASE) + model_rows("fam-7b-instruct", TAX_INSTRUCT))
    table = check(rows, params(pairs=[("fam-1.5b", "fam-1.5b-instruct"), ("fam-7b", "fam-7b-instruct")]))
    fam = table[(table["finding"] == 3) & table["scope"].str.startswith("family fam")].iloc[0]
    assert fam["scope"] == "family fam, largest size 7b" and fam["verdict"] == "supported"
    assert overall(table, 3)["verdict"] == "supported"
    # Holm over two pairs: each pair's p doubled
    units = table[(table["finding"] == 1) & (table["scope"] != "overall")]
    assert list(units["p_holm"]) == pytest.approx([2 * p for p in units["p"]])


def test_no_pairs_or_series_give_the_params_hint():
    table = check(model_rows("solo-0.5b", TAX_BASE), params())
    assert list(table["finding"]) == [1, 2, 3, 4, 5, 6, 7]
    assert set(table["verdict"]) == {"not enough data"}
    assert all("pairs:" in note for note in table["note"][:6]) and "series:" in table["note"].iloc[6]
    assert table.iloc[0]["n_needed_80pct"] == 155  # 10 points at the assumed discordant share


def test_series_with_falling_flow_and_rising_command_is_supported():
    rows = (model_rows("s", {"flow": 30, "completion": 20, "command": 10})
            + model_rows("s-step10", {"flow": 20, "completion": 25, "command": 20})
            + model_rows("s-step20", {"flow": 10, "completion": 30, "command": 30}))
    table = check(rows, params(series=[("s", ["s-step10", "s-step20"])], steps={"s-step10": 10, "s-step20": 20}))
    f7 = table[table["finding"] == 7]
    flow = f7[f7["scope"].str.contains(" flow: ")].iloc[0]
    command = f7[f7["scope"].str.contains(" command: ")].iloc[0]
    assert flow["value"] == pytest.approx(-50.0) and flow["verdict"] == "supported"  # 75 % → 25 % over 20 steps
    assert command["value"] == pytest.approx(50.0) and command["verdict"] == "supported"
    assert "pass@1 by step: 0: 75.00, 10: 50.00, 20: 25.00" in flow["note"]
    assert f7[f7["scope"].str.startswith("series")].iloc[0]["verdict"] == "supported"
    assert overall(table, 7)["verdict"] == "supported"
    # the reverse trajectory contradicts it
    rev = check(rows, params(series=[("s-step20", ["s-step10", "s"])], steps={"s-step10": 10, "s": 20}))
    assert overall(rev, 7)["verdict"] == "contradicted"


# ---------------------------------------------------------------------------------------------- bad input

def test_pair_naming_an_absent_model_is_a_user_error():
    with pytest.raises(UserError, match=r"pairs\[0\]\.instruct: model 'nope' has no samples"):
        check(model_rows("m-1b", TAX_BASE), params(pairs=[("m-1b", "nope")]))
    with pytest.raises(UserError, match="needs `base` and `instruct`"):
        fd.parse_params(json.dumps({"pairs": [{"base": "x"}]}))
    with pytest.raises(UserError, match="not valid JSON"):
        fd.parse_params("{pairs")


def test_different_task_sets_are_a_user_error():
    rows = model_rows("m-1b", TAX_BASE) + model_rows("m-1b-it", TAX_INSTRUCT, n=N - 1)
    with pytest.raises(UserError, match="scored on different tasks"):
        check(rows, params(pairs=[("m-1b", "m-1b-it")]))


def test_missing_field_names_it():
    rows = [{k: v for k, v in r.items() if k != "category"} for r in model_rows("m", TAX_BASE)]
    with pytest.raises(UserError, match="missing field.*category"):
        fd.prepare_samples(pd.DataFrame(rows), "x.jsonl")


# ---------------------------------------------------------------------------------------------- outputs

def _namespace(tmp_path: Path, samples: list[Path], p: dict, tag: str) -> argparse.Namespace:
    return argparse.Namespace(samples=samples, analysis_json=json.dumps(p), out_md=tmp_path / tag / "findings.md",
                              out_csv=tmp_path / tag / "findings.csv")


def test_run_writes_byte_identical_files(tmp_path):
    files = []
    for name, passes, kw in (("q-1.5b", TAX_BASE, {}), ("q-1.5b-instruct", TAX_INSTRUCT, {"verbose": True})):
        path = tmp_path / name / "samples.jsonl"
        path.parent.mkdir()
        write_jsonl(path, model_rows(name, passes, **kw))
        files.append(path)
    p = params(pairs=[("q-1.5b", "q-1.5b-instruct")], models={"q-1.5b": {"family": "qwen", "role": "base"}})
    assert fd.run(_namespace(tmp_path, files, p, "a")) == 0
    assert fd.run(_namespace(tmp_path, list(reversed(files)), p, "b")) == 0
    for name in ("findings.csv", "findings.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    text = (tmp_path / "a" / "findings.csv").read_text()
    records = list(csv.DictReader(io.StringIO(text)))
    assert list(records[0]) == list(fd.COLUMNS)
    assert records[0]["value"] == "-50.0000" and records[0]["n"] == "40" and records[0]["verdict"] == "supported"
    assert float(records[0]["p"]) == pytest.approx(2 / 2**20, rel=1e-3)  # not rounded away to 0.0000
    assert all(r["verdict"] in fd.VERDICTS for r in records)
    md = (tmp_path / "a" / "findings.md").read_text()
    assert md.count("## Finding ") == 7 and "Verdict: **supported**" in md and "qwen" in md


def test_cli_subprocess(tmp_path):
    path = tmp_path / "samples.jsonl"
    write_jsonl(path, model_rows("c-1b", TAX_BASE, n=12) + model_rows("c-1b-it", TAX_INSTRUCT, n=12))
    out_md, out_csv = tmp_path / "out" / "f.md", tmp_path / "out" / "f.csv"
    cmd = [sys.executable, "-m", "tuningtax", "findings", "--samples", str(path), "--out-md", str(out_md),
           "--out-csv", str(out_csv)]
    ok = subprocess.run([*cmd, "--analysis-json", json.dumps(params(pairs=[("c-1b", "c-1b-it")]))],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert out_csv.read_text().startswith(",".join(fd.COLUMNS) + "\n1,") and out_md.exists()
    bad = subprocess.run([*cmd, "--analysis-json", json.dumps(params(pairs=[("c-1b", "missing-7b")]))],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "pairs[0].instruct" in bad.stderr and "missing-7b" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_real_samples_without_pairs_run(tmp_path):
    real = ROOT / "data" / "07_scores" / "qwen2.5-coder-0.5b-instruct" / "samples.jsonl"
    if not real.exists():
        pytest.skip("no real samples in this checkout")
    p = params()
    assert fd.run(_namespace(tmp_path, [real], p, "real")) == 0
    table = list(csv.DictReader(io.StringIO((tmp_path / "real" / "findings.csv").read_text())))
    assert [r["verdict"] for r in table] == ["not enough data"] * 7
    assert not math.isnan(float(table[0]["n_needed_80pct"]))
