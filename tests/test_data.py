"""Loading and splitting data: every source kind, stratified splits, and each DataError.

All data is tiny and generated into tmp_path; keras.datasets loaders are monkeypatched,
so nothing is downloaded.
"""

import csv
import os

import keras
import numpy as np
import pytest

from kerapipe import load_spec
from kerapipe.compiler.sources.image_folder import decode_image
from kerapipe.compiler.sources.loading import load_data
from kerapipe.compiler.splits import stratified_split
from kerapipe.errors import EXIT_DATA, DataError

CLASSIFIER = [{"Flatten": {}}, {"Dense": {"units": 3}}]


def make_spec(source, layers=None, loss=None, **data):
    spec = {"kerapipe": 1, "data": {"source": source, **data},
            "model": {"layers": layers or CLASSIFIER}}
    if loss is not None:
        spec["loss"] = loss
    return load_spec(spec)


def class_counts(y, num_classes):
    return np.bincount(y, minlength=num_classes)


def all_indices(parts):
    return np.sort(np.concatenate(parts))


# --- stratified_split ------------------------------------------------------------------

def test_stratified_split_keeps_class_proportions_and_loses_nothing():
    y = np.repeat([0, 1, 2], [100, 50, 30])  # grouped by label, uneven classes
    train, val, test = stratified_split(y, [0.1, 0.2], seed=0, stratify=True)
    assert np.array_equal(all_indices([train, val, test]), np.arange(len(y)))
    assert (len(val), len(test), len(train)) == (18, 36, 126)
    for part, fraction in ((val, 0.1), (test, 0.2)):
        expected = np.array([100, 50, 30]) * fraction
        assert np.all(np.abs(class_counts(y[part], 3) - expected) <= 1)


def test_stratified_split_rounding_per_class_loses_no_examples():
    y = np.repeat(np.arange(7), [3, 5, 7, 2, 11, 4, 9])  # awkward per-class remainders
    parts = stratified_split(y, [0.15, 0.15], seed=3, stratify=True)
    assert np.array_equal(all_indices(parts), np.arange(len(y)))
    assert [len(p) for p in parts[1:]] == [round(0.15 * len(y))] * 2


def test_split_parts_are_shuffled_not_label_grouped():
    y = np.repeat(np.arange(5), 40)
    train, val = stratified_split(y, [0.1], seed=1, stratify=True)
    assert not np.all(np.diff(y[train]) >= 0)  # not in label order
    assert not np.all(np.diff(y[val]) >= 0)
    assert set(y[val]) == set(range(5))


def test_split_is_reproducible_with_a_seed_and_varies_between_seeds():
    y = np.repeat(np.arange(3), 30)
    first = stratified_split(y, [0.2], seed=7, stratify=True)
    again = stratified_split(y, [0.2], seed=7, stratify=True)
    other = stratified_split(y, [0.2], seed=8, stratify=True)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[1], other[1])


def test_zero_fraction_gives_an_empty_part():
    train, val, test = stratified_split(np.repeat([0, 1], 10), [0.0, 0.2], seed=0, stratify=True)
    assert len(val) == 0 and len(test) == 4 and len(train) == 16


def test_nonzero_fraction_of_a_tiny_set_holds_at_least_one_example():
    train, val = stratified_split(np.array([0, 1, 0, 1]), [0.1], seed=0, stratify=True)
    assert len(val) == 1 and len(train) == 3


def test_without_stratify_the_split_is_a_plain_shuffle():
    y = np.repeat([0, 1], [90, 10])
    train, val = stratified_split(y, [0.5], seed=0, stratify=False)
    assert len(val) == 50 and np.array_equal(all_indices([train, val]), np.arange(100))
    assert not np.all(np.diff(train) > 0)


@pytest.mark.parametrize("y", [np.linspace(0.0, 1.0, 50),  # regression target
                               np.array([0] * 30 + [1] * 19 + [2])],  # a class of one
                         ids=["float-target", "singleton-class"])
def test_split_falls_back_to_plain_shuffle_when_it_cannot_stratify(y):
    parts = stratified_split(y, [0.2, 0.2], seed=0, stratify=True)
    assert [len(p) for p in parts] == [30, 10, 10]
    assert np.array_equal(all_indices(parts), np.arange(50))


