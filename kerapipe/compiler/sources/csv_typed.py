"""The typed columns of a CSV (``data.features``): each cell checked against its feature's
type in the first pass, missing values handled by the feature's policy, and the columns
decoded in tf.data (and read for ``predict``) by the same rules.

A cell is missing when, stripped of (ASCII) spaces, it is one of
``data.source.csv.missing_values``
(the empty cell by default). Then the feature's ``missing:`` policy applies, the same way
in training and in ``predict``: ``refuse`` stops with the line and column; ``drop``
leaves the row out (counted: ``plan``, ``run.json``, ``predict``'s message); ``mean`` and
``mode`` fill the training split's mean or most frequent value (computed once the splits
are drawn, ``fill_values``, and recorded in ``run.json`` for ``predict``); ``fill`` puts
the value the file gives.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from kerapipe.compiler.values import FLOAT32_MAX, csv_number, show
from kerapipe.errors import DataError
from kerapipe.spec.features import FeatureSpec

INT32_MAX = 2**31 - 1
# The spaces stripped around a cell: ASCII whitespace only, as tf.strings.strip strips it in
# tf.data. Python's str.strip() also strips Unicode spaces (a no-break space), which would
# make "red\u00a0" the category "red" here and in predict but "red\u00a0" in training.
ASCII_SPACES = " \t\n\r\x0b\x0c"
# integer_categorical's out-of-vocabulary token (compiler/features.py): int32's smallest
# value, so that every other whole number, -1 among them, can be a category of its own.
INTEGER_OOV_TOKEN = -2**31


def fill_text(value: Any) -> str:
    """A fill value as the cell text tf.data parses (``repr`` keeps every float digit)."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass
class TypedColumn:
    """One feature's column: where it is, and what the first pass learned of it."""

    feature: FeatureSpec
    index: int  # position in the header
    # mean/mode: each kept row's value (NaN, or code -1, where missing), to compute the
    # training split's fill once the splits are drawn
    numbers: Optional[array] = None
    codes: Optional[array] = None
    distinct: dict = field(default_factory=dict)
    fill: Any = None  # the value that fills a missing cell (``fill``, or learned)


