"""Metrics that measure the run's labels: each Keras metric given its inputs in its form.

``kerapipe.spec.metrics`` says what form each Keras metric class expects and what kind a
run's labels are; ``MetricInputsAdapter`` wraps the Keras metric and converts, inside
the training step, the labels and outputs of this run into that form:

- the outputs of a model that ends without softmax/sigmoid (logits) become
  probabilities, as the saved model outputs them (so ``evaluate`` and ``predict`` see
  what training measured);
- one sigmoid unit ``p`` becomes the two class scores ``[1 - p, p]`` for a metric that
  takes one score per class, and the argmax for one that takes class ids;
- class indices become one-hot vectors for a metric that compares each output with a
  label, one-hot vectors become indices for a sparse metric; a target of one value per
  example gets the output's shape ``(n, 1)`` (Keras would broadcast it to ``(n, n)``).
"""

from __future__ import annotations

from typing import Any, Optional

from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
import keras
import tensorflow as tf
from keras import ops

from kerapipe.spec.checks import output_activation
from kerapipe.spec.metrics import (RunLabels, logged_metric_name, metric_class, metric_inputs,
                                   run_labels)
from kerapipe.spec.model import MetricSpec, PipelineSpec


@keras.saving.register_keras_serializable(package="kerapipe")
class MetricInputsAdapter(keras.metrics.Metric):
    """A Keras metric given this run's labels and outputs in the form it expects.

    Args:
        metric: the Keras metric.
        activation: ``"softmax"`` or ``"sigmoid"`` applied to the outputs (logits), or
            ``None``.
        two_columns: one sigmoid unit becomes ``[1 - p, p]``.
        class_ids: the outputs become the index of the largest.
        labels: ``"one_hot:N"`` (indices to one-hot vectors of N), ``"argmax"`` (one-hot
            vectors to indices), ``"like_outputs"`` (one value per example gets the
            outputs' rank) or ``None``.
    """

    def __init__(self, metric: Any, activation: Optional[str] = None, two_columns: bool = False,
                 class_ids: bool = False, labels: Optional[str] = None,
                 name: Optional[str] = None, dtype: Any = None) -> None:
        if isinstance(metric, dict):  # from_config
            metric = keras.saving.deserialize_keras_object(metric)
        super().__init__(name=name or metric.name, dtype=dtype or metric.dtype)
        # Which way is better (`up` for accuracy): Keras's EarlyStopping and
        # ModelCheckpoint read it to resolve `mode: auto` (`val_accuracy`: max)
        self._direction = getattr(metric, "_direction", None)
        self.metric = metric
        self.activation = activation
        self.two_columns = two_columns
        self.class_ids = class_ids
        self.labels = labels

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        if self.activation == "softmax":
            y_pred = ops.softmax(y_pred, axis=-1)
        elif self.activation == "sigmoid":
            y_pred = ops.sigmoid(y_pred)
        # A fresh tensor: Keras's binary_crossentropy reads the logits a softmax or sigmoid
        # output keeps (`_keras_logits`) as sigmoid logits, which for a softmax is wrong;
        # the metrics see the probabilities, as evaluate and predict do.
        y_pred = tf.identity(y_pred)
        if self.two_columns and y_pred.shape[-1] == 1:
            y_pred = ops.concatenate([1 - y_pred, y_pred], axis=-1)
        if self.class_ids:
            y_pred = ops.argmax(y_pred, axis=-1)
        if self.labels and self.labels.startswith("one_hot:"):
            if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
                y_true = ops.squeeze(y_true, axis=-1)
            y_true = ops.one_hot(ops.cast(y_true, "int32"), int(self.labels.split(":")[1]))
        elif self.labels == "argmax":
            y_true = ops.argmax(y_true, axis=-1)
        elif self.labels == "like_outputs" and len(y_true.shape) == len(y_pred.shape) - 1:
            y_true = ops.expand_dims(y_true, axis=-1)
        return self.metric.update_state(y_true, y_pred, sample_weight=sample_weight)

    def result(self) -> Any:
        return self.metric.result()

    def reset_state(self) -> None:
        self.metric.reset_state()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype,
                "metric": keras.saving.serialize_keras_object(self.metric),
                "activation": self.activation, "two_columns": self.two_columns,
                "class_ids": self.class_ids, "labels": self.labels}