def test_split_rejects_fractions_that_add_up_to_more_than_one():
    with pytest.raises(ValueError, match="add up to at most 1"):
        stratified_split(np.zeros(10, dtype=int), [0.6, 0.6], seed=0, stratify=False)


# --- sample ------------------------------------------------------------------------------

def test_sample_mnist_splits_4000_500_500_with_every_class_in_each_split(tmp_path):
    data = load_data(make_spec({"sample": "mnist"}, [{"Flatten": {}}, {"Dense": {"units": 10}}],
                               split={"validation": 0.1, "test": 0.1}), tmp_path)
    sizes = [len(s.y) for s in (data.train, data.validation, data.test)]
    assert sizes == [4000, 500, 500]
    assert class_counts(data.validation.y, 10).tolist() == [50] * 10
    assert class_counts(data.test.y, 10).tolist() == [50] * 10
    assert data.train.x.shape == (4000, 28, 28) and data.train.y.dtype == np.int64
    assert data.num_classes == 10 and data.class_names == [str(i) for i in range(10)]
    assert data.example_shape == (28, 28) and data.source.kind == "sample"
    assert data.description == "sample:mnist (5,000 examples)"
    assert len(data.fingerprint) == 64


def test_sample_rows_grouped_by_label_are_shuffled_for_training(tmp_path):
    data = load_data(make_spec({"sample": "mnist"}, [{"Flatten": {}}, {"Dense": {"units": 10}}]),
                     tmp_path)
    assert len(set(data.train.y[:50].tolist())) > 5  # not 50 zeros in a row


def test_zero_validation_and_test_fractions_give_none(tmp_path):
    data = load_data(make_spec({"sample": "mnist"}, [{"Flatten": {}}, {"Dense": {"units": 10}}],
                               split={"validation": 0, "test": 0}), tmp_path)
    assert data.validation is None and data.test is None and len(data.train.y) == 5000


# --- keras.datasets ---------------------------------------------------------------------

def fake_mnist():
    rng = np.random.default_rng(0)
    return ((rng.integers(0, 255, (100, 28, 28), dtype=np.uint8), np.repeat(np.arange(10), 10)),
            (rng.integers(0, 255, (20, 28, 28), dtype=np.uint8), np.repeat(np.arange(10), 2)))


def test_keras_dataset_keeps_its_own_test_split(monkeypatch, tmp_path):
    monkeypatch.setattr(keras.datasets.mnist, "load_data", fake_mnist)
    data = load_data(make_spec({"keras": "mnist"}, [{"Flatten": {}}, {"Dense": {"units": 10}}],
                               split={"validation": 0.1, "test": 0.3}), tmp_path)
    assert (len(data.train.y), len(data.validation.y), len(data.test.y)) == (90, 10, 20)
    assert np.array_equal(data.test.y, np.repeat(np.arange(10), 2))  # untouched, in order
    assert set(data.validation.y.tolist()) == set(range(10))
    assert data.num_classes == 10 and data.description.startswith("keras:mnist (100 training")


