"""The TensorFlow Datasets source (``TfdsDatasetSource``): a TFDS set by name, streamed
from the files TFDS prepared.

``tensorflow-datasets`` is an optional extra (``pip install kerapipe[tfds]``); without it,
and offline before the set was downloaded, ``load`` is a ``DataError`` that says so
(the install command, the cache folder), never a traceback. The set's supervised keys
give the feature and the label. As for TFRecord files, a first pass reads only the
labels (images are not decoded: ``tfds.decode.SkipDecoding``) to count the examples and
draw stratified splits; each split then reads the set again in tf.data (in TFDS's file
order, ``shuffle_files=False``), keeping its own examples by position. An example's id is
its position in ``split`` (then, for ``test_split``, in that split).
"""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from kerapipe.compiler.sources import Source
from kerapipe.compiler.sources.raw import RawData
from kerapipe.errors import DataError

INSTALL = "pip install kerapipe[tfds]"  # the optional extra that brings tensorflow-datasets
MAX_TFDS_EXAMPLES = 100_000_000  # examples of one set (a label each is kept in memory)
_FIRST_PASS_BATCH = 4096


def tfds_cache_dir() -> str:
    """Where TFDS keeps prepared data sets (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``)."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(os.path.expanduser("~"),
                                                           "tensorflow_datasets")


def import_tfds(where: str) -> Any:
    """The ``tensorflow_datasets`` module.

    Raises:
        DataError: when it is not installed, with the command that installs it.
    """
    from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)

    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise DataError(f"{where}: needs TensorFlow Datasets (the tensorflow-datasets "
                        f"package), an optional extra of kerapipe: `{INSTALL}`. Or use "
                        "another data source, e.g. `source: {keras: mnist}`.") from err
    return tfds


class TfdsDatasetSource(Source):
    """``source: {tfds: mnist}``: a TensorFlow Datasets set, streamed."""

    kind = "tfds"
    examples_are = "TFDS examples"

    def __init__(self, spec, base_dir=".") -> None:
        super().__init__(spec, base_dir)
        self.builder: Any = None  # set by load
        self.sizes: list[int] = []  # examples of split, test_split
        self.keys: tuple[str, str] = ("", "")  # the supervised (feature, label) keys

    @property
    def where(self) -> str:
        return f"tfds:{self.options.name}"

    @property
    def splits(self) -> list[str]:
        """The TFDS splits read: ``split``, then ``test_split`` when given."""
        options = self.options
        return [options.split] + ([options.test_split] if options.test_split else [])

    def load(self) -> RawData:
        tfds = import_tfds(self.where)
        self.builder = prepared_builder(tfds, self.options.name, self.where)
        info = self.builder.info
        keys = info.supervised_keys
        if not (isinstance(keys, tuple) and len(keys) == 2
                and all(isinstance(k, str) for k in keys)):
            raise DataError(f"{self.where}: the set declares no (feature, label) pair "
                            "(TFDS's supervised_keys), so kerapipe cannot tell what to learn "
                            "from what. Choose a supervised set, e.g. mnist or "
                            "imdb_reviews/plain_text.")
        self.keys = keys
        feature = info.features[keys[0]]
        shape = tuple(getattr(feature, "shape", ()) or ())
        if any(d is None for d in shape):
            raise DataError(f"{self.where}: its '{keys[0]}' examples vary in shape "
                            f"{shape}; kerapipe takes examples of one shape. Choose a set "
                            "(or a config) whose examples have one size.")
        labels = [self._labels(tfds, split) for split in self.splits]
        self.sizes = [len(part) for part in labels]
        if self.sizes[0] == 0:
            raise DataError(f"{self.where}: the split '{self.splits[0]}' holds no examples.")
        names = getattr(info.features[keys[1]], "names", None)
        counts = " + ".join(f"{n:,} {s}" for n, s in zip(self.sizes, self.splits))
        raw = RawData(np.arange(self.sizes[0], dtype=np.int64), labels[0], where=self.where,
                      names=(keys[0], keys[1], keys[0] + "_test", keys[1] + "_test"),
                      class_names=list(names) if names else None,
                      num_classes=len(names) if names else None,
                      regression=False if names else None,
                      fingerprint=f"tfds:{self.options.name}:{info.version}:"
                                  f"{','.join(self.splits)}",
                      description=f"{self.where} ({counts})",
                      example_shape=shape)
        if len(labels) > 1:
            raw.x_test = np.arange(self.sizes[0], sum(self.sizes), dtype=np.int64)
            raw.y_test = labels[1]
            raw.test_ids = np.arange(self.sizes[1], dtype=np.int64)
        return raw

    def _labels(self, tfds: Any, split: str) -> np.ndarray:
        """Every label of ``split``, the features left undecoded where TFDS can skip it."""
        from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
        import tensorflow as tf

        feature = self.builder.info.features[self.keys[0]]
        skippable = tuple(getattr(tfds.features, n) for n in ("Image", "Video")
                          if hasattr(tfds.features, n))
        decoders = ({self.keys[0]: tfds.decode.SkipDecoding()}
                    if skippable and isinstance(feature, skippable) else None)
        try:
            ds = self.builder.as_dataset(split=split, shuffle_files=False, as_supervised=True,
                                         decoders=decoders)
            parts, count = [], 0
            for batch in ds.map(lambda x, y: y).batch(_FIRST_PASS_BATCH).as_numpy_iterator():
                parts.append(batch)
                count += len(batch)
                if count > MAX_TFDS_EXAMPLES:
                    raise DataError(f"{self.where}: the split '{split}' holds more than "
                                    f"{MAX_TFDS_EXAMPLES:,} examples, the most kerapipe reads "
                                    "from one set. Take a slice, e.g. `train[:10%]`.")
        except (ValueError, KeyError, tf.errors.OpError) as err:
            raise DataError(f"{self.where}: cannot read the split '{split}' "
                            f"({type(err).__name__}: {_first_line(str(err))}). The set's "
                            f"splits: {', '.join(self.builder.info.splits)}; a slice is "
                            "written `train[:80%]`.") from err
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def arrange(self, indices: np.ndarray) -> np.ndarray:
        return np.sort(indices)  # streamed: each split's examples in TFDS's order

    def features(self, split):
        return self._examples(split).map(lambda position, x, y: x)

    def examples(self, split, shuffle_files: bool = False, seed: Optional[int] = None):
        from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
        import tensorflow as tf

        labels = np.zeros(sum(self.sizes), dtype=split.y.dtype)
        labels[split.x] = split.y
        table = tf.constant(labels)
        return self._examples(split).map(lambda position, x, y: (x, tf.gather(table, position)))

    def _examples(self, split):
        """``(position, x, y)`` of the split's examples, from the TFDS splits that hold
        them (positions past ``split``'s are ``test_split``'s)."""
        from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
        import tensorflow as tf

        mask = np.zeros(sum(self.sizes), dtype=bool)
        mask[split.x] = True
        keep = tf.constant(mask)
        offset, parts = 0, []
        for name, size in zip(self.splits, self.sizes):
            if mask[offset:offset + size].any():  # a split that holds none is not read
                ds = self.builder.as_dataset(split=name, shuffle_files=False,
                                             as_supervised=True)
                parts.append(_positioned(ds, offset))
            offset += size
        records = parts[0]
        for part in parts[1:]:
            records = records.concatenate(part)
        return records.filter(lambda position, x, y: tf.gather(keep, position))


def _positioned(ds, start: int):
    """``(position, x, y)`` of a TFDS split's ``(x, y)``, positions from ``start``."""
    return ds.enumerate().map(lambda i, xy: (i + start, xy[0], xy[1]))


