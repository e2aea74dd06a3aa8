"""The text-folder source (``source: {text: {dir: ...}}``): the folder read as
keras.utils.text_dataset_from_directory reads it, streamed by tf.data, hostile folders
refused with the file named; and ``predict``'s text inputs.

Data is tiny and generated into tmp_path.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from kerapipe import load_spec
from kerapipe.errors import DataError


# A text source needs a step that takes strings first (validate refuses one without).
VECTORIZE = [{"TextVectorization": {"max_tokens": 50, "output_sequence_length": 8}}]


def spec_of(source, **data):
    data.setdefault("preprocess", VECTORIZE)
    return load_spec({"kerapipe": 1, "data": {"source": source, **data},
                      "model": {"layers": [{"Dense": {"units": 2}}]}})


def text_folder(root: Path, classes=("neg", "pos"), per_class: int = 5) -> Path:
    for label in classes:
        (root / "texts" / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            (root / "texts" / label / f"{i:03d}.txt").write_text(f"{label} text number {i}",
                                                                encoding="utf-8")
    return root / "texts"


def load(spec, base):
    from kerapipe.compiler.sources.loading import load_data

    return load_data(spec, base)


def texts_of(dataset) -> list:
    return [x.decode("utf-8") for x in dataset.as_numpy_iterator()]


# --- spec side ------------------------------------------------------------------------------

def test_text_source_shorthand_is_the_folder():
    spec = spec_of({"text": "texts"})
    assert spec.data.source.kind == "text" and spec.data.source.text.dir == "texts"


def test_text_source_fixes_one_string_per_example_and_classes_without_data():
    from kerapipe.spec.known_datasets import (example_shape_without_data,
                                              regression_without_data)

    source = spec_of({"text": {"dir": "texts"}}).data.source
    assert example_shape_without_data(source) == ()
    assert regression_without_data(source) is False


def test_validate_of_a_text_source_loads_no_tensorflow(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from kerapipe.spec.validate import validate_text; "
            "r = validate_text('kerapipe: 1\\ndata: {source: {text: texts}, preprocess: "
            "[{TextVectorization: {output_sequence_length: 8}}]}\\nmodel: "
            "{layers: [{Dense: {units: 2}}]}\\n', 'p.yaml'); "
            "print(r.ok(), 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "False"]


# --- loading --------------------------------------------------------------------------------

def test_classes_are_the_sorted_sub_folders_and_ids_the_paths_inside(tmp_path):
    text_folder(tmp_path, classes=("sport", "food", "space"), per_class=4)
    data = load(spec_of({"text": "texts"}, split={"validation": 0.25, "test": 0.25}), tmp_path)
    assert data.class_names == ["food", "space", "sport"]
    assert data.example_shape == ()
    ids = sorted(i for s in (data.train, data.validation, data.test) for i in s.ids.tolist())
    assert ids == sorted(f"{c}/{i:03d}.txt" for c in ("sport", "food", "space")
                         for i in range(4))
    assert "text:texts (12 texts, 3 classes)" == data.description


def test_the_dataset_yields_each_file_text_with_its_class(tmp_path):
    text_folder(tmp_path)
    data = load(spec_of({"text": "texts"}, split={"validation": 0.2, "test": 0.2}), tmp_path)
    source, split = data.source, data.train
    got = [(x.decode(), int(y)) for x, y in source.examples(split).as_numpy_iterator()]
    want = [(f"{Path(i).parent.name} text number {int(Path(i).stem)}",
             data.class_names.index(Path(i).parent.name)) for i in split.ids]
    assert got == want
    assert texts_of(source.features(split)) == [text for text, _ in want]
    element = source.features(split).element_spec
    assert element.dtype.name == "string" and element.shape.rank == 0


def test_shuffled_files_give_every_text_once_per_epoch(tmp_path):
    text_folder(tmp_path, per_class=6)
    data = load(spec_of({"text": "texts"}, split={"validation": 0.0, "test": 0.0}), tmp_path)
    ds = data.source.examples(data.train, shuffle_files=True, seed=3)
    epoch = sorted((x.decode(), int(y)) for x, y in ds.as_numpy_iterator())
    plain = sorted((x.decode(), int(y)) for x, y in
                   data.source.examples(data.train).as_numpy_iterator())
    assert epoch == plain and len(epoch) == 12


def test_files_in_deeper_folders_belong_to_their_class_and_other_files_are_passed_over(tmp_path):
    root = text_folder(tmp_path, per_class=2)
    (root / "pos" / "more").mkdir()
    (root / "pos" / "more" / "deep.txt").write_text("deep pos")
    (root / "pos" / "notes.md").write_text("not a text example")
    (root / "pos" / ".hidden.txt").write_text("hidden")
    (root / "loose.txt").write_text("belongs to no class")
    data = load(spec_of({"text": "texts"}, split={"validation": 0.0, "test": 0.0}), tmp_path)
    by_id = dict(zip(data.train.ids.tolist(), data.train.y.tolist()))
    assert by_id == {"neg/000.txt": 0, "neg/001.txt": 0, "pos/000.txt": 1, "pos/001.txt": 1,
                     "pos/more/deep.txt": 1}


def test_a_byte_order_mark_is_dropped_and_the_text_kept_as_written(tmp_path):
    root = text_folder(tmp_path, per_class=2)
    (root / "pos" / "000.txt").write_bytes("\ufeffcafé\r\nline two".encode("utf-8"))
    data = load(spec_of({"text": "texts"}, split={"validation": 0.0, "test": 0.0}), tmp_path)
    texts = dict(zip(data.train.ids.tolist(), texts_of(data.source.features(data.train))))
    assert texts["pos/000.txt"] == "café\r\nline two"


def test_the_fingerprint_changes_with_a_file_content(tmp_path):
    root = text_folder(tmp_path)
    spec = spec_of({"text": "texts"})
    before = load(spec, tmp_path).fingerprint
    (root / "neg" / "000.txt").write_text("changed")
    assert load(spec, tmp_path).fingerprint != before


# --- hostile and empty folders --------------------------------------------------------------

def refusal(tmp_path) -> str:
    with pytest.raises(DataError) as err:
        load(spec_of({"text": "texts"}), tmp_path)
    return str(err.value)


def test_a_link_out_of_the_folder_is_refused(tmp_path):
    root = text_folder(tmp_path)
    outside = tmp_path / "secret.txt"
    outside.write_text("private")
    os.symlink(outside, root / "pos" / "leak.txt")
    message = refusal(tmp_path)
    assert "leak.txt is a symbolic link to" in message and "outside the data folder" in message


def test_a_linked_class_folder_out_of_the_folder_is_refused(tmp_path):
    root = text_folder(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", root / "other")
    assert "outside the data folder" in refusal(tmp_path)


def test_a_file_over_the_bound_is_named_with_the_bound(tmp_path, monkeypatch):
    from kerapipe.compiler.sources import text_folder as module

    root = text_folder(tmp_path)
    (root / "neg" / "big.txt").write_text("x" * 2048)
    monkeypatch.setattr(module, "MAX_TEXT_FILE_BYTES", 1024)
    message = refusal(tmp_path)
    assert "big.txt" in message and "kerapipe reads from one such file" in message


def test_a_file_that_is_not_utf8_is_named_with_its_bytes(tmp_path):
    root = text_folder(tmp_path)
    (root / "pos" / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    message = refusal(tmp_path)
    assert "latin.txt is not UTF-8 text (the bytes b'\\xe9' at byte 4)" in message
    assert "iconv" in message


def test_a_fifo_named_like_a_text_is_refused(tmp_path):
    root = text_folder(tmp_path)
    os.mkfifo(root / "pos" / "pipe.txt")
    assert "not a regular file" in refusal(tmp_path)


@pytest.mark.parametrize("make, expected", [
    (lambda root: (root / "texts").mkdir(), "no class sub-folders"),
    (lambda root: [(root / "texts").mkdir(), (root / "texts" / "a.txt").write_text("x")],
     "It holds 1 .txt files but no sub-folders"),
    (lambda root: [(root / "texts" / "a").mkdir(parents=True),
                   (root / "texts" / "a" / "x.md").write_text("x")],
     "no .txt files in the class folders (a)"),
    (lambda root: None, "no such folder"),
], ids=["empty-folder", "loose-files", "no-txt", "missing"])
def test_an_empty_or_missing_folder_is_explained(tmp_path, make, expected):
    make(tmp_path)
    assert expected in refusal(tmp_path)


def test_an_empty_class_folder_is_named(tmp_path):
    root = text_folder(tmp_path)
    (root / "unused").mkdir()
    message = refusal(tmp_path)
    assert "the class folder unused holds no .txt files" in message


def test_the_file_count_is_bounded(tmp_path, monkeypatch):
    from kerapipe.compiler.sources import text_folder as module

    text_folder(tmp_path, per_class=3)
    monkeypatch.setattr(module, "MAX_TEXT_FILES", 5)
    assert "holds more than 5 .txt files" in refusal(tmp_path)


def test_pad_sequences_on_texts_is_refused(tmp_path):
    text_folder(tmp_path)
    spec = spec_of({"text": "texts"}, preprocess=[{"pad_sequences": 4}, *VECTORIZE])
    with pytest.raises(DataError, match="pad_sequences applies to sequences, not texts"):
        load(spec, tmp_path)


# --- predict's inputs -----------------------------------------------------------------------

def source(tmp_path):
    from kerapipe.compiler.sources import source_for

    return source_for(spec_of({"text": "texts"}), tmp_path)


def test_predict_reads_a_folder_of_texts_at_any_depth(tmp_path):
    inputs = tmp_path / "inputs"
    (inputs / "a" / "b").mkdir(parents=True)
    (inputs / "top.txt").write_text("\ufefftop")
    (inputs / "a" / "b" / "deep.txt").write_text("deep")
    (inputs / "a" / "skip.md").write_text("not read")
    x, ids = source(tmp_path).read_inputs(inputs)
    assert dict(zip(ids, x.tolist())) == {"top.txt": "top", "a/b/deep.txt": "deep"}


def test_predict_reads_one_example_a_line_with_line_numbers_as_ids(tmp_path):
    lines = tmp_path / "inputs.txt"
    lines.write_bytes("\ufefffirst one\r\n\n   \nsecond\nthird".encode())
    x, ids = source(tmp_path).read_inputs(lines)
    assert x.tolist() == ["first one", "second", "third"] and ids == ["1", "4", "5"]


@pytest.mark.parametrize("content, expected", [
    (b"ok\ncaf\xe9\n", "inputs.txt, line 2: not UTF-8 text"),
    (b"\n \n", "holds no text to predict"),
], ids=["not-utf8", "blank"])
def test_predict_refuses_a_lines_file_it_cannot_read(tmp_path, content, expected):
    (tmp_path / "inputs.txt").write_bytes(content)
    with pytest.raises(DataError, match=expected):
        source(tmp_path).read_inputs(tmp_path / "inputs.txt")


def test_predict_passes_over_a_link_out_of_its_folder(tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "in.txt").write_text("inside")
    (tmp_path / "secret.txt").write_text("private")
    os.symlink(tmp_path / "secret.txt", inputs / "leak.txt")
    x, ids = source(tmp_path).read_inputs(inputs)
    assert ids == ["in.txt"] and x.tolist() == ["inside"]


def test_predict_refuses_another_kind_of_file_for_a_text_run(tmp_path):
    (tmp_path / "x.csv").write_text("a\n1\n")
    with pytest.raises(DataError, match="trained on texts; give a folder of .txt files"):
        source(tmp_path).read_inputs(tmp_path / "x.csv")


def test_predict_text_arrays_are_object_arrays_of_str(tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "a.txt").write_text("hello")
    x, _ = source(tmp_path).read_inputs(inputs)
    assert x.dtype == object and isinstance(x[0], str) and np.asarray(x).shape == (1,)


# --- string arrays in npz -------------------------------------------------------------------

def test_a_string_array_in_npz_is_split_and_read_as_strings(tmp_path):
    texts = np.array([f"text {i} é" for i in range(10)])
    np.savez(tmp_path / "t.npz", x=texts, y=np.arange(10) % 2)
    data = load(spec_of({"npz": "t.npz"}, split={"validation": 0.2, "test": 0.2}), tmp_path)
    assert data.example_shape == ()
    split = data.train
    got = [(x.decode(), int(y)) for x, y in data.source.examples(split).as_numpy_iterator()]
    assert got == [(f"text {i} é", i % 2) for i in split.ids.tolist()]


def test_a_bytes_array_and_a_column_of_strings_are_texts_too(tmp_path):
    np.savez(tmp_path / "t.npz", x=np.array([[b"a"], [b"b"], [b"c"], [b"d"]]), y=[0, 1, 0, 1])
    data = load(spec_of({"npz": "t.npz"}, split={"validation": 0.0, "test": 0.0}), tmp_path)
    assert data.train.x.shape == (4,) and data.example_shape == ()
    assert sorted(texts_of(data.source.features(data.train))) == ["a", "b", "c", "d"]


@pytest.mark.parametrize("x, expected", [
    (np.array([b"ok", b"caf\xe9"]), r"'x'\[1\] is not UTF-8 text"),
    (np.array(["ok", "bad\ud800"]), r"'x'\[1\] holds a lone surrogate"),
    (np.array([["a", "b"], ["c", "d"]]), r"holds strings of shape \(2, 2\)"),
], ids=["bytes-not-utf8", "surrogate", "two-columns"])
def test_a_string_array_that_is_no_text_per_example_is_refused(tmp_path, x, expected):
    np.savez(tmp_path / "t.npz", x=x, y=np.arange(len(x)) % 2)
    with pytest.raises(DataError, match=expected):
        load(spec_of({"npz": "t.npz"}), tmp_path)


def test_an_object_array_of_strings_is_never_unpickled_and_the_u_dtype_named(tmp_path):
    np.savez(tmp_path / "t.npz", x=np.array(["a", "b"], dtype=object), y=[0, 1])
    with pytest.raises(DataError) as err:
        load(spec_of({"npz": "t.npz"}), tmp_path)
    assert "does not unpickle" in str(err.value)
    assert "a string array of dtype 'U' (numpy.array(texts, dtype=str))" in str(err.value)


def test_predict_reads_a_string_array_from_npz(tmp_path):
    from kerapipe.compiler.sources import source_for

    np.savez(tmp_path / "in.npz", x=np.array(["one", "two"]))
    vectorize = [{"TextVectorization": {"max_tokens": 10, "output_sequence_length": 2}}]
    found = source_for(spec_of({"npz": "t.npz"}, preprocess=vectorize), tmp_path)
    x, ids = found.read_inputs(tmp_path / "in.npz")
    assert x.tolist() == ["one", "two"] and ids == ["0", "1"]
    assert x.dtype == object  # Keras's predict takes no 'U' array
    x, ids = source(tmp_path).read_inputs(tmp_path / "in.npz")  # a text folder's run too
    assert x.tolist() == ["one", "two"]


def test_predict_of_a_text_run_refuses_an_npz_of_numbers(tmp_path):
    np.savez(tmp_path / "in.npz", x=np.zeros((2, 3)))
    with pytest.raises(DataError, match="trained on texts, but the array holds float64"):
        source(tmp_path).read_inputs(tmp_path / "in.npz")


def test_predict_of_a_numeric_npz_run_refuses_strings(tmp_path):
    from kerapipe.compiler.sources import source_for

    np.savez(tmp_path / "in.npz", x=np.array(["one", "two"]))
    with pytest.raises(DataError, match="model inputs must be numbers"):
        source_for(spec_of({"npz": "t.npz"}, preprocess=[]), tmp_path).read_inputs(
            tmp_path / "in.npz")


# --- end to end: run, predict, the saved model ----------------------------------------------

TEXT_PIPELINE = """\
kerapipe: 1
name: texts
seed: 5
data:
  source: {text: texts}
  split: {validation: 0.2, test: 0.3}
  batch_size: 8
  preprocess:
    - TextVectorization: {max_tokens: 50, output_sequence_length: 6}
