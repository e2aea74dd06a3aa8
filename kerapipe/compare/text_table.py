"""``kerapipe compare --format text``: the aligned table, every cell escaped and cut."""

from __future__ import annotations

import math
from datetime import timezone
from typing import Optional

from kerapipe.compare.differences import Comparison
from kerapipe.compare.escape import printable
from kerapipe.compare.values import MISSING, instant, is_number, show_value

MAX_CELL = 40  # characters of one value in the text table
MAX_NAME = 100  # characters of a run folder's name there (its timestamp ends it)


def render_text(comparison: Comparison) -> str:
    """The aligned table (numbers right-aligned), then a line per run that did not finish
    (its reason) and a note when there is nothing to compare."""
    header = ["name", "date", "status", *comparison.metric_columns, "epochs", "wall",
              *comparison.differing_keys]
    right = [False] * 3 + [True] * (len(comparison.metrics) + 2) + [
        all(is_number(values.get(key)) for values in comparison.values if key in values)
        for key in comparison.differing_keys]
    rows = []
    for run, values in zip(comparison.runs, comparison.values):
        epochs = "" if run.epochs_run is None else str(run.epochs_run) + (
            "" if run.epochs_planned is None else f"/{run.epochs_planned}")
        rows.append([run.name, _date(run.started_at), run.status,
                     *(_number(run.test.get(name)) for name in comparison.metrics),
                     epochs, _duration(run.wall_seconds),
                     *(show_value(values.get(key, MISSING))
                       for key in comparison.differing_keys)])
    header = [printable(cell, MAX_CELL + 20) for cell in header]
    rows = [[printable(row[0], MAX_NAME)] + [printable(cell, MAX_CELL) for cell in row[1:]]
            for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join((cell.rjust if right[i] else cell.ljust)(widths[i])
                       for i, cell in enumerate(row)).rstrip() for row in [header, *rows]]
    for run in comparison.runs:
        if run.status != "finished" and run.reason:
            lines.append(f"{printable(run.name, 80)}: {printable(run.status, 20)}: "
                         f"{printable(run.reason.splitlines()[0] if run.reason else '', 160)}")
    if len(comparison.runs) == 1:
        lines.append("note: one run, so no spec keys to compare; give two or more.")
    elif not comparison.differing_keys:
        lines.append("note: the runs' specs are the same.")
    return "\n".join(lines) + "\n"


def _number(value: Optional[float]) -> str:
    if value is None:
        return ""
    if not math.isfinite(value) or abs(value) >= 1e6:
        return f"{value:.4g}"
    return f"{value:.4f}"


def _date(text: Optional[str]) -> str:
    """``started_at`` as ``YYYY-mm-dd HH:MM:SS`` in UTC (as kerapipe writes it), or the text
    as it is when it is not a date."""
    when = instant(text)
    if when is None:
        return text or ""
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
