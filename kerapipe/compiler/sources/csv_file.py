"""The CSV source (``CsvFileSource``): a first pass checks every row in one stream and
keeps only the labels; tf.data parses the features again while training
(``csv_stream.CsvStream``).

The first pass holds each row to what tf.data's ``decode_csv`` reads alike (its quoting,
its numbers, one line a row), so a file that passes cannot fail mid-training; and it
bounds what one line or one header can cost (``MAX_CSV_LINE_CHARS``, ``MAX_CSV_COLUMNS``).
``predict`` reads its CSV input with the same reader (``open_csv``, ``read_header``, the
same row checks) and selects the training feature columns by name (``read_csv_rows``).
An example's id is its line in the file, or its value in ``data.source.csv.id_column``;
its split, with ``data.split.column``, the word in that column.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
from array import array
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from kerapipe.compiler.files import check_regular_file, open_regular_file, resolve, scan_file
from kerapipe.compiler.labels import csv_labels
from kerapipe.compiler.sources import Source
from kerapipe.compiler.sources.csv_stream import CsvStream
from kerapipe.compiler.sources.csv_typed import TypedColumns
from kerapipe.compiler.sources.raw import RawData
from kerapipe.compiler.splits import PART_RULE, part_code
from kerapipe.compiler.values import FLOAT32_MAX, csv_number, show
from kerapipe.errors import DataError, UsageError
from kerapipe.spec.issues import did_you_mean
from kerapipe.spec.model import CsvSource
from kerapipe.spec.typed import looks_numeric

MAX_CSV_COLUMNS = 100_000  # columns of a CSV header
MAX_CSV_LINE_CHARS = 1 << 22  # characters of one CSV line (4 Mi), checked before parsing it


class LastLine:
    """The line ``csv_lines`` gave last, and how many it gave."""

    text = ""
    count = 0


def csv_lines(handle: Any, where: str, last: LastLine) -> Iterator[str]:
    """The lines of a CSV file for ``csv.reader``, each refused beyond MAX_CSV_LINE_CHARS
    before it is parsed (one line must not fill memory); ``last`` keeps the last one."""
    readline, limit = handle.readline, MAX_CSV_LINE_CHARS
    while True:
        text = readline(limit + 1)
        if not text:
            return
        last.count += 1
        if len(text) > limit and text[-1] not in "\r\n":
            raise DataError(f"{where}, line {last.count}: longer than {limit:,} characters, "
                            "the most kerapipe reads as one CSV line. Is it a CSV file? Keep "
                            "the columns you need, or save wide data as .npz.")
        last.text = text
        yield text


@contextlib.contextmanager
def open_csv(path: str, where: str, delimiter: str) -> Iterator[tuple[Any, LastLine]]:
    """A ``csv.reader`` of a CSV file, by the rules every CSV read follows (training's first
    pass and ``predict``): a regular file opened without blocking, UTF-8 (a BOM dropped),
    no line over ``MAX_CSV_LINE_CHARS``; whatever goes wrong while the block reads it is a
    ``DataError`` naming the file (the first line that is not UTF-8, and its bytes).

    Yields:
        The reader, and the ``LastLine`` it reads through (the text of the last line).
    """
    last = LastLine()
    # A cell may be as long as a line (a text column); the csv module's default is 128 KiB
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_LINE_CHARS))
    try:
        with open(open_regular_file(path, where), newline="", encoding="utf-8-sig") as handle:
            yield csv.reader(csv_lines(handle, where, last), delimiter=delimiter), last
    except UnicodeDecodeError as err:
        raise not_utf8(path, where) from err
    except csv.Error as err:
        raise DataError(f"{where}: not a readable CSV file ({err}).") from err
    except OSError as err:
        raise DataError(f"{where}: cannot read the file ({err.strerror or err}).") from err


class CsvFileSource(Source):
    """``source: {csv: {path: data.csv, label: species}}``: a CSV table, streamed."""

    kind = "csv"
    examples_are = "CSV columns"

    def __init__(self, spec, base_dir=".") -> None:
        super().__init__(spec, base_dir)
        self.stream: Optional[CsvStream] = None  # set by load: how tf.data reads the rows
        self.kept_rows: Optional[np.ndarray] = None  # typed features: the rows not dropped

    def load(self) -> RawData:
        raw, self.stream = load_csv(self.options, self.base_dir, self.spec.data.features,
                                    self.spec.data.split.column)
        self.kept_rows = raw.x
        return raw

    def sample_weights(self, raw: RawData) -> Optional[np.ndarray]:
        """The ``sample_weight`` column's weight of each example (``None`` without one)."""
        if self.options.sample_weight is None:
            return None
        return read_sample_weights(self.options, self.base_dir, raw)

    def learn(self, train) -> None:
        """Typed features: the ``mean``/``mode`` fills, from the training rows only."""
        if self.stream is not None and self.stream.typed is not None:
            fills = self.stream.typed.learn_fills(np.searchsorted(self.kept_rows, train.x))
            for other in self.split_sources:  # a split file's missing cells: the same fills
                for column in other.stream.typed.columns:
                    if column.feature.missing in ("mean", "mode"):
                        column.fill = fills.get(column.feature.name)

    def record(self) -> dict:
        typed = self.stream.typed if self.stream is not None else None
        if typed is None:
            return {}
        return {"fill_values": typed.fills(), "dropped_rows": typed.dropped}

    def arrange(self, indices: np.ndarray) -> np.ndarray:
        return np.sort(indices)  # streamed in file order: each split's rows ascending

    def features(self, split):
        return self.stream.features(split.x)

    def examples(self, split, shuffle_files: bool = False, seed: Optional[int] = None):
        from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
        import tensorflow as tf

        labels = tf.data.Dataset.from_tensor_slices(split.y)
        return tf.data.Dataset.zip((self.features(split), labels))

    def read_csv_inputs(self, path, record: dict) -> tuple[np.ndarray, list[str]]:
        """A CSV of inputs: the training feature columns, selected by name (extra columns,
        the label among them, are passed over); each row's id is its value in the id
        column when the pipeline names one and the file has it, else its line number."""
        options = self.options
        if self.spec.data.features is not None:
            return read_typed_rows(path, options, self.spec.data.features, record)
        return read_csv_rows(path, options.delimiter, self.feature_columns(record),
                             options.id_column)

    def feature_columns(self, record: dict) -> Optional[list[str]]:
        """The columns the model was trained on, in its order: as the run recorded them,
        else the pipeline's ``features``, else the training file's header (runs recorded
        before kerapipe kept them); ``None`` when none of these can tell.

        Raises:
            UsageError: run.json holds feature columns that are not a list of distinct
                names, one per feature the run recorded (``data.example_shape``).
        """
        data = record.get("data")
        recorded = data.get("feature_columns") if isinstance(data, dict) else None
        if recorded is not None:
            problem = _recorded_columns_problem(recorded, data.get("example_shape"))
            if problem:
                raise UsageError(f"run.json: data.feature_columns {problem}; the run folder "
                                 "looks damaged. Restore run.json, or train the pipeline "
                                 f"again. Received: feature_columns={show(recorded)}")
            return list(recorded)
        if self.options.features is not None:
            return list(self.options.features)
        try:
            with open_csv(resolve(self.base_dir, self.options.path), self.options.path,
                          self.options.delimiter) as (reader, _):
                header = read_header(reader, self.options.path)
                _, indices = _csv_columns(self.options.path, header, self.options,
                                          self.spec.data.split.column)
        except DataError:
            return None
        return [header[i] for i in indices]


