"""Labels: class indices (int64) or regression targets (float32), the class names and count.

A label's value bounds what it costs: a class index of 4,000,000,000 would make a list of
that many class names, so indices and distinct names are bounded by ``MAX_CLASSES`` (the
spec side's bound on ``one_hot`` classes) before anything is allocated.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from kerapipe.compiler.sources.raw import RawData
from kerapipe.compiler.values import check_finite, check_float32, locate, show, show_as_written
from kerapipe.errors import DataError
from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.model import PipelineSpec
from kerapipe.spec.steps import MAX_CLASSES
from kerapipe.spec.typed import looks_numeric

# Losses that fit a continuous target: with one of these, numeric labels stay float32.
REGRESSION_LOSSES = frozenset({
    "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError", "Huber", "LogCosh", "Poisson", "CosineSimilarity"})


def regression_loss(spec: PipelineSpec) -> bool:
    """Whether the pipeline's loss fits a continuous target (its labels stay numbers)."""
    return is_regression_loss(spec.loss)


def is_regression_loss(loss) -> bool:
    """Whether a ``LossSpec`` fits a continuous target (an output's own loss, too)."""
    entry = load_catalog().losses.get(loss.name)
    return (entry.name if entry else loss.name) in REGRESSION_LOSSES


def prepare_labels(raw: RawData, y: np.ndarray, y_test: Optional[np.ndarray], regression: bool
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
                check_finite(raw.where, name, labels, raw.lines, text)
                check_float32(raw.where, name, labels, raw.lines, text)
            out.append(labels.astype(np.float32))
        return out[0], out[1], None, None

    converted = []
    for name, labels in ((y_name, y), (y_test_name, y_test)):
        if labels is None:
            converted.append(None)
            continue
        converted.append(class_indices(raw, name, np.asarray(labels)))
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


def class_indices(raw: RawData, name: str, labels: np.ndarray) -> np.ndarray:
    """One source's labels as int64 class indices; class names set from string labels."""
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
        check_finite(where, name, labels, raw.lines, text)
        if not np.all(labels == np.round(labels)):
            first = int(np.flatnonzero(labels != np.round(labels))[0])
            shown = show_as_written(text(first)) if text else f"{labels[first]:g}"
            raise DataError(f"{where}: float labels where classes are expected: "
                            f"{locate(name, first, raw.lines)} is {shown}. Use "
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
            shown = show_as_written(text(first)) if text else show(labels[first])
            raise DataError(f"{where}: {locate(name, first, raw.lines)} is {shown}; {rule}")
    return labels.astype(np.int64)


def csv_labels(distinct: list[str], codes: np.ndarray, raw: RawData) -> np.ndarray:
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
