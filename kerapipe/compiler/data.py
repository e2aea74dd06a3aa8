"""Load the examples a pipeline names and split them: source -> ``LoadedData``.

One loader per source kind (bundled sample, keras.datasets, .npz, .csv, a folder of
images) returns the raw arrays; the shared code then checks labels and features,
applies ``pad_sequences`` (ragged sequences cannot become arrays without it) and makes
the shuffled, stratified train/validation/test splits with the pipeline's seed.
kerapipe's other preprocess steps run later, in tf.data. Bad data raises ``DataError``
with the file, what is wrong and how to fix it; never a bare traceback.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
import math
import os
import re
import zipfile
from array import array
import zlib
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Sequence

import numpy as np

from kerapipe.compiler.splits import stratified_split
from kerapipe.errors import DataError
from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.datasets import KERAS_DATASETS, SAMPLES
from kerapipe.spec.issues import did_you_mean
from kerapipe.spec.typed import looks_numeric
from kerapipe.spec.model import CsvSource, ImagesSource, NpzSource, PipelineSpec

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}

# Losses that fit a continuous target: with one of these, numeric labels stay float32.
REGRESSION_LOSSES = frozenset({
    "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError", "Huber", "LogCosh", "Poisson", "CosineSimilarity"})

# Class names of the keras.datasets whose classes have names (others use "0", "1", ...).
KERAS_CLASS_NAMES: dict[str, list[str]] = {
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                "truck"],
    "imdb": ["negative", "positive"],
}


@dataclass
class Split:
    """One split, raw (before kerapipe's preprocess steps, except pad_sequences).

    Args:
        x: numeric features; for image folders a 1-D array of file paths (str).
        y: int64 class indices for classification; float32 for regression.
    """

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class LoadedData:
    """The examples of a pipeline, split, with what the model needs to know about them."""

    train: Split
    validation: Optional[Split]
    test: Optional[Split]
    class_names: Optional[list[str]]
    num_classes: Optional[int]
    example_shape: tuple[int, ...]
    is_images: bool
    fingerprint: str
    description: str
    csv: Optional["CsvStream"] = None  # set for CSV sources: split x are row numbers


@dataclass
class _Raw:
    """What a loader returns: arrays before checks and splitting."""

    x: Any  # an ndarray, or an object array of ragged sequences
    y: np.ndarray
    x_test: Any = None
    y_test: Optional[np.ndarray] = None
    names: tuple[str, str, str, str] = ("x", "y", "x_test", "y_test")  # for messages
    where: str = ""  # the file or data set, for messages
    class_names: Optional[list[str]] = None  # fixed by the source (strings, image folders)
    num_classes: Optional[int] = None  # known count of a named data set
    regression: Optional[bool] = None  # fixed by the source; None: decided by the loss
    fingerprint: str = ""
    description: str = ""
    is_images: bool = False
    example_shape: Optional[tuple[int, ...]] = None
    lines: Optional[np.ndarray] = None  # CSV: the file line of each example, for messages
    csv: Optional["CsvStream"] = None  # CSV: x holds row numbers; tf.data reads the features


# --- public API ----------------------------------------------------------------------

def load_data(spec: PipelineSpec, base_dir: str | os.PathLike) -> LoadedData:
    """Load, check and split the examples that ``spec.data.source`` names.

    Args:
        spec: a validated pipeline.
        base_dir: folder that relative paths in the file are relative to (the pipeline
            file's folder).

    Raises:
        DataError: when the data is missing, unreadable or invalid.
    """
    source = spec.data.source
    base = os.fspath(base_dir)
    kind = source.kind
    if kind == "sample":
        raw = _load_sample(source.sample)
    elif kind == "keras":
        raw = _load_keras(source.keras.name, source.keras.num_words)
    elif kind == "npz":
        raw = _load_npz(source.npz, base)
    elif kind == "csv":
        raw = _load_csv(source.csv, base)
    else:
        raw = _load_images(source.images, base)

    regression = raw.regression if raw.regression is not None else _regression_loss(spec)
    pad_steps = [step.options for step in spec.data.preprocess if step.kind == "pad_sequences"]

    x, y = _prepare_x(raw.x, raw.names[0], raw, pad_steps), raw.y
    x_test = y_test = None
    if raw.x_test is not None:
        x_test = _prepare_x(raw.x_test, raw.names[2], raw, pad_steps)
        y_test = raw.y_test
    y, y_test, class_names, num_classes = _prepare_labels(raw, y, y_test, regression)

    split = spec.data.split
    if raw.x_test is not None:
        train_idx, val_idx = stratified_split(y, [split.validation], spec.seed, split.stratify)
        test = Split(x_test, y_test)
    else:
        train_idx, val_idx, test_idx = stratified_split(
            y, [split.validation, split.test], spec.seed, split.stratify)
        test = Split(x[test_idx], y[test_idx]) if split.test > 0 else None
    if len(train_idx) == 0:
        raise DataError(f"{raw.where}: no examples are left for training: {len(y)} examples "
                        f"with data.split validation={split.validation:g}"
                        + ("" if raw.x_test is not None else f", test={split.test:g}")
                        + ". Lower the fractions or add data.")
    if raw.csv is not None:  # streamed in file order: each split's rows ascending
        train_idx, val_idx = np.sort(train_idx), np.sort(val_idx)
        if raw.x_test is None and test is not None:
            test_idx = np.sort(test_idx)
            test = Split(x[test_idx], y[test_idx])
    validation = Split(x[val_idx], y[val_idx]) if split.validation > 0 else None

    # Images: (h, w, c) as decoded; arrays (padded sequences included): one row's shape.
    example_shape = raw.example_shape or tuple(int(d) for d in x.shape[1:])
    return LoadedData(train=Split(x[train_idx], y[train_idx]), validation=validation, test=test,
                      class_names=class_names, num_classes=num_classes,
                      example_shape=example_shape, is_images=raw.is_images,
                      fingerprint=raw.fingerprint, description=raw.description, csv=raw.csv)


def decode_image(path, image_size: Sequence[int], color_mode: str):
    """Read one image file for tf.data: decode, resize; float32 0..255, shape (h, w, c)."""
    import tensorflow as tf

    channels = CHANNELS[color_mode]
    height, width = int(image_size[0]), int(image_size[1])
    image = tf.io.decode_image(tf.io.read_file(path), channels=channels,
                               expand_animations=False)
    image = tf.image.resize(image, (height, width))
    image.set_shape((height, width, channels))
    return tf.cast(image, tf.float32)


def keras_cache_dir() -> str:
    """Where Keras keeps downloaded data sets (``$KERAS_HOME/datasets`` or ``~/.keras/...``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets")


# --- sources -------------------------------------------------------------------------

def _load_sample(name: str) -> _Raw:
    resource = importlib.resources.files("kerapipe.data") / f"{name}_sample.npz"
    with importlib.resources.as_file(resource) as path, np.load(path) as arrays:
        x, y = arrays["x"], arrays["y"]
    known = SAMPLES[name]
    return _Raw(x, y, where=f"sample:{name}", num_classes=known.num_classes,
                regression=known.num_classes is None, fingerprint=_hash_arrays(x, y),
                description=f"sample:{name} ({len(y):,} examples)")


def _load_keras(name: str, num_words: Optional[int]) -> _Raw:
    import keras

    kwargs = {"num_words": num_words} if num_words is not None and name in ("imdb", "reuters") \
        else {}
    try:
        (x, y), (x_test, y_test) = getattr(keras.datasets, name).load_data(**kwargs)
    except Exception as err:  # noqa: BLE001 - any download/unpack failure; not Ctrl-C
        raise DataError(
            f"keras:{name}: cannot load keras.datasets.{name} ({type(err).__name__}: {err}). "
            f"Keras downloads it once into {keras_cache_dir()}; connect once to download it, "
            "or use `source: {sample: mnist}` / an npz file.") from err
    known = KERAS_DATASETS[name]
    regression = known.num_classes is None
    class_names = None if regression else KERAS_CLASS_NAMES.get(name)
    description = (f"keras:{name} ({len(y):,} training + {len(y_test):,} test examples)")
    return _Raw(x, np.asarray(y), x_test, np.asarray(y_test),
                names=("x_train", "y_train", "x_test", "y_test"), where=f"keras:{name}",
                class_names=class_names, num_classes=known.num_classes, regression=regression,
                fingerprint=_hash_arrays(x, y, x_test, y_test), description=description)


def _resolve(base: str, path: str) -> str:
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def _missing_file(key: str, path: str, resolved: str) -> DataError:
    return DataError(f"{path}: no such file (looked for {resolved}). data.source.{key} is "
                     "relative to the pipeline file's folder; fix the path.")


def _load_npz(source: NpzSource, base: str) -> _Raw:
    path = _resolve(base, source.path)
    where = source.path
    if not os.path.isfile(path):
        raise _missing_file("npz.path", source.path, path)
    fix = "Save one with numpy.savez(path, x=features, y=labels)."
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{where}: not a NumPy .npz file ({err}). {fix}") from err
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"{where}: a single .npy array, not a .npz file of named arrays. {fix}")
    with loaded as npz:
        available = list(npz.files)
        arrays = {name: _read_npz_array(npz, name, where, fix) for name in available}

    def pick(explicit: Optional[str], defaults: tuple[str, str], what: str, key: str) -> str:
        if explicit is not None:
            name = explicit
        else:
            name = next((d for d in defaults if d in arrays), defaults[0])
        if name not in arrays:
            listing = ", ".join(f"{n} {tuple(arrays[n].shape)}" for n in available) or "nothing"
            hint = did_you_mean(name, available) if explicit is not None else ""
            names = " or ".join(f"'{d}'" for d in defaults) if explicit is None else f"'{name}'"
            raise DataError(f"{where}: no {what} array {names}.{hint} The file holds: "
                            f"{listing}. Set data.source.npz.{key} to the name of the {what} "
                            "array.")
        return name

    x_name = pick(source.x, ("x", "x_train"), "feature", "x")
    y_name = pick(source.y, ("y", "y_train"), "label", "y")
    x_test_name = y_test_name = None
    if x_name.endswith("_train") and y_name.endswith("_train"):
        x_test_name, y_test_name = x_name[:-6] + "_test", y_name[:-6] + "_test"
        has = (x_test_name in arrays, y_test_name in arrays)
        if has == (False, False):
            x_test_name = y_test_name = None
        elif has != (True, True):
            present, absent = (x_test_name, y_test_name) if has[0] else (y_test_name, x_test_name)
            raise DataError(f"{where}: has '{present}' but no '{absent}'; a test split needs "
                            f"both. Add '{absent}' to the file, or remove '{present}'.")
    raw = _Raw(arrays[x_name], arrays[y_name], where=where,
               names=(x_name, y_name, x_test_name or "", y_test_name or ""))
    _check_lengths(where, x_name, raw.x, y_name, raw.y)
    if x_test_name:
        raw.x_test, raw.y_test = arrays[x_test_name], arrays[y_test_name]
        _check_lengths(where, x_test_name, raw.x_test, y_test_name, raw.y_test)
    for name in filter(None, (x_name, x_test_name)):
        if arrays[name].dtype.kind not in "biuf":
            raise DataError(f"{where}: array '{name}' holds {arrays[name].dtype} values; "
                            "features must be numbers. Convert them before saving the file.")
    raw.fingerprint = _read_file(path).sha256
    total = len(raw.y) + (len(raw.y_test) if raw.y_test is not None else 0)
    raw.description = f"npz:{source.path} ({total:,} examples)"
    return raw


def _read_npz_array(npz: Any, name: str, where: str, fix: str) -> np.ndarray:
    try:
        return npz[name]
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise DataError(
                f"{where}: array '{name}' holds Python objects (e.g. sequences of different "
                "lengths); kerapipe does not unpickle data files, since that can run code. "
                "Save a numeric array instead (pad sequences with keras.utils.pad_sequences "
                "before numpy.savez).") from err
        raise DataError(f"{where}: cannot read array '{name}' ({err}). {fix}") from err
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"{where}: cannot read array '{name}' ({err}); the file looks "
                        f"damaged. {fix}") from err


def _check_lengths(where: str, x_name: str, x: np.ndarray, y_name: str, y: np.ndarray) -> None:
    if x.ndim == 0 or y.ndim == 0:
        scalar = x_name if x.ndim == 0 else y_name
        raise DataError(f"{where}: '{scalar}' is a single value, not one entry per example.")
    if len(x) != len(y):
        raise DataError(f"{where}: '{x_name}' has {len(x):,} examples but '{y_name}' has "
                        f"{len(y):,} labels; they must have the same length (one label per "
                        "example). Check that the arrays belong together.")
    if len(y) == 0:
        raise DataError(f"{where}: '{x_name}' and '{y_name}' hold no examples.")


_CSV_BLOCK = 4096  # lines per tf.data element while streaming a CSV


@dataclass(frozen=True)
class CsvStream:
    """How tf.data reads a CSV file's feature columns: streamed, never loaded whole.

    The first pass (``_load_csv``) checks every row and keeps only the labels; the
    features are parsed again by ``tf.io.decode_csv`` while training, in batches.
    """

    path: str
    delimiter: str
    feature_columns: tuple[int, ...]  # in the order the model sees them
    num_rows: int

    def features(self, rows: np.ndarray):
        """float32 feature vectors of data rows ``rows`` (ascending), in file order."""
        import tensorflow as tf

        selected = sorted(set(self.feature_columns))
        order = [selected.index(c) for c in self.feature_columns]
        wanted = np.zeros(self.num_rows, dtype=bool)
        wanted[np.asarray(rows, dtype=np.int64)] = True
        wanted = tf.constant(wanted)
        delimiter = self.delimiter

        def decode(lines):
            lines = tf.strings.regex_replace(lines, "\r$", "")
            columns = tf.io.decode_csv(lines, record_defaults=[[0.0]] * len(selected),
                                       field_delim=delimiter, select_cols=selected)
            return tf.gather(tf.stack(columns, axis=1), order, axis=1)

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
                .map(decode, num_parallel_calls=tf.data.AUTOTUNE).unbatch())


