"""The first TensorFlow import: Keras on the TensorFlow backend, start-up log silenced.

Every module that imports ``keras`` or ``tensorflow`` imports this one first
(``from kerapipe.compiler import backend  # noqa: F401``), at the top of its imports or,
for an import inside a function, just before it. Why first: Keras reads
``KERAS_BACKEND`` once, at its own first import, and TensorFlow writes its C++ start-up
log (CUDA probes, CPU-feature and oneDNN notices) while it first loads; only the first
import can pick the backend and keep that log off the user's terminal. The
package ``kerapipe.compiler`` itself stays light, so that its modules that need no
TensorFlow (``splits``, the CSV and file readers) can be imported without it;
``tests/test_layering.py`` checks both rules.

Set ``TF_CPP_MIN_LOG_LEVEL`` or ``KERAPIPE_DEBUG`` to see TensorFlow's log.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def refuse_other_backends() -> None:
    """kerapipe's preprocessing runs Keras layers inside tf.data and its models take
    tf.data input, which only Keras's TensorFlow backend does throughout: another
    ``KERAS_BACKEND`` (or a Keras the caller imported on another backend) is refused
    here, before Keras imports it, with what to do instead of a failure deep in a layer.

    Raises:
        UsageError: Keras is (or would be) on another backend.
    """
    keras = sys.modules.get("keras")
    chosen = keras.backend.backend() if keras is not None and hasattr(keras, "backend") \
        else os.environ["KERAS_BACKEND"]
    if chosen != "tensorflow":
        from kerapipe.errors import UsageError

        raise UsageError(f"kerapipe builds its models and tf.data pipelines for Keras's "
                         f"TensorFlow backend, but Keras is set to '{chosen}' "
                         "(KERAS_BACKEND). Unset KERAS_BACKEND or set it to tensorflow for "
                         "kerapipe. To train on several devices or workers, use "
                         "train.distribute (tf.distribute); the JAX backend's "
                         "keras.distribution is not supported yet.")


refuse_other_backends()


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with file descriptor 2 pointed at /dev/null while it loads.

    absl prints its pre-initialisation lines straight to file descriptor 2 while the
    library loads, whatever ``TF_CPP_MIN_LOG_LEVEL`` says in-process; so fd 2 goes to
    /dev/null for the import only. Python exceptions still surface after it. A no-op
    (a plain import) when TensorFlow is already loaded or the user asked for its log.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or os.environ.get("KERAPIPE_DEBUG") \
            or "tensorflow" in sys.modules:
        import tensorflow  # noqa: F401
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow

        tensorflow.config.list_physical_devices()  # device probing logs here, not later
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


import_tensorflow_quietly()
