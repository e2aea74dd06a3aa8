"""Build Keras objects from spec entries by calling their constructors.

``keras.layers.deserialize`` cannot resolve bare class names written in a file, and a
file must never name arbitrary importable objects, so each object is built from the
class that the Keras name catalogue (checked on the spec side) says exists, found by
name in the public ``keras.layers`` / ``keras.losses`` / ... namespaces only.
"""

from __future__ import annotations

import re
from typing import Any, Optional

import keras

from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.checks import output_activation
from kerapipe.spec.issues import Issue
from kerapipe.spec.model import (NESTED_LAYER_ARGS, LayerSpec, LossSpec, MetricSpec,
                                 OptimizerSpec, PipelineSpec, ScheduleSpec, is_custom_name)


def build_layer(spec: LayerSpec, custom: Optional[dict[str, Any]] = None) -> keras.layers.Layer:
    """A new Keras layer from ``ClassName: {kwargs}``; nested layer arguments recurse.

    ``custom`` maps the pipeline's ``module.Name`` references to imported classes.
    """
    kwargs = {key: build_layer(value, custom)
              if key in NESTED_LAYER_ARGS and isinstance(value, LayerSpec) else value
              for key, value in spec.kwargs.items()}
    if is_custom_name(spec.name):
        return (custom or {})[spec.name](**kwargs)
    return getattr(keras.layers, spec.name)(**kwargs)


def build_loss(spec: PipelineSpec, custom: Optional[dict[str, Any]] = None) -> Any:
    """The loss object; ``from_logits`` is inferred from the output activation unless set."""
    loss: LossSpec = spec.loss
    if is_custom_name(loss.name):
        from kerapipe.compiler.imports import custom_loss

        return custom_loss((custom or {})[loss.name], dict(loss.kwargs))
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


def short_error(err: Exception) -> str:
    """One readable line from a Keras exception (they can be long and multi-line)."""
    text = re.sub(r"\s+", " ", str(err)).strip()
    text = text.split(" Arguments received by ")[0]  # Keras appends a long call dump
    return (text[:400] + "...") if len(text) > 400 else text


def build_core_model(spec: PipelineSpec, input_shape: tuple, input_dtype: str = "float32",
                     custom: Optional[dict[str, Any]] = None
                     ) -> tuple[Optional[keras.Model], list[Issue]]:
    """The trainable model: ``keras.Input(input_shape)`` followed by the spec's layers.

    Returns the model, or ``None`` and the issue at the first layer Keras refused
    (construction error or shape error), located by its key path.
    """
    inputs = keras.Input(shape=tuple(input_shape), dtype=input_dtype, name="features")
    tensor = inputs
    for index, layer_spec in enumerate(spec.model.layers):
        path = ("model", "layers", index, layer_spec.name)
        try:
            layer = build_layer(layer_spec, custom)
        except Exception as err:  # Keras raises many types for bad arguments
            return None, [Issue("layer-arguments", path, f"Keras refused the arguments of "
                                f"{layer_spec.name}: {short_error(err)}", at_key=True)]
        try:
            tensor = layer(tensor)
        except Exception as err:
            return None, [Issue("shape-error", path, f"{layer_spec.name} cannot take an input "
                                f"of shape {tuple(inputs.shape if tensor is inputs else tensor.shape)}: "
                                f"{short_error(err)}", at_key=True)]
    return keras.Model(inputs, tensor, name=_model_name(spec.name)), []


def _model_name(name: Optional[str]) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name or "model")


def build_loss_on_probabilities(spec: PipelineSpec) -> keras.losses.Loss:
    """The run's loss for a model that outputs probabilities (the inference model)."""
    entry = load_catalog().losses.get(spec.loss.name)
    kwargs = dict(spec.loss.kwargs)
    if "from_logits" in entry.params:
        kwargs["from_logits"] = False
    return getattr(keras.losses, entry.name)(**kwargs)
