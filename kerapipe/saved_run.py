"""A finished run folder, reopened: `kerapipe predict RUN_DIR INPUT` and `kerapipe evaluate RUN_DIR`.

The folder's ``model.keras`` is the inference model (raw input -> class probabilities),
loaded with Keras's safe mode; ``spec.yaml`` and ``run.json`` say how its data was read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Optional

import numpy as np

from kerapipe.errors import DataError, SpecError, UsageError
from kerapipe.spec.model import PipelineSpec, default_run_name, is_custom_name
from kerapipe.spec.validate import ValidationResult, validate_data, validate_text


@dataclass
class SavedRun:
    """A run folder: its spec, run record and inference model."""

    run_dir: Path
    spec: PipelineSpec
    record: dict
    model: object  # keras.Model

    @property
    def class_names(self) -> Optional[list]:
        return self.record.get("data", {}).get("class_names")


def open_run(run_dir: str | os.PathLike, allow_imports: bool = False) -> SavedRun:
    """Load a run folder written by ``kerapipe run``.

    A run whose pipeline imports code keeps those files in its folder; they are imported
    (to rebuild the custom layers) only with ``allow_imports``.

    Raises:
        UsageError: the folder is not a complete run folder, or its run.json says the
            run failed, was interrupted or is still running.
        SpecError: its spec.yaml no longer validates, or it imports code not allowed.
    """
    from kerapipe.run_files import (damaged, load_saved_model, max_spec_bytes,
                                    read_run_record, read_run_text)

    folder = Path(run_dir)
    # regular, bounded files, or a UsageError; read first: a run that failed or goes on
    # is said so, not called a folder that lacks model.keras
    record = (read_run_record(folder / "run.json") if os.path.lexists(folder / "run.json")
              else None)
    if record is not None and record["status"] != "finished":
        from kerapipe.run_folder import not_finished_refusal

        raise UsageError(not_finished_refusal(folder, record, "Only a finished run has "
                                              "the model.keras to predict, evaluate or "
                                              "export with"))
    needed = ["spec.yaml", "run.json", "model.keras"]
    missing = [name for name in needed if not os.path.lexists(folder / name)]
    if missing:
        raise UsageError(f"'{folder}' is not a finished kerapipe run folder (missing "
                         f"{', '.join(missing)}). Give a folder that `kerapipe run` created.")
    if "num_classes" not in (record.get("data") or {}):  # every finished run records it
        raise damaged(folder / "run.json", "it does not say whether the model predicts "
                      "classes or values (data.num_classes is missing)")
    spec_text = read_run_text(folder / "spec.yaml", max_spec_bytes())
    result = _validate_stored_spec(spec_text, folder / "spec.yaml")
    if result.spec is None:
        raise SpecError(result.errors)
    from kerapipe.spec.checks import refused_imports

    refused = refused_imports(result, allow_imports)  # before seconds of TensorFlow
    if refused:
        raise SpecError(refused)
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)

    from kerapipe.compiler.imports import imported_objects

    from kerapipe.compiler.layer_classes import import_layer_packages

    custom = imported_objects(result, allow_imports, folder)  # the run's copies of the files
    import_layer_packages(result.spec)  # keras-hub, if a layer needs it (or a UsageError)
    model = load_saved_model(folder / "model.keras", custom)
    return SavedRun(folder, result.spec, record, model)


def _validate_stored_spec(text: str, path: Path) -> ValidationResult:
    """Validate a run folder's ``spec.yaml`` (``text``, read once by the checked reader),
    tolerating a name an older kerapipe accepted.

    Runs written before the run-name rule (``bad-name``, issue 10) may be named ``café``
    or ``_x``; they must still open for ``predict`` and ``evaluate``, which never use the
    name. When ``bad-name`` is the only error, the name is replaced by one the rule
    accepts (``default_run_name`` of it) and the spec validated again; any other error
    is reported as it is.
    """
    result = validate_text(text, str(path), resolve=False)  # stored: never extends again
    data = result.document.data if result.document is not None else None
    if result.spec is not None or not isinstance(data, dict) \
            or any(issue.code != "bad-name" for issue in result.errors):
        return result
    safe = default_run_name(f"{PurePath(str(data.get('name'))).name}.yaml")
    tolerated = validate_data({**data, "name": safe}, str(path), result.document)
    return tolerated if tolerated.spec is not None else result


def read_inputs(saved: SavedRun, path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Raw model inputs from an .npz, a .csv or a folder of images; and an id per row.

    Read by the run's source (``kerapipe.compiler.sources``) with training's rules: an .npz
    checked from its headers, never unpickled, bounded in memory; a CSV by training's
    reader, its feature columns selected by name; a folder indexed and its images checked
    as training does. The ids are of the kind the run's splits carry: an array position, a
    CSV line number (or id column value), an image's path inside the folder.

    Raises:
        DataError: the input is missing, not a regular file, or cannot be read.
    """
    from kerapipe.compiler.sources import source_for

    base_dir = saved.record.get("base_dir") or os.getcwd()
    return source_for(saved.spec, base_dir).read_inputs(path, saved.record)