def _load_csv(source: CsvSource, base: str) -> _Raw:
    """Check every row of a CSV in one streaming pass; keep only labels and line numbers."""
    path = _resolve(base, source.path)
    where = source.path
    if not os.path.isfile(path):
        raise _missing_file("csv.path", source.path, path)
    line_numbers = array("l")
    label_codes = array("l")
    distinct: dict[str, int] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=source.delimiter)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{where}: the file is empty. A CSV source needs a header row "
                                "naming the columns, then one row per example.")
            header = [name.strip() for name in header]
            label_index, feature_indices = _csv_columns(where, header, source)
            previous_line = reader.line_num
            for row in reader:
                line = reader.line_num
                if line - previous_line > 1 and row:
                    raise DataError(f"{where}, line {previous_line + 1}: a quoted value spans "
                                    "several lines; kerapipe streams CSV files line by line. "
                                    "Put each example on one line.")
                previous_line = line
                if not row:
                    continue  # blank line
                _check_csv_row(where, line, row, header, feature_indices)
                label = row[label_index].strip()
                if not label:
                    raise DataError(f"{where}, line {line}, column '{header[label_index]}': an "
                                    "empty label. Every row needs a label.")
                label_codes.append(distinct.setdefault(label, len(distinct)))
                line_numbers.append(line)
    except UnicodeDecodeError as err:
        raise DataError(f"{where}: not UTF-8 text ({err}). Save the CSV as UTF-8.") from err
    except csv.Error as err:
        raise DataError(f"{where}: not a readable CSV file ({err}).") from err
    except OSError as err:
        raise DataError(f"{where}: cannot read the file ({err.strerror or err}).") from err
    if not label_codes:
        raise DataError(f"{where}: the file has a header row but no data rows.")

    count = len(label_codes)
    raw = _Raw(np.arange(count, dtype=np.int64), np.empty(0), where=where,
               names=("x", header[label_index], "", ""),
               lines=np.frombuffer(line_numbers, dtype=line_numbers.typecode).astype(np.int64),
               example_shape=(len(feature_indices),),
               csv=CsvStream(path, source.delimiter, tuple(feature_indices), count))
    codes = np.frombuffer(label_codes, dtype=label_codes.typecode).astype(np.int64)
    raw.y = _csv_labels(list(distinct), codes, raw)
    scan = _read_file(path, find_lone_cr=True)
    raw.fingerprint = scan.sha256
    if scan.lone_cr:
        raise DataError(f"{where}: its lines end with a lone carriage return (\\r, classic Mac "
                        "style); tf.data splits lines at \\n only, so the rows would not line "
                        "up. Save the file with \\n (or \\r\\n) line endings.")
    raw.description = f"csv:{source.path} ({count:,} examples, {len(feature_indices)} " \
                      "features, streamed)"
    return raw


