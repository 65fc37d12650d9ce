"""`python -m tuningtax bench explorer [--n-samples 50000] [--out benchmarks/explorer.json] [--keep DIR]`: the
per-sample explorer on a synthetic study the size of a full one, opened in headless Chromium.

It writes a study of about --n-samples samples (164 problems; humaneval-single-line, -multi-line, -random-span,
safim-block, humaneval-completion and humanevalplus-command, several flow tasks per problem; 4 checkpoints,
their formats and 6 post-processing levels; outputs of 200-400 characters) with its task files into a
temporary folder (or --keep), builds the explorer there and measures, on the page's own clock:

  ready_ms        navigation start -> the page interactive with its first view rendered (index parsed, the
                  first page's data file loaded, 50 samples drawn)
  filter_ms       one filter change (the benchmark with the largest data file, not loaded yet) -> drawn
  filter_again_ms a second change (outcome = fail, data already loaded) -> drawn
  paired_open_ms  opening a link to the paired view (one model passes, the other fails) -> drawn

plus the files' sizes, and checks that the filtered count and the first page's samples equal those computed in
Python from the samples file. Target: ready_ms and filter_ms under 2000. Writes only --out (and --keep).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

CHROMIUM = Path(os.environ.get("TUNINGTAX_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("TUNINGTAX_CHROMEDRIVER", "/usr/bin/chromedriver"))

PROBLEMS = 164
# benchmark -> (mode, tasks per problem, prompt formats)
BENCHMARKS = {
    "humaneval-single-line": ("flow", 2, ("fim-psm", "holefiller")),
    "humaneval-multi-line": ("flow", 2, ("fim-psm", "holefiller")),
    "humaneval-random-span": ("flow", 1, ("fim-psm", "holefiller")),
    "safim-block": ("flow", 1, ("fim-psm", "holefiller")),
    "humaneval-completion": ("completion", 1, ("completion-raw",)),
    "humanevalplus-command": ("command", 1, ("command-chat",)),
}
MODELS = {"qwen2.5-coder-1.5b": 0.55, "qwen2.5-coder-1.5b-instruct": 0.45, "deepseek-coder-1.3b-base": 0.5,
          "deepseek-coder-1.3b-instruct": 0.4}
LEVELS = ("raw", "stop-cut", "first-line", "code-extract", "syntax-truncate", "safim-truncate")
CATEGORIES = ("functional_mismatch", "syntax_error", "format_wrapper", "irrelevant_natural_language",
              "redundant_extra_code", "suffix_duplication", "timeout_or_runtime_error")
WORDS = ("result", "value", "index", "numbers", "return", "for", "in", "if", "else", "len", "range", "append",
         "sorted", "sum", "max", "min", "x", "y", "i", "j", "string", "count", "not", "and", "or", "None")


def browser_problem() -> str | None:
    """Why the headless browser cannot run here (None: it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (uv pip install selenium, the `test` dependency group)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} is absent (apt-get install {package}, or set TUNINGTAX_CHROMIUM/TUNINGTAX_CHROMEDRIVER)"
    return None


def open_browser():
    """Headless Chromium under Selenium (no sandbox: the tests may run as root)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))


def wait_for(driver, script: str, timeout: float = 30.0):
    """Poll a JavaScript expression until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return {script};")
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"page never satisfied `{script}` within {timeout:.0f} s")
        time.sleep(0.01)


def wait_rendered(driver, after_seq: int, timeout: float = 30.0) -> dict:
    return wait_for(driver, f"window.__ttRendered && window.__ttRendered.seq > {after_seq} && window.__ttRendered",
                    timeout)


def change_filter(driver, key: str, value: str) -> float:
    """Set one filter through its <select> as a user would; milliseconds until the view is drawn."""
    seq = driver.execute_script("return window.__ttRendered ? window.__ttRendered.seq : 0;")
    t0 = driver.execute_script(
        "var s = document.getElementById('f-' + arguments[0]); var t0 = performance.now(); s.value = arguments[1];"
        "s.dispatchEvent(new Event('change', {bubbles: true})); return t0;", key, value)
    rendered = wait_rendered(driver, seq)
    return rendered["t"] - t0


def visible_rows(driver) -> list[tuple[str, str, str, str, str]]:
    """(benchmark, task_id, model, format, level) of each sample shown."""
    return [tuple(x) for x in driver.execute_script(
        "return Array.from(document.querySelectorAll('#results .sample')).map(function (e) {"
        "return ['benchmark', 'task', 'model', 'format', 'level'].map(function (k) {"
        "return e.getAttribute('data-' + k); }); });")]


