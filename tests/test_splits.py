"""data.split: ordered splits, a column naming each row's split, and split files.

Mostly without training: load_data on tiny generated CSV and npz files, and validate_text
for the spec-side refusals; one tiny run checks that a split file reaches tf.data, the
run's record and predict.
"""

import json

import numpy as np
import pytest

from kerapipe import compile_pipeline, load_spec, validate_text
from kerapipe.compiler.sources.loading import load_data
from kerapipe.errors import DataError
from kerapipe.spec.model import SplitSpec

LAYERS = [{"Dense": {"units": 2}}]


def write_csv(path, rows, header="id,a,b,y"):
    path.write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path.name


def table(n, start=0, classes=("cat", "dog"), fold=None):
    """Rows ``id, a, b, [fold,] y``: id counts from ``start``; classes alternate."""
    rows = []
    for i in range(start, start + n):
        cells = [i, i * 0.5, i % 3]
        if fold is not None:
            cells.append(fold(i))
        rows.append(cells + [classes[i % len(classes)]])
    return rows


def csv_spec(path, split, features=("a", "b"), **csv):
    source = {"path": path, "label": "y", "id_column": "id", **csv}
    if features is not None:
        source["features"] = list(features)
    return load_spec({"kerapipe": 1, "data": {"source": {"csv": source}, "split": split},
                      "model": {"layers": LAYERS}})


def ids(split):
    return [int(i) for i in split.ids]


# --- ordered ---------------------------------------------------------------------------

def test_ordered_splits_keep_order(tmp_path):
    name = write_csv(tmp_path / "d.csv", table(40))
    data = load_data(csv_spec(name, {"order": "ordered", "validation": 0.2, "test": 0.1}),
                     tmp_path)
    assert ids(data.train) == list(range(28))
    assert ids(data.validation) == list(range(28, 36))
    assert ids(data.test) == list(range(36, 40))


def test_ordered_npz_splits_keep_array_order(tmp_path):
    x = np.arange(20, dtype=np.float32).reshape(20, 1)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(20) % 2)
    spec = load_spec({"kerapipe": 1, "data": {"source": {"npz": "d.npz"},
                                              "split": {"order": "ordered"}},
                      "model": {"layers": LAYERS}})
    data = load_data(spec, tmp_path)
    assert data.train.x[:, 0].tolist() == list(range(16))
    assert data.validation.x[:, 0].tolist() == [16, 17]
    assert data.test.x[:, 0].tolist() == [18, 19]


def test_default_split_means_what_it_meant():
    assert SplitSpec() == SplitSpec(0.1, 0.1, True, "shuffled", None)
    split = load_spec({"kerapipe": 1, "data": {"source": {"sample": "mnist"}, "split": {
        "validation": 0.2, "test": 0.1, "stratify": False}},
        "model": {"layers": [{"Dense": {"units": 10}}]}}).data.split
    assert (split.validation_fraction, split.test_fraction, split.files) == (0.2, 0.1, {})


# --- column ------------------------------------------------------------------------------

def fold_of(i):
    return "test" if i % 5 == 0 else "validation" if i % 5 == 1 else "train"


def test_column_splits_put_each_row_where_its_cell_says(tmp_path):
    name = write_csv(tmp_path / "d.csv", table(20, fold=fold_of), "id,a,b,fold,y")
    data = load_data(csv_spec(name, {"column": "fold"}, features=None), tmp_path)
    assert ids(data.test) == [i for i in range(20) if fold_of(i) == "test"]
    assert ids(data.validation) == [i for i in range(20) if fold_of(i) == "validation"]
    assert ids(data.train) == [i for i in range(20) if fold_of(i) == "train"]
    assert data.feature_names == ["a", "b"]  # the split column is no feature


def test_npz_column_names_each_examples_split(tmp_path):
    folds = np.array([fold_of(i) for i in range(15)])
    np.savez(tmp_path / "d.npz", x=np.arange(15.0).reshape(15, 1), y=np.arange(15) % 2,
             fold=folds)
    spec = load_spec({"kerapipe": 1, "data": {"source": {"npz": "d.npz"},
                                              "split": {"column": "fold"}},
                      "model": {"layers": LAYERS}})
    data = load_data(spec, tmp_path)
    assert data.test.x[:, 0].tolist() == [0, 5, 10]
    assert data.validation.x[:, 0].tolist() == [1, 6, 11]
    assert len(data.train) == 9


@pytest.mark.parametrize("cell, where", [("Train", "line 3, column 'fold'"),
                                         ("", "line 3, column 'fold'")], ids=["case", "empty"])
def test_a_split_cell_that_is_no_split_name_is_a_data_error(tmp_path, cell, where):
    rows = table(6, fold=lambda i: "train")
    rows[1][3] = cell
    name = write_csv(tmp_path / "d.csv", rows, "id,a,b,fold,y")
    with pytest.raises(DataError) as err:
        load_data(csv_spec(name, {"column": "fold"}, features=None), tmp_path)
    assert where in str(err.value) and "train, validation, test" in str(err.value)


