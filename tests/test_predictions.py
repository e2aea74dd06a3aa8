"""The prediction rules (kerapipe/compiler/predictions.py): one rule for `run`, `predict`,
`evaluate` and `CompiledPipeline.predict` (issue 11)."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

from kerapipe.compiler.predictions import (class_name, predicted_values, predictions_csv,
                                           probabilities_to_classes, ranked_columns)


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(text.splitlines()))


def test_the_module_loads_without_tensorflow():
    import subprocess
    import sys

    code = ("import sys, kerapipe.compiler.predictions; "
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_one_sigmoid_unit_predicts_class_1_above_one_half_everywhere():
    """The CSV and the class indices used to disagree at exactly 0.5 (class 1 in
    `predict`'s indices, class 0 in predictions.csv's ranking)."""
    probabilities = np.array([[0.5], [0.5000001], [0.2], [0.9]], dtype="float32")
    assert probabilities_to_classes(probabilities).tolist() == [0, 1, 0, 1]
    written = rows(predictions_csv(probabilities, num_classes=2))
    assert [int(row[1]) for row in written[1:]] == [0, 1, 0, 1]
    assert [row[3] for row in written[1:]] == ["0.500000", "0.500000", "0.800000", "0.900000"]


def test_run_columns_and_number_formats_are_kept():
    probabilities = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]], dtype="float32")
    text = predictions_csv(probabilities, true=np.array([1, 2]), class_names=["a", "b", "c"],
                           top_k=2, num_classes=3)
    assert rows(text) == [
        ["index", "predicted", "predicted_name", "confidence", "true", "true_name", "top2",
         "top2_name", "top2_confidence"],
        ["0", "1", "b", "0.500000", "1", "b", "2", "c", "0.300000"],
        ["1", "0", "a", "0.600000", "2", "c", "2", "c", "0.300000"]]


def test_inputs_are_written_right_after_the_index():
    probabilities = np.array([[0.9, 0.1], [0.3, 0.7]], dtype="float32")
    text = predictions_csv(probabilities, inputs=["cats/1.png", "dogs/2.png"],
                           true=np.array([0, 0]), class_names=["cat", "dog"], num_classes=2)
    assert rows(text) == [
        ["index", "input", "predicted", "predicted_name", "confidence", "true", "true_name"],
        ["0", "cats/1.png", "0", "cat", "0.900000", "0", "cat"],
        ["1", "dogs/2.png", "1", "dog", "0.700000", "0", "cat"]]


def test_predict_columns_have_no_labels():
    text = predictions_csv(np.array([[0.1, 0.9]]), inputs=["7"], class_names=None,
                           num_classes=2)
    assert rows(text) == [["index", "input", "predicted", "predicted_name", "confidence"],
                          ["0", "7", "1", "1", "0.900000"]]


def test_regression_writes_the_value_with_or_without_labels_and_inputs():
    values = np.array([[1.5], [-2.25]], dtype="float32")
    assert rows(predictions_csv(values, true=np.array([1.0, -2.0]))) == [
        ["index", "predicted", "true"], ["0", "1.5", "1"], ["1", "-2.25", "-2"]]
    assert rows(predictions_csv(values, inputs=["a", "b"])) == [
        ["index", "input", "predicted"], ["0", "a", "1.5"], ["1", "b", "-2.25"]]


def test_ranks_are_clamped_to_the_classes_and_names_fall_back_to_the_index():
    assert ranked_columns(5, 3) == 3 and ranked_columns(0, 3) == 1
    assert class_name(["a"], 0) == "a" and class_name(["a"], 4) == "4"
    assert class_name(None, 2) == "2"
    text = predictions_csv(np.full((2, 4), 0.25, dtype="float32"), true=np.array([0, 3]),
                           top_k=10**9, num_classes=4)
    assert {len(row) for row in rows(text)} == {6 + 3 * 3}


def test_predicted_values_are_flat_for_one_unit_and_kept_for_several():
    assert predicted_values(np.array([[1.0], [2.0]])).shape == (2,)
    assert predicted_values(np.ones((3, 2))).shape == (3, 2)


# --- CompiledPipeline.predict --------------------------------------------------------------

@pytest.mark.parametrize("units", [1, 2])
def test_compiled_predict_on_a_regression_pipeline_returns_the_values(units, tmp_path):
    """It returned class indices (`[1 1 1 1 1]`) for a regression pipeline (issue 11)."""
    from kerapipe import compile_pipeline

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3)).astype("float32")
    y = (x[:, :units] * 10 + 5).astype("float32")
    np.savez(tmp_path / "data.npz", x=x, y=y[:, 0] if units == 1 else y)
    os.chdir(tmp_path)
    compiled = compile_pipeline({
        "kerapipe": 1, "seed": 1, "data": {"source": {"npz": "data.npz"}, "batch_size": 10},
        "model": {"layers": [{"Dense": {"units": units}}]}, "loss": "mse",
        "metrics": ["mae"], "train": {"epochs": 1}})
    predicted = compiled.predict()
    outputs = compiled.predict_proba()
    assert predicted.dtype.kind == "f"
    assert predicted.shape == ((len(outputs),) if units == 1 else (len(outputs), units))
    np.testing.assert_array_equal(predicted, outputs[:, 0] if units == 1 else outputs)


def test_compiled_predict_on_a_classifier_returns_the_classes_of_the_rule(tmp_path):
    from kerapipe import compile_pipeline

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x=rng.normal(size=(30, 3)).astype("float32"),
             y=np.arange(30) % 2)
    os.chdir(tmp_path)
    compiled = compile_pipeline({
        "kerapipe": 1, "seed": 1, "data": {"source": {"npz": "data.npz"}, "batch_size": 10},
        "model": {"layers": [{"Dense": {"units": 1, "activation": "sigmoid"}}]},
        "loss": "binary_crossentropy", "train": {"epochs": 1}})
    predicted = compiled.predict()
    assert predicted.tolist() == probabilities_to_classes(compiled.predict_proba()).tolist()
    assert set(predicted.tolist()) <= {0, 1}
