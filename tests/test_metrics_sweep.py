"""Every catalogued metric measures every kind of labels, or is refused at its key (issue 11).

The sweep compiles one tiny pipeline per kind of labels (class indices beside logits,
one-hot labels beside softmax, 0/1 beside one sigmoid unit, a continuous target) with
every metric class the catalogue accepts (each alias builds the same metric as its class)
and evaluates it on its test split (the command-line test trains too): nothing may raise but a kerapipe error with its exit code, and each
number equals Keras's own metric computed here, by hand, on the same predictions.
"""

from __future__ import annotations

import json
import math
import os
import textwrap

import keras
import numpy as np
import pytest

from kerapipe import SpecError
from kerapipe.pipeline import compile_pipeline
from kerapipe.compiler.predictions import probabilities_to_classes
from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.checks import logged_metric_names
from kerapipe.spec.metrics import METRIC_INPUTS, metric_class, metric_inputs
from kerapipe.spec.model import MetricSpec

ROWS = 60  # 36 train examples (3 steps of 12), 24 test examples
REQUIRED = {"target_class_ids": [0], "recall": 0.5, "precision": 0.5, "specificity": 0.5,
            "sensitivity": 0.5}
KINDS = {  # kind: data file, output layer, loss, preprocess, classes (None: regression)
    "classes": ("classes", {"Dense": {"units": 3}}, "sparse_categorical_crossentropy", [], 3),
    "one_hot": ("classes", {"Dense": {"units": 3, "activation": "softmax"}},
                "categorical_crossentropy", [{"one_hot": {}}], 3),
    "binary": ("binary", {"Dense": {"units": 1, "activation": "sigmoid"}},
               "binary_crossentropy", [], 2),
    "regression": ("regression", {"Dense": {"units": 1}}, "mse", [], None),
}
# Every class name, and `acc` (Keras's own accuracy, which `accuracy` also names); the
# other aliases build the same metric as their class (checked apart, without training).
NAMES = ["acc", *sorted(load_catalog().metrics.entries)]


def metric_entries(names: list[str], classes) -> list:
    """Each name with the arguments its class requires (``num_classes``: the run's)."""
    out = []
    for name in names:
        entry = load_catalog().metrics.get(name)
        required = {key: classes or 2 if key == "num_classes" else REQUIRED[key]
                    for key in (entry.required if entry else ())}
        out.append({"name": name, **required} if required else name)
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 4)).astype("float32")
    np.savez(path / "classes.npz", x=x, y=np.arange(ROWS) % 3)
    np.savez(path / "binary.npz", x=x, y=np.arange(ROWS) % 2)
    np.savez(path / "regression.npz", x=x,
             y=(x @ np.array([1.0, -2.0, 0.5, 0.0]) + 3).astype("float32"))
    return path


def pipeline(kind: str, metrics: list) -> dict:
    data, layer, loss, preprocess, _ = KINDS[kind]
    return {"kerapipe": 1, "name": f"sweep-{kind}", "seed": 3,
            "data": {"source": {"npz": f"{data}.npz"}, "batch_size": 12,
                     "split": {"validation": 0, "test": 0.4}, "preprocess": preprocess},
            "model": {"layers": [layer]}, "loss": loss, "optimizer": "adam",
            "metrics": metrics, "train": {"epochs": 1}}


