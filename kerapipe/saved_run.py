"""A finished run folder, reopened: `kerapipe predict RUN_DIR INPUT` and `kerapipe evaluate RUN_DIR`.

The folder's ``model.keras`` is the inference model (raw input -> class probabilities),
loaded with Keras's safe mode; ``spec.yaml`` and ``run.json`` say how its data was read.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Optional

import numpy as np

from kerapipe.errors import DataError, OutputError, SpecError, UsageError
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
        UsageError: the folder is not a complete run folder.
        SpecError: its spec.yaml no longer validates, or it imports code not allowed.
    """
    from kerapipe.run_files import (load_saved_model, max_spec_bytes, read_run_record,
                                    read_run_text)

    folder = Path(run_dir)
    needed = ["spec.yaml", "run.json", "model.keras"]
    missing = [name for name in needed if not os.path.lexists(folder / name)]
    if missing:
        raise UsageError(f"'{folder}' is not a finished kerapipe run folder (missing "
                         f"{', '.join(missing)}). Give a folder that `kerapipe run` created.")
    record = read_run_record(folder / "run.json")  # regular, bounded files, or a UsageError
    spec_text = read_run_text(folder / "spec.yaml", max_spec_bytes())
    result = _validate_stored_spec(spec_text, folder / "spec.yaml")
    if result.spec is None:
        raise SpecError(result.errors)
    import kerapipe.compiler  # noqa: F401  (backend and quiet TensorFlow import first)

    from kerapipe.compiler.imports import imported_objects

    custom = imported_objects(result, allow_imports, folder)  # the run's copies of the files
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
    result = validate_text(text, str(path))
    data = result.document.data if result.document is not None else None
    if result.spec is not None or not isinstance(data, dict) \
            or any(issue.code != "bad-name" for issue in result.errors):
        return result
    safe = default_run_name(f"{PurePath(str(data.get('name'))).name}.yaml")
    tolerated = validate_data({**data, "name": safe}, str(path), result.document)
    return tolerated if tolerated.spec is not None else result


