"""What `train.precision` costs or gains on this machine: float32 against the mixed policies.

Two small models, each trained at ``float32``, ``mixed_float16`` and ``mixed_bfloat16``
(``compile_pipeline(text, overrides=["train.precision=..."])``, the run's own code path):

* ``dense``: an MLP (three Dense 1024, ReLU) on 8,000 generated rows of 256 features,
  10 classes, batch 128 (matrix products only);
* ``conv``: a small CNN (Conv2D 32 and 64, pooling) on the 5,000 bundled MNIST digits,
  batch 64.

Each variant is fitted for ``--epochs`` epochs (validation included, early stopping
off), once per round, the order of the variants rotated from round to round so none
always runs first; every variant runs in this one process (kerapipe scopes the dtype
policy to the model's build, so each compiles as written). Reported per model and
variant: the median steady epoch (wall and process-CPU seconds of epochs 2..n over the
rounds; CPU seconds are less disturbed by other work on a shared machine), its ratio to
float32's, the first epoch (tracing), the final validation accuracy, and
whether a GPU was visible. Without a GPU Keras runs 16-bit kernels emulated on the CPU:
expect the mixed policies to be several times slower there, faster only on GPUs with
tensor cores and TPUs.

    python bench/precision.py [--rounds 1] [--epochs 3] [--models dense conv]

Prints one table and writes bench/results-precision.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results-precision.json"
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")

PIPELINES = {
    "dense": """\
kerapipe: 1
seed: 1
data:
  source: {npz: dense.npz}
  split: {validation: 0.1, test: 0.1}
  preprocess: [{normalize: {}}]
  batch_size: 128
model:
  layers:
    - Dense: {units: 1024, activation: relu}
    - Dense: {units: 1024, activation: relu}
    - Dense: {units: 1024, activation: relu}
    - Dense: {units: 10}
train: {epochs: %d}
output: {predictions: none}
""",
    "conv": """\
kerapipe: 1
seed: 1
data:
  source: {sample: mnist}
  split: {validation: 0.1, test: 0.1}
  preprocess: [{rescale: 1/255}, {reshape: [28, 28, 1]}]
  batch_size: 64
model:
  layers:
    - Conv2D: {filters: 32, kernel_size: 3, activation: relu}
    - MaxPooling2D: {pool_size: 2}
    - Conv2D: {filters: 64, kernel_size: 3, activation: relu}
    - MaxPooling2D: {pool_size: 2}
    - Flatten
    - Dense: {units: 10}
train: {epochs: %d}
output: {predictions: none}
""",
}


def _dense_data(folder: Path) -> None:
    """8,000 rows of 256 features whose class is a linear function of them (learnable)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8000, 256)).astype("float32")
    y = np.argmax(x @ rng.normal(size=(256, 10)), axis=1)
    np.savez(folder / "dense.npz", x=x, y=y)


def _fit_once(folder: Path, model: str, precision: str, epochs: int) -> dict:
    import keras

    from kerapipe import compile_pipeline

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start[0])
            cpu.append(time.process_time() - self.start[1])

    seconds: list[float] = []
    cpu: list[float] = []
    path = folder / f"{model}.yaml"
    path.write_text(PIPELINES[model] % epochs)
    compiled = compile_pipeline(str(path), overrides=[f"train.precision={precision}"])
    assert keras.config.dtype_policy().name == "float32"  # the build's scope restored it
    history = compiled.fit(verbose=0, callbacks=[EpochTimer()])
    return {"epochs": seconds, "cpu": cpu, "val_accuracy": float(history.history["val_accuracy"][-1]),
            "optimizer": type(compiled.model.optimizer).__name__}


def _steady(found: list, key: str) -> float:
    """Median of epochs 2..n over the runs (the first traces; the only one if alone)."""
    return statistics.median(s for run in found for s in (run[key][1:] or run[key]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(PIPELINES), choices=PIPELINES)
    args = parser.parse_args()
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    runs: dict = {m: {p: [] for p in PRECISIONS} for m in args.models}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _dense_data(folder)
        for round_index in range(args.rounds):
            for model in args.models:
                order = PRECISIONS[round_index % 3:] + PRECISIONS[:round_index % 3]
                for precision in order:
                    runs[model][precision].append(_fit_once(folder, model, precision,
                                                            args.epochs))
    report: dict = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                "gpus": gpus, "tensorflow": tf.__version__},
                    "epochs": args.epochs, "rounds": args.rounds, "models": {}}
    print(f"GPUs visible: {gpus or 'none'}; {os.cpu_count()} CPUs; {args.epochs} epochs, "
          f"{args.rounds} round(s)")
    print(f"{'model':<6} {'precision':<15} {'steady epoch s':>14} {'vs float32':>10} "
          f"{'CPU s':>7} {'vs float32':>10} {'1st epoch s':>11} {'val acc':>8}  optimizer")
    for model in args.models:
        base = base_cpu = None
        report["models"][model] = {}
        for precision in PRECISIONS:
            found = runs[model][precision]
            steady = _steady(found, "epochs")
            steady_cpu = _steady(found, "cpu")
            first = statistics.median(run["epochs"][0] for run in found)
            accuracy = statistics.median(run["val_accuracy"] for run in found)
            base, base_cpu = base or steady, base_cpu or steady_cpu
            report["models"][model][precision] = {
                "steady_epoch_s": steady, "ratio": steady / base, "steady_cpu_s": steady_cpu,
                "cpu_ratio": steady_cpu / base_cpu, "first_epoch_s": first,
                "val_accuracy": accuracy, "optimizer": found[0]["optimizer"]}
            print(f"{model:<6} {precision:<15} {steady:>14.3f} {steady / base:>9.2f}x "
                  f"{steady_cpu:>7.2f} {steady_cpu / base_cpu:>9.2f}x {first:>11.3f} "
                  f"{accuracy:>8.3f}  {found[0]['optimizer']}")
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
