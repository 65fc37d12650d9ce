"""The per-sample explorer's files (no browser): their names, the same bytes on every run, data that cannot end
its <script>, report rows linking to the matching filtered view, and bad input named."""

from __future__ import annotations

import json
import re

import pytest

from tuningtax.analysis.explorer import hash_for, load_study, row_filters, script_json, write_explorer
from tuningtax.cli import main
from tuningtax.errors import UserError
from tuningtax.jsonl import write_jsonl

PAYLOAD = "x = 1</script><script>alert(1)</script><!-- \u2028\u2029 & </SCRIPT >"


def _task(task_id, benchmark, mode, **extra):
    return {"task_id": task_id, "benchmark": benchmark, "mode": mode, "prompt": "def f(x):\n", "suffix":
            "    return y\n" if mode == "flow" else "", "canonical_solution": "    y = x + 1\n",
            "test": "def check(c):\n    pass\n", "entry_point": "f", "instruction": "Write f." if mode == "command"
            else "", "source_id": task_id.split("/T")[0], **extra}


def _sample(model, benchmark, task_id, passed, level="raw", fmt="fim-psm", **extra):
    return {"model": model, "variant": "fp32", "benchmark": benchmark, "format": fmt, "checkpoint": model,
            "level": level, "task_id": task_id, "mode": "flow", "sample": 0, "passed": passed,
            "status": "passed" if passed else "failed", "category": "passed" if passed else "syntax_error",
            "stop_reason": "max_new_tokens", "markdown_fence": False, "edit_similarity": 0.123456789,
            "raw_output": "    y = x + 1\n", "completion": "    y = x + 1\n", **extra}


@pytest.fixture
def study(tmp_path):
    tasks = {"hs": [_task("P/0/T0", "hs", "flow"), _task("P/1/T0", "hs", "flow")],
             "cmd": [_task("P/0", "cmd", "command")]}
    task_files = []
    for bench, rows in tasks.items():
        write_jsonl(tmp_path / f"{bench}.jsonl", rows)
        task_files.append(tmp_path / f"{bench}.jsonl")
    samples = {"base": [_sample("base", "hs", "P/0/T0", True), _sample("base", "hs", "P/1/T0", True),
                        _sample("base", "cmd", "P/0", False, fmt="command-chat")],
               "inst": [_sample("inst", "hs", "P/0/T0", False, raw_output=PAYLOAD),
                        _sample("inst", "hs", "P/1/T0", True),
                        _sample("inst", "cmd", "P/0", True, fmt="command-chat")]}
    sample_files = []
    for model, rows in samples.items():
        write_jsonl(tmp_path / model / "samples.jsonl", rows)
        sample_files.append(tmp_path / model / "samples.jsonl")
    grid = tmp_path / "prompt_grid.csv"
    grid.write_text("model,benchmark,format,level,n,pass1\nbase,hs,fim-psm,raw,2,100.0000\n"
                    "inst,hs,fim-psm,raw,2,50.0000\n")
    tax = tmp_path / "tax.csv"
    tax.write_text("base,instruct,benchmark,prompt_format,level,n,delta_pts\nbase,inst,hs,fim-psm,raw,2,-50.0\n")
    findings = tmp_path / "findings.csv"
    findings.write_text("finding,claim,holds\n1,<b>instruct</b> & base,true\n")
    return {"samples": sample_files, "tasks": task_files, "tables": [grid, tax], "findings": findings,
            "root": tmp_path}


def _build(study, out_dir, samples=None):
    return write_explorer(samples or study["samples"], study["tasks"], study["tables"], study["findings"], out_dir)


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _register_payload(js: str) -> tuple[str, dict]:
    m = re.fullmatch(r'TTX\.register\(("[^"]*"),(.*)\);\n', js, flags=re.S)
    assert m, js[:200]
    return json.loads(m.group(1)), json.loads(m.group(2))


def test_writes_the_page_the_report_and_one_data_file_per_benchmark(study, tmp_path):
    out = tmp_path / "explorer"
    _build(study, out)
    assert sorted(_files(out)) == ["data/cmd.js", "data/hs.js", "index.html", "report.html"]


def test_runs_write_the_same_bytes_whatever_the_order_of_the_sample_files(study, tmp_path):
    _build(study, tmp_path / "a")
    _build(study, tmp_path / "b")
    _build(study, tmp_path / "c", samples=list(reversed(study["samples"])))
    assert _files(tmp_path / "a") == _files(tmp_path / "b") == _files(tmp_path / "c")


