"""Label kinds (``data.labels``): what each kind makes of the labels, what `validate`
refuses about a kind, what `plan`, predictions.csv and `predict` say, and that the two
examples (multi_label.yaml, regression.yaml) learn."""

from __future__ import annotations

import csv
import io
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kerapipe.spec.validate import validate_text

ROOT = Path(__file__).resolve().parent.parent


def spec_text(labels: str = "", loss: str = "binary_crossentropy", last: str =
              "{Dense: {units: 3, activation: sigmoid}}", extra: str = "",
              source: str = "{csv: {path: data.csv, label: tags}}") -> str:
    return textwrap.dedent(f"""\
        kerapipe: 1
        name: kinds
        seed: 1
        data:
          source: {source}
        {labels}
          split: {{validation: 0.2, test: 0.2}}
          batch_size: 8
        model:
          layers:
            - Dense: {{units: 8, activation: relu}}
            - {last}
        loss: {loss}
        optimizer: {{name: adam, learning_rate: 0.05}}
        train: {{epochs: 2}}
        """) + extra


def issues_of(text: str) -> list[tuple[str, tuple]]:
    return [(i.code, tuple(i.path)) for i in validate_text(text, "p.yaml").issues]


# --- validate ------------------------------------------------------------------------

CONFLICTS = [
    ("multi_label", "sparse_categorical_crossentropy", "{Dense: {units: 3}}", "",
     [("label-kind-conflict", ("loss",))]),
    ("multi_label", "binary_crossentropy", "{Dense: {units: 3, activation: softmax}}", "",
     [("label-kind-conflict", ("model", "layers", 1, "Dense", "activation"))]),
    ("regression", "sparse_categorical_crossentropy", "{Dense: {units: 1}}", "",
     [("label-kind-conflict", ("loss",))]),
    ("regression", "mse", "{Dense: {units: 1}}", "metrics: [sparse_categorical_accuracy]\n",
     [("metric-label-mismatch", ("metrics", 0))]),
    ("classes", "mse", "{Dense: {units: 3}}", "",
     [("label-kind-conflict", ("loss",))]),
    ("binary", "sparse_categorical_crossentropy", "{Dense: {units: 1, activation: sigmoid}}",
     "", [("label-kind-conflict", ("loss",))]),
    ("binary", "binary_crossentropy", "{Dense: {units: 2, activation: sigmoid}}", "",
     [("class-count-mismatch", ("model", "layers", 1, "Dense", "units"))]),
    ("classes", "binary_crossentropy", "{Dense: {units: 3, activation: sigmoid}}", "",
     [("label-kind-conflict", ("loss",))]),
    ("multi_label", "binary_crossentropy", "{Dense: {units: 3, activation: sigmoid}}",
     "metrics: [sparse_categorical_accuracy, categorical_accuracy, precision]\n",
     [("metric-label-mismatch", ("metrics", 0)), ("metric-label-mismatch", ("metrics", 1))]),
    ("raw", "binary_crossentropy", "{Dense: {units: 3}}", "metrics: [accuracy]\n",
     [("metric-label-mismatch", ("metrics", 0))]),
    ("multi_label", "binary_crossentropy", "{Dense: {units: 3, activation: sigmoid}}",
     "output: {top_k: 2}\n", [("not-applicable", ("output", "top_k"))]),
]


@pytest.mark.parametrize("kind, loss, last, extra, expected", CONFLICTS,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CONFLICTS)])
def test_a_declared_kind_is_checked_against_loss_activation_units_and_metrics(
        kind, loss, last, extra, expected):
    assert issues_of(spec_text(f"  labels: {kind}", loss, last, extra)) == expected


