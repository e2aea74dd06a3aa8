"""Hostile data that `kerapipe init` refuses and a hand-written pipeline still reaches in
`kerapipe run`: each gives a data error (exit 3) naming the file and what is wrong, never
an internal error (exit 1) or TensorFlow's message (exit 4).

- .npz string labels: UTF-8 bytes (dtype 'S') are class names (``astype(str)`` read ASCII
  only); bytes that are not UTF-8, and unicode labels holding a lone surrogate (no
  class-names file can hold one), are refused where the labels are read;
- a CSV column name holding a NUL byte (a saved model cannot hold it in a name);
- training texts that are all empty or blank (TextVectorization learns no vocabulary).
"""

from __future__ import annotations

import numpy as np
import pytest

from kerapipe import load_spec
from kerapipe.compiler.sources.loading import load_data
from kerapipe.errors import DataError

UTF8_NAMES = [b"caf\xc3\xa9", b"th\xc3\xa9", b"eau"]  # café, thé, eau
VECTORIZE = [{"TextVectorization": {"max_tokens": 50, "output_sequence_length": 8}}]


def x_of(n: int = 30) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 4)).astype("float32")


def spec_of(source: dict, units: int = 3, **top) -> object:
    data = {"source": source, **top.pop("data", {})}
    return load_spec({"kerapipe": 1, "data": data,
                      "model": {"layers": [{"Dense": {"units": units, **top.pop("last", {})}}]},
                      **top})


def npz_spec(**data):
    return spec_of({"npz": "data.npz"}, data=data)


def refusal(spec, folder) -> str:
    with pytest.raises(DataError) as raised:
        load_data(spec, folder)
    return str(raised.value)


# --- 1. .npz string labels --------------------------------------------------------------

def test_utf8_byte_labels_are_class_names(tmp_path):
    np.savez(tmp_path / "data.npz", x=x_of(), y=np.array(UTF8_NAMES * 10))
    data = load_data(npz_spec(), tmp_path)
    assert data.class_names == ["café", "eau", "thé"]
    assert sorted(set(data.train.y.tolist())) == [0, 1, 2]


def test_utf8_byte_labels_of_a_test_split_are_decoded_alike(tmp_path):
    np.savez(tmp_path / "data.npz", x_train=x_of(), y_train=np.array(UTF8_NAMES * 10),
             x_test=x_of(6), y_test=np.array(UTF8_NAMES[::-1] * 2))
    data = load_data(npz_spec(), tmp_path)
    assert data.class_names == ["café", "eau", "thé"]
    assert data.test.y.tolist() == [1, 2, 0] * 2


def test_utf8_byte_labels_are_two_classes_of_binary_labels(tmp_path):
    np.savez(tmp_path / "data.npz", x=x_of(), y=np.array(UTF8_NAMES[:2] * 15))
    spec = spec_of({"npz": "data.npz"}, units=1, last={"activation": "sigmoid"},
                   loss="binary_crossentropy", data={"labels": "binary"})
    data = load_data(spec, tmp_path)
    assert data.class_names == ["café", "thé"]


def test_utf8_byte_label_sets_are_multi_label_names(tmp_path):
    sets = np.array([b"caf\xc3\xa9|th\xc3\xa9", b"eau", b"th\xc3\xa9"] * 10)
    np.savez(tmp_path / "data.npz", x=x_of(), y=sets)
    spec = spec_of({"npz": "data.npz"}, last={"activation": "sigmoid"},
                   loss="binary_crossentropy", data={"labels": "multi_label"})
    data = load_data(spec, tmp_path)
    assert data.class_names == ["café", "eau", "thé"]


@pytest.mark.parametrize("labels, data, says", [
    (np.array([b"caf\xe9", b"th\xc3\xa9", b"eau"] * 10), {},
     "data.npz: 'y'[0] is not UTF-8 text (the bytes b'\\xe9' at byte 4)"),
    (np.array(["a\ud800", "b", "c"] * 10), {},
     "data.npz: 'y'[0] holds a lone surrogate character"),
    (np.array(["b", "c", "a\udfff"] * 10), {"labels": "multi_label"},
     "data.npz: 'y'[2] holds a lone surrogate character"),
], ids=["latin1-bytes", "lone-surrogate", "lone-surrogate-multi-label"])
def test_labels_that_are_no_text_are_refused_where_they_are_read(tmp_path, labels, data,
                                                                 says):
    np.savez(tmp_path / "data.npz", x=x_of(), y=labels)
    top = {"last": {"activation": "sigmoid"}, "loss": "binary_crossentropy"} if data else {}
    assert says in refusal(spec_of({"npz": "data.npz"}, data=data, **top), tmp_path)


