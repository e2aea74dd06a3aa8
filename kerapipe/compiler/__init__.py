"""The compile side: a typed spec -> plain Keras objects (model, losses, optimizers, ...).

Modules here import Keras; nothing on the spec side imports them. Importing this
package picks the TensorFlow backend and imports TensorFlow with its C++ start-up log
(CUDA probes, oneDNN notices) silenced, unless the user set TF_CPP_MIN_LOG_LEVEL or
KERAPIPE_DEBUG.
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _import_tensorflow_quietly() -> None:
    # absl prints its pre-initialisation lines straight to file descriptor 2 while the
    # library loads, whatever TF_CPP_MIN_LOG_LEVEL says in-process; so point fd 2 at
    # /dev/null for the import only. Python exceptions still surface after it.
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


_import_tensorflow_quietly()
