"""The MNIST CNN of pipelines/mnist.yaml, written by hand with Keras and NumPy arrays.

The baseline side of ``bench/train.py``: what a competent Keras user writes for the same
model, data, split, optimizer, loss, batch size and early stopping. Prints one line per
epoch (``verbose=2``) and, last, one JSON line with the test accuracy and epochs run.

    python bench/mnist_keras.py [--epochs 15]
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

# The one thing borrowed from kerapipe: its split function, only to get the identical
# train/validation/test indices, so that both sides train and test on the same examples.
from kerapipe.compiler.splits import stratified_split  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "kerapipe" / "data" / "mnist_sample.npz"
SEED = 42


class EpochTimer(keras.callbacks.Callback):
    """Seconds of each epoch (training + validation), for the report."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)

    def on_train_begin(self, logs=None):
        self.seconds = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()

    keras.utils.set_random_seed(SEED)

    with np.load(DATA) as arrays:
        x, y = arrays["x"], arrays["y"].astype(np.int64)
    # Same call as kerapipe's load_data: fractions [validation, test] -> [train, val, test].
    train, val, test = stratified_split(y, [0.1, 0.1], SEED, True)
    x = (x.astype("float32") / 255.0).reshape(-1, 28, 28, 1)

    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])

    timer = EpochTimer()
    tick = time.perf_counter()
    history = model.fit(
        x[train], y[train], batch_size=64, epochs=args.epochs,
        validation_data=(x[val], y[val]),
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=3,
                                                 restore_best_weights=True), timer],
        verbose=2)
    fit_seconds = time.perf_counter() - tick
    loss, accuracy = model.evaluate(x[test], y[test], verbose=0)

    print(json.dumps({"test_accuracy": float(accuracy), "test_loss": float(loss),
                      "epochs_run": len(history.history["loss"]),
                      "fit_seconds": round(fit_seconds, 3),
                      "epoch_seconds": [round(s, 3) for s in timer.seconds],
                      "splits": [len(train), len(val), len(test)]}), flush=True)


if __name__ == "__main__":
    main()
