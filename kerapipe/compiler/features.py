"""Typed features -> Keras: ``keras.utils.FeatureSpace`` for the table, ``TextVectorization``
for text, one encoder model shared by tf.data and the saved model.

``FeatureEncoding`` turns the raw columns of a table (a dict of tensors by column name:
float32 numbers, int32 whole numbers, strings) into what the trainable model takes: one
vector of every feature, or (with ``model.inputs``) a dict of the features that are
inputs of their own plus ``tabular``, the vector of the rest. Its ``encoder`` is a plain
Keras functional model over FeatureSpace's own preprocessing layers (``get_inputs`` /
``get_encoded_features``, as keras.io's FeatureSpace recipe builds its inference model)
and one TextVectorization per text feature: tf.data runs it before the cache, and the
inference model puts the same layers in front of the trained model, so ``model.keras``
takes the raw columns and loads with plain Keras in safe mode.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
import keras
import tensorflow as tf

from kerapipe.compiler.build import keras_guard
from kerapipe.compiler.sources.csv_typed import INTEGER_OOV_TOKEN
from kerapipe.errors import DataError, SpecError
from kerapipe.spec.features import LAYER_NAME, TABULAR_INPUT, FeatureSpec
from kerapipe.spec.issues import Issue
from kerapipe.spec.model import PipelineSpec

def layer_names(features: list[FeatureSpec]) -> dict[str, str]:
    """Each feature's name for the layers it brings (``{name}_preprocessor``, FeatureSpace's;
    ``{name}_text``, the text vectorizer): the feature's own name where TensorFlow takes it
    in a layer's name and it gives no layer the name of another feature's input; else the
    name with the other characters made ``_`` and its position added. A column may be
    called ``bill length (mm)``: its input keeps that name, its layers cannot."""
    inputs = {f.name for f in features}
    out: dict[str, str] = {}
    for position, feature in enumerate(features):
        base = feature.name
        suffix = "_text" if feature.is_text else "_preprocessor"
        if not LAYER_NAME.fullmatch(base) or base + suffix in inputs:
            base = re.sub(r"[^A-Za-z0-9_.-]", "_", base)
            base = f"feature{position}_{base}"
            while base + suffix in inputs:
                base += "_"
        out[feature.name] = base
    return out


def _constructor(feature: FeatureSpec, layer_name: Optional[str] = None) -> Any:
    """The FeatureSpace feature of a typed column (its constructor, its arguments), its
    layers named ``layer_name`` (``layer_names``)."""
    from keras.utils import FeatureSpace

    kwargs = dict(feature.kwargs)
    name = layer_name or feature.name
    if feature.type == "float_discretized" and "bin_boundaries" in kwargs:
        kwargs.setdefault("num_bins", None)  # a positional argument Keras must not get too
    with keras_guard("layer-arguments", ("data", "features", feature.name, feature.type),
                     f"Keras refused feature '{feature.name}' (FeatureSpace.{feature.type})"):
        if feature.type == "integer_categorical":
            # FeatureSpace.integer_categorical, but for IntegerLookup's out-of-vocabulary
            # token: its default, -1, is a common code in real tables, and the lookup would
            # encode a -1 of the data as unknown, with the values it never saw.
            lookup = keras.layers.IntegerLookup(
                max_tokens=kwargs.get("max_tokens"),
                num_oov_indices=kwargs.get("num_oov_indices", 1),
                oov_token=INTEGER_OOV_TOKEN, name=f"{name}_preprocessor")
            return FeatureSpace.feature(dtype="int32", preprocessor=lookup,
                                        output_mode=kwargs.get("output_mode", "one_hot"))
        return getattr(FeatureSpace, feature.type)(**kwargs, name=name)


def _text_vectorization(feature: FeatureSpec, layer_name: Optional[str] = None
                        ) -> keras.layers.TextVectorization:
    """A text feature's TextVectorization, its Keras arguments as the file gives them
    (``ngrams`` as the tuple Keras takes, where YAML gives a list)."""
    kwargs = dict(feature.kwargs)
    if isinstance(kwargs.get("ngrams"), list):
        kwargs["ngrams"] = tuple(kwargs["ngrams"])
    with keras_guard("layer-arguments", ("data", "features", feature.name, "text"),
                     f"Keras refused text feature '{feature.name}' (TextVectorization)"):
        return keras.layers.TextVectorization(**kwargs,
                                              name=f"{layer_name or feature.name}_text")


def _skip_given_boundaries(space: Any, features: list) -> None:
    """``FeatureSpace.adapt`` adapts every Discretization, but Keras refuses to adapt one
    whose ``bin_boundaries`` are given (Keras 3 passes over only preset Normalization and
    TextVectorization layers): leave the float_discretized features with given boundaries
    out of the layers it adapts, as there is nothing for them to learn."""
    given = {f.name for f in features
             if f.type == "float_discretized" and "bin_boundaries" in f.kwargs}
    if not given:
        return
    adaptable = space._list_adaptable_preprocessors
    space._list_adaptable_preprocessors = lambda: [n for n in adaptable() if n not in given]


def _check_model_name(spec: PipelineSpec, features: list[FeatureSpec]) -> None:
    """The saved model holds the trained model as a layer named after the pipeline
    (``build._model_name``) beside one input per feature: they cannot share a name.

    Raises:
        SpecError: a feature of the model's name.
    """
    from kerapipe.compiler.build import _model_name

    model = _model_name(spec.name)
    for feature in features:
        if feature.name == model:
            raise SpecError([Issue("duplicate-name", ("data", "features", feature.name),
                                   f"'{feature.name}' is also the name of the model (the "
                                   "pipeline's `name:`, else its file's name), and the saved "
                                   "model holds both an input of that name and the model. "
                                   "Give the pipeline another `name:`, or rename the "
                                   "column.", at_key=True)])


def _no_tokens(layer: keras.layers.TextVectorization) -> bool:
    """Whether an adapted TextVectorization holds only its padding and OOV tokens."""
    try:
        vocabulary = layer.get_vocabulary()
    except Exception:  # not adapted at all
        return True
    return not [token for token in vocabulary if token not in ("", "[UNK]")]


def adapt_refusing_no_tokens(layer: keras.layers.Layer, adapt: Callable[[], None],
                             where: str, fix: str) -> None:
    """``adapt()`` (the layer's adapt on the training split); a TextVectorization that
    learns no token from it (every text empty, or punctuation only, once standardized) is
    a data error naming ``where``, with ``fix``. tf_idf's adapt fails on an empty
    vocabulary: that failure is this one. Typed text features and text steps alike.

    Raises:
        DataError: the layer learned no token.
    """
    text = isinstance(layer, keras.layers.TextVectorization)
    try:
        adapt()
    except Exception:
        if not (text and _no_tokens(layer)):
            raise
    if text and _no_tokens(layer):
        raise DataError(f"{where}: its training split holds no token once standardized and "
                        "split (every text is empty, or punctuation only), so "
                        "TextVectorization learns no vocabulary and could encode nothing. "
                        f"{fix}")


class FeatureEncoding:
    """The typed features of a pipeline as Keras layers, adapted on the training split.

    Args:
        spec: a validated pipeline with ``data.features``.
    """

    def __init__(self, spec: PipelineSpec) -> None:
        from keras.utils import FeatureSpace

        self.features = list(spec.data.features)
        self.model_inputs = list(spec.model.inputs or ())
        _check_model_name(spec, self.features)
        names = layer_names(self.features)
        tabular = [f for f in self.features if not f.is_text]
        crosses = [FeatureSpace.cross(feature_names=tuple(c.feature_names),
                                      crossing_dim=c.crossing_dim, output_mode=c.output_mode)
                   for c in spec.data.crosses]
        self.space = (FeatureSpace(features={f.name: _constructor(f, names[f.name])
                                             for f in tabular},
                                   crosses=crosses or None, output_mode="dict")
                      if tabular else None)
        self.texts = {f.name: _text_vectorization(f, names[f.name])
                      for f in self.features if f.is_text}
        self.encoder: Optional[keras.Model] = None

    # --- adapting and encoding --------------------------------------------------------

    def adapt(self, columns: tf.data.Dataset) -> None:
        """Adapt FeatureSpace and the text vectorizers on the training split's raw columns
        (a dataset of batched dicts, shaped as ``FeatureSpec.input_shape``), then build the
        encoder."""
        if self.space is not None:
            names = [f.name for f in self.features if not f.is_text]
            _skip_given_boundaries(self.space, self.features)
            self.space.adapt(columns.map(lambda x: {n: x[n] for n in names}))
        given = {f.name for f in self.features if f.is_text and "vocabulary" in f.kwargs}
        for name, layer in self.texts.items():
            if name in given:
                continue  # Keras refuses to adapt a layer given its vocabulary
            adapt_refusing_no_tokens(
                layer, lambda: layer.adapt(columns.map(lambda x, n=name: x[n])),
                f"text feature '{name}'",
                "Check the column in the CSV, or give the feature a `vocabulary`.")
        self.encoder = self._build_encoder()

    def _build_encoder(self) -> keras.Model:
        raw: dict[str, Any] = {}
        encoded: dict[str, Any] = {}
        if self.space is not None:
            raw.update(self.space.get_inputs())
            encoded.update(self.space.get_encoded_features())
        for name, layer in self.texts.items():
            raw[name] = keras.Input(shape=(), dtype="string", name=name)
            encoded[name] = layer(raw[name])
        return keras.Model(raw, self._model_inputs(encoded), name="features")

    def _model_inputs(self, encoded: dict) -> Any:
        """The encoded features grouped as the trainable model takes them: the features
        named in ``model.inputs`` alone, the rest (crosses included) side by side in one
        vector, in name order; one input: that vector (or a lone text feature's ids)."""
        own = [name for name in self.model_inputs if name != TABULAR_INPUT]
        rest = sorted(name for name in encoded if name not in own)
        if not self.model_inputs:
            return self._concatenate(encoded, rest)
        out = {name: encoded[name] for name in own}
        if TABULAR_INPUT in self.model_inputs:
            out[TABULAR_INPUT] = self._concatenate(encoded, rest)
        return {name: out[name] for name in self.model_inputs}

    @staticmethod
    def _concatenate(encoded: dict, names: list) -> Any:
        parts = [keras.ops.cast(encoded[name], "float32") for name in names]
        if len(parts) == 1:
            return encoded[names[0]] if len(encoded) == 1 else parts[0]
        return keras.layers.Concatenate(axis=-1, name="tabular")(parts)

    def raw_inputs(self) -> dict:
        """New ``keras.Input``s of the raw columns, for the inference model."""
        return {f.name: keras.Input(shape=f.input_shape, dtype=f.raw_dtype, name=f.name)
                for f in self.features}

    @property
    def output_shape(self) -> Any:
        """The trainable model's input shape: one tuple, or a dict by input name."""
        out = self.encoder.output
        if isinstance(out, dict):
            return {name: tuple(t.shape[1:]) for name, t in out.items()}
        return tuple(out.shape[1:])

    @property
    def output_dtype(self) -> Any:
        """The trainable model's input dtype: token ids stay integers, the rest float32;
        a dict by input name for several inputs."""
        from kerapipe.compiler.preprocess import model_dtype

        out = self.encoder.output
        if isinstance(out, dict):
            return {name: model_dtype(tensor.dtype) for name, tensor in out.items()}
        return model_dtype(out.dtype)