def _check_csv_row(where: str, line: int, row: list[str], header: list[str],
                   feature_indices: list[int]) -> None:
    if len(row) != len(header):
        raise DataError(f"{where}, line {line}: {len(row)} fields, but the header has "
                        f"{len(header)} ({', '.join(header)}). Fix the row (a missing or "
                        "extra delimiter, or an unquoted delimiter inside a value).")
    for column in feature_indices:
        value = row[column]
        try:
            # tf.io.decode_csv parses ASCII numbers only: Python's float() also takes
            # `1_000` and other scripts' digits, which would fail mid-training
            number = float(value) if value.isascii() and "_" not in value else None
        except ValueError:
            number = None
        if number is None or not math.isfinite(number):
            problem = "an empty value" if not value.strip() else (
                f"{value!r}, which is not a finite number" if number is not None
                else f"{value!r}, which is not a number")
            raise DataError(f"{where}, line {line}, column '{header[column]}': "
                            f"{problem}. Feature columns must hold numbers; fix the value "
                            "or leave the column out of data.source.csv.features.")


def _csv_columns(where: str, header: list[str], source: CsvSource) -> tuple[int, list[int]]:
    listing = ", ".join(header)
    looks_like_data = all(looks_numeric(name) for name in header if name)
    no_header = (" The first row looks like data: add a header row naming the columns."
                 if looks_like_data else "")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise DataError(f"{where}: the header names {', '.join(map(repr, duplicates))} more "
                        "than once; give every column its own name.")
    if source.label not in header:
        raise DataError(f"{where}: no label column '{source.label}'."
                        f"{did_you_mean(source.label, header)} Columns: {listing}.{no_header} "
                        "Set data.source.csv.label to one of them.")
    label_index = header.index(source.label)
    if source.features is None:
        return label_index, [i for i in range(len(header)) if i != label_index]
    indices = []
    for name in source.features:
        if name not in header:
            raise DataError(f"{where}: no feature column '{name}'.{did_you_mean(name, header)} "
                            f"Columns: {listing}. Fix data.source.csv.features.")
        if name == source.label:
            raise DataError(f"{where}: column '{name}' is the label, so it cannot also be a "
                            "feature. Remove it from data.source.csv.features.")
        indices.append(header.index(name))
    return label_index, indices