def by_hand(metric: MetricSpec, kind: str, outputs: np.ndarray, y: np.ndarray) -> float:
    """Keras's own metric class on the inputs in the form it expects, converted here:
    probabilities from the logits, one-hot labels for per-output metrics, two columns for
    one sigmoid unit where one score per class is expected, class ids for IoU."""
    cls = metric_class(metric)
    kwargs = dict(metric.kwargs)
    if cls in ("F1Score", "FBetaScore"):
        kwargs.setdefault("average", "macro")
    if kind == "regression":
        cls = "BinaryAccuracy" if cls == "Accuracy" else cls
        return _result(getattr(keras.metrics, cls)(**kwargs), y[:, None], outputs)
    inputs = metric_inputs(metric)
    if kind == "classes":  # the model outputs logits
        outputs = np.exp(outputs) / np.exp(outputs).sum(axis=1, keepdims=True)
    if kind == "binary" and inputs.predictions != "outputs":
        outputs = np.concatenate([1 - outputs, outputs], axis=1)
    if inputs.predictions == "class_ids":
        outputs = outputs.argmax(axis=1)
    index = y.argmax(axis=1) if y.ndim == 2 else y
    if inputs.labels == "index":
        labels = index
    elif outputs.ndim == 2 and outputs.shape[1] > 1:
        labels = np.eye(outputs.shape[1], dtype="float32")[index]
    else:
        labels = index[:, None].astype("float32")
    cls = "CategoricalAccuracy" if cls == "Accuracy" else cls
    return _result(getattr(keras.metrics, cls)(**kwargs), labels, outputs)


def _result(metric, labels, outputs) -> float:
    metric.update_state(labels, outputs)
    return float(metric.result())


def test_every_catalogued_metric_has_its_form_of_inputs():
    assert set(METRIC_INPUTS) == set(load_catalog().metrics.entries)


@pytest.mark.parametrize("kind", KINDS)
def test_every_metric_runs_and_equals_keras_on_the_same_predictions(kind, folder):
    os.chdir(folder)
    names = NAMES
    classes = KINDS[kind][4]
    entries = metric_entries(names, classes)
    if kind == "regression":  # class metrics are refused at their key; the others run
        with pytest.raises(SpecError) as refused:
            compile_pipeline(pipeline(kind, entries))
        flagged = {issue.path for issue in refused.value.issues}
        assert {issue.code for issue in refused.value.issues} == {"metric-label-mismatch"}
        expected = {("metrics", i) for i, name in enumerate(names)
                    if metric_inputs(MetricSpec(name)).classes_only
                    and name not in ("accuracy", "acc")}
        assert flagged == expected
        entries = [e for i, e in enumerate(entries) if ("metrics", i) not in flagged]
    compiled = compile_pipeline(pipeline(kind, entries))
    # evaluate runs the metrics in the graph as fit's steps do (fit costs a second trace;
    # the command-line test below trains)
    results = compiled.evaluate()
    logged = logged_metric_names(compiled.spec)
    assert set(results) == set(logged)  # what validate tells early stopping it may watch
    outputs = compiled.model.predict(compiled.datasets.test, verbose=0)
    y = np.concatenate([np.asarray(batch_y) for _, batch_y in compiled.datasets.test])
    for metric, name in zip(compiled.spec.metrics, logged[1:]):
        expected = by_hand(metric, kind, outputs, y)
        assert results[name] == pytest.approx(expected, rel=1e-4, abs=1e-5, nan_ok=True), name
    if classes is not None:  # the accuracies, counted without Keras
        correct = np.mean(probabilities_to_classes(by_hand_probabilities(kind, outputs))
                          == (y.argmax(axis=1) if y.ndim == 2 else y))
        for name in ("accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy",
                     "Accuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy"):
            if name in names:
                assert results[logged[1 + names.index(name)]] == pytest.approx(correct), name


@pytest.mark.parametrize("kind", KINDS)
def test_every_alias_builds_the_metric_of_its_class_under_the_name_as_written(kind):
    from kerapipe.compiler.build import build_metric
    from kerapipe.compiler.metrics import MetricInputsAdapter
    from kerapipe.spec.metrics import RunLabels

    classes = KINDS[kind][4]
    units = 1 if classes in (None, 2) else classes
    labels = RunLabels(kind, classes, logits=kind == "classes")
    aliases = load_catalog().metrics.by_alias
    for alias, cls in [("accuracy", "Accuracy"), *sorted(aliases.items())]:
        if kind == "regression" and metric_inputs(MetricSpec(cls)).classes_only \
                and alias != "accuracy":
            continue  # refused (the sweep checks which)
        built = build_metric(MetricSpec(alias), labels=labels, output_units=units)
        model = build_metric(MetricSpec(cls), labels=labels, output_units=units)
        assert isinstance(built, MetricInputsAdapter) and built.name == alias
        assert type(built.metric) is type(model.metric), alias
        config, expected = built.get_config(), model.get_config()
        for one in (config, expected, config["metric"]["config"], expected["metric"]["config"]):
            one.pop("name")
        assert config == expected, alias


