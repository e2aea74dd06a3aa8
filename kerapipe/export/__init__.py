"""`kerapipe export RUN_DIR --format saved_model|tflite|onnx`: a finished run's inference
model for serving, checked against the model it came from.

The run folder's ``model.keras`` (raw input -> preprocessing layers -> trained layers ->
probabilities, loaded in safe mode by ``kerapipe.saved_run``) is exported with Keras's and
TensorFlow's own machinery: ``model.export(format="tf_saved_model")``, the TFLite converter
on that SavedModel, ``model.export(format="onnx")`` (tf2onnx, the optional extra
``kerapipe[onnx]``). Every export is then run on the run's test inputs, read as ``evaluate``
reads them (same data, checked by fingerprint, same seeded split), by the runtime that serves
it: the SavedModel's ``serving_default`` signature, ``tf.lite.Interpreter``'s signature
runner, an onnxruntime session. Its outputs are compared with the Keras model's
(``max |dp|``) and its predicted classes with the Keras model's and the run's
predictions.csv; an export that does not reproduce the model is refused.

Nothing is overwritten and nothing is left half-written: the artifact is written into a
hidden staging folder beside its destination, checked there, and renamed into place only
once it passed.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from kerapipe.errors import EXIT_TRAINING, DataError, KerapipeError, OutputError, UsageError

FORMATS = ("saved_model", "tflite", "onnx")

# Where an export goes without -o: inside the run folder, one name per format.
DEFAULT_PATHS = {"saved_model": "export/saved_model", "tflite": "export/model.tflite",
                 "onnx": "export/model.onnx"}

# The largest |difference| of an output (a probability) allowed between the exported model
# and the Keras model on the same inputs. Each runtime computes in float32 with kernels of
# its own (TFLite's and onnxruntime's convolutions and matrix products sum in another order,
# fuse bias and activation); such differences are ~1e-7 per value on bench/export.py's
# models, so 1e-4 is two to three orders above them and still far below any difference that
# changes a prediction. The SavedModel runs TensorFlow's kernels and is held to the same bound.
TOLERANCE = {"saved_model": 1e-4, "tflite": 1e-4, "onnx": 1e-4}

ONNX_EXTRA_HINT = 'pip install "kerapipe[onnx]"'
_SPLIT_BATCH = 256
_MAX_PREDICTIONS_BYTES = 1 << 30  # predictions.csv, read whole: ~40 bytes a test example


class ExportMismatch(KerapipeError):
    """The exported model's outputs differ from the Keras model's beyond the tolerance,
    or it predicts other classes (exit 4, as a run whose model is unusable)."""

    exit_code = EXIT_TRAINING


@dataclass
class ExportResult:
    """What ``export_run`` wrote and how closely it reproduces the Keras model.

    Attributes:
        max_delta: the largest |difference| of any output value, exported vs Keras.
        max_relative: the largest |difference| divided by ``max(1, |Keras's value|)``:
            what the tolerance bounds (``max_delta`` itself for probabilities).
        agreed: examples whose predicted class (every classifier output's) is the Keras
            model's; ``None`` for a model that predicts no classes (regression).
        agreed_run: examples whose predicted class is the one predictions.csv holds;
            ``None`` when not compared (no predictions.csv, or not the test split).
        near_ties: disagreeing examples whose two best classes the Keras model scores
            within the tolerance of each other (not counted as failures).
    """

    format: str
    path: Path
    seconds: float
    examples: int
    split: str
    max_delta: float
    tolerance: float
    max_relative: float = 0.0
    agreed: Optional[int] = None
    agreed_run: Optional[int] = None
    near_ties: int = 0
    notes: list = field(default_factory=list)

    def summary(self) -> str:
        """The lines ``kerapipe export`` prints."""
        lines = [f"exported {self.format} to {self.path} ({self.seconds:.1f} s)",
                 f"parity on the {self.split} split ({self.examples} examples): "
                 f"max |Δp| = {self.max_delta:.3g}"
                 + (f" ({self.max_relative:.3g} of max(1, |value|))"
                    if self.max_relative != self.max_delta else "")
                 + f" (tolerance {self.tolerance:g})"]
        if self.agreed is not None:
            lines.append(f"predicted classes: {self.agreed}/{self.examples} equal the Keras "
                         "model's" + (f" ({self.near_ties} near-tie(s))" if self.near_ties
                                      else ""))
        if self.agreed_run is not None:
            lines.append(f"predicted classes: {self.agreed_run}/{self.examples} equal the "
                         "run's predictions.csv")
        return "\n".join(lines + [f"note: {note}" for note in self.notes])


def default_export_path(run_dir: str | os.PathLike, fmt: str) -> Path:
    """Where ``fmt`` is exported without ``-o``: ``RUN_DIR/export/...``."""
    return Path(run_dir) / DEFAULT_PATHS[fmt]


def require_onnx_extra() -> None:
    """Import the ``kerapipe[onnx]`` extra (tf2onnx, onnxruntime).

    Raises:
        UsageError: one is not installed, naming the install command.
    """
    missing = []
    for module in ("tf2onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise UsageError(f"--format onnx needs {' and '.join(missing)}, not installed here "
                         f"(the optional extra kerapipe[onnx]). Install it with "
                         f"`{ONNX_EXTRA_HINT}`.")


def check_destination(path: Path) -> None:
    """Refuse a destination that exists: an export never replaces anything.

    Raises:
        OutputError: ``path`` exists (a file, folder or link, even a broken one).
    """
    if os.path.lexists(path):
        raise OutputError(f"{path} already exists; kerapipe export never overwrites. Give "
                          "another path with -o, or remove it first.")


def refuse_a_linked_export_folder(run_dir: str | os.PathLike) -> None:
    """The default destination is inside the run folder: its ``export`` must be a real
    folder there (or absent), never a link that would carry the export elsewhere.

    Raises:
        OutputError: ``RUN_DIR/export`` is a link or not a folder.
    """
    folder = Path(run_dir) / "export"
    if os.path.islink(folder) or (os.path.lexists(folder) and not folder.is_dir()):
        raise OutputError(f"{folder} is {'a link' if os.path.islink(folder) else 'not a folder'}"
                          "; kerapipe export writes into the run folder's own export/ folder "
                          "only. Give the path to write with -o.")


def export_run(saved, fmt: str, output: Optional[str | os.PathLike] = None) -> ExportResult:
    """Export a finished run's model to ``fmt``, check it on the run's test inputs, and
    move it to ``output`` (default ``default_export_path``).

    Args:
        saved: the run, as ``kerapipe.saved_run.open_run`` opened it.
        fmt: one of ``FORMATS``.
        output: the path to write. Defaults to ``RUN_DIR/export/<format's name>``.

    Raises:
        UsageError: the onnx extra is missing, or the model cannot be exported to ``fmt``.
        OutputError: the destination exists or cannot be written.
        DataError: the run's data cannot be read again (its test inputs).
        ExportMismatch: the export does not reproduce the Keras model.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}'; expected one of {', '.join(FORMATS)}.")
    if fmt == "onnx":
        require_onnx_extra()
    if fmt in ("onnx", "tflite"):
        _refuse_string_inputs(saved.model, fmt)
    destination = Path(output) if output is not None else default_export_path(saved.run_dir, fmt)
    check_destination(destination)
    if output is None:
        refuse_a_linked_export_folder(saved.run_dir)
    inputs, split, reference, run_classes, classifiers = _parity_inputs(saved)
    checked = _comparable(run_classes, classifiers, reference, split)
    staging = _make_staging(destination)
    try:
        artifact = staging / destination.name
        tick = time.perf_counter()
        notes = _EXPORTERS[fmt](saved.model, artifact, staging)
        seconds = time.perf_counter() - tick
        exported = _run_export(fmt, artifact, saved.model, inputs)
        result = _compare(fmt, reference, exported, classifiers, checked[0], split)
        result.seconds, result.notes = seconds, notes + checked[1]
        _check_parity(result)
        _move_into_place(artifact, destination)
        result.path = destination
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(artifact: Path, destination: Path) -> None:
    """Rename the checked artifact to its destination, which must still not exist: a
    file by a hard link (which refuses an existing name, even one made while we worked),
    a folder by a rename after a last check.

    Raises:
        OutputError: the destination appeared meanwhile, or cannot be written.
    """
    check_destination(destination)
    try:
        if artifact.is_file():
            try:
                os.link(artifact, destination)
                return
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links: the checked rename
                pass
        os.rename(artifact, destination)
    except FileExistsError as err:
        raise OutputError(f"{destination} already exists (it appeared during the export); "
                          "kerapipe export never overwrites. Nothing was written.") from err
    except OSError as err:
        raise OutputError(f"cannot write {destination}: {err.strerror or err}.") from err


def _make_staging(destination: Path) -> Path:
    """A hidden folder beside ``destination`` (the same file system: the final rename is
    atomic) that the export is written and checked in."""
    import tempfile

    parent = destination.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{destination.name}.partial-", dir=parent))
    except OSError as err:
        raise OutputError(f"cannot write into {parent}: {err.strerror or err}. Give a "
                          "writable path with -o.") from err


# --- the test inputs and the Keras model's outputs ---------------------------------------

def _parity_inputs(saved):
    """The batches of the run's test inputs (validation, else training, when the run held
    no test out), the Keras model's outputs on them (output name -> array), the classes
    predictions.csv holds for them (``None`` when not comparable), and the names of the
    outputs that predict classes (by the run's rules: not values, not label sets)."""
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import keras

    from kerapipe.compiler.datasets import split_features
    from kerapipe.compiler.sources.loading import load_data

    base_dir = saved.record.get("base_dir") or os.getcwd()
    data = load_data(saved.spec, base_dir)
    if data.fingerprint != saved.record.get("data", {}).get("fingerprint"):
        raise DataError("the data changed since this run (its fingerprint differs from "
                        "run.json), so the export cannot be checked on the inputs the run "
                        "predicted. Restore the run's data, or export from a new run.")
    split, name = next(((s, n) for s, n in ((data.test, "test"), (data.validation,
                        "validation"), (data.train, "training")) if s is not None and len(s.y)),
                       (None, None))
    if split is None:
        raise DataError("this run has no examples to check an export on (every split is "
                        "empty).")
    batches = [keras.tree.map_structure(lambda t: t.numpy(), batch)
               for batch in split_features(split, data, saved.spec, _SPLIT_BATCH)]
    reference = _named_outputs(saved.model, [saved.model.predict_on_batch(b) for b in batches])
    run_classes = _run_predictions(saved) if name == "test" else None  # not the test's
    return batches, name, reference, run_classes, _classifier_outputs(data, reference)


def _comparable(run_classes: Optional[dict], classifiers: list, reference: dict,
                split: str) -> tuple[Optional[dict], list]:
    """predictions.csv's classes for the outputs that predict classes, if they are the
    test split's (one per example); else ``None``, with a note saying why."""
    if not classifiers:
        return None, []
    if split != "test":
        return None, [f"the run has no test split: checked on its {split} split, without "
                      "predictions.csv"]
    examples = len(next(iter(reference.values())))
    usable = {n: c for n, c in (run_classes or {}).items()
              if n in classifiers and len(c) == examples}
    if len(usable) != len(classifiers):
        return None, ["predictions.csv was not compared: it is missing, or does not hold "
                      f"one predicted class per test example ({examples})"]
    return usable, []


def _named_outputs(model, per_batch: list) -> dict:
    """Per-batch model outputs joined: output name -> array, in the model's output order."""
    if isinstance(per_batch[0], dict):
        names = [n for n in model.output_names if n in per_batch[0]] or sorted(per_batch[0])
        return {n: np.concatenate([np.asarray(b[n]) for b in per_batch]) for n in names}
    if isinstance(per_batch[0], (list, tuple)):
        return {n: np.concatenate([np.asarray(b[i]) for b in per_batch])
                for i, n in enumerate(model.output_names)}
    return {model.output_names[0]: np.concatenate([np.asarray(b) for b in per_batch])}


def _run_predictions(saved) -> Optional[dict]:
    """The predicted class of each test example as the run's predictions.csv holds it,
    output name -> int array (the ``predicted`` / ``<output>_predicted`` column); ``None``
    where predictions.csv is absent or predicts no classes."""
    from kerapipe.run_files import read_run_text

    path = saved.run_dir / "predictions.csv"
    if not os.path.lexists(path):
        return None
    rows = list(csv.DictReader(read_run_text(path, _MAX_PREDICTIONS_BYTES).splitlines()))
    names = list(saved.model.output_names)
    columns = {names[0]: "predicted"} if len(names) == 1 else \
        {n: f"{n}_predicted" for n in names}
    classes = {}
    for name, column in columns.items():
        try:
            classes[name] = np.array([int(row[column]) for row in rows], dtype=np.int64)
        except (KeyError, TypeError, ValueError):  # values, label sets: no class column
            continue
    return classes or None


# --- export -------------------------------------------------------------------------------

def _refuse_string_inputs(model, fmt: str) -> None:
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
        raise _cannot_export("saved_model", err) from err
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
        raise _cannot_export("tflite", err, ops) from err
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
    import tf2onnx

    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import \
        convert_variables_to_constants_v2

    unsupported = _Unsupported()
    tf2onnx_log = logging.getLogger("tf2onnx")
    propagate, tf_level = tf2onnx_log.propagate, tf.get_logger().level
    tf2onnx_log.addHandler(unsupported)
    tf2onnx_log.propagate = False  # its errors are ours to word
    tf.get_logger().setLevel(logging.ERROR)  # tf2onnx's TF1-API deprecation notices
    try:
        with warnings.catch_warnings():
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
        raise _cannot_export("onnx", err, unsupported.ops) from err
    finally:
        tf2onnx_log.removeHandler(unsupported)
        tf2onnx_log.propagate = propagate
        tf.get_logger().setLevel(tf_level)
    if unsupported.ops:
        raise _cannot_export("onnx", None, unsupported.ops)
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


def _cannot_export(fmt: str, err: Optional[BaseException], ops=()) -> UsageError:
    reason = f"it uses TensorFlow ops {fmt} has no equivalent for: {', '.join(ops)}" if ops \
        else f"{type(err).__name__}: " + " ".join(str(err).strip().splitlines()[-1:])[:300]
    others = ", ".join(f for f in FORMATS if f != fmt)
    return UsageError(f"this run's model cannot be exported to {fmt} ({reason}). Export it "
                      f"to another format ({others}), or simplify the layers it names.")


_EXPORTERS = {"saved_model": _export_saved_model, "tflite": _export_tflite,
              "onnx": _export_onnx}


# --- run the exported artifact ------------------------------------------------------------

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
    return _joined([_ordered(model, runner(**_input_dict(model, b))) for b in batches])


def _run_onnx(artifact: Path, model, batches: list) -> dict:
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(artifact),
                                               providers=["CPUExecutionProvider"])
    except Exception as err:  # tf2onnx wrote ops onnxruntime does not know
        raise _cannot_export("onnx", err) from err
    names = [o.name for o in session.get_outputs()]
    by_name = set(names) == set(model.output_names)  # several outputs keep their names
    return _joined([dict(zip(names if by_name else model.output_names,
                             session.run(names, _input_dict(model, b)))) for b in batches])