def test_offline_keras_download_names_dataset_cache_and_fix(monkeypatch, tmp_path):
    def offline(**kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/mnist.npz: None "
                        "-- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    spec = make_spec({"keras": "fashion_mnist"}, [{"Flatten": {}}, {"Dense": {"units": 10}}])
    with pytest.raises(DataError) as caught:
        load_data(spec, tmp_path)
    message = str(caught.value)
    assert "fashion_mnist" in message and "URL fetch failure" in message
    assert os.path.join(str(tmp_path / "kh"), "datasets") in message
    assert "connect once to download it" in message and "sample: mnist" in message
    assert caught.value.exit_code == EXIT_DATA
    assert caught.value.__cause__ is not None


def test_keras_regression_target_is_kept_float(monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    arrays = ((rng.normal(size=(40, 8)), rng.uniform(0.5, 5.0, 40)),
              (rng.normal(size=(10, 8)), rng.uniform(0.5, 5.0, 10)))
    monkeypatch.setattr(keras.datasets.california_housing, "load_data", lambda: arrays)
    data = load_data(make_spec({"keras": "california_housing"}, [{"Dense": {"units": 1}}],
                               loss="mean_squared_error"), tmp_path)
    assert data.train.y.dtype == np.float32 and data.test.y.dtype == np.float32
    assert data.num_classes is None and data.class_names is None
    assert sorted(np.concatenate([data.train.y, data.validation.y])) == pytest.approx(
        sorted(arrays[0][1]))
    assert data.example_shape == (8,)


def ragged_imdb(**kwargs):
    ragged_imdb.kwargs = kwargs
    lengths = [3, 7, 1, 12, 5, 9, 2, 4, 6, 8]
    x = np.empty(10, dtype=object)
    x[:] = [list(range(1, n + 1)) for n in lengths]
    return (x, np.array([0, 1] * 5)), (x[:4].copy(), np.array([0, 1, 0, 1]))


def test_pad_sequences_pads_ragged_sequences_of_every_split(monkeypatch, tmp_path):
    monkeypatch.setattr(keras.datasets.imdb, "load_data", ragged_imdb)
    layers = [{"Embedding": {"input_dim": 100, "output_dim": 4}}, {"Flatten": {}},
              {"Dense": {"units": 2}}]
    spec = make_spec({"keras": {"name": "imdb", "num_words": 100}}, layers,
                     preprocess=[{"pad_sequences": {"maxlen": 5, "padding": "post"}}],
                     split={"validation": 0.2})
    data = load_data(spec, tmp_path)
    assert ragged_imdb.kwargs == {"num_words": 100}
    assert data.example_shape == (5,)
    for split in (data.train, data.validation, data.test):
        assert split.x.shape[1:] == (5,) and split.x.dtype == np.int32
    assert data.test.x[0].tolist() == [1, 2, 3, 0, 0]  # post padding
    assert data.test.x[1].tolist() == [3, 4, 5, 6, 7]  # pre truncating (the default)
    assert data.class_names == ["negative", "positive"]


def test_ragged_sequences_without_pad_sequences_suggest_the_step(monkeypatch, tmp_path):
    monkeypatch.setattr(keras.datasets.imdb, "load_data", ragged_imdb)
    layers = [{"Embedding": {"input_dim": 100, "output_dim": 4}}, {"Flatten": {}},
              {"Dense": {"units": 2}}]
    with pytest.raises(DataError, match=r"different lengths.*- pad_sequences: 200"):
        load_data(make_spec({"keras": "imdb"}, layers), tmp_path)


# --- npz ---------------------------------------------------------------------------------

def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path.name


def labelled(n=60, classes=3, features=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)).astype(np.float32), np.repeat(np.arange(classes),
                                                                        n // classes)


def test_npz_with_x_and_y_is_split_into_train_validation_test(tmp_path):
    x, y = labelled()
    name = write_npz(tmp_path / "d.npz", x=x, y=y)
    data = load_data(make_spec({"npz": name}), tmp_path)
    assert [len(s.y) for s in (data.train, data.validation, data.test)] == [48, 6, 6]
    assert data.example_shape == (4,) and data.num_classes == 3
    rebuilt = np.concatenate([data.train.x, data.validation.x, data.test.x])
    assert sorted(map(tuple, rebuilt)) == sorted(map(tuple, x))
    assert data.description == "npz:d.npz (60 examples)"


def test_npz_fingerprint_is_the_sha256_of_the_file(tmp_path):
    import hashlib
    x, y = labelled()
    name = write_npz(tmp_path / "d.npz", x=x, y=y)
    data = load_data(make_spec({"npz": name}), tmp_path)
    assert data.fingerprint == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()


def test_npz_x_test_is_used_as_the_test_split(tmp_path):
    x, y = labelled()
    x_test, y_test = labelled(n=9, seed=1)
    name = write_npz(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x_test, y_test=y_test)
    data = load_data(make_spec({"npz": name}, split={"validation": 0.1, "test": 0.5}), tmp_path)
    assert (len(data.train.y), len(data.validation.y)) == (54, 6)
    assert np.array_equal(data.test.x, x_test) and np.array_equal(data.test.y, y_test)


def test_npz_explicit_array_names_override_the_defaults(tmp_path):
    x, y = labelled()
    name = write_npz(tmp_path / "d.npz", x=np.zeros((60, 2)), y=np.zeros(60, dtype=int),
                     features=x, labels=y)
    data = load_data(make_spec({"npz": {"path": name, "x": "features", "y": "labels"}}),
                     tmp_path)
    assert data.example_shape == (4,) and data.num_classes == 3


def test_npz_absolute_path_is_used_as_is(tmp_path):
    x, y = labelled()
    write_npz(tmp_path / "d.npz", x=x, y=y)
    data = load_data(make_spec({"npz": str(tmp_path / "d.npz")}), "/nonexistent-base")
    assert len(data.train.y) == 48


def test_npz_missing_file_names_the_file_and_the_base_folder(tmp_path):
    with pytest.raises(DataError) as caught:
        load_data(make_spec({"npz": "nope.npz"}), tmp_path)
    assert "nope.npz" in str(caught.value) and str(tmp_path) in str(caught.value)
    assert "relative to the pipeline file" in str(caught.value)


def test_npz_that_is_not_an_npz_file_says_how_to_make_one(tmp_path):
    (tmp_path / "d.npz").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"d\.npz: not a NumPy \.npz file.*numpy\.savez"):
        load_data(make_spec({"npz": "d.npz"}), tmp_path)


def test_npz_missing_array_lists_the_arrays_it_has(tmp_path):
    x, y = labelled()
    name = write_npz(tmp_path / "d.npz", features=x, y=y)
    with pytest.raises(DataError) as caught:
        load_data(make_spec({"npz": name}), tmp_path)
    message = str(caught.value)
    assert "d.npz" in message and "'x'" in message and "features (60, 4)" in message
    assert "data.source.npz.x" in message


def test_npz_explicit_wrong_array_name_gets_a_suggestion(tmp_path):
    x, y = labelled()
    name = write_npz(tmp_path / "d.npz", features=x, labels=y)
    with pytest.raises(DataError, match="Did you mean 'labels'"):
        load_data(make_spec({"npz": {"path": name, "x": "features", "y": "label"}}), tmp_path)


def test_npz_length_mismatch_names_both_arrays_and_counts(tmp_path):
    x, y = labelled()
    name = write_npz(tmp_path / "d.npz", x=x, y=y[:50])
    with pytest.raises(DataError, match=r"d\.npz: 'x' has 60 examples but 'y' has 50 labels"):
        load_data(make_spec({"npz": name}), tmp_path)


def test_npz_with_only_half_a_test_split_is_an_error(tmp_path):
    x, y = labelled()
    name = write_npz(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x)
    with pytest.raises(DataError, match="has 'x_test' but no 'y_test'"):
        load_data(make_spec({"npz": name}), tmp_path)


def test_nan_feature_names_the_array_and_first_bad_index(tmp_path):
    x, y = labelled()
    x[7, 2] = np.nan
    x[9, 0] = np.inf
    name = write_npz(tmp_path / "d.npz", x=x, y=y)
    with pytest.raises(DataError, match=r"d\.npz: 'x\[7\]' holds nan \(2 examples"):
        load_data(make_spec({"npz": name}), tmp_path)


def test_whole_number_float_labels_become_class_indices(tmp_path):
    x, y = labelled()
    name = write_npz(tmp_path / "d.npz", x=x, y=y.astype(np.float64))
    data = load_data(make_spec({"npz": name}), tmp_path)
    assert data.train.y.dtype == np.int64 and data.num_classes == 3


def test_fractional_labels_with_a_classification_loss_are_an_error(tmp_path):
    x, _ = labelled()
    name = write_npz(tmp_path / "d.npz", x=x, y=np.linspace(0, 2, 60))
    with pytest.raises(DataError, match=r"float labels where classes are expected: "
                                        r"'y\[1\]'.*mean_squared_error"):
        load_data(make_spec({"npz": name}), tmp_path)


def test_negative_labels_are_an_error(tmp_path):
    x, y = labelled()
    name = write_npz(tmp_path / "d.npz", x=x, y=y - 1)
    with pytest.raises(DataError, match=r"'y\[0\]' is -1.*from 0"):
        load_data(make_spec({"npz": name}), tmp_path)


def test_regression_loss_keeps_float_targets(tmp_path):
    x, _ = labelled()
    target = np.linspace(-1.5, 2.5, 60)
    name = write_npz(tmp_path / "d.npz", x=x, y=target)
    data = load_data(make_spec({"npz": name}, [{"Dense": {"units": 1}}], loss="mse"), tmp_path)
    assert data.train.y.dtype == np.float32 and data.num_classes is None
    assert data.class_names is None
    every = np.concatenate([data.train.y, data.validation.y, data.test.y])
    assert sorted(every) == pytest.approx(sorted(target.astype(np.float32)))


def test_string_labels_in_an_npz_become_sorted_classes(tmp_path):
    x, _ = labelled()
    name = write_npz(tmp_path / "d.npz", x=x, y=np.array(["dog", "cat", "emu"] * 20))
    data = load_data(make_spec({"npz": name}), tmp_path)
    assert data.class_names == ["cat", "dog", "emu"] and data.num_classes == 3


def test_object_arrays_are_refused_instead_of_unpickled(tmp_path):
    x = np.empty(4, dtype=object)
    x[:] = [[1], [1, 2], [3], [4, 5, 6]]
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match="'x' holds Python objects.*pad_sequences"):
        load_data(make_spec({"npz": "d.npz"}), tmp_path)


