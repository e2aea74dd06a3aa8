"""Raw splits -> tf.data pipelines: parallel map, cache, shuffle, batch, prefetch.

Deterministic preprocessing runs on large batches before the cache (vectorised,
parallel); random augmentation runs after it, on every training batch, so each epoch
sees fresh augmentations while the expensive work is paid once. The data's source reads
the raw examples (``kerapipe.compiler.sources``: arrays are sliced from memory; image
files are decoded and CSV rows parsed inside tf.data, so those two stream from disk).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
import tensorflow as tf

from kerapipe.compiler.sources.loading import LoadedData, Split
from kerapipe.compiler.files import physical_memory
from kerapipe.compiler.preprocess import Preprocessing, apply_layers
from kerapipe.compiler.weights import class_weight_table, times_class_weights, with_sample_weights
from kerapipe.spec.model import PipelineSpec
from kerapipe.spec.steps import takes_strings

AUTOTUNE = tf.data.AUTOTUNE
_PREPROCESS_BATCH = 512  # examples per vectorised preprocessing call before the cache


def raw_features(split: Split, data: LoadedData, spec: PipelineSpec) -> tf.data.Dataset:
    """One split's raw examples, features only, unbatched (numbers not yet cast), read by
    the split's own source (a split file) or the data's."""
    return (split.source or data.source).features(split)


def raw_examples(split: Split, data: LoadedData, spec: PipelineSpec,
                 shuffle_files: bool = False, seed: Optional[int] = None) -> tf.data.Dataset:
    """One split's raw ``(x, y)`` examples, unbatched; ``shuffle_files`` shuffles the
    example indices before reading, for sources that ``shuffles_files`` (image paths)."""
    return (split.source or data.source).examples(split, shuffle_files=shuffle_files, seed=seed)


def permutation(n: int, seed: Optional[int]) -> tf.data.Dataset:
    """0..n-1 in a new random order every epoch (iteration), reproducible from ``seed``.

    One int64 vector per epoch instead of a shuffle buffer of n elements: tf.data keeps a
    few hundred bytes per buffered element, which at 100,000 files outweighed the paths.
    """
    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    return draws.map(lambda draw: tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64), seed=tf.stack([draw, tf.constant(n, tf.int64)]))).unbatch()


def make_dataset(spec: PipelineSpec, split: Split, data: LoadedData, prep: Preprocessing,
                 training: bool, seed_offset: int = 0) -> tf.data.Dataset:
    """The batched dataset of one split; shuffled and augmented only when ``training``."""
    shuffle = spec.data.shuffle if training else 0
    cached = use_cache(spec, split, prep)
    files_shuffled = bool(shuffle) and data.source.shuffles_files and not cached
    ds = raw_examples(split, data, spec, shuffle_files=files_shuffled,
                      seed=None if spec.seed is None else spec.seed + seed_offset)
    # Training examples carry their weight, (x, y, weight): the sample weight from here,
    # times the class weight of the label in before_cache (before a one_hot step).
    if training:
        ds = with_sample_weights(ds, split.weights)
    class_table = class_weight_table(data.class_weights) if training else None
    one_hot = prep.one_hot_classes
    dtype = input_dtype(spec)

    @tf.autograph.experimental.do_not_convert
    def before_cache(x, y, *weight):
        x = apply_layers(prep.before_cache, cast_features(x, dtype), training=False)
        if class_table is not None:
            weight = (times_class_weights(y, class_table, *weight),)
        if one_hot:
            y = tf.one_hot(tf.cast(y, tf.int32), one_hot)
        return (x, y, *weight)

    @tf.autograph.experimental.do_not_convert
    def after_cache(x, y, *weight):
        return (apply_layers(prep.after_cache, x, training=training), y, *weight)

    seed = None if spec.seed is None else spec.seed + seed_offset
    if cached:
        ds = ds.batch(_PREPROCESS_BATCH).map(before_cache, num_parallel_calls=AUTOTUNE)
        ds = ds.unbatch().cache() if caches_rows(prep) else ds.cache().unbatch()
        if shuffle:
            ds = ds.shuffle(shuffle, seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(spec.data.batch_size)
    else:
        if shuffle and not files_shuffled:
            ds = ds.shuffle(shuffle, seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(spec.data.batch_size).map(before_cache, num_parallel_calls=AUTOTUNE)
    if prep.after_cache:
        ds = ds.map(after_cache, num_parallel_calls=AUTOTUNE)
    # unbatch() and filter() hide the length; Keras needs it to end epochs without warnings.
    batches = math.ceil(len(split.y) / spec.data.batch_size)
    ds = ds.apply(tf.data.experimental.assert_cardinality(batches))
    return ds.prefetch(AUTOTUNE)


def split_features(split: Split, data: LoadedData, spec: PipelineSpec,
                   batch_size: int) -> tf.data.Dataset:
    """A split's raw features, batched and cast: the inference model's input."""
    dtype = input_dtype(spec)
    ds = (raw_features(split, data, spec).batch(batch_size)
          .map(lambda x: cast_features(x, dtype), num_parallel_calls=AUTOTUNE))
    ds = ds.apply(tf.data.experimental.assert_cardinality(math.ceil(len(split.y) / batch_size)))
    return ds.prefetch(AUTOTUNE)


def array_features(x: np.ndarray, spec: PipelineSpec, batch_size: int) -> tf.data.Dataset:
    """Raw features given as an array (already decoded images, padded sequences, ...), or
    for a model of several inputs a dict of one array per input; for typed features
    (``data.features``) a dict of one column per feature (``typed_columns``)."""
    if spec.data.features is not None:
        x = typed_columns(x, spec)
    dtype = input_dtype(spec)
    return (tf.data.Dataset.from_tensor_slices(x).batch(batch_size)
            .map(lambda v: cast_features(v, dtype), num_parallel_calls=AUTOTUNE)
            .prefetch(AUTOTUNE))


def typed_columns(x, spec: PipelineSpec) -> dict:
    """Raw columns given to the Python API for typed features, as the model takes them:
    one per feature by name (lists or arrays, ``(n,)`` or ``(n, 1)``), each in its raw
    dtype and shaped as ``FeatureSpec.input_shape``; other keys are passed over.

    Raises:
        DataError: ``x`` is no dict, a feature's column is missing, of another length, or
            does not convert to the feature's kind of value.
    """
    from kerapipe.compiler.sources.csv_typed import raw_column
    from kerapipe.errors import DataError

    features = list(spec.data.features)
    if not isinstance(x, dict):
        raise DataError("this pipeline's model takes typed columns: give a dict of one "
                        "array per feature, by name ("
                        + ", ".join(f.name for f in features) + ").")
    missing = [f.name for f in features if f.name not in x]
    if missing:
        raise DataError(f"no column {', '.join(repr(m) for m in missing)} among the inputs; "
                        "the model takes one array per feature of data.features: "
                        + ", ".join(f.name for f in features) + ".")
    out, length = {}, None
    for feature in features:
        strings = feature.raw_dtype == "string"
        try:
            column = raw_column(feature, x[feature.name])
        except (TypeError, ValueError) as err:
            raise DataError(f"column '{feature.name}' ({feature.type}) holds values that "
                            f"are not {'strings' if strings else 'numbers'} ({err}).") from err
        if strings and not all(isinstance(v, (str, bytes)) for v in column.flat):
            raise DataError(f"column '{feature.name}' ({feature.type}) holds values that "
                            "are not strings.")
        if length is not None and len(column) != length:
            raise DataError(f"column '{feature.name}' holds {len(column)} values, but the "
                            f"columns before it {length}; give every column one value per "
                            "example.")
        length = len(column)
        out[feature.name] = column
    return out


def cast_features(x, dtype: Optional[str]):
    """Features cast to the raw input dtype (``input_dtype``): a tensor, or each input's
    of a dict. Strings stay strings (a TextVectorization step takes them); typed columns
    (``dtype`` ``None``) stay as decoded."""
    if dtype is None:
        return x
    if isinstance(x, dict):
        return {name: cast_features(value, dtype) for name, value in x.items()}
    return x if x.dtype == tf.string else tf.cast(x, dtype)


def memory_budget() -> int:
    """Bytes a cache may take: a quarter of physical memory, at most 2 GiB."""
    return min(physical_memory() // 4, 2 << 30)


# tf.data keeps a few hundred bytes of bookkeeping per cached element (measured: ~400 B
# beside a 64 B CSV row, bench/scale.py). Small examples are therefore cached in batches of
# _PREPROCESS_BATCH (and unbatched again every epoch); large ones one by one, since
# unbatching copies every example every epoch, which grew a 15-epoch MNIST run's peak RSS
# by 40 MiB (bench/run.py end_to_end).
_ELEMENT_OVERHEAD = 512
_ROW_CACHE_MIN_BYTES = 4 * _ELEMENT_OVERHEAD  # overhead at most a quarter of the payload


def example_bytes(prep: Preprocessing) -> int:
    """Bytes of one example after the cacheable preprocessing, as float32."""
    shape = prep.cached_shape
    return math.prod(shape) * 4 if shape else 0


def caches_rows(prep: Preprocessing) -> bool:
    """Whether the cache holds examples one by one (large ones) or in batches (small)."""
    return example_bytes(prep) >= _ROW_CACHE_MIN_BYTES


def cached_bytes(split: Split, prep: Preprocessing) -> int:
    """Memory the cache of a split takes: its preprocessed examples as float32, plus
    tf.data's bookkeeping per cached element (an example or a batch)."""
    size = example_bytes(prep)
    if not size:
        return 0
    elements = len(split.y) if caches_rows(prep) else math.ceil(len(split.y) / _PREPROCESS_BATCH)
    return len(split.y) * size + elements * _ELEMENT_OVERHEAD


def use_cache(spec: PipelineSpec, split: Split, prep: Preprocessing) -> bool:
    """``cache: auto`` caches in memory only what fits the budget, so memory stays flat
    on large data (the data is then re-read and re-preprocessed every epoch)."""
    if spec.data.cache != "auto":
        return bool(spec.data.cache)
    return cached_bytes(split, prep) <= memory_budget()


def input_dtype(spec: PipelineSpec) -> Optional[str]:
    """The raw examples' dtype, as the preprocessing takes them: strings for a first step
    that takes text (``TextVectorization``, ``StringLookup``); padded token ids stay
    integers (for Embedding); everything else is float32."""
    if spec.data.features is not None:
        return None  # typed columns: each decoded in its own dtype (csv_typed)
    if takes_strings(spec.data.preprocess):
        return "string"
    return "int32" if spec.data.options_of("pad_sequences") else "float32"


def optional_dataset(spec: PipelineSpec, split: Optional[Split], data: LoadedData,
                     prep: Preprocessing) -> Optional[tf.data.Dataset]:
    if split is None or len(split.y) == 0:
        return None
    return make_dataset(spec, split, data, prep, training=False)
