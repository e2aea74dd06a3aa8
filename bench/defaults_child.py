"""One timed training run for bench/defaults.py (a fresh process per run).

    python bench/defaults_child.py PIPELINE [--set KEY=VALUE ...]

Compiles PIPELINE with the overrides, fits it with a timer callback and evaluates the
test split, then prints one JSON line: per-epoch wall and process-CPU seconds (whole
epoch, and its training part before validation starts), the loss history, the test
metrics, a SHA-256 of the final weights, and what Keras actually chose for XLA.
Exit code 0 on success; on any exception a JSON line with "error" and exit code 3.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import traceback
import warnings

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pipeline")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    started = time.perf_counter()
    record: dict = {"pipeline": args.pipeline, "overrides": args.overrides}
    try:
        import keras
        import numpy as np
        from tensorflow.python.framework.config import is_op_determinism_enabled

        from kerapipe.pipeline import compile_pipeline

        class EpochTimer(keras.callbacks.Callback):
            """Wall and CPU seconds of each epoch, and of its training part alone."""

            def __init__(self) -> None:
                super().__init__()
                self.wall: list[float] = []
                self.cpu: list[float] = []
                self.train_wall: list[float] = []
                self.in_fit = False

            def on_epoch_begin(self, epoch, logs=None):
                self.in_fit = True
                self.t0, self.c0 = time.perf_counter(), time.process_time()
                self.t_train = None

            def on_test_begin(self, logs=None):  # validation inside fit
                if self.in_fit and self.t_train is None:
                    self.t_train = time.perf_counter() - self.t0

            def on_epoch_end(self, epoch, logs=None):
                wall = time.perf_counter() - self.t0
                self.wall.append(wall)
                self.cpu.append(time.process_time() - self.c0)
                self.train_wall.append(self.t_train if self.t_train is not None else wall)

            def on_train_end(self, logs=None):
                self.in_fit = False

        caught = warnings.catch_warnings(record=True)
        seen = caught.__enter__()
        warnings.simplefilter("always")
        compiled = compile_pipeline(args.pipeline, overrides=args.overrides)
        record["compile_seconds"] = time.perf_counter() - started
        timer = EpochTimer()
        t = time.perf_counter()
        history = compiled.fit(verbose=0, callbacks=compiled.callbacks + [timer])
        record["fit_seconds"] = time.perf_counter() - t
        t = time.perf_counter()
        test = compiled.evaluate()
        record["evaluate_seconds"] = time.perf_counter() - t
        digest = hashlib.sha256()
        for weight in compiled.model.get_weights():
            digest.update(np.ascontiguousarray(weight).tobytes())
        caught.__exit__(None, None, None)
        record["warnings"] = sorted({f"{w.category.__name__}: {w.message}"[:300] for w in seen
                                     if "jit" in str(w.message).lower()
                                     or "determin" in str(w.message).lower()})
        model = compiled.model
        record.update({
            "epoch_wall": timer.wall, "epoch_cpu": timer.cpu, "epoch_train_wall": timer.train_wall,
            "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
            "test": test,
            "weights_sha256": digest.hexdigest(),
            "jit_compile_effective": bool(getattr(model, "jit_compile", None)),
            "steps_per_execution": int(getattr(model, "steps_per_execution", 1) or 1),
            "op_determinism": bool(is_op_determinism_enabled()),
            "train_batches": int(compiled.datasets.train.cardinality().numpy()),
            "spec_train": {"deterministic": compiled.spec.train.deterministic,
                           "jit_compile": compiled.spec.train.jit_compile,
                           "steps_per_execution": compiled.spec.train.steps_per_execution,
                           "epochs": compiled.spec.train.epochs},
            "spec_data": {"cache": compiled.spec.data.cache,
                          "batch_size": compiled.spec.data.batch_size},
            "seconds": time.perf_counter() - started,
        })
    except BaseException as exc:  # report any failure (e.g. XLA refusing an op) as data
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        record["error"] = f"{type(exc).__name__}: {lines[0] if lines else ''}"[:400]
        record["error_detail"] = "\n".join(lines[:12])[:3000]
        record["traceback_tail"] = traceback.format_exc()[-2000:]
        print(json.dumps(record), flush=True)
        sys.exit(3)
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
