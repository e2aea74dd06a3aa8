"""The TFRecord source (``source: {tfrecord: {files, features, label}}``): globs inside the
pipeline's folder, a first pass that reads only the labels, splits streamed from the files
with the declared feature spec, malformed records named.

Tiny TFRecord files are written into tmp_path with tf.io.TFRecordWriter.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from kerapipe import load_spec
from kerapipe.errors import DataError, SpecError

FEATURES = {"image": {"dtype": "float32", "shape": [2, 3]}, "label": "int64"}


def spec_of(tfrecord: dict, **data):
    options = {"files": "data/*.tfrecord", "features": FEATURES, "label": "label", **tfrecord}
    features = options["features"]
    inputs = [name for name in features if name != options["label"]]
    if inputs and features[inputs[0]] == "string":  # validate asks strings for a string step
        data.setdefault("preprocess", [{"TextVectorization": {"output_sequence_length": 4}}])
    return load_spec({"kerapipe": 1, "data": {"source": {"tfrecord": options}, **data},
                      "model": {"layers": [{"Flatten": {}}, {"Dense": {"units": 3}}]}})


def example(**features) -> bytes:
    import tensorflow as tf

    def feature(value):
        value = np.asarray(value)
        if value.dtype.kind == "f":
            return tf.train.Feature(float_list=tf.train.FloatList(value=value.ravel()))
        if value.dtype.kind in "iu":
            return tf.train.Feature(int64_list=tf.train.Int64List(value=value.ravel()))
        items = [v.encode() if isinstance(v, str) else v for v in np.atleast_1d(value).tolist()]
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=items))

    return tf.train.Example(features=tf.train.Features(
        feature={k: feature(v) for k, v in features.items()})).SerializeToString()


def write(path: Path, records: list, compression: str = "") -> Path:
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path), options=compression or None) as writer:
        for record in records:
            writer.write(record)
    return path


def image_records(start: int, count: int) -> list:
    return [example(image=np.full((2, 3), float(i), np.float32), label=i % 3)
            for i in range(start, start + count)]


def shards(root: Path, sizes=(7, 5, 6), compression: str = "") -> list[Path]:
    paths, start = [], 0
    for index, size in enumerate(sizes):
        paths.append(write(root / "data" / f"part-{index}.tfrecord",
                           image_records(start, size), compression))
        start += size
    return paths


def load(spec, base):
    from kerapipe.compiler.sources.loading import load_data

    return load_data(spec, base)


def refusal(spec, base) -> str:
    with pytest.raises(DataError) as err:
        load(spec, base)
    return str(err.value)


# --- spec side ------------------------------------------------------------------------------

@pytest.mark.parametrize("files, code, at", [
    ("/etc/*.tfrecord", "outside-path", ("files",)),
    ("~/data/*.tfrecord", "outside-path", ("files",)),
    (["ok/*.tfrecord", "a/../../b.tfrecord"], "outside-path", ("files", 1)),
    ("gs://bucket/*.tfrecord", "outside-path", ("files",)),
    ("data/\0.tfrecord", "bad-path", ("files",)),
    ([], "out-of-range", ("files",)),
], ids=["absolute", "home", "dotdot", "url", "nul", "empty"])
def test_globs_that_could_lead_outside_the_folder_are_refused_at_their_key(files, code, at):
    with pytest.raises(SpecError) as err:
        spec_of({"files": files})
    assert [(i.code, i.path) for i in err.value.issues] == [
        (code, ("data", "source", "tfrecord") + at)]


def test_a_glob_may_climb_and_come_back_inside_the_folder():
    assert spec_of({"files": "data/../data/*.tfrecord"}).data.source.tfrecord is not None


@pytest.mark.parametrize("features, label, code, at", [
    ({"x": "float32"}, "label", "missing-key", ("label",)),
    ({"x": "float32", "label": {"dtype": "int64", "shape": [2]}}, "label", "not-applicable",
     ("features", "label", "shape")),
    ({"x": "float32", "z": "float32", "label": "int64"}, "label", "not-applicable",
     ("features",)),
    ({"x": "float", "label": "int64"}, "label", "unknown-value", ("features", "x", "dtype")),
    ({"x": {"dtype": "float32", "shape": [0, 2]}, "label": "int64"}, "label", "out-of-range",
     ("features", "x", "shape", 0)),
    ({"x": {"dtype": "float32", "shape": [1 << 14, 1 << 14]}, "label": "int64"}, "label",
     "out-of-range", ("features", "x", "shape")),
], ids=["label-undeclared", "label-shape", "two-inputs", "dtype", "zero-dim", "too-many"])
def test_the_feature_spec_is_checked_at_its_key(features, label, code, at):
    with pytest.raises(SpecError) as err:
        spec_of({"features": features, "label": label})
    assert (code, ("data", "source", "tfrecord") + at) in [(i.code, i.path)
                                                            for i in err.value.issues]


def test_the_declared_shape_is_the_example_shape_without_data():
    from kerapipe.spec.known_datasets import (example_shape_without_data,
                                              regression_without_data)

    source = spec_of({}).data.source
    assert example_shape_without_data(source) == (2, 3)
    assert regression_without_data(source) is None  # int64 labels: the loss decides
    strings = spec_of({"features": {"t": "string", "label": "string"}}).data.source
    assert example_shape_without_data(strings) == () and regression_without_data(strings) is False


def test_a_source_whose_value_was_refused_has_no_kind_and_the_checks_still_run():
    from kerapipe.spec.validate import validate_source

    result, _ = validate_source({"kerapipe": 1, "data": {"source": {"npz": 10 ** 500}},
                                 "model": {"inputs": ["a", "b"], "layers": [
                                     {"Concatenate": {}, "inputs": ["a", "b"]},
                                     {"Dense": {"units": 2}}]}})
    assert [(i.code, i.path) for i in result.issues] == [
        ("out-of-range", ("data", "source", "npz")), ("not-applicable", ("model", "inputs"))]


# --- loading and streaming ------------------------------------------------------------------

def test_every_record_of_the_sorted_files_is_in_one_split_with_its_position_as_id(tmp_path):
    shards(tmp_path)
    data = load(spec_of({}, split={"validation": 0.2, "test": 0.2}), tmp_path)
    ids = sorted(i for s in (data.train, data.validation, data.test) for i in s.ids.tolist())
    assert ids == list(range(18))
    assert data.example_shape == (2, 3) and data.num_classes == 3
    assert "(18 records in 3 files)" in data.description


@pytest.mark.parametrize("compression", ["", "GZIP", "ZLIB"])
def test_a_split_yields_its_own_records_with_their_labels(tmp_path, compression):
    shards(tmp_path, compression=compression)
    spec = spec_of({"compression": compression or None}, split={"validation": 0.25,
                                                                "test": 0.25})
    data = load(spec, tmp_path)
    for split in (data.train, data.validation, data.test):
        pairs = sorted((int(x[0, 0]), int(y)) for x, y in
                       data.source.examples(split).as_numpy_iterator())
        assert pairs == [(i, i % 3) for i in sorted(split.ids.tolist())]
        in_order = [int(x[0, 0]) for x in data.source.features(split).as_numpy_iterator()]
        assert in_order == split.ids.tolist()  # predictions keep the order of the ids


def test_string_features_and_string_labels_are_read_as_text_and_classes(tmp_path):
    records = [example(title=f"title {i}", genre=["drama", "comedy"][i % 2]) for i in range(8)]
    write(tmp_path / "data" / "t.tfrecord", records)
    spec = spec_of({"features": {"title": "string", "genre": "string"}, "label": "genre"},
                   split={"validation": 0.0, "test": 0.0})
    data = load(spec, tmp_path)
    assert data.class_names == ["comedy", "drama"] and data.example_shape == ()
    got = sorted((x.decode(), int(y)) for x, y in
                 data.source.examples(data.train).as_numpy_iterator())
    assert got == sorted((f"title {i}", 1 - i % 2) for i in range(8))


def test_only_the_labels_are_held_in_memory(tmp_path):
    shards(tmp_path)
    data = load(spec_of({}, split={"validation": 0.0, "test": 0.0}), tmp_path)
    assert data.train.x.dtype == np.int64 and data.train.x.ndim == 1  # positions, no features


def test_a_glob_list_is_joined_and_each_file_read_once(tmp_path):
    shards(tmp_path)
    spec = spec_of({"files": ["data/part-0.tfrecord", "data/part-*.tfrecord"]},
                   split={"validation": 0.0, "test": 0.0})
    assert len(load(spec, tmp_path).train) == 18


# --- hostile files --------------------------------------------------------------------------

def test_a_glob_matching_nothing_is_explained(tmp_path):
    assert "matches no file" in refusal(spec_of({}), tmp_path)


def test_a_link_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    write(outside / "x.tfrecord", image_records(0, 3))
    (tmp_path / "pipe" / "data").mkdir(parents=True)
    os.symlink(outside / "x.tfrecord", tmp_path / "pipe" / "data" / "x.tfrecord")
    message = refusal(spec_of({}), tmp_path / "pipe")
    assert "outside the pipeline's folder" in message


def test_a_file_that_is_not_tfrecord_is_named(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.tfrecord").write_bytes(b"not a tfrecord file at all" * 10)
    message = refusal(spec_of({}), tmp_path)
    assert message.startswith("data/x.tfrecord: cannot read record 1")
    assert "set data.source.tfrecord.compression" in message


def test_a_compressed_file_read_as_plain_is_named(tmp_path):
    shards(tmp_path, sizes=(4,), compression="GZIP")
    assert "cannot read record 1" in refusal(spec_of({}), tmp_path)


def test_a_truncated_file_is_named(tmp_path):
    path = shards(tmp_path, sizes=(5,))[0]
    path.write_bytes(path.read_bytes()[:-10])
    assert refusal(spec_of({}), tmp_path).startswith("data/part-0.tfrecord: cannot read record")


def test_a_record_without_the_label_is_named_with_its_number(tmp_path):
    records = image_records(0, 4)
    records[2] = example(image=np.zeros((2, 3), np.float32))
    write(tmp_path / "data" / "x.tfrecord", records)
    message = refusal(spec_of({}), tmp_path)
    assert message.startswith("data/x.tfrecord, record 3: ") and "label" in message


def test_a_record_that_is_no_example_is_named(tmp_path):
    write(tmp_path / "data" / "x.tfrecord", image_records(0, 2) + [b"\xff\xfe garbage"])
    assert refusal(spec_of({}), tmp_path).startswith("data/x.tfrecord, record 3: ")


def test_a_record_whose_input_has_another_shape_is_named_when_tf_data_fails(tmp_path):
    records = image_records(0, 6)
    records[4] = example(image=np.zeros(5, np.float32), label=1)
    write(tmp_path / "data" / "x.tfrecord", records)
    data = load(spec_of({}, split={"validation": 0.0, "test": 0.0}), tmp_path)
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError) as failure:
        list(data.source.examples(data.train).as_numpy_iterator())
    explained = data.source.explain_decode_failure(data, failure.value.message, "training")
    assert str(explained).startswith("data/x.tfrecord, record 5: ")
    assert "training stopped at it" in str(explained)


def test_the_record_count_is_bounded(tmp_path, monkeypatch):
    from kerapipe.compiler.sources import tfrecord_file

    shards(tmp_path)
    monkeypatch.setattr(tfrecord_file, "MAX_TFRECORD_RECORDS", 10)
    assert "hold more than 10 records" in refusal(spec_of({}), tmp_path)


def test_the_fingerprint_follows_the_files(tmp_path):
    paths = shards(tmp_path)
    spec = spec_of({})
    before = load(spec, tmp_path).fingerprint
    write(paths[1], image_records(100, 5))
    assert load(spec, tmp_path).fingerprint != before


# --- end to end: run and predict ------------------------------------------------------------

TEXT_PIPELINE = """\
kerapipe: 1
name: records
seed: 2
data:
  source:
    tfrecord:
      files: data/*.tfrecord.gz
      features: {review: string, stars: int64}
      label: stars
      compression: GZIP
  split: {validation: 0.2, test: 0.3}
  batch_size: 8
  preprocess:
    - TextVectorization: {max_tokens: 40, output_sequence_length: 5}
model:
  layers:
    - Embedding: {input_dim: 40, output_dim: 8}
    - GlobalAveragePooling1D: {}
    - Dense: {units: 2}
loss: {name: sparse_categorical_crossentropy, from_logits: true}
optimizer: {name: adam, learning_rate: 0.05}
train: {epochs: 3}
"""
REVIEWS = [f"a {word} film" for word in ("dull", "bad", "great", "good")]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    from kerapipe.cli import main

    folder = tmp_path_factory.mktemp("tfrecord-run")
    records = [example(review=REVIEWS[i % 4], stars=int(i % 4 >= 2)) for i in range(24)]
    write(folder / "data" / "a.tfrecord.gz", records[:10], "GZIP")
    write(folder / "data" / "b.tfrecord.gz", records[10:], "GZIP")
    write(folder / "inputs.tfrecord.gz", records, "GZIP")  # both files' records, in order
    (folder / "p.yaml").write_text(TEXT_PIPELINE)
    try:
        main(["run", str(folder / "p.yaml"), "--output", str(folder / "runs")])
    except SystemExit as exit_:
        assert exit_.code == 0
    (run_dir,) = (folder / "runs").iterdir()
    return folder, run_dir


def test_predict_on_the_records_gives_the_runs_own_predictions(text_run, call_main):
    import csv
    import io

    folder, run_dir = text_run
    with open(run_dir / "predictions.csv", newline="") as handle:
        expected = {row["input"]: row["predicted"] for row in csv.DictReader(handle)}
    assert len(expected) >= 5 and all(0 <= int(i) < 24 for i in expected)
    code, out, err = call_main("predict", run_dir, folder / "inputs.tfrecord.gz")
    assert code == 0, out + err
    mine = {row["input"]: row["predicted"] for row in csv.DictReader(io.StringIO(out))}
    assert len(mine) == 24 and {i: mine[i] for i in expected} == expected


def test_predict_names_a_damaged_tfrecord_input(text_run, call_main, tmp_path):
    _, run_dir = text_run
    (tmp_path / "in.tfrecord").write_bytes(b"garbage" * 20)
    code, out, err = call_main("predict", run_dir, tmp_path / "in.tfrecord")
    assert code == 3 and "cannot read its records" in err and "Traceback" not in err


def test_the_sources_of_strings_are_known_without_data():
    from kerapipe.spec.known_datasets import strings_without_data

    assert strings_without_data(spec_of({"features": {"t": "string", "label": "int64"}})
                                .data.source)
    assert not strings_without_data(spec_of({}).data.source)
    text = load_spec({"kerapipe": 1, "data": {"source": {"text": "texts"}, "preprocess": [
        {"TextVectorization": {"output_sequence_length": 4}}]},
                      "model": {"layers": [{"Dense": {"units": 2}}]}})
    assert strings_without_data(text.data.source)