def _csv_labels(distinct: list[str], codes: np.ndarray, raw: _Raw) -> np.ndarray:
    """Integer labels stay numbers; floats too (checked later); strings become classes.

    ``distinct`` holds each label text once, ``codes`` its position for every row.
    """
    try:
        values = np.array([int(label) for label in distinct], dtype=np.int64)
        return values[codes]
    except ValueError:
        pass
    if all(looks_numeric(label) for label in distinct):
        return np.array([float(label) for label in distinct], dtype=np.float64)[codes]
    raw.class_names = sorted(distinct)
    raw.regression = False
    rank = {name: i for i, name in enumerate(raw.class_names)}
    return np.array([rank[label] for label in distinct], dtype=np.int64)[codes]


def _load_images(source: ImagesSource, base: str) -> _Raw:
    root = _resolve(base, source.dir)
    where = source.dir
    if not os.path.isdir(root):
        raise DataError(f"{where}: no such folder (looked for {root}). data.source.images.dir "
                        "is relative to the pipeline file's folder; fix the path.")
    try:
        entries = sorted(os.listdir(root))
    except OSError as err:
        raise DataError(f"{where}: cannot read the folder ({err.strerror or err}).") from err
    class_names = [name for name in entries
                   if not name.startswith(".") and os.path.isdir(os.path.join(root, name))]
    layout = ("Put the images in one sub-folder per class, e.g. "
              f"{where}/cat/001.jpg and {where}/dog/001.jpg.")
    if not class_names:
        loose = [n for n in entries if n.lower().endswith(IMAGE_EXTENSIONS)]
        found = f" It holds {len(loose)} images but no sub-folders." if loose else ""
        raise DataError(f"{where}: no class sub-folders.{found} {layout}")
    paths: list[str] = []
    labels: list[int] = []
    for index, name in enumerate(class_names):
        class_dir = os.path.join(root, name)
        for folder, subdirs, files in os.walk(class_dir):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            for file in sorted(files):
                if file.lower().endswith(IMAGE_EXTENSIONS) and not file.startswith("."):
                    paths.append(os.path.join(folder, file))
                    labels.append(index)
    if not paths:
        raise DataError(f"{where}: no images in the class folders ({', '.join(class_names)}). "
                        f"Image files end in {', '.join(IMAGE_EXTENSIONS)}. {layout}")
    digest = hashlib.sha256()
    for path in paths:
        try:
            relative = os.path.relpath(path, root).replace(os.sep, "/").encode()
        except UnicodeEncodeError as err:
            raise DataError(f"{where}: the file name {path!r} is not valid UTF-8; rename "
                            "the file.") from err
        digest.update(relative + b"\0")
        try:
            scan = _read_file(path)
        except OSError as err:
            raise DataError(f"{where}: cannot read {path} ({err.strerror or err}).") from err
        problem = image_file_problem(scan.head, scan.tail, scan.size)
        if problem and find_undecodable_image([path], CHANNELS[source.color_mode]) is None:
            problem = None  # e.g. data appended after the end marker: TensorFlow reads it
        if problem:
            raise DataError(f"{where}: {path} is not a readable image: {problem}. Replace "
                            "or delete the file (a training run would stop at it).")
        digest.update(bytes.fromhex(scan.sha256))
    height, width = (int(d) for d in source.image_size)
    # An object array shares the path strings between the splits; a fixed-width str array
    # would take 4 bytes a character in every split's copy (tens of MiB at 100k files).
    return _Raw(np.array(paths, dtype=object), np.array(labels, dtype=np.int64), where=where,
                class_names=class_names, regression=False, fingerprint=digest.hexdigest(),
                description=f"images:{source.dir} ({len(paths):,} images, "
                            f"{len(class_names)} classes)", is_images=True,
                example_shape=(height, width, CHANNELS[source.color_mode]))


