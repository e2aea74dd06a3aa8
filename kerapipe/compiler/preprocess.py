"""Preprocessing steps -> Keras preprocessing layers, shared by tf.data and the saved model.

Each step of stage ``layer`` (``spec/steps.py``) becomes one Keras layer, built by its
entry in ``LAYER_BUILDERS`` (``Rescaling``, ``Normalization``, ``Reshape``,
``Resizing``, an application's ``preprocess_input``), or is a ``Random*`` augmentation
layer. The same layer objects run inside the tf.data pipeline during training and are
stacked in front of the trained model in the exported inference model, so
``model.keras`` accepts raw inputs and can never disagree with training. Label steps
(``one_hot``) and load steps (``pad_sequences``, applied when the data is loaded) are
not layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
import keras
import numpy as np
import tensorflow as tf

from kerapipe.compiler.build import build_layer, keras_guard
from kerapipe.compiler.features import adapt_refusing_no_tokens
from kerapipe.errors import DataError, SpecError
from kerapipe.spec.applications import application
from kerapipe.spec.issues import Issue
from kerapipe.spec.model import LayerSpec, PipelineSpec
from kerapipe.spec.steps import ADAPTED_BY, STRINGS_NEED_A_STEP, step_kind, takes_strings


@dataclass
class Preprocessing:
    """The preprocessing of one pipeline, as Keras layers.

    Args:
        before_cache: deterministic layers before the first random one (cacheable).
        after_cache: layers from the first random one on (run every epoch).
        one_hot_classes: number of classes for one-hot labels, or ``None``.
        stages: ``(step name, output shape)`` for ``kerapipe plan``.
        input_shapes: a model of several inputs (``model.inputs``): each input's example
            shape by name (no layer step applies to them); ``None`` for one input.
    """

    before_cache: list = field(default_factory=list)
    after_cache: list = field(default_factory=list)
    one_hot_classes: Optional[int] = None
    stages: list = field(default_factory=list)
    input_shapes: Optional[dict] = None
    # What the trainable model takes: the last layer's output dtype (int64 token ids after
    # TextVectorization, float32 after Rescaling), or the raw dtype without layers; typed
    # features of several inputs: a dict by input name.
    model_input_dtype: Any = "float32"
    # Typed features (data.features): their FeatureEncoding, whose encoder is the layer
    # before the cache and whose raw columns the inference model takes.
    encoding: Any = None

    @property
    def layers(self) -> list:
        return self.before_cache + self.after_cache

    @property
    def cached_shape(self) -> tuple:
        """Shape of one example where the cache sits (after the deterministic steps); for
        several inputs, the shape of all their values side by side."""
        if self.input_shapes is not None:
            return (sum(math.prod(shape) for shape in self.input_shapes.values()),)
        shape_stages = [shape for _, shape in self.stages]
        return tuple(shape_stages[len(self.before_cache)]) if shape_stages else ()

    @property
    def model_input_shape(self) -> Any:
        """What the trainable model takes: the last stage's example shape, or for several
        inputs each input's shape by name."""
        if self.input_shapes is not None:
            return dict(self.input_shapes)
        return self.stages[-1][1]


def _rescaling(options) -> keras.layers.Layer:
    return keras.layers.Rescaling(scale=options.scale, offset=options.offset, name="rescale")


def _normalization(options) -> keras.layers.Layer:
    return keras.layers.Normalization(axis=options.axis, name="normalize")


def _reshape(options) -> keras.layers.Layer:
    return keras.layers.Reshape(tuple(options.target_shape), name="reshape")


def _resizing(options) -> keras.layers.Layer:
    height, width = options.size
    return keras.layers.Resizing(height, width, interpolation=options.interpolation,
                                 name="resize")


# keras.applications.imagenet_utils.preprocess_input's numbers (RGB order; caffe's
# mean is in the BGR order it works in). tests/test_backbones.py compares the layers
# below with Keras's own function for each mode.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)


