"""``kerapipe init``: a first pipeline file for a data set, from a look at the data.

``inspect_data`` reads a bounded sample of a CSV file, an image folder, a text folder or
an .npz file (the readers and folder policy of the sources themselves: the same bounds,
links, FIFOs and UTF-8 rules) and returns what it found as an ``Inspection``: the source,
the label (its column, kind and classes) and, for a table, each column's type.
``render_pipeline`` writes that as a commented pipeline file whose data path is relative
to the folder the file will be in; ``scaffold`` does both and checks that the text
validates. Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, Sequence

from kerapipe.errors import DataError, OutputError, UsageError

MAX_SAMPLE_ROWS = 10_000  # CSV rows read to guess types and classes
MAX_SAMPLE_CELLS = 2_000_000  # cells held from those rows (a wide table reads fewer rows)
MAX_SAMPLE_CHARS = 1 << 24  # characters of CSV cells held (16 Mi)
MAX_SAMPLE_FILES = 200  # images (headers only) and texts read from a folder
MAX_INSPECTED_ARRAY_BYTES = 1 << 28  # an npz feature array read whole for its values
IMAGE_HEAD_BYTES = 1 << 18  # bytes of an image read for its size (a JPEG's EXIF comes first)
MAX_GUESSED_SIDE = 128  # a larger image size is scaled down to this longer side
WIDE_TABLE = 200  # more numeric columns than this: one Normalization, no data.features
MAX_CLASSES_GUESS = 20  # whole-number labels with more values than this: a target
CATEGORY_VALUES = 10  # whole-number feature columns with at most this many values: categories
MAX_STRING_CATEGORIES = 100  # a string column's categories kept (the most frequent)
LABEL_NAMES = ("label", "labels", "target", "targets", "class", "classes", "y", "species",
               "outcome", "category", "diagnosis", "survived", "churn", "response")
ID_NAMES = ("id", "index", "row", "row_id", "uuid", "key")
MISSING_TOKENS = ("", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "?")
INT32 = 2 ** 31 - 1
SCHEMA_FILE = os.path.join("schema", "pipeline.schema.json")
SCHEMA_LOOKS_UP = 8  # parent folders searched for schema/pipeline.schema.json


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
    x_kind: str = ""  # npz: table | image | text | sequence
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


# --- inspection ---------------------------------------------------------------------

def inspect_data(path: str | os.PathLike, label: Optional[str] = None) -> Inspection:
    """Look at a data set and guess its source, label and features.

    Args:
        path: a CSV file, an .npz file, or a folder of one sub-folder per class (images
            or ``.txt`` files).
        label: the CSV label column. Defaults to a column named like a label, else the
            last column.

    Raises:
        DataError: the data is missing, unreadable, empty, or not of a kind init reads.
        UsageError: ``label`` names no column, or is given for data without columns.
    """
    where = os.fsdecode(os.fspath(path))
    try:
        where.encode("utf-8")
    except UnicodeEncodeError as err:
        raise DataError(f"{where!r}: the path is not valid UTF-8, and a pipeline file is "
                        "UTF-8 text. Rename it.") from err
    try:
        mode = os.stat(where).st_mode
    except FileNotFoundError as err:
        raise DataError(f"{where}: no such file or folder.") from err
    except OSError as err:  # a loop of links, a name too long, no permission
        raise DataError(f"{where}: cannot read it ({err.strerror or err}).") from err
    if stat.S_ISDIR(mode):
        if label is not None:
            raise UsageError("--label names a CSV column; a folder's labels are its "
                             "sub-folders (one per class).")
        return _inspect_folder(where)
    if not stat.S_ISREG(mode):
        from kerapipe.compiler.files import not_regular
        from kerapipe.safe_io import file_kind

        raise not_regular(where, where, file_kind(mode))
    with open(_open_file(where), "rb") as handle:
        head = handle.read(4)
    if where.lower().endswith(".npz") or head.startswith(b"PK\x03\x04"):
        if label is not None:
            raise UsageError("--label names a CSV column; an .npz file's labels are its "
                             "array y (or y_train).")
        return _inspect_npz(where)
    return _inspect_csv(where, label)


def _open_file(path: str) -> int:
    from kerapipe.compiler.files import open_regular_file

    return open_regular_file(path, path)


def _number(text: str) -> Optional[float]:
    from kerapipe.compiler.values import csv_number

    value = csv_number(text)
    return value if value is not None and math.isfinite(value) else None


def _whole(text: str) -> Optional[int]:
    from kerapipe.compiler.values import csv_number

    return csv_number(text, int)


def _sniff_delimiter(path: str) -> str:
    if path.lower().endswith((".tsv", ".tab")):
        return "\t"
    try:
        with open(_open_file(path), "rb") as handle:
            first = handle.read(1 << 16).split(b"\n", 1)[0]
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err.strerror or err}).") from err
    counts = {d: first.count(d.encode()) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _inspect_csv(path: str, label: Optional[str]) -> Inspection:
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
        picked = (f"the column named '{shown(label)}' (a usual name for the label)" if named
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
    guess = _label_from_texts(label, label_cells)
    guess = LabelGuess(**{**guess.__dict__, "picked": picked})
    found = []
    for name, cells in zip(header, columns):
        if name == label:
            found.append(ColumnGuess(name, "label"))
            continue
        found.append(_column_guess(name, [c for c in cells if c not in tokens],
                                   len(cells), any(c in tokens for c in cells), found))
    found = _skip_constants(found)
    if not [c for c in found if c.type not in ("label", "id", "skip")]:
        raise DataError(f"{path}: no feature column: the only column"
                        f"{'s are' if len(header) > 1 else ' is'} "
                        f"{', '.join(shown(n) for n in header)}, and '{shown(label)}' is the "
                        "label. A table needs at least one column to learn from besides the "
                        "label.")
    _check_feature_names(path, found)
    notes = []
    if len(label_cells) < len(rows):
        notes.append(f"{len(rows) - len(label_cells):,} of the rows read have no label "
                     f"(a missing value in '{shown(label)}'): the run refuses such rows; "
                     "remove them from the file first")
    return Inspection("csv", os.path.abspath(path), len(rows), complete, guess, tuple(found),
                      delimiter, tuple(tokens), notes=tuple(notes))


def _check_header(path: str, header: list[str]) -> None:
    if all(_number(name) is not None for name in header):
        raise DataError(f"{path}, line 1: the first row holds numbers "
                        f"({', '.join(shown(n, 12) for n in header[:4])}), not column names. "
                        "A CSV file needs a header row naming the columns; add one.")
    for position, name in enumerate(header):
        if not name:
            raise DataError(f"{path}, line 1: column {position + 1} has no name. Name every "
                            "column in the header row.")
    repeated = [name for name, count in Counter(header).items() if count > 1]
    if repeated:
        raise DataError(f"{path}, line 1: the column name '{shown(repeated[0])}' appears "
                        "more than once. Give each column its own name.")


def _check_feature_names(path: str, columns: list[ColumnGuess]) -> None:
    from kerapipe.spec.features import RESERVED_NAMES

    for column in columns:
        if column.type in ("label", "id", "skip"):
            continue
        if "/" in column.name or column.name in RESERVED_NAMES:
            why = ("Keras refuses '/' in the name of the model input each feature is" if "/"
                   in column.name else f"'{column.name}' is the name of "
                   f"{RESERVED_NAMES[column.name]} in the saved model")
            raise DataError(f"{path}: the column '{shown(column.name)}' cannot be a feature: "
                            f"{why}. Rename the column in the header row.")


def _label_from_texts(name: str, cells: list[str]) -> LabelGuess:
    """The label's kind from its cells (missing ones left out), as ``data.labels`` names it."""
    numbers = [_number(cell) for cell in cells]
    if all(n is not None for n in numbers):
        wholes = [_whole(cell) for cell in cells]
        if all(w is not None for w in wholes):
            return _label_from_numbers(name, wholes)
        distinct = len(set(numbers))
        return LabelGuess(name, "regression", 1, reason=f"numbers with fractions, {distinct:,} "
                          "different values: a target to predict (regression)")
    if sum("|" in cell for cell in cells) * 10 >= len(cells):
        labels = Counter(part.strip() for cell in cells for part in cell.split("|")
                         if part.strip())
        if 1 < len(labels) <= MAX_STRING_CATEGORIES:
            names = sorted(labels)
            return LabelGuess(name, "multi_label", len(names), tuple(names),
                              tuple(labels[n] for n in names),
                              reason="cells hold labels separated by '|', as "
                              f"'{shown(next(c for c in cells if '|' in c))}'")
    counts = Counter(cells)
    if len(counts) > max(MAX_STRING_CATEGORIES, len(cells) // 2):
        raise DataError(f"the label column '{shown(name)}' holds {len(counts):,} different "
                        f"texts in {len(cells):,} rows: an id or free text rather than class "
                        "names. Choose the label with --label COLUMN.")
    names = sorted(counts)
    if len(names) < 2:
        raise DataError(f"the label column '{shown(name)}' holds one class only "
                        f"('{shown(names[0])}') in the rows read; a classifier needs two. "
                        "Choose the label with --label COLUMN.")
    return LabelGuess(name, "classes", len(names), tuple(names),
                      tuple(counts[n] for n in names), reason="text labels: one class per name")


def _label_from_numbers(name: str, values: Sequence[int]) -> LabelGuess:
    """Whole-number labels: class indices when few and from 0, else two values (binary),
    else a target."""
    counts = Counter(values)
    low, high = min(counts), max(counts)
    if len(counts) < 2:
        raise DataError(f"the label '{shown(name)}' holds one value only ({low}) in the "
                        "examples read; a model needs labels that differ. Choose the label "
                        "with --label COLUMN.")
    if low >= 0 and len(counts) <= MAX_CLASSES_GUESS and high < 4 * MAX_CLASSES_GUESS:
        names = tuple(str(i) for i in range(high + 1))
        return LabelGuess(name, "classes", high + 1, names,
                          tuple(counts.get(i, 0) for i in range(high + 1)),
                          reason=f"whole numbers {low}..{high}: class indices")
    if len(counts) == 2:
        names = tuple(str(v) for v in sorted(counts))
        return LabelGuess(name, "binary", 1, names, tuple(counts[v] for v in sorted(counts)),
                          reason=f"two values, {names[0]} and {names[1]}: two classes "
                          f"({names[0]} is class 0)")
    return LabelGuess(name, "regression", 1, reason=f"{len(counts):,} different whole "
                      f"numbers from {low} to {high}: a target to predict (regression)")


def _column_guess(name: str, cells: list[str], rows: int, has_missing: bool,
                  before: list[ColumnGuess]) -> ColumnGuess:
    guess = _column_type(name, cells, has_missing, before)
    return ColumnGuess(guess.name, guess.type, guess.kwargs, guess.missing, guess.reason,
                       len(set(cells)), all(_number(c) is not None for c in cells))


def _column_type(name: str, cells: list[str], has_missing: bool,
                 before: list[ColumnGuess]) -> ColumnGuess:
    missing_numbers = "mean" if has_missing else None
    missing_strings = "mode" if has_missing else None
    distinct = len(set(cells))
    unique = distinct == len(cells) and len(cells) >= 20 and not has_missing
    no_id = all(c.type != "id" for c in before)
    if not cells:
        return ColumnGuess(name, "skip", reason="every value read is missing")
    if all(_number(c) is not None for c in cells):
        wholes = [_whole(c) for c in cells]
        if all(w is not None and -INT32 <= w <= INT32 for w in wholes):
            if name.lower() in ID_NAMES and unique and no_id:
                return ColumnGuess(name, "id", reason="a different whole number in each row")
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
        return ColumnGuess(name, "id", reason="a different value in each row: an id, not a "
                           "feature")
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


def _inspect_folder(path: str) -> Inspection:
    from kerapipe.compiler.folders import check_class_folders
    from kerapipe.compiler.sources.image_folder import (IMAGE_EXTENSIONS, IMAGES,
                                                        index_image_folder)
    from kerapipe.compiler.sources.text_folder import TEXTS, index_text_folder

    images = index_image_folder(path, path, classes_only=True)
    texts = index_text_folder(path, path, classes_only=True)
    if not images.class_names:
        check_class_folders(images, path, path, IMAGES)  # raises, explaining the layout
    if not images.paths and not texts.paths:
        raise DataError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) and no .txt files "
                        f"in the class folders ({', '.join(shown(n) for n in images.class_names[:10])}"
                        f"). kerapipe init reads a folder of one sub-folder per class, each "
                        "holding images or .txt files.")
    if len(images.paths) >= len(texts.paths):
        check_class_folders(images, path, path, IMAGES)
        return _inspect_images(path, images)
    check_class_folders(texts, path, path, TEXTS, every_class_filled=True)
    return _inspect_texts(path, texts)


