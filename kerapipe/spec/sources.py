"""The data sources of the pipeline format (``data.source``): one dataclass per kind,
and ``SourceSpec``, which holds exactly one of them.

Adding a kind: its dataclass and its field of ``SourceSpec`` here, a line in
``SourceSpec.kind``'s tuple, and its module in ``kerapipe/compiler/sources`` (registered
in that package's ``_KINDS``).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Literal, Optional, Sequence, Union

from kerapipe.spec.issues import Issue, Path, safe_repr
from kerapipe.spec.known_datasets import KERAS_DATASETS, SAMPLES, TEXT_DATASETS
from kerapipe.spec.steps import MAX_IMAGE_SIDE
from kerapipe.spec.steps import check_items as _check_items
from kerapipe.spec.typed import parse_spec, spec_field

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
    sample_weight: Optional[str] = spec_field(
        None, "Name of an array of one weight per training example (finite, at least 0; "
        "the length of the training arrays), multiplying its loss in training only.")
    shorthand = "path"

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        check_path_text(values, "path", path, issues)
        weight = values.get("sample_weight")
        if isinstance(weight, str) and weight in {values.get("x") or "x", values.get("y") or "y",
                                                  "x_train", "y_train", "x_test", "y_test"}:
            issues.append(Issue("not-applicable", path + ("sample_weight",), f"'{weight}' is "
                                "an array of features or labels; sample weights are an array "
                                "of their own, one weight per training example, e.g. "
                                f"numpy.savez(path, x=..., y=..., w=...). Received: "
                                f"sample_weight={safe_repr(weight)}"))


@dataclass(frozen=True)
class CsvSource:
    """A CSV table with a header row: feature columns and one label column."""

    path: str = spec_field(doc="Path of the CSV file, relative to the pipeline file.")
    label: Union[str, list[str]] = spec_field(
        doc="Name of the label column; string labels become class indices in sorted order. "
        "A list names several 0/1 columns, one per label: a multi-label set (`data.labels: "
        "multi_label`), the columns' names its labels.", json_schema={"anyOf": [
            {"type": "string"}, {"type": "array", "items": {"type": "string"},
                                 "minItems": 2, "maxItems": 10000}]})
    features: Optional[list[str]] = spec_field(None, "Feature columns. Defaults to every "
                                               "column but the label.", min_items=1)
    delimiter: str = spec_field(",", "Field delimiter: one printable ASCII character or a "
                                "tab, not `\"` (Python's and tf.data's CSV readers both read "
                                "the file).")
    id_column: Optional[str] = spec_field(None, "Column that names each row (never a "
                                          "feature): predictions.csv and `predict` show its "
                                          "value. Defaults to the row's line number.")
    sample_weight: Optional[str] = spec_field(
        None, "Column of a weight per example (a finite number, at least 0), multiplying "
        "its loss in training only; never a feature nor the label.")
    missing_values: list[str] = spec_field(
        [""], "Cell texts that mean a value is missing (compared after stripping spaces), "
        "e.g. `[\"\", NA, \"?\"]`; what a missing value of a typed feature becomes is its "
        "`missing:` policy (data.features). Without data.features a missing value is an "
        "error, as any cell that is not a number.", max_items=100)

    @property
    def label_columns(self) -> list[str]:
        """The label column, or the several 0/1 columns of a multi-label set, as a list."""
        return [self.label] if isinstance(self.label, str) else list(self.label or ())

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
        labels = label if isinstance(label, list) else [label]
        if isinstance(label, list) and (len(label) < 2 or len(set(label)) != len(label)):
            issues.append(Issue("wrong-type", path + ("label",), "a list of label columns "
                                "names at least two different 0/1 columns (a multi-label "
                                "set); for one label column, give its name. Received: "
                                f"label={safe_repr(label)}"))
        features = values.get("features")
        if isinstance(label, list) and isinstance(features, list):
            for name in sorted(set(features) & set(label)):
                issues.append(Issue("not-applicable", path + ("features",), f"'{name}' is "
                                    "a label column, so it cannot also be a feature. Remove "
                                    "it from data.source.csv.features.", at_key=True))
        if isinstance(id_column, str) and id_column in labels:
            issues.append(Issue("not-applicable", path + ("id_column",), "the id column "
                                "names each row, so it cannot also be the label. Name another "
                                f"column, or remove id_column. Received: id_column="
                                f"{safe_repr(id_column)}"))
        weight = values.get("sample_weight")
        if isinstance(weight, str) and (weight in labels or weight == id_column
                                        or weight in (features or [])):
            role = ("the label" if weight in labels else "the id column"
                    if weight == id_column else "a feature")
            issues.append(Issue("not-applicable", path + ("sample_weight",), "the sample "
                                f"weight column is never {role}: name another column, or "
                                f"remove it from the others. Received: sample_weight="
                                f"{safe_repr(weight)}"))
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
class TextSource:
    """A folder of `.txt` files, one sub-folder per class (keras.utils.text_dataset_from_directory)."""

    dir: str = spec_field(doc="Folder path, relative to the pipeline file; each example is "
                          "one UTF-8 `.txt` file's text, its class the sub-folder's name.")
    shorthand = "dir"

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        check_path_text(values, "dir", path, issues)


# The dtypes of a tf.train.Example feature, by their Keras names: its float_list,
# int64_list and bytes_list.
TfrecordDtype = Literal["float32", "int64", "string"]
MAX_FEATURE_VALUES = 1 << 26  # values of one declared feature (64 Mi: 256 MiB of float32)


@dataclass(frozen=True)
class TfrecordFeature:
    """One feature of a tf.train.Example, as tf.io.FixedLenFeature reads it."""

    dtype: TfrecordDtype = spec_field(doc="float32, int64 or string.")
    shape: list[int] = spec_field([], "Shape of the feature's values in one record, e.g. "
                                  "`[28, 28]`; `[]` (the default) for one value.",
                                  max_items=8)
    shorthand = "dtype"

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        shape = values.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
            return
        size = 1
        for at, dim in enumerate(shape):
            if dim < 1:
                issues.append(Issue("out-of-range", path + ("shape", at), "each dimension of "
                                    "a feature's shape is at least 1 (a record holds a fixed "
                                    f"number of values). Received: shape={shape}"))
                return
            size *= dim
        if size > MAX_FEATURE_VALUES:
            issues.append(Issue("out-of-range", path + ("shape",), f"a feature holds at most "
                                f"{MAX_FEATURE_VALUES:,} values per record; this shape holds "
                                f"{size:,}. Received: shape={shape}"))


def path_escape(pattern: str) -> Optional[str]:
    """Why a file pattern from a pipeline could lead outside the pipeline's folder, or
    ``None``: an absolute path, a ``~``, a URL, or ``..`` that climbs out of it (read
    without touching the file system; the compile side checks each matched file's real
    path too, since a link inside the folder can lead out of it)."""
    if "://" in pattern:
        return "a URL"
    if pattern.startswith(("/", "\\", "~")) or re.match(r"[A-Za-z]:", pattern):
        return "an absolute path"
    if posixpath.normpath(pattern.replace("\\", "/")).split("/")[0] == "..":
        return "a path that leaves the pipeline's folder with `..`"
    return None


@dataclass(frozen=True)
class TfrecordSource:
    """TFRecord files of tf.train.Example records, streamed (never all in memory)."""

    files: Union[str, list[str]] = spec_field(doc="A glob or a list of globs of the files "
                                              "(e.g. `data/train-*.tfrecord`), relative to "
                                              "the pipeline file and inside its folder.")
    features: dict[str, TfrecordFeature] = spec_field(
        doc="The record's features by name: a dtype (`label: int64`) or `{dtype: float32, "
        "shape: [28, 28]}`; the label and the one feature the model takes.")
    label: str = spec_field(doc="Name of the label feature (int64 or string: classes; "
                            "float32: a regression target).")
    compression: Optional[Literal["GZIP", "ZLIB"]] = spec_field(
        None, "How the files are compressed: GZIP, ZLIB, or null for none.")

    @property
    def file_patterns(self) -> list[str]:
        """``files`` as a list of globs."""
        return [self.files] if isinstance(self.files, str) else list(self.files)

    @property
    def input_name(self) -> str:
        """The one feature that is not the label: the model's input."""
        return next(name for name in self.features if name != self.label)

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        files = values.get("files")
        patterns = [files] if isinstance(files, str) else files
        if isinstance(files, list) and not files:
            issues.append(Issue("out-of-range", path + ("files",), "needs at least one glob "
                                "of TFRecord files."))
        for at, pattern in enumerate(patterns if isinstance(patterns, list) else []):
            where = path + ("files",) + ((at,) if isinstance(files, list) else ())
            if not isinstance(pattern, str):
                continue  # reported by the type check
            if any(ord(c) < 32 or ord(c) == 127 for c in pattern):
                issues.append(Issue("bad-path", where, "a path cannot hold a NUL byte or "
                                    "another control character (tab, newline, ...). Remove "
                                    f"it. Received: {safe_repr(pattern)}"))
                continue
            escape = path_escape(pattern)
            if escape:
                issues.append(Issue("outside-path", where, f"{safe_repr(pattern)} is {escape}; "
                                    "TFRecord files must be inside the pipeline's folder, "
                                    "named relative to the pipeline file, so that a pipeline "
                                    "file cannot make kerapipe read elsewhere. Copy or link "
                                    "the files there and name them relative to it."))
        features = values.get("features")
        if not isinstance(features, dict):
            return
        # typed.parse leaves a mapping's values as written: each feature is typed here.
        for name, feature in list(features.items()):
            if not isinstance(name, str) or not name:
                issues.append(Issue("wrong-type", path + ("features",), "a feature's name is "
                                    f"a non-empty string. Received: {safe_repr(name)}"))
                continue
            features[name] = parse_spec(TfrecordFeature, feature, path + ("features", name),
                                        issues)
        label = values.get("label")
        if isinstance(label, str) and label not in features:
            declared = ", ".join(map(str, features)) or "none"
            issues.append(Issue("missing-key", path + ("label",), f"the label '{label}' is "
                                f"not among the declared features ({declared}). Declare it "
                                f"under features, e.g. `{label}: int64`.", at_key=True))
        elif isinstance(label, str):
            typed = features[label]
            if typed is not None and typed.shape:
                issues.append(Issue("not-applicable", path + ("features", label, "shape"),
                                    "the label is one value per record (a class or a "
                                    f"target); remove its shape. Received: shape={typed.shape}"))
            others = [n for n in features if n != label]
            if len(others) != 1:
                issues.append(Issue("not-applicable", path + ("features",), "declare the "
                                    "label and exactly one feature the model takes (records "
                                    "may hold more; only the declared ones are read)"
                                    + (f"; found {len(others)}: {', '.join(map(str, others))}"
                                       if others else "; found none besides the label")
                                    + ".", at_key=True))