def test_a_column_without_train_rows_is_a_data_error(tmp_path):
    name = write_csv(tmp_path / "d.csv", table(4, fold=lambda i: "test"), "id,a,b,fold,y")
    with pytest.raises(DataError, match="no example says train"):
        load_data(csv_spec(name, {"column": "fold"}, features=None), tmp_path)


# --- split files -------------------------------------------------------------------------

def test_csv_split_files_map_labels_to_the_training_classes(tmp_path):
    name = write_csv(tmp_path / "d.csv", table(20))
    write_csv(tmp_path / "v.csv", table(3, start=100, classes=("dog",)))
    write_csv(tmp_path / "t.csv", table(4, start=200))
    data = load_data(csv_spec(name, {"validation": {"file": "v.csv"},
                                     "test": {"file": "t.csv"}}), tmp_path)
    assert len(data.train) == 20  # every row of the source trains
    assert ids(data.validation) == [100, 101, 102]
    assert data.validation.y.tolist() == [1, 1, 1]  # dog is class 1 of cat, dog
    assert ids(data.test) == [200, 201, 202, 203]
    assert data.class_names == ["cat", "dog"]
    assert "validation: csv:v.csv" in data.description and "test: csv:t.csv" in data.description
    assert data.validation.source is not data.source


def test_a_split_file_keeps_a_test_fraction_of_the_source(tmp_path):
    name = write_csv(tmp_path / "d.csv", table(20))
    write_csv(tmp_path / "v.csv", table(3, start=100))
    data = load_data(csv_spec(name, {"validation": {"file": "v.csv"}, "test": 0.2}), tmp_path)
    assert (len(data.train), len(data.validation), len(data.test)) == (16, 3, 4)


def test_npz_test_file_labels_map_onto_training_classes(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 2), np.float32),
             y=np.array(["b", "c"] * 5))
    np.savez(tmp_path / "t.npz", x=np.ones((3, 2), np.float32), y=np.array(["c", "c", "b"]))
    spec = load_spec({"kerapipe": 1, "data": {"source": {"npz": "d.npz"}, "split": {
        "test": {"file": "t.npz"}}}, "model": {"layers": LAYERS}})
    data = load_data(spec, tmp_path)
    assert data.test.y.tolist() == [1, 1, 0] and data.class_names == ["b", "c"]
    assert len(data.train) + len(data.validation) == 10


def test_a_split_file_class_the_training_split_lacks_is_refused(tmp_path):
    name = write_csv(tmp_path / "d.csv", table(10))
    write_csv(tmp_path / "v.csv", table(2, classes=("cow",)))
    with pytest.raises(DataError, match=r"v\.csv: holds the class 'cow'"):
        load_data(csv_spec(name, {"validation": {"file": "v.csv"}}), tmp_path)


def test_a_split_file_with_other_feature_columns_is_refused(tmp_path):
    name = write_csv(tmp_path / "d.csv", table(10))
    write_csv(tmp_path / "v.csv", table(2), header="id,a,c,y")
    with pytest.raises(DataError, match="same columns"):
        load_data(csv_spec(name, {"validation": {"file": "v.csv"}}, features=None), tmp_path)


def test_a_missing_split_file_is_a_data_error(tmp_path):
    name = write_csv(tmp_path / "d.csv", table(10))
    with pytest.raises(DataError, match="nope.csv"):
        load_data(csv_spec(name, {"test": {"file": "nope.csv"}}), tmp_path)


def test_a_split_file_run_reads_it_and_records_it(tmp_path):
    name = write_csv(tmp_path / "d.csv", table(24))
    write_csv(tmp_path / "t.csv", table(6, start=100))
    compiled = compile_pipeline({
        "kerapipe": 1, "seed": 1,
        "data": {"source": {"csv": {"path": str(tmp_path / name), "label": "y",
                                    "id_column": "id"}},
                 "split": {"validation": 0.25, "test": {"file": str(tmp_path / "t.csv")}},
                 "batch_size": 8},
        "model": {"layers": LAYERS}, "train": {"epochs": 1}})
    assert compiled.predict().shape == (6,)
    result = compiled.run(output_dir=str(tmp_path / "runs"), verbose=0)
    record = json.loads((result.run_dir / "run.json").read_text())
    assert "test: csv:" in record["data"]["description"]
    assert record["data"]["fingerprint"] == compiled.data.fingerprint


# --- spec-side refusals ------------------------------------------------------------------

CSV = "{csv: {path: d.csv, label: y, features: [a, b]}}"