def test_no_training_examples_left_is_an_error(tmp_path):
    name = write_npz(tmp_path / "d.npz", x=np.ones((2, 3)), y=np.array([0, 1]))
    spec = make_spec({"npz": name}, split={"validation": 0.5, "test": 0.4})
    with pytest.raises(DataError, match=r"d\.npz: no examples are left for training"):
        load_data(spec, tmp_path)


# --- csv ---------------------------------------------------------------------------------

def write_csv(path, rows, delimiter=","):
    with open(path, "w", newline="") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    return path.name


def iris_like(n=30):
    species = ["virginica", "setosa", "versicolor"]
    return [["sepal", "petal", "species"]] + [[f"{i * 0.1:.1f}", f"{i % 7}", species[i % 3]]
                                              for i in range(n)]


def test_csv_string_labels_become_classes_in_sorted_order(tmp_path):
    name = write_csv(tmp_path / "iris.csv", iris_like())
    data = load_data(make_spec({"csv": {"path": name, "label": "species"}}), tmp_path)
    assert data.class_names == ["setosa", "versicolor", "virginica"] and data.num_classes == 3
    assert data.example_shape == (2,) and data.source.stream is not None
    # Streamed: a split holds row numbers, ascending (file order); tf.data parses the rows.
    assert data.train.x.dtype == np.int64 and list(data.train.x) == sorted(data.train.x)
    assert [len(s.y) for s in (data.train, data.validation, data.test)] == [24, 3, 3]
    assert set(data.test.y.tolist()) == {0, 1, 2}


