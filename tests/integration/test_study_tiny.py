"""The whole study on two tiny random models (a base and an instruct): export -> generate -> post-process
-> execute -> measure -> tax, behaviour and taxonomy tables, plots and DVC metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from conftest import REPO, build_tiny_qwen

pytestmark = pytest.mark.slow  # a whole tiny study (about 4 minutes on 2 cores)


@pytest.fixture(scope="module")
def study(tmp_path_factory, qwen_tokenizer_dir):
    root = tmp_path_factory.mktemp("study")
    base = build_tiny_qwen(root / "tiny-base", qwen_tokenizer_dir, seed=1)
    instruct = build_tiny_qwen(root / "tiny-instruct", qwen_tokenizer_dir, seed=2)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update({
        "benchmarks": ["humaneval-single-line", "humaneval-completion", "humaneval-command"],
        "models": {
            "tiny-base": {"family": "qwen2.5-coder", "role": "base", "source": str(base)},
            "tiny-instruct": {"family": "qwen2.5-coder", "role": "instruct", "source": str(instruct)},
        },
        "generation": {**params["generation"], "batch_size": 4, "max_new_tokens": {"flow": 8, "completion": 8,
                                                                                   "command": 8}},
        "subset": {"n_problems": 3, "max_flow_tasks_per_problem": 2, "seed": 0},
        "runs": [{"benchmark": "humaneval-single-line", "formats": ["fim-psm"]},
                 {"benchmark": "humaneval-completion", "formats": ["completion-raw"]},
                 {"benchmark": "humaneval-command", "formats": ["command-chat"]}],
        "pairs": [{"base": "tiny-base", "instruct": "tiny-instruct"}],
        "analysis": {**params["analysis"], "n_resamples": 200},
        "tuning": None,
    })
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    run = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(root),
                          "--configfile", str(root / "params.yaml"), "--cores", "2"],
                         capture_output=True, text=True, timeout=1500, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    return root


def tabulate(study, samples, tmp_path, series=(), steps=None, labels=None) -> subprocess.CompletedProcess:
    """``python -m tuningtax tabulate`` on the tiny study's tasks, writing under tmp_path (tables/, plots/)."""
    tasks = sorted(str(p) for p in (study / "data" / "02_subsets").glob("*.jsonl"))
    analysis = json.dumps({"pairs": [], "series": list(series), "steps": steps or {}, "seed": 0, "n_resamples": 200,
                           "three_mode": {
                               "flow": {"benchmark": "humaneval-single-line", "format": "fim-psm",
                                        "level": "first-line"},
                               "completion": {"benchmark": "humaneval-completion", "format": "completion-raw",
                                              "level": "stop-cut"},
                               "command": {"benchmark": "humaneval-command", "format": "command-chat",
                                           "level": "code-extract"}}})
    files = [str(p) for p in samples] if isinstance(samples, list) else [str(samples)]
    return subprocess.run([sys.executable, "-m", "tuningtax", "tabulate", "--samples", *files, "--tasks", *tasks,
                           "--analysis-json", analysis, *(["--labels", str(labels)] if labels else []),
                           "--out-dir", str(tmp_path / "tables"), "--plots-dir", str(tmp_path / "plots"),
                           "--metrics", str(tmp_path / "m.json")], capture_output=True, text=True)


def test_scores_cover_every_run_and_level(study):
    scores = pd.read_csv(study / "results" / "scores.csv")
    assert set(scores["model"]) == {"tiny-base", "tiny-instruct"}
    single = scores[scores["benchmark"] == "humaneval-single-line"]
    assert set(single["level"]) == {"raw", "stop-cut", "first-line", "code-extract", "syntax-truncate"}
    assert "first-line" not in set(scores[scores["benchmark"] != "humaneval-single-line"]["level"])
    assert (scores["n"] > 0).all() and scores["pass@1"].between(0, 1).all()