# --- checks shared by every source ---------------------------------------------------

def _regression_loss(spec: PipelineSpec) -> bool:
    entry = load_catalog().losses.get(spec.loss.name)
    return (entry.name if entry else spec.loss.name) in REGRESSION_LOSSES


def _is_ragged(x: Any) -> bool:
    return isinstance(x, (list, tuple)) or (isinstance(x, np.ndarray) and x.dtype == object)


def _prepare_x(x: Any, name: str, raw: _Raw, pad_steps: list) -> np.ndarray:
    """Pad sequences when asked; check that features are finite numbers."""
    where = raw.where
    if raw.csv is not None:
        if pad_steps:
            raise DataError(f"{where}: pad_sequences applies to sequences, not CSV columns. "
                            "Remove the `pad_sequences` step from data.preprocess.")
        return x  # row numbers: the first pass already checked every value
    if raw.is_images:
        if pad_steps:
            raise DataError(f"{where}: pad_sequences applies to sequences, not images. Remove "
                            "the `pad_sequences` step from data.preprocess.")
        return x
    if pad_steps:
        import keras

        padded: Any = list(x) if _is_ragged(x) else x
        for step in pad_steps:
            try:
                padded = keras.utils.pad_sequences(padded, maxlen=step.maxlen,
                                                   padding=step.padding,
                                                   truncating=step.truncating)
            except (ValueError, TypeError) as err:
                raise DataError(f"{where}: pad_sequences cannot pad '{name}' ({err}). It pads "
                                "sequences of numbers, e.g. word indices.") from err
        x = padded
    elif _is_ragged(x):
        lengths = sorted({len(item) for item in x[:1000] if hasattr(item, "__len__")})
        example = (f" (e.g. lengths {lengths[0]} and {lengths[-1]})" if len(lengths) > 1
                   else "")
        raise DataError(f"{where}: '{name}' holds sequences of different lengths{example}, "
                        "which cannot be batched as they are. Add a step that pads them to "
                        "one length to data.preprocess, e.g. `- pad_sequences: 200`.")
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where}: '{name}' holds {x.dtype} values; features must be numbers.")
    if x.dtype.kind == "f":
        _check_finite(where, name, x)
    if x.ndim == 1:
        x = x.reshape(-1, 1)  # one feature per example
    return x