def _code(rng: random.Random, lo: int, hi: int) -> str:
    target, lines = rng.randint(lo, hi), []
    size = 0
    while size < target:
        indent = "    " * rng.randint(1, 3)
        line = indent + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)[:target] + "\n"


def synthetic_study(folder: Path, n_samples: int, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Task files and per-model samples files of a study of about n_samples samples."""
    from tuningtax.jsonl import write_jsonl

    rng = random.Random(seed)
    per_task = {b: len(MODELS) * len(formats) * len(LEVELS) for b, (_, _, formats) in BENCHMARKS.items()}
    full = sum(PROBLEMS * k * per_task[b] for b, (_, k, _) in BENCHMARKS.items())
    scale = min(1.0, n_samples / full)
    task_files, rows_by_model = [], {m: [] for m in MODELS}
    for bench, (mode, k, formats) in BENCHMARKS.items():
        n_tasks = max(1, round(PROBLEMS * k * scale))
        tasks = []
        for i in range(n_tasks):
            problem = i // k
            source = f"SAFIM/{problem}" if bench == "safim-block" else f"HumanEval/{problem}"
            task_id = f"{source}/T{i % k}" if mode == "flow" else source
            tasks.append({"task_id": task_id, "benchmark": bench, "mode": mode, "prompt": _code(rng, 300, 700),
                          "suffix": _code(rng, 150, 400) if mode == "flow" else "",
                          "canonical_solution": _code(rng, 40, 160), "test": "def check(candidate):\n    pass\n",
                          "entry_point": "f", "source_id": source, "header": "",
                          "instruction": ("Write a function that " + _code(rng, 200, 500)) if mode == "command"
                          else ""})
        path = folder / "tasks" / f"{bench}.jsonl"
        write_jsonl(path, tasks)
        task_files.append(path)
        for task in tasks:
            for model, rate in MODELS.items():
                for fmt in formats:
                    raw = _code(rng, 200, 400)
                    if rng.random() < 0.05:
                        raw = "```python\n" + raw + "```\nThis function returns the result.</script><!--"
                    for level in LEVELS:
                        completion = {"raw": raw, "first-line": raw.split("\n", 1)[0] + "\n"}.get(
                            level, raw[: rng.randint(len(raw) // 2, len(raw))])
                        passed = rng.random() < rate * (0.6 if level == "raw" else 1.0)
                        rows_by_model[model].append({
                            "model": model, "variant": "fp32", "benchmark": bench, "format": fmt,
                            "checkpoint": model, "level": level, "task_id": task["task_id"],
                            "source_id": task["source_id"], "mode": mode, "sample": 0, "passed": passed,
                            "status": "passed" if passed else "failed",
                            "failure_status": "passed" if passed else rng.choice(("failed", "error", "timeout")),
                            "n_new_tokens": rng.randint(20, 128),
                            "category": "passed" if passed else rng.choice(CATEGORIES),
                            "empty": False, "comment_only": False, "code_token_ratio": rng.random(),
                            "code_token_ratio_low": rng.random() < 0.1, "nl_marker_count": rng.randint(0, 3),
                            "nl_marker": rng.random() < 0.2, "extra_defs": float(rng.randint(0, 2)),
                            "extra_def": rng.random() < 0.2, "special_token_leak": rng.random() < 0.05,
                            "markdown_fence": raw.startswith("```"), "unwrapped_parses": None,
                            "suffix_copy": rng.random() < 0.1 if mode == "flow" else None,
                            "prefix_reemission": rng.random() < 0.1, "over_generation": rng.random() < 0.5,
                            "length_ratio": rng.random() * 8, "parses": rng.random() < 0.8,
                            "edit_similarity": rng.random(), "indent_match": rng.random() < 0.9,
                            "stop_reason": rng.choice(("max_new_tokens", "stop_token:<|endoftext|>",
                                                       "stop_token:<|im_end|>")),
                            "raw_output": raw, "completion": completion})
    sample_files = []
    for model, rows in rows_by_model.items():
        path = folder / "scores" / model / "samples.jsonl"
        write_jsonl(path, rows)
        sample_files.append(path)
    return sample_files, task_files


def expected_rows(sample_files: list[Path], task_files: list[Path], filters: dict[str, str]
                  ) -> list[tuple[str, str, str, str, str]]:
    """The samples a (non-paired) filter selects, in the page's order, computed from the files."""
    from tuningtax.analysis.explorer import load_study

    study = load_study(sample_files, task_files)
    want = {"pass": True, "fail": False}.get(filters.get("outcome", ""))
    out = []
    for r in study.rows:
        if any(filters.get(k) not in (None, r[k]) for k in ("benchmark", "model", "format", "level")):
            continue
        if want is not None and r["passed"] is not want:
            continue
        out.append((r["benchmark"], r["task_id"], r["model"], r["format"], r["level"]))
    return out


def measure(n_samples: int, folder: Path) -> dict:
    from tuningtax.analysis.explorer import PAGE_SIZE, hash_for, write_explorer

    t = time.perf_counter()
    sample_files, task_files = synthetic_study(folder, n_samples)
    generate_s = time.perf_counter() - t
    out_dir = folder / "explorer"
    t = time.perf_counter()
    written = write_explorer(sample_files, task_files, [], None, out_dir)
    build_s = time.perf_counter() - t
    n = sum(1 for path in sample_files for _ in path.open(encoding="utf-8"))
    sizes = {str(p.relative_to(out_dir)): p.stat().st_size for p in written}
    url = (out_dir / "index.html").resolve().as_uri()
    # the largest data file the first view (the first benchmark in name order) did not load
    last = max(sorted(BENCHMARKS)[1:], key=lambda b: sizes[f"data/{b}.js"])
    model = list(MODELS)[1]
    filters = {"benchmark": last, "outcome": "fail"}
    expected = expected_rows(sample_files, task_files, filters)
    driver = open_browser()
    try:
        driver.get(url)
        ready = wait_for(driver, "window.__ttReady")
        nav = driver.execute_script("var n = performance.getEntriesByType('navigation')[0];"
                                    "return {dom_interactive_ms: n.domInteractive, load_event_end_ms: n.loadEventEnd};")
        first_view = wait_for(driver, "window.__ttRendered")
        filter_ms = change_filter(driver, "benchmark", last)
        filter_again_ms = change_filter(driver, "outcome", "fail")
        count = int(driver.find_element("id", "count").get_attribute("data-count"))
        shown = visible_rows(driver)
        hash_now = driver.execute_script("return location.hash;")
        paired = {"outcome": "paired", "passes": list(MODELS)[0], "fails": model}
        driver.get("about:blank")  # a fresh document: a hash change alone would not reload the page
        driver.get(url + "#" + hash_for(paired))
        paired_open_ms = wait_for(driver, "window.__ttReady")
        errors = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    finally:
        driver.quit()
    return {
        "n_samples": n, "generate_s": round(generate_s, 2), "build_s": round(build_s, 2),
        "bytes": sizes, "bytes_total": sum(sizes.values()),
        "ready_ms": round(ready, 1), "first_view_rows": first_view["rows"], "navigation": nav,
        "filter_ms": round(filter_ms, 1), "filter_again_ms": round(filter_again_ms, 1),
        "paired_open_ms": round(paired_open_ms, 1),
        "filter": filters, "hash": hash_now, "count": count, "expected_count": len(expected),
        "count_ok": count == len(expected) and shown == expected[:PAGE_SIZE] and hash_now == "#" + hash_for(filters),
        "browser_errors": errors, "target_ms": 2000,
        "load_average_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),  # the machine is shared
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuningtax bench explorer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/explorer.json"))
    parser.add_argument("--keep", type=Path, help="build the study and explorer here (kept) instead of a temp folder")
    args = parser.parse_args(argv)
    problem = browser_problem()
    if problem:
        parser.error(f"no headless browser: {problem}")
    if args.keep:
        if args.keep.exists() and any(args.keep.iterdir()):
            parser.error(f"--keep {args.keep}: not empty; name a new or empty folder (nothing there is deleted)")
        args.keep.mkdir(parents=True, exist_ok=True)
        result = measure(args.n_samples, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="tuningtax-explorer-") as tmp:
            result = measure(args.n_samples, Path(tmp))
    data = [v for k, v in result["bytes"].items() if k.startswith("data/")]
    print(f"{result['n_samples']} samples: built in {result['build_s']:.1f} s; index.html "
          f"{result['bytes']['index.html'] / 1e6:.2f} MB, data files {sum(data) / 1e6:.1f} MB "
          f"(largest {max(data) / 1e6:.1f} MB)")
    print(f"ready (first view drawn): {result['ready_ms']:.0f} ms; filter change (new data file): "
          f"{result['filter_ms']:.0f} ms; second change: {result['filter_again_ms']:.0f} ms; paired link opened: "
          f"{result['paired_open_ms']:.0f} ms (target < {result['target_ms']} ms)")
    print(f"load average {result['load_average_1m']} on {result['cpus']} CPUs")
    print(f"count check ({result['hash']}): page {result['count']}, Python {result['expected_count']}: "
          f"{'ok' if result['count_ok'] else 'MISMATCH'}")
    if result["browser_errors"]:
        print("browser errors:", *result["browser_errors"], sep="\n  ")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0 if result["count_ok"] and not result["browser_errors"] else 1