def test_a_binary_label_with_a_lone_surrogate_is_refused(tmp_path):
    np.savez(tmp_path / "data.npz", x=x_of(), y=np.array(["a", "b\ud800"] * 15))
    spec = spec_of({"npz": "data.npz"}, units=1, last={"activation": "sigmoid"},
                   loss="binary_crossentropy", data={"labels": "binary"})
    assert "data.npz: 'y'[1] holds a lone surrogate character" in refusal(spec, tmp_path)


def test_a_run_on_utf8_byte_labels_writes_their_class_names(tmp_path, call_main):
    import json

    np.savez(tmp_path / "data.npz", x=x_of(), y=np.array(UTF8_NAMES * 10))
    (tmp_path / "p.yaml").write_text(
        "kerapipe: 1\nname: p\ndata:\n  source: {npz: data.npz}\n  batch_size: 8\n"
        "model:\n  layers: [{Dense: {units: 3}}]\ntrain: {epochs: 1}\n", encoding="utf-8")
    code, out, err = call_main("run", tmp_path / "p.yaml", "--output", tmp_path / "runs")
    assert code == 0, out + err
    (record,) = (tmp_path / "runs").glob("*/run.json")
    assert "café" in json.dumps(json.loads(record.read_text("utf-8")), ensure_ascii=False)


# --- 2. a CSV column name holding a NUL byte ---------------------------------------------

@pytest.mark.parametrize("header, says", [
    ("a\0b,label", "data.csv, line 1: the name of column 1 ('a\\x00b') holds a NUL byte"),
    ("a,label\0", "data.csv, line 1: the name of column 2 ('label\\x00') holds a NUL byte"),
], ids=["feature", "label"])
def test_a_csv_column_name_holding_a_nul_byte_is_refused(tmp_path, header, says):
    (tmp_path / "data.csv").write_text(header + "\n" + "".join(f"{i},{i % 2}\n"
                                                                for i in range(30)))
    message = refusal(spec_of({"csv": {"path": "data.csv", "label": "label"}}), tmp_path)
    assert says in message and "Rename the column" in message


def test_a_typed_csv_feature_name_holding_a_nul_byte_is_refused(tmp_path):
    (tmp_path / "data.csv").write_text("x\0,label\n" + "".join(f"{i},{i % 2}\n"
                                                              for i in range(30)))
    spec = spec_of({"csv": {"path": "data.csv", "label": "label",
                            "features": ["x\0"]}})
    assert "the name of column 1 ('x\\x00') holds a NUL byte" in refusal(spec, tmp_path)


def test_a_run_on_a_csv_column_name_holding_a_nul_byte_exits_3(tmp_path, call_main):
    (tmp_path / "data.csv").write_text("a\0b,label\n" + "".join(f"{i},{i % 2}\n"
                                                               for i in range(30)))
    (tmp_path / "p.yaml").write_text(
        "kerapipe: 1\nname: p\ndata:\n  source: {csv: {path: data.csv, label: label}}\n"
        "model:\n  layers: [{Dense: {units: 2}}]\ntrain: {epochs: 1}\n")
    code, out, err = call_main("run", tmp_path / "p.yaml", "--output", tmp_path / "runs")
    assert code == 3, out + err
    assert "holds a NUL byte" in err and "Traceback" not in out + err


# --- 3. training texts that are all empty ------------------------------------------------

def text_folder(root, text: str):
    for label in ("neg", "pos"):
        (root / "texts" / label).mkdir(parents=True)
        for i in range(5):
            (root / "texts" / label / f"{i}.txt").write_text(text, encoding="utf-8")


