"""How tf.data reads a CSV file's feature columns while training: streamed in blocks of
lines, never loaded whole (``CsvStream``; the first pass that checks every row is
``csv_file.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_CSV_BLOCK = 4096  # lines per tf.data element while streaming a CSV
# Feature columns above which a quote-free CSV is split rather than decode_csv'd: the
# split costs about 1 us a row more at 16 columns, decode_csv's graph 1.7 ms a column.
_SPLIT_MIN_COLUMNS = 256


@dataclass(frozen=True)
class CsvStream:
    """How tf.data reads a CSV file's feature columns: streamed, never loaded whole.

    The first pass (``csv_file.load_csv``) checks every row and keeps only the labels; the
    features are parsed again in tf.data while training, in batches, by
    ``tf.io.decode_csv``; or, for more than ``_SPLIT_MIN_COLUMNS`` feature columns and no
    quote in any row, by splitting at the delimiter (the same fields, since the first pass
    checked every row; and a graph whose size does not grow with the columns: decode_csv's
    took about 1.7 ms a column to build, 34 s at 20,000 columns).
    """

    path: str
    delimiter: str
    feature_columns: tuple[int, ...]  # in the order the model sees them
    num_rows: int
    num_columns: int = 0  # of the header; every row has this many fields
    quoted: bool = True  # some data row holds a quote character
    typed: Any = None  # data.features: the typed columns (csv_typed.TypedColumns)

    def features(self, rows: np.ndarray):
        """float32 feature vectors of data rows ``rows`` (ascending), in file order; with
        typed columns, a dict of each column's values by feature name."""
        from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
        import tensorflow as tf

        wanted = np.zeros(self.num_rows, dtype=bool)
        wanted[np.asarray(rows, dtype=np.int64)] = True
        wanted = tf.constant(wanted)

        def select(rows_before, lines):
            """Keep the wanted data rows of a block of lines (blank lines are no rows)."""
            lines = tf.boolean_mask(lines, tf.strings.length(tf.strings.strip(lines)) > 0)
            count = tf.size(lines, out_type=tf.int64)
            keep = tf.gather(wanted, rows_before + tf.range(count, dtype=tf.int64))
            return rows_before + count, tf.boolean_mask(lines, keep)

        # Whole blocks of lines per tf.data element: per-line filters and maps cost tens of
        # microseconds a line, more than parsing; `scan` carries the row count across blocks.
        blocks = tf.data.TextLineDataset(self.path).skip(1).batch(_CSV_BLOCK)  # skip the header
        return (blocks.scan(tf.constant(0, tf.int64), select)
                .map(self.decode, num_parallel_calls=tf.data.AUTOTUNE).unbatch())

    def decode(self, lines):
        """float32 features ``(len(lines), len(feature_columns))`` of data lines (a 1-D
        string tensor), as the model sees them; eager or inside tf.data."""
        from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
        import tensorflow as tf

        lines = tf.strings.regex_replace(lines, "\r$", "")
        if self.typed is not None:
            return self.typed.decode(lines, self.delimiter)
        if self.quoted or len(self.feature_columns) <= _SPLIT_MIN_COLUMNS:
            selected = sorted(set(self.feature_columns))
            position = {column: i for i, column in enumerate(selected)}
            order = [position[column] for column in self.feature_columns]
            columns = tf.io.decode_csv(lines, record_defaults=[[0.0]] * len(selected),
                                       field_delim=self.delimiter, select_cols=selected)
            return tf.gather(tf.stack(columns, axis=1), order, axis=1)
        fields = tf.strings.split(lines, sep=self.delimiter).to_tensor(
            shape=[None, self.num_columns])
        return tf.strings.to_number(tf.gather(fields, list(self.feature_columns), axis=1),
                                    tf.float32)