def _locate(name: str, index: int, lines: Optional[np.ndarray] = None) -> str:
    """``'y[7]'``, or ``line 9, column 'label'`` for a CSV file."""
    if lines is not None:
        return f"line {int(lines[index])}, column '{name}'"
    return f"'{name}[{index}]'"


def _check_finite(where: str, name: str, values: np.ndarray,
                  lines: Optional[np.ndarray] = None) -> None:
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1) if len(values) else []
    if np.any(bad):
        first = int(np.flatnonzero(bad)[0])
        value = values[first].reshape(-1)[~np.isfinite(values[first].reshape(-1))][0]
        count = int(np.sum(bad))
        raise DataError(f"{where}: {_locate(name, first, lines)} holds {value} ({count:,} example"
                        f"{'s' if count != 1 else ''} with NaN or infinite values). Remove or "
                        "fill those examples before training.")


def _prepare_labels(raw: _Raw, y: np.ndarray, y_test: Optional[np.ndarray], regression: bool
                    ) -> tuple[np.ndarray, Optional[np.ndarray], Optional[list[str]],
                               Optional[int]]:
    """Labels as int64 class indices (or float32 targets), the class names and count."""
    y_name, y_test_name = raw.names[1], raw.names[3]
    if regression:
        out = []
        for name, labels in ((y_name, y), (y_test_name, y_test)):
            if labels is None:
                out.append(None)
                continue
            labels = np.asarray(labels)
            if labels.dtype.kind not in "biuf":
                raise DataError(f"{raw.where}: '{name}' holds {labels.dtype} values, but the "
                                "loss expects numeric targets.")
            labels = labels.astype(np.float32)
            _check_finite(raw.where, name, labels, raw.lines)
            out.append(labels)
        return out[0], out[1], None, None

    converted = []
    for name, labels in ((y_name, y), (y_test_name, y_test)):
        if labels is None:
            converted.append(None)
            continue
        converted.append(_class_indices(raw, name, np.asarray(labels)))
    y, y_test = converted
    class_names = raw.class_names  # string labels have just set them
    if raw.num_classes is not None:
        num_classes = raw.num_classes
    elif class_names is not None:
        num_classes = len(class_names)
    else:
        num_classes = int(max(y.max(), y_test.max() if y_test is not None else 0)) + 1
    for name, labels in ((y_name, y), (y_test_name, y_test)):
        if labels is not None and len(labels) and labels.max() >= num_classes:
            raise DataError(f"{raw.where}: '{name}' holds label {int(labels.max())}, but there "
                            f"are only {num_classes} classes (0..{num_classes - 1}).")
    if class_names is None:
        class_names = [str(i) for i in range(num_classes)]
    return y, y_test, list(class_names), num_classes


