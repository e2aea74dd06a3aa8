"""The data sources (kerapipe/compiler/sources/): one interface, one dispatch point, the id
each example carries, and the one image-folder indexer.

Data is tiny and generated into tmp_path; keras.datasets is monkeypatched (no download).
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from kerapipe import load_spec
from kerapipe.errors import DataError

ROOT = Path(__file__).resolve().parent.parent


def spec_of(source: dict, units: int = 2, **data):
    return load_spec({"kerapipe": 1, "data": {"source": source, **data},
                      "model": {"layers": [{"Flatten": {}}, {"Dense": {"units": units}}]}})


def png(value: int, size: int = 4) -> bytes:
    import tensorflow as tf

    return tf.io.encode_png(tf.fill((size, size, 3), tf.constant(value, tf.uint8))).numpy()


def csv_file(folder: Path, text: str) -> Path:
    (folder / "data.csv").write_text(text)
    return folder / "data.csv"


def image_folder(root: Path, per_class: int = 4) -> Path:
    for label in ("cat", "dog"):
        (root / "pics" / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            (root / "pics" / label / f"{i}.png").write_bytes(png(30 * i + 100 * (label == "dog")))
    return root / "pics"


def all_ids(data) -> list:
    return [i for split in (data.train, data.validation, data.test) if split is not None
            for i in split.ids.tolist()]


def load(spec, base):
    from kerapipe.compiler.sources.loading import load_data

    return load_data(spec, base)


# --- one dispatch point ---------------------------------------------------------------------

def test_every_source_kind_of_the_spec_has_one_registered_source():
    from kerapipe.compiler.sources import _KINDS
    from kerapipe.spec.model import SourceSpec

    kinds = [f.name for f in dataclasses.fields(SourceSpec)]
    assert sorted(_KINDS) == sorted(kinds)


@pytest.mark.parametrize("source, kind, cls", [
    ({"sample": "mnist"}, "sample", "SampleSource"),
    ({"keras": "mnist"}, "keras", "KerasDatasetSource"),
    ({"npz": "d.npz"}, "npz", "NpzFileSource"),
    ({"csv": {"path": "d.csv", "label": "y"}}, "csv", "CsvFileSource"),
    ({"images": "pics"}, "images", "ImageFolderSource"),
], ids=["sample", "keras", "npz", "csv", "images"])
def test_source_for_gives_the_source_of_each_kind(source, kind, cls):
    from kerapipe.compiler.sources import Source, source_for

    found = source_for(spec_of(source, units=10), "/base")
    assert isinstance(found, Source) and type(found).__name__ == cls
    assert found.kind == kind and found.base_dir == "/base"


# Modules other than the sources package and the spec side's facts that still read the
# source kind, and why. Each entry must still be needed, so a fixed one is deleted here.
STILL_BRANCHING: dict[str, str] = {}  # every branch has moved to a source
ALLOWED = ("kerapipe/compiler/sources/", "kerapipe/spec/known_datasets.py",
           "kerapipe/spec/model.py")  # model.py declares the kinds (SourceSpec)
KINDS = ("sample", "keras", "npz", "csv", "images")


def branches_on_the_source_kind(path: Path) -> bool:
    """Whether a module reads ``<...>.source.<kind>``, ``.kind`` of a source, or
    ``is_images``: what a module that branches on the source kind does."""
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Attribute):
            owner = node.value
            owner_name = (owner.attr if isinstance(owner, ast.Attribute)
                          else getattr(owner, "id", ""))
            if node.attr == "is_images":
                return True
            if owner_name == "source" and (node.attr in KINDS or node.attr == "kind"):
                return True
    return False


def test_no_module_outside_the_sources_branches_on_the_source_kind():
    found = {str(path.relative_to(ROOT)) for path in (ROOT / "kerapipe").rglob("*.py")
             if not str(path.relative_to(ROOT)).startswith(ALLOWED)
             and branches_on_the_source_kind(path)}
    assert found <= set(STILL_BRANCHING), ("new branches on the source kind: "
                                           f"{found - set(STILL_BRANCHING)}")
    assert found == set(STILL_BRANCHING), ("fixed: delete from STILL_BRANCHING: "
                                           f"{set(STILL_BRANCHING) - found}")


# --- the interface, per kind ---------------------------------------------------------------

def test_arrays_are_read_in_tf_data_as_loaded(tmp_path):
    x = np.arange(20, dtype="float32").reshape(10, 2)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(10) % 2)
    data = load(spec_of({"npz": "d.npz"}, split={"validation": 0.2, "test": 0.2}), tmp_path)
    got = np.stack([v.numpy() for v in data.source.features(data.train)])
    assert np.array_equal(got, x[data.train.ids])


def test_csv_rows_are_read_in_tf_data_in_file_order_by_their_ids(tmp_path):
    csv_file(tmp_path, "a,label,b\n" + "".join(f"{i},{i % 2},{10 * i}\n" for i in range(12)))
    data = load(spec_of({"csv": {"path": "data.csv", "label": "label"}}), tmp_path)
    rows = [v.numpy().tolist() for v in data.source.features(data.train)]
    lines = data.train.ids.tolist()
    assert lines == sorted(lines)
    assert rows == [[line - 2, 10 * (line - 2)] for line in lines]
    assert data.feature_names == ["a", "b"]


def test_images_are_decoded_in_tf_data_and_their_ids_are_paths_in_the_folder(tmp_path):
    image_folder(tmp_path)
    data = load(spec_of({"images": {"dir": "pics", "image_size": [4, 4]}}), tmp_path)
    assert sorted(all_ids(data)) == sorted(f"{c}/{i}.png" for c in ("cat", "dog")
                                           for i in range(4))
    for path, identity in zip(data.train.x, data.train.ids):
        assert Path(path).relative_to(tmp_path / "pics").as_posix() == identity
    images = [v.numpy() for v in data.source.features(data.train)]
    assert images[0].shape == (4, 4, 3)


def test_a_source_that_decodes_nothing_explains_no_decode_failure(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((6, 2), "float32"), y=np.arange(6) % 2)
    data = load(spec_of({"npz": "d.npz"}), tmp_path)
    assert data.source.explain_decode_failure(data, "Invalid PNG data", "training") is None


def test_an_image_source_names_the_file_tf_data_could_not_decode(tmp_path):
    image_folder(tmp_path)
    data = load(spec_of({"images": {"dir": "pics", "image_size": [4, 4]}}), tmp_path)
    bad = data.train.x[0]
    content = Path(bad).read_bytes()
    start = content.index(b"IDAT") + 8  # damaged inside, after the first pass checked it
    Path(bad).write_bytes(content[:start] + bytes(b ^ 0xFF for b in content[start:start + 8])
                          + content[start + 8:])
    error = data.source.explain_decode_failure(data, "Invalid PNG data", "training")
    assert isinstance(error, DataError) and f"{bad} cannot be decoded" in str(error)
    assert data.source.explain_decode_failure(data, "labels out of range", "training") is None


def test_pad_sequences_applies_to_arrays_only(tmp_path):
    csv_file(tmp_path, "a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(10)))
    spec = spec_of({"csv": {"path": "data.csv", "label": "label"}},
                   preprocess=[{"pad_sequences": 3}])
    with pytest.raises(DataError, match="pad_sequences applies to sequences, not CSV columns"):
        load(spec, tmp_path)


# --- ids -----------------------------------------------------------------------------------

def test_npz_ids_are_positions_in_the_arrays_before_shuffling(tmp_path):
    x = np.arange(30, dtype="float32").reshape(30, 1)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(30) % 3)
    data = load(spec_of({"npz": "d.npz"}, split={"validation": 0.2, "test": 0.2}), tmp_path)
    assert sorted(all_ids(data)) == list(range(30))
    for split in (data.train, data.validation, data.test):
        assert np.array_equal(split.x[:, 0], split.ids)  # x[i] == i: the id is the position


def test_a_test_split_of_the_source_counts_its_own_positions(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=np.zeros((10, 2), "float32"), y_train=np.arange(10) % 2,
             x_test=np.zeros((4, 2), "float32"), y_test=np.arange(4) % 2)
    data = load(spec_of({"npz": "d.npz"}), tmp_path)
    assert data.test.ids.tolist() == [0, 1, 2, 3]


def test_csv_ids_are_file_lines_blank_lines_counted(tmp_path):
    csv_file(tmp_path, "a,label\n1,0\n\n2,1\n3,0\n4,1\n5,0\n6,1\n")
    data = load(spec_of({"csv": {"path": "data.csv", "label": "label"}},
                        split={"validation": 0.2, "test": 0.2}), tmp_path)
    assert sorted(all_ids(data)) == [2, 4, 5, 6, 7, 8]


def test_a_csv_id_column_names_the_rows_and_is_never_a_feature(tmp_path):
    csv_file(tmp_path, "key,a,label\n" + "".join(f"k{i},{i},{i % 2}\n" for i in range(10)))
    data = load(spec_of({"csv": {"path": "data.csv", "label": "label", "id_column": "key"}}),
                tmp_path)
    assert sorted(all_ids(data)) == sorted(f"k{i}" for i in range(10))
    assert data.feature_names == ["a"] and data.example_shape == (1,)


def test_a_missing_id_column_is_refused_with_a_suggestion(tmp_path):
    csv_file(tmp_path, "key,a,label\n" + "".join(f"k{i},{i},{i % 2}\n" for i in range(10)))
    with pytest.raises(DataError, match="no id column 'kye'. Did you mean 'key'"):
        load(spec_of({"csv": {"path": "data.csv", "label": "label", "id_column": "kye"}}),
             tmp_path)


@pytest.mark.parametrize("options, says", [
    ({"id_column": "label"}, "cannot also be the label"),
    ({"id_column": "key", "features": ["key", "a"]}, "never a feature"),
], ids=["the-label", "a-feature"])
def test_an_id_column_that_is_the_label_or_a_feature_is_refused_by_validate(options, says):
    from kerapipe.spec.validate import validate_data

    result = validate_data({"kerapipe": 1, "data": {"source": {"csv": {
        "path": "d.csv", "label": "label", **options}}}, "model": {"layers": [
            {"Dense": {"units": 2}}]}}, "p.yaml")
    assert [(i.code, i.path[-1]) for i in result.errors] == [("not-applicable", "id_column")]
    assert says in result.errors[0].message


def test_predict_ids_are_of_the_kind_the_splits_carry(tmp_path):
    from kerapipe.compiler.sources import source_for

    csv_file(tmp_path, "key,a,label\n" + "".join(f"k{i},{i},{i % 2}\n" for i in range(6)))
    keyed = source_for(spec_of({"csv": {"path": "data.csv", "label": "label",
                                        "id_column": "key"}}), tmp_path)
    x, ids = keyed.read_inputs(tmp_path / "data.csv")
    assert ids == [f"k{i}" for i in range(6)] and x[:, 0].tolist() == list(range(6))
    (tmp_path / "plain.csv").write_text("a,b,label\n" + "1,2,0\n" * 6)
    plain = source_for(spec_of({"csv": {"path": "plain.csv", "label": "label"}}), tmp_path)
    x, ids = plain.read_inputs(tmp_path / "plain.csv")  # no id column: line numbers
    assert ids == [str(line) for line in range(2, 8)] and x.shape == (6, 2)


# --- one image-folder indexer ----------------------------------------------------------------

def test_training_and_predict_list_an_image_folder_by_the_one_indexer(tmp_path):
    from kerapipe.compiler.sources import source_for
    from kerapipe.compiler.sources.image_folder import index_image_folder

    pics = image_folder(tmp_path, per_class=3)
    (pics / "loose.png").write_bytes(png(5))  # no class: listed for predict only
    (pics / "dog" / "deeper").mkdir()
    (pics / "dog" / "deeper" / "x.png").write_bytes(png(7))
    spec = spec_of({"images": {"dir": "pics", "image_size": [4, 4]}},
                   split={"validation": 0, "test": 0})
    data = load(spec, tmp_path)
    training = index_image_folder(pics, classes_only=True)
    assert sorted(data.train.x.tolist()) == sorted(training.paths)
    assert training.ids == ["cat/0.png", "cat/1.png", "cat/2.png", "dog/0.png", "dog/1.png",
                            "dog/2.png", "dog/deeper/x.png"]
    assert training.class_names == ["cat", "dog"] and training.labels == [0] * 3 + [1] * 4
    _, ids = source_for(spec, tmp_path).read_inputs(pics)
    assert ids == ["loose.png"] + training.ids