def _joined(per_batch: list) -> dict:
    return {n: np.concatenate([b[n] for b in per_batch]) for n in per_batch[0]}


_RUNNERS = {"saved_model": _run_saved_model, "tflite": _run_tflite, "onnx": _run_onnx}
_RUNTIMES = {"saved_model": "TensorFlow's SavedModel loader", "tflite": "tf.lite.Interpreter",
             "onnx": "onnxruntime"}


def _run_export(fmt: str, artifact: Path, model, batches: list) -> dict:
    """The export's outputs on the batches, by its own runtime.

    Raises:
        ExportMismatch: the runtime cannot load or run what the converter wrote.
    """
    try:
        return _RUNNERS[fmt](artifact, model, batches)
    except KerapipeError:
        raise
    except Exception as err:  # what each runtime raises varies: said, not a traceback
        reason = " ".join(str(err).strip().splitlines()[:1])[:300]
        raise ExportMismatch(f"the {fmt} export was converted, but {_RUNTIMES[fmt]} cannot "
                             f"run it on the run's inputs ({type(err).__name__}: {reason}). "
                             "Nothing was written; export to another format.") from err


# --- compare ------------------------------------------------------------------------------

def _compare(fmt: str, reference: dict, exported: dict, classifiers: list,
             run_classes: Optional[dict], split: str) -> ExportResult:
    from kerapipe.compiler.predictions import class_columns, probabilities_to_classes

    tolerance = TOLERANCE[fmt]
    examples = len(next(iter(reference.values())))
    max_delta = max_relative = 0.0
    for name, want in reference.items():
        got = exported.get(name)
        if got is None or got.shape != want.shape:
            raise ExportMismatch(f"the {fmt} export's output '{name}' has shape "
                                 f"{None if got is None else got.shape}, the Keras model's "
                                 f"{want.shape}.")
        delta = np.abs(got.astype(np.float64) - want)
        max_delta = max(max_delta, float(np.max(delta, initial=0.0)))
        # A value (regression) is held to the tolerance relative to its size; a
        # probability, at most 1, to the tolerance itself.
        max_relative = max(max_relative, float(np.max(
            delta / np.maximum(1.0, np.abs(want.astype(np.float64))), initial=0.0)))
    result = ExportResult(fmt, Path(), 0.0, examples, split, max_delta, tolerance,
                          max_relative=max_relative)
    if not classifiers:
        return result
    agree = np.ones(examples, bool)
    near_tie = np.zeros(examples, bool)
    agree_run = np.ones(examples, bool) if run_classes else None
    for name in classifiers:
        keras_classes = probabilities_to_classes(reference[name])
        same = probabilities_to_classes(exported[name]) == keras_classes
        top2 = np.sort(class_columns(reference[name]), axis=1)[:, -2:]
        near_tie |= ~same & (top2[:, 1] - top2[:, 0] <= 2 * tolerance)
        agree &= same
        if agree_run is not None:
            agree_run &= probabilities_to_classes(exported[name]) == run_classes[name]
    result.agreed, result.near_ties = int(agree.sum()), int(near_tie.sum())
    result.agreed_run = None if agree_run is None else int(agree_run.sum())
    return result