def read_inputs(saved: SavedRun, path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Raw model inputs from an .npz, a .csv or a folder of images; and a label per row.

    The files are read by the training side's rules (``kerapipe.compiler``): regular
    files only, opened without blocking; an .npz checked from its headers, never
    unpickled, bounded in memory; a CSV as UTF-8 with bounded lines; a folder walked by
    the folder policy, passing over what it refuses (a link out of the folder, a FIFO).

    Raises:
        DataError: the input is missing, not a regular file, or cannot be read.
    """
    from kerapipe.compiler.files import check_regular_file
    from kerapipe.compiler.images import IMAGE_EXTENSIONS, image_files

    source = Path(path)
    try:
        is_folder = source.is_dir()
    except (OSError, ValueError) as err:  # a name too long for the file system, a NUL
        raise DataError(f"{source}: cannot be read ({getattr(err, 'strerror', None) or err}). "
                        "Give an .npz file, a .csv file or a folder of images.") from err
    if is_folder:
        files = sorted(image_files(source, skip_refused=True))
        if not files:
            raise DataError(f"{source}: no images ({', '.join(IMAGE_EXTENSIONS)}) found "
                            "(only regular files inside the folder are read).")
        return _decode_images(saved, files), [os.path.relpath(f, source) for f in files]
    if not os.path.exists(source):
        raise DataError(f"{source}: no such file or folder.")
    check_regular_file(str(source), str(source))
    if source.suffix == ".npz":
        x = _pad_if_needed(saved.spec, _read_npz_features(source))
        if len(x) == 0:
            raise DataError(f"{source}: the feature array holds no examples to predict.")
        return x, [str(i) for i in range(len(x))]
    if source.suffix == ".csv":
        return _read_csv_features(saved.spec, source)
    raise DataError(f"{source}: expected an .npz file, a .csv file or a folder of images.")


_NPZ_FIX = "Save the inputs with numpy.savez(path, x=features)."


def _read_npz_features(path: Path) -> np.ndarray:
    """The feature array of an .npz (``x``, else ``x_test``, ``x_train``, else the first),
    chosen from the headers and read by the training side's reader."""
    from kerapipe.compiler.npz import npz_headers, read_npz

    headers = npz_headers(path, str(path), _NPZ_FIX)
    names = [n for n in ("x", "x_test", "x_train") if n in headers] or list(headers)
    if not names:
        raise DataError(f"{path}: holds no arrays. {_NPZ_FIX}")
    name, header = names[0], headers[names[0]]
    if not header.shape:
        raise DataError(f"{path}: array '{name}' is a single value, not one row per "
                        f"example. {_NPZ_FIX}")
    if header.dtype.kind not in "biuf":
        raise DataError(f"{path}: array '{name}' holds {header.dtype} values; the model's "
                        "inputs must be numbers. Convert them before saving the file.")
    return read_npz(path, [name], str(path), _NPZ_FIX)[name]


def _short(err: BaseException | str) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _pad_if_needed(spec: PipelineSpec, x: np.ndarray) -> np.ndarray:
    for step in spec.data.preprocess:
        if step.kind == "pad_sequences":
            import keras

            options = step.options
            return keras.utils.pad_sequences(list(x), maxlen=options.maxlen,
                                             padding=options.padding,
                                             truncating=options.truncating)
    return x


def _read_csv_features(spec: PipelineSpec, path: Path) -> tuple[np.ndarray, list[str]]:
    from kerapipe.compiler.csv_source import MAX_CSV_COLUMNS, open_csv

    csv_source = spec.data.source.csv
    delimiter = csv_source.delimiter if csv_source else ","
    with open_csv(str(path), str(path), delimiter) as (reader, _):
        rows = list(reader)
    if not rows:
        raise DataError(f"{path}: the file is empty; it needs a header row.")
    header, body = rows[0], rows[1:]
    if len(header) > MAX_CSV_COLUMNS:  # training refuses such a header too
        raise DataError(f"{path}: the header has {len(header):,} columns; kerapipe reads at "
                        f"most {MAX_CSV_COLUMNS:,}.")
    if not body:
        raise DataError(f"{path}: the file has a header but no rows to predict.")
    if csv_source and csv_source.features:
        wanted = list(csv_source.features)
    elif csv_source:
        wanted = [c for c in header if c != csv_source.label]
    else:
        wanted = header
    position = {}  # the first column of each name, as header.index gives it, in one pass
    for index, column in enumerate(header):
        position.setdefault(column, index)
    missing = [c for c in wanted if c not in position]
    if missing:
        raise DataError(f"{path}: missing feature column(s) {_names(missing)}; the model was "
                        f"trained on {_names(wanted)}.")
    columns = [position[c] for c in wanted]
    values = np.zeros((len(body), len(columns)), dtype=np.float32)
    for row_number, row in enumerate(body, start=2):
        for out, column in enumerate(columns):
            try:
                values[row_number - 2, out] = float(row[column])
            except (ValueError, IndexError):
                cell = row[column] if column < len(row) else "<missing>"
                raise DataError(f"{path}:{row_number}: column '{header[column]}' is not a number. "
                                f"Received: {cell!r}") from None
    return values, [str(i) for i in range(len(body))]


def _names(columns: list[str], shown: int = 20) -> str:
    """Column names for a message: the first ``shown`` and a count of the rest."""
    text = ", ".join(columns[:shown])
    return text + (f" and {len(columns) - shown:,} more" if len(columns) > shown else "")


def _decode_images(saved: SavedRun, files: list[str]) -> np.ndarray:
    import tensorflow as tf

    from kerapipe.compiler.images import decode_image_bytes, read_image_file

    images = saved.spec.data.source.images
    if images is None:
        raise DataError("this run was not trained on images; give an .npz or .csv file.")
    decoded = []
    for file in files:
        contents = read_image_file(file)  # a regular file of bounded size, read once
        try:
            decoded.append(decode_image_bytes(contents, images.image_size,
                                              images.color_mode).numpy())
        except tf.errors.OpError as err:
            raise DataError(f"{file}: cannot be decoded as an image "
                            f"({_short(err.message)}). Replace or delete the file.") from err
    return np.stack(decoded)


def predict_to_csv(saved: SavedRun, input_path: str | os.PathLike) -> str:
    """Argmax predictions for the inputs, as CSV text (one row per example)."""
    from kerapipe.compiler.pipeline import probabilities_to_classes

    x, labels = read_inputs(saved, input_path)
    try:
        probabilities = saved.model.predict(x, batch_size=256, verbose=0)
    except ValueError as err:
        raise DataError(f"{input_path}: the inputs do not fit the model: {err}") from err
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if saved.record.get("data", {}).get("num_classes") is None:
        writer.writerow(["index", "input", "predicted"])
        for index, value in enumerate(probabilities.reshape(len(x), -1)[:, 0]):
            writer.writerow([index, labels[index], f"{value:.6g}"])
        return out.getvalue()
    classes = probabilities_to_classes(probabilities)
    if probabilities.ndim == 2 and probabilities.shape[1] == 1:
        probabilities = np.concatenate([1 - probabilities, probabilities], axis=1)
    names = saved.class_names
    writer.writerow(["index", "input", "predicted", "predicted_name", "confidence"])
    for index, cls in enumerate(classes):
        name = names[cls] if names and cls < len(names) else str(cls)
        writer.writerow([index, labels[index], int(cls), name,
                         f"{probabilities[index, cls]:.6f}"])
    return out.getvalue()


def write_new_file(path: str | os.PathLike, text: str) -> None:
    """Write a file that must not exist yet: nothing a user had is overwritten."""
    from kerapipe.io import write_text_atomic

    if os.path.exists(path):
        raise OutputError(f"{path} already exists; kerapipe never overwrites a file. Choose "
                          "another name.")
    write_text_atomic(str(path), text)


def evaluate_run(saved: SavedRun) -> dict[str, float]:
    """Re-evaluate the saved model on its run's test split (same seed, same split)."""
    import keras

    from kerapipe.compiler.build import build_metric
    from kerapipe.compiler.data import load_data
    from kerapipe.compiler.datasets import split_features

    base_dir = saved.record.get("base_dir") or os.getcwd()
    data = load_data(saved.spec, base_dir)
    if data.test is None or len(data.test.y) == 0:
        raise DataError("this run has no test split to evaluate (data.split.test is 0).")
    if data.fingerprint != saved.record.get("data", {}).get("fingerprint"):
        raise DataError("the data changed since this run (its fingerprint differs from "
                        "run.json), so its test split is not the one the run held out.")
    probabilities = saved.model.predict(
        split_features(data.test, data, saved.spec, 256), verbose=0)
    y = data.test.y
    one_hot = next((s.options for s in saved.spec.data.preprocess if s.kind == "one_hot"), None)
    if one_hot is not None:
        y = keras.ops.convert_to_numpy(keras.ops.one_hot(y, one_hot.num_classes
                                                         or data.num_classes))
    from kerapipe.compiler.build import build_loss_on_probabilities

    results = {}
    if not is_custom_name(saved.spec.loss.name):  # a custom loss may expect logits: skipped
        results["loss"] = float(build_loss_on_probabilities(saved.spec)(y, probabilities))
    for metric_spec in saved.spec.metrics:
        metric = build_metric(metric_spec)
        if isinstance(metric, str):
            metric = _accuracy_for(saved.spec, one_hot is not None, probabilities)
        metric.update_state(y, probabilities)
        results[metric_spec.name] = float(metric.result())
    return results


def _accuracy_for(spec: PipelineSpec, one_hot: bool, probabilities: np.ndarray):
    import keras

    if probabilities.ndim == 2 and probabilities.shape[1] == 1:
        return keras.metrics.BinaryAccuracy()
    return keras.metrics.CategoricalAccuracy() if one_hot else \
        keras.metrics.SparseCategoricalAccuracy()
