"""Labels of each kind (``data.labels``), checked and shaped for the model.

- classes / binary: int64 class indices and the class names (``binary``: two values, 0/1,
  -1/1 or two names, mapped to 0/1);
- multi_label: float32 multi-hot vectors ``(n, K)`` from a CSV cell of labels with a
  separator (``Action|Comedy``), a string array with one, or a 0/1 array ``(n, K)``;
  the class names sorted;
- regression: float32 targets (``standardize``: their training mean and deviation,
  ``target_scale``);
- raw: the arrays as stored (numbers of any shape), for a custom loss.

A label's value bounds what it costs: a class index of 4,000,000,000 would make a list of
that many class names, so indices and distinct names are bounded by ``MAX_CLASSES`` (the
spec side's bound on ``one_hot`` classes) before anything is allocated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from kerapipe.compiler.multi_hot import multi_hot_labels
from kerapipe.compiler.sources.npz_file import check_texts
from kerapipe.compiler.sources.raw import RawData
from kerapipe.compiler.values import check_finite, check_float32, locate, show, show_as_written
from kerapipe.errors import DataError
from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.label_kinds import LabelKindChoice, is_regression_loss
from kerapipe.spec.model import PipelineSpec
from kerapipe.spec.steps import MAX_CLASSES
from kerapipe.spec.typed import looks_numeric


@dataclass(frozen=True)
class LabelFacts:
    """What a run's labels are, once the data is read (``LoadedData.labels``).

    Attributes:
        kind: one of ``spec.label_kinds.LABEL_KINDS``.
        inferred: the file does not say (``data.labels`` absent).
        why: what decided the kind (``plan``).
        threshold: multi_label: the probability above which a label is predicted.
        scale: regression with ``scale: standardize``: ``(mean, std)`` of the training
            split's targets (the model ends with ``Rescaling(std, mean)``); else ``None``.
        stratified: whether the splits keep the class proportions.
    """

    kind: str
    inferred: bool
    why: str
    threshold: Optional[float] = None
    scale: Optional[tuple[float, float]] = None
    stratified: bool = False
    separator: str = "|"

    def prediction_options(self) -> dict:
        """The keyword arguments of ``predictions.predictions_csv`` for these labels."""
        return {"kind": self.kind, "threshold": self.threshold or 0.5,
                "separator": self.separator}

    def describe(self, split_rule: str, num_classes: Optional[int]) -> str:
        """One line for ``plan``: the kind, why, and what it means for the splits."""
        how = "inferred from " + self.why if self.inferred else self.why
        extra = []
        if self.kind == "multi_label":
            extra.append(f"{num_classes} labels, multi-hot; predicted above {self.threshold:g}")
        elif self.kind in ("classes", "binary") and num_classes:
            extra.append(f"{num_classes} classes")
        if self.scale is not None:
            extra.append(f"target standardized: mean {self.scale[0]:.6g}, std "
                         f"{self.scale[1]:.6g} (inverse saved in the model)")
        extra.append(f"splits {split_rule}")
        return f"labels: {self.kind} ({how}); " + "; ".join(extra)


def raw_probabilities(spec: PipelineSpec) -> Optional[str]:
    """For ``labels: raw``: the activation the saved model adds after an output of
    logits, so that it outputs probabilities as for class labels (``sigmoid`` after a
    binary loss, else ``softmax``); ``None`` when training's loss took no logits (a
    custom loss, a regression loss, a softmax/sigmoid output, ``from_logits: false``)."""
    from kerapipe.spec.checks import output_activation
    from kerapipe.spec.label_kinds import loss_class
    from kerapipe.spec.model import is_custom_name

    labels = spec.data.labels
    if labels is None or labels.kind != "raw" or is_custom_name(spec.loss.name):
        return None
    entry = load_catalog().losses.get(spec.loss.name)
    if entry is None or "from_logits" not in entry.params:
        return None
    logits = spec.loss.kwargs.get("from_logits",
                                  output_activation(spec) not in ("softmax", "sigmoid"))
    if logits is not True:
        return None
    return "sigmoid" if loss_class(spec.loss).startswith("Binary") else "softmax"


def regression_loss(spec: PipelineSpec) -> bool:
    """Whether the pipeline's loss fits a continuous target (its labels stay numbers)."""
    return is_regression_loss(spec.loss)