def _class_indices(raw: _Raw, name: str, labels: np.ndarray) -> np.ndarray:
    where = raw.where
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(f"{where}: '{name}' has shape {tuple(labels.shape)}; kerapipe expects "
                        "one class index per example. For one-hot labels, save "
                        "argmax(labels, axis=1) and add `- one_hot: {}` to data.preprocess.")
    if labels.dtype.kind in "US":
        if raw.class_names is None:
            raw.class_names = sorted({str(v) for v in labels.astype(str)})
        index = {c: i for i, c in enumerate(raw.class_names)}
        missing = sorted({str(v) for v in labels.astype(str)} - set(index))
        if missing:
            raise DataError(f"{where}: '{name}' holds labels {missing} that the training "
                            "labels do not have.")
        return np.array([index[str(v)] for v in labels.astype(str)], dtype=np.int64)
    if labels.dtype.kind == "b":
        return labels.astype(np.int64)
    if labels.dtype.kind == "f":
        _check_finite(where, name, labels, raw.lines)
        if not np.all(labels == np.round(labels)):
            first = int(np.flatnonzero(labels != np.round(labels))[0])
            raise DataError(f"{where}: float labels where classes are expected: "
                            f"{_locate(name, first, raw.lines)} is {labels[first]:g}. Use "
                            "whole-number class "
                            "indices, or a regression loss such as mean_squared_error for a "
                            "continuous target.")
    elif labels.dtype.kind not in "iu":
        raise DataError(f"{where}: '{name}' holds {labels.dtype} values; labels must be class "
                        "indices (whole numbers from 0) or class names.")
    labels = labels.astype(np.int64)
    if len(labels) and labels.min() < 0:
        first = int(np.flatnonzero(labels < 0)[0])
        raise DataError(f"{where}: {_locate(name, first, raw.lines)} is {labels[first]}; "
                        "class labels must be "
                        "whole numbers from 0 up. Shift them so the smallest is 0.")
    return labels