def _recorded_columns_problem(recorded: Any, example_shape: Any) -> Optional[str]:
    """What is wrong with the feature columns a run.json records, or ``None``: they must
    be distinct names (a name twice would feed one column to two inputs), as many as the
    features of the example shape recorded beside them."""
    if not isinstance(recorded, list) or not recorded or not all(
            isinstance(name, str) for name in recorded):
        return "must be a list of column names"
    if len(set(recorded)) != len(recorded):
        seen: set[str] = set()
        twice = next(name for name in recorded if name in seen or seen.add(name))
        return f"names the column {show(twice)} more than once"
    if isinstance(example_shape, list) and len(example_shape) == 1 \
            and isinstance(example_shape[0], int) and example_shape[0] != len(recorded):
        count = f"{len(recorded):,} column{'s' if len(recorded) != 1 else ''}"
        return (f"names {count}, but the model takes {example_shape[0]:,} features "
                "(data.example_shape)")
    return None


def load_csv(source: CsvSource, base: str, features: Any = None,
             split_column: Optional[str] = None) -> tuple[RawData, CsvStream]:
    """Check every row of a CSV in one streaming pass; keep only labels and ids (line
    numbers, or the id column's values), and how tf.data reads the features: numbers, or
    the typed columns of ``features`` (``data.features``: ``csv_typed.TypedColumns``),
    whose ``drop`` policies leave rows out. With ``split_column`` (``data.split.column``),
    each row's split too (``RawData.parts``)."""
    path = resolve(base, source.path)
    where = source.path
    delimiter = source.delimiter
    _check_delimiter(where, delimiter)
    check_regular_file(path, where, "csv.path")
    line_numbers = array("l")
    label_codes = array("l")
    distinct: dict[str, int] = {}
    id_values: list[str] = []
    parts = array("b")  # data.split.column: each example's split (``part_code``)
    kept = array("l")  # the data rows that are examples (typed features may drop some)
    missing_labels = {token.strip() for token in source.missing_values} - {""}
    quoted = False
    typed: Optional[TypedColumns] = None
    with open_csv(path, where, delimiter) as (reader, lines):
        header = read_header(reader, where)
        label_indices, feature_indices = _csv_columns(where, header, source, split_column)
        split_index = _split_index(where, header, split_column)
        label_index = label_indices[0]
        feature_indices = _without_weight_column(where, header, source, feature_indices)
        if features is not None:
            typed = TypedColumns(features, column_positions(where, header),
                                 source.missing_values, where)
            feature_indices = [column.index for column in typed.columns]
        id_index = _id_index(where, header, source)
        for data_row, (line, row) in enumerate(data_rows(reader, where)):
            if '"' in lines.text:
                quoted = True
                problem = _quoting_problem(lines.text, delimiter)
                if problem:
                    raise DataError(
                        f"{where}, line {line}: {problem}. tf.data, which reads the rows "
                        "while training, parses quotes strictly: a value that holds a "
                        "quote is quoted whole, the quote doubled (\"O\"\"Brien\").")
            if typed is None:
                _check_csv_row(where, line, row, header, feature_indices)
            else:
                _check_csv_row(where, line, row, header, [])
                if not typed.check_row(line, row, header):
                    continue
            kept.append(data_row)
            label = (row[label_index].strip() if len(label_indices) == 1 else
                     _label_set(where, line, row, header, label_indices))
            if not label:
                raise DataError(f"{where}, line {line}, column '{header[label_index]}': an "
                                "empty label. Every row needs a label.")
            if label in missing_labels:  # `NA` would otherwise become a class of its own
                raise DataError(f"{where}, line {line}, column '{header[label_index]}': "
                                f"{show(label)}, a missing value (data.source.csv."
                                "missing_values). Every row needs a label: remove the row "
                                "or give it its label.")
            label_codes.append(distinct.setdefault(label, len(distinct)))
            line_numbers.append(line)
            if id_index is not None:
                id_values.append(row[id_index].strip())
            if split_index is not None:
                parts.append(_split_part(where, line, row, header, split_index))
    if not label_codes:
        if typed is not None and typed.dropped:
            raise DataError(f"{where}: every one of its {typed.dropped:,} rows has a missing "
                            "value in a feature whose policy is `missing: drop`, so no "
                            "example is left. Fill those features instead (`missing: mean`, "
                            "`mode` or `{fill: VALUE}`).")
        raise DataError(f"{where}: the file has a header row but no data rows.")

    count = len(label_codes)
    rows = data_row + 1 if typed is not None else count  # the data rows tf.data counts
    lines_array = np.frombuffer(line_numbers, dtype=line_numbers.typecode).astype(np.int64)
    raw = RawData(np.frombuffer(kept, dtype=kept.typecode).astype(np.int64), np.empty(0),
                  where=where, names=("x", header[label_index], "", ""), lines=lines_array,
                  example_shape=(len(feature_indices),) if typed is None else
                  {f.name: f.input_shape for f in features},
                  ids=np.array(id_values, dtype=object) if id_index is not None
                  else lines_array,
                  feature_names=[header[i] for i in feature_indices],
                  parts=np.frombuffer(parts, dtype=np.int8).astype(np.int64)
                  if split_index is not None else None)
    stream = CsvStream(path, delimiter, tuple(feature_indices), rows, len(header), quoted,
                       typed)
    codes = np.frombuffer(label_codes, dtype=label_codes.typecode).astype(np.int64)
    if len(label_indices) == 1:
        raw.y = csv_labels(list(distinct), codes, raw)
    else:  # several 0/1 columns: a multi-hot label set, the columns' names its labels
        sets = np.array([[int(c) for c in key] for key in distinct], dtype=np.int64)
        raw.y = sets[codes] if len(codes) else np.zeros((0, len(label_indices)), np.int64)
        raw.class_names = [header[i] for i in label_indices]
        raw.names = ("x", "+".join(raw.class_names), "", "")
    scan = scan_file(path, where, find_lone_cr=True)
    raw.fingerprint = scan.sha256
    if scan.lone_cr:
        raise DataError(f"{where}: its lines end with a lone carriage return (\\r, classic Mac "
                        "style); tf.data splits lines at \\n only, so the rows would not line "
                        "up. Save the file with \\n (or \\r\\n) line endings.")
    dropped = (f", {typed.dropped:,} row{'s' if typed.dropped != 1 else ''} dropped for "
               "missing values" if typed is not None and typed.dropped else "")
    raw.description = f"csv:{source.path} ({count:,} examples, {len(feature_indices)} " \
                      f"features{dropped}, streamed)"
    return raw, stream


