"""Child programs for tests/test_distribute.py (run as ``python tests/distribute_helpers.py
COMMAND ...``, each in a process of its own: a multi-worker worker must set up TensorFlow
before anything else in its process).

Commands:
    fit FILE OUT.npz
        ``compile_pipeline(FILE).fit(verbose=0)`` in this process (a ``multi_worker`` file
        joins the cluster ``TF_CONFIG`` names); writes ``weights`` (every weight,
        flattened and concatenated), ``loss`` (the epoch losses) and ``worker`` (this
        process's worker index) to OUT.npz.
    stock OUT_DIR
        The stock Keras pattern of keras.io's multi-worker guide: a functional
        ``keras.Model`` built and compiled inside
        ``tf.distribute.MultiWorkerMirroredStrategy().scope()``, then ``fit`` on a tiny
        dataset. Exits 0 when it trains (keras-team/keras#20585 fixed), else the
        traceback goes to stderr.
    -m kerapipe run TAG_DIR MODE
        A stand-in for a kerapipe worker, started by ``kerapipe.launcher`` through a fake
        ``sys.executable`` (tests/test_distribute.py writes it): records its pid and
        ``TF_CONFIG`` in TAG_DIR, then behaves as MODE says for its worker index (see
        ``fake_worker``). Imports no TensorFlow.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path


def fit(file: str, out: str) -> None:
    import numpy as np

    from kerapipe import compile_pipeline

    compiled = compile_pipeline(file)
    history = compiled.fit(verbose=0)
    weights = np.concatenate([np.ravel(w) for w in compiled.model.get_weights()])
    np.savez(out, weights=weights, loss=np.asarray(history.history["loss"], "float64"),
             worker=compiled.distribution.worker_index)


def stock(out_dir: str) -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import numpy as np
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # first: before any TF work
    import keras

    keras.config.disable_traceback_filtering()  # the failing frames in the traceback
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 4)).astype("float32")
    y = (np.arange(128) % 3).astype("int64")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    with strategy.scope():  # as keras.io's guide shows: the model made in the scope
        inputs = keras.Input(shape=(4,))
        outputs = keras.layers.Dense(3)(inputs)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer="sgd",
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(dataset, epochs=1, verbose=0)
    Path(out_dir, f"trained-{os.getpid()}").write_text("ok\n")


def fake_worker(tag_dir: str, mode: str) -> int:
    """One stand-in worker. Writes ``<index>.pid`` and ``<index>.tf_config`` in TAG_DIR.

    MODE:
        ok: exit 0 at once.
        fail: worker 1 writes "boom from worker 1" to stderr and exits 9 after 0.5 s;
            worker 0 waits (up to 60 s) and writes ``0.sigterm`` when SIGTERM comes,
            then exits 143.
        stubborn: as fail, but worker 0 ignores SIGTERM (writes ``0.sigterm``, keeps
            waiting): the launcher must kill it.
        hold: every worker waits as worker 0 of ``fail`` does.
    """
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    folder = Path(tag_dir)
    (folder / f"{index}.tf_config").write_text(os.environ["TF_CONFIG"])
    (folder / f"{index}.pid").write_text(str(os.getpid()))
    if mode == "ok":
        return 0
    if index == 1 and mode != "hold":
        time.sleep(0.5)
        sys.stderr.write("boom from worker 1\n")
        sys.stderr.flush()
        return 9

    def on_term(signum, frame) -> None:
        (folder / f"{index}.sigterm").write_text("1")
        if mode != "stubborn":
            sys.exit(143)

    signal.signal(signal.SIGTERM, on_term)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return 0


def main(argv: list[str]) -> int:
    if argv[:3] == ["-m", "kerapipe", "run"]:
        return fake_worker(*argv[3:5])
    command, *rest = argv
    if command == "fit":
        fit(*rest)
    elif command == "stock":
        stock(*rest)
    else:
        raise SystemExit(f"unknown command {command!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
