"""What each Keras metric takes, what a run's labels are, and the metrics kerapipe refuses.

Keras's metric classes expect their inputs in one form each: ``SparseCategoricalAccuracy``
class indices, ``Precision`` or ``AUC`` one value per output (one-hot labels beside class
probabilities), ``CategoricalAccuracy`` one score per class, ``IoU`` class ids. A run's
labels come in one of four kinds (``RunLabels``): class indices, one-hot vectors (a
``one_hot`` step), 0/1 beside one sigmoid unit, or a continuous target. The compile side
(``kerapipe.compiler.metrics``) gives every metric its inputs in the form it expects, so
each catalogued metric measures every kind of class labels; what cannot be measured (a
class metric on a continuous target, an IoU over another number of classes) is refused
here, at the metric's key, by ``validate`` where the spec tells the labels' kind and by
``compile_pipeline`` where only the data does. No TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.issues import Issue, safe_repr
from kerapipe.spec.model import MetricSpec, PipelineSpec

ACCURACY_NAMES = ("accuracy", "acc")  # Keras's own: the accuracy that fits the labels


@dataclass(frozen=True)
class MetricInputs:
    """The form of the inputs one Keras metric class expects.

    Attributes:
        labels: ``"index"``: one class index per example; ``"per_output"``: one label per
            output value (one-hot vectors beside class scores, the target in regression).
        predictions: ``"outputs"``: the model's outputs as they are (probabilities for
            classes); ``"scores"``: one score per class (one sigmoid unit is given as the
            two columns ``[1 - p, p]``); ``"class_ids"``: the predicted class index.
        classes_only: it measures classes; refused on a continuous target.
    """

    labels: str
    predictions: str
    classes_only: bool


_INDEX_SCORES = MetricInputs("index", "scores", True)
_ONE_HOT_SCORES = MetricInputs("per_output", "scores", True)
_PER_OUTPUT_CLASSES = MetricInputs("per_output", "outputs", True)
_PER_OUTPUT_VALUES = MetricInputs("per_output", "outputs", False)

METRIC_INPUTS: dict[str, MetricInputs] = {
    # accuracies: `Accuracy` (and `accuracy`) is the accuracy that fits the labels, as in
    # Keras's own `metrics=["accuracy"]`, never the element-wise equality of its class
    "Accuracy": _ONE_HOT_SCORES,
    "CategoricalAccuracy": _ONE_HOT_SCORES,
    "SparseCategoricalAccuracy": _INDEX_SCORES,
    "TopKCategoricalAccuracy": _ONE_HOT_SCORES,
    "SparseTopKCategoricalAccuracy": _INDEX_SCORES,
    "BinaryAccuracy": _PER_OUTPUT_CLASSES,
    # thresholds and confusion counts on each output (micro-averaged over the classes)
    **{name: _PER_OUTPUT_CLASSES for name in (
        "Precision", "Recall", "AUC", "F1Score", "FBetaScore", "TruePositives",
        "TrueNegatives", "FalsePositives", "FalseNegatives", "PrecisionAtRecall",
        "RecallAtPrecision", "SensitivityAtSpecificity", "SpecificityAtSensitivity",
        "BinaryIoU", "BinaryCrossentropy", "Hinge", "SquaredHinge")},
    "CategoricalCrossentropy": _ONE_HOT_SCORES,
    "SparseCategoricalCrossentropy": _INDEX_SCORES,
    "CategoricalHinge": _ONE_HOT_SCORES,
    # intersection over union: the form follows sparse_y_true / sparse_y_pred (metric_inputs)
    "IoU": _INDEX_SCORES, "MeanIoU": _INDEX_SCORES,
    "OneHotIoU": _ONE_HOT_SCORES, "OneHotMeanIoU": _ONE_HOT_SCORES,
    # values: regression metrics (on classes they compare probabilities with one-hot labels)
    **{name: _PER_OUTPUT_VALUES for name in (
        "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
        "MeanSquaredLogarithmicError", "RootMeanSquaredError", "LogCoshError",
        "CosineSimilarity", "PearsonCorrelation", "ConcordanceCorrelation", "R2Score",
        "Poisson", "KLDivergence")},
}
_IOU = ("IoU", "MeanIoU", "OneHotIoU", "OneHotMeanIoU")
REGRESSION_METRIC_NAMES = "mae, mse, root_mean_squared_error, r2_score"
MULTI_LABEL_METRIC_NAMES = ("accuracy (per label), precision, recall, auc, "
                            "{name: f1_score, average: micro}")


def metric_class(metric: MetricSpec) -> str:
    """The Keras class a metric entry names (``accuracy``, ``acc`` -> ``Accuracy``)."""
    if metric.name in ACCURACY_NAMES:
        return "Accuracy"
    entry = load_catalog().metrics.get(metric.name)
    return entry.name if entry is not None else metric.name


def metric_inputs(metric: MetricSpec) -> MetricInputs:
    """The form of inputs ``metric`` expects, its ``sparse_y_true``/``sparse_y_pred``
    arguments read (IoU and MeanIoU take class ids by default)."""
    name = metric_class(metric)
    inputs = METRIC_INPUTS.get(name, _PER_OUTPUT_VALUES)
    if name in _IOU:
        sparse_true = metric.kwargs.get("sparse_y_true", name in ("IoU", "MeanIoU"))
        sparse_pred = metric.kwargs.get("sparse_y_pred", name in ("IoU", "MeanIoU"))
        inputs = MetricInputs("index" if sparse_true else "per_output",
                              "class_ids" if sparse_pred else "scores", True)
    return inputs


def logged_metric_name(metric: MetricSpec) -> str:
    """The name Keras's History logs the metric under: its ``name`` argument, else the
    name as written for an alias (``mse``), else the class's own (``auc`` for ``AUC``)."""
    given = metric.kwargs.get("name")
    if isinstance(given, str) and given:
        return given
    metrics = load_catalog().metrics
    if metric.name in ACCURACY_NAMES or metric.name in metrics.by_alias:
        return metric.name
    entry = metrics.get(metric.name)
    return entry.logged_name if entry is not None and entry.logged_name else metric.name