def by_hand_probabilities(kind: str, outputs: np.ndarray) -> np.ndarray:
    if kind == "classes":
        return np.exp(outputs) / np.exp(outputs).sum(axis=1, keepdims=True)
    return outputs


# --- the issue's reproductions, through the command line --------------------------------

TINY = textwrap.dedent("""\
    kerapipe: 1
    name: tiny
    seed: 1
    data:
      source: {npz: classes.npz}
      split: {validation: 0, test: 0.4}
      batch_size: 12
    model:
      layers: [{Dense: {units: 3}}]
    metrics: [accuracy]
    train: {epochs: 1}
    """)


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_precision_beside_accuracy_on_class_indices_runs_and_evaluate_agrees(
        folder, tmp_path, call_main):
    """`metrics: [accuracy, precision]` on integer labels exited 1 (issue 11); evaluate
    on the saved model reports the numbers training reported."""
    from kerapipe.saved_run import evaluate_run, open_run

    path = folder / "tiny.yaml"
    path.write_text(TINY)
    metrics = "[accuracy, precision, auc, f1_score, top_k_categorical_accuracy, " \
              "categorical_accuracy, recall, mse]"
    code, out, err = call_main("run", path, "--set", f"metrics={metrics}", "--output",
                               tmp_path / "runs")
    assert code == 0, out + err
    (run_dir,) = (tmp_path / "runs").iterdir()
    test = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert test["categorical_accuracy"] == pytest.approx(test["accuracy"])
    again = evaluate_run(open_run(run_dir))
    assert set(again) == set(test)
    for name, value in test.items():
        assert again[name] == pytest.approx(value, rel=1e-4, abs=1e-5), name


def validate(call_main, folder, text: str):
    path = folder / "refused.yaml"
    path.write_text(text)
    return call_main("validate", path)


def test_a_class_metric_on_a_named_regression_data_set_is_refused_by_validate(
        folder, call_main):
    code, out, err = validate(call_main, folder, textwrap.dedent("""\
        kerapipe: 1
        data: {source: {keras: boston_housing}}
        model: {layers: [{Dense: {units: 1}}]}
        loss: mse
        metrics: [mae, precision]
        """))
    assert code == 2, out + err
    assert "refused.yaml:5:16: error[metric-label-mismatch]: metrics[1]: precision measures " \
           "classes" in out + err


def test_an_iou_over_another_number_of_classes_is_refused_at_its_argument(folder, call_main):
    code, out, err = validate(call_main, folder, textwrap.dedent("""\
        kerapipe: 1
        data: {source: {sample: mnist}}
        model: {layers: [Flatten, {Dense: {units: 10}}]}
        metrics: [accuracy, {name: MeanIoU, num_classes: 4}]
        """))
    assert code == 2, out + err
    assert "error[metric-label-mismatch]: metrics[1].num_classes: MeanIoU counts 4 classes, " \
           "but this run's labels have 10. Set num_classes: 10." in out + err


def test_the_iou_class_count_is_checked_on_the_loaded_data_too(folder):
    os.chdir(folder)
    with pytest.raises(SpecError) as refused:
        compile_pipeline(pipeline("classes", ["accuracy", {"name": "MeanIoU",
                                                           "num_classes": 2}]))
    (issue,) = refused.value.issues
    assert (issue.code, issue.path) == ("metric-label-mismatch", ("metrics", 1, "num_classes"))


def test_a_metric_with_one_value_per_class_is_refused_at_compile_time(folder):
    os.chdir(folder)
    with pytest.raises(SpecError) as refused:
        compile_pipeline(pipeline("classes", [{"name": "f1_score", "average": None}]))
    (issue,) = refused.value.issues
    assert issue.path == ("metrics", 0) and "gives 3 values" in issue.message
    assert math.isfinite(issue.line or 0)