def prepared_builder(tfds: Any, name: str, where: str) -> Any:
    """The TFDS builder of ``name``, its data downloaded and prepared (once, online).

    Raises:
        DataError: an unknown name (with TFDS's suggestion), or a download that failed
            (offline), naming the cache folder.
    """
    not_found = getattr(getattr(tfds, "core", None), "DatasetNotFoundError", ())
    try:
        builder = tfds.builder(name)
    except Exception as err:  # noqa: BLE001 - TFDS raises many kinds; never Ctrl-C
        if not_found and isinstance(err, not_found):
            raise DataError(f"{where}: TensorFlow Datasets has no set '{name}' "
                            f"({_first_line(str(err))}). The catalogue: "
                            "https://www.tensorflow.org/datasets/catalog/overview") from err
        raise _download_error(where, name, err) from err
    try:
        builder.download_and_prepare()
    except Exception as err:  # noqa: BLE001 - any download/prepare failure; not Ctrl-C
        raise _download_error(where, name, err) from err
    return builder


def _download_error(where: str, name: str, err: Exception) -> DataError:
    return DataError(f"{where}: cannot load TensorFlow Datasets '{name}' "
                     f"({type(err).__name__}: {_first_line(str(err))}). TFDS downloads it "
                     f"once into {tfds_cache_dir()} (TFDS_DATA_DIR); connect once to "
                     "download it, or use `source: {sample: mnist}` / an npz file.")


def _first_line(message: str, most: int = 300) -> str:
    text = " ".join((message or "").strip().splitlines()[:1]) or "no reason given"
    return text if len(text) <= most else text[:most - 3] + "..."
