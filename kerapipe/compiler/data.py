"""Load the examples a pipeline names and split them: source -> ``LoadedData``.

One loader per source kind (bundled sample, keras.datasets, .npz, .csv, a folder of
images) returns the raw arrays; the shared code then checks labels and features,
applies ``pad_sequences`` (ragged sequences cannot become arrays without it) and makes
the shuffled, stratified train/validation/test splits with the pipeline's seed.
kerapipe's other preprocess steps run later, in tf.data. Bad data raises ``DataError``
with the file, what is wrong and how to fix it; never a bare traceback.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib.resources
import math
import os
import re
import stat
import zipfile
import zlib
from array import array
from dataclasses import dataclass
from typing import Any, Callable, Iterator, NamedTuple, Optional, Sequence

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

# Bounds on what one value or one file can make kerapipe allocate (issue 10); the README's
# Reliability table names them.
MAX_CLASSES = 100_000  # class indices 0..MAX_CLASSES-1; also distinct class names
MAX_CSV_COLUMNS = 100_000  # columns of a CSV header
MAX_CSV_LINE_CHARS = 1 << 22  # characters of one CSV line (4 Mi), checked before parsing it
MAX_IMAGE_FILE_BYTES = 1 << 28  # 256 MiB: tf.data reads each image file whole
ARRAY_MEMORY_SHARE = 0.5  # of physical memory: what the arrays read from one .npz may take
_FLOAT32_MAX = float(np.finfo(np.float32).max)  # the model computes in float32

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
    label_text: Optional[Callable[[int], str]] = None  # CSV: a label as written, for messages


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
    if x_test is not None and raw.csv is None and not raw.is_images \
            and x_test.shape[1:] != x.shape[1:]:
        raise DataError(f"{raw.where}: '{raw.names[2]}' holds examples of shape "
                        f"{tuple(x_test.shape[1:])}, but '{raw.names[0]}' holds "
                        f"{tuple(x.shape[1:])}; test examples must have the shape the model "
                        "is trained on. Check that the arrays belong together.")
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
    if not all(d >= 1 for d in example_shape):  # TensorFlow crashed the process on (n, 0)
        raise DataError(f"{raw.where}: examples of shape {example_shape} hold no values (a "
                        "dimension of size 0). Each example needs at least one feature.")
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


# --- files: regular files only, opened without blocking ------------------------------

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _not_regular(where: str, path: str, mode: int) -> DataError:
    return DataError(f"{where}: {path} is {_kind(mode)}, not a regular file. kerapipe reads "
                     "data only from regular files (a FIFO or a device can block or never "
                     "end); replace it with a file, or remove it.")


def check_regular_file(path: str, where: str, key: str = "") -> None:
    """Refuse a path that is missing or is not a regular file (a FIFO, a device, a folder).

    Args:
        path: the path to check; a symbolic link is followed.
        where: how messages name the file.
        key: the spec key that holds the path (``npz.path``), for the missing-file message.
            Defaults to none.

    Raises:
        DataError: naming the path and what it is.
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError) as err:
        if key:
            raise _missing_file(key, where, path) from err
        raise DataError(f"{where}: no such file (looked for {path}).") from err
    except OSError as err:  # a link loop, no permission, a name too long
        raise DataError(f"{where}: cannot read {path} ({err.strerror or err}).") from err
    if not stat.S_ISREG(mode):
        raise _not_regular(where, path, mode)


def open_regular_file(path: str, where: str, max_bytes: Optional[int] = None) -> int:
    """A read-only descriptor of a regular file, opened without blocking.

    ``stat`` first, so that a device is never opened; then ``O_NONBLOCK`` (a FIFO put in
    its place meanwhile cannot block the open) and ``fstat`` of what was opened.

    Args:
        path: the file; a symbolic link is followed.
        where: how messages name the file.
        max_bytes: the largest size accepted. Defaults to any size.

    Raises:
        DataError: when it is missing, not a regular file, unreadable or too large.
    """
    check_regular_file(path, where)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise DataError(f"{where}: cannot read {path} ({err.strerror or err}).") from err
    info = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = _not_regular(where, path, info.st_mode)
    elif max_bytes is not None and info.st_size > max_bytes:
        problem = DataError(f"{where}: {path} holds {_size(info.st_size)}, more than the "
                            f"{_size(max_bytes)} kerapipe reads from one such file. Use a "
                            "smaller file.")
    if problem is not None:
        os.close(fd)
        raise problem
    return fd


