"""Load the examples a pipeline names and split them: source -> ``LoadedData``.

One loader per source kind returns a ``RawData`` (``keras_data`` for the bundled samples
and keras.datasets, ``npz``, ``csv_source``, ``images``); the shared code here then checks
features (``values``) and labels (``labels``), applies ``pad_sequences`` (ragged
sequences cannot become arrays without it) and makes the shuffled, stratified
train/validation/test splits with the pipeline's seed. kerapipe's other preprocess steps
run later, in tf.data. Bad data raises ``DataError`` with the file, what is wrong and how
to fix it; never a bare traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from kerapipe.compiler.csv_source import load_csv
from kerapipe.compiler.csv_stream import CsvStream
from kerapipe.compiler.images import load_images
from kerapipe.compiler.keras_data import load_keras, load_sample
from kerapipe.compiler.labels import prepare_labels, regression_loss
from kerapipe.compiler.npz import load_npz
from kerapipe.compiler.raw import RawData, is_ragged
from kerapipe.compiler.splits import stratified_split
from kerapipe.compiler.values import check_finite, check_float32
from kerapipe.errors import DataError
from kerapipe.spec.model import PipelineSpec

__all__ = ["LoadedData", "Split", "load_data"]


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
    csv: Optional[CsvStream] = None  # set for CSV sources: split x are row numbers


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
        raw = load_sample(source.sample)
    elif kind == "keras":
        raw = load_keras(source.keras.name, source.keras.num_words)
    elif kind == "npz":
        raw = load_npz(source.npz, base)
    elif kind == "csv":
        raw = load_csv(source.csv, base)
    else:
        raw = load_images(source.images, base)

    regression = raw.regression if raw.regression is not None else regression_loss(spec)
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
    y, y_test, class_names, num_classes = prepare_labels(raw, y, y_test, regression)

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


def _prepare_x(x: Any, name: str, raw: RawData, pad_steps: list) -> np.ndarray:
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

        padded: Any = list(x) if is_ragged(x) else x
        for step in pad_steps:
            try:
                padded = keras.utils.pad_sequences(padded, maxlen=step.maxlen,
                                                   padding=step.padding,
                                                   truncating=step.truncating)
            except (ValueError, TypeError) as err:
                raise DataError(f"{where}: pad_sequences cannot pad '{name}' ({err}). It pads "
                                "sequences of numbers, e.g. word indices.") from err
        x = padded
    elif is_ragged(x):
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
        check_finite(where, name, x)
        check_float32(where, name, x)
    return x
