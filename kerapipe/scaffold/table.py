"""A CSV file: a bounded sample of its rows (read by the CSV source's own reader: UTF-8, a
BOM dropped, bounded lines), the label column picked, each other column's type guessed."""

from __future__ import annotations

import os
from collections import Counter
from typing import Optional

from kerapipe.errors import DataError, UsageError
from kerapipe.scaffold.facts import (MAX_STRING_CATEGORIES, ColumnGuess, Inspection, LabelGuess,
                                     number, open_data_file, shown, whole_number)
from kerapipe.scaffold.labels import label_from_texts

MAX_SAMPLE_ROWS = 10_000  # CSV rows read to guess types and classes
MAX_SAMPLE_CELLS = 2_000_000  # cells held from those rows (a wide table reads fewer rows)
MAX_SAMPLE_CHARS = 1 << 24  # characters of CSV cells held (16 Mi)
CATEGORY_VALUES = 10  # whole-number feature columns with at most this many values: categories
LABEL_NAMES = ("label", "labels", "target", "targets", "class", "classes", "y", "species",
               "outcome", "category", "diagnosis", "survived", "churn", "response")
ID_NAMES = ("id", "index", "row", "row_id", "uuid", "key")
MISSING_TOKENS = ("", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "?")
INT32 = 2 ** 31 - 1  # FeatureSpace's integer features take int32