def label_facts(choice: LabelKindChoice, stratify: bool,
                train_targets: Optional[np.ndarray] = None) -> LabelFacts:
    """The ``LabelFacts`` of a run: ``choice``'s kind, and the scale of ``train_targets``
    (the training split's) when the labels ask to standardize them."""
    kind = choice.kind
    scale = None
    if kind == "regression" and choice.options.scale == "standardize" \
            and train_targets is not None:
        scale = target_scale(train_targets)
    return LabelFacts(kind, choice.inferred, choice.why,
                      threshold=choice.options.label_threshold if kind == "multi_label" else None,
                      scale=scale, stratified=stratify and kind in ("classes", "binary"),
                      separator=choice.options.label_separator)


def target_scale(targets: np.ndarray) -> tuple[float, float]:
    """``(mean, std)`` of regression targets (float64); a constant target gets std 1, so
    that the inverse scaling stays defined."""
    values = np.asarray(targets, dtype=np.float64)
    if not values.size:
        return 0.0, 1.0
    mean, std = float(values.mean()), float(values.std())
    return mean, std if std > 0 and np.isfinite(std) else 1.0


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


def prepare_labels_of_kind(raw: RawData, y: np.ndarray, y_test: Optional[np.ndarray],
                           kind: str, separator: str = "|"
                           ) -> tuple[np.ndarray, Optional[np.ndarray], Optional[list[str]],
                                      Optional[int]]:
    """The labels of ``kind`` (``data.labels``), as ``prepare_labels`` returns them:
    train and test labels, the class names and count (``None`` for regression and raw)."""
    if kind == "regression":
        if raw.class_names is not None and raw.label_text is not None:  # CSV text labels
            first = next(i for i in range(len(y)) if not looks_numeric(raw.label_text(i)))
            raise DataError(f"{raw.where}: `labels: regression` takes numbers, but "
                            f"{locate(raw.names[1], first, raw.lines)} is "
                            f"{show(raw.label_text(first))}. Set data.source.csv.label to a "
                            "column of numbers, or use `labels: classes`.")
        return prepare_labels(raw, y, y_test, regression=True)
    if kind == "binary":
        return binary_labels(raw, y, y_test)
    if kind == "multi_label":
        y, y_test = (None if labels is None else text_labels(np.asarray(labels), raw.where, name)
                     for name, labels in ((raw.names[1], y), (raw.names[3], y_test)))
        return multi_hot_labels(raw, y, y_test, separator)
    if kind == "raw":
        return raw_labels(raw, y), (raw_labels(raw, y_test, test=True)
                                    if y_test is not None else None), None, None
    return prepare_labels(raw, y, y_test, regression=False)


def binary_labels(raw: RawData, y: np.ndarray, y_test: Optional[np.ndarray]
                  ) -> tuple[np.ndarray, Optional[np.ndarray], list[str], int]:
    """Two classes as 0/1: 0/1 (or booleans) stay, -1/1 become 0/1, two other values or
    names become 0 (the lower, or first by name) and 1."""
    names = raw.class_names  # CSV text labels: already indices of the sorted names
    if names is not None and len(names) > 2:
        raise DataError(f"{raw.where}: `labels: binary` takes two values, but "
                        f"'{raw.names[1]}' holds {len(names)} ({', '.join(names[:5])}"
                        f"{', ...' if len(names) > 5 else ''}). Use `labels: classes` for "
                        "more than two classes.")
    parts = []
    for name, labels in ((raw.names[1], y), (raw.names[3], y_test)):
        if labels is None:
            parts.append(None)
            continue
        labels = np.asarray(labels)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1 or labels.dtype.kind not in "biufUS":
            raise DataError(f"{raw.where}: `labels: binary` takes one value per example, but "
                            f"'{name}' holds {labels.dtype} values of shape "
                            f"{tuple(labels.shape)}. Use `labels: multi_label` for a 0/1 "
                            "vector per example.")
        if labels.dtype.kind == "f":
            check_finite(raw.where, name, labels, raw.lines,
                         raw.label_text if name == raw.names[1] else None)
        parts.append(text_labels(labels, raw.where, name) if labels.dtype.kind in "US"
                     else labels)
    if names is None:
        present = sorted(set().union(*(np.unique(p).tolist() for p in parts if p is not None)))
        if len(present) > 2:
            shown = ", ".join(show(v) for v in present[:5])
            raise DataError(f"{raw.where}: `labels: binary` takes two values, but "
                            f"'{raw.names[1]}' holds {len(present)} ({shown}"
                            f"{', ...' if len(present) > 5 else ''}). Use `labels: classes` "
                            "for more than two classes, or a regression loss for a "
                            "continuous target.")
        if all(isinstance(v, str) for v in present):
            values = present
        elif set(present) <= {0, 1}:
            values = [0, 1]
        elif set(present) <= {-1, 1}:
            values = [-1, 1]
        else:
            values = present
        names = [str(int(v)) if isinstance(v, (bool, float)) and float(v).is_integer()
                 else str(v) for v in values]
        index = {v: i for i, v in enumerate(values)}
        parts = [None if p is None else np.array([index[v] for v in p.tolist()], np.int64)
                 for p in parts]
    else:
        parts = [None if p is None else p.astype(np.int64) for p in parts]
    return parts[0], parts[1], list(names), 2


