"""The issue-13 typed-feature and text examples, written by hand the way keras.io does them.

The baseline side of ``bench/typed_examples.py``: what a Keras user following the keras.io
recipes writes for the same job as ``kerapipe run`` on the example pipeline (same data,
split fractions, missing-value fills, batch size, epochs, optimizer, loss, model and early
stopping), ending as kerapipe's run does with a model that takes the *raw* data, saved:

* ``--job penguins`` (pipelines/penguins.yaml), after "Structured data classification
  with FeatureSpace" (keras.io/examples/structured_data/structured_data_classification_with_feature_space):
  the CSV read into columns (``NA`` = missing, filled with the training split's mean or,
  for ``sex``, its most frequent value), ``tf.data.Dataset.from_tensor_slices((dict,
  labels))``, a ``keras.utils.FeatureSpace`` adapted on the training split and mapped over
  the datasets, a small Dense model trained on the encoded vector, and the inference model
  ``FeatureSpace inputs -> encoded features -> model`` saved;
* ``--job text`` (pipelines/text_topics.yaml), after "Text classification from scratch"
  (keras.io/examples/nlp/text_classification_from_scratch): the folder read with
  ``keras.utils.text_dataset_from_directory``, a ``TextVectorization`` layer adapted on
  the training texts and mapped over the datasets, Embedding + GlobalAveragePooling1D +
  Dense trained on the token ids, and the end-to-end model (raw strings in) saved.

The split: kerapipe's own ``stratified_split`` with the seed (shuffled, stratified, the
pipeline's fractions), as the other bench baselines do; when kerapipe reads the rows in the
same order (the CSV without dropped rows, the folder in sorted order) both sides train and
test on the very same examples. ``--seed`` sets the split, the weights and the shuffling,
as ``kerapipe run --set seed=S`` does. Prints one line per epoch (``verbose=2``) and,
last, one JSON line: test accuracy, epochs run, wall, fit and save seconds, split sizes,
a digest of the test rows' ids (as kerapipe names them in predictions.csv).

    python bench/typed_keras.py --job penguins|text [--seed 42] [--epochs E] [--no-save]
                                [--cache-encoded]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

START = time.perf_counter()  # the process's wall time, as the driver times it, minus Python's start

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras.utils import FeatureSpace  # noqa: E402

# Borrowed from kerapipe only to split as it does (same fractions; same rows when the rows
# come in the same order).
from kerapipe.compiler.splits import stratified_split  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "pipelines" / "data"

# The job of each example pipeline, written out: keep in step with pipelines/penguins.yaml
# and pipelines/text_topics.yaml.
JOBS = {
    "penguins": {"fractions": [0.2, 0.3], "batch_size": 32, "epochs": 100,
                 "learning_rate": 0.01, "patience": 10},
    "text": {"fractions": [0.2, 0.2], "batch_size": 32, "epochs": 30,
             "learning_rate": 0.01, "patience": 4},
}
PENGUIN_NUMBERS = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")


def read_penguins() -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
    """The CSV as columns: numbers as float (NaN where ``NA``), ``sex`` as text (``""``
    where ``NA``), ``year`` as int; labels as class indices of the sorted species names."""
    with (DATA / "penguins.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    columns: dict[str, np.ndarray] = {
        "island": np.array([r["island"] for r in rows]),
        **{name: np.array([np.nan if r[name] == "NA" else float(r[name]) for r in rows],
                          "float32") for name in PENGUIN_NUMBERS},
        "sex": np.array(["" if r["sex"] == "NA" else r["sex"] for r in rows]),
        "year": np.array([int(r["year"]) for r in rows], "int64"),
    }
    names = sorted({r["species"] for r in rows})
    labels = np.array([names.index(r["species"]) for r in rows], "int64")
    return columns, labels, names


def fill_missing(columns: dict[str, np.ndarray], train: np.ndarray) -> dict[str, np.ndarray]:
    """Missing numbers -> the training split's mean; missing sex -> its most frequent value."""
    filled = dict(columns)
    for name in PENGUIN_NUMBERS:
        values = columns[name]
        filled[name] = np.where(np.isnan(values), np.nanmean(values[train]), values)
    known = [s for s in columns["sex"][train] if s]
    mode = max(sorted(set(known)), key=known.count)
    filled["sex"] = np.where(columns["sex"] == "", mode, columns["sex"])
    return filled


