"""Is the input pipeline fast enough to keep the model busy? One row per example pipeline.

For every ``pipelines/*.yaml`` a fresh process (TensorFlow's op determinism is
process-global) compiles the pipeline with ``compile_pipeline`` and measures:

* **input**: batches per second of ``compiled.datasets.train`` alone, no model, taken the
  way ``CompiledPipeline.fit`` has ``model.fit`` take them: one iterator over the repeated
  dataset for the whole run, drained by a ``tf.function`` that calls ``get_next()`` once
  per batch (Keras's train step does the same), so no Python runs per batch; each round
  drains whole epochs, at least ``--model-steps`` batches. Starting the iterator (``iter()``
  and its first batch: tf.data instantiating its functions and threads; 20-31 ms, and 106
  ms for cifar10, on 2026-11-28) happens once per ``fit``, like tracing the train step,
  and is reported apart (start ms);
* **loop** (information): the same pass as a Python ``for`` loop, from ``iter()`` to the
  last batch; the seconds to the first batch (shuffle-buffer fill) and to close the
  iterator (tf.data stopping its threads) are recorded apart. The loop has a floor of its
  own (below): on iris, with 6 batches an epoch and a tiny model, that floor was only
  about 4x the model's step rate, so the loop measured itself rather than the pipeline;
* **fit**: steps per second of ``compiled.fit`` (the same epochs as one input round, no
  validation): the model fed by the real pipeline;
* **floor**: the same loop over an in-memory dataset that yields that one batch as many
  times as an epoch has batches: the fastest rate this eager Python loop can measure (in
  ``fit`` the batches are taken inside the compiled graph, without this loop);
* **model only**: steps per second of ``compiled.model.fit`` on one fixed batch held in
  memory (``Dataset.from_tensors(batch).repeat()``, ``--model-steps`` steps): the same
  training loop with (almost) no input cost, i.e. what the model alone can do.

A warm-up does each once untimed (the first input pass fills the cache; the first fits
trace the training function). Then ``--repeats`` rounds of (input pass, floor pass, fit
epoch, model-only steps) alternate in the same process, so that load from other users of a
shared machine hits all three alike, and each figure is the median of its rounds.

ratio = input (drained in the graph) batches/s / model-only steps/s: how many times faster the input pipeline
produces batches than the model consumes them (target >= 5). fit / model-only shows
whether the real pipeline slows training at all (about 1.0: it does not; with very few
batches per epoch, the fixed cost of a ``fit`` call weighs on it too).

Data sets that Keras downloads (``keras:`` sources) cannot be fetched offline: their
``keras.datasets.<name>.load_data`` is replaced, in the child process only, by synthetic
stand-in data of the same shapes and dtypes with fewer examples.

    python bench/input_pipeline.py [--repeats 3] [--model-steps 50] [--processes 1]
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MARK = "INPUT-PIPELINE-RESULT "
TARGET_RATIO = 5.0
STAND_IN_TRAIN, STAND_IN_TEST = 6000, 1000


def install_stand_ins(called: list[str]) -> None:
    """Replace keras.datasets.{mnist,fashion_mnist,cifar10,imdb}.load_data with synthetic data.

    Same shapes and dtypes as Keras returns (uint8 images, uint8 labels, cifar10 labels
    of shape (N, 1), imdb: object arrays of int token lists and int64 0/1 labels).
    """
    import keras
    import numpy as np

    rng = np.random.default_rng(0)

    def images(shape, label_shape):
        def load_data(**_):
            called.append("x")
            return tuple((rng.integers(0, 256, (n, *shape), dtype=np.uint8),
                          rng.integers(0, 10, (n, *label_shape)).astype(np.uint8))
                         for n in (STAND_IN_TRAIN, STAND_IN_TEST))
        return load_data

    def imdb_load_data(num_words=None, **_):
        called.append("x")
        top = num_words or 88587

        def split(n):
            x = np.empty(n, dtype=object)
            x[:] = [[1] + rng.integers(2, top, rng.integers(50, 401)).tolist() for _ in range(n)]
            return x, rng.integers(0, 2, n).astype(np.int64)
        return split(STAND_IN_TRAIN), split(STAND_IN_TEST)

    keras.datasets.mnist.load_data = images((28, 28), ())
    keras.datasets.fashion_mnist.load_data = images((28, 28), ())
    keras.datasets.cifar10.load_data = images((32, 32, 3), (1,))
    keras.datasets.imdb.load_data = imdb_load_data


def epoch_timer():
    """A Keras callback recording each epoch's seconds and steps (keras: child process only)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds, self.steps = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self._start, self._steps = time.perf_counter(), 0

        def on_train_batch_end(self, batch, logs=None):
            self._steps += 1

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)
            self.steps.append(self._steps)
    return EpochTimer()