def raw_labels(raw: RawData, labels: np.ndarray, test: bool = False) -> np.ndarray:
    """Labels passed to the loss as they are: numbers or booleans of any shape (floats
    checked to be finite)."""
    name = raw.names[3] if test else raw.names[1]
    labels = np.asarray(labels)
    if raw.class_names is not None and raw.label_text is not None and not test:  # CSV text
        raise DataError(f"{raw.where}: `labels: raw` passes numbers to the loss, but "
                        f"'{name}' holds text such as {show(raw.class_names[0])}. Use "
                        "`labels: classes` for class names.")
    if labels.dtype.kind not in "biuf":
        raise DataError(f"{raw.where}: `labels: raw` passes numbers to the loss, but "
                        f"'{name}' holds {labels.dtype} values. Save numbers (any shape).")
    if labels.dtype.kind == "f":
        check_finite(raw.where, name, labels, raw.lines, None)
        check_float32(raw.where, name, labels, raw.lines, None)
    return labels


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
        labels = text_labels(labels, raw.where, name)
        if raw.class_names is None:
            raw.class_names = sorted(set(labels.tolist()))
            if len(raw.class_names) > MAX_CLASSES:
                raise DataError(f"{where}: '{name}' holds {len(raw.class_names):,} different "
                                f"labels, more than the {MAX_CLASSES:,} classes kerapipe "
                                "allows. Are they ids rather than classes?")
        index = {c: i for i, c in enumerate(raw.class_names)}
        missing = sorted(set(labels.tolist()) - set(index))
        if missing:
            raise DataError(f"{where}: '{name}' holds labels {missing} that the training "
                            "labels do not have.")
        return np.array([index[v] for v in labels.tolist()], dtype=np.int64)
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
    negative = "class labels must be whole numbers from 0 up. Shift them so the smallest is 0."
    if len(labels) and set(np.unique(labels).tolist()) <= {-1, 1}:
        negative = ("labels of -1 and 1 are two classes: add `labels: binary` to data (it maps "
                    "-1 to class 0 and 1 to class 1), or save them as 0 and 1.")
    for bad, rule in ((labels < 0, negative),
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


def text_labels(labels: np.ndarray, where: str, name: str) -> np.ndarray:
    """String labels (array ``name`` of an .npz file read from ``where``, dtype 'U' or
    'S') as a 'U' array, checked as the npz source checks texts (``check_texts``): bytes
    decoded as UTF-8 (``astype(str)`` decodes ASCII only, and fails on
    ``b'caf\\xc3\\xa9'``), no lone surrogate (no class-names file can hold one). Other
    dtypes, and shapes that hold no one string per example, are left to the label kind's
    own checks. The run's rule and ``kerapipe init``'s.

    Raises:
        DataError: naming the file, the array and the first label that is no text.
    """
    if labels.dtype.kind not in "US" or not (
            labels.ndim == 1 or (labels.ndim == 2 and labels.shape[1] == 1)):
        return labels
    labels = check_texts(labels, where, name)
    if labels.dtype.kind == "S":
        return np.char.decode(labels, "utf-8")
    return labels


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
