"""`kerapipe compare RUN_DIR...`: one table of runs, read from their folders.

Each run folder gives a row: its folder name, ``started_at``, status and timings
(run.json), test metrics and epochs (metrics.json), and the spec keys in which the runs
differ, by the key paths ``--set`` writes (``spec.overrides.flatten_key_paths`` of each
run's resolved spec.yaml, validated by the spec side so that runs of different kerapipe
versions compare by their resolved values).

Nothing here trusts a run folder: every file is read by ``kerapipe.run_files`` (a
bounded regular file, UTF-8, JSON objects with the field types kerapipe writes), the
three files must not be symbolic links, spec.yaml is read by the safe YAML loader, and
every text a folder supplies is shown with its control characters escaped
(``printable``), so a folder name or a value cannot send a terminal escape. No
TensorFlow is imported.
"""

from __future__ import annotations

import csv
import glob
import io
import itertools
import json
import math
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional, Sequence

from kerapipe.errors import UsageError
from kerapipe.spec.issues import safe_repr

MAX_RUNS = 100  # run folders in one comparison, globs' matches included
_MAX_SCANNED = 100_000  # a glob's matches looked at for a run.json
MAX_TEST_METRICS = 1000  # in one metrics.json: kerapipe writes one per metric of the pipeline
MAX_DIFFERING_KEYS = 1000  # key paths in which the runs' specs differ
MAX_CELL = 40  # characters of one value in the text table
MAX_NAME = 100  # characters of a run folder's name there (its timestamp ends it)
RUN_FOLDER_HAS = ("a kerapipe run folder, which `kerapipe run` creates, holds run.json and "
                  "spec.yaml, and metrics.json once the run has ended")
FORMATS = ("text", "json", "csv")
_MISSING = object()  # a key path a run's spec does not have


def printable(text: Any, limit: Optional[int] = None, newlines: bool = False) -> str:
    """``text`` with every character that is not printable (ESC, other C0 and C1 controls,
    bidirectional overrides, bytes of a non-UTF-8 file name) written as its Python escape
    (``\\x1b``), cut to ``limit`` characters; ``newlines`` keeps line breaks (a message)."""
    shown = "".join(c if c.isprintable() or (newlines and c == "\n") else repr(c)[1:-1]
                    for c in str(text))
    return shown if limit is None or len(shown) <= limit else shown[:limit - 3] + "..."


@dataclass
class RunSummary:
    """What one run folder says of its run (the fields of the table).

    Args:
        folder: the folder as given on the command line (or matched by a glob).
        name: the folder's name.
        status: run.json's ``status``: ``running``, ``interrupted``, ``failed``, ``finished``.
        started_at, finished_at, reason: run.json's fields (``None`` when it has none).
        test: metrics.json's test metrics, by name (empty when it has none).
        epochs_run, epochs_planned: from metrics.json.
        wall_seconds: run.json's ``seconds.total``, else ``finished_at - started_at``.
        has_spec: the folder holds a spec.yaml (a run that failed before writing it has not).
    """

    folder: str
    name: str
    status: str
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    reason: Optional[str] = None
    test: dict = field(default_factory=dict)
    epochs_run: Optional[int] = None
    epochs_planned: Optional[int] = None
    wall_seconds: Optional[float] = None
    has_spec: bool = True


@dataclass
class Comparison:
    """The table: runs in the order given, the union of their test metrics' names, the key
    paths in which their specs differ and each run's values there (a key path absent
    from a run's values is one its spec lacks), and warnings about folders read."""

    runs: list
    metrics: list
    differing_keys: list
    values: list
    warnings: list = field(default_factory=list)


# --- which folders ----------------------------------------------------------------------

def expand_run_arguments(arguments: Sequence[str]) -> list[str]:
    """The run folders the arguments name, in their order: a path that exists as it is,
    else a glob's matches (sorted); a folder named twice (or by a link) comes once.

    Raises:
        UsageError: a glob matches nothing, or there are more than ``MAX_RUNS`` folders.
    """
    folders: list[str] = []
    seen: set[str] = set()
    for argument in arguments:
        if "\0" in argument:
            raise UsageError(f"{printable(argument, 80)}: a path cannot hold a NUL byte.")
        matches = [argument]
        if not os.path.lexists(argument) and glob.has_magic(argument):
            # What output.dir holds besides run folders (an MLflow `mlruns/`, a tune
            # folder) is skipped: `compare 'runs/*'` means the runs in it.
            scanned = itertools.islice(glob.iglob(argument), _MAX_SCANNED)
            matches = sorted(itertools.islice(
                (m for m in scanned if os.path.isfile(os.path.join(m, "run.json"))),
                MAX_RUNS + 1))
            if not matches:
                raise UsageError(f"no run folder matches {printable(argument, 200)}: the glob "
                                 "matches no folder with a run.json. Check the pattern, or "
                                 "give the run folders themselves.")
        for match in matches:
            real = os.path.realpath(match)
            if real in seen:
                continue
            seen.add(real)
            folders.append(match)
            if len(folders) > MAX_RUNS:
                raise UsageError(f"compare takes at most {MAX_RUNS} run folders; "
                                 f"{printable(argument, 200)} brings more. Give fewer runs "
                                 "or a narrower glob.")
    return folders


