"""Load the examples a pipeline names and split them: source -> ``LoadedData``.

The pipeline's source (``kerapipe.compiler.sources.source_for``) loads a ``RawData``; the
shared code here then prepares features (the source's ``prepare_features``: arrays are
padded by ``pad_sequences`` and checked, ``values``), checks labels (``labels``) and makes
the shuffled, stratified train/validation/test splits with the pipeline's seed, each
example keeping its id (where it came from). kerapipe's other preprocess steps run later,
in tf.data. Bad data raises ``DataError`` with the file, what is wrong and how to fix it;
never a bare traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

from kerapipe.compiler.labels import prepare_labels, regression_loss
from kerapipe.compiler.sources import source_for
from kerapipe.compiler.splits import stratified_split
from kerapipe.errors import DataError
from kerapipe.spec.model import PipelineSpec

if TYPE_CHECKING:
    from kerapipe.compiler.sources import Source

__all__ = ["LoadedData", "Split", "load_data"]


@dataclass
class Split:
    """One split, raw (before kerapipe's preprocess steps, except pad_sequences).

    Args:
        x: numeric features; for image folders a 1-D array of file paths (str), for a CSV
            the data row numbers that tf.data reads.
        y: int64 class indices for classification; float32 for regression.
        ids: where each example came from, one per example (``RawData.ids``): a position
            in the source arrays, a CSV line number or id column value, an image's path
            relative to the folder.
    """

    x: np.ndarray
    y: np.ndarray
    ids: np.ndarray

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
    fingerprint: str
    description: str
    source: Source  # reads the splits in tf.data (``features``, ``examples``)
    feature_names: Optional[list[str]] = None  # CSV: the feature columns, in model order


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

    regression = raw.regression if raw.regression is not None else regression_loss(spec)
    pad_steps = spec.data.options_of("pad_sequences")

    x, y = source.prepare_features(raw.x, raw.names[0], raw, pad_steps), raw.y
    ids = raw.ids if raw.ids is not None else np.arange(len(y), dtype=np.int64)
    x_test = y_test = test_ids = None
    if raw.x_test is not None:
        x_test = source.prepare_features(raw.x_test, raw.names[2], raw, pad_steps)
        y_test = raw.y_test
        test_ids = (raw.test_ids if raw.test_ids is not None
                    else np.arange(len(y_test), dtype=np.int64))
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(f"{raw.where}: '{raw.names[2]}' holds examples of shape "
                            f"{tuple(x_test.shape[1:])}, but '{raw.names[0]}' holds "
                            f"{tuple(x.shape[1:])}; test examples must have the shape the "
                            "model is trained on. Check that the arrays belong together.")
    y, y_test, class_names, num_classes = prepare_labels(raw, y, y_test, regression)

    split = spec.data.split
    test = None
    if raw.x_test is not None:
        train_idx, val_idx = stratified_split(y, [split.validation], spec.seed, split.stratify)
        test = Split(x_test, y_test, test_ids)
    else:
        train_idx, val_idx, test_idx = stratified_split(
            y, [split.validation, split.test], spec.seed, split.stratify)
        if split.test > 0:
            test_idx = source.arrange(test_idx)
            test = Split(x[test_idx], y[test_idx], ids[test_idx])
    if len(train_idx) == 0:
        raise DataError(f"{raw.where}: no examples are left for training: {len(y)} examples "
                        f"with data.split validation={split.validation:g}"
                        + ("" if raw.x_test is not None else f", test={split.test:g}")
                        + ". Lower the fractions or add data.")
    train_idx, val_idx = source.arrange(train_idx), source.arrange(val_idx)
    validation = Split(x[val_idx], y[val_idx], ids[val_idx]) if split.validation > 0 else None

    # Images: (h, w, c) as decoded; arrays (padded sequences included): one row's shape.
    example_shape = raw.example_shape or tuple(int(d) for d in x.shape[1:])
    if not all(d >= 1 for d in example_shape):  # TensorFlow crashed the process on (n, 0)
        raise DataError(f"{raw.where}: examples of shape {example_shape} hold no values (a "
                        "dimension of size 0). Each example needs at least one feature.")
    return LoadedData(train=Split(x[train_idx], y[train_idx], ids[train_idx]),
                      validation=validation, test=test, class_names=class_names,
                      num_classes=num_classes, example_shape=example_shape,
                      fingerprint=raw.fingerprint, description=raw.description,
                      source=source, feature_names=raw.feature_names)
