"""Reading one run folder: run.json, metrics.json and spec.yaml as ``kerapipe run`` wrote
them, trusting none of them.

Every file is read by ``kerapipe.run_files`` (a bounded regular file, UTF-8, JSON objects
with the field types kerapipe writes), the three files must not be symbolic links, and
spec.yaml is read by the spec side's front door (bounded, the safe loader, validated).
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass, field
from typing import Optional

from kerapipe.compare.escape import printable
from kerapipe.compare.values import instant, is_number
from kerapipe.errors import UsageError
from kerapipe.spec.issues import safe_repr

MAX_TEST_METRICS = 1000  # in one metrics.json: kerapipe writes one per metric of the pipeline
RUN_FOLDER_HAS = ("a kerapipe run folder, which `kerapipe run` creates, holds run.json and "
                  "spec.yaml, and metrics.json once the run has ended")


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


def read_run(folder: str) -> tuple[RunSummary, Optional[dict], list[str]]:
    """One run folder's summary, its spec as plain data (``to_plain``'s form of a resolved
    spec, a mapping with text keys; ``None`` without a spec.yaml) and warnings.

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
    if is_number(total) and math.isfinite(total) and total >= 0:
        summary.wall_seconds = float(total)
        return
    start, end = instant(summary.started_at), instant(summary.finished_at)
    if start is not None and end is not None:
        try:
            elapsed = (end - start).total_seconds()
        except TypeError:  # one with a time zone, one without
            return
        summary.wall_seconds = elapsed if elapsed >= 0 else None


def _read_metrics(summary: RunSummary, metrics: dict, path: str) -> None:
    from kerapipe.run_files import damaged

    test = metrics.get("test") or {}
    if not isinstance(test, dict) or not all(is_number(v) or v is None for v in test.values()):
        raise damaged(path, "test should be an object of metric names and numbers")
    if len(test) > MAX_TEST_METRICS:
        raise damaged(path, f"it holds {len(test):,} test metrics; kerapipe writes one per "
                            f"metric of the pipeline (compare reads at most {MAX_TEST_METRICS:,})")
    summary.test = {name: value for name, value in test.items() if value is not None}
    for key in ("epochs_run", "epochs_planned"):
        value = metrics.get(key)
        if value is not None and not (is_number(value) and isinstance(value, int)
                                      and value >= 0):
            raise damaged(path, f"{key} should be a count of epochs. Received: "
                                f"{key}={safe_repr(value, 80)}")
        setattr(summary, key, value)


def _read_spec(path: str) -> tuple[Optional[dict], Optional[str]]:
    """spec.yaml as plain data, and a warning when it is compared as written.

    A spec that validates is compared in its resolved form (``to_plain``), so a default a
    newer kerapipe adds is no difference; one that no longer validates (an older
    kerapipe's) is compared as written, with a warning.

    Raises:
        UsageError: spec.yaml is damaged (too large, not UTF-8, not a YAML mapping).
    """
    from kerapipe.run_files import damaged, max_spec_bytes, read_run_text
    from kerapipe.spec.typed import to_plain
    from kerapipe.spec.validate import validate_text

    result = validate_text(read_run_text(path, max_spec_bytes()), printable(path, 200),
                           resolve=False)  # a stored spec: no extends or ${env:} again
    if result.spec is not None:
        return to_plain(result.spec), None
    data = result.document.data if result.document is not None else None
    first = result.errors[0] if result.errors else None
    if not isinstance(data, dict):
        reason = first.message if first is not None else "it is empty"
        raise damaged(path, f"it is not a pipeline file ({reason})")
    if all(issue.code == "bad-name" for issue in result.errors):  # an older run name rule
        return data, None
    return data, (
        f"{printable(path, 200)} does not validate with this kerapipe "
        f"({printable(first.format(), 200)}); its keys are compared as written.")