def _preprocess_input(options) -> keras.layers.Layer:
    """The application's ``preprocess_input`` as one plain Keras layer, so that
    ``model.keras`` loads without kerapipe: ``tf`` and ``torch`` scale (per channel)
    with ``Rescaling``; ``caffe`` flips RGB to BGR and subtracts the mean with a fixed,
    frozen 1x1 ``Dense`` (a permutation matrix and the mean as bias); ``none`` (the
    model includes its preprocessing) is ``Identity``."""
    mode = application(options.model).preprocess
    name = "preprocess_input"
    if mode == "tf":
        return keras.layers.Rescaling(scale=1 / 127.5, offset=-1.0, name=name)
    if mode == "torch":
        return keras.layers.Rescaling(scale=[1 / (255 * s) for s in TORCH_STD],
                                      offset=[-m / s for m, s in zip(TORCH_MEAN, TORCH_STD)],
                                      name=name)
    if mode == "caffe":
        layer = keras.layers.Dense(3, trainable=False, name=name)
        layer.build((None, 3))
        flip = np.eye(3, dtype="float32")[::-1]  # column j takes input channel 2 - j
        layer.set_weights([flip, -np.array(CAFFE_MEAN_BGR, dtype="float32")])
        return layer
    return keras.layers.Identity(name=name)


# The Keras layer of each `layer` step of spec/steps.STEPS, from the step's options, by
# the step's name (tests/test_steps_registry.py keeps the two in step).
LAYER_BUILDERS: dict[str, Callable[..., keras.layers.Layer]] = {
    "rescale": _rescaling,
    "normalize": _normalization,
    "reshape": _reshape,
    "resize": _resizing,
    "preprocess_input": _preprocess_input,
}


def preprocessing_layers(spec: PipelineSpec, raw_shape: tuple, dtype: str = "float32"
                         ) -> Preprocessing:
    """The preprocessing layers, each built and called symbolically on the shape it
    receives, nothing adapted yet (what ``validate --deep`` checks without data).

    Raises:
        SpecError: Keras refuses a step's arguments or input shape, a step leaves an
            example with a size below 1, or a ``Random*`` step changes the shape (one
            unlocated issue at the step's key path).
    """
    if isinstance(raw_shape, dict):
        return _inputs_preprocessing(spec, raw_shape, dtype)
    result = Preprocessing(model_input_dtype=dtype)
    shape = tuple(raw_shape)
    result.stages.append(("raw input", shape))
    tensor = None
    # What validation, test and the saved model see: training-only steps pass examples
    # through there, so a crop is fine when a later step (`resize`) restores the shape.
    seen, reshaped = shape, None
    for index, step in enumerate(spec.data.preprocess):
        kind = step_kind(step.kind)
        if kind.stage == "load":
            continue  # applied when the data is loaded: ragged lists are not tensors
        if kind.stage == "label":
            result.one_hot_classes = step.options.num_classes  # one_hot, the label step
            continue
        path = ("data", "preprocess", index, step.kind)
        if isinstance(step.options, LayerSpec):
            layer = build_layer(step.options, path=path)
        else:
            with keras_guard("layer-arguments", path, f"Keras refused the {step.kind} step"):
                layer = LAYER_BUILDERS[step.kind](step.options)
        with keras_guard("layer-arguments", path, f"the {step.kind} step cannot take an "
                         f"example of shape {shape}"):
            tensor = layer(keras.Input(shape=shape, dtype=dtype) if tensor is None else tensor)
        out = tuple(tensor.shape[1:])
        result.model_input_dtype = model_dtype(tensor.dtype)
        _check_step_shape(step.kind, path, shape, out)
        if kind.training_only:
            if reshaped is None and out != shape:  # the first step that changes it
                reshaped = (step.kind, path, shape, out)
        else:
            with keras_guard("layer-arguments", path, f"the {step.kind} step cannot take an "
                             f"example of shape {seen} (without augmentation)"):
                seen = tuple(layer.compute_output_shape((None, *seen))[1:])
        shape = out
        result.stages.append((step.kind, shape))
        random = kind.training_only
        (result.after_cache if random or result.after_cache else result.before_cache).append(layer)
    if reshaped is not None and seen != shape:
        _refuse_reshaping_augmentation(*reshaped, seen)
    return result