def _folder_label(index) -> LabelGuess:
    return LabelGuess("folders", "classes", len(index.class_names), tuple(index.class_names),
                      tuple(index.counts), reason="one class per sub-folder, in sorted order")


def _sample(paths: list[str]) -> list[str]:
    step = max(1, len(paths) // MAX_SAMPLE_FILES)
    return paths[::step][:MAX_SAMPLE_FILES]


def _inspect_images(path: str, index) -> Inspection:
    sizes: Counter = Counter()
    gray = True
    unread = 0
    for image in _sample(index.paths):
        found = image_header(image)
        if found is None:
            unread += 1
            continue
        height, width, channels = found
        sizes[(height, width)] += 1
        gray = gray and channels == 1
    notes = []
    if sizes:
        (height, width), seen = sizes.most_common(1)[0]
        longest = max(height, width)
        if longest > MAX_GUESSED_SIDE:
            scale = MAX_GUESSED_SIDE / longest
            height, width = max(1, round(height * scale)), max(1, round(width * scale))
        listed = ", ".join(f"{h}x{w} ({n})" for (h, w), n in sizes.most_common(3))
        notes.append(f"image sizes read (height x width): {listed}"
                     + (", ..." if len(sizes) > 3 else ""))
    else:
        height, width, gray = MAX_GUESSED_SIDE, MAX_GUESSED_SIDE, False
        notes.append("no image's size could be read from its header: a fixed size")
    if unread and sizes:
        notes.append(f"{unread} image(s) of the sample had a header init could not read")
    empty = [n for n, c in zip(index.class_names, index.counts) if not c]
    if empty:
        notes.append(f"class folder(s) without images: {', '.join(shown(n) for n in empty)}")
    return Inspection("images", os.path.abspath(path), len(index.paths), True,
                      _folder_label(index), image_size=(height, width),
                      color_mode="grayscale" if gray else "rgb", notes=tuple(notes))


def image_header(path: str) -> Optional[tuple[int, int, int]]:
    """``(height, width, channels)`` of a PNG, JPEG, GIF or BMP file from its first
    bytes (``None`` when unreadable); channels 1 for grayscale, else 3."""
    try:
        with open(_open_file(path), "rb") as handle:
            head = handle.read(IMAGE_HEAD_BYTES)
    except (OSError, DataError):
        return None
    return parse_image_header(head)


def parse_image_header(head: bytes) -> Optional[tuple[int, int, int]]:
    """``(height, width, channels)`` from an image file's first bytes, or ``None``."""
    def be(at: int, size: int) -> int:
        return int.from_bytes(head[at:at + size], "big")

    def le(at: int, size: int) -> int:
        return int.from_bytes(head[at:at + size], "little", signed=True)

    found = None
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 26 and head[12:16] == b"IHDR":
        found = (be(20, 4), be(16, 4), 1 if head[25] in (0, 4) else 3)
    elif head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        found = (le(8, 2) & 0xFFFF, le(6, 2) & 0xFFFF, 3)
    elif head.startswith(b"BM") and len(head) >= 26:
        found = (abs(le(22, 4)), abs(le(18, 4)), 3)
    elif head.startswith(b"\xff\xd8"):
        at = 2
        while at + 9 < len(head):
            if head[at] != 0xFF:
                return None
            marker = head[at + 1]
            if marker == 0xFF:
                at += 1
                continue
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                at += 2
                continue
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                          0xCE, 0xCF):
                found = (be(at + 5, 2), be(at + 7, 2), 1 if head[at + 9] == 1 else 3)
                break
            at += 2 + be(at + 2, 2)
    if found is None or not (0 < found[0] <= 1 << 16 and 0 < found[1] <= 1 << 16):
        return None
    return found


