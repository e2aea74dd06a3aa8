"""Preprocessing steps -> Keras preprocessing layers, shared by tf.data and the saved model.

Each step of ``data.preprocess`` becomes one Keras layer (``Rescaling``,
``Normalization``, ``Reshape``, ``Resizing``, or a ``Random*`` augmentation layer). The
same layer objects run inside the tf.data pipeline during training and are stacked in
front of the trained model in the exported inference model, so ``model.keras`` accepts
raw inputs and can never disagree with training. Label steps (``one_hot``) and
``pad_sequences`` (applied when the data is loaded) are not layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import keras
import tensorflow as tf

from kerapipe.compiler.build import build_layer
from kerapipe.spec.model import LayerSpec, PipelineSpec


@dataclass
class Preprocessing:
    """The preprocessing of one pipeline, as Keras layers.

    Args:
        before_cache: deterministic layers before the first random one (cacheable).
        after_cache: layers from the first random one on (run every epoch).
        one_hot_classes: number of classes for one-hot labels, or ``None``.
        stages: ``(step name, output shape)`` for ``kerapipe plan``.
    """

    before_cache: list = field(default_factory=list)
    after_cache: list = field(default_factory=list)
    one_hot_classes: Optional[int] = None
    stages: list = field(default_factory=list)

    @property
    def layers(self) -> list:
        return self.before_cache + self.after_cache

    @property
    def cached_shape(self) -> tuple:
        """Shape of one example where the cache sits (after the deterministic steps)."""
        shape_stages = [shape for _, shape in self.stages]
        return tuple(shape_stages[len(self.before_cache)]) if shape_stages else ()


def _step_layer(kind: str, options) -> keras.layers.Layer:
    if kind == "rescale":
        return keras.layers.Rescaling(scale=options.scale, offset=options.offset, name="rescale")
    if kind == "normalize":
        return keras.layers.Normalization(axis=options.axis, name="normalize")
    if kind == "reshape":
        return keras.layers.Reshape(tuple(options.target_shape), name="reshape")
    if kind == "resize":
        height, width = options.size
        return keras.layers.Resizing(height, width, interpolation=options.interpolation,
                                     name="resize")
    raise ValueError(f"not a layer step: {kind}")  # pad_sequences/one_hot are handled apart


def build_preprocessing(spec: PipelineSpec, train_features: Callable[[], tf.data.Dataset],
                        num_classes: Optional[int], raw_shape: tuple) -> Preprocessing:
    """Build the preprocessing layers; ``Normalization`` adapts on the training split only.

    Args:
        spec: the pipeline spec.
        train_features: returns the training split's raw features (unbatched dataset).
        num_classes: classes in the data (for ``one_hot`` without ``num_classes``).
        raw_shape: shape of one raw example.
    """
    result = Preprocessing()
    shape = tuple(raw_shape)
    result.stages.append(("raw input", shape))
    applied: list = []
    for step in spec.data.preprocess:
        if step.kind == "pad_sequences":
            continue  # applied when the data is loaded: ragged lists are not tensors
        if step.kind == "one_hot":
            result.one_hot_classes = step.options.num_classes or num_classes
            continue
        if isinstance(step.options, LayerSpec):
            layer = build_layer(step.options)
        else:
            layer = _step_layer(step.kind, step.options)
        if isinstance(layer, keras.layers.Normalization):
            layer.adapt(_adapt_dataset(train_features(), applied))
        shape = tuple(layer.compute_output_shape((None, *shape))[1:])
        result.stages.append((step.kind, shape))
        random = step.kind.startswith("Random")
        (result.after_cache if random or result.after_cache else result.before_cache).append(layer)
        applied.append(layer)
    return result


def _adapt_dataset(features: tf.data.Dataset, layers: list) -> tf.data.Dataset:
    data = features.batch(256).map(lambda x: tf.cast(x, tf.float32),
                                   num_parallel_calls=tf.data.AUTOTUNE)
    if layers:
        data = data.map(lambda x: apply_layers(layers, x, training=False),
                        num_parallel_calls=tf.data.AUTOTUNE)
    return data


def apply_layers(layers: list, x, training: bool):
    for layer in layers:
        x = layer(x, training=training)
    return x
