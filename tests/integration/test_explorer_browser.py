"""The explorer in headless Chromium, opened from file:// as a reader would: filters chosen in its <select>s show
exactly the samples Python selects from the samples file, a report row's link lands on its filtered view,
model output is shown as text (never run), and the bench's count check at a small size.

Needs selenium and Debian's chromium + chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)."""

from __future__ import annotations

import json
import zlib

import pytest

from tuningtax.bench.explorer import browser_problem, open_browser, visible_rows, wait_for, wait_rendered
from tuningtax.cli import main
from tuningtax.jsonl import write_jsonl

pytestmark = pytest.mark.skipif(browser_problem() is not None,
                                reason=f"no headless browser for the explorer tests: {browser_problem()}")

MODELS = ("base-1b", "instruct-1b")
# benchmark -> (mode, tasks, formats)
BENCHMARKS = {"hs-line": ("flow", ["HumanEval/0/L1", "HumanEval/0/L3", "HumanEval/1/L2"], ["fim-psm", "holefiller"]),
              "hep-command": ("command", ["HumanEval/0", "HumanEval/1"], ["command-chat"])}
LEVELS = ("raw", "stop-cut")
XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


# hs-line / fim-psm / raw: base passes and instruct fails on two tasks, the reverse on the third
PAIRED = {("base-1b", "HumanEval/0/L1"): True, ("instruct-1b", "HumanEval/0/L1"): False,
          ("base-1b", "HumanEval/1/L2"): True, ("instruct-1b", "HumanEval/1/L2"): False,
          ("base-1b", "HumanEval/0/L3"): False, ("instruct-1b", "HumanEval/0/L3"): True}


def _passed(model: str, bench: str, task: str, fmt: str, level: str) -> bool:
    """Known outcomes, a mix of passes and failures in every group."""
    if (bench, fmt, level) == ("hs-line", "fim-psm", "raw"):
        return PAIRED[(model, task)]
    return zlib.crc32("|".join((model, bench, task, fmt, level)).encode()) % 3 != 0


def _tasks_and_samples(root, raw_output=lambda *key: "    return x\n"):
    task_files, samples = [], {m: [] for m in MODELS}
    for bench, (mode, ids, formats) in BENCHMARKS.items():
        tasks = [{"task_id": t, "benchmark": bench, "mode": mode, "prompt": f"def f{i}(x):\n",
                  "suffix": "    return y\n" if mode == "flow" else "", "canonical_solution": "    y = x\n",
                  "test": "def check(c):\n    pass\n", "entry_point": f"f{i}", "source_id": "/".join(t.split("/")[:2]),
                  "instruction": "Write f. <b>bold</b>" if mode == "command" else ""} for i, t in enumerate(ids)]
        write_jsonl(root / "tasks" / f"{bench}.jsonl", tasks)
        task_files.append(root / "tasks" / f"{bench}.jsonl")
        for task in ids:
            for model in MODELS:
                for fmt in formats:
                    for level in LEVELS:
                        passed = _passed(model, bench, task, fmt, level)
                        raw = raw_output(model, bench, task, fmt, level)
                        samples[model].append({
                            "model": model, "variant": "fp32", "benchmark": bench, "format": fmt,
                            "checkpoint": model, "level": level, "task_id": task, "mode": mode, "sample": 0,
                            "passed": passed, "status": "passed" if passed else "failed",
                            "category": "passed" if passed else "functional_mismatch", "stop_reason": "max_new_tokens",
                            "markdown_fence": False, "raw_output": raw, "completion": raw.strip() + "\n"})
    sample_files = []
    for model, rows in samples.items():
        write_jsonl(root / "scores" / model / "samples.jsonl", rows)
        sample_files.append(root / "scores" / model / "samples.jsonl")
    return sample_files, task_files, [r for rows in samples.values() for r in rows]


def _build(root, **kwargs):
    sample_files, task_files, rows = _tasks_and_samples(root, **kwargs)
    grid = root / "prompt_grid.csv"
    grid.write_text("model,benchmark,format,level,n,pass1\n" + "".join(
        f"{m},hs-line,{f},{lv},3,0.0\n" for m in MODELS for f in ("fim-psm", "holefiller") for lv in LEVELS))
    tax = root / "tax.csv"
    tax.write_text("base,instruct,benchmark,prompt_format,level,n,delta_pts\n"
                   f"{MODELS[0]},{MODELS[1]},hs-line,fim-psm,raw,3,0.0\n")
    out = root / "explorer"
    rc = main(["explorer", "--samples", *map(str, sample_files), "--tasks", *map(str, task_files),
               "--tables", str(grid), str(tax), "--out-dir", str(out)])
    assert rc == 0
    return out, rows


def _order(rows):
    """The page's order: benchmark, task (as in its task file), model, format, level."""
    position = {t: i for _, ids, _ in BENCHMARKS.values() for i, t in enumerate(ids)}
    return sorted(rows, key=lambda r: (r["benchmark"], position[r["task_id"]], r["model"], r["format"], r["level"]))


def _keys(rows):
    return [(r["benchmark"], r["task_id"], r["model"], r["format"], r["level"]) for r in _order(rows)]


@pytest.fixture(scope="module")
def browser():
    driver = open_browser()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("explorer"))


