"""The results tables' file formats."""

from __future__ import annotations

import pandas as pd

from tuningtax.analysis.report import _write_table


def test_markdown_keeps_counts_as_integers(tmp_path):
    frame = pd.DataFrame([{"n_labelled": 72, "agreement": 0.7916, "cohen_kappa": 0.74}])
    _write_table(frame, tmp_path, "agreement", "Agreement")
    markdown = (tmp_path / "agreement.md").read_text()
    row = markdown.splitlines()[-1]
    assert row.split("|")[1].strip() == "72" and "0.79" in row and "0.74" in row
    assert (tmp_path / "agreement.csv").read_text() == "n_labelled,agreement,cohen_kappa\n72,0.7916,0.7400\n"


def test_empty_table_says_so(tmp_path):
    _write_table(pd.DataFrame(columns=["n"]), tmp_path, "empty", "Empty")
    assert (tmp_path / "empty.md").read_text() == "# Empty\n\n_no rows_\n"