model:
  layers:
    - Embedding: {input_dim: 50, output_dim: 8}
    - GlobalAveragePooling1D: {}
    - Dense: {units: 2}
loss: {name: sparse_categorical_crossentropy, from_logits: true}
optimizer: {name: adam, learning_rate: 0.05}
train: {epochs: 3}
"""
WORDS = {"neg": ["awful", "dull", "bad", "boring"], "pos": ["great", "fine", "good", "fun"]}


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    from kerapipe.cli import main

    folder = tmp_path_factory.mktemp("text-run")
    for label, words in WORDS.items():
        (folder / "texts" / label).mkdir(parents=True)
        for i in range(10):
            text = f"the film was {words[i % 4]} and {words[(i + 1) % 4]}"
            (folder / "texts" / label / f"{i:02d}.txt").write_text(text)
    (folder / "p.yaml").write_text(TEXT_PIPELINE)
    try:
        main(["run", str(folder / "p.yaml"), "--output", str(folder / "runs")])
    except SystemExit as exit_:
        assert exit_.code == 0
    (run_dir,) = (folder / "runs").iterdir()
    return folder, run_dir


def run_predictions(run_dir: Path) -> dict[str, int]:
    import csv

    with open(run_dir / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    return {row["input"]: int(row["predicted"]) for row in rows}


def predicted(out: str) -> dict[str, int]:
    import csv
    import io

    return {row["input"]: int(row["predicted"]) for row in csv.DictReader(io.StringIO(out))}


def test_a_run_on_a_text_folder_names_each_test_file(text_run):
    _, run_dir = text_run
    ids = run_predictions(run_dir)
    assert len(ids) == 6 and all(Path(i).parent.name in WORDS for i in ids)


def test_predict_on_the_text_folder_gives_the_runs_own_predictions(text_run, call_main):
    folder, run_dir = text_run
    code, out, err = call_main("predict", run_dir, folder / "texts")
    assert code == 0, out + err
    mine = predicted(out)
    assert len(mine) == 20
    expected = run_predictions(run_dir)
    assert {path: mine[path] for path in expected} == expected


def test_predict_on_a_file_of_lines_gives_the_runs_own_predictions(text_run, call_main,
                                                                   tmp_path):
    folder, run_dir = text_run
    expected = run_predictions(run_dir)
    order = sorted(expected)
    lines = tmp_path / "lines.txt"
    lines.write_text("\n".join((folder / "texts" / i).read_text() for i in order) + "\n")
    code, out, err = call_main("predict", run_dir, lines)
    assert code == 0, out + err
    mine = predicted(out)
    assert [mine[str(n)] for n in range(1, len(order) + 1)] == [expected[i] for i in order]


def test_the_saved_model_takes_raw_strings_in_safe_mode(text_run, in_plain_keras):
    _, run_dir = text_run
    line = in_plain_keras(run_dir / "model.keras",
                          "import tensorflow as tf\n"
                          "out = model.predict(tf.constant(['the film was great and fun']), "
                          "verbose=0)\nprint(out.shape, 'kerapipe' in sys.modules)")
    assert line == "(1, 2) False"


def test_a_run_on_npz_strings_predicts_its_own_test_texts(tmp_path, call_main):
    texts = [f"the film was {WORDS[label][i % 4]}" for label in WORDS for i in range(8)]
    labels = [index for index in range(2) for _ in range(8)]
    np.savez(tmp_path / "t.npz", x=np.array(texts), y=np.array(labels))
    (tmp_path / "p.yaml").write_text(TEXT_PIPELINE.replace("{text: texts}", "{npz: t.npz}"))
    code, out, err = call_main("run", tmp_path / "p.yaml", "--output", tmp_path / "runs")
    assert code == 0, out + err
    (run_dir,) = (tmp_path / "runs").iterdir()
    expected = run_predictions(run_dir)
    order = sorted(expected, key=int)
    np.savez(tmp_path / "in.npz", x=np.array([texts[int(i)] for i in order]))
    code, out, err = call_main("predict", run_dir, tmp_path / "in.npz")
    assert code == 0, out + err
    mine = predicted(out)
    assert [mine[str(n)] for n in range(len(order))] == [expected[i] for i in order]
