"""Paired statistics: hand-computed cases, scipy / statsmodels as oracles, golden tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tuningtax.analysis.stats import (
    Overlap, bootstrap_delta_ci, holm, mcnemar_exact_p, overlap, paired_summary, pass_at_1_pct, relative_delta_pct,
)
from tuningtax.analysis.tables import tax_table, three_mode_view, trajectory_table, variant_pairs, variant_table
from tuningtax.errors import UserError
from tuningtax.tasks.schema import Task


def frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["model", "task_id", "benchmark", "prompt_format", "level", "passed"])


def outcomes_for(model: str, passed: list[int], level: str = "raw", benchmark: str = "b1") -> list[tuple]:
    return [(model, f"T/{i}", benchmark, "fim", level, p) for i, p in enumerate(passed)]


# ---------------------------------------------------------------------------------------------- scalars

def test_mcnemar_hand_computed():
    # b=1, c=6: p = 2 * P[X <= 1], X ~ Bin(7, 1/2) = 2 * (1 + 7) / 128
    assert mcnemar_exact_p(1, 6) == pytest.approx(0.125, abs=1e-15)
    assert mcnemar_exact_p(6, 1) == pytest.approx(0.125, abs=1e-15)
    assert mcnemar_exact_p(0, 0) == 1.0  # no discordant pair: no evidence
    assert mcnemar_exact_p(3, 3) == 1.0  # capped at 1
    assert mcnemar_exact_p(0, 10) == pytest.approx(2 / 1024, abs=1e-15)


def test_mcnemar_agrees_with_statsmodels_and_scipy():
    from scipy.stats import binomtest
    from statsmodels.stats.contingency_tables import mcnemar

    for b in range(0, 25, 3):
        for c in range(0, 40, 4):
            ours = mcnemar_exact_p(b, c)
            sm = float(mcnemar(np.array([[7, b], [c, 2]]), exact=True).pvalue)
            assert ours == pytest.approx(sm, rel=1e-12, abs=1e-300)
            if b + c:
                assert ours == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9, abs=1e-300)
    # big counts: exact integer arithmetic, no overflow (2**3000 is far beyond a float)
    assert mcnemar_exact_p(1500, 1500) == 1.0
    assert mcnemar_exact_p(1400, 1600) == pytest.approx(binomtest(1400, 3000, 0.5).pvalue, rel=1e-9)


def test_overlap_and_pass_at_1():
    a = [1, 1, 0, 0, 1, 0]
    b = [1, 0, 1, 0, 1, 1]
    assert overlap(a, b) == Overlap(both=2, only_a=1, only_b=2, neither=1)
    assert pass_at_1_pct([True, False, True, True]) == 75.0
    assert math.isnan(pass_at_1_pct([]))
    with pytest.raises(ValueError):
        overlap([1, 0], [1])


def test_relative_delta_is_nan_at_zero_base():
    assert relative_delta_pct(50.0, 75.0) == pytest.approx(50.0)
    assert relative_delta_pct(80.0, 60.0) == pytest.approx(-25.0)
    assert math.isnan(relative_delta_pct(0.0, 30.0))
    assert math.isnan(relative_delta_pct(0.0, 0.0))


def test_holm_hand_values_and_statsmodels():
    from statsmodels.stats.multitest import multipletests

    # sorted 0.01, 0.03, 0.04 -> 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    rng = np.random.default_rng(3)
    for size in (1, 2, 7, 30):
        p = rng.uniform(0, 0.2, size)
        assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])
    out = holm([0.01, float("nan"), 0.04])  # NaN rows neither adjusted nor counted
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)
    with pytest.raises(ValueError):
        holm([1.5])


def test_bootstrap_ci_deterministic_contains_delta_and_matches_index_resampling():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 200)
    b = np.where(rng.random(200) < 0.3, 1 - a, a)
    delta = 100 * (b.mean() - a.mean())
    ci = bootstrap_delta_ci(a, b, seed=7)
    assert ci == bootstrap_delta_ci(a, b, seed=7)
    assert len({bootstrap_delta_ci(a, b, seed=s, n_resamples=500) for s in range(10)}) > 1  # the seed is used
    assert ci[0] < delta < ci[1]
    # literal paired resampling of task indices has the same distribution
    idx = np.random.default_rng(1).integers(0, a.size, (20_000, a.size))
    means = 100 * (b[idx].mean(axis=1) - a[idx].mean(axis=1))
    assert ci == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])), abs=1.0)
    # normal approximation of the paired difference as a third opinion
    se = 100 * np.std(b - a, ddof=1) / np.sqrt(a.size)
    assert ci == pytest.approx((delta - 1.96 * se, delta + 1.96 * se), abs=1.5)


def test_bootstrap_degenerate_cases():
    assert bootstrap_delta_ci([1, 0, 1], [1, 0, 1]) == (0.0, 0.0)
    assert bootstrap_delta_ci([0, 0], [1, 1]) == (100.0, 100.0)
    assert all(math.isnan(x) for x in bootstrap_delta_ci([], []))


# ---------------------------------------------------------------------------------------------- tables

BASE = [1, 1, 1, 0, 0, 0, 0, 1]  # 4/8
INSTRUCT = [1, 0, 1, 1, 1, 1, 1, 1]  # 7/8: both 3, only base 1, only instruct 4, neither 0


def golden_outcomes() -> pd.DataFrame:
    return frame(outcomes_for("base", BASE) + outcomes_for("inst", INSTRUCT)
                 + outcomes_for("base", [1, 1, 0, 0], level="first-line")
                 + outcomes_for("inst", [0, 0, 0, 0], level="first-line"))


def test_tax_table_golden():
    table = tax_table(golden_outcomes(), [("base", "inst")], seed=0, n_resamples=2000)
    assert list(table.columns) == [
        "base", "instruct", "benchmark", "prompt_format", "level", "n", "pass1_base", "pass1_instruct",
        "delta_pts", "rel_delta_pct", "mcnemar_p", "p_holm", "ci_low", "ci_high", "only_base",
        "only_instruct", "both", "neither"]
    first, raw = table.iloc[0], table.iloc[1]  # groups sorted: "first-line" < "raw"
    assert (first["level"], raw["level"]) == ("first-line", "raw")
    assert raw[["n", "only_base", "only_instruct", "both", "neither"]].tolist() == [8, 1, 4, 3, 0]
    assert raw[["pass1_base", "pass1_instruct", "delta_pts", "rel_delta_pct"]].tolist() == \
        pytest.approx([50.0, 87.5, 37.5, 75.0])
    assert raw["mcnemar_p"] == pytest.approx(2 * 6 / 32)  # b=1, c=4: 2 * (1 + 5) / 2**5
    assert first[["n", "only_base", "only_instruct", "both", "neither"]].tolist() == [4, 2, 0, 0, 2]
    assert first[["pass1_base", "pass1_instruct", "delta_pts", "rel_delta_pct"]].tolist() == \
        pytest.approx([50.0, 0.0, -50.0, -100.0])
    assert first["mcnemar_p"] == pytest.approx(0.5)  # b=2, c=0: 2 * 1/4
    # Holm over the two rows: sorted 0.375, 0.5 -> 2 * 0.375 = 0.75, max(0.75, 0.5) = 0.75
    assert table["p_holm"].tolist() == pytest.approx([0.75, 0.75])
    for _, row in table.iterrows():
        assert row["ci_low"] <= row["delta_pts"] <= row["ci_high"]


def test_tax_table_holm_by_family_and_zero_base():
    df = frame(outcomes_for("b", [0, 0, 0]) + outcomes_for("i", [1, 1, 0])
               + outcomes_for("b", [1, 1, 1], benchmark="b2") + outcomes_for("i", [0, 0, 0], benchmark="b2"))
    table = tax_table(df, [("b", "i")], holm_by=["benchmark"], n_resamples=500)
    assert math.isnan(table.loc[table["benchmark"] == "b1", "rel_delta_pct"].item())
    # one p-value per family: Holm leaves each unchanged
    assert table["p_holm"].tolist() == pytest.approx(table["mcnemar_p"].tolist())
    assert table.loc[table["benchmark"] == "b2", "mcnemar_p"].item() == pytest.approx(0.25)  # 2 * 1/8


def test_tax_table_refuses_bad_input():
    good = golden_outcomes()
    with pytest.raises(UserError, match="different tasks"):
        tax_table(good[~((good["model"] == "inst") & (good["task_id"] == "T/0"))], [("base", "inst")])
    with pytest.raises(UserError, match="repeat"):
        tax_table(pd.concat([good, good.iloc[:1]]), [("base", "inst")])
    with pytest.raises(UserError, match="no rows for model"):
        tax_table(good, [("base", "nope")])
    bad = good.astype({"passed": object})
    bad.loc[0, "passed"] = None
    with pytest.raises(UserError, match="0/1"):
        tax_table(bad, [("base", "inst")])
    with pytest.raises(UserError, match="empty values"):
        tax_table(good.assign(prompt_format=None), [("base", "inst")])
    with pytest.raises(UserError, match="missing column"):
        tax_table(good.drop(columns=["level"]), [("base", "inst")])


def test_tax_table_skips_groups_only_one_model_has():
    df = pd.concat([golden_outcomes(), frame(outcomes_for("inst", [1, 1], level="chat-only"))])
    table = tax_table(df, [("base", "inst")], n_resamples=100)
    assert sorted(table["level"]) == ["first-line", "raw"]
    assert tax_table(df, [], n_resamples=100).empty


def test_trajectory_table_against_paired_summary():
    start, c1, c2 = [1, 1, 0, 0, 1], [1, 0, 0, 0, 1], [0, 0, 0, 1, 1]
    df = frame(outcomes_for("q7b", start) + outcomes_for("q7b-20", c1) + outcomes_for("q7b-40", c2))
    table = trajectory_table(df, [("q7b", ["q7b-20", "q7b-40"])], seed=3, n_resamples=1000)
    assert table["checkpoint"].tolist() == ["q7b-20", "q7b-40"] and table["step"].tolist() == [1, 2]
    for (_, row), ck in zip(table.iterrows(), (c1, c2)):
        ref = paired_summary(start, ck, seed=3, n_resamples=1000)
        assert row["pass1_start"] == ref["pass1_a"] and row["pass1_checkpoint"] == ref["pass1_b"]
        assert row["delta_pts"] == ref["delta_pts"] and row["mcnemar_p"] == ref["mcnemar_p"]
        assert (row["ci_low"], row["ci_high"]) == (ref["ci_low"], ref["ci_high"])
        assert row["only_start"] == ref["only_a"] and row["only_checkpoint"] == ref["only_b"]
    assert table["delta_pts"].tolist() == pytest.approx([-20.0, -20.0])
    by_step = trajectory_table(df, [("q7b", ["q7b-20", "q7b-40"])], seed=3, n_resamples=1000, steps={"q7b-20": 200})
    assert by_step["step"].tolist()[0] == 200 and pd.isna(by_step["step"].tolist()[1])
    assert by_step.drop(columns="step").equals(table.drop(columns="step"))


def _task(task_id: str, benchmark: str, mode: str, source: str) -> Task:
    return Task(task_id, benchmark, mode, "", "", "", "", "f", "", source)


def test_three_mode_view():
    tasks = [_task("HumanEval/0", "humaneval-command", "command", "HumanEval/0"),
             _task("HumanEval/0", "humaneval-completion", "completion", "HumanEval/0"),
             _task("HumanEval/10", "humaneval-command", "command", "HumanEval/10"),
             *[_task(f"SingleLine/0/L{i}", "humaneval-single-line", "flow", "HumanEval/0") for i in range(3)],
             _task("SingleLine/10/L0", "humaneval-single-line", "flow", "HumanEval/10"),
             _task("MultiLine/0/L0", "humaneval-multi-line", "flow", "HumanEval/0")]
    rows = [("m", "HumanEval/0", "humaneval-command", "chat", "code-extract", 1),
            ("m", "HumanEval/0", "humaneval-command", "plain", "raw", 0),
            ("m", "HumanEval/0", "humaneval-completion", "plain", "raw", 0),
            ("m", "HumanEval/10", "humaneval-command", "chat", "code-extract", 0),
            ("m", "SingleLine/0/L0", "humaneval-single-line", "fim", "first-line", 1),
            ("m", "SingleLine/0/L1", "humaneval-single-line", "fim", "first-line", 0),
            ("m", "SingleLine/0/L2", "humaneval-single-line", "fim", "first-line", 1),
            ("m", "SingleLine/10/L0", "humaneval-single-line", "fim", "first-line", 1),
            ("m", "MultiLine/0/L0", "humaneval-multi-line", "fim", "raw", 0)]
    df = frame(rows)
    views = {"flow": {"benchmark": "humaneval-single-line"}, "completion": {"benchmark": "humaneval-completion"},
             "command": {"benchmark": "humaneval-command"}}
    with pytest.raises(UserError, match="name a prompt_format and a level"):
        three_mode_view(df, tasks, views=views)
    view = three_mode_view(df, tasks, views={**views, "command": {**views["command"], "prompt_format": "chat"}})
    assert view["source_id"].tolist() == ["HumanEval/0", "HumanEval/10"]
    assert view.iloc[0][["flow_n", "flow", "completion", "command"]].tolist() == pytest.approx([3, 2 / 3, 0, 1])
    last = view.iloc[1]
    assert (last["flow_n"], last["flow"], last["command"]) == (1, 1.0, 0.0) and math.isnan(last["completion"])
    flow_only = three_mode_view(df, tasks, views={"flow": views["flow"], "command": None})
    assert flow_only["command"].isna().all() and flow_only["flow"].tolist() == pytest.approx([2 / 3, 1.0])


def test_variant_pairs_and_table():
    samples = pd.DataFrame({"checkpoint": ["m", "m", "m", "m", "solo", "other"],
                            "variant": ["fp32", "int8", "fp32", "int4", "int8", "fp32"]})
    assert variant_pairs(samples) == [("m", "m@int4"), ("m", "m@int8")]  # a variant without fp32 is not paired
    assert variant_pairs(samples.drop(columns=["variant"])) == []
    df = frame(outcomes_for("m", BASE) + outcomes_for("m@int8", INSTRUCT))
    table = variant_table(df, [("m", "m@int8")], n_resamples=500)
    assert list(table.columns)[:2] == ["reference", "variant"]
    row = table.iloc[0]
    assert (row["reference"], row["variant"]) == ("m", "m@int8")
    assert row[["n", "only_reference", "only_variant", "pass1_reference", "pass1_variant"]].tolist() == \
        pytest.approx([8, 1, 4, 50.0, 87.5])
    assert row["mcnemar_p"] == pytest.approx(2 * 6 / 32)
