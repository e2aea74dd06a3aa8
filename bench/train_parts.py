"""Where does a training epoch's time go? Input pipeline and op determinism, one at a time.

A companion of bench/train.py. Each configuration runs in a fresh process, the
configurations alternate over the rounds, and every process trains the same hand-built
CNN of pipelines/mnist.yaml for a fixed number of epochs (no early stopping) on one of:

* ``numpy``: NumPy arrays given to ``model.fit`` (Keras' own array adapter), as in
  bench/mnist_keras.py;
* ``kerapipe``: the train/validation ``tf.data`` datasets that ``compile_pipeline`` makes
  (rescale+reshape in a parallel map over 512-example batches, unbatch, cache,
  shuffle, batch 64, prefetch);

with TensorFlow op determinism off or on (kerapipe's ``seed_everything`` turns it on when
the pipeline has a seed; here it is switched off by replacing
``tf.config.experimental.enable_op_determinism`` with a no-op for that process only).
Reported per configuration: median over processes of the median wall and process-CPU
seconds of epochs 2..n, of epoch 1, and of one pass over the training data alone (no
model).

    python bench/train_parts.py [--rounds 2] [--epochs 6]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [("numpy", False), ("numpy", True), ("kerapipe", False), ("kerapipe", True)]


def child(data: str, deterministic: bool, epochs: int) -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.framework import config  # is_op_determinism_enabled: not public

    from kerapipe.compiler.splits import stratified_split

    if data == "kerapipe":
        from kerapipe.pipeline import compile_pipeline

        if not deterministic:
            tf.config.experimental.enable_op_determinism = lambda: None
        compiled = compile_pipeline(str(ROOT / "pipelines" / "mnist.yaml"))
        train_data, fit_args = compiled.datasets.train, {}
        val_data = compiled.datasets.validation
    else:
        keras.utils.set_random_seed(42)
        if deterministic:
            tf.config.experimental.enable_op_determinism()
        with np.load(ROOT / "kerapipe" / "data" / "mnist_sample.npz") as arrays:
            x, y = arrays["x"], arrays["y"].astype(np.int64)
        train, val, _ = stratified_split(y, [0.1, 0.1], 42, True)
        x = (x.astype("float32") / 255.0).reshape(-1, 28, 28, 1)
        train_data, fit_args = x[train], {"y": y[train], "batch_size": 64}
        val_data = (x[val], y[val])

    # One pass over the training data alone, as fit sees it (after a warm-up pass).
    if data == "kerapipe":
        dataset = train_data
    else:
        from keras.src.trainers.data_adapters import get_data_adapter

        dataset = get_data_adapter(train_data, fit_args["y"], batch_size=64,
                                   shuffle=True).get_tf_dataset()
    passes = []
    for _ in range(3):
        tick = time.perf_counter()
        for _batch in dataset:
            pass
        passes.append(time.perf_counter() - tick)

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

    wall, cpu = [], []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, epoch, logs=None):
            wall.append(time.perf_counter() - self.start[0])
            cpu.append(time.process_time() - self.start[1])

    model.fit(train_data, epochs=epochs, validation_data=val_data, callbacks=[Timer()],
              verbose=0, **fit_args)
    print(json.dumps({"wall": wall, "cpu": cpu, "data_pass": passes[1:],
                      "determinism": config.is_op_determinism_enabled()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1] == "on", args.epochs)
        return
    results: dict[tuple, list[dict]] = {config: [] for config in CONFIGS}
    for _ in range(args.rounds):
        for data, deterministic in CONFIGS:
            done = subprocess.run([sys.executable, __file__, "--epochs", str(args.epochs),
                                   "--child", data, "on" if deterministic else "off"],
                                  cwd=ROOT, capture_output=True, text=True, check=True)
            report = json.loads(done.stdout.strip().splitlines()[-1])
            assert report["determinism"] == deterministic, report
            results[(data, deterministic)].append(report)

    def med(config, key, first=False):
        values = [r[key][0] if first else statistics.median(r[key][1:] if key != "data_pass"
                                                            else r[key])
                  for r in results[config]]
        return statistics.median(values)

    print(f"{'input data':<10}{'determinism':>12}{'epoch 2..n wall':>17}{'CPU':>8}"
          f"{'epoch 1 wall':>14}{'CPU':>8}{'data pass':>11}")
    for config in CONFIGS:
        print(f"{config[0]:<10}{'on' if config[1] else 'off':>12}"
              f"{med(config, 'wall'):>17.3f}{med(config, 'cpu'):>8.3f}"
              f"{med(config, 'wall', True):>14.3f}{med(config, 'cpu', True):>8.3f}"
              f"{med(config, 'data_pass'):>11.4f}")
    print(f"(seconds; median over {args.rounds} process(es) per configuration, "
          f"{args.epochs} epochs each, {os.cpu_count()} CPUs)")
    out = ROOT / "bench" / "results-train-parts.json"
    out.write_text(json.dumps({f"{d}/{'det' if on else 'nondet'}": runs
                               for (d, on), runs in results.items()}, indent=1) + "\n")


if __name__ == "__main__":
    main()
