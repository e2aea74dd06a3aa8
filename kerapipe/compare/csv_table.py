"""``kerapipe compare --format csv``: one row per run, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from typing import Any

from kerapipe.compare.differences import Comparison
from kerapipe.compare.escape import printable, spreadsheet_safe
from kerapipe.compare.values import MISSING, is_number, show_value, text_of


def render_csv(comparison: Comparison) -> str:
    """One row per run: ``name, folder, started_at, finished_at, status, test_<metric>...,
    epochs_run, epochs_planned, wall_seconds``, then one column per differing key path.
    Cells are escaped as in the text table, and a text cell that a spreadsheet would take
    for a formula (``=``, ``+``, ``-``, ``@``) starts with ``'``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([_csv_cell(c) for c in [
        "name", "folder", "started_at", "finished_at", "status", *comparison.metric_columns,
        "epochs_run", "epochs_planned", "wall_seconds", *comparison.differing_keys]])
    for run, values in zip(comparison.runs, comparison.values):
        read = [run.name, run.folder, run.started_at, run.finished_at, run.status,
                *(run.test.get(name) for name in comparison.metrics), run.epochs_run,
                run.epochs_planned,
                None if run.wall_seconds is None else round(run.wall_seconds, 3)]
        writer.writerow([_csv_cell(c) for c in read] + [
            _spec_cell(values.get(key, MISSING)) for key in comparison.differing_keys])
    return out.getvalue()


def _csv_cell(value: Any) -> str:
    """A cell of run.json's or metrics.json's: blank for ``None`` (the run has no such
    value)."""
    if value is None:
        return ""
    if is_number(value):
        return text_of(value) if isinstance(value, int) else repr(value)
    return spreadsheet_safe(printable(value if isinstance(value, str) else show_value(value)))


def _spec_cell(value: Any) -> str:
    """A spec value as the text table shows it (``null``, ``true``, ``{experiment: x}``);
    blank where the run's spec lacks the key path."""
    if value is MISSING:
        return ""
    return _csv_cell(value) if value is not None else "null"
