"""What ``kerapipe init`` found in a data set (``Inspection`` and its parts), and the small
helpers every inspector shares: a cell's number as tf.data reads it, a data file opened
without blocking, a data value made fit for a comment."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

WIDE_TABLE = 200  # more numeric columns than this: one Normalization, no data.features
MAX_STRING_CATEGORIES = 100  # a string column's categories kept; a label's names at most
MIN_EXAMPLES = 10  # fewer cannot fill a training, a validation and a test split


@dataclass(frozen=True)
class LabelGuess:
    """What the labels are: ``kind`` (a ``data.labels`` kind), the model's output units,
    the class names (or for a target, nothing) with their counts, and why."""

    name: str  # the CSV column, the npz array, or "folders" for a class-folder source
    kind: str  # classes | binary | multi_label | regression
    units: int
    classes: tuple[str, ...] = ()
    counts: tuple[int, ...] = ()
    reason: str = ""
    picked: str = ""  # how the label column was chosen (CSV)


@dataclass(frozen=True)
class ColumnGuess:
    """One CSV column: its ``data.features`` type and arguments, or the role ``id`` or
    ``skip``; ``missing`` is its missing-value policy; ``reason`` the comment."""

    name: str
    type: str
    kwargs: dict = field(default_factory=dict)
    missing: Optional[str] = None  # None (refuse), mean, mode or fill
    reason: str = ""
    distinct: int = 0  # different values read
    numeric: bool = False  # every value read is a number
    missing_cells: int = 0  # cells read that are one of the missing values


@dataclass(frozen=True)
class Inspection:
    """What ``inspect_data`` found in a data set."""

    kind: str  # csv | images | text | npz
    path: str  # the data's absolute path
    examples: int  # examples inspected (rows, files, array rows)
    complete: bool  # every example was inspected
    label: LabelGuess
    columns: tuple[ColumnGuess, ...] = ()  # csv
    delimiter: str = ","
    missing_values: tuple[str, ...] = ()
    image_size: Optional[tuple[int, int]] = None  # images, npz images
    color_mode: str = "rgb"
    x_shape: tuple[int, ...] = ()  # npz: one example's shape
    x_kind: str = ""  # npz: table | image | text
    pixels: str = ""  # npz images: rescale (0..255), none (0..1) or normalize
    sequence_length: int = 0  # text: the TextVectorization output length
    max_tokens: int = 0
    own_test_split: bool = False  # npz x_test/y_test
    notes: tuple[str, ...] = ()

    @property
    def features(self) -> list[ColumnGuess]:
        return [c for c in self.columns if c.type not in ("id", "skip", "label")]

    @property
    def id_column(self) -> Optional[str]:
        return next((c.name for c in self.columns if c.type == "id"), None)

    @property
    def typed(self) -> bool:
        """A table written with ``data.features`` (not a wide table of numbers only)."""
        others = [c for c in self.columns if c.type not in ("label", "id")]
        return not (len(others) > WIDE_TABLE and not self.missing_values
                    and all(c.numeric for c in others))


@dataclass(frozen=True)
class Scaffold:
    """A written pipeline: the inspection it came from and the file's text."""

    inspection: Inspection
    text: str


def shown(text: str, limit: int = 40) -> str:
    """A data value for a comment: printable (a line break would end the comment), cut."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return out if len(out) <= limit else out[:limit - 1] + "…"


def open_data_file(path: str) -> int:
    """A read-only descriptor of a regular data file, opened without blocking (a FIFO or
    a device is a ``DataError`` naming it)."""
    from kerapipe.compiler.files import open_regular_file

    return open_regular_file(path, path)


def number(text: str) -> Optional[float]:
    """A cell's finite number as tf.data reads it (ASCII only), else ``None``."""
    from kerapipe.compiler.values import csv_number

    value = csv_number(text)
    return value if value is not None and math.isfinite(value) else None


def whole_number(text: str) -> Optional[int]:
    """A cell's whole number as tf.data reads it, else ``None``."""
    from kerapipe.compiler.values import csv_number

    return csv_number(text, int)