# TFDS names: `mnist`, `imdb_reviews/plain_text`, `mnist:3.0.1` (tfds.builder's form).
TFDS_NAME = re.compile(r"[a-z][a-z0-9_]*(/[A-Za-z0-9_.\-]+)?(:[0-9]+\.[0-9]+\.[0-9]+)?\Z")
# A TFDS split: `train`, `test`, `train[:80%]`, `train[10%:]+test` (tfds's split syntax).
TFDS_SPLIT = re.compile(r"[A-Za-z0-9_\[\]:%+\-. ]+\Z")


@dataclass(frozen=True)
class TfdsSource:
    """A TensorFlow Datasets set by name (`pip install kerapipe[tfds]`; downloaded once, online)."""

    name: str = spec_field(doc="The TFDS name, e.g. `mnist` or `imdb_reviews/plain_text` "
                           "(optionally with `:VERSION`).")
    split: str = spec_field("train", "The TFDS split to train on (TFDS split syntax, e.g. "
                            "`train[:80%]`); kerapipe splits it by data.split.")
    test_split: Optional[str] = spec_field(None, "A TFDS split used as the test split "
                                           "(e.g. `test`). Defaults to none: data.split.test "
                                           "is held out of `split`.")
    shorthand = "name"

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        name = values.get("name")
        if isinstance(name, str) and not TFDS_NAME.match(name):
            issues.append(Issue("unknown-value", path + ("name",), "a TFDS name is lower-case "
                                "letters, digits and `_`, optionally with `/config` and "
                                "`:1.2.3`, e.g. `mnist` or `imdb_reviews/plain_text`. "
                                f"Received: name={safe_repr(name)}"))
        for key in ("split", "test_split"):
            split = values.get(key)
            if isinstance(split, str) and not TFDS_SPLIT.match(split):
                issues.append(Issue("unknown-value", path + (key,), "a TFDS split is a name "
                                    "such as `train`, optionally sliced (`train[:80%]`) or "
                                    f"joined (`train+validation`). Received: {key}="
                                    f"{safe_repr(split)}"))


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
    text: Optional[TextSource] = spec_field(None, "A folder of `.txt` files, one sub-folder "
                                            "per class.")
    tfrecord: Optional[TfrecordSource] = spec_field(None, "TFRecord files of tf.train.Example "
                                                    "records, streamed.")
    tfds: Optional[TfdsSource] = spec_field(None, "A TensorFlow Datasets set by name "
                                            "(optional extra: `pip install kerapipe[tfds]`).")
    exactly_one = True

    def split_column_problem(self, column: str, feature_names: Sequence[str] = ()
                             ) -> Optional[str]:
        """Why ``data.split.column`` cannot name each example's split in this source, or
        ``None``: only a CSV column or an npz array can, and not one that is already the
        label or a feature (``feature_names``: ``data.features``' columns)."""
        if self.csv is None and self.npz is None:
            return (f"a column split reads each example's split from a CSV column or an npz "
                    f"array, but data.source.{self.kind} has neither. Use fractions "
                    "(`validation`, `test`, `order`) instead.")
        roles = ([("the label (data.source.csv.label)", self.csv.label_columns),
                  ("a feature (data.source.csv.features)", self.csv.features or []),
                  ("a feature (data.features)", list(feature_names))] if self.csv else
                 [("the features or labels (data.source.npz)", [self.npz.x or "x",
                                                                self.npz.y or "y"])])
        for role, names in roles:
            if column in names:
                return (f"{safe_repr(column)} is {role}, so it cannot also name each "
                        "example's split. Name a column (or array) of its own that holds "
                        "train, validation or test.")
        return None

    def split_file_problem(self) -> Optional[str]:
        """Why a split cannot be read from a file of this source's kind, or ``None``: a
        csv, npz, images or text source reads one; a named set has its own splits, and
        TFRecord files are not read as a second set."""
        if any(getattr(self, kind) is not None for kind in ("csv", "npz", "images", "text")):
            return None
        why = ("streams its records, and a second TFRecord set is not read as a split"
               if self.tfrecord is not None else "is a named data set with its own splits, "
               "so there is no file of its kind")
        return (f"a split file holds examples of the source's kind, but data.source."
                f"{self.kind} {why}. Use a fraction, or a csv, npz, images or text source.")

    @property
    def kind(self) -> str:
        """The kind set; ``""`` when none is (its value was refused where it stands, e.g.
        an integer of too many digits, and the checks across keys still run)."""
        return next((k for k in ("sample", "keras", "npz", "csv", "images", "text",
                                 "tfrecord", "tfds") if getattr(self, k) is not None), "")
