"""The writers, one a format: ``saved_model`` (Keras's ``model.export``), ``tflite``
(the TFLite converter on that SavedModel, builtin ops), ``onnx`` (tf2onnx on the model's
frozen inference function, the optional extra ``kerapipe[onnx]``). Each writes the
artifact into the staging folder it is given; a model a format cannot hold is refused
with a ``UsageError`` saying why."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Optional

from kerapipe.errors import OutputError, UsageError

FORMATS = ("saved_model", "tflite", "onnx")

ONNX_EXTRA_HINT = 'pip install "kerapipe[onnx]"'

# The suffix of each format's artifact ("" for a folder: the SavedModel).
SUFFIXES = {"saved_model": "", "tflite": ".tflite", "onnx": ".onnx"}
# Files that hold a model, by suffix: a SavedModel folder named so would pass for one.
_MODEL_FILE_SUFFIXES = {".tflite": "a tflite file", ".onnx": "an onnx file",
                        ".keras": "a Keras model file", ".h5": "a Keras HDF5 file",
                        ".pb": "a protocol buffer"}


def require_onnx_extra() -> None:
    """Check that the ``kerapipe[onnx]`` extra (tf2onnx, onnxruntime) is installed, without
    importing it: tf2onnx imports TensorFlow (seconds, and its start-up log unless
    ``kerapipe.compiler.backend`` imported it first), which a refusal must not wait for.

    Raises:
        UsageError: one is not installed, naming the install command.
    """
    missing = [module for module in ("tf2onnx", "onnxruntime") if not _installed(module)]
    if missing:
        raise UsageError(f"--format onnx needs {' and '.join(missing)}, not installed here "
                         f"(the optional extra kerapipe[onnx]). Install it with "
                         f"`{ONNX_EXTRA_HINT}`.")


def _installed(module: str) -> bool:
    """``module`` can be imported (``None`` in ``sys.modules`` is a blocked import)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_output_suffix(output: str | os.PathLike, fmt: str) -> None:
    """Refuse a ``-o`` path whose suffix says another format than ``fmt``: a ``.tflite``
    or ``.onnx`` file must end so (tools pick their loader by it), and a SavedModel,
    a folder, must not end in a model file's suffix. Needs nothing but the path.

    Raises:
        UsageError: the suffix does not match, with the path to give instead.
    """
    path = Path(output)
    suffix = path.suffix.lower()
    wanted = SUFFIXES[fmt]
    if wanted and suffix == wanted or not wanted and suffix not in _MODEL_FILE_SUFFIXES:
        return
    if wanted:
        folder = str(output).endswith(("/", os.sep)) or path.is_dir()
        instead = path / f"model{wanted}" if folder else path.with_suffix(wanted)
        said = f"ends in {path.suffix}{_named(suffix)}; a file whose suffix names another " \
            "format misleads every tool that opens it" if suffix else "has no suffix"
        article = "an" if fmt == "onnx" else "a"
        raise UsageError(f"-o {output}: {article} {fmt} export is a {wanted} file, but this "
                         f"path {said}. Give a path ending in {wanted}, e.g. -o {instead}.")
    raise UsageError(f"-o {output}: a saved_model export is a folder (saved_model.pb and "
                     f"variables/), but this path ends in {path.suffix}{_named(suffix)}. Give a "
                     f"folder name without it, e.g. -o {path.with_suffix('')}.")


def _named(suffix: str) -> str:
    """`` (an onnx file's suffix)``, what a known suffix is."""
    owner = _MODEL_FILE_SUFFIXES.get(suffix)
    return f" ({owner}'s suffix)" if owner else ""


def refuse_string_inputs(model, fmt: str) -> None:
    """Neither ONNX nor TFLite's builtin ops have the string preprocessing a model that
    takes text needs (typed features' string lookups, ``TextVectorization``): such a
    model is refused by its inputs' names, before the conversion fails on its ops."""
    strings = [t.name for t in model.inputs if "string" in str(t.dtype)]
    if strings:
        raise UsageError(
            f"this run's model cannot be exported to {fmt}: it takes strings (input(s) "
            f"{', '.join(strings)}), and its preprocessing (string lookups, "
            f"TextVectorization) has no {fmt} equivalent. Export it as saved_model "
            "(TensorFlow Serving takes strings), or move the string preprocessing out of "
            "the model.")


def _export_saved_model(model, artifact: Path, staging: Path) -> list:
    try:
        model.export(str(artifact), format="tf_saved_model", verbose=False)
    except Exception as err:
        raise cannot_export("saved_model", err) from err
    return []


def _export_tflite(model, artifact: Path, staging: Path) -> list:
    """TFLite from the SavedModel Keras exports (``from_saved_model``: the converter path
    TensorFlow documents for Keras 3; ``from_keras_model`` expects a tf.keras model), with
    TFLite's builtin ops only. A model that needs TensorFlow's own ops (``SELECT_TF_OPS``:
    lookups, bincounts) is refused: the interpreter in TensorFlow's pip package has no
    Flex delegate, so such a file could not be checked, nor served by a plain TFLite
    runtime."""
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import tensorflow as tf

    saved_model = staging / "saved_model-for-tflite"
    _export_saved_model(model, saved_model, staging)
    try:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
        content = converter.convert()
    except Exception as err:  # ConverterError: an op TFLite's builtins lack
        found = re.search(r"TF Select ops: ([^\n]+)", str(err))
        ops = [op.strip() for op in found.group(1).split(",")] if found else ()
        raise cannot_export("tflite", err, ops) from err
    try:
        artifact.write_bytes(content)
    except OSError as err:
        raise OutputError(f"cannot write {artifact}: {err.strerror or err}") from err
    return []