def test_data_cannot_close_its_script_and_reads_back_unchanged(study, tmp_path):
    out = tmp_path / "explorer"
    _build(study, out)
    js = (out / "data" / "hs.js").read_text(encoding="utf-8")
    for forbidden in ("</", "<!--", "<script", "\u2028", "\u2029"):
        assert forbidden not in js
    name, data = _register_payload(js)
    assert name == "hs"
    raw = data["cols"].index("raw_output")
    texts = {data["strs"][row[raw]] for row in data["rows"]}
    assert PAYLOAD in texts  # escapes, not deletions
    page = (out / "index.html").read_text(encoding="utf-8")
    # the only </script> are the page's own two (the index, the code)
    assert page.lower().count("</script") == 2 and "\u2028" not in page
    embedded = re.search(r'<script id="tt-index" type="application/json">(.*?)</script>', page, flags=re.S)
    index = json.loads(embedded.group(1))
    assert index["total"] == 6 and index["lists"]["model"] == ["base", "inst"]
    assert [b["name"] for b in index["benchmarks"]] == ["cmd", "hs"]


def test_script_json_escapes_what_html_and_javascript_would_read():
    value = {"k": PAYLOAD + "\ud800"}  # a lone surrogate too: JSON may carry one, UTF-8 cannot
    text = script_json(value)
    assert re.fullmatch(r"[^<>&\u2028\u2029\ud800-\udfff]*", text)
    assert json.loads(text) == value


def test_report_rows_link_to_their_filtered_view(study, tmp_path):
    out = tmp_path / "explorer"
    _build(study, out)
    report = (out / "report.html").read_text(encoding="utf-8")
    links = re.findall(r'<a class="explore" href="([^"]*)">', report)
    assert links == ["index.html#benchmark=hs&amp;model=base&amp;format=fim-psm&amp;level=raw",
                     "index.html#benchmark=hs&amp;model=inst&amp;format=fim-psm&amp;level=raw",
                     "index.html#benchmark=hs&amp;format=fim-psm&amp;level=raw&amp;outcome=paired&amp;passes=base"
                     "&amp;fails=inst"]
    # findings first, with its own columns; every cell escaped
    assert report.index('id="findings"') < report.index('id="prompt_grid"') < report.index('id="tax"')
    assert "<td>&lt;b&gt;instruct&lt;/b&gt; &amp; base</td>" in report and "<b>instruct" not in report


def test_hash_encodes_as_encode_uri_component_in_a_fixed_key_order():
    assert hash_for({"model": "m@int8", "benchmark": "a b", "level": "", "outcome": "fail"}) == \
        "benchmark=a%20b&model=m%40int8&outcome=fail"
    assert row_filters(["model", "source_id", "flow"], ["m", "HumanEval/2", "1.0"]) == \
        {"model": "m", "problem": "HumanEval/2"}
    assert row_filters(["model", "subset", "n"], ["m", "failed", "3"]) == {"model": "m", "outcome": "fail"}
    assert row_filters(["n_labelled", "agreement"], ["60", "0.9"]) is None


def test_a_sample_whose_task_is_missing_names_the_file_and_the_task(study, capsys):
    bad = study["root"] / "bad.jsonl"
    write_jsonl(bad, [_sample("base", "hs", "P/9/T0", True)])
    with pytest.raises(UserError, match=r"bad\.jsonl:1: task 'P/9/T0' of benchmark 'hs' is in none of the --tasks"):
        load_study([bad], study["tasks"])
    out = study["root"] / "out"
    rc = main(["explorer", "--samples", str(bad), "--tasks", *map(str, study["tasks"]), "--out-dir", str(out)])
    assert rc == 2 and "P/9/T0" in capsys.readouterr().err
    assert not out.exists()  # nothing written on bad input


@pytest.mark.parametrize(("record", "message"), [
    ({"model": "m", "benchmark": "hs", "format": "f", "level": "raw"}, "lacks field"),
    ({"model": "m", "benchmark": "hs", "format": "f", "level": "raw", "task_id": "P/0/T0", "passed": "yes"},
     "passed is 'yes'"),
    ({"model": "m", "benchmark": "../hs", "format": "f", "level": "raw", "task_id": "P/0/T0"}, "cannot name a data"),
])
def test_malformed_samples_are_user_errors(study, record, message):
    bad = study["root"] / "bad.jsonl"
    write_jsonl(bad, [record])
    with pytest.raises(UserError, match=message):
        load_study([bad], study["tasks"])


def test_a_repeated_sample_and_a_missing_table_are_user_errors(study, tmp_path):
    with pytest.raises(UserError, match="the same sample as"):
        load_study([study["samples"][0], study["samples"][0]], study["tasks"])
    with pytest.raises(UserError, match="nope.csv: file not found"):
        write_explorer(study["samples"], study["tasks"], [tmp_path / "nope.csv"], None, tmp_path / "out")