def test_each_conflict_is_one_message_with_its_fix_at_the_keys_line():
    text = spec_text("  labels: multi_label", "sparse_categorical_crossentropy",
                     "{Dense: {units: 3, activation: softmax}}")
    lines = [i.format() for i in validate_text(text, "p.yaml").issues]
    assert len(lines) == 2
    assert lines[0].startswith("p.yaml:12:38: error[label-kind-conflict]: "
                               "model.layers[1].Dense.activation: softmax makes")
    assert "Use activation: sigmoid" in lines[0]
    assert lines[1].startswith("p.yaml:13:7: error[label-kind-conflict]: loss:")
    assert "binary_crossentropy" in lines[1]


@pytest.mark.parametrize("labels, key", [
    ("{kind: classes, threshold: 0.3}", "threshold"),
    ("{kind: multi_label, scale: standardize}", "scale"),
    ("{kind: regression, separator: ';'}", "separator"),
])
def test_an_option_of_another_kind_is_not_applicable(labels, key):
    loss = "mse" if "regression" in labels else "binary_crossentropy"
    last = "{Dense: {units: 3}}" if "classes" in labels else "{Dense: {units: 3, activation: sigmoid}}"
    if "classes" in labels:
        loss = "sparse_categorical_crossentropy"
    assert issues_of(spec_text(f"  labels: {labels}", loss, last)) == [
        ("not-applicable", ("data", "labels", key))]


def test_files_without_labels_validate_as_before():
    for path in sorted((ROOT / "pipelines").glob("*.yaml")):
        assert validate_text(path.read_text(), str(path)).errors == [], path.name


def test_the_resolved_spec_of_a_kind_with_options_validates_again():
    from kerapipe.spec.typed import to_plain
    import yaml

    text = (ROOT / "pipelines" / "regression.yaml").read_text()
    spec = validate_text(text, "r.yaml").spec
    assert to_plain(spec.data.labels) == {"kind": "regression", "scale": "standardize"}
    again = validate_text(yaml.safe_dump(to_plain(spec)), "again.yaml")
    assert again.errors == [] and again.spec.data.labels == spec.data.labels


def test_inference_of_the_kind_is_todays_rule():
    from kerapipe.spec.label_kinds import infer_label_kind

    def kind(loss, units, regression=None):
        spec = validate_text(spec_text("", loss, f"{{Dense: {{units: {units}}}}}"), "p").spec
        choice = infer_label_kind(spec, units, regression)
        return choice.kind, choice.inferred

    assert kind("mse", 1) == ("regression", True)
    assert kind("sparse_categorical_crossentropy", 3) == ("classes", True)
    assert kind("binary_crossentropy", 1) == ("binary", True)
    assert kind("mse", 1, regression=False) == ("classes", True)  # CSV text labels


# --- the data --------------------------------------------------------------------------

def write_csv(folder: Path, rows: list[list], header: list[str]) -> None:
    with open(folder / "data.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def tag_rows(count: int = 60, seed: int = 0) -> list[list]:
    """Two features; tags a (x0 > 0), b (x1 > 0), c (both): a learnable multi-label set."""
    rng = np.random.default_rng(seed)
    rows = []
    for x0, x1 in rng.normal(size=(count, 2)):
        tags = [t for t, on in (("b", x1 > 0), ("a", x0 > 0), ("c", x0 > 0 and x1 > 0)) if on]
        rows.append([f"{x0:.3f}", f"{x1:.3f}", "|".join(tags) or "a"])
    return rows


def compile_text(folder: Path, text: str):
    from kerapipe import compile_pipeline

    (folder / "p.yaml").write_text(text)
    return compile_pipeline(str(folder / "p.yaml"))


def test_multi_label_from_a_csv_column_with_a_separator(tmp_path):
    write_csv(tmp_path, tag_rows(), ["x0", "x1", "tags"])
    compiled = compile_text(tmp_path, spec_text("  labels: multi_label"))
    data = compiled.data
    assert data.class_names == ["a", "b", "c"] and data.num_classes == 3
    assert data.train.y.dtype == np.float32 and data.train.y.shape[1:] == (3,)
    assert set(np.unique(data.train.y)) <= {0.0, 1.0}
    assert data.labels.kind == "multi_label" and not data.labels.stratified


def test_multi_label_from_a_0_1_npz_array_and_from_a_string_array(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 2)).astype("float32")
    hot = np.stack([x[:, 0] > 0, x[:, 1] > 0, x.sum(1) > 0], axis=1).astype("int8")
    np.savez(tmp_path / "hot.npz", x=x, y=hot)
    texts = np.array([";".join(n for n, on in zip("pqr", row) if on) or "p" for row in hot])
    np.savez(tmp_path / "text.npz", x=x, y=texts)
    compiled = compile_text(tmp_path, spec_text("  labels: multi_label",
                                                source="{npz: hot.npz}"))
    assert compiled.data.class_names == ["0", "1", "2"]
    assert compiled.data.train.y.dtype == np.float32
    compiled = compile_text(tmp_path, spec_text("  labels: {kind: multi_label, separator: ';'}",
                                                source="{npz: text.npz}"))
    assert compiled.data.class_names == ["p", "q", "r"]