# --- reading one run folder -------------------------------------------------------------

def read_run(folder: str) -> tuple[RunSummary, Optional[dict], list[str]]:
    """One run folder's summary, its spec's leaves by key path (``None`` without a
    spec.yaml) and warnings.

    Raises:
        UsageError: the folder is not a run folder, or one of its files is damaged; the
            message shows every name with its control characters escaped.
    """
    try:
        return _read_run(folder)
    except UsageError as err:  # run_files names the raw path: escape it for the terminal
        raise UsageError(printable(str(err), newlines=True)) from err


def _read_run(folder: str) -> tuple[RunSummary, Optional[dict], list[str]]:
    from kerapipe.run_files import read_run_json, read_run_record

    shown = printable(folder, 200)
    if not os.path.isdir(folder):
        what = "it does not exist" if not os.path.lexists(folder) else "it is not a folder"
        raise UsageError(f"{shown} is not a kerapipe run folder: {what}; {RUN_FOLDER_HAS}.")
    if not os.path.lexists(os.path.join(folder, "run.json")):
        raise UsageError(f"{shown} is not a kerapipe run folder: it has no run.json; "
                         f"{RUN_FOLDER_HAS}.")
    record = read_run_record(_own_file(folder, "run.json"))
    summary = RunSummary(folder, os.path.basename(os.path.abspath(folder)), record["status"])
    _read_times(summary, record, os.path.join(folder, "run.json"))
    if os.path.lexists(os.path.join(folder, "metrics.json")):
        path = _own_file(folder, "metrics.json")
        _read_metrics(summary, read_run_json(path), path)
    warnings = []
    if not os.path.lexists(os.path.join(folder, "spec.yaml")):
        summary.has_spec = False
        warnings.append(f"{shown} has no spec.yaml (its run failed before writing it): its "
                        "spec keys are left blank.")
        return summary, None, warnings
    spec, problem = _read_spec(_own_file(folder, "spec.yaml"))
    if problem:
        warnings.append(problem)
    return summary, spec, warnings


def _own_file(folder: str, name: str) -> str:
    """``folder/name``, refused when it is a symbolic link: kerapipe writes regular files in
    a run folder, and a link may lead anywhere."""
    from kerapipe.run_files import damaged

    path = os.path.join(folder, name)
    try:
        is_link = stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        is_link = False  # the reader says what is wrong with it
    if is_link:
        raise damaged(path, "it is a symbolic link; kerapipe writes regular files in a run "
                            "folder, and compare does not follow links out of it")
    return path


def _read_times(summary: RunSummary, record: dict, path: str) -> None:
    from kerapipe.run_files import damaged

    for key in ("started_at", "finished_at", "reason"):
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise damaged(path, f"{key} should be a string. Received: {key}={safe_repr(value, 80)}")
        setattr(summary, key, value)
    seconds = record.get("seconds")
    total = seconds.get("total") if isinstance(seconds, dict) else None
    if _is_number(total) and math.isfinite(total) and total >= 0:
        summary.wall_seconds = float(total)
        return
    start, end = _instant(summary.started_at), _instant(summary.finished_at)
    if start is not None and end is not None:
        try:
            elapsed = (end - start).total_seconds()
        except TypeError:  # one with a time zone, one without
            return
        summary.wall_seconds = elapsed if elapsed >= 0 else None


def _read_metrics(summary: RunSummary, metrics: dict, path: str) -> None:
    from kerapipe.run_files import damaged

    test = metrics.get("test") or {}
    if not isinstance(test, dict) or not all(_is_number(v) or v is None for v in test.values()):
        raise damaged(path, "test should be an object of metric names and numbers")
    if len(test) > MAX_TEST_METRICS:
        raise damaged(path, f"it holds {len(test):,} test metrics; kerapipe writes one per "
                            f"metric of the pipeline (compare reads at most {MAX_TEST_METRICS:,})")
    summary.test = {name: value for name, value in test.items() if value is not None}
    for key in ("epochs_run", "epochs_planned"):
        value = metrics.get(key)
        if value is not None and not (_is_number(value) and isinstance(value, int)
                                      and value >= 0):
            raise damaged(path, f"{key} should be a count of epochs. Received: "
                                f"{key}={safe_repr(value, 80)}")
        setattr(summary, key, value)