def test_csv_integer_labels_feature_subset_and_delimiter(tmp_path):
    rows = [["a", "b", "c", "label"]] + [[i, i * 2, -i, i % 4] for i in range(40)]
    name = write_csv(tmp_path / "t.csv", rows, delimiter=";")
    spec = make_spec({"csv": {"path": name, "label": "label", "features": ["c", "a"],
                              "delimiter": ";"}}, [{"Dense": {"units": 4}}])
    data = load_data(spec, tmp_path)
    assert data.class_names == ["0", "1", "2", "3"] and data.num_classes == 4
    rows = np.concatenate([data.train.x, data.validation.x, data.test.x])
    assert sorted(rows.tolist()) == list(range(40))
    x = [tuple(v.numpy().tolist()) for v in data.source.stream.features(np.sort(rows))]
    assert x == [(-i, i) for i in range(40)]  # the chosen columns, in the chosen order


def test_csv_stream_reads_only_the_split_rows_and_skips_blank_lines(tmp_path):
    (tmp_path / "b.csv").write_text("a,label\r\n1,x\r\n\r\n2,y\r\n3,x\r\n4,y\r\n")
    data = load_data(make_spec({"csv": {"path": "b.csv", "label": "label"}}), tmp_path)
    assert [v.numpy().tolist() for v in data.source.stream.features(np.array([1, 3]))] == [[2.0], [4.0]]


