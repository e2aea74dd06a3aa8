"""Class weights (``train.class_weight``) and sample weights (a CSV column, an npz array):
what `validate` refuses and where, how `balanced` is computed (scikit-learn's rule), how
keys name classes, that the weights reach the training loss (and only it), run.json,
`plan`, and bad weight cells."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kerapipe.errors import DataError
from kerapipe.spec.validate import validate_text


def pipeline(source: str = "{csv: {path: data.csv, label: label}}", train: str = "",
             labels: str = "", loss: str = "sparse_categorical_crossentropy",
             last: str = "{Dense: {units: 2}}", epochs: int = 2, extra: str = "") -> str:
    return textwrap.dedent(f"""\
        kerapipe: 1
        name: weights
        seed: 3
        data:
          source: {source}
          split: {{validation: 0.2, test: 0.2}}
          batch_size: 8
        {labels}
        model:
          layers:
            - {last}
        loss: {loss}
        optimizer: {{name: adam, learning_rate: 0.05}}
        train:
          epochs: {epochs}
        {train}
        output: {{dir: runs}}
        """) + extra


def issues_of(text: str) -> list[tuple[str, tuple]]:
    return [(i.code, tuple(i.path)) for i in validate_text(text, "p.yaml").issues]


# --- validate ------------------------------------------------------------------------

def test_balanced_and_a_mapping_by_name_or_index_validate():
    for value in ("balanced", "{a: 1.0, b: 4}", "{0: 1, 1: 2.5}", "{'-1': 0, 1: 3}"):
        result = validate_text(pipeline(train=f"  class_weight: {value}"), "p.yaml")
        assert result.errors == [], value
    spec = validate_text(pipeline(train="  class_weight: {a: 1, 1: 2.5}"), "p.yaml").spec
    assert spec.train.class_weight.weights == {"a": 1.0, "1": 2.5}  # YAML keys are strings


REFUSED = [
    ("bananas", [("unknown-value", ("train", "class_weight"))]),
    ("[1, 2]", [("wrong-type", ("train", "class_weight"))]),
    ("{}", [("out-of-range", ("train", "class_weight"))]),
    ("{a: 0, b: 0}", [("out-of-range", ("train", "class_weight"))]),
    ("{a: -1}", [("out-of-range", ("train", "class_weight", "a"))]),
    ("{a: .inf}", [("out-of-range", ("train", "class_weight", "a"))]),
    ("{a: yes}", [("wrong-type", ("train", "class_weight", "a"))]),
    ("{a: 1, b: [2]}", [("wrong-type", ("train", "class_weight", "b"))]),
    ("{'': 1}", [("wrong-type", ("train", "class_weight", ""))]),
]


@pytest.mark.parametrize("value, expected", REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_class_weight_values_are_refused_at_their_key(value, expected):
    assert issues_of(pipeline(train=f"  class_weight: {value}")) == expected


NOT_CLASSES = [
    ("regression labels", dict(labels="  labels: regression", loss="mse",
                               last="{Dense: {units: 1}}")),
    ("raw labels", dict(labels="  labels: raw", loss="mse", last="{Dense: {units: 1}}")),
    ("multi_label", dict(labels="  labels: multi_label", loss="binary_crossentropy",
                         last="{Dense: {units: 2, activation: sigmoid}}")),
    ("a regression loss", dict(loss="mean_absolute_error", last="{Dense: {units: 1}}")),
    ("a continuous data set", dict(source="{keras: boston_housing}", loss="mse",
                                   last="{Dense: {units: 1}}")),
]


@pytest.mark.parametrize("case", [c[1] for c in NOT_CLASSES], ids=[c[0] for c in NOT_CLASSES])
def test_class_weights_are_refused_for_labels_without_one_class(case):
    found = issues_of(pipeline(train="  class_weight: balanced", **case))
    assert ("class-weight-labels", ("train", "class_weight")) in found


def test_class_weights_are_refused_for_a_model_of_several_outputs():
    text = textwrap.dedent("""\
        kerapipe: 1
        data:
          source: {npz: data.npz}
        model:
          layers:
            - Dense: {units: 3, name: digit}
            - Dense: {units: 2, name: size}
              inputs: digit
          outputs: [digit, {name: size, label: y_size}]
        train: {epochs: 1, class_weight: balanced}
        """)
    assert ("class-weight-labels", ("train", "class_weight")) in issues_of(text)


SAMPLE_WEIGHT_REFUSED = [
    ("the label", "{csv: {path: data.csv, label: label, sample_weight: label}}",
     ("data", "source", "csv", "sample_weight")),
    ("a feature", "{csv: {path: data.csv, label: label, features: [f1, w], "
     "sample_weight: w}}", ("data", "source", "csv", "sample_weight")),
    ("the id column", "{csv: {path: data.csv, label: label, id_column: w, sample_weight: w}}",
     ("data", "source", "csv", "sample_weight")),
    ("the npz labels", "{npz: {path: data.npz, sample_weight: y}}",
     ("data", "source", "npz", "sample_weight")),
]


@pytest.mark.parametrize("source, path", [(c[1], c[2]) for c in SAMPLE_WEIGHT_REFUSED],
                         ids=[c[0] for c in SAMPLE_WEIGHT_REFUSED])
def test_a_sample_weight_that_is_also_a_feature_or_label_is_refused(source, path):
    assert ("not-applicable", path) in issues_of(pipeline(source=source))


def test_the_schema_and_the_key_table_show_the_new_keys():
    from kerapipe.spec.schema import iter_keys, pipeline_json_schema

    keys = {path for path, *_ in iter_keys()}
    assert {"train.class_weight", "data.source.csv.sample_weight",
            "data.source.npz.sample_weight"} <= keys
    schema = pipeline_json_schema()
    assert "class_weight" in schema["$defs"]["TrainSpec"]["properties"]


# --- the compile side: resolving the weights (no training) ---------------------------

def test_balanced_weights_equal_scikit_learns_on_the_same_labels():
    from sklearn.utils.class_weight import compute_class_weight

    from kerapipe.compiler.weights import balanced_weights

    rng = np.random.default_rng(0)
    for counts in ([5, 100], [3, 40, 17, 1], [10, 10, 10]):
        y = rng.permutation(np.repeat(np.arange(len(counts)), counts))
        expected = compute_class_weight("balanced", classes=np.unique(y), y=y)
        np.testing.assert_allclose(balanced_weights(y, len(counts)), expected, rtol=1e-12)
    # a class with no training example: the others as scikit-learn over those present,
    # and 1.0 for the absent one (it weighs no example)
    y = np.array([0, 0, 0, 2])
    expected = compute_class_weight("balanced", classes=np.array([0, 2]), y=y)
    np.testing.assert_allclose(balanced_weights(y, 3), [expected[0], 1.0, expected[1]])


def test_keys_name_classes_by_name_first_then_by_index():
    from kerapipe.compiler.weights import resolve_class_weights
    from kerapipe.spec.weights import ClassWeightSpec

    y = np.array([0, 1, 2, 1])
    weights = resolve_class_weights(ClassWeightSpec("given", {"cat": 2.0, "2": 5.0}), y,
                                    ["cat", "dog", "eel"], 3, "d.csv")
    assert weights.by_name() == {"cat": 2.0, "dog": 1.0, "eel": 5.0}
    # a name that is a number: the class of that name, not the index
    weights = resolve_class_weights(ClassWeightSpec("given", {"1": 3.0, "0": 0.5}), y[:2] % 2,
                                    ["-1", "1"], 2, "d.csv")
    assert weights.by_name() == {"-1": 0.5, "1": 3.0}


UNKNOWN_KEYS = [
    ({"dgo": 2.0}, "names the class 'dgo', which the labels do not have. Did you mean "
                   "'dog'? The classes"),
    ({"7": 2.0}, "names class index 7, but the labels have 3 classes (0..2). The classes"),
    ({"zebra": 2.0}, "names the class 'zebra', which the labels do not have. The classes"),
    ({"dog": 2.0, "1": 3.0}, "names class 'dog' twice"),
]


@pytest.mark.parametrize("mapping, message", UNKNOWN_KEYS,
                         ids=["name", "index", "far-name", "twice"])
def test_a_key_that_names_no_class_is_a_data_error_listing_the_classes(mapping, message):
    from kerapipe.compiler.weights import resolve_class_weights
    from kerapipe.spec.weights import ClassWeightSpec

    with pytest.raises(DataError) as err:
        resolve_class_weights(ClassWeightSpec("given", mapping), np.array([0, 1, 2]),
                              ["cat", "dog", "eel"], 3, "d.csv")
    assert message in str(err.value)
    if "twice" not in message:
        assert "The classes: cat, dog, eel." in str(err.value)


# --- training ---------------------------------------------------------------------------

def _two_class_csv(folder: Path, n: int = 48, weights=None, flip_zero_weight: bool = False
                   ) -> None:
    """Two separable classes on f1's sign; with ``flip_zero_weight``, a third of the rows
    get weight 0 and the wrong label."""
    rng = np.random.default_rng(1)
    f1, f2 = rng.normal(size=n), rng.normal(size=n)
    label = np.where(f1 > 0, "b", "a")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if flip_zero_weight:
        zero = np.arange(n) % 3 == 0
        w[zero] = 0.0
        label[zero] = np.where(label[zero] == "a", "b", "a")
    lines = ["f1,f2,w,label"] + [f"{a:.4f},{b:.4f},{c:g},{d}" for a, b, c, d in
                                 zip(f1, f2, w, label)]
    (folder / "data.csv").write_text("\n".join(lines) + "\n")


def test_a_large_weight_on_one_class_moves_predictions_to_it(tmp_path, monkeypatch):
    from kerapipe import compile_pipeline
    from kerapipe.compiler.datasets import use_cache

    monkeypatch.chdir(tmp_path)
    _two_class_csv(tmp_path)
    # weights of 1 from the column, uncached: the sample weights zipped before the shuffle
    text = pipeline(source="{csv: {path: data.csv, label: label, sample_weight: w}}",
                    train="  class_weight: {b: 1000, a: 0.001}", epochs=3)
    (tmp_path / "p.yaml").write_text(text.replace("  batch_size: 8\n",
                                                  "  batch_size: 8\n  cache: false\n"))
    compiled = compile_pipeline("p.yaml")
    assert not use_cache(compiled.spec, compiled.data.train, compiled.preprocessing)
    compiled.fit(verbose=0)
    x = np.random.default_rng(2).normal(size=(64, 2)).astype("float32")
    predicted = compiled.predict(x)
    # half of these are `a` by f1's sign; the weight pulls most of them to `b`
    assert (predicted == 1).mean() > 0.75


@pytest.fixture(scope="module")
def weighted_run(tmp_path_factory):
    """One run of a CSV whose weight-0 rows are mislabeled, with balanced class weights,
    interrupted after 10 of its 12 epochs and resumed: the compiled pipeline (as
    interrupted), the resumed run's result, plan, and run.json's data before the resume."""
    from kerapipe.compiler import backend  # noqa: F401
    import keras

    from kerapipe import compile_pipeline
    from kerapipe.report import format_plan
    from kerapipe.runner import resume_run

    class InterruptAtEpoch11(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 10:
                raise KeyboardInterrupt

    folder = tmp_path_factory.mktemp("weighted")
    _two_class_csv(folder, n=96, flip_zero_weight=True)
    text = pipeline(source="{csv: {path: data.csv, label: label, sample_weight: w}}",
                    train="  class_weight: balanced", epochs=12,
                    last="{Dense: {units: 2}}")
    (folder / "p.yaml").write_text(text.replace("dir: runs", f"dir: {folder / 'runs'}"))
    compiled = compile_pipeline(str(folder / "p.yaml"))
    plan = format_plan(compiled)
    with pytest.raises(KeyboardInterrupt):
        compiled.run(verbose=0, callbacks=[InterruptAtEpoch11()])
    [run_dir] = (folder / "runs").iterdir()
    before = json.loads((run_dir / "run.json").read_text())["data"]
    result = resume_run(run_dir, verbose=0)
    return compiled, result, plan, before


def test_weight_zero_rows_do_not_count_so_the_rest_is_learned(weighted_run):
    compiled, _, _, _ = weighted_run
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 2)).astype("float32")
    accuracy = (compiled.predict(x) == (x[:, 0] > 0)).mean()
    assert accuracy > 0.9  # a third of the rows say the opposite, at weight 0


def test_the_weight_column_is_no_feature_and_only_training_is_weighted(weighted_run):
    compiled, _, _, _ = weighted_run
    assert compiled.data.feature_names == ["f1", "f2"]
    train = next(iter(compiled.datasets.train))
    assert len(train) == 3 and train[2].dtype.name == "float32"
    assert len(next(iter(compiled.datasets.validation))) == 2
    assert len(next(iter(compiled.datasets.test))) == 2
    compiled.reshuffle(1)  # --resume rebuilds the training dataset: still weighted
    assert len(next(iter(compiled.datasets.train))) == 3


def test_run_json_and_plan_record_the_resolved_weights_which_survive_a_resume(weighted_run):
    from sklearn.utils.class_weight import compute_class_weight

    compiled, result, plan, before = weighted_run
    record = json.loads((Path(result.run_dir) / "run.json").read_text())["data"]
    assert result.epochs_run == 12
    assert record["class_weight"] == before["class_weight"]
    assert "class_weight: balanced" in (Path(result.run_dir) / "spec.yaml").read_text()
    y = compiled.data.train.y
    expected = compute_class_weight("balanced", classes=np.unique(y), y=y)
    assert record["class_weight"]["rule"] == "balanced"
    np.testing.assert_allclose(record["class_weight"]["by_index"], expected)
    assert list(record["class_weight"]["by_class"]) == ["a", "b"]
    assert record["sample_weight"] == "w"
    assert "class weights (balanced over the training split; training loss only): a " in plan
    assert "sample weights: 'w' (training loss only; times the class weights)" in plan


BAD_CELLS = [("-1", "line 3, column 'w' is -1.0"), ("nan", "line 3, column 'w'"),
             ("x", "line 3, column 'w': 'x', which is not a number"), ("", "line 3")]


@pytest.mark.parametrize("cell, message", BAD_CELLS, ids=["negative", "nan", "text", "empty"])
def test_a_bad_weight_cell_is_a_data_error_naming_line_and_column(tmp_path, cell, message):
    from kerapipe.compiler.sources.csv_file import read_sample_weights
    from kerapipe.compiler.sources.raw import RawData
    from kerapipe.spec.model import CsvSource

    (tmp_path / "d.csv").write_text(f"f1,w,label\n1,1,a\n2,{cell},b\n3,1,a\n")
    raw = RawData(np.arange(3), np.zeros(3), lines=np.array([2, 3, 4]))
    with pytest.raises(DataError) as err:
        read_sample_weights(CsvSource("d.csv", "label", sample_weight="w"), str(tmp_path), raw)
    assert message in str(err.value)


def test_npz_sample_weights_need_one_finite_weight_per_training_example(tmp_path):
    from kerapipe.compiler.sources.loading import load_data
    from kerapipe.spec.validate import load_spec

    x, y = np.zeros((10, 2), "float32"), np.arange(10) % 2
    np.savez(tmp_path / "data.npz", x=x, y=y, w=np.ones(9), bad=np.r_[np.ones(9), np.inf])
    for name, message in (("w", "hold 9 value(s)"), ("bad", "'bad[9]' is inf")):
        spec = load_spec(pipeline(source=f"{{npz: {{path: data.npz, sample_weight: {name}}}}}"))
        with pytest.raises(DataError) as err:
            load_data(spec, tmp_path)
        assert message in str(err.value)
    np.savez(tmp_path / "data.npz", x=x, y=y, w=np.arange(10.0))
    spec = load_spec(pipeline(source="{npz: {path: data.npz, sample_weight: w}}"))
    data = load_data(spec, tmp_path)
    np.testing.assert_array_equal(data.train.weights, data.train.ids.astype("float32"))


def test_a_missing_weight_column_is_a_data_error_with_the_closest_name(tmp_path):
    from kerapipe.compiler.sources.csv_file import read_sample_weights
    from kerapipe.compiler.sources.raw import RawData
    from kerapipe.spec.model import CsvSource

    (tmp_path / "d.csv").write_text("f1,weight,label\n1,1,a\n")
    raw = RawData(np.arange(1), np.zeros(1), lines=np.array([2]))
    with pytest.raises(DataError, match="no sample weight column 'weigth'. Did you mean "
                                        "'weight'?"):
        read_sample_weights(CsvSource("d.csv", "label", sample_weight="weigth"),
                            str(tmp_path), raw)