@pytest.mark.parametrize("text", ["", " \n\t", "\ufeff"], ids=["empty", "blank", "bom-only"])
def test_a_text_folder_of_empty_texts_is_refused(tmp_path, text):
    text_folder(tmp_path, text)
    message = refusal(spec_of({"text": "texts"}, units=2, data={"preprocess": VECTORIZE}),
                      tmp_path)
    assert message.startswith("texts: every text is empty: no vocabulary can be learned")
    assert "its 10 .txt files" in message


def test_a_text_folder_with_one_word_is_read(tmp_path):
    text_folder(tmp_path, "")
    (tmp_path / "texts" / "pos" / "0.txt").write_text("word")
    data = load_data(spec_of({"text": "texts"}, units=2, data={"preprocess": VECTORIZE}),
                     tmp_path)
    assert data.class_names == ["neg", "pos"]


@pytest.mark.parametrize("texts", [np.array([""] * 30), np.array([b" "] * 30)],
                         ids=["unicode", "bytes"])
def test_npz_training_texts_all_empty_are_refused(tmp_path, texts):
    np.savez(tmp_path / "data.npz", x=texts, y=np.arange(30) % 2)
    spec = spec_of({"npz": "data.npz"}, units=2, data={"preprocess": VECTORIZE})
    message = refusal(spec, tmp_path)
    assert message.startswith("data.npz: every text is empty: no vocabulary can be learned")
    assert "the 30 texts of 'x'" in message


def test_npz_texts_with_a_given_vocabulary_need_no_words(tmp_path):
    np.savez(tmp_path / "data.npz", x=np.array([""] * 30), y=np.arange(30) % 2)
    step = [{"TextVectorization": {"vocabulary": ["a", "b"], "output_sequence_length": 8}}]
    data = load_data(spec_of({"npz": "data.npz"}, units=2, data={"preprocess": step}),
                     tmp_path)
    assert len(data.train.y)


def test_a_run_on_a_text_folder_of_empty_texts_exits_3(tmp_path, call_main):
    text_folder(tmp_path, "")
    (tmp_path / "p.yaml").write_text(
        "kerapipe: 1\nname: p\ndata:\n  source: {text: texts}\n  preprocess: "
        "[{TextVectorization: {max_tokens: 50, output_sequence_length: 8}}]\nmodel:\n"
        "  layers: [{Embedding: {input_dim: 50, output_dim: 4}}, "
        "{GlobalAveragePooling1D: {}}, {Dense: {units: 2}}]\ntrain: {epochs: 1}\n")
    code, out, err = call_main("run", tmp_path / "p.yaml", "--output", tmp_path / "runs")
    assert code == 3, out + err
    assert "every text is empty: no vocabulary can be learned" in err
    assert "Table not initialized" not in out + err


@pytest.mark.parametrize("mode", ["int", "tf_idf"])
def test_a_run_on_texts_of_punctuation_only_exits_3(tmp_path, call_main, mode):
    """Past the load-time check (the texts are not empty), TextVectorization's own
    standardize leaves no token: a clear data error, not TensorFlow's "Table not
    initialized" (exit 4) or a Keras refusal taken for a spec error (exit 2)."""
    text_folder(tmp_path, "!!! ... ?")
    head = "[{Embedding: {input_dim: 50, output_dim: 4}}, {GlobalAveragePooling1D: {}}, "
    layers = head + "{Dense: {units: 2}}]" if mode == "int" else "[{Dense: {units: 2}}]"
    length = ", output_sequence_length: 8" if mode == "int" else ""
    (tmp_path / "p.yaml").write_text(
        "kerapipe: 1\nname: p\ndata:\n  source: {text: texts}\n  preprocess: "
        f"[{{TextVectorization: {{max_tokens: 50, output_mode: {mode}{length}}}}}]\n"
        f"model:\n  layers: {layers}\ntrain: {{epochs: 1}}\n")
    code, out, err = call_main("run", tmp_path / "p.yaml", "--output", tmp_path / "runs")
    assert code == 3, out + err
    assert "data.preprocess[0] (TextVectorization)" in err and "learns no vocabulary" in err
    assert "Table not initialized" not in out + err and "Traceback" not in out + err
