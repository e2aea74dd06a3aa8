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

The package: ``formats`` writes each format, ``runtimes`` runs what was written,
``parity`` reads the run's inputs and compares, ``destination`` places the checked
artifact, ``result`` is what is reported; ``export_run`` here puts them in order, after
``check_export_request``, the refusals that need no model (the command calls it before it
imports TensorFlow and loads the run: they come in well under a second, not after ~10 s).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Optional

from kerapipe.errors import UsageError
from kerapipe.export.destination import DEFAULT_PATHS, check_destination, default_export_path, \
    make_staging, move_into_place, refuse_a_linked_export_folder
from kerapipe.export.formats import EXPORTERS, FORMATS, ONNX_EXTRA_HINT, SUFFIXES, \
    check_output_suffix, refuse_string_inputs, require_onnx_extra
from kerapipe.export.parity import TOLERANCE, check_parity, comparable, compare, parity_inputs
from kerapipe.export.result import ExportMismatch, ExportResult
from kerapipe.export.runtimes import RUNNERS, run_export
from kerapipe.safe_io import refuse_a_parent_through_a_file

__all__ = ["DEFAULT_PATHS", "FORMATS", "ONNX_EXTRA_HINT", "SUFFIXES", "TOLERANCE",
           "ExportMismatch", "ExportResult", "check_destination", "check_export_request",
           "check_output_suffix", "default_export_path", "export_run",
           "refuse_a_linked_export_folder", "require_onnx_extra"]

# Names of the single module this package was, still importable from here (export_run
# calls check_parity, the name to patch).
_compare, _check_parity, _RUNNERS = compare, check_parity, RUNNERS


def check_export_request(run_dir: str | os.PathLike, fmt: str,
                         output: Optional[str | os.PathLike] = None) -> Path:
    """Every refusal of an export that needs neither TensorFlow nor the run's model, so
    that ``kerapipe export`` gives it at once, not after seconds of importing TensorFlow
    and loading the model: the format, ``output``'s suffix, a destination that exists or
    whose folder is a file, a linked ``RUN_DIR/export``, the onnx extra. The destination
    is checked again when the checked artifact is moved there (``move_into_place``).

    Returns:
        The destination: ``output``, else ``default_export_path(run_dir, fmt)``.

    Raises:
        UsageError: an unknown format, a suffix of another format, the onnx extra missing.
        OutputError: the destination exists, a folder of its path is a file, or
            ``RUN_DIR/export`` is a link.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}'; expected one of {', '.join(FORMATS)}.")
    if output is not None:
        check_output_suffix(output, fmt)
    destination = Path(output) if output is not None else default_export_path(run_dir, fmt)
    check_destination(destination)
    refuse_a_parent_through_a_file(str(destination))  # missing folders are made later
    if output is None:
        refuse_a_linked_export_folder(run_dir)
    if fmt == "onnx":
        require_onnx_extra()
    return destination


def export_run(saved, fmt: str, output: Optional[str | os.PathLike] = None) -> ExportResult:
    """Export a finished run's model to ``fmt``, check it on the run's test inputs, and
    move it to ``output`` (default ``default_export_path``).

    Args:
        saved: the run, as ``kerapipe.saved_run.open_run`` opened it.
        fmt: one of ``FORMATS``.
        output: the path to write. Defaults to ``RUN_DIR/export/<format's name>``.

    Raises:
        UsageError: a request ``check_export_request`` refuses, or the model cannot be
            exported to ``fmt``.
        OutputError: the destination exists or cannot be written.
        DataError: the run's data cannot be read again (its test inputs).
        ExportMismatch: the export does not reproduce the Keras model.
    """
    destination = check_export_request(saved.run_dir, fmt, output)
    if fmt in ("onnx", "tflite"):
        refuse_string_inputs(saved.model, fmt)
    inputs, split, reference, run_classes, classifiers = parity_inputs(saved)
    checked = comparable(run_classes, classifiers, reference, split)
    staging = make_staging(destination)
    try:
        artifact = staging / destination.name
        tick = time.perf_counter()
        notes = EXPORTERS[fmt](saved.model, artifact, staging)
        seconds = time.perf_counter() - tick
        exported = run_export(fmt, artifact, saved.model, inputs)
        result = compare(fmt, reference, exported, classifiers, checked[0], split)
        result.seconds, result.notes = seconds, notes + checked[1]
        check_parity(result)
        move_into_place(artifact, destination)
        result.path = destination
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)
