"""The data sources of the pipeline format (``data.source``): one dataclass per kind,
and ``SourceSpec``, which holds exactly one of them.

Adding a kind: its dataclass and its field of ``SourceSpec`` here, a line in
``SourceSpec.kind``'s tuple, and its module in ``kerapipe/compiler/sources`` (registered
in that package's ``_KINDS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from kerapipe.spec.issues import Issue, Path, safe_repr
from kerapipe.spec.known_datasets import KERAS_DATASETS, SAMPLES, TEXT_DATASETS
from kerapipe.spec.steps import MAX_IMAGE_SIDE
from kerapipe.spec.steps import check_items as _check_items
from kerapipe.spec.typed import spec_field

SampleName = Literal[tuple(SAMPLES)]  # type: ignore[valid-type]
KerasDatasetName = Literal[tuple(KERAS_DATASETS)]  # type: ignore[valid-type]
MAX_WORDS = 10_000_000          # imdb has 88,584 distinct words, reuters 30,979


def check_path_text(values: dict, key: str, path: Path, issues: list[Issue]) -> None:
    """A path value holds no NUL byte or control character (the OS refuses a NUL)."""
    value = values.get(key)
    if isinstance(value, str) and any(ord(c) < 32 or ord(c) == 127 for c in value):
        issues.append(Issue("bad-path", path + (key,), "a path cannot hold a NUL byte or "
                            "another control character (tab, newline, ...). Remove it. "
                            f"Received: {key}={safe_repr(value)}"))


@dataclass(frozen=True)
class KerasSource:
    """A data set from keras.datasets, downloaded once into the Keras cache."""

    name: KerasDatasetName = spec_field(doc="Name of the keras.datasets module.")
    num_words: Optional[int] = spec_field(None, "imdb/reuters: keep only the most frequent "
                                          "words.", ge=1, le=MAX_WORDS)
    shorthand = "name"

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        name = values.get("name")
        if values.get("num_words") is not None and name in KERAS_DATASETS \
                and name not in TEXT_DATASETS:
            issues.append(Issue("not-applicable", path + ("num_words",),
                                f"num_words applies to {' and '.join(TEXT_DATASETS)} only, "
                                f"not '{name}'. Remove it."))


@dataclass(frozen=True)
class NpzSource:
    """A NumPy .npz file with arrays x/y, or x_train/y_train[/x_test/y_test]."""

    path: str = spec_field(doc="Path of the .npz file, relative to the pipeline file.")
    x: Optional[str] = spec_field(None, "Name of the feature array. Defaults to `x` "
                                  "(or `x_train`/`x_test`).")
    y: Optional[str] = spec_field(None, "Name of the label array. Defaults to `y` "
                                  "(or `y_train`/`y_test`).")
    shorthand = "path"

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        check_path_text(values, "path", path, issues)


@dataclass(frozen=True)
class CsvSource:
    """A CSV table with a header row: feature columns and one label column."""

    path: str = spec_field(doc="Path of the CSV file, relative to the pipeline file.")
    label: str = spec_field(doc="Name of the label column; string labels become class "
                            "indices in sorted order.")
    features: Optional[list[str]] = spec_field(None, "Feature columns. Defaults to every "
                                               "column but the label.", min_items=1)
    delimiter: str = spec_field(",", "Field delimiter: one printable ASCII character or a "
                                "tab, not `\"` (Python's and tf.data's CSV readers both read "
                                "the file).")
    id_column: Optional[str] = spec_field(None, "Column that names each row (never a "
                                          "feature): predictions.csv and `predict` show its "
                                          "value. Defaults to the row's line number.")

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        check_path_text(values, "path", path, issues)
        delimiter = values.get("delimiter")
        if isinstance(delimiter, str) and not (
                delimiter == "\t" or (len(delimiter) == 1 and " " <= delimiter <= "~"
                                       and delimiter != '"')):
            issues.append(Issue("bad-delimiter", path + ("delimiter",), "a CSV delimiter is "
                                "exactly one printable ASCII character or a tab, other than "
                                "'\"' (both CSV readers, Python's and tf.data's, must split "
                                "the file the same way), e.g. ',', ';', '|' or '\\t'. "
                                f"Received: delimiter={safe_repr(delimiter)}"))
        id_column, label = values.get("id_column"), values.get("label")
        if isinstance(id_column, str) and id_column == label:
            issues.append(Issue("not-applicable", path + ("id_column",), "the id column "
                                "names each row, so it cannot also be the label. Name another "
                                f"column, or remove id_column. Received: id_column="
                                f"{safe_repr(id_column)}"))
        features = values.get("features")
        if isinstance(id_column, str) and isinstance(features, list) and id_column in features:
            issues.append(Issue("not-applicable", path + ("id_column",), "the id column is "
                                "never a feature: remove it from data.source.csv.features, or "
                                f"remove id_column. Received: id_column={safe_repr(id_column)}"))


@dataclass(frozen=True)
class ImagesSource:
    """A folder of images with one sub-folder per class (keras.utils.image_dataset_from_directory)."""

    dir: str = spec_field(doc="Folder path, relative to the pipeline file.")
    image_size: list[int] = spec_field([256, 256], "Images are resized to [height, width] "
                                       f"when read (1 to {MAX_IMAGE_SIDE} pixels each).",
                                       min_items=2, max_items=2)
    color_mode: Literal["grayscale", "rgb", "rgba"] = spec_field("rgb", "Channels to read.")
    shorthand = "dir"

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        check_path_text(values, "dir", path, issues)
        _check_items(values, "image_size", 1, MAX_IMAGE_SIDE, path, issues)


@dataclass(frozen=True)
class SourceSpec:
    """Where the examples come from: exactly one kind of source."""

    sample: Optional[SampleName] = spec_field(None, "A small real data set shipped inside "
                                              "kerapipe (works offline): `mnist` is 5,000 MNIST "
                                              "digits.")
    keras: Optional[KerasSource] = spec_field(None, "A keras.datasets set by name, e.g. "
                                              "`fashion_mnist`.")
    npz: Optional[NpzSource] = spec_field(None, "A NumPy .npz file.")
    csv: Optional[CsvSource] = spec_field(None, "A CSV file with a label column.")
    images: Optional[ImagesSource] = spec_field(None, "A folder of images, one sub-folder per "
                                                "class.")
    exactly_one = True

    @property
    def kind(self) -> str:
        return next(k for k in ("sample", "keras", "npz", "csv", "images")
                    if getattr(self, k) is not None)