def _open(driver, url):
    driver.get("about:blank")
    driver.get(url)
    wait_for(driver, "window.__ttReady")


def _count(driver) -> int:
    return int(driver.find_element("id", "count").get_attribute("data-count"))


def test_filters_chosen_in_the_page_show_the_samples_python_selects(browser, study):
    from selenium.webdriver.support.ui import Select

    out, rows = study
    _open(browser, (out / "index.html").as_uri())
    assert _count(browser) == len(rows) == 32
    for key, value in (("benchmark", "hs-line"), ("outcome", "fail")):
        seq = browser.execute_script("return window.__ttRendered.seq;")
        Select(browser.find_element("id", f"f-{key}")).select_by_value(value)
        wait_rendered(browser, seq)
    expected = _keys(r for r in rows if r["benchmark"] == "hs-line" and not r["passed"])
    assert 0 < len(expected) < 24
    assert visible_rows(browser) == expected and _count(browser) == len(expected)
    assert browser.execute_script("return location.hash;") == "#benchmark=hs-line&outcome=fail"
    # the task's prefix, hole and suffix sit with its samples, and the shown models are the samples' own
    shown = {(e.get_attribute("data-task"), e.get_attribute("data-model"))
             for e in browser.find_elements("css selector", "#results .sample")}
    assert shown == {(t, m) for _, t, m, _, _ in expected}
    assert browser.find_elements("css selector", "section.task details.context pre.hole")


def test_a_report_row_link_opens_the_explorer_on_that_row(browser, study):
    out, rows = study
    browser.get((out / "report.html").as_uri())
    link = browser.find_element("css selector", "#prompt_grid tbody tr:nth-child(2) a.explore")
    target = "index.html#benchmark=hs-line&model=base-1b&format=fim-psm&level=stop-cut"
    assert link.get_attribute("href").endswith(target)
    link.click()
    wait_for(browser, "window.__ttReady")
    assert browser.current_url.endswith("/" + target)
    expected = _keys(r for r in rows if (r["benchmark"], r["model"], r["format"], r["level"])
                     == ("hs-line", "base-1b", "fim-psm", "stop-cut"))
    assert visible_rows(browser) == expected and len(expected) == 3
    assert browser.find_element("id", "f-model").get_attribute("value") == "base-1b"

    # the tax row: the paired view, base passes and instruct fails on the same task
    browser.get((out / "report.html").as_uri())
    browser.find_element("css selector", "#tax tbody tr a.explore").click()
    wait_for(browser, "window.__ttReady")
    assert browser.current_url.endswith("#benchmark=hs-line&format=fim-psm&level=raw&outcome=paired"
                                        "&passes=base-1b&fails=instruct-1b")
    group = [r for r in rows if (r["benchmark"], r["format"], r["level"]) == ("hs-line", "fim-psm", "raw")]
    outcome = {(r["model"], r["task_id"]): r["passed"] for r in group}
    tasks = {t for (m, t), p in outcome.items() if m == MODELS[0] and p and not outcome[(MODELS[1], t)]}
    assert tasks == {"HumanEval/0/L1", "HumanEval/1/L2"}
    assert visible_rows(browser) == _keys(r for r in group if r["task_id"] in tasks)
    assert browser.find_element("id", "paired").is_displayed()


def test_model_output_is_shown_as_text_and_never_run(browser, tmp_path):
    out, rows = _build(tmp_path, raw_output=lambda model, bench, task, fmt, level: XSS if (
        model, task, fmt, level) == (MODELS[1], "HumanEval/1", "command-chat", "raw") else "    return x\n")
    _open(browser, (out / "index.html").as_uri() + f"#benchmark=hep-command&model={MODELS[1]}&problem=HumanEval%2F1"
          "&level=raw")
    assert visible_rows(browser) == [("hep-command", "HumanEval/1", MODELS[1], "command-chat", "raw")]
    raw = browser.find_element("css selector", "#results .sample pre.raw")
    assert raw.text == XSS
    assert browser.find_elements("css selector", "#results img") == []
    assert browser.execute_script("return typeof window.__pwned;") == "undefined"
    browser.find_element("css selector", "section.task summary").click()
    assert "Write f. <b>bold</b>" in browser.find_element("css selector", "section.task details").text


def test_the_bench_counts_match_at_a_small_size(tmp_path):
    from tuningtax.bench.explorer import main as bench_main

    out = tmp_path / "explorer.json"
    assert bench_main(["--n-samples", "3000", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["count_ok"] and result["count"] == result["expected_count"] > 0
    assert 2500 <= result["n_samples"] <= 3500 and result["browser_errors"] == []


def test_old_or_malformed_links_never_show_the_wrong_samples(browser, study):
    """A value this study lacks matches nothing (not every sample without one), and a malformed escape drops
    only its own part of the hash."""
    out, rows = study
    _open(browser, (out / "index.html").as_uri() + "#category=no_such_category")
    assert _count(browser) == 0 and visible_rows(browser) == []
    assert "no_such_category" in browser.find_element("id", "note").text
    _open(browser, (out / "index.html").as_uri() + "#%E0=1&benchmark=hep-command")
    expected = _keys(r for r in rows if r["benchmark"] == "hep-command")
    assert _count(browser) == len(expected) > 0