def _size(count: int) -> str:
    if count >= 1 << 30:
        return f"{count / (1 << 30):,.1f} GiB"
    return f"{count / (1 << 20):,.1f} MiB"


def physical_memory() -> int:
    """Bytes of physical memory (8 GiB when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def array_memory_bound() -> int:
    """Bytes the arrays read from one .npz may take: ``ARRAY_MEMORY_SHARE`` of physical
    memory (checked from the file's headers, before anything is decompressed)."""
    return int(physical_memory() * ARRAY_MEMORY_SHARE)


# --- .npz files: the zip directory and .npy headers are checked before any array is read --

class NpyHeader(NamedTuple):
    """What an .npz member's .npy header declares, checked against the member's size."""

    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int  # memory the array takes once read


_NPZ_FIX = "Save one with numpy.savez(path, x=features, y=labels)."
_NPZ_READ_ERRORS = (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error,
                    NotImplementedError, RuntimeError)  # RuntimeError: an encrypted member


def npz_headers(path: str | os.PathLike, where: Optional[str] = None) -> dict[str, NpyHeader]:
    """The arrays of an .npz file, by name, from its zip directory and .npy headers only.

    Raises:
        DataError: when it is not a regular file, not an .npz file, holds Python objects,
            or a header does not match its member's size.
    """
    path = os.fspath(path)
    where = where or path
    with _open_npz(path, where) as archive:
        return _npy_headers(archive, where)


def read_npz(path: str | os.PathLike, names: Optional[Sequence[str]] = None,
             where: Optional[str] = None) -> dict[str, np.ndarray]:
    """Arrays of an .npz file, read without trusting it.

    The file must be a regular file; the zip directory and each .npy header are checked
    first: object arrays (pickles) are refused, a header must match its member's size,
    and the arrays asked for may take at most ``array_memory_bound()`` bytes together, so
    a small file that would inflate to gigabytes is refused before it is decompressed.
    Only the arrays asked for are read. Used for training data and by ``predict``.

    Args:
        path: the .npz file.
        names: the arrays to read. Defaults to every array in the file.
        where: how messages name the file. Defaults to ``path``.

    Returns:
        The arrays, by name, in the order asked for.

    Raises:
        DataError: naming the file, the array and what is wrong.
    """
    path = os.fspath(path)
    where = where or path
    with _open_npz(path, where) as archive:
        headers = _npy_headers(archive, where)
        wanted = list(headers) if names is None else list(names)
        for name in wanted:
            if name not in headers:
                listing = ", ".join(f"{n} {h.shape}" for n, h in headers.items()) or "nothing"
                raise DataError(f"{where}: no array '{name}'.{did_you_mean(name, headers)} "
                                f"The file holds: {listing}.")
        bound, total = array_memory_bound(), 0
        for name in wanted:
            total += headers[name].nbytes
            if total > bound:
                header = headers[name]
                raise DataError(
                    f"{where}: array '{name}' {header.shape} of {header.dtype} takes "
                    f"{_size(header.nbytes)} once decompressed"
                    + (f" ({_size(total)} with the arrays before it)"
                       if total != header.nbytes else "")
                    + f", more than the {_size(bound)} kerapipe reads from one .npz file "
                    f"({ARRAY_MEMORY_SHARE:.0%} of this machine's memory). Use a smaller file, "
                    "or a CSV source (data.source.csv), which is streamed in batches.")
        return {name: _read_member(archive, name, headers[name], where) for name in wanted}


@contextlib.contextmanager
def _open_npz(path: str, where: str) -> Iterator[zipfile.ZipFile]:
    with os.fdopen(open_regular_file(path, where), "rb") as handle:
        if handle.read(6) == b"\x93NUMPY":
            raise DataError(f"{where}: a single .npy array, not a .npz file of named arrays. "
                            f"{_NPZ_FIX}")
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
            raise DataError(f"{where}: not a NumPy .npz file ({err}). {_NPZ_FIX}") from err
        with archive:
            yield archive


def _npy_headers(archive: zipfile.ZipFile, where: str) -> dict[str, NpyHeader]:
    headers: dict[str, NpyHeader] = {}
    for info in archive.infolist():
        if info.is_dir() or not info.filename.endswith(".npy"):
            continue  # numpy.savez writes only .npy members; anything else is not an array
        name = info.filename[:-4]
        if info.flag_bits & 0x1:
            raise DataError(f"{where}: array '{name}' is encrypted. {_NPZ_FIX}")
        try:
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise ValueError(f".npy format version {version[0]}.{version[1]}, which "
                                     "holds no numeric array")
                offset = member.tell()
        except _NPZ_READ_ERRORS as err:
            raise DataError(f"{where}: cannot read array '{name}' ({err}); the file looks "
                            f"damaged. {_NPZ_FIX}") from err
        if dtype.hasobject:
            raise DataError(
                f"{where}: array '{name}' holds Python objects (e.g. sequences of different "
                "lengths); kerapipe does not unpickle data files, since that can run code. "
                "Save a numeric array instead (pad sequences with keras.utils.pad_sequences "
                "before numpy.savez).")
        nbytes = math.prod(shape) * dtype.itemsize
        if offset + nbytes != info.file_size:
            raise DataError(f"{where}: array '{name}' declares shape {tuple(shape)} of "
                            f"{dtype} ({nbytes:,} bytes), but its member holds "
                            f"{info.file_size - offset:,} bytes of data; the file looks "
                            f"damaged. {_NPZ_FIX}")
        headers[name] = NpyHeader(tuple(int(d) for d in shape), dtype, nbytes)
    return headers


def _read_member(archive: zipfile.ZipFile, name: str, header: NpyHeader,
                 where: str) -> np.ndarray:
    try:
        with archive.open(name + ".npy") as member:
            array_ = np.lib.format.read_array(member, allow_pickle=False)
    except _NPZ_READ_ERRORS as err:
        raise DataError(f"{where}: cannot read array '{name}' ({err}); the file looks "
                        f"damaged. {_NPZ_FIX}") from err
    if array_.shape != header.shape or array_.dtype != header.dtype:  # changed meanwhile
        raise DataError(f"{where}: array '{name}' changed while it was read; read it again.")
    return array_


def _load_npz(source: NpzSource, base: str) -> _Raw:
    path = _resolve(base, source.path)
    where = source.path
    check_regular_file(path, where, "npz.path")
    headers = npz_headers(path, where)
    available = list(headers)

    def pick(explicit: Optional[str], defaults: tuple[str, str], what: str, key: str) -> str:
        if explicit is not None:
            name = explicit
        else:
            name = next((d for d in defaults if d in headers), defaults[0])
        if name not in headers:
            listing = ", ".join(f"{n} {headers[n].shape}" for n in available) or "nothing"
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
        has = (x_test_name in headers, y_test_name in headers)
        if has == (False, False):
            x_test_name = y_test_name = None
        elif has != (True, True):
            present, absent = (x_test_name, y_test_name) if has[0] else (y_test_name, x_test_name)
            raise DataError(f"{where}: has '{present}' but no '{absent}'; a test split needs "
                            f"both. Add '{absent}' to the file, or remove '{present}'.")
    for name in filter(None, (x_name, x_test_name)):
        if headers[name].dtype.kind not in "biuf":
            raise DataError(f"{where}: array '{name}' holds {headers[name].dtype} values; "
                            "features must be numbers. Convert them before saving the file.")
    arrays = read_npz(path, [n for n in (x_name, y_name, x_test_name, y_test_name) if n],
                      where)
    raw = _Raw(arrays[x_name], arrays[y_name], where=where,
               names=(x_name, y_name, x_test_name or "", y_test_name or ""))
    _check_lengths(where, x_name, raw.x, y_name, raw.y)
    if x_test_name:
        raw.x_test, raw.y_test = arrays[x_test_name], arrays[y_test_name]
        _check_lengths(where, x_test_name, raw.x_test, y_test_name, raw.y_test)
    raw.fingerprint = _read_file(path, where).sha256
    total = len(raw.y) + (len(raw.y_test) if raw.y_test is not None else 0)
    raw.description = f"npz:{source.path} ({total:,} examples)"
    return raw


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
# Feature columns above which a quote-free CSV is split rather than decode_csv'd: the
# split costs about 1 us a row more at 16 columns, decode_csv's graph 1.7 ms a column.
_SPLIT_MIN_COLUMNS = 256


@dataclass(frozen=True)
class CsvStream:
    """How tf.data reads a CSV file's feature columns: streamed, never loaded whole.

    The first pass (``_load_csv``) checks every row and keeps only the labels; the
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

    def features(self, rows: np.ndarray):
        """float32 feature vectors of data rows ``rows`` (ascending), in file order."""
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
        import tensorflow as tf

        lines = tf.strings.regex_replace(lines, "\r$", "")
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


class _LastLine:
    """The line ``_csv_lines`` gave last, and how many it gave."""

    text = ""
    count = 0


def _csv_lines(handle: Any, where: str, last: _LastLine) -> Iterator[str]:
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


def _load_csv(source: CsvSource, base: str) -> _Raw:
    """Check every row of a CSV in one streaming pass; keep only labels and line numbers."""
    path = _resolve(base, source.path)
    where = source.path
    delimiter = source.delimiter
    _check_delimiter(where, delimiter)
    check_regular_file(path, where, "csv.path")
    line_numbers = array("l")
    label_codes = array("l")
    distinct: dict[str, int] = {}
    quoted = False
    try:
        with open(open_regular_file(path, where), newline="", encoding="utf-8-sig") as handle:
            lines = _LastLine()
            reader = csv.reader(_csv_lines(handle, where, lines), delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{where}: the file is empty. A CSV source needs a header row "
                                "naming the columns, then one row per example.")
            if reader.line_num > 1:
                raise DataError(f"{where}, line 1: the header row spans {reader.line_num} "
                                "lines (a quoted column name holds a line break); tf.data "
                                "skips one line as the header, so the rows would not line "
                                "up. Put the header on one line.")
            if not header:
                raise DataError(f"{where}, line 1: the first line is blank; it must be the "
                                "header row naming the columns. Remove the blank line.")
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
                if '"' in lines.text:
                    quoted = True
                    problem = _quoting_problem(lines.text, delimiter)
                    if problem:
                        raise DataError(
                            f"{where}, line {line}: {problem}. tf.data, which reads the rows "
                            "while training, parses quotes strictly: a value that holds a "
                            "quote is quoted whole, the quote doubled (\"O\"\"Brien\").")
                _check_csv_row(where, line, row, header, feature_indices)
                label = row[label_index].strip()
                if not label:
                    raise DataError(f"{where}, line {line}, column '{header[label_index]}': an "
                                    "empty label. Every row needs a label.")
                label_codes.append(distinct.setdefault(label, len(distinct)))
                line_numbers.append(line)
    except UnicodeDecodeError as err:
        raise _not_utf8(path, where) from err
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
               csv=CsvStream(path, delimiter, tuple(feature_indices), count, len(header),
                             quoted))
    codes = np.frombuffer(label_codes, dtype=label_codes.typecode).astype(np.int64)
    raw.y = _csv_labels(list(distinct), codes, raw)
    scan = _read_file(path, where, find_lone_cr=True)
    raw.fingerprint = scan.sha256
    if scan.lone_cr:
        raise DataError(f"{where}: its lines end with a lone carriage return (\\r, classic Mac "
                        "style); tf.data splits lines at \\n only, so the rows would not line "
                        "up. Save the file with \\n (or \\r\\n) line endings.")
    raw.description = f"csv:{source.path} ({count:,} examples, {len(feature_indices)} " \
                      "features, streamed)"
    return raw


def _check_delimiter(where: str, delimiter: str) -> None:
    # Python's csv module and tf.io.decode_csv agree on every other ASCII character (a test
    # tries each); these they read differently, or not at all.
    if len(delimiter) != 1 or not delimiter.isascii() or delimiter in '"\r\n':
        raise DataError(f"{where}: data.source.csv.delimiter {_shown(delimiter)} cannot be "
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
                        f"({_shown(line[start:start + 20])})")
        else:
            stop = line.find(delimiter, start)
            stop = end if stop < 0 else stop
            if '"' in line[start:stop]:
                return (f"a quote inside an unquoted value ({_shown(line[start:stop])}; "
                        "the quote must open the value)")
            start = stop
        if start >= end:
            return None
        start += 1  # past the delimiter


def _not_utf8(path: str, where: str) -> DataError:
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
        try:
            # tf.io.decode_csv parses ASCII numbers only: Python's float() also takes
            # `1_000` and other scripts' digits, which would fail mid-training
            number = float(value) if value.isascii() and "_" not in value else None
        except ValueError:
            number = None
        if number is None or not -_FLOAT32_MAX <= number <= _FLOAT32_MAX:  # NaN too
            problem = "an empty value" if not value.strip() else (
                f"{_shown(value)}, which is not a number" if number is None
                else f"{_shown(value)}, which is not a finite number" if not math.isfinite(number)
                else f"{_shown(value)}, which is beyond the float32 range (±3.4e+38) that "
                     "the model computes in")
            raise DataError(f"{where}, line {line}, column '{header[column]}': "
                            f"{problem}. Feature columns must hold numbers; fix the value "
                            "or leave the column out of data.source.csv.features.")


def _listing(names: Sequence[str], most: int = 20) -> str:
    """``a, b, c``; the first ``most`` names and a count when there are more."""
    if len(names) <= most:
        return ", ".join(names)
    return ", ".join(names[:most]) + f", ... ({len(names):,} columns)"


def _csv_columns(where: str, header: list[str], source: CsvSource) -> tuple[int, list[int]]:
    if len(header) > MAX_CSV_COLUMNS:
        raise DataError(f"{where}: the header has {len(header):,} columns, more than the "
                        f"{MAX_CSV_COLUMNS:,} kerapipe reads from a CSV file. Keep the columns "
                        "you need, or save wide data as .npz (data.source.npz).")
    position: dict[str, int] = {}
    duplicates: set[str] = set()
    for index, name in enumerate(header):  # one pass: a quadratic check took seconds
        if position.setdefault(name, index) != index:
            duplicates.add(name)
    if duplicates:
        shown = ", ".join(_shown(name) for name in sorted(duplicates)[:10])
        more = f" (and {len(duplicates) - 10:,} more)" if len(duplicates) > 10 else ""
        raise DataError(f"{where}: the header names {shown}{more} more than once; give every "
                        "column its own name.")
    listing = _listing(header)
    looks_like_data = all(looks_numeric(name) for name in header if name)
    no_header = (" The first row looks like data: add a header row naming the columns."
                 if looks_like_data else "")
    # did-you-mean compares with every column: bounded, it costs seconds at 100,000
    candidates = header if len(header) <= 10_000 else ()
    if source.label not in position:
        raise DataError(f"{where}: no label column '{source.label}'."
                        f"{did_you_mean(source.label, candidates)} Columns: {listing}."
                        f"{no_header} Set data.source.csv.label to one of them.")
    label_index = position[source.label]
    if source.features is None:
        features = [i for i in range(len(header)) if i != label_index]
        if not features:
            raise DataError(f"{where}: no feature columns: the header has only the label "
                            f"column '{source.label}'. A CSV source needs at least one column "
                            "of numbers beside the label.")
        return label_index, features
    indices = []
    for name in source.features:
        if name not in position:
            raise DataError(f"{where}: no feature column '{name}'."
                            f"{did_you_mean(name, candidates)} Columns: {listing}. Fix "
                            "data.source.csv.features.")
        if name == source.label:
            raise DataError(f"{where}: column '{name}' is the label, so it cannot also be a "
                            "feature. Remove it from data.source.csv.features.")
        indices.append(position[name])
    if not indices:
        raise DataError(f"{where}: no feature columns: data.source.csv.features is empty. "
                        "Name at least one column of numbers.")
    return label_index, indices


def _csv_labels(distinct: list[str], codes: np.ndarray, raw: _Raw) -> np.ndarray:
    """Integer labels stay numbers; floats too (checked later); strings become classes.

    ``distinct`` holds each label text once, ``codes`` its position for every row.
    """
    raw.label_text = lambda index: distinct[int(codes[index])]
    try:
        values: Optional[list[int]] = [int(label) for label in distinct]
    except ValueError:  # not whole numbers, or more digits than int() reads
        values = None
    if values is not None and all(-(1 << 63) <= v < (1 << 63) for v in values):
        return np.array(values, dtype=np.int64)[codes]
    if all(looks_numeric(label) for label in distinct):  # beyond int64 too: checked later
        return np.array([float(label) for label in distinct], dtype=np.float64)[codes]
    if len(distinct) > MAX_CLASSES:
        name = raw.names[1]
        raise DataError(f"{raw.where}: column '{name}' holds {len(distinct):,} different "
                        f"labels, more than the {MAX_CLASSES:,} classes kerapipe allows. Is "
                        f"'{name}' an id or a free-text column? Set data.source.csv.label to "
                        "the column of class names.")
    raw.class_names = sorted(distinct)
    raw.regression = False
    rank = {name: i for i, name in enumerate(raw.class_names)}
    return np.array([rank[label] for label in distinct], dtype=np.int64)[codes]


def _load_images(source: ImagesSource, base: str) -> _Raw:
    root = _resolve(base, source.dir)
    where = source.dir
    if any(int(d) < 1 for d in source.image_size):
        raise DataError(f"{where}: data.source.images.image_size {list(source.image_size)} "
                        "holds a size below 1; images are resized to [height, width], each "
                        "at least 1 pixel. Fix data.source.images.image_size.")
    if not os.path.isdir(root):
        raise DataError(f"{where}: no such folder (looked for {root}). data.source.images.dir "
                        "is relative to the pipeline file's folder; fix the path.")
    inside = os.path.realpath(root)
    entries = _folder_entries(root, where)
    class_names = []
    for entry in entries:
        if not entry.name.startswith(".") and _follows(entry, inside, inside, where):
            class_names.append(entry.name)
    layout = ("Put the images in one sub-folder per class, e.g. "
              f"{where}/cat/001.jpg and {where}/dog/001.jpg.")
    if not class_names:
        loose = [e.name for e in entries if e.name.lower().endswith(IMAGE_EXTENSIONS)]
        found = f" It holds {len(loose)} images but no sub-folders." if loose else ""
        raise DataError(f"{where}: no class sub-folders.{found} {layout}")
    paths: list[str] = []
    labels: list[int] = []
    for index, name in enumerate(class_names):
        found = _image_files(os.path.join(root, name), inside, where)
        paths.extend(found)
        labels.extend([index] * len(found))
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
        scan = _read_file(path, where, max_bytes=MAX_IMAGE_FILE_BYTES)
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


# --- folders: never left, regular files only -------------------------------------------
# A symbolic link is followed only when it resolves inside the data folder (the source's
# folder, itself resolved once); one that would be followed (a class folder, a sub-folder,
# an image file) and leads outside is refused, as is a link back to a folder that holds it
# (a cycle). Only regular files are read: an image-named FIFO, device or socket is refused.
# Other files are never opened, links among them never followed.

def image_files(folder: str | os.PathLike, where: Optional[str] = None) -> list[str]:
    """Every image file under ``folder`` (sub-folders too, in sorted order), by the policy
    above with ``folder`` as the data folder. Used by ``predict`` for a folder of images.

    Raises:
        DataError: for a link out of the folder, a cycle, or an image that is not a
            regular file.
    """
    folder = os.fspath(folder)
    where = where or folder
    return _image_files(folder, os.path.realpath(folder), where)


def _folder_entries(folder: str, where: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as listing:
            return sorted(listing, key=lambda entry: entry.name)
    except OSError as err:
        raise DataError(f"{where}: cannot read the folder {folder} ({err.strerror or err}).") \
            from err


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _follows(entry: os.DirEntry, inside: str, current: str, where: str) -> bool:
    """Whether ``entry`` is a folder to walk; refuses a link out of the data folder
    ``inside``, or back to ``current`` (the real path of the folder holding it) or above."""
    try:
        is_dir = entry.is_dir()
    except OSError:
        is_dir = False
    is_image = entry.name.lower().endswith(IMAGE_EXTENSIONS)
    if entry.is_symlink() and (is_dir or is_image):
        target = os.path.realpath(entry.path)
        if not _inside(target, inside):
            raise DataError(
                f"{where}: {entry.path} is a symbolic link to {target}, outside the data "
                f"folder {inside}. kerapipe follows links only within the data folder, so "
                "that a link cannot make it read the rest of the file system. Copy the files "
                "into the folder, or replace the link with them.")
        if is_dir and _inside(current, target):
            raise DataError(f"{where}: {entry.path} is a symbolic link to {target}, a folder "
                            "that holds the link itself (a cycle). Remove the link.")
    return is_dir


def _image_files(top: str, inside: str, where: str) -> list[str]:
    """Image files under ``top``: a folder's files (sorted), then each sub-folder, in the
    order ``os.walk`` gave (fingerprints of earlier runs stay the same)."""
    paths: list[str] = []
    walked: set[tuple[int, int]] = set()
    pending = [top]
    while pending:
        folder = pending.pop()
        try:
            info = os.stat(folder)
        except OSError as err:
            raise DataError(f"{where}: cannot read the folder {folder} "
                            f"({err.strerror or err}).") from err
        if (info.st_dev, info.st_ino) in walked:
            continue  # reached again through a link: walked once
        walked.add((info.st_dev, info.st_ino))
        current = os.path.realpath(folder)
        subfolders = []
        for entry in _folder_entries(folder, where):
            if entry.name.startswith("."):
                continue
            if _follows(entry, inside, current, where):
                subfolders.append(entry.path)
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                _check_image_entry(entry, where)
                paths.append(entry.path)
        pending.extend(reversed(subfolders))
    return paths


def _check_image_entry(entry: os.DirEntry, where: str) -> None:
    try:
        if entry.is_file():
            return
        mode = entry.stat().st_mode
    except FileNotFoundError as err:
        raise DataError(f"{where}: {entry.path} is a symbolic link to "
                        f"{os.path.realpath(entry.path)}, which does not exist. Remove the "
                        "link.") from err
    except OSError as err:
        raise DataError(f"{where}: cannot read {entry.path} ({err.strerror or err}).") from err
    raise _not_regular(where, entry.path, mode)


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
    if x.ndim == 1:
        x = x.reshape(-1, 1)  # one feature per example
    if 0 in x.shape[1:]:  # checked before any TensorFlow op: one crashed the process
        raise DataError(f"{where}: '{name}' has shape {tuple(x.shape)}, so its examples hold "
                        "no values (a dimension of size 0). Each example needs at least one "
                        "feature; check how the array was made.")
    if x.dtype.kind == "f":
        _check_finite(where, name, x)
        _check_float32(where, name, x)
    return x


def _locate(name: str, index: int, lines: Optional[np.ndarray] = None) -> str:
    """``'y[7]'``, or ``line 9, column 'label'`` for a CSV file."""
    if lines is not None:
        return f"line {int(lines[index])}, column '{name}'"
    return f"'{name}[{index}]'"


def _shown(value: Any, most: int = 60) -> str:
    """A value as a message shows it: numbers as they are (a NumPy scalar as its Python
    value, never a cast), text quoted, anything long cut to ``most`` characters."""
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value) if isinstance(value, (str, bytes)) else str(value)
    return text if len(text) <= most else text[:most] + f"... ({len(text):,} characters)"


def _written(text: str, most: int = 60) -> str:
    """A number as the file wrote it (a CSV label), cut to ``most`` characters."""
    return text if len(text) <= most else text[:most] + f"... ({len(text):,} characters)"


def _check_finite(where: str, name: str, values: np.ndarray,
                  lines: Optional[np.ndarray] = None,
                  text: Optional[Callable[[int], str]] = None) -> None:
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1) if len(values) else []
    if np.any(bad):
        first = int(np.flatnonzero(bad)[0])
        value = values[first].reshape(-1)[~np.isfinite(values[first].reshape(-1))][0]
        shown = _written(text(first)) if text else _shown(value)
        count = int(np.sum(bad))
        raise DataError(f"{where}: {_locate(name, first, lines)} holds {shown} ({count:,} "
                        f"example{'s' if count != 1 else ''} with NaN or infinite values). "
                        "Remove or fill those examples before training.")


def _check_float32(where: str, name: str, values: np.ndarray,
                   lines: Optional[np.ndarray] = None,
                   text: Optional[Callable[[int], str]] = None) -> None:
    """Finite values beyond float32, which the model computes in (they would become inf)."""
    if values.dtype.itemsize <= 4 or not len(values):
        return
    flat = values.reshape(len(values), -1)
    bad = (flat.max(axis=1) > _FLOAT32_MAX) | (flat.min(axis=1) < -_FLOAT32_MAX)
    if np.any(bad):
        first = int(np.flatnonzero(bad)[0])
        row = flat[first]
        value = row[np.abs(row) > _FLOAT32_MAX][0]
        shown = _written(text(first)) if text else _shown(value)
        raise DataError(f"{where}: {_locate(name, first, lines)} holds {shown}, beyond the "
                        "float32 range (±3.4e+38) that the model computes in. Scale the "
                        "values down (or remove that example) before training.")


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
            text = raw.label_text if name == y_name else None
            if labels.dtype.kind == "f":  # checked before the cast could make them inf
                _check_finite(raw.where, name, labels, raw.lines, text)
                _check_float32(raw.where, name, labels, raw.lines, text)
            out.append(labels.astype(np.float32))
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
            if len(raw.class_names) > MAX_CLASSES:
                raise DataError(f"{where}: '{name}' holds {len(raw.class_names):,} different "
                                f"labels, more than the {MAX_CLASSES:,} classes kerapipe "
                                "allows. Are they ids rather than classes?")
        index = {c: i for i, c in enumerate(raw.class_names)}
        missing = sorted({str(v) for v in labels.astype(str)} - set(index))
        if missing:
            raise DataError(f"{where}: '{name}' holds labels {missing} that the training "
                            "labels do not have.")
        return np.array([index[str(v)] for v in labels.astype(str)], dtype=np.int64)
    if labels.dtype.kind == "b":
        return labels.astype(np.int64)
    text = raw.label_text if name == raw.names[1] else None
    if labels.dtype.kind == "f":
        _check_finite(where, name, labels, raw.lines, text)
        if not np.all(labels == np.round(labels)):
            first = int(np.flatnonzero(labels != np.round(labels))[0])
            shown = _written(text(first)) if text else f"{labels[first]:g}"
            raise DataError(f"{where}: float labels where classes are expected: "
                            f"{_locate(name, first, raw.lines)} is {shown}. Use "
                            "whole-number class "
                            "indices, or a regression loss such as mean_squared_error for a "
                            "continuous target.")
    elif labels.dtype.kind not in "iu":
        raise DataError(f"{where}: '{name}' holds {labels.dtype} values; labels must be class "
                        "indices (whole numbers from 0) or class names.")
    # Checked on the values as they are: a cast to int64 wraps 2**63 and saturates 1e30.
    for bad, rule in ((labels < 0, "class labels must be whole numbers from 0 up. Shift them "
                                   "so the smallest is 0."),
                      (labels >= MAX_CLASSES,
                       f"a class index, but kerapipe allows at most {MAX_CLASSES:,} classes "
                       f"(0..{MAX_CLASSES - 1:,}): the model has one output per class. If "
                       "these are measurements or ids, not classes, use a regression loss "
                       "(e.g. `loss: mean_squared_error`); else number the classes 0, 1, "
                       "2, ...")):
        if len(labels) and np.any(bad):
            first = int(np.flatnonzero(bad)[0])
            shown = _written(text(first)) if text else _shown(labels[first])
            raise DataError(f"{where}: {_locate(name, first, raw.lines)} is {shown}; {rule}")
    return labels.astype(np.int64)


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


def _read_file(path: str, where: str, find_lone_cr: bool = False,
               max_bytes: Optional[int] = None) -> FileScan:
    """Hash a regular file in one pass, keeping its head and tail (image checks) and, if
    asked, whether it has a lone carriage return (CSV checks), so no check reads it again.

    Raises:
        DataError: when it is not a regular file, cannot be read or exceeds ``max_bytes``.
    """
    digest = hashlib.sha256()
    head, tail, size, lone_cr, pending = b"", b"", 0, False, b""
    try:
        with os.fdopen(open_regular_file(path, where, max_bytes), "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
                head = head or chunk[:32]
                tail = (tail + chunk[-_TAIL:])[-_TAIL:]
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:  # it grew while read
                    raise DataError(f"{where}: {path} holds more than the "
                                    f"{_size(max_bytes)} kerapipe reads from one such file.")
                if find_lone_cr and not lone_cr:
                    block = pending + chunk
                    # a \r at the very end may be followed by \n in the next chunk: decide then
                    searched, pending = ((block[:-1], block[-1:]) if block.endswith(b"\r")
                                         else (block, b""))
                    lone_cr = bool(_LONE_CR.search(searched))
    except OSError as err:
        raise DataError(f"{where}: cannot read {path} ({err.strerror or err}).") from err
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