def test_the_output_size_is_checked_against_the_labels_found(tmp_path):
    from kerapipe.errors import SpecError

    write_csv(tmp_path, tag_rows(), ["x0", "x1", "tags"])
    with pytest.raises(SpecError) as err:
        compile_text(tmp_path, spec_text("  labels: multi_label",
                                         last="{Dense: {units: 4, activation: sigmoid}}"))
    assert [(i.code, tuple(i.path)) for i in err.value.issues] == [
        ("class-count-mismatch", ("model", "layers", 1, "Dense", "units"))]
    assert "3 different labels (a, b, c), but the output layer has 4 units. Set units: 3" \
        in str(err.value)
    assert "p.yaml:12:" in str(err.value)


def test_a_separator_other_than_the_files_is_named_when_the_units_do_not_fit(tmp_path):
    from kerapipe.errors import SpecError

    rows = [[r[0], r[1], r[2].replace("|", ";")] for r in tag_rows()]
    write_csv(tmp_path, rows, ["x0", "x1", "tags"])
    with pytest.raises(SpecError, match="if 'b;a;c' holds several labels, set "
                                        "data.labels.separator"):
        compile_text(tmp_path, spec_text("  labels: multi_label",
                                         last="{Dense: {units: 4, activation: sigmoid}}"))


def test_minus_one_and_one_labels_hint_at_binary_and_binary_maps_them(tmp_path):
    from kerapipe.errors import DataError

    rng = np.random.default_rng(2)
    rows = [[f"{v:.3f}", 1 if v > 0 else -1] for v in rng.normal(size=40)]
    write_csv(tmp_path, rows, ["x", "target"])
    source = "{csv: {path: data.csv, label: target}}"
    one_unit = "{Dense: {units: 1, activation: sigmoid}}"
    with pytest.raises(DataError, match="add `labels: binary` to data"):
        compile_text(tmp_path, spec_text("", last=one_unit, source=source))
    compiled = compile_text(tmp_path, spec_text("  labels: binary", last=one_unit,
                                                source=source))
    assert compiled.data.class_names == ["-1", "1"]
    assert set(np.unique(compiled.data.train.y)) == {0, 1}
    assert compiled.data.labels.stratified


def test_binary_refuses_a_third_value(tmp_path):
    from kerapipe.errors import DataError

    write_csv(tmp_path, [[i, i % 3] for i in range(30)], ["x", "target"])
    with pytest.raises(DataError, match="takes two values, but 'target' holds 3"):
        compile_text(tmp_path, spec_text("  labels: binary",
                                         last="{Dense: {units: 1, activation: sigmoid}}",
                                         source="{csv: {path: data.csv, label: target}}"))