def test_variant_table_pairs_each_model_with_its_int8(study, tmp_path):
    """tabulate on the study's samples plus an int8 copy of them in which one task's outcome flipped."""
    samples = [json.loads(line) for path in sorted((study / "data" / "07_scores").glob("*/samples.jsonl"))
               for line in path.open()]
    first = next(s for s in samples if s["model"] == "tiny-instruct")
    flipped = (first["benchmark"], first["format"], first["task_id"])

    def int8_copy(s: dict) -> dict:
        flip = s["model"] == "tiny-instruct" and (s["benchmark"], s["format"], s["task_id"]) == flipped
        return {**s, "variant": "int8", "model": s["model"] + "@int8", "passed": s["passed"] != flip}

    int8 = [int8_copy(s) for s in samples]
    both = tmp_path / "samples.jsonl"
    both.write_text("".join(json.dumps(s) + "\n" for s in samples + int8))
    run = tabulate(study, both, tmp_path)
    assert run.returncode == 0, run.stderr
    variants = pd.read_csv(tmp_path / "tables" / "variants.csv")
    assert set(zip(variants["reference"], variants["variant"])) == {
        ("tiny-base", "tiny-base@int8"), ("tiny-instruct", "tiny-instruct@int8")}
    assert (variants["only_reference"] + variants["only_variant"] + variants["both"] + variants["neither"]
            == variants["n"]).all()
    discordant = variants["only_reference"] + variants["only_variant"]
    hit = (variants["reference"] == "tiny-instruct") & (variants["benchmark"] == flipped[0]) \
        & (variants["prompt_format"] == flipped[1])
    levels = {s["level"] for s in samples if (s["benchmark"], s["format"], s["task_id"]) == flipped
              and s["model"] == "tiny-instruct"}
    assert (discordant[hit] == 1).all() and set(variants.loc[hit, "level"]) == levels
    assert (discordant[~hit] == 0).all()
    assert (tmp_path / "tables" / "variants.md").read_text().startswith("# Variants")
    assert not (study / "results" / "tables" / "variants.csv").exists()  # one variant: no table