@dataclass(frozen=True)
class RunLabels:
    """What a run's metrics measure.

    Attributes:
        kind: ``"classes"`` (class indices beside one score per class), ``"one_hot"``
            (one-hot vectors, a ``one_hot`` step), ``"binary"`` (0/1 beside one sigmoid
            unit), ``"multi_label"`` (multi-hot vectors beside one sigmoid per label),
            ``"regression"`` (a continuous target) or ``"raw"`` (labels passed as they
            are: the metrics see them and the outputs unchanged).
        classes: the number of classes (2 for binary); ``None`` when unknown or regression.
        logits: the model outputs scores without softmax/sigmoid (the loss takes logits);
            the metrics are given the probabilities, as the saved model outputs them.
    """

    kind: str
    classes: Optional[int]
    logits: bool
    threshold: Optional[float] = None  # multi_label: a label is predicted above it


def run_labels(spec: PipelineSpec, *, regression: Optional[bool], num_classes: Optional[int],
               output_units: Optional[int], logits: bool) -> Optional[RunLabels]:
    """The labels' kind from what is known; ``None`` when it is not known (``regression``
    ``None``: it depends on the data). A kind written in ``data.labels`` decides (for a
    model of one output)."""
    declared = spec.data.labels if not spec.model.heads or len(spec.model.heads) < 2 else None
    if declared is not None and declared.kind == "multi_label":
        return RunLabels("multi_label", num_classes or output_units, logits, declared.label_threshold)
    if declared is not None and declared.kind == "raw":
        return RunLabels("raw", None, logits)
    if declared is not None:
        regression = declared.kind == "regression"
    if regression:
        return RunLabels("regression", None, False)
    if regression is None:
        return None
    one_hot = spec.data.first_options("one_hot")
    if one_hot is not None:
        return RunLabels("one_hot", one_hot.num_classes or num_classes, logits)
    if output_units == 1:
        return RunLabels("binary", 2, logits)
    return RunLabels("classes", num_classes or output_units, logits)