def child(pipeline: str, model_steps: int, repeats: int) -> dict[str, Any]:
    """Measure one pipeline in this process; returns the figures as a dict."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    called: list[str] = []
    install_stand_ins(called)
    from kerapipe import compile_pipeline

    start = time.perf_counter()
    compiled = compile_pipeline(str(ROOT / pipeline), overrides=["train.epochs=1"])
    compile_seconds = time.perf_counter() - start
    train, model = compiled.datasets.train, compiled.model
    fixed = tf.data.Dataset.from_tensors(next(iter(train))).repeat()

    def input_pass(dataset=train) -> tuple[float, int, float, float]:
        """Seconds to the last batch, batches, seconds to the first, seconds to close."""
        start, count = time.perf_counter(), 0
        iterator = iter(dataset)
        for _batch in iterator:
            count += 1
            if count == 1:
                first = time.perf_counter() - start
        seconds = time.perf_counter() - start
        del iterator, _batch  # closing stops tf.data's background threads: timed apart
        return seconds, count, first, time.perf_counter() - start - seconds

    batches = sum(1 for _ in train)  # also fills the cache, like the warm-up below
    epochs = -(-model_steps // batches)  # whole epochs, at least model_steps batches

    @tf.function
    def drain(iterator, count) -> None:
        for _ in tf.range(count):
            iterator.get_next()

    def graph_pass() -> tuple[float, int, float]:
        """Seconds and batches of `epochs` epochs pulled inside the graph, as fit does, and
        the seconds to start the iterator (once per fit, like tracing: timed apart)."""
        start = time.perf_counter()
        iterator = iter(train.repeat())
        drain(iterator, tf.constant(1, tf.int64))
        started = time.perf_counter()
        drain(iterator, tf.constant(epochs * batches, tf.int64))
        return time.perf_counter() - started, epochs * batches, started - start

    def fit_epoch(data, **options) -> tuple[float, int]:
        timer = epoch_timer()
        model.fit(data, epochs=1, verbose=0, callbacks=[timer], **options)
        return timer.seconds[0], timer.steps[0]

    def fit_pipeline() -> tuple[float, int]:
        """Seconds and steps of `epochs` epochs of compiled.fit (no validation)."""
        timer = epoch_timer()
        compiled.fit(epochs=epochs, verbose=0, callbacks=[timer], validation_data=None)
        return sum(timer.seconds), sum(timer.steps)

    warm_up = {"input": input_pass(), "graph": graph_pass(), "fit": fit_pipeline(),
               "model_only": fit_epoch(fixed, steps_per_epoch=model_steps)}
    floor = fixed.take(warm_up["input"][1])  # as many batches as an epoch, nothing to compute
    warm_up["floor"] = input_pass(floor)
    rounds: dict[str, list[tuple]] = {"input": [], "graph": [], "floor": [], "fit": [],
                                      "model_only": []}
    for _ in range(repeats):
        rounds["input"].append(input_pass())
        rounds["graph"].append(graph_pass())
        rounds["floor"].append(input_pass(floor))
        rounds["fit"].append(fit_pipeline())
        rounds["model_only"].append(fit_epoch(fixed, steps_per_epoch=model_steps))
    rate = {name: statistics.median(sample[1] / sample[0] for sample in samples)
            for name, samples in rounds.items()}
    return {
        "pipeline": pipeline, "data": "synthetic stand-in" if called else "real",
        "train_examples": len(compiled.data.train), "batch_size": compiled.spec.data.batch_size,
        "batches_per_epoch": rounds["input"][0][1], "epochs_per_round": epochs,
        "compile_seconds": compile_seconds,
        "warm_up_seconds_steps": warm_up, "rounds_seconds_steps": rounds,
        "input_batches_per_s": rate["input"], "graph_batches_per_s": rate["graph"],
        "fit_steps_per_s": rate["fit"],
        "model_only_steps_per_s": rate["model_only"],
        "input_first_batch_ms": 1000 * statistics.median(r[2] for r in rounds["input"]),
        "input_close_ms": 1000 * statistics.median(r[3] for r in rounds["input"]),
        "graph_start_ms": 1000 * statistics.median(r[2] for r in rounds["graph"]),
        "input_ms_per_batch_after_first": 1000 * statistics.median(
            (r[0] - r[2]) / (r[1] - 1) for r in rounds["input"]) if rounds["input"][0][1] > 1 else None,
        "floor_batches_per_s": rate["floor"],
    }


def run_child(pipeline: str, model_steps: int, repeats: int) -> dict[str, Any]:
    """One fresh process for one pipeline; its result dict, or {"error": output tail}."""
    done = subprocess.run([sys.executable, __file__, "--child", pipeline, "--model-steps",
                           str(model_steps), "--repeats", str(repeats)], cwd=ROOT,
                          capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        return {"pipeline": pipeline, "error": (done.stdout + done.stderr)[-2000:]}
    return json.loads(lines[-1][len(MARK):])


MEDIANS = ("input_batches_per_s", "graph_batches_per_s", "fit_steps_per_s", "model_only_steps_per_s",
           "input_first_batch_ms", "input_close_ms", "graph_start_ms", "input_ms_per_batch_after_first",
           "floor_batches_per_s")


def benchmark(repeats: int = 3, model_steps: int = 50, processes: int = 1) -> dict[str, Any]:
    """Every example pipeline in its own process (`processes` times, in turn); medians, ratios."""
    pipelines = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "pipelines").glob("*.yaml"))
    samples: dict[str, list[dict]] = {p: [] for p in pipelines}
    for n in range(processes):
        for pipeline in pipelines:
            run = run_child(pipeline, model_steps, repeats)
            samples[pipeline].append(run)
            if "error" in run:
                print(f"  {n + 1}/{processes} {pipeline}: FAILED\n{run['error']}", flush=True)
            else:
                print(f"  {n + 1}/{processes} {pipeline:<26} input {run['graph_batches_per_s']:8.1f}"
                      f" b/s  fit {run['fit_steps_per_s']:7.1f} steps/s  model only "
                      f"{run['model_only_steps_per_s']:7.1f} steps/s", flush=True)
    rows = {}
    for pipeline, runs in samples.items():
        good = [run for run in runs if "error" not in run]
        if not good:
            rows[pipeline] = {"error": runs[-1]["error"]}
            continue
        row = {key: good[0][key] for key in ("data", "train_examples", "batch_size",
                                             "batches_per_epoch")}
        for key in MEDIANS:
            values = [run[key] for run in good if run[key] is not None]
            row[key] = statistics.median(values) if values else None
        row["ratio"] = row["graph_batches_per_s"] / row["model_only_steps_per_s"]
        row["loop_ratio"] = row["input_batches_per_s"] / row["model_only_steps_per_s"]
        row["fit_over_model_only"] = row["fit_steps_per_s"] / row["model_only_steps_per_s"]
        row["met"] = row["ratio"] >= TARGET_RATIO
        rows[pipeline] = row
    return {"repeats": repeats, "processes": processes, "model_steps": model_steps,
            "target_ratio_min": TARGET_RATIO,
            "stand_in_examples": {"train": STAND_IN_TRAIN, "test": STAND_IN_TEST},
            "rows": rows, "samples": samples}


def print_table(result: dict[str, Any]) -> None:
    """One row per pipeline: rates, the ratio and its target, first-batch and close times."""
    print(f"{'pipeline':<20}{'data':<19}{'train':>6}{'batch':>6}{'b/ep':>5}{'input b/s':>10}{'start ms':>9}"
          f"{'fit st/s':>9}{'model st/s':>11}{'ratio':>7}{'fit/model':>10}{'loop b/s':>9}"
          f"{'loop ratio':>11}{'1st ms':>7}{'ms/b':>6}{'close ms':>9}{'floor b/s':>10}"
          f"  >= {TARGET_RATIO:g}x")
    for pipeline, row in result["rows"].items():
        name = pipeline.removeprefix("pipelines/")
        if "error" in row:
            print(f"{name:<20}FAILED: {row['error'].strip().splitlines()[-1][:80]}")
            continue
        print(f"{name:<20}{row['data']:<19}{row['train_examples']:>6}{row['batch_size']:>6}"
              f"{row['batches_per_epoch']:>5}{row['graph_batches_per_s']:>10.1f}"
              f"{row['graph_start_ms']:>9.1f}"
              f"{row['fit_steps_per_s']:>9.1f}{row['model_only_steps_per_s']:>11.1f}"
              f"{row['ratio']:>7.1f}{row['fit_over_model_only']:>10.2f}"
              f"{row['input_batches_per_s']:>9.1f}{row['loop_ratio']:>11.1f}"
              f"{row['input_first_batch_ms']:>7.1f}{row['input_ms_per_batch_after_first'] or 0:>6.2f}"
              f"{row['input_close_ms']:>9.1f}{row['floor_batches_per_s']:>10.0f}  "
              f"{'met' if row['met'] else 'NOT met'}")
    processes = result["processes"]
    print(f"(each figure: median of {result['repeats']} alternating in-process rounds after a "
          f"warm-up{'' if processes == 1 else f', then median of {processes} processes'};\n"
          f" input: one iterator over datasets.train.repeat() drained in a tf.function for whole"
          f" epochs, >= {result['model_steps']} batches (get_next per batch, as compiled.fit"
          f" has model.fit do; start ms: iter() and the first batch, once per fit, not in b/s);\n loop: the same pass as a Python for loop, iter() to last"
          f" batch of one epoch (1st ms: to its first batch; ms/b: per"
          f" batch after it; close ms: deleting the iterator, not in b/s);\n floor: the same loop"
          f" over one in-memory batch repeated (the loop's own limit);\n fit: compiled.fit for the input's epochs; model only:"
          f" {result['model_steps']} model.fit steps on one in-memory batch; ratio = input / model"
          f" only;\n synthetic stand-in: {STAND_IN_TRAIN} train / {STAND_IN_TEST} test random"
          f" examples of the real shapes and dtypes, keras.datasets being offline)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="in-process rounds (default 3)")
    parser.add_argument("--model-steps", type=int, default=50, help="model-only steps (50)")
    parser.add_argument("--processes", type=int, default=1, help="processes per pipeline (1)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(args.child, args.model_steps, args.repeats)
        print(MARK + json.dumps(result), flush=True)
        return
    print_table(benchmark(args.repeats, args.model_steps, args.processes))


if __name__ == "__main__":
    main()
