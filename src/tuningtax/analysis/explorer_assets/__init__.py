"""The explorer's page templates (templates/: index.html, report.html, explorer.js, explorer.css).

A package, so that tuningtax.codeversion counts the templates in the code version of the `explorer` command
(which imports it) and in no other command's (a data folder of tuningtax.analysis itself would be in all of
them)."""

from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates"