def _sniff_delimiter(path: str) -> str:
    """The header row's separator: a tab for a .tsv file whose header has one, else the
    most frequent of , ; tab | (a comma when none is there)."""
    try:
        with open(open_data_file(path), "rb") as handle:
            first = handle.read(1 << 16).split(b"\n", 1)[0]
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err.strerror or err}).") from err
    counts = {d: first.count(d.encode()) for d in (",", ";", "\t", "|")}
    if path.lower().endswith((".tsv", ".tab")) and counts["\t"]:
        return "\t"
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def inspect_csv(path: str, label: Optional[str]) -> Inspection:
    from kerapipe.compiler.sources.csv_file import data_rows, open_csv, read_header
    from kerapipe.spec.issues import did_you_mean

    delimiter = _sniff_delimiter(path)
    rows: list[list[str]] = []
    complete = True
    with open_csv(path, path, delimiter) as (reader, _):
        header = read_header(reader, path)
        _check_header(path, header)
        most_rows = max(50, min(MAX_SAMPLE_ROWS, MAX_SAMPLE_CELLS // len(header)))
        chars = 0
        for line, row in data_rows(reader, path):
            if len(row) != len(header):
                raise DataError(f"{path}, line {line}: {len(row)} fields, but the header "
                                f"names {len(header)} columns. Every row needs one value per "
                                "column.")
            if len(rows) >= most_rows or chars > MAX_SAMPLE_CHARS:
                complete = False
                break
            row = [cell.strip(" \t") for cell in row]
            chars += sum(len(cell) for cell in row)
            rows.append(row)
    if not rows:
        raise DataError(f"{path}: the file has a header row but no data rows.")
    if label is None:
        named = [n for n in header if n.lower() in LABEL_NAMES]
        label = named[0] if named else header[-1]
        picked = (f"the column named '{shown(label)}', a usual name for one" if named
                  else f"the last column, '{shown(label)}' (no column has a usual label "
                  f"name such as {', '.join(LABEL_NAMES[:4])})")
    elif label not in header:
        raise UsageError(f"--label {label!r}: the file has no such column."
                         f"{did_you_mean(label, header)} Its columns: "
                         f"{', '.join(shown(n, 30) for n in header[:20])}"
                         f"{', ...' if len(header) > 20 else ''}.")
    else:
        picked = f"the column '{shown(label)}', as --label asked"
    columns = list(zip(*rows))
    tokens = sorted({cell for column in columns for cell in column if cell in MISSING_TOKENS},
                    key=MISSING_TOKENS.index)
    label_cells = [c for c in columns[header.index(label)] if c not in tokens]
    if not label_cells:
        raise DataError(f"{path}: the label column '{shown(label)}' is empty in the "
                        f"{len(rows):,} rows read. Choose the label with --label COLUMN.")
    guess = label_from_texts(label, label_cells, path)
    guess = LabelGuess(**{**guess.__dict__, "picked": picked})
    found = []
    for name, cells in zip(header, columns):
        if name == label:
            found.append(ColumnGuess(name, "label"))
            continue
        missing = sum(c in tokens for c in cells)
        found.append(_column_guess(name, [c for c in cells if c not in tokens], missing, found))
    found = _skip_constants(found)
    if not [c for c in found if c.type not in ("label", "id", "skip")]:
        others = [c for c in found if c.type != "label"]
        left_out = ("; the other columns are left out: " + ", ".join(
            f"'{shown(c.name, 30)}' ({c.reason}{': an id' if c.type == 'id' else ''})"
            for c in others[:5]) + (", ..." if len(others) > 5 else "")) if others else ""
        raise DataError(f"{path}: no feature column: '{shown(label)}' is the label"
                        f"{left_out or ' and the only column'}. A table needs at least one "
                        "column to learn from besides the label.")
    _check_feature_names(path, found)
    if len(label_cells) < len(rows):  # the run refuses them: a file it would refuse is no start
        raise DataError(f"{path}: {len(rows) - len(label_cells):,} of the rows read have no "
                        f"label (a missing value in '{shown(label)}'), and the run refuses a "
                        "row without its label. Remove those rows from the file, or choose "
                        "another label with --label COLUMN.")
    return Inspection("csv", os.path.abspath(path), len(rows), complete, guess, tuple(found),
                      delimiter, tuple(tokens))


def _check_header(path: str, header: list[str]) -> None:
    if all(number(name) is not None for name in header):
        raise DataError(f"{path}, line 1: the first row holds numbers "
                        f"({', '.join(shown(n, 12) for n in header[:4])}), not column names. "
                        "A CSV file needs a header row naming the columns; add one.")
    for position, name in enumerate(header):
        if not name:
            raise DataError(f"{path}, line 1: column {position + 1} has no name. Name every "
                            "column in the header row.")
        if "\0" in name:  # Keras saves names as HDF5 strings, which cannot hold one
            raise DataError(f"{path}, line 1: the name of column {position + 1} "
                            f"('{shown(name)}') holds a NUL byte, which a saved model cannot "
                            "hold in a name (and which is often a sign of a damaged file). "
                            "Rename the column in the header row.")
    repeated = [name for name, count in Counter(header).items() if count > 1]
    if repeated:
        raise DataError(f"{path}, line 1: the column name '{shown(repeated[0])}' appears "
                        "more than once. Give each column its own name.")


def _check_feature_names(path: str, columns: list[ColumnGuess]) -> None:
    from kerapipe.scaffold.render import MAX_KEY_CHARS, quoted
    from kerapipe.spec.features import RESERVED_NAMES

    for column in columns:
        if column.type in ("label", "id", "skip"):
            continue
        if len(quoted(column.name)) > MAX_KEY_CHARS:
            raise DataError(f"{path}: the column '{shown(column.name)}' has a name of "
                            f"{len(column.name):,} characters; a key of data.features has at "
                            f"most {MAX_KEY_CHARS:,} (YAML's limit, with the quotes a name of "
                            "other characters than letters, digits and _ needs). Rename the "
                            "column in the header row.")
        if "/" in column.name or column.name in RESERVED_NAMES:
            why = ("Keras refuses '/' in the name of the model input each feature is" if "/"
                   in column.name else f"'{column.name}' is the name of "
                   f"{RESERVED_NAMES[column.name]} in the saved model")
            raise DataError(f"{path}: the column '{shown(column.name)}' cannot be a feature: "
                            f"{why}. Rename the column in the header row.")


def _column_guess(name: str, cells: list[str], missing: int,
                  before: list[ColumnGuess]) -> ColumnGuess:
    """A column's guess from its cells (``missing`` more were missing values)."""
    guess = _column_type(name, cells, missing > 0, before)
    return ColumnGuess(guess.name, guess.type, guess.kwargs, guess.missing, guess.reason,
                       len(set(cells)), all(number(c) is not None for c in cells), missing)


def _column_type(name: str, cells: list[str], has_missing: bool,
                 before: list[ColumnGuess]) -> ColumnGuess:
    missing_numbers = "mean" if has_missing else None
    missing_strings = "mode" if has_missing else None
    distinct = len(set(cells))
    unique = distinct == len(cells) and len(cells) >= 20 and not has_missing
    no_id = all(c.type != "id" for c in before)
    if not cells:
        return ColumnGuess(name, "skip", reason="every value read is missing")
    if all(number(c) is not None for c in cells):
        wholes = [whole_number(c) for c in cells]
        if all(w is not None and -INT32 <= w <= INT32 for w in wholes):
            if name.lower() in ID_NAMES and unique and no_id:
                return ColumnGuess(name, "id", reason="a different number in each row")
            if distinct <= CATEGORY_VALUES and distinct * 2 <= len(cells):
                return ColumnGuess(name, "integer_categorical", missing=missing_strings,
                                   reason=f"{distinct} whole numbers: categories")
        return ColumnGuess(name, "float_normalized", missing=missing_numbers,
                           reason=f"numbers, {distinct:,} values")
    words = sum(len(c.split()) for c in cells) / len(cells)
    if words >= 3:
        return ColumnGuess(name, "text", {"max_tokens": 2000, "output_mode": "tf_idf"},
                           missing="fill" if has_missing else None,
                           reason=f"text, {words:.0f} words a cell on average: a bag of words")
    if unique and no_id:
        return ColumnGuess(name, "id", reason="a different value in each row")
    if distinct > MAX_STRING_CATEGORIES:
        return ColumnGuess(name, "string_categorical", {"max_tokens": MAX_STRING_CATEGORIES},
                           missing=missing_strings, reason=f"{distinct:,} different names: "
                           f"the {MAX_STRING_CATEGORIES - 1} most frequent kept")
    return ColumnGuess(name, "string_categorical", missing=missing_strings,
                       reason=f"{distinct} names: categories")


def _skip_constants(columns: list[ColumnGuess]) -> list[ColumnGuess]:
    """A feature of one value teaches nothing; left out while another feature remains."""
    roles = ("label", "id", "skip")
    if not any(c.type not in roles and c.distinct > 1 for c in columns):
        return columns
    return [ColumnGuess(c.name, "skip", reason="the same value in every row read",
                        distinct=1, numeric=c.numeric)
            if c.type not in roles and c.distinct == 1 else c for c in columns]