def issues_of(split, source=CSV, units=2):
    text = (f"kerapipe: 1\ndata:\n  source: {source}\n  split: {split}\nmodel:\n"
            f"  layers: [{{Dense: {{units: {units}}}}}]\n")
    return [(i.code, ".".join(map(str, i.path)), i.line) for i in validate_text(text).issues]


@pytest.mark.parametrize("split, source, expected", [
    ("{column: fold, validation: 0.2}", CSV, [("not-applicable", "data.split.validation", 4)]),
    ("{column: fold, test: {file: t.csv}}", CSV, [("not-applicable", "data.split.test", 4)]),
    ("{column: fold, order: ordered}", CSV, [("not-applicable", "data.split.order", 4)]),
    ("{order: ordered, stratify: true}", CSV, [("not-applicable", "data.split.stratify", 4)]),
    ("{column: y}", CSV, [("not-applicable", "data.split.column", 4)]),
    ("{column: a}", CSV, [("not-applicable", "data.split.column", 4)]),
    ("{column: fold}", "{sample: mnist}", [("not-applicable", "data.split.column", 4)]),
    ("{test: {file: t.csv}}", "{sample: mnist}", [("not-applicable", "data.split.test.file", 4)]),
    ("{validation: {file: \"a\\tb.csv\"}}", CSV, [("bad-path", "data.split.validation.file",
                                                   4)]),
    ("{validation: {path: v.csv}}", CSV, [("missing-key", "data.split.validation.file", 4),
                                          ("unknown-key", "data.split.validation.path", 4)]),
    ("{order: sorted}", CSV, [("unknown-value", "data.split.order", 4)]),
], ids=["column-validation", "column-test-file", "column-order", "ordered-stratify",
        "column-is-label", "column-is-feature", "column-on-sample", "file-on-sample",
        "file-control-char", "file-key", "order-word"])
def test_split_refusals_are_at_their_line(split, source, expected):
    units = 10 if "mnist" in source else 2
    assert issues_of(split, source, units) == expected


def test_ordered_and_column_splits_validate_with_the_default_stratify():
    assert issues_of("{order: ordered, validation: 0.2}") == []
    assert issues_of("{column: fold, stratify: false}") == []
    assert issues_of("{validation: {file: v.csv}, test: {file: t.csv}}") == []


def test_plan_says_where_the_splits_come_from():
    from kerapipe.report import split_origin

    def origin(split):
        return split_origin(load_spec({"kerapipe": 1, "data": {
            "source": {"csv": {"path": "d.csv", "label": "y"}}, "split": split},
            "model": {"layers": LAYERS}}).data.split)

    assert origin({}) == ""
    assert origin({"order": "ordered"}) == " (ordered)"
    assert origin({"column": "fold"}) == " (by column 'fold')"
    assert origin({"test": {"file": "t.csv"}}) == " (test from t.csv)"


def test_a_csv_split_file_fills_missing_cells_with_the_training_splits_fill(tmp_path):
    from kerapipe.compiler.datasets import raw_features

    (tmp_path / "d.csv").write_text("a,y\n1,cat\n3,dog\n,cat\n5,dog\n7,cat\n")
    (tmp_path / "v.csv").write_text("a,y\n,dog\n2,cat\n")
    spec = load_spec({"kerapipe": 1, "data": {
        "source": {"csv": {"path": "d.csv", "label": "y"}},
        "split": {"validation": {"file": "v.csv"}, "test": 0},
        "features": {"a": {"float": {}, "missing": "mean"}}}, "model": {"layers": LAYERS}})
    data = load_data(spec, tmp_path)
    data.source.learn(data.train)
    assert data.source.record()["fill_values"] == {"a": 4.0}  # (1 + 3 + 5 + 7) / 4
    assert [x["a"].numpy().tolist() for x in raw_features(data.validation, data, spec)] == [
        [4.0], [2.0]]


def test_a_watched_val_metric_without_validation_rows_is_a_data_error(tmp_path, monkeypatch):
    """A split column that marks no row `validation`: early stopping on val_loss would
    only warn every epoch and never stop, so the run is refused before training."""
    from kerapipe import compile_pipeline

    monkeypatch.chdir(tmp_path)
    name = write_csv(tmp_path / "d.csv", table(20, fold=lambda i: "test" if i % 5 == 0
                                                else "train"), "id,a,b,fold,y")
    pipeline = {"kerapipe": 1, "seed": 1,
                "data": {"source": {"csv": {"path": name, "label": "y", "id_column": "id"}},
                         "split": {"column": "fold"}},
                "model": {"layers": LAYERS},
                "train": {"epochs": 2, "early_stopping": {"monitor": "val_loss"}}}
    with pytest.raises(DataError, match=r"train\.early_stopping\.monitor watches 'val_loss', "
                                        r"but no example is in the validation split"):
        compile_pipeline(pipeline)
    pipeline["train"]["early_stopping"]["monitor"] = "loss"
    assert compile_pipeline(pipeline).data.validation is None