class TypedColumns:
    """The typed feature columns of one CSV file and its missing-value tokens.

    Args:
        features: ``data.features``, in the order the model takes them.
        position: each header column's position by name.
        missing_values: the cell texts that mean missing.
        where: the file, for messages.
    """

    def __init__(self, features: Any, position: dict[str, int], missing_values: list[str],
                 where: str) -> None:
        self.where = where
        self.missing = frozenset(token.strip(ASCII_SPACES) for token in missing_values)
        self.columns: list[TypedColumn] = []
        for feature in features:
            if feature.name not in position:
                from kerapipe.spec.issues import did_you_mean

                raise DataError(f"{where}: no column '{feature.name}', which data.features "
                                f"declares.{did_you_mean(feature.name, list(position))} "
                                f"Columns: {', '.join(list(position)[:20])}. Fix "
                                "data.features.")
            column = TypedColumn(feature, position[feature.name], fill=feature.fill)
            if feature.missing == "mean":
                column.numbers = array("d")
            elif feature.missing == "mode":
                column.codes = array("l")
            self.columns.append(column)
        self.dropped = 0  # rows left out by a `drop` policy

    @property
    def names(self) -> list[str]:
        return [column.feature.name for column in self.columns]

    # --- the first pass ---------------------------------------------------------------

    def check_row(self, line: int, row: list[str], header: list[str]) -> bool:
        """Check a data row's typed cells; ``False`` when a ``drop`` policy leaves it out.

        Raises:
            DataError: a cell that is not of its feature's type, or missing where the
                policy refuses it (naming the line and column).
        """
        cells = []
        for column in self.columns:
            text = row[column.index].strip(ASCII_SPACES)
            missing = text in self.missing
            if missing and column.feature.missing == "drop":
                self.dropped += 1
                return False
            if missing and column.feature.missing == "refuse":
                raise self._refused(line, column, row[column.index])
            cells.append((column, None if missing else self._value(line, column, text)))
        for column, value in cells:  # recorded only for the rows that are kept
            if column.numbers is not None:
                column.numbers.append(math.nan if value is None else value)
            elif column.codes is not None:
                column.codes.append(-1 if value is None else
                                    column.distinct.setdefault(value, len(column.distinct)))
        return True

    def _value(self, line: int, column: TypedColumn, text: str) -> Any:
        """A present cell's value, checked as tf.data will parse it."""
        holds = column.feature.holds
        if holds == "string":
            return text
        if holds == "integer":
            number = csv_number(text, int)
            if number is None or not -INT32_MAX - 1 <= number <= INT32_MAX:
                raise self._bad_cell(line, column, text, "a whole number (from -2**31 to "
                                     "2**31-1)", "Use a float_* type for measurements, or "
                                     "string_categorical for codes that are not numbers.")
            if number == INTEGER_OOV_TOKEN and column.feature.type == "integer_categorical":
                raise self._bad_cell(line, column, text, "a whole number from -2**31+1 to "
                                     "2**31-1 (-2**31 is the lookup's token for values not "
                                     "seen in training)", "Use integer_hashed or "
                                     "string_categorical for this column.")
            return number
        number = csv_number(text)
        if number is None or not -FLOAT32_MAX <= number <= FLOAT32_MAX:
            raise self._bad_cell(line, column, text, "a finite number in float32's range",
                                 "Use string_categorical for a column of names, or add the "
                                 "text to data.source.csv.missing_values if it means missing.")
        return number

    def _bad_cell(self, line: int, column: TypedColumn, text: str, wanted: str,
                  hint: str) -> DataError:
        feature = column.feature
        return DataError(f"{self.where}, line {line}, column '{feature.name}': {show(text)}, "
                         f"but the feature is {feature.type}, which takes {wanted}. {hint}")

    def _refused(self, line: int, column: TypedColumn, text: str) -> DataError:
        feature = column.feature
        shown = "an empty cell" if not text.strip(ASCII_SPACES) else f"{show(text)}"
        return DataError(f"{self.where}, line {line}, column '{feature.name}': {shown}, a "
                         "missing value (data.source.csv.missing_values), and the feature "
                         "refuses missing values (`missing: refuse`, the default). Set its "
                         "policy in data.features: `missing: drop` (leave the row out), "
                         "`mean`/`mode` (the training split's), or `{fill: VALUE}`; or fix "
                         "the file.")

    # --- after the split ---------------------------------------------------------------

    def learn_fills(self, kept: np.ndarray) -> dict[str, Any]:
        """The ``mean``/``mode`` fill values from the training rows (``kept``: their
        positions among the kept rows), set on the columns; every fill by feature name.

        Raises:
            DataError: the training split holds no value of a column to learn from.
        """
        for column in self.columns:
            if column.numbers is not None:
                values = np.frombuffer(column.numbers, dtype=np.float64)[kept]
                values = values[~np.isnan(values)]
                if not len(values):
                    raise self._nothing_to_learn(column, "mean")
                column.fill = float(np.float32(values.mean()))
            elif column.codes is not None:
                codes = np.frombuffer(column.codes, dtype=np.int64)[kept]
                counts = Counter(int(c) for c in codes if c >= 0)
                if not counts:
                    raise self._nothing_to_learn(column, "mode")
                names = {code: value for value, code in column.distinct.items()}
                # the most frequent value; a tie goes to the smallest, for a repeatable fill
                column.fill = min(counts, key=lambda c: (-counts[c], names[c]))
                column.fill = names[column.fill]
        return self.fills()

    def fills(self) -> dict[str, Any]:
        return {c.feature.name: c.fill for c in self.columns if c.fill is not None}

    def _nothing_to_learn(self, column: TypedColumn, policy: str) -> DataError:
        return DataError(f"{self.where}: column '{column.feature.name}' has no value in the "
                         f"training split to take the {policy} of (every cell is missing). "
                         "Give it `missing: {fill: VALUE}`, or leave the column out of "
                         "data.features.")

    # --- tf.data ------------------------------------------------------------------------

    def decode(self, lines, delimiter: str) -> dict:
        """The raw columns of data lines (a 1-D string tensor), a dict of tensors by feature
        name (``(n, 1)``, text ``(n,)``): missing cells filled, numbers parsed, strings
        stripped."""
        from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
        import tensorflow as tf

        selected = sorted({column.index for column in self.columns})
        slot = {index: i for i, index in enumerate(selected)}
        cells = tf.io.decode_csv(lines, record_defaults=[[""]] * len(selected),
                                 field_delim=delimiter, select_cols=selected)
        out = {}
        for column in self.columns:
            text = tf.strings.strip(cells[slot[column.index]])
            if column.fill is not None and self.missing:
                missing = tf.reduce_any(tf.stack([tf.equal(text, token)
                                                  for token in sorted(self.missing)]), axis=0)
                text = tf.where(missing, fill_text(column.fill), text)
            holds = column.feature.holds
            value = text if holds == "string" else tf.strings.to_number(
                text, column.feature.raw_dtype)
            # each example shaped as the model's raw input takes it (FeatureSpec.input_shape)
            out[column.feature.name] = (value if column.feature.is_text
                                        else tf.expand_dims(value, -1))
        return out

    # --- predict ------------------------------------------------------------------------

    def read_row(self, line: int, row: list[str]) -> Optional[list[Any]]:
        """A ``predict`` row's values by training's rules (the fills recorded by the
        run), or ``None`` when a ``drop`` policy leaves it out."""
        values = []
        for column in self.columns:
            text = row[column.index].strip(ASCII_SPACES)
            if text in self.missing:
                policy = column.feature.missing
                if policy == "drop":
                    self.dropped += 1
                    return None
                if column.fill is None and policy in ("mean", "mode"):
                    raise self._damaged_fill(column, "is missing")
                if column.fill is None:
                    raise self._refused(line, column, row[column.index])
                values.append(self._fill_value(column))
                continue
            values.append(self._value(line, column, text))
        return values

    def _fill_value(self, column: TypedColumn) -> Any:
        """A column's fill as a value of its type; the fills of ``mean``/``mode`` come from
        run.json, where a value of another type means a damaged run folder, not a bad cell.

        Raises:
            UsageError: the fill is not a value of the column's type.
        """
        try:
            return self._value(0, column, fill_text(column.fill).strip(ASCII_SPACES))
        except DataError:
            kind = column.feature.type
            article = "an" if kind[0] in "aeiou" else "a"
            raise self._damaged_fill(column, f"is {show(column.fill)}, not a value of "
                                     f"{article} {kind} column") from None

    def _damaged_fill(self, column: TypedColumn, problem: str) -> Exception:
        from kerapipe.errors import UsageError

        name = column.feature.name
        return UsageError(f"run.json: data.fill_values.{name} {problem}: it fills the "
                          f"missing cells of feature '{name}' (`missing: "
                          f"{column.feature.missing}`), so the run folder looks damaged. "
                          "Restore run.json, or train the pipeline again.")

    def arrays(self, rows: list[list[Any]]) -> dict[str, np.ndarray]:
        """``predict``'s rows as the model's raw inputs: one array per column, shaped as
        its input (``FeatureSpec.input_shape``)."""
        return {column.feature.name: raw_column(column.feature,
                                                [row[position] for row in rows])
                for position, column in enumerate(self.columns)}


def raw_column(feature: FeatureSpec, values: Any) -> np.ndarray:
    """A feature's values as the model's raw input takes them: its raw dtype (strings as an
    object array: Keras refuses NumPy's `U` arrays), shaped as ``FeatureSpec.input_shape``.

    Raises:
        TypeError, ValueError: a value does not convert to the feature's dtype.
    """
    dtype = object if feature.raw_dtype == "string" else feature.raw_dtype
    return np.asarray(values, dtype=dtype).reshape((-1, *feature.input_shape))