def test_csv_stream_counts_rows_across_blocks_of_lines(tmp_path, monkeypatch):
    import kerapipe.compiler.sources.csv_stream as csv_stream_module

    monkeypatch.setattr(csv_stream_module, "_CSV_BLOCK", 4)  # many blocks, blanks at their edges
    lines = ["a,label"] + [f"{i},x" if i % 5 else "" for i in range(1, 40)]
    (tmp_path / "b.csv").write_text("\n".join(lines) + "\n")
    data = load_data(make_spec({"csv": {"path": "b.csv", "label": "label"}}), tmp_path)
    values = [i for i in range(1, 40) if i % 5]  # data row r holds values[r]
    rows = np.array([0, 3, 4, 5, 11, 20, len(values) - 1])
    got = [v.numpy().tolist()[0] for v in data.source.stream.features(rows)]
    assert got == [float(values[r]) for r in rows]


def test_csv_value_spanning_lines_is_refused(tmp_path):
    (tmp_path / "q.csv").write_text('a,label\n1,"x\ny"\n2,y\n')
    with pytest.raises(DataError) as caught:
        load_data(make_spec({"csv": {"path": "q.csv", "label": "label"}}), tmp_path)
    assert "q.csv, line 2: a quoted value spans several lines" in str(caught.value)


def test_csv_missing_label_column_lists_columns_and_suggests(tmp_path):
    name = write_csv(tmp_path / "iris.csv", iris_like())
    with pytest.raises(DataError) as caught:
        load_data(make_spec({"csv": {"path": name, "label": "specie"}}), tmp_path)
    message = str(caught.value)
    assert "iris.csv" in message and "'specie'" in message
    assert "Did you mean 'species'?" in message and "sepal, petal, species" in message


def test_csv_without_a_header_row_says_so(tmp_path):
    name = write_csv(tmp_path / "raw.csv", [[1, 2, 0], [3, 4, 1]])
    with pytest.raises(DataError, match="looks like data: add a header row"):
        load_data(make_spec({"csv": {"path": name, "label": "label"}}), tmp_path)


def test_csv_unknown_feature_column_is_an_error(tmp_path):
    name = write_csv(tmp_path / "iris.csv", iris_like())
    with pytest.raises(DataError, match=r"no feature column 'petals'.*Did you mean 'petal'"):
        load_data(make_spec({"csv": {"path": name, "label": "species",
                                     "features": ["petals"]}}), tmp_path)


def test_csv_unparsable_value_names_line_column_and_value(tmp_path):
    rows = iris_like()
    rows[5][1] = "n/a"  # line 6 of the file (the header is line 1)
    name = write_csv(tmp_path / "iris.csv", rows)
    with pytest.raises(DataError, match=r"iris\.csv, line 6, column 'petal': 'n/a', which is "
                                        r"not a number"):
        load_data(make_spec({"csv": {"path": name, "label": "species"}}), tmp_path)


def test_csv_nan_feature_value_is_an_error(tmp_path):
    rows = iris_like()
    rows[3][0] = "nan"
    name = write_csv(tmp_path / "iris.csv", rows)
    with pytest.raises(DataError, match=r"line 4, column 'sepal': 'nan', which is not a finite"):
        load_data(make_spec({"csv": {"path": name, "label": "species"}}), tmp_path)


def test_csv_ragged_row_names_the_line_and_counts(tmp_path):
    rows = iris_like()
    rows[10] = rows[10][:2]
    name = write_csv(tmp_path / "iris.csv", rows)
    with pytest.raises(DataError, match=r"iris\.csv, line 11: 2 fields, but the header has 3"):
        load_data(make_spec({"csv": {"path": name, "label": "species"}}), tmp_path)


def test_csv_fractional_label_error_names_the_line(tmp_path):
    rows = [["f", "target"]] + [[i, i % 2] for i in range(10)]
    rows[4][1] = "0.5"
    name = write_csv(tmp_path / "t.csv", rows)
    with pytest.raises(DataError, match=r"t\.csv: float labels where classes are expected: "
                                        r"line 5, column 'target' is 0\.5"):
        load_data(make_spec({"csv": {"path": name, "label": "target"}}), tmp_path)