def predict_to_csv(saved: SavedRun, input_path: str | os.PathLike) -> str:
    """The predictions for the inputs, as CSV text (one row per example): ``index,
    input, predicted, predicted_name, confidence`` (regression: ``index, input,
    predicted``), by the run's prediction rules (``kerapipe.compiler.predictions``)."""
    from kerapipe.compiler.predictions import predictions_csv

    declared = saved.spec.data.labels
    if declared is not None and declared.kind == "raw":
        raise UsageError(f"{saved.run_dir}: this run's labels are `raw` arrays, so its "
                         "predictions are arrays too, not CSV rows (its run wrote "
                         "predictions.npz). Load its model.keras with "
                         "keras.saving.load_model and call predict on the inputs.")
    x, labels = read_inputs(saved, input_path)
    _check_input_shape(saved, input_path, x)
    try:
        probabilities = saved.model.predict(_batches(saved, x), verbose=0)
    except ValueError as err:
        reason = " ".join(str(err).strip().splitlines()[:1])  # Keras adds its call's arguments
        raise DataError(f"{input_path}: the inputs do not fit the model: {reason}") from err
    heads = _recorded_outputs(saved)
    if heads is not None:  # several outputs: one column group each
        from kerapipe.compiler.predictions import outputs_predictions_csv

        return outputs_predictions_csv(probabilities, heads, inputs=labels)
    declared = saved.spec.data.labels  # a kind the file names (else as the record says)
    options = {} if declared is None else {"kind": declared.kind, "threshold":
                                           declared.label_threshold,
                                           "separator": declared.label_separator}
    return predictions_csv(probabilities, inputs=labels, class_names=saved.class_names,
                           num_classes=saved.record.get("data", {}).get("num_classes"),
                           **options)


def _batches(saved: SavedRun, x) -> object:
    """``predict``'s inputs as the model takes them: an array as it is; a dict (several
    inputs, typed columns) through tf.data, as training reads them, so that string
    columns (object arrays, which Keras refuses) become string tensors batch by batch."""
    if not isinstance(x, dict):
        return x
    from kerapipe.compiler.datasets import array_features

    return array_features(x, saved.spec, 256)


def _recorded_outputs(saved: SavedRun) -> Optional[dict]:
    """A run of several outputs: output name -> ``(class names, class count)`` as run.json
    records them, in the spec's order; ``None`` for one output.

    Raises:
        UsageError: run.json does not record every output of the spec (damage).
    """
    from kerapipe.spec.metrics import output_heads

    heads = output_heads(saved.spec)
    if not heads:
        return None
    recorded = saved.record.get("data", {}).get("outputs")
    if not isinstance(recorded, dict) or not all(
            isinstance(recorded.get(h.name), dict) for h in heads):
        from kerapipe.run_files import damaged

        raise damaged(saved.run_dir / "run.json", "it does not record the classes of each of "
                      "the model's outputs (data.outputs)")
    return {h.name: (recorded[h.name].get("class_names"), recorded[h.name].get("num_classes"))
            for h in heads}


def _check_input_shape(saved: SavedRun, input_path: str | os.PathLike, x: np.ndarray) -> None:
    """Refuse inputs whose example shape is not the one the model takes (before Keras,
    whose message names no file and lists its call's arguments).

    Raises:
        DataError: naming both shapes.
    """
    if isinstance(x, dict):  # several inputs: each against the shape run.json records
        recorded = saved.record.get("data", {}).get("example_shape")
        for name, array in x.items():
            want = recorded.get(name) if isinstance(recorded, dict) else None
            if isinstance(want, list):
                _compare_shapes(input_path, tuple(want), tuple(array.shape[1:]),
                                f" of input '{name}'")
        return
    shape = saved.model.input_shape
    if not isinstance(shape, tuple) or any(isinstance(d, (tuple, list)) for d in shape):
        return  # several inputs: Keras checks each
    _compare_shapes(input_path, tuple(shape[1:]), tuple(x.shape[1:]), "")