def test_trajectory_table_carries_the_training_steps(study, tmp_path):
    """A series read as base -> instruct: the trajectory rows carry the step from params (not their position),
    and the plot is drawn."""
    run = tabulate(study, sorted((study / "data" / "07_scores").glob("*/samples.jsonl")), tmp_path,
                   series=[{"start": "tiny-base", "checkpoints": ["tiny-instruct"]}], steps={"tiny-instruct": 500})
    assert run.returncode == 0, run.stderr
    trajectory = pd.read_csv(tmp_path / "tables" / "trajectory.csv")
    tax = pd.read_csv(study / "results" / "tables" / "tax.csv")
    assert set(trajectory["step"]) == {500} and len(trajectory) == len(tax)
    assert trajectory["delta_pts"].tolist() == tax["delta_pts"].tolist()
    assert (tmp_path / "plots" / "trajectory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tax_table_pairs_base_and_instruct(study):
    tax = pd.read_csv(study / "results" / "tables" / "tax.csv")
    assert set(tax["base"]) == {"tiny-base"} and set(tax["instruct"]) == {"tiny-instruct"}
    assert {"delta_pts", "mcnemar_p", "p_holm", "ci_low", "ci_high", "only_base", "only_instruct"} <= set(tax.columns)
    assert (tax["only_base"] + tax["only_instruct"] + tax["both"] + tax["neither"] == tax["n"]).all()
    assert tax["mcnemar_p"].between(0, 1).all() and (tax["p_holm"] >= tax["mcnemar_p"] - 1e-12).all()


def test_every_table_plot_and_metric_is_written(study):
    tables = study / "results" / "tables"
    for name in ("prompt_grid", "tax", "three_mode", "behaviour", "taxonomy"):
        assert (tables / f"{name}.csv").stat().st_size > 0 and (tables / f"{name}.md").read_text().startswith("# ")
    for plot in ("tax.png", "three_mode.png"):
        assert (study / "results" / "plots" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((study / "results" / "metrics.json").read_text())
    assert any(k.startswith("tiny-instruct/humaneval-command/command-chat/") for k in metrics["pass@1"])
    # The repository's hand labels belong to the real model's runs: counted as absent, not compared.
    agreement = pd.read_csv(tables / "taxonomy_agreement.csv").iloc[0]
    assert agreement["n_labelled"] == 0 and agreement["n_not_in_run"] >= 60
    view = pd.read_csv(tables / "three_mode.csv")
    assert set(view["model"]) == {"tiny-base", "tiny-instruct"} and len(view) == 6  # 3 problems x 2 models


def test_behaviour_reports_all_and_failed(study):
    behaviour = pd.read_csv(study / "results" / "tables" / "behaviour.csv")
    assert set(behaviour["subset"]) == {"all", "failed"}
    samples = [json.loads(line) for path in sorted((study / "data" / "07_scores").glob("*/samples.jsonl"))
               for line in path.open()]
    assert all(0.0 <= s["code_token_ratio"] <= 1.0 for s in samples)
    assert {s["category"] for s in samples} <= {"passed", "empty_output", "special_token_leak", "format_wrapper",
                                                "irrelevant_natural_language", "suffix_duplication",
                                                "redundant_extra_code", "syntax_error", "timeout_or_runtime_error",
                                                "functional_mismatch"}


def test_corrupted_intermediate_stops_the_pipeline(study):
    """A duplicated row in an execution file stops validation, naming the file and the expectation."""
    target = next((study / "data" / "06_executions" / "tiny-base" / "fp32" / "humaneval-completion"
                   / "completion-raw").glob("raw.jsonl"))
    lines = target.read_text().splitlines(keepends=True)
    target.write_text("".join(lines + lines[:1]))
    run = subprocess.run([sys.executable, "-m", "tuningtax", "validate", "--suite", "executions", "--input",
                          str(target.parent), "--out", str(study / "x.json"), "--param",
                          f"expected_rows={len(lines)}"], capture_output=True, text=True)
    assert run.returncode == 1
    assert str(target) in run.stderr and "expect_compound_columns_to_be_unique" in run.stderr


def test_label_sheet_is_blind_and_kappa_is_reported(study, tmp_path):
    samples = tmp_path / "samples.jsonl"  # both checkpoints' sample files as one
    samples.write_text("".join(p.read_text() for p in sorted((study / "data" / "07_scores").glob("*/samples.jsonl"))))
    tasks = sorted(str(p) for p in (study / "data" / "02_subsets").glob("*.jsonl"))
    sheet = tmp_path / "sheet.jsonl"
    run = subprocess.run([sys.executable, "-m", "tuningtax", "label-sheet", "--samples", str(samples), "--tasks",
                          *tasks, "--completions-root", str(study / "data" / "05_completions"), "--n", "12",
                          "--out", str(sheet)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in sheet.open()]
    assert len(rows) == 12 and all(r["label"] is None and "category" not in r for r in rows)
    # Label with the classifier's own categories but flip one: agreement 11/12 and kappa below 1.
    truth = {tuple(s[k] for k in ("model", "benchmark", "format", "level", "task_id", "sample")): s["category"]
             for s in map(json.loads, samples.open())}
    labels = tmp_path / "labels.jsonl"
    with labels.open("w") as fh:
        for i, r in enumerate(rows):
            key = tuple(r[k] for k in ("model", "benchmark", "format", "level", "task_id", "sample"))
            label = truth[key] if i else ("functional_mismatch" if truth[key] != "functional_mismatch" else "syntax_error")
            fh.write(json.dumps({**{k: r[k] for k in ("model", "benchmark", "format", "level", "task_id", "sample")},
                                 "label": label}) + "\n")
    out = tmp_path / "tables"
    run = tabulate(study, samples, tmp_path, labels=labels)
    assert run.returncode == 0, run.stderr
    agreement = pd.read_csv(out / "taxonomy_agreement.csv").iloc[0]
    assert agreement["n_labelled"] == 12 and agreement["agreement"] == pytest.approx(11 / 12, abs=1e-4)
    assert agreement["cohen_kappa"] < 1.0


def _samples(study) -> list[dict]:
    return [json.loads(line) for path in sorted((study / "data" / "07_scores").glob("*/samples.jsonl"))
            for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def browser():
    from tuningtax.bench.explorer import browser_problem, open_browser

    if browser_problem() is not None:
        pytest.skip(f"no headless browser for the explorer: {browser_problem()}")
    driver = open_browser()
    yield driver
    driver.quit()


def test_findings_and_plots_are_written_and_validated(study):
    findings = pd.read_csv(study / "results" / "findings.csv")
    assert sorted(findings["finding"].unique()) == list(range(1, 8))
    assert set(findings["verdict"]) <= {"supported", "contradicted", "not enough data"}
    # the tiny study has a pair: finding 1 is computed on it, not a hint to configure one
    tax_rows = findings[(findings["finding"] == 1) & (findings["scope"] != "overall")]
    assert len(tax_rows) and tax_rows["scope"].str.contains("tiny-base").all()
    assert "## Finding 7" in (study / "results" / "findings.md").read_text()
    for name in ("tax", "three_mode", "prompt_grid", "failure_shares"):
        for suffix in ("png", "svg", "csv"):
            assert (study / "results" / "plots" / f"{name}.{suffix}").stat().st_size > 0
    assert json.loads((study / "results" / "findings.validated.json").read_text())["success"] is True
    assert json.loads((study / "results" / "plots" / "plots.validated.json").read_text())["success"] is True


def test_explorer_filters_show_the_study_samples(study, browser):
    """The tiny study's own explorer, two filters chosen in the page: the rows shown are the samples file's."""
    from selenium.webdriver.support.ui import Select

    from tuningtax.bench.explorer import visible_rows, wait_for, wait_rendered

    browser.get("about:blank")
    browser.get((study / "results" / "explorer" / "index.html").as_uri())
    wait_for(browser, "window.__ttReady")
    for key, value in (("benchmark", "humaneval-single-line"), ("level", "first-line")):
        seq = browser.execute_script("return window.__ttRendered.seq;")
        Select(browser.find_element("id", f"f-{key}")).select_by_value(value)
        wait_rendered(browser, seq)
    expected = {(r["benchmark"], r["task_id"], r["model"], r["format"], r["level"]) for r in _samples(study)
                if r["benchmark"] == "humaneval-single-line" and r["level"] == "first-line"}
    shown = visible_rows(browser)
    assert len(shown) == len(expected) == 2 * len({t for _, t, _, _, _ in expected}) > 0
    assert set(shown) == expected
    assert int(browser.find_element("id", "count").get_attribute("data-count")) == len(expected)


def test_a_report_link_lands_on_its_filtered_view(study, browser):
    """report.html's tax row opens the paired view: base passes, instruct fails, on that row's run."""
    from tuningtax.bench.explorer import visible_rows, wait_for

    tax = pd.read_csv(study / "results" / "tables" / "tax.csv")
    browser.get((study / "results" / "explorer" / "report.html").as_uri())
    links = browser.find_elements("css selector", "#tax tbody tr a.explore")
    assert len(links) == len(tax)
    index = int(tax["only_base"].to_numpy().argmax())  # the row with the most "base passes, instruct fails"
    row = tax.iloc[index]
    links[index].click()
    wait_for(browser, "window.__ttReady")
    assert browser.current_url.endswith(
        f"index.html#benchmark={row['benchmark']}&format={row['prompt_format']}&level={row['level']}"
        "&outcome=paired&passes=tiny-base&fails=tiny-instruct")
    group = [r for r in _samples(study) if (r["benchmark"], r["format"], r["level"])
             == (row["benchmark"], row["prompt_format"], row["level"])]
    passed = {(r["model"], r["task_id"]): r["passed"] for r in group}
    tasks = {t for (m, t), p in passed.items() if m == "tiny-base" and p and not passed[("tiny-instruct", t)]}
    assert len(tasks) == row["only_base"]
    assert len(visible_rows(browser)) == 2 * len(tasks)  # both models' samples of each such task
    assert set(visible_rows(browser)) == {(r["benchmark"], r["task_id"], r["model"], r["format"], r["level"])
                                          for r in group if r["task_id"] in tasks}
