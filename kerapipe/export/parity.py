"""The parity check: the run's test inputs (read as ``evaluate`` reads them), the Keras
model's outputs on them and the classes predictions.csv holds, compared with what the
exported artifact's runtime gives (``max |dp|``, predicted classes); an export that does
not reproduce the model is refused."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Optional

import numpy as np

from kerapipe.errors import DataError
from kerapipe.export.result import ExportMismatch, ExportResult

# The largest |difference| of an output (a probability) allowed between the exported model
# and the Keras model on the same inputs. Each runtime computes in float32 with kernels of
# its own (TFLite's and onnxruntime's convolutions and matrix products sum in another order,
# fuse bias and activation); such differences are ~1e-7 per value on bench/export.py's
# models, so 1e-4 is two to three orders above them and still far below any difference that
# changes a prediction. The SavedModel runs TensorFlow's kernels and is held to the same bound.
TOLERANCE = {"saved_model": 1e-4, "tflite": 1e-4, "onnx": 1e-4}
_SPLIT_BATCH = 256
_MAX_PREDICTIONS_BYTES = 1 << 30  # predictions.csv, read whole: ~40 bytes a test example


def parity_inputs(saved):
    """The batches of the run's test inputs (validation, else training, when the run held
    no test out), the Keras model's outputs on them (output name -> array), the classes
    predictions.csv holds for them (``None`` when not comparable), and the names of the
    outputs that predict classes (by the run's rules: not values, not label sets)."""
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import keras

    from kerapipe.compiler.datasets import split_features
    from kerapipe.saved_run import load_run_data

    data = load_run_data(saved)  # the run's splits, or a DataError
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


def comparable(run_classes: Optional[dict], classifiers: list, reference: dict,
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


def compare(fmt: str, reference: dict, exported: dict, classifiers: list,
            run_classes: Optional[dict], split: str) -> ExportResult:
    """The Keras model's outputs (``reference``) against the export's: the largest
    differences and, for the ``classifiers``, the predicted classes that agree."""
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


def check_parity(result: ExportResult) -> None:
    """Raises:
        ExportMismatch: ``result`` is beyond the tolerance, or classes differ.
    """
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