def read_header(reader: Any, where: str) -> list[str]:
    """The header row of a CSV ``reader`` (``open_csv``), its names stripped of spaces.

    Raises:
        DataError: an empty file, a blank first line, a header over several lines.
    """
    header = next(reader, None)
    if header is None:
        raise DataError(f"{where}: the file is empty. A CSV file needs a header row "
                        "naming the columns, then one row per example.")
    if reader.line_num > 1:
        raise DataError(f"{where}, line 1: the header row spans {reader.line_num} "
                        "lines (a quoted column name holds a line break); tf.data "
                        "skips one line as the header, so the rows would not line "
                        "up. Put the header on one line.")
    if not header:
        raise DataError(f"{where}, line 1: the first line is blank; it must be the "
                        "header row naming the columns. Remove the blank line.")
    return [name.strip() for name in header]


def data_rows(reader: Any, where: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of each data row after the header; blank lines are no
    rows, and a quoted value over several lines is refused (rows are streamed by line).

    Raises:
        DataError: naming the line where a value spans lines.
    """
    previous_line = reader.line_num
    for row in reader:
        line = reader.line_num
        if line - previous_line > 1 and row:
            raise DataError(f"{where}, line {previous_line + 1}: a quoted value spans "
                            "several lines; kerapipe streams CSV files line by line. "
                            "Put each example on one line.")
        previous_line = line
        if row:
            yield line, row


def read_csv_rows(path: str | os.PathLike, delimiter: str, columns: Optional[Sequence[str]],
                  id_column: Optional[str] = None) -> tuple[np.ndarray, list[str]]:
    """The feature rows of a CSV of ``predict`` inputs, read by training's rules (UTF-8 with
    or without a BOM, header names stripped, bounded lines and columns, the same number
    checks), and one id per row.

    Args:
        path: the CSV file.
        delimiter: its field delimiter (the training pipeline's).
        columns: the feature columns by name, in the model's order; other columns are
            passed over. ``None`` (a model not trained on a CSV): every column, in file
            order.
        id_column: the column whose value is a row's id, when the file has it. Defaults
            to the row's line number.

    Returns:
        float32 features ``(rows, features)`` and the rows' ids.

    Raises:
        DataError: a column the model needs is missing (named), the first row is no
            header, a value is not a number, or the file cannot be read.
    """
    where = os.fspath(path)
    _check_delimiter(where, delimiter)
    with open_csv(where, where, delimiter) as (reader, _):
        header = read_header(reader, where)
        position = column_positions(where, header)
        if columns is None:
            if all(looks_numeric(name) for name in header if name):
                raise DataError(f"{where}, line 1: the first row looks like data, not a "
                                "header naming the columns. Add a header row.")
            indices = list(range(len(header)))
        else:
            missing = [name for name in columns if name not in position]
            if missing:
                raise _missing_columns(where, header, list(columns), missing, delimiter)
            indices = [position[name] for name in columns]
        id_index = position.get(id_column) if id_column is not None else None
        values = array("f")
        ids: list[str] = []
        for line, row in data_rows(reader, where):
            _check_csv_row(where, line, row, header, indices)
            values.extend(float(row[i]) for i in indices)
            ids.append(row[id_index].strip() if id_index is not None else str(line))
    if not ids:
        raise DataError(f"{where}: the file has a header row but no rows to predict.")
    return np.frombuffer(values, dtype=np.float32).reshape(len(ids), len(indices)), ids


def read_typed_rows(path: str | os.PathLike, options: CsvSource, features: Any,
                    record: dict) -> tuple[dict, list[str]]:
    """The raw columns of a CSV of ``predict`` inputs for typed features, read by
    training's rules (``csv_typed.TypedColumns``): each cell checked against its type,
    missing cells filled with the fills the run learned (``run.json``), rows with a
    missing value of a ``drop`` feature left out (and counted in the message of an input
    left with no row).

    Returns:
        A dict of one array per column, shaped as the model's raw inputs, and the ids of
        the rows read.

    Raises:
        DataError: a column is missing, a cell is not of its type, a missing value where
            the feature refuses it.
        UsageError: run.json's fills are not a mapping of values (a damaged run folder).
    """
    where = os.fspath(path)
    data = record.get("data") if isinstance(record.get("data"), dict) else {}
    fills = data.get("fill_values", {})
    if not isinstance(fills, dict) or not all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in fills.values()):
        raise UsageError("run.json: data.fill_values must map features to the values that "
                         "fill their missing cells; the run folder looks damaged. Restore "
                         f"run.json, or train the pipeline again. Received: {show(fills)}")
    _check_delimiter(where, options.delimiter)
    with open_csv(where, where, options.delimiter) as (reader, _):
        header = read_header(reader, where)
        position = column_positions(where, header)
        missing = [f.name for f in features if f.name not in position]
        if missing:
            raise _missing_columns(where, header, [f.name for f in features], missing,
                                   options.delimiter)
        typed = TypedColumns(features, position, options.missing_values, where)
        for column in typed.columns:
            if column.feature.missing in ("mean", "mode"):
                column.fill = fills.get(column.feature.name)
        id_index = position.get(options.id_column) if options.id_column is not None else None
        rows: list[list[Any]] = []
        ids: list[str] = []
        for line, row in data_rows(reader, where):
            _check_csv_row(where, line, row, header, [])
            values = typed.read_row(line, row)
            if values is not None:
                rows.append(values)
                ids.append(row[id_index].strip() if id_index is not None else str(line))
    if not ids:
        dropped = (f" ({typed.dropped:,} left out for a missing value of a `missing: drop` "
                   "feature)" if typed.dropped else "")
        raise DataError(f"{where}: the file has no rows to predict{dropped}.")
    return typed.arrays(rows), ids


def _missing_columns(where: str, header: list[str], columns: list[str],
                     missing: list[str], delimiter: str = ",") -> DataError:
    """The error for feature columns the model needs that the input does not have."""
    if len(missing) == len(columns) and all(looks_numeric(name) for name in header if name):
        return DataError(f"{where}, line 1: the first row looks like data, not a header "
                         f"naming the columns. Add a header row naming the columns the "
                         f"model was trained on: {_listing(columns)}.")
    # A near name is a likely typo only when the file is the model's table otherwise; in
    # another table (no column of the model's) a near name is chance (sepal_length ->
    # bill_length_mm).
    some_present = len(missing) < len(columns)
    hint = did_you_mean(missing[0], header if some_present and len(header) <= 10_000 else ())
    columns_word = "column" if len(missing) == 1 else "columns"
    return DataError(f"{where}: no {columns_word} {_listing([repr(m) for m in missing])}, "
                     f"which the model was trained on.{hint} It needs the columns "
                     f"{_listing(columns)}, found by name in any order; the file has "
                     f"{_listing(header)}.{_delimiter_hint(header, delimiter)} Rename the "
                     "columns or add the missing ones.")


def _delimiter_hint(header: list[str], delimiter: str) -> str:
    """A hint when a header read as one column holds another usual delimiter: the file is
    likely separated by it, not by the pipeline's ``delimiter``."""
    if len(header) != 1:
        return ""
    for other in (",", ";", "\t", "|"):
        if other != delimiter and other in header[0]:
            return (f" The header is one column holding {other!r}: the file looks separated "
                    f"by {other!r}, but the pipeline reads {delimiter!r} "
                    "(data.source.csv.delimiter).")
    return ""


def _check_delimiter(where: str, delimiter: str) -> None:
    # Python's csv module and tf.io.decode_csv agree on every other ASCII character (a test
    # tries each); these they read differently, or not at all.
    if len(delimiter) != 1 or not delimiter.isascii() or delimiter in '"\r\n':
        raise DataError(f"{where}: data.source.csv.delimiter {show(delimiter)} cannot be "
                        "read by tf.data: a delimiter is one ASCII character other than a "
                        "quote or a line break, e.g. ',', ';' or '\\t'. Fix "
                        "data.source.csv.delimiter.")


def _quoting_problem(line: str, delimiter: str) -> Optional[str]:
    """Why tf.io.decode_csv (RFC 4180 quoting, strictly) cannot read ``line``, or ``None``.

    Python's csv module is lenient where decode_csv fails the whole batch mid-training: a
    quote inside an unquoted value (``ab"c``, `` "ab"``), text after a closing quote.
    """
    line = line.rstrip("\r\n")
    start, end = 0, len(line)
    while True:
        if start < end and line[start] == '"':
            cursor = start + 1
            while True:
                close = line.find('"', cursor)
                if close < 0:
                    return "a quoted value is not closed"
                if line.startswith('"', close + 1):
                    cursor = close + 2  # a doubled quote inside the value
                    continue
                break
            start = close + 1
            if start < end and line[start] != delimiter:
                return ("text follows the closing quote of a value "
                        f"({show(line[start:start + 20])})")
        else:
            stop = line.find(delimiter, start)
            stop = end if stop < 0 else stop
            if '"' in line[start:stop]:
                return (f"a quote inside an unquoted value ({show(line[start:stop])}; "
                        "the quote must open the value)")
            start = stop
        if start >= end:
            return None
        start += 1  # past the delimiter


def not_utf8(path: str, where: str) -> DataError:
    """A DataError naming the first line that is not UTF-8 (a second, binary pass)."""
    with os.fdopen(open_regular_file(path, where), "rb") as handle:
        for number, line in enumerate(iter(lambda: handle.readline(4 * MAX_CSV_LINE_CHARS + 4),
                                           b""), 1):
            try:
                line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                return DataError(f"{where}, line {number}: not UTF-8 text (the bytes "
                                 f"{err.object[err.start:err.end]!r} at byte {err.start + 1} of "
                                 "the line). Save the CSV as UTF-8 (e.g. `iconv -f latin1 -t "
                                 "utf-8`, or a spreadsheet's \"CSV UTF-8\").")
    return DataError(f"{where}: not UTF-8 text. Save the CSV as UTF-8.")


def _check_csv_row(where: str, line: int, row: list[str], header: list[str],
                   feature_indices: list[int]) -> None:
    if len(row) != len(header):
        raise DataError(f"{where}, line {line}: {len(row)} fields, but the header has "
                        f"{len(header)} ({_listing(header)}). Fix the row (a missing or "
                        "extra delimiter, or an unquoted delimiter inside a value).")
    for column in feature_indices:
        value = row[column]
        number = csv_number(value)
        if number is None or not -FLOAT32_MAX <= number <= FLOAT32_MAX:  # NaN too
            problem = "an empty value" if not value.strip() else (
                f"{show(value)}, which is not a number" if number is None
                else f"{show(value)}, which is not a finite number" if not math.isfinite(number)
                else f"{show(value)}, which is beyond the float32 range (±3.4e+38) that "
                     "the model computes in")
            raise DataError(f"{where}, line {line}, column '{header[column]}': "
                            f"{problem}. Feature columns must hold numbers; fix the value "
                            "or leave the column out of data.source.csv.features.")


def _listing(names: Sequence[str], most: int = 20) -> str:
    """``a, b, c``; the first ``most`` names and a count when there are more."""
    if len(names) <= most:
        return ", ".join(names)
    return ", ".join(names[:most]) + f", ... ({len(names):,} columns)"


def column_positions(where: str, header: list[str]) -> dict[str, int]:
    """Each column's position by name.

    Raises:
        DataError: more than ``MAX_CSV_COLUMNS`` columns, a name given twice, or a name
            holding a NUL byte.
    """
    if len(header) > MAX_CSV_COLUMNS:
        raise DataError(f"{where}: the header has {len(header):,} columns, more than the "
                        f"{MAX_CSV_COLUMNS:,} kerapipe reads from a CSV file. Keep the columns "
                        "you need, or save wide data as .npz (data.source.npz).")
    position: dict[str, int] = {}
    duplicates: set[str] = set()
    for index, name in enumerate(header):  # one pass: a quadratic check took seconds
        if "\0" in name:  # Keras saves names as HDF5 strings, which cannot hold one
            raise DataError(f"{where}, line 1: the name of column {index + 1} ({show(name)}) "
                            "holds a NUL byte, which a saved model cannot hold in a name "
                            "(and which is often a sign of a damaged file). Rename the "
                            "column in the header row.")
        if position.setdefault(name, index) != index:
            duplicates.add(name)
    if duplicates:
        shown = ", ".join(show(name) for name in sorted(duplicates)[:10])
        more = f" (and {len(duplicates) - 10:,} more)" if len(duplicates) > 10 else ""
        raise DataError(f"{where}: the header names {shown}{more} more than once; give every "
                        "column its own name.")
    return position


def _id_index(where: str, header: list[str], source: CsvSource) -> Optional[int]:
    """The position of ``data.source.csv.id_column``, when the pipeline names one."""
    if source.id_column is None:
        return None
    if source.id_column not in header:
        raise DataError(f"{where}: no id column '{source.id_column}'."
                        f"{did_you_mean(source.id_column, header)} Columns: "
                        f"{_listing(header)}. Fix data.source.csv.id_column.")
    return header.index(source.id_column)


def _split_index(where: str, header: list[str], column: Optional[str]) -> Optional[int]:
    """The position of ``data.split.column``, when the pipeline names one."""
    if column is None:
        return None
    if column not in header:
        raise DataError(f"{where}: no split column '{column}'.{did_you_mean(column, header)} "
                        f"Columns: {_listing(header)}. Fix data.split.column, or add a "
                        "column saying train, validation or test for each row.")
    return header.index(column)


def _split_part(where: str, line: int, row: list[str], header: list[str], index: int) -> int:
    """The split a row's ``data.split.column`` cell names (``part_code``)."""
    code = part_code(row[index])
    if code is None:
        raise DataError(f"{where}, line {line}, column '{header[index]}': {show(row[index])}; "
                        f"{PART_RULE}.")
    return code


def _label_set(where: str, line: int, row: list[str], header: list[str],
               indices: list[int]) -> str:
    """The 0/1 cells of several label columns as one text (``"011"``), each checked."""
    cells = [row[i].strip() for i in indices]
    for index, cell in zip(indices, cells):
        if cell not in ("0", "1"):
            raise DataError(f"{where}, line {line}, column '{header[index]}': {show(cell)}; "
                            "with several label columns (a multi-label set), each holds 0 or "
                            "1 (1: the example has that label).")
    return "".join(cells)


def _csv_columns(where: str, header: list[str], source: CsvSource,
                 split_column: Optional[str] = None) -> tuple[list[int], list[int]]:
    """The label columns' positions and the feature columns' (in the model's order);
    the split column (``data.split.column``) is never a feature."""
    position = column_positions(where, header)
    listing = _listing(header)
    looks_like_data = all(looks_numeric(name) for name in header if name)
    no_header = (" The first row looks like data: add a header row naming the columns."
                 if looks_like_data else "")
    # did-you-mean compares with every column: bounded, it costs seconds at 100,000
    candidates = header if len(header) <= 10_000 else ()
    labels = source.label_columns
    for label in labels:
        if label not in position:
            raise DataError(f"{where}: no label column '{label}'."
                            f"{did_you_mean(label, candidates)} Columns: {listing}."
                            f"{no_header}{_delimiter_hint(header, source.delimiter)} Set "
                            "data.source.csv.label to one of them.")
    label_indices = [position[label] for label in labels]
    if source.features is None:
        id_index = position.get(source.id_column) if source.id_column is not None else None
        split_index = position.get(split_column) if split_column is not None else None
        features = [i for i in range(len(header))
                    if i not in (*label_indices, id_index, split_index)]
        if not features:
            raise DataError(f"{where}: no feature columns: the header has only the label "
                            f"column '{labels[0]}'. A CSV source needs at least one column "
                            "of numbers beside the label.")
        return label_indices, features
    indices = []
    for name in source.features:
        if name not in position:
            raise DataError(f"{where}: no feature column '{name}'."
                            f"{did_you_mean(name, candidates)} Columns: {listing}. Fix "
                            "data.source.csv.features.")
        if name in labels:
            raise DataError(f"{where}: column '{name}' is the label, so it cannot also be a "
                            "feature. Remove it from data.source.csv.features.")
        indices.append(position[name])
    if not indices:
        raise DataError(f"{where}: no feature columns: data.source.csv.features is empty. "
                        "Name at least one column of numbers.")
    return label_indices, indices


def _without_weight_column(where: str, header: list[str], source: CsvSource,
                           feature_indices: list[int]) -> list[int]:
    """The feature columns less ``sample_weight``'s (never a feature: validate refuses it
    in ``features``; here it leaves the default, every other column). A file without the
    column keeps its features: a split file (``data.split``) needs no weights, and the
    training file's absent column is refused when its weights are read."""
    if source.sample_weight is None or source.sample_weight not in header:
        return feature_indices
    weight = header.index(source.sample_weight)
    kept = [i for i in feature_indices if i != weight]
    if not kept:
        raise DataError(f"{where}: no feature columns: besides the label, the file has only "
                        f"the sample weight column '{source.sample_weight}'.")
    return kept


def read_sample_weights(source: CsvSource, base: str, raw: RawData) -> np.ndarray:
    """The ``sample_weight`` cell of each example of ``raw`` (its kept rows, ``raw.x``),
    as float32: one more pass over the file, reading that column only (the first pass
    keeps the labels; the weights are checked here, by line and column).

    Raises:
        DataError: a cell that is not a finite number from 0, naming its line and column.
    """
    from kerapipe.compiler.weights import check_sample_weights

    where, name = source.path, source.sample_weight
    wanted = np.zeros(int(raw.x.max()) + 1 if len(raw.x) else 0, dtype=bool)
    wanted[raw.x] = True
    values = array("d")
    with open_csv(resolve(base, source.path), where, source.delimiter) as (reader, _):
        header = read_header(reader, where)
        if name not in header:
            raise DataError(f"{where}: no sample weight column '{name}'."
                            f"{did_you_mean(name, header)} Columns: {_listing(header)}. Fix "
                            "data.source.csv.sample_weight.")
        index = header.index(name)
        for data_row, (line, row) in enumerate(data_rows(reader, where)):
            if data_row >= len(wanted):
                break
            if not wanted[data_row]:
                continue
            number = csv_number(row[index].strip())
            if number is None:
                raise DataError(f"{where}, line {line}, column '{name}': {show(row[index])}, "
                                "which is not a number; a sample weight is a finite number "
                                "from 0 (the example does not count).")
            values.append(number)
    return check_sample_weights(np.frombuffer(values, dtype=np.float64), where, name,
                                raw.lines)