def _export_onnx(model, artifact: Path, staging: Path) -> list:
    """ONNX by tf2onnx (``tf2onnx.convert.from_graph_def``) from the model's inference
    function with its variables and captured tensors frozen into constants
    (TensorFlow's ``convert_variables_to_constants_v2``), its inputs and outputs named as the
    model's (``raw_features``, ``probabilities``, ...).

    Not Keras's ``model.export(format="onnx")``: it hands tf2onnx the function as it is,
    and tf2onnx (``from_function``) makes each tensor the function captures that is not a
    variable (a ``normalize`` step's mean and variance) a graph input, so the file asks
    for inputs no caller has. The ops tf2onnx could not convert, which it logs, are named
    in the error."""
    from kerapipe.compiler import backend  # noqa: F401  (first: tf2onnx imports TensorFlow)
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import \
        convert_variables_to_constants_v2

    tf_level = tf.get_logger().level
    tf.get_logger().setLevel(logging.ERROR)  # tf2onnx's TF1-API deprecation notices
    try:
        with _tf2onnx_log_collected() as unsupported, warnings.catch_warnings():
            # Keras's tf2onnx patch for NumPy 2 probes np.object (a FutureWarning).
            warnings.filterwarnings("ignore", message="In the future `np.object`",
                                    category=FutureWarning)
            _patch_tf2onnx_for_numpy2()
            function = _inference_function(tf, model).get_concrete_function()
            frozen = convert_variables_to_constants_v2(function)
            proto, _ = tf2onnx.convert.from_graph_def(
                frozen.graph.as_graph_def(), input_names=[t.name for t in frozen.inputs],
                output_names=[t.name for t in frozen.outputs])
    except Exception as err:
        raise cannot_export("onnx", err, unsupported.ops) from err
    finally:
        tf.get_logger().setLevel(tf_level)
    if unsupported.ops:
        raise cannot_export("onnx", None, unsupported.ops)
    names = dict(zip([t.name for t in frozen.inputs], [t.name for t in model.inputs]))
    names.update(zip([t.name for t in frozen.outputs],
                     tf.nest.flatten(_output_names(model, function.structured_outputs))))
    _rename_onnx(proto, names)
    try:
        artifact.write_bytes(proto.SerializeToString())
    except OSError as err:
        raise OutputError(f"cannot write {artifact}: {err.strerror or err}") from err
    return []


def _patch_tf2onnx_for_numpy2() -> None:
    """What Keras's own ONNX export applies first (tf2onnx's constant folding predates
    NumPy 2); kept optional, as it is Keras's private module."""
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)

    try:
        from keras.src.export.tf2onnx_lib import patch_tf2onnx
    except ImportError:
        return
    patch_tf2onnx()


def _inference_function(tf, model):
    """The model's forward pass as a ``tf.function`` of one tensor per input, in the
    order and with the names of ``model.inputs``."""
    names = [t.name for t in model.inputs]
    signature = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in model.inputs]

    @tf.function(input_signature=signature)
    def forward(*tensors):
        if isinstance(model.input, dict):
            return model(dict(zip(names, tensors)), training=False)
        return model(list(tensors) if len(tensors) > 1 else tensors[0], training=False)

    return forward


def _output_names(model, structure):
    """``structure`` (the function's outputs) with each tensor replaced by the name of
    the model's output it is, so that flattening it orders the names as the outputs."""
    if isinstance(structure, dict):
        return {key: key for key in structure}
    if isinstance(structure, (list, tuple)):
        return list(model.output_names[:len(structure)])
    return model.output_names[0]


def _rename_onnx(proto, names: dict) -> None:
    """Rename the ONNX graph's tensors ``old -> new`` wherever they appear."""
    graph = proto.graph
    for value in list(graph.input) + list(graph.output):
        value.name = names.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]
        node.output[:] = [names.get(n, n) for n in node.output]


@contextlib.contextmanager
def _tf2onnx_log_collected():
    """tf2onnx's log (the ``tf2onnx`` logger and its children) kept off the user's
    terminal and off the caller's handlers while it converts: its progress notes and
    warnings dropped, its errors collected by the ``_Unsupported`` handler yielded (the
    ops it could not convert, which the refusal names: its errors are ours to word)."""
    unsupported = _Unsupported()
    log = logging.getLogger("tf2onnx")
    propagate, level = log.propagate, log.level
    log.addHandler(unsupported)
    log.propagate = False
    log.setLevel(logging.ERROR)
    try:
        yield unsupported
    finally:
        log.removeHandler(unsupported)
        log.propagate = propagate
        log.setLevel(level)


class _Unsupported(logging.Handler):
    """Collects the TensorFlow ops tf2onnx reports it cannot convert."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.ops: list = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        found = re.search(r"Unsupported ops: Counter\(\{(.*)\}\)", message)
        if found:
            self.ops += [op for op in re.findall(r"'([^']+)'", found.group(1))
                         if op not in self.ops]


def cannot_export(fmt: str, err: Optional[BaseException], ops=()) -> UsageError:
    """The error for a model ``fmt`` cannot hold: the ops it lacks, else ``err``'s last line."""
    reason = f"it uses TensorFlow ops {fmt} has no equivalent for: {', '.join(ops)}" if ops \
        else f"{type(err).__name__}: " + " ".join(str(err).strip().splitlines()[-1:])[:300]
    others = ", ".join(f for f in FORMATS if f != fmt)
    return UsageError(f"this run's model cannot be exported to {fmt} ({reason}). Export it "
                      f"to another format ({others}), or simplify the layers it names.")


EXPORTERS = {"saved_model": _export_saved_model, "tflite": _export_tflite,
              "onnx": _export_onnx}