def model_dtype(dtype: str) -> str:
    """The trainable model's input dtype for a preprocessing output: integers stay
    integers (token ids and lookup indices feed an Embedding), everything else float32."""
    return "int64" if "int" in str(dtype) else "float32"


def _inputs_preprocessing(spec: PipelineSpec, shapes: dict, dtype: str) -> Preprocessing:
    """The preprocessing of a model of several inputs: label steps only (the spec side
    refuses the others, which work on one input: ``model._check_model_inputs``)."""
    result = Preprocessing(input_shapes={name: tuple(shape) for name, shape in shapes.items()},
                           model_input_dtype=dtype)
    result.stages = [(f"raw input {name}", tuple(shape)) for name, shape in shapes.items()]
    for index, step in enumerate(spec.data.preprocess):
        if step_kind(step.kind).stage == "label":
            result.one_hot_classes = step.options.num_classes
        else:
            raise SpecError([Issue("not-applicable", ("data", "preprocess", index, step.kind),
                                   f"the {step.kind} step works on a model's one input; this "
                                   f"model has {len(shapes)}.", at_key=True)])
    return result


def _check_step_shape(kind: str, path: tuple, shape: tuple, out: tuple) -> None:
    """A step leaves at least one value, and augmentation keeps the shape."""
    if any(d is not None and d < 1 for d in out):
        raise SpecError([Issue("shape-error", path, f"the {kind} step leaves no values: it "
                               f"turns an example of shape {shape} into {out}. Every size must "
                               "be at least 1.", at_key=True)])
    if step_kind(kind).training_only and _enlarges(shape, out):
        _refuse_reshaping_augmentation(kind, path, shape, out, shape)


def _enlarges(shape: tuple, out: tuple) -> bool:
    """Whether a step makes some size of the example larger (a crop larger than it)."""
    return any(o is not None and s is not None and o > s for o, s in zip(out, shape))


def _refuse_reshaping_augmentation(kind: str, path: tuple, shape: tuple, out: tuple,
                                   seen: tuple) -> None:
    """A training-only step whose change of shape the model would not see the same way
    in validation, test and the saved model (where it passes examples through)."""
    why = (f" ({kind} cannot take {out[:2]} out of {shape[:2]}; Keras would enlarge the "
           "images instead)" if _enlarges(shape, out) else "")
    raise SpecError([Issue("augmentation-shape", path, f"{kind} changes the example shape "
                           f"from {shape} to {out}{why}, but augmentation runs on training "
                           f"batches only, so validation, test and the saved model would "
                           f"see {seen} where training sees the shape after it. Keep the "
                           "shape: a crop no larger than the input, then `resize` back, or "
                           "RandomZoom/RandomTranslation.", at_key=True)])


def build_preprocessing(spec: PipelineSpec, train_features: Callable[[], tf.data.Dataset],
                        num_classes: Optional[int], raw_shape: tuple,
                        dtype: str = "float32") -> Preprocessing:
    """Build the preprocessing layers; ``Normalization`` adapts on the training split only.

    Args:
        spec: the pipeline spec.
        train_features: returns the training split's raw features (unbatched dataset).
        num_classes: classes in the data (for ``one_hot`` without ``num_classes``).
        raw_shape: shape of one raw example.
        dtype: dtype of the raw examples. Defaults to `float32`.

    Raises:
        SpecError: see ``preprocessing_layers``.
    """
    if spec.data.features is not None:
        return _feature_preprocessing(spec, train_features, num_classes)
    check_raw_dtype(spec, train_features().element_spec)
    result = preprocessing_layers(spec, raw_shape, dtype)
    if result.one_hot_classes is None and spec.data.first_options("one_hot") is not None:
        result.one_hot_classes = num_classes
    layer_steps = [(index, step) for index, step in enumerate(spec.data.preprocess)
                   if step_kind(step.kind).stage == "layer"]
    for position, layer in enumerate(result.layers):
        if _learns_from_data(layer_steps[position][1]):
            index, step = layer_steps[position]
            adapt_refusing_no_tokens(
                layer, lambda: _adapt_step(layer, index, step, _adapt_dataset(
                    train_features(), result.layers[:position], dtype)),
                f"data.preprocess[{index}] ({step.kind})",
                "Check the texts, or give the step a `vocabulary`.")
    return result