def penguins(seed: int, job: dict, cache_encoded: bool = False):
    """Datasets of encoded features, the training model and the raw-input inference model.

    With ``cache_encoded`` (not the recipe's way: ``--cache-encoded``), the encoded rows
    are cached after the first epoch and shuffled from the cache every epoch, as kerapipe's
    ``cache: auto`` does; the recipe maps FeatureSpace over every batch of every epoch.
    """
    columns, labels, _ = read_penguins()
    train, val, test = stratified_split(labels, job["fractions"], seed, True)
    columns = fill_missing(columns, train)

    def dataset(index: np.ndarray, shuffle: bool) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices(({k: v[index] for k, v in columns.items()},
                                                 labels[index]))
        if shuffle:
            ds = ds.shuffle(len(index), seed=seed)
        return ds.batch(job["batch_size"])

    feature_space = FeatureSpace(
        features={
            "island": FeatureSpace.string_categorical(),
            "bill_length_mm": FeatureSpace.float_normalized(),
            "bill_depth_mm": FeatureSpace.float_normalized(),
            "flipper_length_mm": FeatureSpace.float_discretized(num_bins=8),
            "body_mass_g": FeatureSpace.float_normalized(),
            "sex": FeatureSpace.string_categorical(),
            "year": FeatureSpace.integer_categorical(),
        },
        crosses=[FeatureSpace.cross(feature_names=("island", "sex"), crossing_dim=16)],
        output_mode="concat",
    )
    train_ds = dataset(train, shuffle=True)
    feature_space.adapt(train_ds.map(lambda x, _: x))

    def encoded(ds: tf.data.Dataset, shuffle: bool = False) -> tf.data.Dataset:
        ds = ds.map(lambda x, y: (feature_space(x), y), num_parallel_calls=tf.data.AUTOTUNE)
        if cache_encoded:
            ds = ds.unbatch().cache()
            ds = (ds.shuffle(len(train), seed=seed) if shuffle else ds).batch(job["batch_size"])
        return ds.prefetch(tf.data.AUTOTUNE)

    encoded_features = feature_space.get_encoded_features()
    x = keras.layers.Dense(32, activation="relu")(encoded_features)
    x = keras.layers.Dropout(0.2)(x)
    predictions = keras.layers.Dense(3)(x)
    training_model = keras.Model(inputs=encoded_features, outputs=predictions)
    inference_model = keras.Model(inputs=feature_space.get_inputs(), outputs=predictions)
    return (encoded(train_ds, shuffle=True), encoded(dataset(val, False)),
            encoded(dataset(test, False)),
            training_model, inference_model, [len(train), len(val), len(test)],
            [str(i + 2) for i in test])  # kerapipe's id of a CSV row: its line number


def text(seed: int, job: dict):
    """Datasets of token ids, the training model and the raw-text inference model."""
    folder = DATA / "text_topics"
    every = keras.utils.text_dataset_from_directory(folder, batch_size=None,
                                                    shuffle=False)  # sorted folders and files
    texts, labels = (np.array(part) for part in zip(*every.as_numpy_iterator()))
    # the files in the order Keras lists them (sorted class folders, sorted names): their ids
    ids = np.array([f"{c.name}/{f.name}" for c in sorted(folder.iterdir()) if c.is_dir()
                    for f in sorted(c.glob("*.txt"))])
    assert len(ids) == len(texts), "the folder changed while it was read"
    train, val, test = stratified_split(labels, job["fractions"], seed, True)
    vectorize_layer = keras.layers.TextVectorization(max_tokens=2000, output_mode="int",
                                                     output_sequence_length=40)
    vectorize_layer.adapt(texts[train], batch_size=job["batch_size"])

    def dataset(index: np.ndarray, shuffle: bool) -> tf.data.Dataset:
        # the recipe's map(vectorize_text) then cache(); the shuffle after the cache, so
        # that every epoch is reshuffled (the recipe caches batches shuffled once)
        ds = tf.data.Dataset.from_tensor_slices((texts[index], labels[index])).map(
            lambda x, y: (vectorize_layer(x), y), num_parallel_calls=tf.data.AUTOTUNE).cache()
        if shuffle:
            ds = ds.shuffle(len(index), seed=seed)
        return ds.batch(job["batch_size"]).prefetch(tf.data.AUTOTUNE)

    inputs = keras.Input((None,), dtype="int64")
    x = keras.layers.Embedding(2000, 16)(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    predictions = keras.layers.Dense(3)(x)
    training_model = keras.Model(inputs, predictions)
    raw = keras.Input((), dtype="string")
    inference_model = keras.Model(raw, training_model(vectorize_layer(raw)))
    return (dataset(train, True), dataset(val, False), dataset(test, False), training_model,
            inference_model, [len(train), len(val), len(test)], list(ids[test]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", choices=sorted(JOBS), required=True)
    parser.add_argument("--seed", type=int, default=42, help="seed of the split, the "
                        "weights and the shuffling, as the pipeline's `seed:` (default 42)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the pipeline's")
    parser.add_argument("--cache-encoded", action="store_true", help="penguins: cache the "
                        "encoded rows and reshuffle them every epoch (as kerapipe does) "
                        "instead of the recipe's FeatureSpace map over every batch")
    parser.add_argument("--no-save", action="store_true", help="skip saving the raw-input "
                        "model (kerapipe run always saves model.keras)")
    args = parser.parse_args()
    job = JOBS[args.job]
    keras.utils.set_random_seed(args.seed)
    train_ds, val_ds, test_ds, model, inference_model, splits, test_ids = (
        penguins(args.seed, job, args.cache_encoded) if args.job == "penguins"
        else text(args.seed, job))
    model.compile(optimizer=keras.optimizers.Adam(job["learning_rate"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    tick = time.perf_counter()
    history = model.fit(train_ds, epochs=args.epochs or job["epochs"], validation_data=val_ds,
                        callbacks=[keras.callbacks.EarlyStopping(
                            monitor="val_loss", patience=job["patience"],
                            restore_best_weights=True)], verbose=2)
    fit_seconds = time.perf_counter() - tick
    _, accuracy = model.evaluate(test_ds, verbose=0)
    tick = time.perf_counter()
    if not args.no_save:
        with tempfile.TemporaryDirectory(prefix="typed-keras-") as folder:
            inference_model.save(Path(folder) / "model.keras")
    save_seconds = time.perf_counter() - tick
    print(json.dumps({"job": args.job, "seed": args.seed, "test_accuracy": float(accuracy),
                      "epochs_run": len(history.history["loss"]),
                      "fit_seconds": round(fit_seconds, 3),
                      "save_seconds": round(save_seconds, 3),
                      "wall_seconds_after_python_start": round(time.perf_counter() - START, 3),
                      "splits": splits, "test_ids_digest": hashlib.sha256(
                          "\n".join(sorted(test_ids)).encode()).hexdigest()[:16]}),
          flush=True)


if __name__ == "__main__":
    main()
