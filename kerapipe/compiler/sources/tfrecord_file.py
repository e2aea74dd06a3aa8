"""The TFRecord source (``TfrecordFileSource``): files of ``tf.train.Example`` records with
a declared feature spec, streamed by tf.data (never all in memory).

The files are the matches of ``data.source.tfrecord.files`` (globs relative to the
pipeline file), in sorted order; each must resolve inside the pipeline's folder (links
included) and be a regular file. The first pass reads every record once but parses only
its label (and counts the records, file by file): a malformed record, a record without
the label and a file that is not TFRecord (or compressed otherwise than declared) are a
``DataError`` naming the file and the record. Only the labels stay in memory: an
example's place is its position across the files (record ``i`` of all the files in
sorted order, which is also its id), and each split reads the files again in tf.data,
keeping its own records (a mask by position) and parsing the declared input feature.
Training interleaves the files (parallel reads); ``features`` (predictions, which keep
the order of the split's ids) reads them in order. A record that the input feature
cannot be parsed from is found when tf.data fails on it and named
(``explain_decode_failure``).
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Optional

import numpy as np

from kerapipe.compiler.files import check_regular_file, scan_file
from kerapipe.compiler.sources import Source
from kerapipe.compiler.sources.raw import RawData
from kerapipe.errors import DataError
from kerapipe.spec.data_paths import data_glob
from kerapipe.spec.sources import TfrecordSource

MAX_TFRECORD_FILES = 100_000  # files one source may match
MAX_TFRECORD_RECORDS = 100_000_000  # records of all files (a label and a mask bit each in memory)
_FIRST_PASS_BATCH = 4096  # records parsed at once by the first pass
_INTERLEAVE_FILES = 8  # files training reads at once
# What TensorFlow says when a record cannot be read or parsed; other InvalidArgumentErrors
# (shapes, labels) are not worth a scan of every record.
_RECORD_MESSAGE = re.compile(r"Feature|Example|record|corrupt|Key:|parse", re.I)
_FIX = ("Each record must be a tf.train.Example holding the declared features "
        "(data.source.tfrecord.features) with their dtype and shape.")


class TfrecordFileSource(Source):
    """``source: {tfrecord: {files: data/*.tfrecord, features: {...}, label: y}}``."""

    kind = "tfrecord"
    examples_are = "TFRecord features"

    def __init__(self, spec, base_dir=".") -> None:
        super().__init__(spec, base_dir)
        self.files: list[str] = []  # set by load: the matched files, sorted
        self.counts: list[int] = []  # records in each file

    def load(self) -> RawData:
        options: TfrecordSource = self.options
        self.files = matched_files(options, self.base_dir)
        where = f"tfrecord:{', '.join(options.file_patterns)}"
        labels, self.counts = first_pass(self.files, options, self.base_dir)
        total = sum(self.counts)
        if total == 0:
            raise DataError(f"{where}: the {len(self.files)} file(s) hold no records.")
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(os.path.relpath(path, self.base_dir).encode("utf-8",
                                                                      "surrogateescape"))
            digest.update(bytes.fromhex(scan_file(path, where).sha256))
        feature = options.features[options.input_name]
        return RawData(np.arange(total, dtype=np.int64), labels, where=where,
                       names=(options.input_name, options.label, "", ""),
                       regression=False if labels.dtype.kind == "U" else None,
                       fingerprint=digest.hexdigest(),
                       description=f"{where} ({total:,} records in {len(self.files)} "
                                   f"file{'s' if len(self.files) != 1 else ''})",
                       example_shape=tuple(feature.shape))

    def arrange(self, indices: np.ndarray) -> np.ndarray:
        return np.sort(indices)  # streamed: each split's records in file order

    def features(self, split):
        """The split's input features, in the order of its ids (the files read in order)."""
        return self._records(split, in_order=True).map(
            lambda position, x: x, num_parallel_calls=_autotune())

    def examples(self, split, shuffle_files: bool = False, seed: Optional[int] = None):
        """The split's ``(x, y)``, the files interleaved; each label looked up by the
        record's position (``y`` as prepared: class indices or targets)."""
        from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
        import tensorflow as tf

        labels = np.zeros(sum(self.counts), dtype=split.y.dtype)
        labels[split.x] = split.y
        table = tf.constant(labels)
        return self._records(split, in_order=False).map(
            lambda position, x: (x, tf.gather(table, position)), num_parallel_calls=_autotune())

    def _records(self, split, in_order: bool):
        """``(position, input feature)`` of the split's records."""
        from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
        import tensorflow as tf

        options = self.options
        mask = np.zeros(sum(self.counts), dtype=bool)
        mask[split.x] = True
        keep = tf.constant(mask)
        offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        compression = options.compression or ""
        name = options.input_name
        spec = {name: fixed_len(options.features[name])}

        def read(path, offset):
            return tf.data.TFRecordDataset(path, compression_type=compression).enumerate().map(
                lambda i, record: (i + offset, record))

        files = tf.data.Dataset.from_tensor_slices((self.files, offsets))
        if in_order:
            records = files.flat_map(read)
        else:
            records = files.interleave(read, cycle_length=min(len(self.files),
                                                                _INTERLEAVE_FILES),
                                       num_parallel_calls=_autotune(), deterministic=True)
        return records.filter(lambda position, record: tf.gather(keep, position)).map(
            lambda position, record: (position, tf.io.parse_single_example(record, spec)[name]),
            num_parallel_calls=_autotune())

    def read_inputs(self, path, record: Optional[dict] = None):
        """A TFRecord file of inputs (any name but ``.npz`` and ``.csv``, which are read as
        for other runs), compressed as the pipeline declares: each record's input feature,
        parsed by the training spec; each one's id is its position in the file (from 0).

        Raises:
            DataError: naming the file and the record that cannot be read or parsed, or
                inputs beyond the memory bound of an .npz file's arrays.
        """
        source = os.fspath(path)
        if os.path.isdir(source) or source.endswith((".npz", ".csv")) \
                or not os.path.exists(source):
            return super().read_inputs(path, record)
        check_regular_file(source, source)
        return read_tfrecord_inputs(source, self.options)

    def explain_decode_failure(self, data, message: str, stage: str) -> Optional[DataError]:
        """The file and record whose input feature cannot be parsed, named."""
        if not _RECORD_MESSAGE.search(message or ""):
            return None
        options = self.options
        spec = {options.input_name: fixed_len(options.features[options.input_name])}
        for path in self.files:
            problem = _first_bad_record(path, options.compression, spec)
            if problem is not None:
                number, reason = problem
                return DataError(f"{_name(path, self.base_dir)}, record {number}: {reason}; "
                                 f"{stage} stopped at it. {_FIX}")
        return None


def _autotune():
    from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
    import tensorflow as tf

    return tf.data.AUTOTUNE


def _name(path: str, base: str) -> str:
    """A file as messages name it: relative to the pipeline's folder."""
    return os.path.relpath(path, base)


def fixed_len(feature):
    """The ``tf.io.FixedLenFeature`` of a declared feature (``TfrecordFeature``)."""
    from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
    import tensorflow as tf

    return tf.io.FixedLenFeature(list(feature.shape), tf.dtypes.as_dtype(feature.dtype))


def matched_files(options: TfrecordSource, base: str) -> list[str]:
    """The files the globs match, sorted, each a regular file whose real path is inside
    the pipeline's folder ``base``.

    Raises:
        DataError: a glob that matches nothing, a match outside the folder (through a
            link), a match that is not a regular file, more than ``MAX_TFRECORD_FILES``.
    """
    root = os.path.realpath(base)
    found: set[str] = set()
    for pattern in options.file_patterns:
        matches = data_glob(base, pattern)  # as validate's missing-data warning globs
        if not matches:
            raise DataError(f"{pattern}: matches no file (looked for "
                            f"{os.path.join(base, pattern)}). data.source.tfrecord.files is "
                            "relative to the pipeline file's folder; fix the glob.")
        for match in matches:
            real = os.path.realpath(match)
            if os.path.commonpath([real, root]) != root:
                raise DataError(f"{pattern}: {match} leads to {real}, outside the pipeline's "
                                f"folder {root}. kerapipe reads TFRecord files only inside "
                                "it, so that a link cannot make it read the rest of the file "
                                "system. Copy the files into the folder.")
            if os.path.isdir(match):
                continue  # `data/**` also matches folders
            check_regular_file(match, pattern)
            found.add(os.path.normpath(match))
        if len(found) > MAX_TFRECORD_FILES:
            raise DataError(f"{pattern}: the globs match more than {MAX_TFRECORD_FILES:,} "
                            "files, the most one TFRecord source reads. Write fewer, larger "
                            "files (a few hundred MB each is usual).")
    if not found:
        raise DataError(f"{', '.join(options.file_patterns)}: matches only folders; name the "
                        "TFRecord files, e.g. `data/*.tfrecord`.")
    return sorted(found)


def read_tfrecord_inputs(path: str, options: TfrecordSource) -> tuple[np.ndarray, list[str]]:
    """Every record's input feature of one TFRecord file (``predict``), held to the
    memory bound of the arrays of an .npz file (``npz_file.array_memory_bound``)."""
    from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
    import tensorflow as tf

    from kerapipe.compiler.files import size_text
    from kerapipe.compiler.sources.npz_file import array_memory_bound

    name = options.input_name
    spec = {name: fixed_len(options.features[name])}
    ds = tf.data.TFRecordDataset(path, compression_type=options.compression or "")
    batches = ds.batch(_FIRST_PASS_BATCH).map(
        lambda records: tf.io.parse_example(records, spec)[name])
    parts, held, bound = [], 0, array_memory_bound()
    try:
        for batch in batches.as_numpy_iterator():
            held += batch.nbytes if batch.dtype != object else sum(len(b) for b in batch)
            if held > bound:
                raise DataError(f"{path}: its inputs take more than {size_text(bound)}, the "
                                "most kerapipe holds in memory to predict. Split the file.")
            parts.append(batch)
    except tf.errors.DataLossError as err:
        raise DataError(f"{path}: cannot read its records ({_first_line(err.message)}). The "
                        "file is damaged, or not a TFRecord file compressed as "
                        "data.source.tfrecord.compression says.") from err
    except (tf.errors.InvalidArgumentError, UnicodeDecodeError) as err:
        problem = _first_bad_record(path, options.compression, spec)
        number, reason = problem if problem else (1, _reason(err))
        raise DataError(f"{path}, record {number:,}: {reason}. {_FIX}") from err
    if not parts:
        raise DataError(f"{path}: holds no records to predict.")
    x = np.concatenate(parts)
    if x.dtype == object:  # string features: str, the form Keras's predict takes
        x = np.array([_utf8(value, path, index) for index, value in enumerate(x)],
                     dtype=object)
    return x, [str(i) for i in range(len(x))]


def _utf8(value: bytes, path: str, index: int) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}, record {index + 1:,}: the text is not UTF-8 "
                        f"({value[:40]!r}).") from err


def first_pass(files: list[str], options: TfrecordSource, base: str
               ) -> tuple[np.ndarray, list[int]]:
    """Every record's label (int64, float32, or str for string labels) and each file's
    record count, reading each file once and parsing only the label.

    Raises:
        DataError: naming the file and the record that cannot be read, is no
            tf.train.Example or lacks the label; more than ``MAX_TFRECORD_RECORDS``.
    """
    from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
    import tensorflow as tf

    label = options.label
    spec = {label: fixed_len(options.features[label])}
    parts, counts, total = [], [], 0
    for path in files:
        count = 0
        ds = tf.data.TFRecordDataset(path, compression_type=options.compression or "")
        batches = ds.batch(_FIRST_PASS_BATCH).map(lambda records: tf.io.parse_example(
            records, spec)[label], num_parallel_calls=tf.data.AUTOTUNE)
        try:
            for batch in batches.as_numpy_iterator():
                parts.append(batch)
                count += len(batch)
                if total + count > MAX_TFRECORD_RECORDS:
                    raise DataError(f"{_name(path, base)}: the files hold more than "
                                    f"{MAX_TFRECORD_RECORDS:,} records, the most one TFRecord "
                                    "source reads (each record's label is kept in memory).")
        except tf.errors.DataLossError as err:
            raise DataError(f"{_name(path, base)}: cannot read record {count + 1:,} or a "
                            f"later one ({_first_line(err.message)}). The file is damaged, "
                            "or not a TFRecord file"
                            + (f" compressed with {options.compression}"
                               if options.compression else
                               " (if it is compressed, set data.source.tfrecord.compression "
                               "to GZIP or ZLIB)") + ".") from err
        except (tf.errors.InvalidArgumentError, UnicodeDecodeError) as err:
            # (TensorFlow's message quotes the record, which may not be UTF-8)
            problem = _first_bad_record(path, options.compression, spec)
            number, reason = problem if problem else (count + 1, _reason(err))
            raise DataError(f"{_name(path, base)}, record {number:,}: {reason}. {_FIX}") \
                from err
        counts.append(count)
        total += count
    labels = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    if labels.dtype.kind in "OS":  # string labels: tf.string comes back as bytes
        labels = _text_labels(labels, files, counts, base)
    return labels, counts


def _text_labels(labels: np.ndarray, files: list[str], counts: list[int], base: str
                 ) -> np.ndarray:
    """String labels as a str array, each UTF-8 (class names go into run.json)."""
    texts = []
    for position, value in enumerate(labels):
        try:
            texts.append(value.decode("utf-8"))
        except UnicodeDecodeError as err:
            index = int(np.searchsorted(np.cumsum(counts), position, side="right"))
            first = int(np.sum(counts[:index]))
            raise DataError(f"{_name(files[index], base)}, record {position - first + 1:,}: "
                            f"the label is not UTF-8 text ({value[:40]!r}). Write class "
                            "names as UTF-8, or labels as int64.") from err
    return np.array(texts, dtype=str)


def _first_bad_record(path: str, compression: Optional[str], spec: dict
                      ) -> Optional[tuple[int, str]]:
    """The first record of ``path`` (numbered from 1) whose features ``spec`` cannot be
    parsed from, with TensorFlow's reason; ``None`` when all can. One record at a time:
    run only after a batched read failed."""
    from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
    import tensorflow as tf

    ds = tf.data.TFRecordDataset(path, compression_type=compression or "")
    number = 0
    iterator = iter(ds)
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            return None
        except tf.errors.OpError as err:
            return number + 1, f"cannot be read ({_first_line(err.message)})"
        number += 1
        try:
            tf.io.parse_single_example(record, spec)
        except (tf.errors.InvalidArgumentError, ValueError) as err:
            return number, _reason(err)


def _reason(err: Exception) -> str:
    """TensorFlow's reason a record cannot be parsed, in one line."""
    if isinstance(err, UnicodeDecodeError):  # the message quoted bytes that are not UTF-8
        return "not a tf.train.Example (it cannot be parsed as one)"
    return _first_line(getattr(err, "message", None) or str(err))


def _first_line(message: str, most: int = 300) -> str:
    text = " ".join((message or "").strip().splitlines()[:1]) or "no reason given"
    return text if len(text) <= most else text[:most - 3] + "..."