def test_plan_says_the_kind_whether_it_was_inferred_and_what_the_split_does(tmp_path):
    from kerapipe.report import format_plan

    write_csv(tmp_path, tag_rows(), ["x0", "x1", "tags"])
    plan = format_plan(compile_text(tmp_path, spec_text("  labels: multi_label")))
    assert ("labels: multi_label (declared in data.labels); 3 labels, multi-hot; predicted "
            "above 0.5; splits shuffled, not stratified") in plan
    plan = format_plan(compile_text(tmp_path, spec_text("", "sparse_categorical_crossentropy",
                                                        "{Dense: {units: 3}}")))
    assert ("labels: classes (inferred from the data's class names); 3 classes; splits "
            "stratified by class") in plan


# --- runs, predictions and predict -----------------------------------------------------

@pytest.fixture(scope="module")
def multi_label_run(tmp_path_factory):
    from kerapipe import compile_pipeline

    folder = tmp_path_factory.mktemp("multi")
    write_csv(folder, tag_rows(80), ["x0", "x1", "tags"])
    (folder / "p.yaml").write_text(spec_text("  labels: {kind: multi_label, threshold: 0.4}",
                                             last="{Dense: {units: 3}}",
                                             extra="metrics: [accuracy]\n"))
    result = compile_pipeline(str(folder / "p.yaml")).run(str(folder / "runs"), verbose=0)
    return folder, result


def test_multi_label_predictions_csv_lists_the_labels_above_the_threshold(multi_label_run):
    folder, result = multi_label_run
    rows = list(csv.DictReader(io.StringIO(
        (result.run_dir / "predictions.csv").read_text())))
    assert list(rows[0]) == ["index", "input", "predicted", "scores", "true"]
    for row in rows:
        names = row["predicted"].split("|") if row["predicted"] else []
        scores = [float(s) for s in row["scores"].split("|")] if row["scores"] else []
        assert set(names) <= {"a", "b", "c"} and len(names) == len(scores)
        assert all(s > 0.4 for s in scores)
    assert result.accuracy is None  # no one class per example to count


def test_multi_label_predict_gives_the_runs_sets_and_the_saved_model_ends_in_sigmoid(
        multi_label_run, call_main, in_plain_keras):
    folder, result = multi_label_run
    code, out, _ = call_main("predict", str(result.run_dir), str(folder / "data.csv"))
    assert code == 0
    by_line = {row["input"]: row["predicted"] for row in csv.DictReader(io.StringIO(out))}
    for row in csv.DictReader(io.StringIO(
        (result.run_dir / "predictions.csv").read_text())):
        assert by_line[row["input"]] == row["predicted"]
    # logits in training; the saved model outputs independent probabilities
    line = in_plain_keras(result.run_dir / "model.keras",
                          "p = model.predict(np.zeros((2, 2), 'float32'), verbose=0)\n"
                          "print(round(float(p.sum(axis=1)[0]), 3) != 1.0, p.min() >= 0)")
    assert line == "True True"


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    from kerapipe import compile_pipeline

    folder = tmp_path_factory.mktemp("regression")
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, 120)
    write_csv(folder, [[f"{v:.4f}", f"{100_000 + 50_000 * v:.1f}"] for v in x], ["x", "price"])
    (folder / "p.yaml").write_text(spec_text(
        "  labels: {kind: regression, scale: standardize}", "mse", "{Dense: {units: 1}}",
        "metrics: [mae]\n", source="{csv: {path: data.csv, label: price}}"))
    compiled = compile_pipeline(str(folder / "p.yaml"))
    return folder, compiled, compiled.run(str(folder / "runs"), verbose=0)


def test_a_standardized_target_is_predicted_in_its_original_units(regression_run,
                                                                  in_plain_keras):
    folder, compiled, result = regression_run
    mean, std = compiled.data.labels.scale
    assert abs(mean - compiled.data.train.y.mean()) < 1e-3 * mean
    assert abs(std - compiled.data.train.y.std()) < 1e-3 * std
    assert compiled.model.layers[-1].name == "target_unscale"
    rows = list(csv.DictReader(io.StringIO(
        (result.run_dir / "predictions.csv").read_text())))
    assert all(50_000 < float(row["predicted"]) < 200_000 for row in rows)
    assert all(abs(float(row["true"]) - 125_000) < 30_000 for row in rows)  # not scaled
    line = in_plain_keras(result.run_dir / "model.keras",
                          "print([l.__class__.__name__ for l in model.layers[-1].layers][-1])")
    assert line == "Rescaling"