def _read_spec(path: str) -> tuple[Optional[dict], Optional[str]]:
    """spec.yaml's leaves by key path, and a warning when it is compared as written.

    Read by the spec side's front door (bounded, the safe loader, validated); a spec that
    validates is compared in its resolved form (``to_plain``), so a default a newer
    kerapipe adds is no difference; one that no longer validates (an older kerapipe's) is
    compared as written, with a warning.

    Raises:
        UsageError: spec.yaml is damaged (too large, not UTF-8, not a YAML mapping).
    """
    from kerapipe.run_files import damaged, max_spec_bytes, read_run_text
    from kerapipe.spec.overrides import flatten_key_paths
    from kerapipe.spec.typed import to_plain
    from kerapipe.spec.validate import validate_text

    result = validate_text(read_run_text(path, max_spec_bytes()), printable(path, 200),
                           resolve=False)  # a stored spec: no extends or ${env:} again
    if result.spec is not None:
        return flatten_key_paths(to_plain(result.spec)), None
    data = result.document.data if result.document is not None else None
    first = result.errors[0] if result.errors else None
    if not isinstance(data, dict):
        reason = first.message if first is not None else "it is empty"
        raise damaged(path, f"it is not a pipeline file ({reason})")
    if all(issue.code == "bad-name" for issue in result.errors):  # an older run name rule
        return flatten_key_paths(data), None
    return flatten_key_paths(data), (
        f"{printable(path, 200)} does not validate with this kerapipe "
        f"({printable(first.format(), 200)}); its keys are compared as written.")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _instant(text: Optional[str]) -> Optional[datetime]:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


# --- the table --------------------------------------------------------------------------

def compare_runs(folders: Sequence[str]) -> Comparison:
    """Read every folder and find the key paths in which their specs differ.

    Each spec is kept only where it differs from the first one's (the reference), so
    memory grows with the differences, not with the runs' sizes.

    Raises:
        UsageError: a folder is not a run folder or is damaged (``read_run``), or the specs
            differ at more than ``MAX_DIFFERING_KEYS`` key paths.
    """
    runs, diffs, warnings = [], [], []
    reference: Optional[dict] = None
    differing: dict[str, None] = {}  # insertion-ordered set
    for folder in folders:
        summary, spec, found = read_run(folder)
        runs.append(summary)
        warnings += found
        if spec is None:
            diffs.append({})
            continue
        if reference is None:
            reference = spec
            diffs.append({})
            continue
        diff = {key: value for key, value in spec.items()
                if key not in reference or not _same(value, reference[key])}
        diff.update({key: _MISSING for key in reference if key not in spec})
        differing.update(dict.fromkeys(diff))
        if len(differing) > MAX_DIFFERING_KEYS:
            raise UsageError(f"these runs' specs differ at more than {MAX_DIFFERING_KEYS:,} "
                             "key paths (at "
                             f"{printable(summary.folder, 200)}), too many for one table. "
                             "Compare fewer runs, or runs of one pipeline.")
        diffs.append(diff)
    reference = reference or {}
    keys = [k for k in reference if k in differing] + [k for k in differing if k not in reference]
    values = []
    for summary, diff in zip(runs, diffs):
        row = {}
        if summary.has_spec:
            for key in keys:
                value = diff.get(key, reference.get(key, _MISSING))
                if value is not _MISSING:
                    row[key] = value
        values.append(row)
    metrics = list(dict.fromkeys(name for run in runs for name in run.test))
    return Comparison(runs, metrics, keys, values, warnings)


def _same(a: Any, b: Any) -> bool:
    return _canonical(a) == _canonical(b)


def _canonical(value: Any) -> tuple:
    """Values equal as the spec means them: ``1`` and ``1.0`` are one number, ``true`` is
    not ``1``, and ``nan`` is itself."""
    if isinstance(value, bool) or value is None:
        return ("constant", value)
    if isinstance(value, float):
        if math.isnan(value):
            return ("number", "nan")
        return ("number", int(value) if value.is_integer() else value)
    if isinstance(value, int):
        return ("number", value)
    if isinstance(value, (str, dict, list)):  # a leaf dict or list is an empty one
        return (type(value).__name__, value if isinstance(value, str) else len(value))
    return ("other", printable(_text(value)))


# --- rendering --------------------------------------------------------------------------

def render(comparison: Comparison, fmt: str) -> str:
    """The comparison as ``text`` (an aligned table), ``json`` (one document) or ``csv``
    (one row per run)."""
    return {"text": render_text, "json": render_json, "csv": render_csv}[fmt](comparison)


def _columns(comparison: Comparison) -> list[str]:
    return [f"test_{name}" for name in comparison.metrics]