def test_csv_numeric_target_with_a_regression_loss_stays_float(tmp_path):
    rows = [["f", "price"]] + [[i, i * 0.5] for i in range(20)]
    name = write_csv(tmp_path / "t.csv", rows)
    data = load_data(make_spec({"csv": {"path": name, "label": "price"}},
                               [{"Dense": {"units": 1}}], loss="mean_absolute_error"), tmp_path)
    assert data.train.y.dtype == np.float32 and data.num_classes is None


def test_csv_missing_file_and_empty_file_are_errors(tmp_path):
    with pytest.raises(DataError, match="gone.csv: no such file"):
        load_data(make_spec({"csv": {"path": "gone.csv", "label": "y"}}), tmp_path)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty.csv: the file is empty"):
        load_data(make_spec({"csv": {"path": "empty.csv", "label": "y"}}), tmp_path)


# --- image folders -----------------------------------------------------------------------

def write_images(root, classes=("cat", "dog"), per_class=4, size=(6, 5)):
    import tensorflow as tf

    for index, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((*size, 3), 40 * index + i, dtype=np.uint8)
            (folder / f"{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    (root / "cat" / "notes.txt").write_text("not an image")


def test_image_folder_gives_paths_labelled_by_sorted_subfolder(tmp_path):
    write_images(tmp_path / "pics", classes=("dog", "cat"))
    spec = make_spec({"images": {"dir": "pics", "image_size": [8, 8]}},
                     [{"Flatten": {}}, {"Dense": {"units": 2}}], split={"validation": 0.25,
                                                                        "test": 0.25})
    data = load_data(spec, tmp_path)
    assert data.source.kind == "images" and data.class_names == ["cat", "dog"] and data.num_classes == 2
    assert data.example_shape == (8, 8, 3)
    assert [len(s.y) for s in (data.train, data.validation, data.test)] == [4, 2, 2]
    for split in (data.train, data.validation, data.test):
        assert set(split.y.tolist()) == {0, 1}
        for path, label in zip(split.x, split.y):
            assert os.path.basename(os.path.dirname(path)) == data.class_names[label]
            assert path.endswith(".png")
    assert data.description == "images:pics (8 images, 2 classes)"


def test_decode_image_reads_resizes_and_keeps_0_to_255(tmp_path):
    write_images(tmp_path / "pics")
    path = str(tmp_path / "pics" / "dog" / "3.png")
    rgb = decode_image(path, [4, 7], "rgb")
    assert tuple(rgb.shape) == (4, 7, 3) and rgb.dtype.name == "float32"
    assert float(rgb.numpy().min()) == pytest.approx(43.0)
    gray = decode_image(path, (3, 3), "grayscale")
    assert tuple(gray.shape) == (3, 3, 1)


def test_decode_image_works_inside_tf_data(tmp_path):
    import tensorflow as tf

    write_images(tmp_path / "pics")
    spec = make_spec({"images": {"dir": "pics", "image_size": [4, 4], "color_mode": "rgba"}},
                     [{"Flatten": {}}, {"Dense": {"units": 2}}])
    data = load_data(spec, tmp_path)
    dataset = tf.data.Dataset.from_tensor_slices(data.train.x).map(
        lambda p: decode_image(p, [4, 4], "rgba")).batch(8)
    batch = next(iter(dataset))
    assert tuple(batch.shape) == (len(data.train.x), 4, 4, 4)


def test_image_folder_without_class_subfolders_is_an_error(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"flat: no class sub-folders\. It holds 1 images"):
        load_data(make_spec({"images": "flat"}), tmp_path)


def test_image_folder_without_images_is_an_error(tmp_path):
    (tmp_path / "pics" / "cat").mkdir(parents=True)
    (tmp_path / "pics" / "cat" / "readme.txt").write_text("")
    with pytest.raises(DataError, match=r"pics: no images in the class folders \(cat\)"):
        load_data(make_spec({"images": "pics"}), tmp_path)


def test_missing_image_folder_is_an_error(tmp_path):
    with pytest.raises(DataError, match="nowhere: no such folder"):
        load_data(make_spec({"images": "nowhere"}), tmp_path)