def test_without_scale_the_model_has_no_rescaling(regression_run, tmp_path):
    folder, _, _ = regression_run
    text = (folder / "p.yaml").read_text().replace(", scale: standardize", "")
    (tmp_path / "data.csv").write_bytes((folder / "data.csv").read_bytes())
    compiled = compile_text(tmp_path, text)
    assert compiled.data.labels.scale is None
    assert all(layer.name != "target_unscale" for layer in compiled.model.layers)


@pytest.fixture(scope="module")
def masks_run(tmp_path_factory):
    from kerapipe import compile_pipeline

    folder = tmp_path_factory.mktemp("masks")
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (24, 6, 6, 1)).astype("float32")
    masks = (x[..., 0] > 0.5).astype("int32")  # one class per pixel
    np.savez(folder / "masks.npz", x=x, y=masks)
    (folder / "p.yaml").write_text(textwrap.dedent("""\
        kerapipe: 1
        name: masks
        seed: 1
        data:
          source: {npz: masks.npz}
          labels: raw
          split: {validation: 0.2, test: 0.25}
          batch_size: 4
        model:
          layers:
            - Conv2D: {filters: 2, kernel_size: 1}
        loss: sparse_categorical_crossentropy
        metrics: [sparse_categorical_accuracy]
        train: {epochs: 1}
        """))
    compiled = compile_pipeline(str(folder / "p.yaml"))
    return folder, compiled, compiled.run(str(folder / "runs"), verbose=0)


def test_raw_labels_reach_the_loss_as_stored_and_predictions_go_to_an_npz(masks_run):
    folder, compiled, result = masks_run
    assert compiled.data.train.y.shape[1:] == (6, 6) and compiled.data.train.y.dtype == np.int32
    assert compiled.data.num_classes is None and not compiled.data.labels.stratified
    assert not (result.run_dir / "predictions.csv").exists()
    with np.load(result.run_dir / "predictions.npz") as saved:
        assert saved["outputs"].shape == (len(compiled.data.test), 6, 6, 2)
        assert list(saved["ids"]) == [str(i) for i in compiled.data.test.ids]
        # the loss took logits: the saved model gives probabilities, as for classes
        assert np.allclose(saved["outputs"].sum(axis=-1), 1, atol=1e-5)
    assert compiled.predict().shape == (len(compiled.data.test), 6, 6, 2)


SOFT_LOSS = textwrap.dedent("""\
    import keras


    def soft_mse(y_true, y_pred):
        return keras.ops.mean(keras.ops.square(y_true - keras.ops.softmax(y_pred)), axis=-1)
    """)


