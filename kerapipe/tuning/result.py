"""What a search found (``TuneResult``) and its table (``format_trials``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TuneResult:
    """What ``tune_pipeline`` found.

    Args:
        tune_dir: the tune folder.
        trials: one row per trial, in the order they started: ``{"trial", "status",
            "values", "objective", "runs"}``.
        best: the best trial's row.
        best_file: best.yaml.
        best_run: the run folder of best.yaml's pipeline.
        direction: ``min`` or ``max``.
    """

    tune_dir: Path
    trials: list
    best: dict
    best_file: Path
    best_run: Path
    direction: str
    objective: str
    keys: list = field(default_factory=list)


def format_trials(result: TuneResult) -> str:
    """The table of trials (values, objective), the best marked, then where best.yaml
    and its run are."""
    headers = ["trial", "status", *result.keys, result.objective]
    lines = [headers]
    for row in result.trials:
        lines.append([row["trial"] + (" *" if row is result.best else ""), row["status"],
                      *(_short(row["values"].get(k)) for k in result.keys),
                      "" if row["objective"] is None else f"{row['objective']:.6g}"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    table = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
                      for line in lines)
    best = result.best
    return (f"{table}\n\nbest: trial {best['trial']}, {result.objective}="
            f"{best['objective']:.6g} ({result.direction}imum)\n"
            f"  values: {', '.join(f'{k}={json.dumps(v)}' for k, v in best['values'].items())}\n"
            f"  pipeline: {result.best_file}\n  run: {result.best_run}")


def _short(value: Any) -> str:
    if value is None:
        return ""
    text = f"{value:.4g}" if isinstance(value, float) else json.dumps(value)
    return text if len(text) <= 30 else text[:27] + "..."
