"""What the labels are (``data.labels``): classes, binary, multi-label, regression or raw.

The kind decides the labels' shape and dtype, which losses, activations and metrics fit
them (checked by ``validate``, ``spec/checks.py``), whether the splits are stratified, and
what ``predictions.csv`` holds:

============  ==========================================  ===========================
kind          labels as the model sees them               predictions.csv
============  ==========================================  ===========================
classes       int64 class indices ``(n,)``                class, name, confidence
binary        int64 0/1 ``(n,)`` (two values mapped)      class, name, confidence
multi_label   float32 multi-hot ``(n, K)``, names sorted  the label set above threshold
regression    float32 targets (optionally standardized)   the value, original units
raw           the arrays as stored, any shape and dtype   none: predictions.npz
============  ==========================================  ===========================

When ``data.labels`` is absent the kind is inferred as kerapipe always did
(``infer_label_kind``): a regression loss gives ``regression``, one sigmoid unit with
binary cross-entropy ``binary``, anything else ``classes``; a source that fixes its
labels (a named data set, CSV text labels) has the last word. No TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.issues import Issue, Path, safe_repr
from kerapipe.spec.typed import spec_field

LABEL_KINDS = ("classes", "binary", "multi_label", "regression", "raw")
LabelKind = Literal[LABEL_KINDS]  # type: ignore[valid-type]
CLASS_KINDS = ("classes", "binary")  # one class index per example: splits are stratified
TARGET_SCALINGS = ("none", "standardize")

# Losses that fit a continuous target: with one of these, numeric labels stay float32.
REGRESSION_LOSSES = frozenset({
    "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError", "Huber", "LogCosh", "Poisson", "CosineSimilarity"})
# Losses that compare each output unit with a 0/1 label on its own (one sigmoid per unit).
BINARY_LOSSES = frozenset({"BinaryCrossentropy", "BinaryFocalCrossentropy", "Hinge",
                           "SquaredHinge"})
# Losses that take one class index per example (one score per class).
SPARSE_CLASS_LOSSES = frozenset({"SparseCategoricalCrossentropy",
                                 "CategoricalGeneralizedCrossEntropy"})
# Losses that take one-hot vectors (a `one_hot` step) and one score per class.
ONE_HOT_LOSSES = frozenset({"CategoricalCrossentropy", "CategoricalFocalCrossentropy",
                            "CategoricalHinge", "KLDivergence"})


@dataclass(frozen=True)
class LabelsSpec:
    """The kind of labels and its options; inferred from the loss and the data when absent."""

    kind: LabelKind = spec_field(doc="`classes` (class indices or names), `binary` (two "
                                 "values: 0/1, -1/1 or two names, mapped to 0/1), "
                                 "`multi_label` (a set of classes per example), "
                                 "`regression` (numbers) or `raw` (any array, passed to "
                                 "the loss as it is).")
    separator: Optional[str] = spec_field(None, "multi_label: the text between the labels "
                                          "in a CSV label cell, e.g. `;`. Defaults to "
                                          "the pipe character.")
    threshold: Optional[float] = spec_field(None, "multi_label: a label is predicted when its "
                                            "probability is above this (predictions.csv, "
                                            "`accuracy`, `f1_score`). Defaults to 0.5.",
                                            gt=0, lt=1)
    scale: Optional[Literal["none", "standardize"]] = spec_field(
        None, "regression: `standardize` makes the model learn the target minus the "
        "training split's mean, divided by its standard deviation; the inverse is a "
        "Rescaling layer after the output, kept in model.keras, so loss, metrics and "
        "predictions are in the original units. Defaults to `none`.")
    shorthand = "kind"

    def to_yaml(self) -> dict:
        """The resolved form: the kind and the options the file gives (an option of
        another kind would not validate)."""
        return {name: value for name, value in (("kind", self.kind),
                                                ("separator", self.separator),
                                                ("threshold", self.threshold),
                                                ("scale", self.scale)) if value is not None}

    @property
    def label_separator(self) -> str:
        """``separator``, its default filled in."""
        return self.separator if self.separator is not None else "|"

    @property
    def label_threshold(self) -> float:
        """``threshold``, its default filled in."""
        return self.threshold if self.threshold is not None else 0.5

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        kind = values.get("kind")
        if kind not in LABEL_KINDS:
            return  # reported already
        for key, value, kinds in (("separator", values.get("separator"), ("multi_label",)),
                                  ("threshold", values.get("threshold"), ("multi_label",)),
                                  ("scale", values.get("scale"), ("regression",))):
            if value is not None and kind not in kinds:
                issues.append(Issue("not-applicable", path + (key,), f"{key} applies to "
                                    f"`kind: {kinds[0]}` labels, not to {kind}. Remove it, or "
                                    f"set kind: {kinds[0]}. Received: {key}="
                                    f"{safe_repr(value)}", at_key=True))
        separator = values.get("separator")
        if isinstance(separator, str) and (not separator or separator.strip() != separator
                                           or "\n" in separator):
            issues.append(Issue("out-of-range", path + ("separator",), "a separator is one "
                                "or more visible characters between labels, e.g. `|` or "
                                f"`;`. Received: separator={safe_repr(separator)}"))


@dataclass(frozen=True)
class LabelKindChoice:
    """The kind of a run's labels as the spec tells it.

    Attributes:
        kind: one of ``LABEL_KINDS``.
        inferred: not written in the file (``data.labels`` absent).
        why: what decided it, for ``plan`` (``declared in data.labels``, ``the loss
            mean_squared_error``, ...).
        options: the ``LabelsSpec`` (its defaults when inferred).
    """

    kind: str
    inferred: bool
    why: str
    options: LabelsSpec


def loss_class(loss: Any) -> str:
    """The Keras class a ``LossSpec`` names (``mse`` -> ``MeanSquaredError``)."""
    entry = load_catalog().losses.get(loss.name)
    return entry.name if entry else loss.name


def is_regression_loss(loss: Any) -> bool:
    """Whether a ``LossSpec`` fits a continuous target (an output's own loss, too)."""
    return loss_class(loss) in REGRESSION_LOSSES


def infer_label_kind(spec: Any, output_units: Optional[int],
                     regression: Optional[bool] = None) -> LabelKindChoice:
    """The kind of ``spec``'s labels: ``data.labels`` when written, else inferred.

    Args:
        spec: a ``PipelineSpec``.
        output_units: the output layer's ``units`` when known (one sigmoid unit with
            binary cross-entropy is ``binary``).
        regression: what the source fixes (a named data set with a continuous target, CSV
            text labels that can only be classes); ``None``: the loss decides.
    """
    declared = spec.data.labels
    if declared is not None:
        return LabelKindChoice(declared.kind, False, "declared in data.labels", declared)
    defaults = LabelsSpec("classes")
    loss = loss_class(spec.loss)
    if regression is not None:
        kind = "regression" if regression else "classes"
        why = "the data set's continuous target" if regression else "the data's class names"
    elif loss in REGRESSION_LOSSES:
        kind, why = "regression", f"the loss {spec.loss.name}"
    else:
        kind, why = "classes", f"the loss {spec.loss.name}"
    if kind == "classes" and output_units == 1 and loss in BINARY_LOSSES:
        kind, why = "binary", f"one output unit with {spec.loss.name}"
    return LabelKindChoice(kind, True, why, defaults)


def stratification(kind: str, stratify: bool) -> str:
    """What ``data.split.stratify`` does for labels of ``kind`` (``plan``, README)."""
    if not stratify:
        return "shuffled (stratify: false)"
    if kind in CLASS_KINDS:
        return "stratified by class"
    return f"shuffled, not stratified ({kind} labels have no one class per example)"