def test_raw_soft_targets_reach_an_imported_loss_as_stored(tmp_path):
    from kerapipe import compile_pipeline

    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 3)).astype("float32")
    soft = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)  # a distribution per example
    np.savez(tmp_path / "soft.npz", x=x, y=soft.astype("float64"))
    (tmp_path / "losses.py").write_text(SOFT_LOSS)
    (tmp_path / "p.yaml").write_text("imports: [losses.py]\n" + spec_text(
        "  labels: raw", "losses.soft_mse", "{Dense: {units: 3}}", "metrics: [mae]\n",
        source="{npz: soft.npz}"))
    compiled = compile_pipeline(tmp_path / "p.yaml", allow_imports=True)
    assert compiled.data.train.y.dtype == np.float64  # as stored: Keras casts in the loss
    history = compiled.fit(verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert compiled.predict().shape == (len(compiled.data.test), 3)


def test_data_labels_does_not_apply_to_a_model_of_several_outputs():
    text = textwrap.dedent("""\
        kerapipe: 1
        data:
          source: {npz: d.npz}
          labels: classes
        model:
          layers:
            - Dense: {units: 3, name: digit}
            - Dense: {units: 1, name: size}
              inputs: digit
          outputs: [digit, {name: size, label: y_size, loss: mse}]
        """)
    assert issues_of(text) == [("not-applicable", ("data", "labels"))]


def test_regression_refuses_text_labels_at_their_line(tmp_path):
    from kerapipe.errors import DataError

    write_csv(tmp_path, [[1, "12.5"], [2, "cheap"], [3, "14"], [4, "9"], [5, "1"]] * 4,
              ["x", "price"])
    with pytest.raises(DataError, match=r"line 3, column 'price' is 'cheap'"):
        compile_text(tmp_path, spec_text("  labels: regression", "mse", "{Dense: {units: 1}}",
                                         source="{csv: {path: data.csv, label: price}}"))


def test_predict_on_a_raw_label_run_says_where_its_arrays_are(masks_run, call_main):
    folder, _, result = masks_run
    code, _, err = call_main("predict", str(result.run_dir), str(folder / "masks.npz"))
    assert code == 2 and "predictions.npz" in err


# --- the examples learn ----------------------------------------------------------------

def test_the_regression_example_beats_predicting_the_mean():
    from kerapipe import compile_pipeline

    compiled = compile_pipeline(ROOT / "pipelines" / "regression.yaml",
                                overrides=["train.epochs=25"])
    compiled.fit(verbose=0)
    test_mae = compiled.evaluate()["mae"]
    baseline = float(np.mean(np.abs(compiled.data.test.y - compiled.data.train.y.mean())))
    assert test_mae < 0.3 * baseline


def test_the_multi_label_example_beats_the_majority_of_each_label():
    from kerapipe import compile_pipeline

    compiled = compile_pipeline(ROOT / "pipelines" / "multi_label.yaml",
                                overrides=["train.epochs=15"])
    compiled.fit(verbose=0)
    accuracy = compiled.evaluate()["accuracy"]
    y = compiled.data.test.y
    majority = float(np.mean(np.maximum(y.mean(axis=0), 1 - y.mean(axis=0))))
    assert accuracy > majority + 0.15
    assert compiled.predict().shape == y.shape


def test_more_output_units_than_the_classes_is_refused_at_units(tmp_path, call_main):
    """A unit for no class is a mistake (the issue's "19 genres found, the output has 20
    units"), for named classes and class indices alike (tests/test_small_gaps.py: one
    rule for every source)."""
    rows = ["a,b,label"] + [f"{i % 7},{i % 3},{['x', 'y', 'z'][i % 3]}" for i in range(30)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n", "utf-8")
    text = ("kerapipe: 1\ndata:\n  source: {csv: {path: t.csv, label: label}}\nmodel:\n"
            "  layers:\n    - Dense: {units: 4}\ntrain: {epochs: 1}\n")
    (tmp_path / "p.yaml").write_text(text, "utf-8")
    code, out, err = call_main("run", str(tmp_path / "p.yaml"), "--output",
                               str(tmp_path / "runs"))
    assert code == 2
    assert ("p.yaml:6:22: error[class-count-mismatch]: model.layers[0].Dense.units: the "
            "output layer has 4 units but the labels (x, y, z) hold 3 classes, so 1 of its "
            "units would stand for no class. Set units: 3.") in err
    numbered = "\n".join(["a,b,label"] + [f"{i % 7},{i % 3},{i % 3}" for i in range(30)])
    (tmp_path / "t.csv").write_text(numbered + "\n", "utf-8")
    code, out, err = call_main("run", str(tmp_path / "p.yaml"), "--output",
                               str(tmp_path / "runs"))
    assert code == 2 and "the labels (0..2) hold 3 classes" in err, err
