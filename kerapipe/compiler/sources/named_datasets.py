"""The named data sets: kerapipe's bundled samples (``SampleSource``) and
``keras.datasets`` (``KerasDatasetSource``).

Their arrays come from NumPy files kerapipe or Keras wrote, their class counts (and for
some, class names) are known (``kerapipe.spec.known_datasets``); the fingerprint hashes
the arrays themselves. An example's id is its position in the arrays (in ``x_test`` for
a data set's own test split).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
from typing import Any, Optional

import numpy as np

from kerapipe.compiler.sources.arrays import ArraySource
from kerapipe.compiler.sources.raw import RawData, is_ragged
from kerapipe.errors import DataError
from kerapipe.spec.known_datasets import KERAS_DATASETS, SAMPLES

# Class names of the keras.datasets whose classes have names (others use "0", "1", ...).
KERAS_CLASS_NAMES: dict[str, list[str]] = {
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                "truck"],
    "imdb": ["negative", "positive"],
}


def keras_cache_dir() -> str:
    """Where Keras keeps downloaded data sets (``$KERAS_HOME/datasets`` or ``~/.keras/...``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets")


class SampleSource(ArraySource):
    """``source: {sample: mnist}``: a small real data set shipped inside kerapipe."""

    kind = "sample"

    def load(self) -> RawData:
        return load_sample(self.options)


class KerasDatasetSource(ArraySource):
    """``source: {keras: fashion_mnist}``: a keras.datasets set with its own test split."""

    kind = "keras"

    def load(self) -> RawData:
        return load_keras(self.options.name, self.options.num_words)


def load_sample(name: str) -> RawData:
    """A bundled sample (``source: {sample: mnist}``), shipped inside the package."""
    resource = importlib.resources.files("kerapipe.data") / f"{name}_sample.npz"
    with importlib.resources.as_file(resource) as path, np.load(path) as arrays:
        x, y = arrays["x"], arrays["y"]
    known = SAMPLES[name]
    return RawData(x, y, where=f"sample:{name}", num_classes=known.num_classes,
                   regression=known.num_classes is None, fingerprint=hash_arrays(x, y),
                   description=f"sample:{name} ({len(y):,} examples)")


def load_keras(name: str, num_words: Optional[int]) -> RawData:
    """A ``keras.datasets`` data set with its own test split (downloaded once by Keras)."""
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
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
    return RawData(x, np.asarray(y), x_test, np.asarray(y_test),
                   names=("x_train", "y_train", "x_test", "y_test"), where=f"keras:{name}",
                   class_names=class_names, num_classes=known.num_classes,
                   regression=regression, fingerprint=hash_arrays(x, y, x_test, y_test),
                   description=description)


def hash_arrays(*arrays: Any) -> str:
    """sha256 of array contents (dtype, shape and bytes; ragged object arrays item by item)."""
    digest = hashlib.sha256()
    for values in arrays:
        values = np.asarray(values) if not is_ragged(values) else values
        if is_ragged(values):
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
