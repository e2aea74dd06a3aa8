"""The issue-12 example models, written by hand with the Keras functional API.

The baseline side of ``bench/graph_examples.py``: for each example pipeline, what a
competent Keras user writes for the same model, data, split, optimizer, loss, batch size
and early stopping, with NumPy arrays. Prints one line per epoch (``verbose=2``) and,
last, one JSON line with the test accuracy and epochs run.

    python bench/graph_keras.py resnet_mnist|transformer_imdb|mobilenet_digits [--epochs E]

The transformer trains on the shipped stand-in for IMDB (pipelines/data/
token_sequences.npz, sequences of 64), as the kerapipe side does with ``--set``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

# Borrowed from kerapipe only to get the identical train/validation/test indices.
from kerapipe.compiler.splits import stratified_split  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MNIST = ROOT / "kerapipe" / "data" / "mnist_sample.npz"
TOKENS = ROOT / "pipelines" / "data" / "token_sequences.npz"
SEED = 42


def mnist(validation: float = 0.1, test: float = 0.1):
    with np.load(MNIST) as arrays:
        x, y = arrays["x"].astype("float32").reshape(-1, 28, 28, 1), arrays["y"].astype("int64")
    return x, y, stratified_split(y, [validation, test], SEED, True)


def resnet_mnist():
    """pipelines/resnet_mnist.yaml: a stem, two residual blocks, global pooling, logits."""
    x, y, splits = mnist()
    x = x / 255.0

    def residual(tensor, filters, prefix):
        a = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{prefix}.a")(tensor)
        b = layers.Conv2D(filters, 3, padding="same", name=f"{prefix}.b")(a)
        return layers.Activation("relu")(layers.Add()([tensor, b]))

    inputs = keras.Input((28, 28, 1))
    tensor = layers.Conv2D(16, 3, padding="same", activation="relu", name="stem")(inputs)
    tensor = layers.MaxPooling2D(2)(tensor)
    tensor = residual(tensor, 16, "stage.1")
    tensor = residual(tensor, 16, "stage.2")
    tensor = layers.GlobalAveragePooling2D()(tensor)
    outputs = layers.Dense(10)(tensor)
    model = keras.Model(inputs, outputs)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return model, x, y, splits, keras.optimizers.Adam(0.002), loss, 64, {}


def transformer_imdb():
    """pipelines/transformer_imdb.yaml: embedding, one encoder block, pooling, softmax."""
    with np.load(TOKENS) as arrays:
        x, y = arrays["x"].astype("int32"), arrays["y"].astype("int64")
    splits = stratified_split(y, [0.2, 0.1], SEED, True)
    inputs = keras.Input((x.shape[1],), dtype="int32")
    embedded = layers.Embedding(20000, 32)(inputs)
    attention = layers.MultiHeadAttention(num_heads=2, key_dim=32)(embedded, embedded)
    attention = layers.Dropout(0.1)(attention)
    normed = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([embedded, attention]))
    ffn = layers.Dense(32)(layers.Dense(32, activation="relu")(normed))
    ffn = layers.Dropout(0.1)(ffn)
    encoded = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([normed, ffn]))
    tensor = layers.Dropout(0.1)(layers.GlobalAveragePooling1D()(encoded))
    tensor = layers.Dropout(0.1)(layers.Dense(20, activation="relu")(tensor))
    outputs = layers.Dense(2, activation="softmax")(tensor)
    model = keras.Model(inputs, outputs)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=False)
    return model, x, y, splits, keras.optimizers.Adam(0.001), loss, 32, None


def mobilenet_digits():
    """pipelines/mobilenet_digits.yaml: digits resized to 32x32, MobileNet backbone, head."""
    x, y, splits = mnist()
    x = keras.ops.convert_to_numpy(keras.ops.image.resize(x, (32, 32))) / 127.5 - 1.0
    backbone = keras.applications.MobileNet(alpha=0.25, include_top=False, weights=None,
                                            pooling="avg", input_shape=(32, 32, 1))
    inputs = keras.Input((32, 32, 1))
    outputs = layers.Dense(10)(layers.Dropout(0.2)(backbone(inputs)))
    model = keras.Model(inputs, outputs)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return model, x, y, splits, keras.optimizers.Adam(0.002), loss, 64, {"start_from_epoch": 10}


EXAMPLES = {"resnet_mnist": resnet_mnist, "transformer_imdb": transformer_imdb,
            "mobilenet_digits": mobilenet_digits}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("example", choices=sorted(EXAMPLES))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the weights and "
                        "the shuffling (the split stays seed 42's): another seed shows how "
                        "far two equally good runs differ")
    args = parser.parse_args()
    keras.utils.set_random_seed(args.seed)
    # each example: model, data, split, optimizer, loss, batch size, and the arguments of
    # its pipeline's `train.early_stopping: {monitor: val_loss, patience: 3, ...}` beyond
    # those (None: no early stopping)
    model, x, y, (train, val, test), optimizer, loss, batch, early = EXAMPLES[args.example]()
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    tick = time.perf_counter()
    history = model.fit(x[train], y[train], batch_size=batch, epochs=args.epochs,
                        validation_data=(x[val], y[val]),
                        callbacks=[keras.callbacks.EarlyStopping(
                            monitor="val_loss", patience=3, restore_best_weights=True, **early)]
                        if early is not None else [],
                        verbose=2)
    fit_seconds = time.perf_counter() - tick
    _, accuracy = model.evaluate(x[test], y[test], verbose=0)
    print(json.dumps({"test_accuracy": float(accuracy), "epochs_run": len(history.history["loss"]),
                      "fit_seconds": round(fit_seconds, 3),
                      "splits": [len(train), len(val), len(test)]}), flush=True)


if __name__ == "__main__":
    main()
