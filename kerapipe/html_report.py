"""The run folder's report: plots, classification_report.csv and a self-contained
report.html, made from the run folder's own files.

``write_run_report`` reads spec.yaml, run.json, history.csv, metrics.json,
model_summary.txt and predictions.csv (through ``kerapipe.run_files``: bounded regular
files, a damaged one a ``UsageError``), draws ``kerapipe.plots`` and writes through the
``RunFolder``. The run calls it once it has finished; ``kerapipe report RUN_DIR`` calls it
again on the files alone, without TensorFlow.

report.html holds everything it shows: the images are ``data:`` URIs, the CSS is inline,
there is no script and no URL, and a Content-Security-Policy forbids fetching anything
but its own ``data:`` images. Every text from the run (class names, the spec, paths) is
HTML-escaped.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from kerapipe.errors import UsageError
from kerapipe.run_files import damaged, max_spec_bytes, read_run_json, read_run_text

_HISTORY_BYTES = 64 << 20
_SUMMARY_BYTES = 4 << 20
_SHOWN_EXAMPLES = 20  # most-confused examples (largest residuals) listed in the page
_SHOWN_PAIRS = 10
_MATRIX_CLASSES = 1000  # a confusion matrix is drawn up to this many classes
_MAX_CLASSES = 100_000  # a run.json that names no class count: the largest index read
_INDEX = re.compile(r"[0-9]{1,9}")
_FILE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # an output's name in a file name


@dataclass
class Head:
    """One output's test predictions, as predictions.csv holds them.

    Attributes:
        name: the output's name; ``""`` for a model of one output.
        kind: ``classes`` (binary too) or ``regression``.
        class_names: a classifier's class names, by index.
        true, predicted: class indices, or values.
        confidence: a classifier's probability of its predicted class.
        inputs: where each example came from (predictions.csv's ``input``).
    """

    name: str
    kind: str
    class_names: list
    true: np.ndarray
    predicted: np.ndarray
    confidence: Optional[np.ndarray] = None
    inputs: list = field(default_factory=list)

    def suffix(self, index: int) -> str:
        """What the output's files add to their names: ``""`` for the one output,
        ``_<name>`` (``_output<i>`` for a name that is no safe file name part)."""
        if not self.name:
            return ""
        return f"_{self.name}" if _FILE_PART.fullmatch(self.name) else f"_output{index + 1}"


@dataclass
class RunReport:
    """What the report shows, read from one run folder's files."""

    path: Path
    record: dict
    spec_text: str
    history: dict
    metrics: dict
    model_summary: Optional[str]
    heads: list
    notes: list = field(default_factory=list)  # what the report leaves out, and why


# --- reading the run folder ------------------------------------------------------------

def read_run_report(folder) -> RunReport:
    """The report's facts from a run folder's files (``folder``: its ``RunFolder``).

    Raises:
        UsageError: a file the report reads is damaged.
    """
    from kerapipe.run_files import read_run_record

    path = Path(folder.path)
    for name in ("run.json", "spec.yaml", "history.csv", "metrics.json", "predictions.csv",
                 "model_summary.txt"):
        if os.path.islink(path / name):  # its text would be shown in the page
            raise damaged(path / name, "it is a symbolic link; the report reads no file "
                                       "from outside the run folder")
    record = read_run_record(path / "run.json")  # as it is now: the run's own, finished
    notes: list[str] = []
    spec_text = read_run_text(path / "spec.yaml", max_spec_bytes()) \
        if os.path.lexists(path / "spec.yaml") else ""
    history = _read_history(path / "history.csv") if os.path.lexists(path / "history.csv") \
        else {}
    if not history:
        notes.append("no learning curves: the run logged no epoch (history.csv is empty "
                     "or missing)")
    metrics = {}
    if os.path.lexists(path / "metrics.json"):
        metrics = read_run_json(path / "metrics.json")
    test = metrics.get("test") if isinstance(metrics.get("test"), dict) else {}
    if not test:
        notes.append("no test metrics: the run has no test split")
    summary = None
    from kerapipe.run_folder import MODEL_SUMMARY

    if os.path.lexists(path / MODEL_SUMMARY):
        summary = read_run_text(path / MODEL_SUMMARY, _SUMMARY_BYTES)
    else:
        notes.append(f"no model summary: the run folder has no {MODEL_SUMMARY}")
    heads: list[Head] = []
    if os.path.lexists(path / "predictions.csv"):
        heads = _read_predictions(path / "predictions.csv", record.get("data") or {}, notes,
                                  _label_separator(spec_text))
    elif os.path.lexists(path / "predictions.npz"):
        notes.append("no confusion matrix, residuals or classification report: raw labels' "
                     "predictions (predictions.npz) have no classes or values to count")
    else:
        notes.append("no confusion matrix, residuals or classification report: the run "
                     "wrote no predictions.csv (no test split, or output.predictions is "
                     "not argmax)")
    return RunReport(path, record, spec_text, history, test, summary, heads, notes)


def _number(path, value: str, where: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise damaged(path, f"{where} should be a number. Received: {value[:40]!r}") from None


def _read_history(path: Path) -> dict:
    rows = list(csv.reader(io.StringIO(read_run_text(path, _HISTORY_BYTES))))
    if not rows:
        return {}
    header = rows[0]
    if not header or header[0] != "epoch" or len(set(header)) != len(header):
        raise damaged(path, "its header should be `epoch` and one column per logged value")
    history: dict = {name: [] for name in header[1:]}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise damaged(path, f"line {line} has {len(row)} cells, the header {len(header)}")
        for name, value in zip(header[1:], row[1:]):
            history[name].append(_number(path, value, f"line {line}, {name}"))
    return history


def _label_separator(spec_text: str) -> str:
    """``data.labels.separator`` of the resolved spec (multi_label cells), ``|`` by
    default."""
    from kerapipe.spec.yaml_loader import LoadProblem, load_document

    try:
        document = load_document(spec_text, "spec.yaml").data if spec_text else None
    except LoadProblem:
        return "|"
    data = document.get("data") if isinstance(document, dict) else None
    labels = data.get("labels") if isinstance(data, dict) else None
    separator = labels.get("separator") if isinstance(labels, dict) else None
    return separator if isinstance(separator, str) and separator else "|"


def _read_predictions(path: Path, data: dict, notes: list, separator: str = "|"
                      ) -> list[Head]:
    """Each output's columns of predictions.csv (streamed: it may be large)."""
    from kerapipe.safe_io import NotRegularFile, open_regular

    try:
        fd = open_regular(path)
    except (OSError, NotRegularFile) as err:
        raise damaged(path, f"cannot read it ({err.strerror or err})") from err
    with os.fdopen(fd, encoding="utf-8", newline="") as handle:
        try:
            reader = csv.reader(handle)
            header = next(reader, [])
            columns: dict[str, list] = {name: [] for name in header}
            for line, row in enumerate(reader, start=2):
                if len(row) != len(header):
                    raise damaged(path, f"line {line} has {len(row)} cells, the header "
                                        f"{len(header)}")
                for name, cell in zip(header, row):
                    columns[name].append(cell)
        except (csv.Error, UnicodeDecodeError) as err:
            raise damaged(path, f"it is not a CSV file of UTF-8 text ({err})") from err
    inputs = columns.get("input", [])
    outputs = data.get("outputs") if isinstance(data.get("outputs"), dict) else None
    if outputs:
        heads = []
        for name, facts in outputs.items():
            facts = facts if isinstance(facts, dict) else {}
            head = _head(path, columns, f"{name}_", str(name), facts.get("class_names"),
                         facts.get("num_classes"), inputs, notes)
            if head is not None:
                heads.append(head)
        return heads
    if "scores" in columns:
        return [_label_sets(path, columns, data.get("class_names"), separator, inputs)]
    head = _head(path, columns, "", "", data.get("class_names"), data.get("num_classes"),
                 inputs, notes)
    return [] if head is None else [head]


def _label_sets(path, columns: dict, class_names, separator: str, inputs) -> Head:
    """A multi-label model's head: the true and predicted label sets as multi-hot rows."""
    names = [str(n) for n in class_names] if isinstance(class_names, list) else []
    index = {name: i for i, name in enumerate(names)}
    sets = []
    for column in ("true", "predicted"):
        if column not in columns:
            raise damaged(path, f"a multi-label predictions.csv has a {column} column")
        hot = np.zeros((len(columns[column]), len(names)), dtype=bool)
        for row, cell in enumerate(columns[column]):
            for label in cell.split(separator) if cell else []:
                if label not in index:
                    raise damaged(path, f"line {row + 2}, {column}: {label[:40]!r} is none of "
                                        "the run's labels (run.json's data.class_names)")
                hot[row, index[label]] = True
        sets.append(hot)
    return Head("", "multi_label", names, sets[0], sets[1], inputs=inputs)


def _head(path, columns: dict, prefix: str, name: str, class_names, num_classes, inputs,
          notes: list) -> Optional[Head]:
    shown = f"output '{name}'" if name else "the model"
    predicted, true = columns.get(f"{prefix}predicted"), columns.get(f"{prefix}true")
    if predicted is None or true is None:
        notes.append(f"no confusion matrix or residuals for {shown}: predictions.csv has no "
                     f"{prefix}predicted and {prefix}true columns")
        return None
    if f"{prefix}scores" in columns:
        notes.append(f"no confusion matrix or classification report for {shown}: multi-label "
                     "predictions are sets of labels (see predictions.csv)")
        return None
    if f"{prefix}confidence" not in columns:  # regression: values
        return Head(name, "regression", [],
                    np.array([_number(path, v, f"{prefix}true") for v in true]),
                    np.array([_number(path, v, f"{prefix}predicted") for v in predicted]),
                    inputs=inputs)
    names = [str(n) for n in class_names] if isinstance(class_names, list) else []
    stated = _class_count(names, num_classes)
    count = stated or _MAX_CLASSES
    indices = []
    for column, cells in ((f"{prefix}true", true), (f"{prefix}predicted", predicted)):
        values = []
        for cell in cells:
            if not _INDEX.fullmatch(cell) or int(cell) >= count:
                whose = "" if not stated else (
                    f" (run.json's data: {count} classes"
                    + (f", {_shown_names(names)})" if names else ")"))
                raise damaged(path, f"{column} should be a class index from 0 to {count - 1}"
                                    f"{whose}. Received: {cell[:40]!r}")
            values.append(int(cell))
        indices.append(np.array(values, dtype=np.int64))
    if not stated:  # run.json does not say: the classes the predictions name
        count = max(2, 1 + max((int(a.max()) for a in indices if len(a)), default=1))
    names = names + [str(i) for i in range(len(names), count)]
    confidence = np.array([_number(path, v, f"{prefix}confidence")
                           for v in columns[f"{prefix}confidence"]])
    return Head(name, "classes", names, indices[0], indices[1], confidence, inputs)


def _class_count(names: list, num_classes) -> Optional[int]:
    """How many classes a run's classifier output has, as its run.json says: the larger
    of ``num_classes`` (the count the output layer was checked against) and the number
    of ``class_names`` (a binary run may name one class only), at least two (one sigmoid
    unit stands for two classes); ``None`` when run.json says neither. Never the classes
    a split happens to hold: a test split without examples of a class still has it."""
    stated = num_classes if isinstance(num_classes, int) and not isinstance(
        num_classes, bool) and num_classes > 0 else 0
    count = max(len(names), stated)
    return max(count, 2) if count else None


def _shown_names(names: list) -> str:
    shown = ", ".join(repr(name[:40]) for name in names[:4])
    return shown + (", ..." if len(names) > 4 else "")


# --- writing the report ----------------------------------------------------------------

def write_run_report(folder) -> list[Path]:
    """The plots, classification report(s) and report.html of a finished run, from its
    files; returns the paths written.

    Raises:
        UsageError: a file the report reads is damaged.
        OutputError: the folder cannot be written.
    """
    from kerapipe import plots
    from kerapipe.report import (classification_report, classification_report_csv,
                                 confusion_matrix, counts_of_classes, counts_of_label_sets)

    report = read_run_report(folder)
    _refuse_callback_files_in_the_way(report.spec_text)
    written, images, tables = [], [], []
    if report.history:
        png = plots.learning_curves_png(report.history)
        written.append(folder.write_plot("learning_curves.png", png))
        images.append(("learning curves", png))
    for index, head in enumerate(report.heads):
        suffix, title = head.suffix(index), head.name
        if head.kind == "regression":
            png = plots.residuals_png(head.true, head.predicted, title)
            written.append(folder.write_plot(f"residuals{suffix}.png", png))
            images.append((f"residuals {title}".strip(), png))
            continue
        if head.kind == "multi_label":
            rows = classification_report(*counts_of_label_sets(head.true, head.predicted),
                                         head.class_names)
            written.append(folder.write_report_file("classification_report.csv",
                                                    classification_report_csv(rows)))
            tables.append(("", rows))
            report.notes.append("no confusion matrix: multi-label predictions are sets of "
                                "labels (the classification report counts each label)")
            continue
        classes = len(head.class_names)
        if classes <= _MATRIX_CLASSES:
            png = plots.confusion_matrix_png(confusion_matrix(head.true, head.predicted,
                                                              classes), head.class_names, title)
            written.append(folder.write_plot(f"confusion_matrix{suffix}.png", png))
            images.append((f"confusion matrix {title}".strip(), png))
        else:
            report.notes.append(f"no confusion matrix{' of ' + title if title else ''}: "
                                f"{classes:,} classes are more than a plot can show "
                                f"({_MATRIX_CLASSES:,} at most)")
        rows = classification_report(*counts_of_classes(head.true, head.predicted, classes),
                                     head.class_names)
        written.append(folder.write_report_file(f"classification_report{suffix}.csv",
                                                classification_report_csv(rows)))
        tables.append((head.name, rows))
    written.append(folder.write_report_file("report.html", render_page(report, images,
                                                                       tables)))
    return written


# --- the page --------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:72rem;padding:0 1rem;color:#1d1d1f;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f7f7f9;border:1px solid #e3e3e8;padding:.75rem;overflow-x:auto;
font-size:.8rem}img{max-width:100%;height:auto;border:1px solid #eee}
.meta{color:#555}.notes li{color:#7a4b00}figure{margin:1rem 0}
"""
_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


class CallbackFileInTheWay(UsageError):
    """The run's own callback wrote where the report goes: the report is not written."""


def _refuse_callback_files_in_the_way(spec_text: str) -> None:
    """A callback of the run that wrote where the report goes (``REPORT_NAMES``; a
    ``callback-path-shared`` warning at validation) keeps its files: no report then."""
    from kerapipe.spec.callbacks import report_names_claimed
    from kerapipe.spec.validate import validate_text

    spec = validate_text(spec_text, "spec.yaml", resolve=False).spec if spec_text else None
    claimed = report_names_claimed(spec) if spec is not None else []
    if claimed:
        from kerapipe.spec.overrides import format_key_path

        at, name, value = claimed[0]
        raise CallbackFileInTheWay(f"{format_key_path(at)}: {name} wrote {value!r} where the report "
                         "goes; the report is not written, so as not to overwrite it (give "
                         "the callback another path next time).")


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _cell(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"<td>{_e(value)}</td>"
    return f'<td class="n">{_e(f"{value:.4f}" if isinstance(value, float) else value)}</td>'


def _table(header, rows, table_id: str = "") -> str:
    ident = f' id="{_e(table_id)}"' if table_id else ""
    head = "".join(f"<th>{_e(name)}</th>" for name in header or ())
    head = f"<thead><tr>{head}</tr></thead>" if head else ""
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table{ident}>{head}<tbody>{body}</tbody></table>"


def render_page(report: RunReport, images: list, tables: list) -> str:
    """report.html: one page, everything inline (see the module's docstring).

    Args:
        report: the run's facts (``read_run_report``).
        images: ``(caption, PNG bytes)`` of each plot.
        tables: ``(output name, classification_report rows)`` of each classifier output.
    """
    record, data = report.record, report.record.get("data") or {}
    title = report.path.name
    parts = [f"<h1>{_e(title)}</h1>",
             f'<p class="meta">status {_e(record.get("status"))}; started '
             f'{_e(record.get("started_at"))}, finished {_e(record.get("finished_at"))}; '
             f'kerapipe {_e(record.get("kerapipe"))}, Keras {_e(record.get("keras"))}, '
             f'TensorFlow {_e(record.get("tensorflow"))}</p>']
    parts.append("<h2>Test metrics</h2>")
    if report.metrics:
        parts.append(_table(("metric", "value"), sorted(report.metrics.items()),
                            "test-metrics"))
    else:
        parts.append('<p id="test-metrics">none: the run has no test split.</p>')
    if images:
        parts.append("<h2>Plots</h2>")
        for caption, png in images:
            uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            parts.append(f'<figure><img src="{uri}" alt="{_e(caption)}">'
                         f"<figcaption>{_e(caption)}</figcaption></figure>")
    for name, rows in tables:
        parts.append(f"<h2>Classification report{_e(' (' + name + ')' if name else '')}</h2>")
        parts.append(_table(("class", "precision", "recall", "f1", "support"), rows,
                            f"classification-report{'-' + name if name else ''}"))
    for head in report.heads:
        parts += _confused(head)
    if report.notes:
        parts.append('<h2>Not in this report</h2><ul class="notes">'
                     + "".join(f"<li>{_e(note)}</li>" for note in report.notes) + "</ul>")
    parts += _data_summary(data, record)
    if report.history:
        names = list(report.history)
        epochs = len(report.history[names[0]])
        parts.append("<h2>History</h2>")
        parts.append(_table(["epoch", *names], [[epoch + 1, *(report.history[n][epoch]
                                                              for n in names)]
                                                for epoch in range(epochs)], "history"))
    parts.append("<h2>Model</h2>")
    parts.append(f"<pre>{_e(report.model_summary)}</pre>" if report.model_summary is not None
                 else "<p>no model summary recorded.</p>")
    parts.append("<h2>Pipeline (spec.yaml, as it ran)</h2>")
    parts.append(f"<pre>{_e(report.spec_text)}</pre>")
    body = "\n".join(parts)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)} - kerapipe report</title><style>{_CSS}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


def _data_summary(data: dict, record: dict) -> list[str]:
    parts = ["<h2>Data</h2>", f"<p>{_e(data.get('description', ''))}</p>"]
    splits = data.get("splits") if isinstance(data.get("splits"), dict) else {}
    if splits:
        parts.append(_table(("split", "examples"), list(splits.items()), "splits"))
    facts = [("pipeline file", record.get("pipeline_file")),
             ("command", " ".join(map(str, record.get("command") or [])) or None),
             ("seed", record.get("seed")), ("fingerprint", data.get("fingerprint")),
             ("example shape", json.dumps(data.get("example_shape"))
              if data.get("example_shape") is not None else None),
             ("feature columns", ", ".join(map(str, data.get("feature_columns") or []))
              or None),
             ("classes", ", ".join(map(str, data.get("class_names") or [])) or None)]
    parts.append(_table(None, [(k, v) for k, v in facts if v is not None], "data-facts"))
    return parts


def _confused(head: Head) -> list[str]:
    """The most-confused examples (most confident mistakes) or the largest residuals."""
    label = f" ({head.name})" if head.name else ""
    source = (lambda i: head.inputs[i] if i < len(head.inputs) else "")
    if head.kind == "regression":
        residual = head.predicted - head.true
        order = np.argsort(-np.abs(np.nan_to_num(residual, nan=np.inf)),
                           kind="stable")[:_SHOWN_EXAMPLES]
        rows = [(int(i), source(i), float(head.true[i]), float(head.predicted[i]),
                 float(residual[i])) for i in order]
        return [f"<h2>Largest residuals{_e(label)}</h2>",
                _table(("index", "input", "true", "predicted", "residual"), rows,
                       f"largest-residuals{'-' + head.name if head.name else ''}")]
    if head.kind == "multi_label":
        return _confused_label_sets(head, source)
    wrong = np.flatnonzero(head.true != head.predicted)
    parts = [f"<h2>Most confused{_e(label)}</h2>"]
    if not len(wrong):
        return parts + ["<p>no test example is misclassified.</p>"]
    pairs: dict = {}
    for i in wrong:
        key = (int(head.true[i]), int(head.predicted[i]))
        pairs[key] = pairs.get(key, 0) + 1
    ranked = sorted(pairs.items(), key=lambda item: (-item[1], item[0]))[:_SHOWN_PAIRS]
    names = head.class_names
    parts.append(_table(("true", "predicted as", "examples"),
                        [(names[t], names[p], n) for (t, p), n in ranked]))
    order = wrong[np.argsort(-head.confidence[wrong], kind="stable")][:_SHOWN_EXAMPLES]
    rows = [(int(i), source(i), names[head.true[i]], names[head.predicted[i]],
             float(head.confidence[i])) for i in order]
    parts.append(f"<p>the {len(rows)} most confident mistakes of {len(wrong)}:</p>")
    parts.append(_table(("index", "input (source row or file)", "true", "predicted",
                         "confidence"), rows,
                        f"most-confused{'-' + head.name if head.name else ''}"))
    return parts


def _confused_label_sets(head: Head, source) -> list[str]:
    """Multi-label: the examples with the most labels wrong (missed or added)."""
    wrong = (head.true != head.predicted).sum(axis=1)
    order = [i for i in np.argsort(-wrong, kind="stable") if wrong[i]][:_SHOWN_EXAMPLES]
    parts = ["<h2>Most confused</h2>"]
    if not order:
        return parts + ["<p>every test example's label set is right.</p>"]

    def shown(row) -> str:
        return ", ".join(head.class_names[j] for j in np.flatnonzero(row)) or "(none)"

    rows = [(int(i), source(i), shown(head.true[i]), shown(head.predicted[i]), int(wrong[i]))
            for i in order]
    return parts + [f"<p>the {len(rows)} examples with the most labels wrong, of "
                    f"{int((wrong > 0).sum())} with any:</p>",
                    _table(("index", "input (source row or file)", "true", "predicted",
                            "labels wrong"), rows, "most-confused")]
