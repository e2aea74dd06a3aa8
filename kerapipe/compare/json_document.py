"""``kerapipe compare --format json``: one document of the runs and their differences."""

from __future__ import annotations

import json

from kerapipe.compare.differences import Comparison
from kerapipe.compare.values import json_value


def render_json(comparison: Comparison) -> str:
    """One JSON document: ``runs`` (each with its ``spec`` values at the differing key
    paths: a mapping or a list where the runs' specs differ in shape there), ``metrics``,
    ``differing_keys``, ``warnings``. Non-finite numbers are ``null``; every non-ASCII
    character is escaped."""
    runs = []
    for run, values in zip(comparison.runs, comparison.values):
        runs.append({
            "name": run.name, "folder": run.folder, "status": run.status,
            "started_at": run.started_at, "finished_at": run.finished_at,
            "reason": run.reason, "test": {k: json_value(v) for k, v in run.test.items()},
            "epochs_run": run.epochs_run, "epochs_planned": run.epochs_planned,
            "wall_seconds": json_value(run.wall_seconds),
            "spec": {k: json_value(v) for k, v in values.items()} if run.has_spec else None})
    document = {"runs": runs, "metrics": comparison.metrics,
                "differing_keys": comparison.differing_keys, "warnings": comparison.warnings}
    return json.dumps(document, indent=2, ensure_ascii=True, allow_nan=False) + "\n"