def _classifier_outputs(data, reference: dict) -> list:
    """The outputs whose predictions are classes (argmax), by the run's rules (those of
    predictions.csv): not regression values, not multi-label sets, not raw arrays."""
    if data.outputs is not None:
        return [n for n, facts in data.outputs.items()
                if n in reference and facts.num_classes is not None]
    labels = data.labels
    if data.num_classes is None or (labels is not None
                                    and labels.kind not in ("classes", "binary")):
        return []
    return list(reference)


def _check_parity(result: ExportResult) -> None:
    problems = []
    if not result.max_relative <= result.tolerance:  # NaN fails too
        shown = "" if result.max_relative == result.max_delta else \
            f" ({result.max_relative:.3g} of max(1, |value|))"
        problems.append(f"max |Δp| = {result.max_delta:.3g}{shown} exceeds the tolerance "
                        f"{result.tolerance:g}")
    if result.agreed is not None and result.examples - result.agreed > result.near_ties:
        problems.append(f"{result.examples - result.agreed} of {result.examples} predicted "
                        "classes differ from the Keras model's")
    if result.agreed_run is not None \
            and result.examples - result.agreed_run > result.near_ties:
        problems.append(f"{result.examples - result.agreed_run} of {result.examples} "
                        "predicted classes differ from the run's predictions.csv")
    if problems:
        raise ExportMismatch(f"the {result.format} export does not reproduce the run's model "
                             f"on its {result.split} split: {'; '.join(problems)}. Nothing "
                             "was written.")
