"""Great Expectations validation of pipeline intermediates.

Suites live as JSON in validation/suites/ (reviewed like code, and part of the code version). A string value
"$name" in an expectation's kwargs is replaced by a run parameter (e.g. the expected row count of a
benchmark), and "registry:NAME" by the names a registry holds (REGISTRY_VALUES), so a new level or failure
category is allowed without editing a suite. The summary returned is deterministic (no run ids or
timestamps) so it can be tracked; GX's full result goes to the log.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from tuningtax.errors import UserError

# Data of this package: tuningtax.codeversion counts it into the code of every command that validates.
SUITE_DIR = Path(__file__).resolve().parent / "suites"


class ValidationFailed(UserError):
    exit_code = 1


def load_suite_spec(suite: str | Path) -> dict:
    path = Path(suite)
    if not path.suffix:
        path = SUITE_DIR / f"{suite}.json"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in SUITE_DIR.glob("*.json")))
        raise UserError(f"{path}: no such expectation suite; known suites: {known}")
    return json.loads(path.read_text(encoding="utf-8"))


def _levels() -> list[str]:
    from tuningtax.postprocess import LEVELS

    return list(LEVELS)


def _modes() -> list[str]:
    from tuningtax.tasks.schema import MODES

    return list(MODES)


def _statuses() -> list[str]:
    from tuningtax.sandbox.core import STATUSES

    return list(STATUSES)


def _categories() -> list[str]:
    from tuningtax.taxonomy.rules import CATEGORIES

    return list(CATEGORIES)


def _task_scorer(params: dict):
    from tuningtax.scoring.scorers import SCORERS
    from tuningtax.tasks.registry import get_benchmark

    if "benchmark" not in params:
        raise UserError("this suite reads the benchmark's scorer: pass --param benchmark=NAME")
    return SCORERS[get_benchmark(str(params["benchmark"])).scorer]


REGISTRY_VALUES = {"levels": _levels, "modes": _modes, "execution_statuses": _statuses,
                   "failure_categories": _categories,
                   # what the benchmark's scorer needs in a task's `test` and `entry_point`
                   "task_test_pattern": lambda params: _task_scorer(params).test_pattern,
                   "task_entry_point_pattern": lambda params: _task_scorer(params).entry_point_pattern}
PARAMETRIC = {"task_test_pattern", "task_entry_point_pattern"}


def _substitute(value, params: dict[str, object], suite_name: str):
    if isinstance(value, str) and value.startswith("registry:"):
        key = value.removeprefix("registry:")
        if key not in REGISTRY_VALUES:
            raise UserError(f"suite {suite_name}: {value!r} names no registry; known: "
                            + ", ".join(f"registry:{k}" for k in REGISTRY_VALUES))
        return REGISTRY_VALUES[key](params) if key in PARAMETRIC else REGISTRY_VALUES[key]()
    if isinstance(value, str) and value.startswith("$"):
        key = value[1:]
        if key not in params:
            raise UserError(f"suite {suite_name}: needs parameter {key!r}; pass --param {key}=VALUE")
        return params[key]
    if isinstance(value, list):
        return [_substitute(v, params, suite_name) for v in value]
    return value


def validate_frame(df, suite_spec: dict, params: dict[str, object] | None = None) -> dict:
    """Run the suite on a DataFrame; return {'suite', 'success', 'n_rows', 'expectations': [...]}."""
    import great_expectations as gx  # slow import (about 5 s): only where validation runs
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    params = params or {}
    name = suite_spec["name"]
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = context.data_sources.add_pandas("frame").add_dataframe_asset("frame")
    batch_definition = batch.add_batch_definition_whole_dataframe("whole")
    suite = gx.ExpectationSuite(name=name)
    for item in suite_spec["expectations"]:
        kwargs = {k: _substitute(v, params, name) for k, v in item["kwargs"].items()}
        suite.add_expectation(ExpectationConfiguration(type=item["type"], kwargs=kwargs).to_domain_obj())
    suite = context.suites.add(suite)
    result = gx.ValidationDefinition(data=batch_definition, suite=suite, name=name).run(
        batch_parameters={"dataframe": df})
    expectations = []
    for res in result.results:
        kwargs = {k: v for k, v in res.expectation_config.kwargs.items() if k != "batch_id"}
        entry = {"type": res.expectation_config.type, "kwargs": kwargs, "success": bool(res.success)}
        if not res.success:
            detail = res.result or {}
            entry["unexpected_count"] = detail.get("unexpected_count")
            entry["observed_value"] = detail.get("observed_value")
            sample = detail.get("partial_unexpected_list") or []
            entry["unexpected_sample"] = [None if isinstance(v, float) and math.isnan(v) else v for v in sample[:5]]
            if res.exception_info and res.exception_info.get("raised_exception"):
                entry["exception"] = str(res.exception_info.get("exception_message"))[:300]
        expectations.append(entry)
    return {"suite": name, "success": bool(result.success), "n_rows": int(len(df)), "expectations": expectations}


def describe_failures(summary: dict, where: str) -> str:
    lines = [f"{where}: failed Great Expectations suite {summary['suite']!r}:"]
    for e in summary["expectations"]:
        if not e["success"]:
            column = e["kwargs"].get("column") or e["kwargs"].get("column_list") or ""
            lines.append(f"  - {e['type']}({column}) unexpected={e.get('unexpected_count')} "
                         f"observed={e.get('observed_value')} sample={e.get('unexpected_sample')}"
                         + (f" exception={e['exception']}" if e.get("exception") else ""))
    return "\n".join(lines)
