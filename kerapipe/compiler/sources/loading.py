"""Load the examples a pipeline names and split them: source -> ``LoadedData``.

The pipeline's source (``kerapipe.compiler.sources.source_for``) loads a ``RawData``; the
shared code here then prepares features (the source's ``prepare_features``: arrays are
padded by ``pad_sequences`` and checked, ``values``), checks labels (``labels``) and makes
the train/validation/test splits ``data.split`` asks for (shuffled and stratified with the
pipeline's seed, in the source's order, by a column, or read from split files through a
second source of the same kind), each example keeping its id (where it came from).
kerapipe's other preprocess steps run later, in tf.data. Bad data raises ``DataError``
with the file, what is wrong and how to fix it; never a bare traceback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from kerapipe.compiler.labels import (LabelFacts, is_regression_loss, label_facts,
                                      prepare_labels, prepare_labels_of_kind, regression_loss)
from kerapipe.compiler.sources import source_for
from kerapipe.compiler.weights import ClassWeights, resolve_class_weights
from kerapipe.compiler.splits import column_split, ordered_split, stratified_split
from kerapipe.compiler.values import show
from kerapipe.errors import DataError
from kerapipe.spec.checks import output_units
from kerapipe.spec.label_kinds import CLASS_KINDS, infer_label_kind
from kerapipe.spec.metrics import output_heads
from kerapipe.spec.model import PipelineSpec

if TYPE_CHECKING:
    from kerapipe.compiler.sources import Source

__all__ = ["LoadedData", "OutputLabels", "Split", "load_data"]


@dataclass
class Split:
    """One split, raw (before kerapipe's preprocess steps, except pad_sequences).

    Args:
        x: numeric features; for image folders a 1-D array of file paths (str), for a CSV
            the data row numbers that tf.data reads; for a model of several inputs
            (``model.inputs``) a dict of one array per input, by name.
        y: the labels of the kind ``data.labels`` says (``compiler.labels``): int64
            class indices (classes, binary), float32 multi-hot vectors (multi_label) or
            targets (regression), the arrays as stored (raw).
        ids: where each example came from, one per example (``RawData.ids``): a position
            in the source arrays, a CSV line number or id column value, an image's path
            relative to the folder.
    """

    x: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    y_outputs: Optional[dict] = None  # several outputs: each one's labels (``y``: the first's)
    # The training split's sample weights, one per example (``compiler.weights``).
    weights: Optional[np.ndarray] = None
    # The source that reads this split in tf.data, when it is not the data's (a split file,
    # ``data.split.validation: {file: PATH}``).
    source: Optional[Source] = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def targets(self):
        """What the model learns: ``y``, or for several outputs each one's labels by name."""
        return self.y_outputs if self.y_outputs is not None else self.y


@dataclass
class OutputLabels:
    """The labels of one output of several: its class names and count (``None``: a
    continuous target)."""

    class_names: Optional[list[str]]
    num_classes: Optional[int]


@dataclass
class LoadedData:
    """The examples of a pipeline, split, with what the model needs to know about them."""

    train: Split
    validation: Optional[Split]
    test: Optional[Split]
    class_names: Optional[list[str]]
    num_classes: Optional[int]
    example_shape: tuple[int, ...]  # several inputs: a dict, each input's shape by name
    fingerprint: str
    description: str
    source: Source  # reads the splits in tf.data (``features``, ``examples``)
    feature_names: Optional[list[str]] = None  # CSV: the feature columns, in model order
    # Several outputs: each one's labels by output name (``class_names``/``num_classes``
    # above are the first output's).
    outputs: Optional[dict[str, OutputLabels]] = None
    # The kind of the labels (one output; ``None`` for several, each inferred by its loss).
    labels: Optional[LabelFacts] = None
    # train.class_weight resolved on the training split (``compiler.weights``).
    class_weights: Optional[ClassWeights] = None


def load_data(spec: PipelineSpec, base_dir: str | os.PathLike) -> LoadedData:
    """Load, check and split the examples that ``spec.data.source`` names.

    Args:
        spec: a validated pipeline.
        base_dir: folder that relative paths in the file are relative to (the pipeline
            file's folder).

    Raises:
        DataError: when the data is missing, unreadable or invalid.
    """
    source = source_for(spec, base_dir)
    raw = source.load()

    heads = output_heads(spec)
    regression = (raw.regression if raw.regression is not None else
                  is_regression_loss(heads[0].loss) if heads else regression_loss(spec))
    # One output: the kind its labels are (declared, or inferred as `regression` was).
    choice = None if heads else infer_label_kind(
        spec, output_units(spec), raw.regression if spec.data.labels is None else None)
    pad_steps = spec.data.options_of("pad_sequences")

    x, y = _prepared(source, raw.x, raw.names[0], raw, pad_steps), raw.y
    ids = raw.ids if raw.ids is not None else np.arange(len(y), dtype=np.int64)
    x_test = y_test = test_ids = None
    if raw.x_test is not None:
        x_test = _prepared(source, raw.x_test, raw.names[2], raw, pad_steps, test=True)
        y_test = raw.y_test
        test_ids = (raw.test_ids if raw.test_ids is not None
                    else np.arange(len(y_test), dtype=np.int64))
        for name, train_part, test_part in _parts(x, x_test, raw):
            if test_part.shape[1:] != train_part.shape[1:]:
                raise DataError(f"{raw.where}: '{name[1]}' holds examples of shape "
                                f"{tuple(test_part.shape[1:])}, but '{name[0]}' holds "
                                f"{tuple(train_part.shape[1:])}; test examples must have the "
                                "shape the model is trained on. Check that the arrays belong "
                                "together.")

    def labels_of(raw: Any, y: Any, y_test: Any):
        if choice is not None and not choice.inferred:
            return prepare_labels_of_kind(raw, y, y_test, choice.kind,
                                          choice.options.label_separator)
        return prepare_labels(raw, y, y_test, regression)

    y, y_test, class_names, num_classes = labels_of(raw, y, y_test)
    outputs, y_out, y_out_test = _output_labels(raw, heads, y, y_test, class_names,
                                                num_classes)

    split = spec.data.split
    # Only one class per example can be stratified on (multi-hot vectors, targets and raw
    # arrays are split at random); ordered and column splits are never stratified.
    stratify = (split.stratify and split.order == "shuffled" and split.column is None
                and (choice is None or choice.kind in CLASS_KINDS))
    if split.files and raw.x_test is not None and "test" in split.files:
        raise DataError(f"{raw.where}: the file has its own test split ('{raw.names[2]}'), "
                        "so data.split.test cannot also name a file. Remove one of them.")
    if split.files and heads:
        raise DataError(f"{raw.where}: a model of several outputs reads its splits from the "
                        "one .npz file; use fractions for data.split.validation and test.")
    train_idx, val_idx, test_idx = _split_indices(raw, source, y, ids, split, spec.seed,
                                                  stratify)
    test = None
    if raw.x_test is not None:
        test = Split(x_test, y_test, test_ids, y_out_test)
    elif "test" not in split.files and (len(test_idx) if split.column else split.test_fraction):
        test_idx = source.arrange(test_idx)
        test = Split(rows(x, test_idx), y[test_idx], ids[test_idx], labels(y_out, test_idx))
    if len(train_idx) == 0:
        raise DataError(f"{raw.where}: no examples are left for training: "
                        + (f"no example says train in data.split.column '{split.column}'. "
                           "Mark some examples train." if split.column else
                           f"{len(y)} examples with data.split validation="
                           f"{split.validation_fraction:g}"
                           + ("" if raw.x_test is not None else
                              f", test={split.test_fraction:g}")
                           + ". Lower the fractions or add data."))
    train_idx, val_idx = source.arrange(train_idx), source.arrange(val_idx)
    validation = (Split(rows(x, val_idx), y[val_idx], ids[val_idx], labels(y_out, val_idx))
                  if (len(val_idx) if split.column else split.validation_fraction) else None)
    fingerprint, description = raw.fingerprint, raw.description
    if split.files:
        trained = _classes_in(y[train_idx], class_names)
        parts = {}
        for part, path in split.files.items():
            other = source.for_file(path)
            parts[part], other_raw = _file_split(other, x, raw, pad_steps, labels_of,
                                                 class_names, trained)
            fingerprint += f"+{part}:{other_raw.fingerprint}"
            description += f"; {part}: {other_raw.description}"
        validation, test = parts.get("validation", validation), parts.get("test", test)
        fingerprint = hashlib.sha256(fingerprint.encode()).hexdigest()

    # Images: (h, w, c) as decoded; arrays (padded sequences included): one row's shape;
    # several inputs: each input's.
    if isinstance(x, dict):
        example_shape = {name: tuple(int(d) for d in part.shape[1:]) for name, part in x.items()}
    else:
        example_shape = raw.example_shape or tuple(int(d) for d in x.shape[1:])
    for shape in example_shape.values() if isinstance(example_shape, dict) else [example_shape]:
        if not all(d >= 1 for d in shape):  # TensorFlow crashed the process on (n, 0)
            raise DataError(f"{raw.where}: examples of shape {shape} hold no values (a "
                            "dimension of size 0). Each example needs at least one feature.")
    # The source's sample weights (the CSV and npz sources read them) and the class
    # weights: the training split's only, since validation and test stay unweighted.
    weights = source.sample_weights(raw)
    class_weights = resolve_class_weights(spec.train.class_weight, y[train_idx], class_names,
                                          num_classes, raw.where)
    return LoadedData(train=Split(rows(x, train_idx), y[train_idx], ids[train_idx],
                                  labels(y_out, train_idx),
                                  weights=None if weights is None else weights[train_idx]),
                      validation=validation, test=test, class_names=class_names,
                      num_classes=num_classes, example_shape=example_shape,
                      fingerprint=fingerprint, description=description,
                      source=source, feature_names=raw.feature_names, outputs=outputs,
                      labels=None if choice is None else label_facts(choice, stratify,
                                                                     y[train_idx]),
                      class_weights=class_weights)


def _split_indices(raw: Any, source: Source, y: np.ndarray, ids: np.ndarray, split: Any,
                   seed: Optional[int], stratify: bool) -> list[np.ndarray]:
    """``[train, validation, test]`` example indices as ``data.split`` asks: by the
    column's words, in the source's order (``order: ordered``), or drawn with the seed;
    ``test`` is empty when the source has its own test split or a file gives it."""
    if raw.parts is not None:
        return column_split(raw.parts)
    fractions = [split.validation_fraction] + ([] if raw.x_test is not None else
                                               [split.test_fraction])
    if split.order == "ordered":
        order = source.source_order(ids)
        parts = [order[part] for part in ordered_split(len(y), fractions)]
    else:
        parts = stratified_split(y, fractions, seed, stratify)
    return parts + [np.zeros(0, np.int64)] * (3 - len(parts))


def _file_split(other: Source, x: Any, raw: Any, pad_steps: list, labels_of: Any,
                class_names: Optional[list[str]], trained: Optional[set]) -> tuple[Split, Any]:
    """The split a split file holds, read by ``other`` (a source of the data's kind over
    that file): its features prepared and checked against the training data's, its labels
    prepared alike and mapped onto the training data's classes.

    Raises:
        DataError: the file's examples have another shape or other feature columns, or
            it holds a class that the training split lacks.
    """
    other_raw = other.load()
    where = other_raw.where
    if other_raw.x_test is not None:
        raise DataError(f"{where}: a split file holds one set of examples, but it has a test "
                        f"split of its own ('{other_raw.names[2]}'). Save its examples as one "
                        "set (x/y).")
    other_x = _prepared(other, other_raw.x, other_raw.names[0], other_raw, pad_steps)
    if raw.feature_names is not None and other_raw.feature_names != raw.feature_names:
        raise DataError(f"{where}: its feature columns are {', '.join(other_raw.feature_names)}"
                        f", but the training data's ({raw.where}) are "
                        f"{', '.join(raw.feature_names)}; a split file needs the same columns "
                        "in the same order.")
    if isinstance(x, np.ndarray) and x.dtype != object or isinstance(x, dict):
        pairs = ([(k, x[k], other_x[k]) for k in x] if isinstance(x, dict)
                 else [(other_raw.names[0], x, other_x)])
        for name, mine, theirs in pairs:
            if np.shape(theirs)[1:] != np.shape(mine)[1:]:
                raise DataError(f"{where}: '{name}' holds examples of shape "
                                f"{tuple(np.shape(theirs)[1:])}, but the training data's "
                                f"({raw.where}) are {tuple(np.shape(mine)[1:])}; every split "
                                "must have the shape the model is trained on.")
    y, _, names, _ = labels_of(other_raw, other_raw.y, None)
    y = _mapped_labels(y, names, class_names, trained, where)
    ids = other_raw.ids if other_raw.ids is not None else np.arange(len(y), dtype=np.int64)
    order = other.arrange(np.arange(len(y), dtype=np.int64))
    return Split(rows(other_x, order), y[order], ids[order], source=other), other_raw


def _classes_in(y: np.ndarray, class_names: Optional[list[str]]) -> Optional[set]:
    """The names of the classes that labels ``y`` hold (one per example, or multi-hot);
    ``None`` for targets."""
    if class_names is None:
        return None
    y = np.asarray(y)
    present = np.unique(y) if y.ndim == 1 else np.flatnonzero(y.reshape(len(y), -1).any(0))
    return {class_names[int(k)] for k in present}


def _mapped_labels(y: np.ndarray, names: Optional[list[str]],
                   class_names: Optional[list[str]], trained: Optional[set],
                   where: str) -> np.ndarray:
    """A split file's prepared labels (indices into its own ``names``) as indices into
    the training data's ``class_names`` (multi-hot columns moved alike); targets as they
    are.

    Raises:
        DataError: the file holds a class that is not in ``trained`` (the classes of the
            training split).
    """
    if class_names is None or names is None:
        return y
    missing = sorted(_classes_in(y, names) - (trained or set()))
    if missing:
        raise DataError(f"{where}: holds the class {show(missing[0])}"
                        + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                        + ", which the training split does not have (its classes: "
                        + ", ".join(sorted(trained or ())) + "). The model learns only "
                        "the training split's classes: add examples of it there, or remove "
                        "them from this file.")
    index = {name: i for i, name in enumerate(class_names)}
    if y.ndim == 1:
        table = np.array([index.get(name, 0) for name in names], dtype=np.int64)
        return table[y] if len(y) else y.astype(np.int64)
    out = np.zeros((len(y), len(class_names)), dtype=y.dtype)
    for j, name in enumerate(names):
        if name in index:
            out[:, index[name]] = y[:, j]
    return out


def rows(x: Any, indices: np.ndarray) -> Any:
    """The rows ``indices`` of features: of an array, or of each input's array (the same
    rows of every one: one permutation for all)."""
    if isinstance(x, dict):
        return {name: part[indices] for name, part in x.items()}
    return x[indices]


def _prepared(source: Source, x: Any, name: str, raw: Any, pad_steps: list,
              test: bool = False) -> Any:
    """``source.prepare_features`` of the features, or of each input's array by its name."""
    if isinstance(x, dict):
        names = _array_names(raw, x, test)
        return {key: source.prepare_features(part, names[key], raw, pad_steps)
                for key, part in x.items()}
    return source.prepare_features(x, name, raw, pad_steps)


def _array_names(raw: Any, x: dict, test: bool) -> dict[str, str]:
    """Each input's array name, for messages (``x_image`` or ``x_image_train``/``_test``)."""
    first = raw.names[2] if test else raw.names[0]
    suffix = next((s for s in ("_train", "_test") if first.endswith(s)), "")
    return {key: key + suffix for key in x}


def _parts(x: Any, x_test: Any, raw: Any):
    """``((train name, test name), train array, test array)`` per input."""
    if isinstance(x, dict):
        train_names, test_names = _array_names(raw, x, False), _array_names(raw, x_test, True)
        return [((train_names[k], test_names[k]), x[k], x_test[k]) for k in x]
    return [((raw.names[0], raw.names[2]), x, x_test)]


def labels(y_outputs: Optional[dict], indices: np.ndarray) -> Optional[dict]:
    """The rows ``indices`` of each output's labels (``None`` for one output)."""
    if y_outputs is None:
        return None
    return {name: part[indices] for name, part in y_outputs.items()}


def _output_labels(raw: Any, heads: list, y: np.ndarray, y_test: Optional[np.ndarray],
                   class_names: Optional[list], num_classes: Optional[int]):
    """A model of several outputs: each output's ``OutputLabels`` and its labels (train
    and test), prepared as the first's are (class indices, or numbers for a regression
    loss); ``(None, None, None)`` for one output."""
    if not heads:
        return None, None, None
    outputs = {heads[0].name: OutputLabels(class_names, num_classes)}
    y_out = {heads[0].name: y}
    y_out_test = {heads[0].name: y_test} if y_test is not None else None
    for head in heads[1:]:
        train_name, test_name = raw.output_arrays[head.name]
        part = dataclasses.replace(raw, names=(raw.names[0], train_name, raw.names[2],
                                               test_name or ""),
                                   class_names=None, num_classes=None, label_text=None,
                                   lines=None)
        test_labels = raw.output_y_test[head.name] if raw.output_y_test else None
        train, test, names, count = prepare_labels(part, raw.output_y[head.name], test_labels,
                                                   is_regression_loss(head.loss))
        outputs[head.name] = OutputLabels(names, count)
        y_out[head.name] = train
        if y_out_test is not None:
            y_out_test[head.name] = test
    return outputs, y_out, y_out_test
