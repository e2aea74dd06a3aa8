"""Running an exported artifact by the runtime that serves it: the SavedModel's
``serving_default`` signature, ``tf.lite.Interpreter``'s signature runner, an onnxruntime
session; outputs named and ordered as the Keras model's."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from kerapipe.errors import KerapipeError
from kerapipe.export.formats import cannot_export
from kerapipe.export.result import ExportMismatch


def _input_dict(model, batch) -> dict:
    """A batch as the exported signatures take it: input name -> array."""
    if isinstance(batch, dict):
        return dict(batch)
    if isinstance(batch, (list, tuple)):
        return {t.name: b for t, b in zip(model.inputs, batch)}
    return {model.inputs[0].name: batch}


def _ordered(model, outputs: dict) -> dict:
    """A signature's outputs (``output_0``, ... or the model's names) as the model's."""
    names = list(model.output_names)
    if set(outputs) == set(names):
        return {n: np.asarray(outputs[n]) for n in names}
    keys = sorted(outputs, key=lambda k: int(re.sub(r"\D", "", k) or 0))
    return {n: np.asarray(outputs[k]) for n, k in zip(names, keys)}


def _run_saved_model(artifact: Path, model, batches: list) -> dict:
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import tensorflow as tf

    serve = tf.saved_model.load(str(artifact)).signatures["serving_default"]
    return _joined([_ordered(model, serve(**{k: tf.constant(v) for k, v in
                                            _input_dict(model, b).items()}))
                    for b in batches])


def _run_tflite(artifact: Path, model, batches: list) -> dict:
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import tensorflow as tf

    with warnings.catch_warnings():  # TF 2.21 points to ai_edge_litert; the API is the same
        warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is "
                                "deprecated", category=UserWarning)
        interpreter = tf.lite.Interpreter(model_path=str(artifact))
    runner = interpreter.get_signature_runner("serving_default")
    with _runtime_info_kept_off_stderr():  # the first call applies the XNNPACK delegate
        return _joined([_ordered(model, runner(**_input_dict(model, b))) for b in batches])


@contextlib.contextmanager
def _runtime_info_kept_off_stderr():
    """File descriptor 2 into a temporary file while the TFLite runtime runs, then every
    line it caught but TFLite's ``INFO: `` lines written to ``sys.stderr`` again.

    TFLite's C++ logger prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``
    straight to file descriptor 2 when the first call applies its default delegate;
    ``TF_CPP_MIN_LOG_LEVEL`` is TensorFlow's logger, not TFLite's, and Python has no
    switch for it. The other way to silence it, an interpreter without the default
    delegates (``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``), would check other
    kernels than the ones a TFLite runtime serves the file with. A warning or error line
    is kept, in its order; with ``KERAPIPE_DEBUG`` set, every line is.
    """
    if os.environ.get("KERAPIPE_DEBUG"):  # as for TensorFlow's log (compiler.backend)
        yield
        return
    _flush_stderr()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (an embedding host): nothing can leak
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            _flush_stderr()  # what Python wrote meanwhile is caught too, and kept
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode("utf-8", "replace").splitlines()
                    if line.strip() and not line.startswith("INFO: ")]
            if kept:
                _write_stderr("\n".join(kept) + "\n")


def _flush_stderr() -> None:
    with contextlib.suppress(AttributeError, OSError, ValueError):  # None, or closed
        sys.stderr.flush()


def _write_stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):  # no sys.stderr: its descriptor
        with contextlib.suppress(OSError):
            os.write(2, text.encode("utf-8", "replace"))


def _run_onnx(artifact: Path, model, batches: list) -> dict:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its graph-optimisation warnings are noise
    try:
        session = onnxruntime.InferenceSession(str(artifact), sess_options=options,
                                               providers=["CPUExecutionProvider"])
    except Exception as err:  # tf2onnx wrote ops onnxruntime does not know
        raise cannot_export("onnx", err) from err
    names = [o.name for o in session.get_outputs()]
    by_name = set(names) == set(model.output_names)  # several outputs keep their names
    return _joined([dict(zip(names if by_name else model.output_names,
                             session.run(names, _input_dict(model, b)))) for b in batches])


def _joined(per_batch: list) -> dict:
    return {n: np.concatenate([b[n] for b in per_batch]) for n in per_batch[0]}


RUNNERS = {"saved_model": _run_saved_model, "tflite": _run_tflite, "onnx": _run_onnx}
_RUNTIMES = {"saved_model": "TensorFlow's SavedModel loader", "tflite": "tf.lite.Interpreter",
             "onnx": "onnxruntime"}


def run_export(fmt: str, artifact: Path, model, batches: list) -> dict:
    """The export's outputs on the batches, by its own runtime.

    Raises:
        ExportMismatch: the runtime cannot load or run what the converter wrote.
    """
    try:
        return RUNNERS[fmt](artifact, model, batches)
    except KerapipeError:
        raise
    except Exception as err:  # what each runtime raises varies: said, not a traceback
        reason = " ".join(str(err).strip().splitlines()[:1])[:300]
        raise ExportMismatch(f"the {fmt} export was converted, but {_RUNTIMES[fmt]} cannot "
                             f"run it on the run's inputs ({type(err).__name__}: {reason}). "
                             "Nothing was written; export to another format.") from err
