"""Build Keras objects from spec entries by calling their constructors.

``keras.layers.deserialize`` cannot resolve bare class names written in a file, and a
file must never name arbitrary importable objects, so each object is built from the
class that the Keras name catalogue (checked on the spec side) says exists, found by
name in the public ``keras.layers`` / ``keras.losses`` / ... namespaces only.
"""

from __future__ import annotations

from typing import Any

import keras

from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.checks import output_activation
from kerapipe.spec.model import (NESTED_LAYER_ARGS, LayerSpec, LossSpec, MetricSpec,
                                 OptimizerSpec, PipelineSpec, ScheduleSpec)


def build_layer(spec: LayerSpec) -> keras.layers.Layer:
    """A new Keras layer from ``ClassName: {kwargs}``; nested layer arguments recurse."""
    kwargs = {key: build_layer(value) if key in NESTED_LAYER_ARGS and isinstance(value, LayerSpec)
              else value for key, value in spec.kwargs.items()}
    return getattr(keras.layers, spec.name)(**kwargs)


def build_loss(spec: PipelineSpec) -> keras.losses.Loss:
    """The loss object; ``from_logits`` is inferred from the output activation unless set."""
    loss: LossSpec = spec.loss
    entry = load_catalog().losses.get(loss.name)
    kwargs = dict(loss.kwargs)
    if "from_logits" in entry.params and "from_logits" not in kwargs:
        kwargs["from_logits"] = output_activation(spec.model.layers) not in ("softmax", "sigmoid")
    return getattr(keras.losses, entry.name)(**kwargs)


def build_learning_rate(rate: Any) -> Any:
    if isinstance(rate, ScheduleSpec):
        return getattr(keras.optimizers.schedules, rate.name)(**rate.kwargs)
    return rate


def build_optimizer(spec: OptimizerSpec) -> keras.optimizers.Optimizer:
    entry = load_catalog().optimizers.get(spec.name)
    return getattr(keras.optimizers, entry.name)(
        learning_rate=build_learning_rate(spec.learning_rate), **spec.kwargs)


def build_metric(spec: MetricSpec) -> Any:
    """A metric object, or the string ``accuracy``/``acc`` that Keras resolves per loss."""
    if spec.name in ("accuracy", "acc") and not spec.kwargs:
        return spec.name
    entry = load_catalog().metrics.get(spec.name)
    return getattr(keras.metrics, entry.name)(**spec.kwargs)
