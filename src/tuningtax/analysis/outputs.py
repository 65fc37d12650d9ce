"""The files ``tuningtax.analysis.report.tabulate`` writes, known from the configuration alone, so a workflow
declares each one (no folder outputs). Kept apart from report.py so that reading it imports nothing heavy."""

from __future__ import annotations


def output_names(params: dict, variants: list[str], labels: bool) -> tuple[list[str], list[str]]:
    """(tables, plots) that ``tabulate`` writes for this configuration, so a workflow can declare each file:
    every table as NAME.csv and NAME.md, every plot as NAME.png, NAME.svg and NAME.csv (the data drawn).
    ``variants``: the configured variants (the variants table pairs fp32 with each other one)."""
    tables = ["prompt_grid", *(["tax"] if params["pairs"] else []),
              *(["variants"] if "fp32" in variants and len(set(variants)) > 1 else []),
              *(["trajectory"] if params["series"] else []), "three_mode", "behaviour", "taxonomy",
              *(["taxonomy_agreement", "taxonomy_confusion"] if labels else [])]
    plots = [*(["tax"] if params["pairs"] else []), *(["trajectory"] if params["series"] else []), "three_mode",
             "prompt_grid", "failure_shares"]
    return tables, plots