def render_text(comparison: Comparison) -> str:
    """The aligned table (numbers right-aligned), then a line per run that did not finish
    (its reason) and a note when there is nothing to compare."""
    header = ["name", "date", "status", *_columns(comparison), "epochs", "wall",
              *comparison.differing_keys]
    right = [False] * 3 + [True] * (len(comparison.metrics) + 2) + [
        all(_is_number(values.get(key)) for values in comparison.values if key in values)
        for key in comparison.differing_keys]
    rows = []
    for run, values in zip(comparison.runs, comparison.values):
        epochs = "" if run.epochs_run is None else str(run.epochs_run) + (
            "" if run.epochs_planned is None else f"/{run.epochs_planned}")
        rows.append([run.name, _date(run.started_at), run.status,
                     *(_number(run.test.get(name)) for name in comparison.metrics),
                     epochs, _duration(run.wall_seconds),
                     *(_value(values.get(key, _MISSING)) for key in comparison.differing_keys)])
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


def render_json(comparison: Comparison) -> str:
    """One JSON document: ``runs`` (each with its ``spec`` values at the differing key
    paths), ``metrics``, ``differing_keys``, ``warnings``. Non-finite numbers are
    ``null``; every non-ASCII character is escaped."""
    runs = []
    for run, values in zip(comparison.runs, comparison.values):
        runs.append({
            "name": run.name, "folder": run.folder, "status": run.status,
            "started_at": run.started_at, "finished_at": run.finished_at,
            "reason": run.reason, "test": {k: _json_value(v) for k, v in run.test.items()},
            "epochs_run": run.epochs_run, "epochs_planned": run.epochs_planned,
            "wall_seconds": _json_value(run.wall_seconds),
            "spec": {k: _json_value(v) for k, v in values.items()} if run.has_spec else None})
    document = {"runs": runs, "metrics": comparison.metrics,
                "differing_keys": comparison.differing_keys, "warnings": comparison.warnings}
    return json.dumps(document, indent=2, ensure_ascii=True, allow_nan=False) + "\n"


def render_csv(comparison: Comparison) -> str:
    """One row per run: ``name, folder, started_at, finished_at, status, test_<metric>...,
    epochs_run, epochs_planned, wall_seconds``, then one column per differing key path.
    Cells are escaped as in the text table, and a text cell that a spreadsheet would take
    for a formula (``=``, ``+``, ``-``, ``@``) starts with ``'``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([_csv_cell(c) for c in [
        "name", "folder", "started_at", "finished_at", "status", *_columns(comparison),
        "epochs_run", "epochs_planned", "wall_seconds", *comparison.differing_keys]])
    for run, values in zip(comparison.runs, comparison.values):
        writer.writerow([_csv_cell(c) for c in [
            run.name, run.folder, run.started_at, run.finished_at, run.status,
            *(run.test.get(name) for name in comparison.metrics), run.epochs_run,
            run.epochs_planned, None if run.wall_seconds is None else round(run.wall_seconds, 3),
            *(values.get(key, _MISSING) for key in comparison.differing_keys)]])
    return out.getvalue()


def _text(value: Any) -> str:
    """``str(value)``, never raising (an int over 4,300 digits refuses ``str``)."""
    try:
        return str(value)
    except ValueError:
        return "<an integer too long to show>"


def _value(value: Any) -> str:
    """A spec value as YAML writes it: ``true``, ``null``, ``0.001``, ``[]``; blank when
    the run's spec lacks the key."""
    if value is _MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        return "{}" if isinstance(value, dict) else "[]"
    return _text(value)


def _number(value: Optional[float]) -> str:
    if value is None:
        return ""
    if not math.isfinite(value) or abs(value) >= 1e6:
        return f"{value:.4g}"
    return f"{value:.4f}"


def _date(text: Optional[str]) -> str:
    """``started_at`` as ``YYYY-mm-dd HH:MM:SS`` in UTC (as kerapipe writes it), or the text
    as it is when it is not a date."""
    instant = _instant(text)
    if instant is None:
        return text or ""
    if instant.tzinfo is not None:
        instant = instant.astimezone(timezone.utc)
    return instant.strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def _json_value(value: Any) -> Any:
    if value is _MISSING:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (dict, list)):
        return {} if isinstance(value, dict) else []
    return _text(value)


def _csv_cell(value: Any) -> str:
    if value is None or value is _MISSING:
        return ""
    if _is_number(value):
        return _text(value) if isinstance(value, int) else repr(value)
    text = printable(_value(value) if not isinstance(value, str) else value)
    if text[:1] in ("=", "+", "-", "@"):
        try:
            float(text)
        except ValueError:
            text = "'" + text
    return text
