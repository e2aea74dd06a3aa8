"""Prediction rules: model outputs -> classes, class names, ranked classes, predictions CSV.

The one home of what a prediction means, shared by ``run`` (``predictions.csv``),
``kerapipe predict``, ``kerapipe evaluate`` and ``CompiledPipeline.predict``, so that
they cannot disagree:

- A classifier's output holds one probability per class; a single sigmoid unit holds the
  probability ``p`` of class 1 and stands for the two classes ``[1 - p, p]``.
- The predicted class is the most probable one; a tie goes to the lower class index (so
  one sigmoid unit predicts class 1 when ``p > 0.5``, as Keras's ``BinaryAccuracy`` does).
- A regression model's output is the predicted value itself (in the original units: a
  standardized target's inverse scaling is part of the model).
- A multi-label model's output holds one independent probability per label; the
  predicted set is the labels above the threshold (``data.labels.threshold``).
- Raw labels' outputs are arrays of any shape: they are kept as they are
  (``prediction_arrays``, ``predictions.npz``), never written as CSV rows.

NumPy only: the run side and the CLI use it without importing TensorFlow.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Iterator, Optional, Sequence

import numpy as np

# Index entries ranked at a time (32 MiB of int64), whatever the number of rows.
_RANK_CHUNK = 1 << 22


def class_columns(probabilities: np.ndarray) -> np.ndarray:
    """One column per class: a single sigmoid unit ``p`` becomes ``[1 - p, p]``."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim == 2 and probabilities.shape[1] == 1:
        return np.concatenate([1 - probabilities, probabilities], axis=1)
    return probabilities


def probabilities_to_classes(probabilities: np.ndarray) -> np.ndarray:
    """The predicted class of each example: the most probable, ties to the lower index."""
    return np.argmax(class_columns(probabilities), axis=-1)


def predicted_values(outputs: np.ndarray) -> np.ndarray:
    """A regression model's predictions: shape ``(n,)`` for one output unit, else the
    outputs as they are (``(n, units)``)."""
    outputs = np.asarray(outputs)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        return outputs[:, 0]
    return outputs


