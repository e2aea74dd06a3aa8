"""`kerapipe compare RUN_DIR...`: one table of runs, read from their folders.

Each run folder gives a row: its folder name, ``started_at``, status and timings
(run.json), test metrics and epochs (metrics.json), and the spec keys in which the runs
differ, by the key paths ``--set`` writes (``spec.overrides.format_key_path``), each at
the shallowest key path where the runs' resolved spec.yaml really differ (validated by
the spec side, so that runs of different kerapipe versions compare by their resolved
values).

Nothing here trusts a run folder: every file is read by ``kerapipe.run_files`` (a
bounded regular file, UTF-8, JSON objects with the field types kerapipe writes), the
three files must not be symbolic links, spec.yaml is read by the safe YAML loader, and
every text a folder supplies is shown with its control characters escaped
(``printable``), so a folder name or a value cannot send a terminal escape. No
TensorFlow is imported.

The package: ``folders`` expands the arguments into run folders, ``run_reader`` reads
one, ``differences`` finds the key paths in which their specs differ, ``values`` and
``escape`` say how a value is shown and what a run folder's text may not do, and
``text_table``, ``json_document`` and ``csv_table`` write the three formats; ``render``
here picks one.
"""

from __future__ import annotations

from kerapipe.compare.csv_table import render_csv
from kerapipe.compare.differences import MAX_DIFFERING_KEYS, Comparison, _same, compare_runs
from kerapipe.compare.escape import printable, spreadsheet_safe
from kerapipe.compare.folders import MAX_RUNS, expand_run_arguments
from kerapipe.compare.json_document import render_json
from kerapipe.compare.run_reader import MAX_TEST_METRICS, RUN_FOLDER_HAS, RunSummary, read_run
from kerapipe.compare.text_table import MAX_CELL, MAX_NAME, render_text
from kerapipe.compare.values import MISSING

_RENDERERS = {"text": render_text, "json": render_json, "csv": render_csv}
FORMATS = tuple(_RENDERERS)  # kerapipe.commands.compare offers them (a copy: start-up)


def render(comparison: Comparison, fmt: str) -> str:
    """The comparison as ``text`` (an aligned table), ``json`` (one document) or ``csv``
    (one row per run)."""
    return _RENDERERS[fmt](comparison)


__all__ = ["FORMATS", "MAX_CELL", "MAX_DIFFERING_KEYS", "MAX_NAME", "MAX_RUNS",
           "MAX_TEST_METRICS", "MISSING", "RUN_FOLDER_HAS", "Comparison", "RunSummary",
           "_same", "compare_runs", "expand_run_arguments", "printable", "read_run", "render",
           "render_csv", "render_json", "render_text", "spreadsheet_safe"]