def keras_metric(spec: MetricSpec, labels: Optional[RunLabels], output_units: Optional[int]
                 ) -> Any:
    """The Keras metric of ``spec`` for a run's ``labels`` (``None``: not known, the
    metric as Keras builds it), adapted to them. Raises what Keras's constructor raises."""
    name = logged_metric_name(spec)
    kwargs = {"name": name, **spec.kwargs}
    cls = metric_class(spec)
    if cls in ("F1Score", "FBetaScore") and "average" not in kwargs:
        kwargs["average"] = "macro"  # Keras's default gives one score per class
    if labels is not None and labels.kind == "raw":  # the labels and outputs as they are
        return getattr(keras.metrics, cls)(**kwargs)
    if labels is not None and labels.kind == "multi_label":
        return _multi_label_metric(spec, cls, kwargs, labels, name)
    if labels is None or labels.kind == "regression":
        if cls == "Accuracy":  # what Keras's "accuracy" picks for a target (binary_accuracy)
            cls = "BinaryAccuracy" if output_units == 1 else "CategoricalAccuracy"
        metric = getattr(keras.metrics, cls)(**kwargs)
        if labels is None:
            return metric
        return MetricInputsAdapter(metric, labels="like_outputs", name=name)
    if cls == "Accuracy":  # the accuracy that fits the labels, never element-wise equality
        cls = "CategoricalAccuracy"
    metric = getattr(keras.metrics, cls)(**kwargs)
    inputs = metric_inputs(spec)
    activation = None
    if labels.logits and not spec.kwargs.get("from_logits"):
        activation = "sigmoid" if output_units == 1 else "softmax"
    two_columns = labels.kind == "binary" and inputs.predictions in ("scores", "class_ids")
    columns = 2 if two_columns else output_units
    if inputs.labels == "index":
        adapt = "argmax" if labels.kind == "one_hot" else None
    elif labels.kind == "one_hot":
        adapt = None
    elif columns and columns > 1:
        adapt = f"one_hot:{columns}"
    else:
        adapt = "like_outputs"
    return MetricInputsAdapter(metric, activation=activation, two_columns=two_columns,
                               class_ids=inputs.predictions == "class_ids", labels=adapt,
                               name=name)


def _multi_label_metric(spec: MetricSpec, cls: str, kwargs: dict, labels: RunLabels,
                        name: str) -> Any:
    """A metric of multi-hot labels: each label measured on its own sigmoid (``accuracy``
    is Keras's binary accuracy), at the labels' threshold where the metric takes one."""
    if cls == "Accuracy":
        cls = "BinaryAccuracy"
    if cls in ("BinaryAccuracy", "F1Score", "FBetaScore") and labels.threshold is not None:
        kwargs.setdefault("threshold", labels.threshold)
    metric = getattr(keras.metrics, cls)(**kwargs)
    activation = "sigmoid" if labels.logits and not spec.kwargs.get("from_logits") else None
    return MetricInputsAdapter(metric, activation=activation, name=name)


def loaded_run_labels(spec: PipelineSpec, num_classes: Optional[int], output_shape: tuple,
                      logits: Optional[bool] = None) -> tuple[RunLabels, Optional[int]]:
    """The run's labels from the loaded data's class count (``None``: a continuous
    target) and the model's output shape (per example); and the output's width.
    ``logits``: whether the outputs are logits (default: read from the output layer)."""
    units = output_shape[-1] if output_shape else 1
    if logits is None:
        logits = output_activation(spec) not in ("softmax", "sigmoid")
    labels = run_labels(spec, regression=num_classes is None, num_classes=num_classes,
                        output_units=units, logits=logits)
    return labels, units