def predicted_label_sets(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """A multi-label model's predictions: multi-hot int64 ``(n, labels)``, 1 where the
    label's probability is above ``threshold``."""
    return (np.asarray(probabilities) > threshold).astype(np.int64)


def predicted_outputs(outputs: np.ndarray, kind: Optional[str], threshold: float = 0.5
                      ) -> np.ndarray:
    """What a model predicts for labels of ``kind``: class indices (classes, binary, and
    ``None``: a classifier as kerapipe always read it), multi-hot label sets
    (multi_label), values (regression, shape ``(n,)`` for one unit), the outputs as they
    are (raw)."""
    if kind == "multi_label":
        return predicted_label_sets(outputs, threshold)
    if kind == "raw":
        return np.asarray(outputs)
    if kind == "regression":
        return predicted_values(outputs)
    return probabilities_to_classes(outputs)


def prediction_arrays(outputs: np.ndarray, ids: Sequence[Any]) -> dict[str, np.ndarray]:
    """The arrays of ``predictions.npz`` (raw labels): ``outputs``, the model's outputs
    as they are, and ``ids``, where each row comes from (as text)."""
    return {"outputs": np.asarray(outputs), "ids": np.asarray([str(i) for i in ids])}


def class_name(class_names: Optional[Sequence[Any]], index: int) -> str:
    """The name of class ``index``, or the index itself when the run has no such name."""
    if class_names and 0 <= index < len(class_names):
        return str(class_names[index])
    return str(index)


def ranked_columns(top_k: int, classes: int) -> int:
    """How many classes a predictions CSV ranks per example: ``output.top_k``, at most the
    classes the model outputs (a larger top_k would promise columns no row can fill)."""
    return max(1, min(int(top_k), int(classes)))


def top_classes(probabilities: np.ndarray, k: int) -> Iterator[np.ndarray]:
    """Per row, the ``k`` most probable classes, most probable first; the first is always
    ``argmax`` (ties go to the lower class index; at the edge of a partitioned top k, a tie
    goes either way). ``probabilities`` has one column per class (``class_columns``).
    Yields one block of rows at a time, so a huge class count costs bounded memory."""
    classes = probabilities.shape[1]
    rows = max(1, _RANK_CHUNK // max(classes, 1))
    for start in range(0, len(probabilities), rows):
        block = probabilities[start:start + rows]
        if k < classes and classes > 64:  # many classes, few asked for: partition first
            part = np.argpartition(-block, k - 1, axis=1)[:, :k]
            values = np.take_along_axis(block, part, axis=1)
            top = np.take_along_axis(part, np.lexsort((part, -values), axis=1), axis=1)
            top[:, 0] = np.argmax(block, axis=1)  # a tied best left out by the partition
            yield top
        else:
            yield np.argsort(-block, axis=1, kind="stable")[:, :k]


def predictions_csv(outputs: np.ndarray, *, inputs: Optional[Sequence[Any]] = None,
                    true: Optional[np.ndarray] = None,
                    class_names: Optional[Sequence[Any]] = None, top_k: int = 1,
                    num_classes: Optional[int] = None, kind: Optional[str] = None,
                    threshold: float = 0.5, separator: str = "|") -> str:
    """The predictions of a model as CSV text, one row per example.

    Columns: ``index``; ``input`` when ``inputs`` is given (where each row comes from: a
    CSV line number or id, an image path, a position in an array); then for a classifier
    ``predicted, predicted_name, confidence``, ``true, true_name`` when ``true`` is
    given, and ``topN, topN_name, topN_confidence`` for ranks 2 to ``top_k`` (clamped by
    ``ranked_columns``); for a regression model (``num_classes`` is ``None``)
    ``predicted`` (the first output unit) and ``true`` when given; for multi-label
    (``kind``) ``predicted`` (the names of the labels above ``threshold``, ``separator``
    between them), ``scores`` (their probabilities, in the same order) and ``true`` (the
    true label set) when given.

    Args:
        outputs: the model's outputs, ``(n, classes)`` probabilities, ``(n, 1)`` for one
            sigmoid unit, or the regression values.
        inputs: one id per row, written as the ``input`` column.
        true: the labels (class indices, or the regression targets).
        class_names: class names by index (``predicted_name``, ``true_name``).
        top_k: how many classes to rank per row (1: only the predicted one).
        num_classes: the run's class count; ``None`` for regression.
        kind: the labels' kind (``data.labels``); ``None``: classes, or regression
            when ``num_classes`` is ``None``.
        threshold: multi_label: a label is predicted above this probability.
        separator: multi_label: the text between label names in a cell.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if kind == "multi_label":
        header, rows = _label_set_columns(outputs, true, class_names, threshold, separator)
    else:
        header, rows = _columns(outputs, true, class_names, top_k, num_classes)
    writer.writerow(["index"] + (["input"] if inputs is not None else []) + header)
    for index, cells in enumerate(rows):
        writer.writerow(([index, inputs[index]] if inputs is not None else [index]) + cells)
    return out.getvalue()


def _columns(outputs: Any, true: Optional[np.ndarray], class_names: Optional[Sequence[Any]],
             top_k: int, num_classes: Optional[int]) -> tuple[list[str], Iterator[list[Any]]]:
    """The prediction columns of one output (the rules of ``predictions_csv``) and an
    iterator of each row's cells, ranked in bounded blocks (``top_classes``)."""
    outputs = np.asarray(outputs)
    rows = len(outputs)
    if num_classes is None:  # regression: the predicted value itself
        values = outputs.reshape(rows, -1)[:, 0] if rows else outputs.reshape(0)
        targets = None if true is None else np.asarray(true).reshape(rows, -1)[:, 0]
        header = ["predicted"] + (["true"] if true is not None else [])
        return header, ([f"{value:.6g}"] + ([f"{float(targets[i]):.6g}"] if true is not None
                                            else []) for i, value in enumerate(values))
    probabilities = class_columns(outputs)
    k = ranked_columns(top_k, probabilities.shape[1])
    header = ["predicted", "predicted_name", "confidence"]
    if true is not None:
        header += ["true", "true_name"]
    for rank in range(2, k + 1):
        header += [f"top{rank}", f"top{rank}_name", f"top{rank}_confidence"]

    def cells() -> Iterator[list[Any]]:
        index = 0
        for block in top_classes(probabilities, k):
            for ranked in block:
                best = int(ranked[0])
                line = [best, class_name(class_names, best),
                        f"{probabilities[index, best]:.6f}"]
                if true is not None:
                    label = int(true[index])
                    line += [label, class_name(class_names, label)]
                for cls in ranked[1:]:
                    line += [int(cls), class_name(class_names, int(cls)),
                             f"{probabilities[index, cls]:.6f}"]
                yield line
                index += 1

    return header, cells()


def _label_set_columns(outputs: Any, true: Optional[np.ndarray],
                       class_names: Optional[Sequence[Any]], threshold: float,
                       separator: str) -> tuple[list[str], Iterator[list[Any]]]:
    """The columns of a multi-label model: the predicted set, its scores, the true set."""
    probabilities = np.asarray(outputs).reshape(len(outputs), -1)
    header = ["predicted", "scores"] + (["true"] if true is not None else [])

    def cells() -> Iterator[list[Any]]:
        for index, row in enumerate(probabilities):
            chosen = np.flatnonzero(row > threshold)
            line = [separator.join(class_name(class_names, int(c)) for c in chosen),
                    separator.join(f"{row[c]:.6f}" for c in chosen)]
            if true is not None:
                present = np.flatnonzero(np.asarray(true[index]).reshape(-1) > 0.5)
                line.append(separator.join(class_name(class_names, int(c)) for c in present))
            yield line

    return header, cells()


def output_columns(name: str, outputs: np.ndarray, *, true: Optional[np.ndarray] = None,
                   class_names: Optional[Sequence[Any]] = None, top_k: int = 1,
                   num_classes: Optional[int] = None) -> tuple[list[str], list[list[Any]]]:
    """One output's column group of a model of several outputs: the columns of
    ``predictions_csv`` after ``index``/``input``, each prefixed ``<name>_``
    (``digit_predicted, digit_predicted_name, digit_confidence, digit_true, ...``; for a
    regression output ``size_predicted`` and ``size_true``), and one list of cells per
    row. The rules are ``predictions_csv``'s."""
    header, rows = _columns(outputs, true, class_names, top_k, num_classes)
    return [f"{name}_{column}" for column in header], list(rows)


def outputs_predictions_csv(outputs: dict, heads: dict, *,
                            inputs: Optional[Sequence[Any]] = None,
                            true: Optional[dict] = None, top_k: int = 1) -> str:
    """The predictions of a model of several outputs as CSV text, one row per example:
    ``index``, ``input`` (when ``inputs`` is given), then one column group per output in
    ``heads`` order (``output_columns``).

    Args:
        outputs: each output's model outputs, by output name.
        heads: output name -> ``(class_names, num_classes)`` (``num_classes`` ``None``:
            a regression output).
        inputs: one id per row, written as the ``input`` column.
        true: each output's labels, by output name.
        top_k: how many classes to rank per row of a classifier output.
    """
    header = ["index"] + (["input"] if inputs is not None else [])
    groups = []
    for name, (class_names, num_classes) in heads.items():
        columns, cells = output_columns(name, outputs[name],
                                        true=None if true is None else true[name],
                                        class_names=class_names, top_k=top_k,
                                        num_classes=num_classes)
        header += columns
        groups.append(cells)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    rows = len(groups[0]) if groups else 0
    for index in range(rows):
        lead = [index, inputs[index]] if inputs is not None else [index]
        writer.writerow(lead + [cell for cells in groups for cell in cells[index]])
    return out.getvalue()