def _compare_shapes(input_path: str | os.PathLike, expected: tuple, given: tuple,
                    which: str) -> None:
    if len(given) != len(expected) or any(
            want is not None and want != have for want, have in zip(expected, given)):
        shown = tuple("any" if want is None else want for want in expected)
        raise DataError(f"{input_path}: each example{which} has shape {given}, but the model "
                        f"takes {shown}. Give inputs of the shape the run was trained on. "
                        f"Received: shape={given}")


def write_new_file(path: str | os.PathLike, text: str) -> None:
    """Write a file that must not exist yet: nothing a user had is overwritten, not even a
    file made meanwhile, and a link there is refused, not followed
    (``kerapipe.safe_io.write_new_file``).

    Raises:
        OutputError: ``path`` exists, or its folder cannot be written.
    """
    from kerapipe import safe_io

    safe_io.write_new_file(path, text, taken=(
        f"{path} already exists; kerapipe never overwrites a file. Choose another name."))


def load_run_data(saved: SavedRun):
    """The run's data, read again as the run read it (its pipeline, from the folder it
    ran in) and checked against run.json's fingerprint, so its splits are the run's.

    Raises:
        DataError: it cannot be read, or it changed since the run.
    """
    from kerapipe.compiler.sources.loading import load_data

    data = load_data(saved.spec, saved.record.get("base_dir") or os.getcwd())
    if data.fingerprint != saved.record.get("data", {}).get("fingerprint"):
        raise DataError("the data changed since this run (its fingerprint differs from "
                        "run.json), so its splits are not the ones the run held out. "
                        "Restore the run's data, or start a new run.")
    return data


def evaluate_run(saved: SavedRun) -> dict[str, float]:
    """Re-evaluate the saved model on its run's test split (same seed, same split)."""
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import keras

    from kerapipe.compiler.build import build_loss_on_probabilities, build_metric
    from kerapipe.compiler.datasets import split_features
    from kerapipe.compiler.metrics import loaded_run_labels
    from kerapipe.spec.metrics import logged_metric_name

    data = load_run_data(saved)
    if data.test is None or len(data.test.y) == 0:
        raise DataError("this run has no test split to evaluate (data.split.test is 0).")
    probabilities = saved.model.predict(
        split_features(data.test, data, saved.spec, 256), verbose=0)
    if data.outputs is not None:
        return _evaluate_outputs(saved, data, probabilities)
    y = data.test.y
    one_hot = saved.spec.data.first_options("one_hot")
    if one_hot is not None:
        y = keras.ops.convert_to_numpy(keras.ops.one_hot(y, one_hot.num_classes
                                                         or data.num_classes))

    # The metrics as training built them, on the saved model's probabilities (no logits).
    labels, units = loaded_run_labels(saved.spec, data.num_classes,
                                      tuple(probabilities.shape[1:]), logits=False)
    results = {}
    for metric_spec in saved.spec.metrics:
        metric = build_metric(metric_spec, labels=labels, output_units=units)
        metric.update_state(y, probabilities)
        results[logged_metric_name(metric_spec)] = float(metric.result())
    if not is_custom_name(saved.spec.loss.name):  # a custom loss may expect logits: skipped
        results["loss"] = float(build_loss_on_probabilities(saved.spec)(y, probabilities))
    return results  # in the run's order (metrics.json's: Keras's evaluate, the loss last)


def _evaluate_outputs(saved: SavedRun, data, outputs: dict) -> dict[str, float]:
    """``evaluate_run`` of a model of several outputs: each output's loss and metrics
    under Keras's names (``digit_loss``, ``size_mae``) and ``loss``, their weighted sum."""
    from kerapipe.compiler.build import build_loss_on_probabilities, build_metric
    from kerapipe.compiler.metrics import loaded_run_labels
    from kerapipe.spec.metrics import logged_metric_name, output_heads

    results: dict[str, float] = {"loss": 0.0}
    for head in output_heads(saved.spec):
        probabilities, y = outputs[head.name], data.test.y_outputs[head.name]
        facts = data.outputs[head.name]
        labels, units = loaded_run_labels(saved.spec, facts.num_classes,
                                          tuple(probabilities.shape[1:]), logits=False)
        if not is_custom_name(head.loss.name):
            loss = float(build_loss_on_probabilities(saved.spec, head.loss)(y, probabilities))
            results[f"{head.name}_loss"] = loss
            results["loss"] += head.weight * loss
        for metric_spec in head.metrics:
            metric = build_metric(metric_spec, labels=labels, output_units=units)
            metric.update_state(y, probabilities)
            results[f"{head.name}_{logged_metric_name(metric_spec)}"] = float(metric.result())
    return results