# --- fingerprints --------------------------------------------------------------------

_TAIL = 4096  # bytes kept from a file's end, where image formats put their end marker
_LONE_CR = re.compile(rb"\r(?!\n)")  # a line end that tf.data's TextLineDataset does not see


class FileScan(NamedTuple):
    """What one pass over a file's bytes found (``_read_file``)."""

    sha256: str
    head: bytes  # the first 32 bytes
    tail: bytes  # the last _TAIL bytes
    size: int
    lone_cr: bool  # a \r not followed by \n (only when asked for)


def _read_file(path: str, find_lone_cr: bool = False) -> FileScan:
    """Hash a file in one pass, keeping its head and tail (image checks) and, if asked,
    whether it has a lone carriage return (CSV checks), so no check reads it again."""
    digest = hashlib.sha256()
    head, tail, size, lone_cr, pending = b"", b"", 0, False, b""
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            head = head or chunk[:32]
            tail = (tail + chunk[-_TAIL:])[-_TAIL:]
            size += len(chunk)
            if find_lone_cr and not lone_cr:
                block = pending + chunk
                # a \r at the very end may be followed by \n in the next chunk: decide then
                searched, pending = ((block[:-1], block[-1:]) if block.endswith(b"\r")
                                     else (block, b""))
                lone_cr = bool(_LONE_CR.search(searched))
    return FileScan(digest.hexdigest(), head, tail, size, lone_cr or pending == b"\r")


def image_file_problem(head: bytes, tail: bytes, size: int) -> Optional[str]:
    """Why a file cannot be a whole PNG, JPEG, GIF or BMP image, or ``None``.

    A check of the signature and the end marker, made while the files are read for the
    fingerprint anyway: it finds empty, truncated and non-image files before training
    without decoding every image. A file it suspects is then decoded once, to be sure
    (some writers append data after the end marker). Damage inside a file is found when
    tf.data decodes it; see ``find_undecodable_image``.
    """
    if size == 0:
        return "the file is empty"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return None if tail.endswith(b"IEND\xaeB`\x82") else "a truncated PNG (no IEND chunk)"
    if head.startswith(b"\xff\xd8\xff"):
        return None if b"\xff\xd9" in tail else "a truncated JPEG (no end-of-image marker)"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return None if b";" in tail[-16:] else "a truncated GIF (no trailer byte)"
    if head.startswith(b"BM") and len(head) >= 6:
        declared = int.from_bytes(head[2:6], "little")
        return None if declared <= size else (f"a truncated BMP ({size} of {declared} "
                                              "bytes)")
    return (f"not a PNG, JPEG, GIF or BMP file (it starts with {head[:8]!r})")


def find_undecodable_image(paths: Sequence[str], channels: int) -> Optional[tuple[str, str]]:
    """The first image file that TensorFlow cannot decode, with its error, or ``None``.

    Run only after tf.data failed on a decode: one eager decode per file.
    """
    import tensorflow as tf

    for path in paths:
        try:
            tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as err:
            return str(path), err.message.strip().splitlines()[0]
    return None


def _hash_arrays(*arrays: Any) -> str:
    """sha256 of array contents (dtype, shape and bytes; ragged object arrays item by item)."""
    digest = hashlib.sha256()
    for values in arrays:
        values = np.asarray(values) if not _is_ragged(values) else values
        if _is_ragged(values):
            digest.update(f"ragged:{len(values)};".encode())
            for item in values:
                item = np.ascontiguousarray(np.asarray(item, dtype=np.int64))
                digest.update(f"{item.size};".encode())
                digest.update(item.tobytes())
        else:
            values = np.ascontiguousarray(values)
            digest.update(f"{values.dtype.str}{values.shape};".encode())
            digest.update(values.tobytes())
    return digest.hexdigest()