def metric_issues(spec: PipelineSpec, labels: RunLabels,
                  head: Optional["OutputHead"] = None) -> list[Issue]:
    """The metrics of ``spec`` (or of one output of several, ``head``) that cannot
    measure ``labels``, one issue at each."""
    issues = []
    for index, metric in enumerate(head.metrics if head is not None else spec.metrics):
        path = head.metric_path(index) if head is not None else ("metrics", index)
        name = metric_class(metric)
        inputs = metric_inputs(metric)
        if labels.kind == "raw":
            if metric.name in ACCURACY_NAMES and not metric.kwargs:
                issues.append(Issue("metric-label-mismatch", path, f"{metric.name} picks the "
                                    "accuracy that fits the labels, but `labels: raw` says "
                                    "nothing about them. Name it: sparse_categorical_accuracy "
                                    "(class ids beside scores), categorical_accuracy or "
                                    "binary_accuracy.", at_key=True))
            continue
        if labels.kind == "multi_label":
            bare_accuracy = metric.name in ACCURACY_NAMES and not metric.kwargs
            if not bare_accuracy and (inputs.labels == "index" or inputs == _ONE_HOT_SCORES
                                      or name in _IOU):
                issues.append(Issue("metric-label-mismatch", path, f"{metric.name} compares "
                                    "one class per example, but multi_label labels are a set "
                                    "of classes (multi-hot vectors). Use a metric of each "
                                    f"label: {MULTI_LABEL_METRIC_NAMES}.", at_key=True))
            continue
        if labels.kind == "regression":
            if inputs.classes_only and not (metric.name in ACCURACY_NAMES and not metric.kwargs):
                issues.append(Issue("metric-label-mismatch", path, f"{metric.name} measures "
                                    "classes, but this run predicts a continuous target (a "
                                    "regression loss or data set), so it has nothing to "
                                    f"count. Use a regression metric, e.g. "
                                    f"{REGRESSION_METRIC_NAMES}.", at_key=True))
            continue
        if name not in _IOU or labels.classes is None:
            continue
        count = metric.kwargs.get("num_classes")
        if isinstance(count, int) and count != labels.classes:
            issues.append(Issue("metric-label-mismatch", path + ("num_classes",),
                                f"{metric.name} counts {count} classes, but this run's labels "
                                f"have {labels.classes}. Set num_classes: {labels.classes}. "
                                f"Received: num_classes={safe_repr(count)}"))
        targets = metric.kwargs.get("target_class_ids")
        beyond = [t for t in targets if isinstance(t, int) and not 0 <= t < labels.classes] \
            if isinstance(targets, list) else []
        if beyond:
            issues.append(Issue("metric-label-mismatch", path + ("target_class_ids",),
                                f"{metric.name} has no class {beyond[0]}: this run's labels "
                                f"are classes 0..{labels.classes - 1}. Received: "
                                f"target_class_ids={safe_repr(targets)}"))
    return issues


@dataclass(frozen=True)
class OutputHead:
    """One output of a model of several (``model.outputs``), its defaults filled in.

    Attributes:
        name: the output's name as written (Keras's output name: History logs
            ``<name>_loss``, ``<name>_<metric>``).
        node: the node whose tensor it is (``graph.model_nodes(spec).outputs``).
        label: the npz array of its labels; ``None``: the source's labels (``y``).
        loss: its ``LossSpec`` (default: the top-level ``loss``).
        metrics: its ``MetricSpec`` list (default: the top-level ``metrics``).
        weight: its loss weight (default 1).
        path: the key path of its entry (``("model", "outputs", 1)``).
        own_loss, own_metrics: the entry gives its own (else the top-level ones are its).
    """

    name: str
    node: str
    label: Optional[str]
    loss: Any
    metrics: list
    weight: float
    path: tuple
    own_loss: bool = False
    own_metrics: bool = False

    def metric_path(self, index: int) -> tuple:
        """The key path of its metric ``index`` (its own, else the top-level one's)."""
        return self.path + ("metrics", index) if self.own_metrics else ("metrics", index)

    @property
    def loss_path(self) -> tuple:
        """The key path of its loss (its own, else the top-level one)."""
        return self.path + ("loss",) if self.own_loss else ("loss",)


def output_heads(spec: PipelineSpec) -> list[OutputHead]:
    """The outputs of a model of several, in ``model.outputs`` order; ``[]`` for a model
    of one output (the top-level ``loss`` and ``metrics`` are its, as they always were)."""
    from kerapipe.spec.graph import model_nodes

    heads = spec.model.heads
    nodes = model_nodes(spec).outputs
    if len(heads) < 2 or len(nodes) != len(heads):
        return []
    return [OutputHead(head.name, node, head.label, head.loss or spec.loss,
                       list(head.metrics if head.metrics is not None else spec.metrics),
                       head.weight, head.path, head.loss is not None, head.metrics is not None)
            for head, node in zip(heads, nodes)]