def _adapt_step(layer, index: int, step, dataset) -> None:
    with keras_guard("layer-arguments", ("data", "preprocess", index, step.kind),
                     f"the {step.kind} step could not adapt on the training split"):
        layer.adapt(dataset)


def _feature_preprocessing(spec: PipelineSpec, train_features: Callable[[], tf.data.Dataset],
                           num_classes: Optional[int]) -> Preprocessing:
    """Typed features (``data.features``): FeatureSpace and the text vectorizers adapted on
    the training split's raw columns; their encoder is the one layer before the cache.
    Only label steps remain in data.preprocess (the spec side refuses the others)."""
    from kerapipe.compiler.features import FeatureEncoding

    encoding = FeatureEncoding(spec)
    with keras_guard("layer-arguments", ("data", "features"), "Keras refused a typed "
                     "feature (keras.utils.FeatureSpace / TextVectorization)"):
        encoding.adapt(train_features().batch(_ADAPT_BATCH))
    shape, dtype = encoding.output_shape, encoding.output_dtype
    result = Preprocessing(before_cache=[encoding.encoder], encoding=encoding,
                           model_input_dtype=dtype,
                           input_shapes=shape if isinstance(shape, dict) else None)
    result.stages = [("raw columns", (len(encoding.features),)),
                     ("features", shape if not isinstance(shape, dict) else
                      (sum(math.prod(s) for s in shape.values()),))]
    if spec.data.first_options("one_hot") is not None:
        result.one_hot_classes = spec.data.first_options("one_hot").num_classes or num_classes
    return result


def _learns_from_data(step: Any) -> bool:
    """Whether a step's layer is adapted on the training split: kerapipe's ``normalize``,
    and the Keras preprocessing layers of ``steps.ADAPTABLE_LAYERS`` that have ``adapt``
    and whose arguments do not already give what it would learn (``steps.ADAPTED_BY``)."""
    if step.kind == "normalize":
        return True
    if not isinstance(step.options, LayerSpec) or step.kind not in ADAPTED_BY:
        return False
    return bool(ADAPTED_BY[step.kind]) and not any(
        step.options.kwargs.get(key) is not None for key in ADAPTED_BY[step.kind])


def check_raw_dtype(spec: PipelineSpec, element_spec: Any) -> None:
    """Strings need a step that takes strings first (``TextVectorization``,
    ``StringLookup``), and numbers one that does not; checked on the source's tf.data
    element type, before anything is adapted.

    Raises:
        DataError: the examples and the first layer step do not fit.
    """
    specs = element_spec.values() if isinstance(element_spec, dict) else [element_spec]
    strings = any(part.dtype == tf.string for part in specs)
    wanted = takes_strings(spec.data.preprocess)
    if strings and not wanted:
        raise DataError(STRINGS_NEED_A_STEP)
    if wanted and not strings:
        first = next(step.kind for step in spec.data.preprocess
                     if step_kind(step.kind).stage == "layer")
        raise DataError(f"the {first} step takes strings, but the examples are numbers. "
                        "Remove it, or use IntegerLookup/Discretization for numbers.")


_ADAPT_BATCH = 256  # examples per batch while adapting


def _adapt_dataset(features: tf.data.Dataset, layers: list,
                   dtype: str = "float32") -> tf.data.Dataset:
    data = features.batch(_ADAPT_BATCH).map(lambda x: _cast(x, dtype),
                                   num_parallel_calls=tf.data.AUTOTUNE)
    if layers:
        data = data.map(lambda x: apply_layers(layers, x, training=False),
                        num_parallel_calls=tf.data.AUTOTUNE)
    return data


def _cast(x, dtype: str):
    """Raw features as the preprocessing takes them; strings stay strings."""
    return x if x.dtype == tf.string else tf.cast(x, dtype)


def apply_layers(layers: list, x, training: bool):
    for layer in layers:
        x = layer(x, training=training)
    return x