def _text_settings(texts: Sequence[str], examples: int) -> tuple[int, int]:
    """TextVectorization's ``output_sequence_length`` (most texts' words, in 8s) and
    ``max_tokens`` (a vocabulary that grows with the data)."""
    lengths = sorted(len(t.split()) for t in texts) or [1]
    longest = lengths[min(len(lengths) - 1, int(len(lengths) * 0.9))]
    length = min(512, max(16, -(-longest // 8) * 8))
    return length, (2000 if examples < 5000 else 20000)


def _inspect_texts(path: str, index) -> Inspection:
    from kerapipe.compiler.sources.text_folder import read_text_file

    texts = [read_text_file(p, path)[0] for p in _sample(index.paths)]
    length, tokens = _text_settings(texts, len(index.paths))
    return Inspection("text", os.path.abspath(path), len(index.paths), True,
                      _folder_label(index), sequence_length=length, max_tokens=tokens)


def _inspect_npz(path: str) -> Inspection:
    import numpy as np

    from kerapipe.compiler.sources.npz_file import npz_headers, read_npz

    headers = npz_headers(path)
    listing = ", ".join(f"{n} {h.shape}" for n, h in headers.items()) or "nothing"
    x_name = next((n for n in ("x", "x_train") if n in headers), None)
    y_name = next((n for n in ("y", "y_train") if n in headers), None)
    if x_name is None or y_name is None:
        raise DataError(f"{path}: kerapipe init reads an .npz file of arrays x (features) and "
                        f"y (labels), or x_train and y_train; this one holds: {listing}. Save "
                        "it with numpy.savez(path, x=features, y=labels); several input "
                        "arrays need a pipeline written by hand (README: Several inputs).")
    x_head, y_head = headers[x_name], headers[y_name]
    if not x_head.shape or not y_head.shape or x_head.shape[0] != y_head.shape[0]:
        raise DataError(f"{path}: '{x_name}' {x_head.shape} and '{y_name}' {y_head.shape} must "
                        "hold one row per example, the same number of rows.")
    if x_head.shape[0] == 0:
        raise DataError(f"{path}: '{x_name}' holds no examples.")
    own_test = x_name == "x_train" and "x_test" in headers and "y_test" in headers
    y = read_npz(path, [y_name])[y_name]
    label = _label_from_array(y_name, y, path)
    x_kind, example, notes = _npz_feature_kind(path, x_name, x_head)
    x = None
    if x_kind in ("image", "text") and x_head.nbytes <= MAX_INSPECTED_ARRAY_BYTES:
        x = read_npz(path, [x_name])[x_name]
    pixels = ""
    if x_kind == "image":
        largest = float(np.max(x)) if x is not None and x.size else None
        pixels = ("rescale" if x_head.dtype == np.uint8 or largest is not None
                  and 1.5 < largest <= 255.0 else "none" if largest is not None
                  and float(np.min(x)) >= 0.0 and largest <= 1.0 else "normalize")
    length = tokens = 0
    if x_kind == "text":
        sample = [] if x is None else [str(t) for t in x[::max(1, len(x) // 1000)]]
        length, tokens = _text_settings(sample, x_head.shape[0])
    image_size = tuple(example[:2]) if x_kind == "image" else None
    return Inspection("npz", os.path.abspath(path), x_head.shape[0], True, label,
                      image_size=image_size, x_shape=example, x_kind=x_kind,
                      pixels=pixels, sequence_length=length, max_tokens=tokens,
                      own_test_split=own_test, notes=tuple(notes))


def _npz_feature_kind(path: str, name: str, header) -> tuple[str, tuple[int, ...], list[str]]:
    example = tuple(header.shape[1:])
    kind = header.dtype.kind
    if kind in "US":
        if example:
            raise DataError(f"{path}: '{name}' holds strings of shape {header.shape}; a text "
                            "array holds one string per example (shape (n,)).")
        return "text", example, ["strings: one text per example"]
    if kind not in "biuf":
        raise DataError(f"{path}: '{name}' holds {header.dtype} values; features must be "
                        "numbers, or strings for text.")
    if len(example) == 3 and example[2] in (1, 3) or len(example) == 2 and min(example) >= 8 \
            and kind in "u" or len(example) == 2 and min(example) >= 16:
        return "image", example, [f"arrays of {'x'.join(map(str, example))}: images"]
    if len(example) <= 1:
        notes = ([f"{example[0]} numbers an example: a table"] if example else
                 ["one number an example"])
        if kind in "iu" and example:
            notes.append("if these are token ids, an Embedding layer fits them better")
        return "table", example, notes
    return "table", example, [f"arrays of {'x'.join(map(str, example))}: flattened"]


def _label_from_array(name: str, y, path: str) -> LabelGuess:
    import numpy as np

    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2 and y.dtype.kind in "biuf" and np.isin(y, (0, 1)).all():
        names = tuple(str(i) for i in range(y.shape[1]))
        return LabelGuess(name, "multi_label", y.shape[1], names,
                          tuple(int(c) for c in y.sum(axis=0)),
                          reason=f"0/1 rows of {y.shape[1]}: several labels per example")
    if y.ndim != 1:
        raise DataError(f"{path}: '{name}' has shape {y.shape}; kerapipe init reads one label "
                        "per example (a class index, a class name or a target), or rows of "
                        "0/1 (several labels).")
    if y.dtype.kind in "US":
        return _label_from_texts(name, [str(v) for v in y.astype(str)])
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind not in "iuf":
        raise DataError(f"{path}: '{name}' holds {y.dtype} values; labels are numbers or "
                        "class names.")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise DataError(f"{path}: '{name}' holds values that are not finite (NaN or "
                            "infinite); remove those examples.")
        if not np.all(y == np.round(y)):
            return LabelGuess(name, "regression", 1, reason=f"numbers with fractions, "
                              f"{len(np.unique(y)):,} different values: a target to predict "
                              "(regression)")
    return _label_from_numbers(name, [int(v) for v in y.tolist()])


# --- the pipeline file ----------------------------------------------------------------

COMMENT_COLUMN = 40  # where a comment beside a value starts
WIDTH = 100  # the longest line written (a longer comment goes above its line)
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_./-]*")
_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def quoted(text: str, path: bool = False) -> str:
    """``text`` as a YAML scalar that reads back as that string: plain when it is a
    simple name (or path), else double-quoted with escapes (a column name may hold any
    character, and a comment sign, colon or line break must not change the file)."""
    rule = _PLAIN_PATH if path else _PLAIN
    if rule.fullmatch(text) and text.lower() not in _YAML_WORDS and _number(text) is None \
            and "//" not in text:
        return text
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\t":
            out.append("\\t")
        elif char.isprintable() and char not in "\u2028\u2029\x85":
            out.append(char)
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


class _Lines:
    """The file's lines, each value with its comment beside it (or above, when long)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, indent: int, text: str, comment: str = "") -> None:
        line = " " * indent + text
        if comment:
            column = max(COMMENT_COLUMN, len(line) + 2)
            if column + 2 + len(comment) <= WIDTH:
                line = line.ljust(column) + "# " + comment
            else:
                self.note(indent, comment)
        self.lines.append(line)

    def note(self, indent: int, text: str) -> None:
        """A comment on lines of its own, wrapped."""
        import textwrap

        prefix = " " * indent + "# "
        self.lines.extend(textwrap.wrap(text, WIDTH, initial_indent=prefix,
                                        subsequent_indent=prefix, break_long_words=False,
                                        break_on_hyphens=False))

    def blank(self) -> None:
        self.lines.append("")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _flow(value) -> str:
    """A small value (numbers, names, lists, mappings) in YAML flow style."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{quoted(str(k))}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return quoted(str(value))


def _counted(names: Sequence[str], counts: Sequence[int], most: int = 6) -> str:
    parts = [f"{shown(n, 24)} {c:,}" for n, c in zip(names, counts)][:most]
    return ", ".join(parts) + (f", ... ({len(names)} in all)" if len(names) > most else "")


def find_schema(folder: str) -> Optional[str]:
    """The path of ``schema/pipeline.schema.json`` relative to ``folder``, looked for in
    ``folder`` and its parents (a kerapipe checkout), or ``None``."""
    current = os.path.realpath(folder)
    for _ in range(SCHEMA_LOOKS_UP):
        candidate = os.path.join(current, SCHEMA_FILE)
        if os.path.isfile(candidate):
            return os.path.relpath(candidate, os.path.realpath(folder)).replace(os.sep, "/")
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return None


def data_path_from(folder: str, data: str) -> str:
    """``data`` relative to ``folder``, as ``run`` resolves it: from the pipeline file's
    folder with links followed (``spec.data_paths.data_folder``), then lexically."""
    relative = os.path.relpath(os.path.abspath(data), os.path.realpath(folder))
    return relative.replace(os.sep, "/")


def render_pipeline(found: Inspection, folder: str, file_name: str = "pipeline.yaml") -> str:
    """The pipeline file's text for an inspection.

    Args:
        found: what ``inspect_data`` found.
        folder: the folder the file will be in (its data path is relative to it).
        file_name: the file's name, for the commands its header suggests. Defaults to
            ``pipeline.yaml``.
    """
    from kerapipe.spec.model import default_run_name

    out = _Lines()
    schema = find_schema(folder)
    if schema is not None:
        out.add(0, f"# yaml-language-server: $schema={schema}")
    data_name = os.path.basename(found.path.rstrip(os.sep)) or found.path
    read = (f"all {found.examples:,} of them read" if found.complete else
            f"the first {found.examples:,} read; the file has more")
    what = {"csv": "rows", "images": "images", "text": "texts", "npz": "examples"}[found.kind]
    out.note(0, f"A first pipeline for {shown(data_name, 60)} ({found.examples:,} {what}: "
                f"{read}), written by `kerapipe init`. Each choice is a guess from the data, "
                "and its comment says why: check them, then run "
                f"`kerapipe validate --strict {shown(file_name, 60)}` and `kerapipe run "
                f"{shown(file_name, 60)}`.")
    if schema is None:
        out.note(0, "For completion in an editor: `kerapipe schema -o pipeline.schema.json`, "
                    "then make this the first line:")
        out.add(0, "#   # yaml-language-server: $schema=pipeline.schema.json")
    for note in found.notes:
        if found.kind != "images":
            out.note(0, f"Note: {note}.")
    name = default_run_name(data_name)
    if name in {c.name for c in found.features}:
        name = f"{name}-pipeline"
    out.add(0, "kerapipe: 1")
    out.add(0, f"name: {quoted(name)}")
    out.add(0, "seed: 42", "the same split and initial weights on every run")
    out.blank()
    out.add(0, "data:")
    path = quoted(data_path_from(folder, found.path), path=True)
    {"csv": _csv_source, "images": _image_source, "text": _text_source,
     "npz": _npz_source}[found.kind](out, found, path)
    _labels(out, found)
    if found.kind == "csv" and found.typed:
        _features(out, found)
    _split(out, found)
    _preprocess(out, found)
    out.add(2, f"batch_size: {32}")
    out.blank()
    _model(out, found)
    out.blank()
    _training(out, found)
    return out.text()


def _csv_source(out: _Lines, found: Inspection, path: str) -> None:
    out.add(2, "source:")
    out.add(4, "csv:")
    out.add(6, f"path: {path}", "relative to this file's folder")
    label = found.label
    out.note(6, f"The label is {label.picked}. To predict another column, run `kerapipe init "
                "DATA --label COLUMN` again (or change `label` here and give the old label "
                "column a type under data.features).")
    out.add(6, f"label: {quoted(label.name)}")
    if found.delimiter != ",":
        out.add(6, f"delimiter: {quoted(found.delimiter)}", "the separator of the header row")
    if found.missing_values:
        out.add(6, f"missing_values: {_flow(list(found.missing_values))}",
                "cells read as a missing value")
    if found.id_column is not None:
        reason = next(c.reason for c in found.columns if c.type == "id")
        out.add(6, f"id_column: {quoted(found.id_column)}", f"{reason}: it names each "
                "row in predictions.csv")


def _image_source(out: _Lines, found: Inspection, path: str) -> None:
    out.add(2, "source:")
    out.add(4, "images:")
    out.add(6, f"dir: {path}", "one sub-folder per class; relative to this file's folder")
    for note in found.notes:
        out.note(6, f"{note[0].upper()}{note[1:]}.")
    height, width = found.image_size
    out.add(6, f"image_size: [{height}, {width}]", "[height, width]: every image is resized "
            "to it when read")
    out.add(6, f"color_mode: {found.color_mode}", "every image read is grayscale" if
            found.color_mode == "grayscale" else "colour images (3 channels)")


def _text_source(out: _Lines, found: Inspection, path: str) -> None:
    out.add(2, "source:")
    out.add(4, "text:")
    out.add(6, f"dir: {path}", "one sub-folder of .txt files per class; relative to this "
            "file's folder")


def _npz_source(out: _Lines, found: Inspection, path: str) -> None:
    out.add(2, "source:")
    out.add(4, f"npz: {path}", "arrays x and y (or x_train, y_train); relative to this "
            "file's folder")


def _labels(out: _Lines, found: Inspection) -> None:
    label = found.label
    if label.kind == "regression":
        out.add(2, "labels: {kind: regression, scale: standardize}",
                "the model learns the standardized target; metrics in its own units")
        out.note(2, f"The label: {label.reason}.")
        return
    if label.kind == "multi_label":
        extra = ", separator: \"|\"" if found.kind == "csv" else ""
        out.note(2, f"{label.units} labels ({label.reason}): "
                    f"{_counted(label.classes, label.counts)}.")
        out.add(2, f"labels: {{kind: multi_label{extra}}}")
        return
    classes = "classes" if found.kind in ("images", "text") else f"classes ({label.reason})"
    out.note(2, f"{label.units} {classes}: {_counted(label.classes, label.counts)}.")
    out.add(2, f"labels: {label.kind}")


def _feature_value(column: ColumnGuess) -> str:
    value = f"{{{column.type}: {_flow(column.kwargs)}}}" if column.kwargs else column.type
    if column.missing is None:
        return value
    policy = "{fill: unknown}" if column.missing == "fill" else column.missing
    inner = value if column.kwargs else f"{{{column.type}: {{}}}}"
    return f"{inner[:-1]}, missing: {policy}}}"


def _features(out: _Lines, found: Inspection) -> None:
    out.add(2, "features:", "each column's type (keras.utils.FeatureSpace's names)")
    for column in found.features:
        reason = column.reason
        if column.missing is not None:
            reason += {"mean": "; missing: the mean", "mode": "; missing: the most frequent",
                       "fill": "; missing: 'unknown'"}[column.missing]
        out.add(4, f"{quoted(column.name)}: {_feature_value(column)}", reason)
    skipped = [c for c in found.columns if c.type == "skip"]
    if skipped:
        out.note(2, "Left out (not features): " + ", ".join(
            f"{shown(c.name, 30)} ({c.reason})" for c in skipped) + ".")


def _split(out: _Lines, found: Inspection) -> None:
    share = 0.2 if found.examples < 1000 else 0.1
    stratified = found.label.kind in ("classes", "binary")
    how = "stratified by class" if stratified else "at random"
    if found.own_test_split:
        out.add(2, f"split: {{validation: {share}}}", f"the file's own x_test/y_test is the "
                f"test split; validation drawn {how}")
        return
    out.add(2, f"split: {{validation: {share}, test: {share}}}", f"of all examples, drawn "
            f"{how} with the seed")


def _preprocess(out: _Lines, found: Inspection) -> None:
    steps: list[tuple[str, str]] = []
    if found.kind == "csv" and not found.typed:
        steps.append(("normalize: {}", "each column's mean and variance, from the training "
                      "split"))
    elif found.kind == "images":
        steps.append(("rescale: 1/255", "pixels 0..255 -> 0..1"))
    elif found.kind == "text" or found.x_kind == "text":
        steps.append((f"TextVectorization: {{max_tokens: {found.max_tokens}, output_mode: "
                       f"int, output_sequence_length: {found.sequence_length}}}",
                       "token ids; most texts fit in the length"))
    elif found.kind == "npz" and found.x_kind == "image":
        if len(found.x_shape) == 2:
            steps.append((f"reshape: [{found.x_shape[0]}, {found.x_shape[1]}, 1]",
                          "one channel, as Conv2D takes images"))
        if found.pixels == "rescale":
            steps.append(("rescale: 1/255", "pixels 0..255 -> 0..1"))
        elif found.pixels == "normalize":
            steps.append(("normalize: {}", "mean and variance from the training split"))
    elif found.kind == "npz":
        if not found.x_shape:
            steps.append(("reshape: [1]", "one number an example: a vector of one"))
        elif len(found.x_shape) > 1:
            steps.append(("reshape: [-1]", "each example flattened to one vector"))
        steps.append(("normalize: {}", "each feature's mean and variance, from the training "
                      "split"))
    if not steps:
        return
    out.add(2, "preprocess:")
    for step, why in steps:
        out.add(4, f"- {step}", why)
    if found.kind == "images" or found.x_kind == "image":
        out.note(4, "Augmentation, on training batches only: - RandomFlip: {mode: horizontal}")


def _output_layer(found: Inspection) -> tuple[str, str]:
    kind, units = found.label.kind, found.label.units
    if kind == "regression":
        return "Dense: {units: 1}", "the target"
    if kind == "binary":
        return "Dense: {units: 1, activation: sigmoid}", "the probability of class 1"
    if kind == "multi_label":
        return (f"Dense: {{units: {units}, activation: sigmoid}}",
                "one independent probability per label")
    return f"Dense: {{units: {units}}}", "one logit per class (from_logits is inferred)"


def _conv_blocks(found: Inspection) -> int:
    height, width = found.image_size or (32, 32)
    return max(0, min(3, int(math.log2(max(1, min(height, width)))) - 2))


def _model(out: _Lines, found: Inspection) -> None:
    out.add(0, "model:")
    image = found.kind == "images" or found.x_kind == "image"
    text = found.kind == "text" or found.x_kind == "text"
    if image:
        blocks = _conv_blocks(found)
        out.add(2, "layers:", f"a small CNN: {max(1, blocks)} convolution block"
                f"{'s' if blocks > 1 else ''}, then global pooling")
        for block in range(max(1, blocks)):
            out.add(4, f"- Conv2D: {{filters: {16 * 2 ** block}, kernel_size: 3, padding: same, "
                       "activation: relu}")
            if blocks:
                out.add(4, "- MaxPooling2D: {pool_size: 2}")
        out.add(4, "- GlobalAveragePooling2D: {}", "any image size: one value per filter")
        out.add(4, "- Dropout: {rate: 0.2}")
    elif text:
        out.add(2, "layers:", "keras.io's text classifier: embeddings, averaged")
        out.add(4, f"- Embedding: {{input_dim: {found.max_tokens}, output_dim: 32}}",
                "input_dim: TextVectorization's max_tokens")
        out.add(4, "- GlobalAveragePooling1D: {}")
        out.add(4, "- Dense: {units: 32, activation: relu}")
    else:
        out.add(2, "layers:", "a small multi-layer perceptron for a table")
        out.add(4, "- Dense: {units: 64, activation: relu}")
        out.add(4, "- Dropout: {rate: 0.2}")
        out.add(4, "- Dense: {units: 32, activation: relu}")
    layer, why = _output_layer(found)
    out.add(4, f"- {layer}", why)


def _training(out: _Lines, found: Inspection) -> None:
    kind = found.label.kind
    loss, metrics = {
        "classes": ("sparse_categorical_crossentropy", "[accuracy]"),
        "binary": ("binary_crossentropy", "[accuracy]"),
        "multi_label": ("binary_crossentropy", "[accuracy, {name: auc}]"),
        "regression": ("mean_squared_error", "[mae]"),
    }[kind]
    why = {"classes": "class indices against the logits",
           "binary": "0/1 labels against one sigmoid",
           "multi_label": "one sigmoid per label",
           "regression": "a target: squared error"}[kind]
    out.add(0, f"loss: {loss}", why)
    rate = 0.001 if found.kind == "images" or found.x_kind == "image" else 0.01 \
        if found.kind == "text" or found.x_kind == "text" else 0.003
    out.add(0, f"optimizer: {{name: adam, learning_rate: {rate}}}")
    out.add(0, f"metrics: {metrics}", "mean absolute error, in the target's units"
            if kind == "regression" else "")
    out.blank()
    out.add(0, "train:")
    epochs = 100 if found.kind == "csv" or found.x_kind == "table" else 30
    out.add(2, f"epochs: {epochs}", "at most: early stopping ends sooner")
    out.add(2, "early_stopping: {monitor: val_loss, patience: 5, restore_best_weights: true}")
    counts = [c for c in found.label.counts if c] if kind in ("classes", "binary") else []
    if counts and len(counts) == len(found.label.counts) and max(counts) >= 4 * min(counts):
        out.add(2, "class_weight: balanced", f"the classes are unbalanced "
                f"({max(counts):,} against {min(counts):,})")


# --- the command's work -----------------------------------------------------------------

def scaffold(data: str | os.PathLike, output: Optional[str] = None,
             label: Optional[str] = None) -> Scaffold:
    """Inspect ``data`` and write the pipeline text for a file at ``output`` (or for
    standard output: paths then start from the current directory); the text is checked
    by the validator before it is returned.

    Raises:
        DataError: the data cannot be read or used (``inspect_data``).
        UsageError: ``label`` names no column.
    """
    from kerapipe.spec.issues import render
    from kerapipe.spec.validate import validate_text

    found = inspect_data(data, label)
    folder = os.path.dirname(os.path.abspath(output)) if output else os.getcwd()
    file_name = os.path.basename(output) if output else "pipeline.yaml"
    text = render_pipeline(found, folder, file_name)
    result = validate_text(text, output or "<kerapipe init>")
    if result.errors:
        raise DataError("kerapipe init could not write a valid pipeline for this data:\n"
                        + render(result.errors, "text", 1)
                        + "\nWrite those keys by hand, starting from a pipeline in "
                        "the README.")
    return Scaffold(found, text)


def write_new_file(path: str, text: str) -> None:
    """Write ``text`` to ``path``, which must not exist: a complete file or none (written
    to a temporary file beside it, then hard-linked into place, which fails when the
    name is taken, even by a file made meanwhile).

    Raises:
        OutputError: ``path`` exists, or its folder cannot be written.
    """
    import errno
    import tempfile

    from kerapipe.safe_io import current_umask

    taken = (f"{path} already exists; kerapipe init never overwrites a file. Choose another "
             "name, or remove it first.")
    if os.path.lexists(path):
        raise OutputError(taken)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}. Check that the "
                          "folder exists and is writable.") from err
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError as err:
            raise OutputError(taken) from err
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise OutputError(f"cannot write {path}: {err.strerror or err}.") from err
            # A file system without hard links: exclusive creation, then the text.
            _write_exclusive(path, text, taken)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}.") from err
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _write_exclusive(path: str, text: str, taken: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError as err:
        raise OutputError(taken) from err
    with os.fdopen(fd, "wb") as handle:
        handle.write(text.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
