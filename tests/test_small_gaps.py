"""Issue 15 item 5, the smaller gaps: `validate` warns of data that is not there, `--deep`
builds pipelines of typed features, one rule for too many output units, and
`one_hot: 10` as the shorthand of `one_hot: {num_classes: 10}`."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from kerapipe.spec.known_datasets import NAMED_SOURCES, SOURCE_PATH_KEYS
from kerapipe.spec.model import SourceSpec
from kerapipe.spec.steps import OneHotStep
from kerapipe.spec.validate import validate_file, validate_text

ROOT = Path(__file__).resolve().parent.parent
MODEL = "model:\n  layers:\n    - Dense: {units: 3}\n"


def write_pipeline(folder, data: str, model: str = MODEL, name: str = "p.yaml"):
    path = folder / name
    path.write_text(f"kerapipe: 1\ndata:\n{data}{model}", "utf-8")
    return path


def warnings_of(path) -> list[tuple[str, str]]:
    return [(i.code, i.key_path) for i in validate_file(path).warnings]


# --- one_hot: 10 ---------------------------------------------------------------------

@pytest.mark.parametrize("written", ["10", "{num_classes: 10}"], ids=["scalar", "mapping"])
def test_one_hot_scalar_is_short_for_num_classes(written):
    text = ("kerapipe: 1\ndata:\n  source: {sample: mnist}\n  preprocess:\n"
            f"    - one_hot: {written}\n" + MODEL.replace("3", "10")
            + "loss: categorical_crossentropy\n")
    result = validate_text(text, "p.yaml")
    assert result.errors == []
    assert result.spec.data.preprocess[0].options == OneHotStep(num_classes=10)


@pytest.mark.parametrize("written, code, path", [
    ("1", "out-of-range", "data.preprocess[0].one_hot.num_classes"),
    ("ten", "wrong-type", "data.preprocess[0].one_hot"),  # neither the number nor {...}
    ("true", "wrong-type", "data.preprocess[0].one_hot")], ids=str)
def test_one_hot_scalar_is_checked_as_num_classes(written, code, path):
    text = ("kerapipe: 1\ndata:\n  source: {sample: mnist}\n  preprocess:\n"
            f"    - one_hot: {written}\n" + MODEL)
    assert [(i.code, i.key_path, i.line) for i in validate_text(text, "p.yaml").errors] == [
        (code, path, 5)]


def test_the_json_schema_takes_the_one_hot_scalar_as_the_validator_does():
    import jsonschema
    import yaml

    from kerapipe.spec.schema import pipeline_json_schema

    validator = jsonschema.Draft202012Validator(pipeline_json_schema())
    for written, valid in (("10", True), ("{num_classes: 10}", True), ("ten", False)):
        text = ("kerapipe: 1\ndata:\n  source: {sample: mnist}\n  preprocess:\n"
                f"    - one_hot: {written}\n" + MODEL)
        assert validator.is_valid(yaml.safe_load(text)) is valid, written


# --- validate warns of missing data ---------------------------------------------------

def test_every_source_kind_is_a_path_or_a_named_set():
    kinds = {f.name for f in dataclasses.fields(SourceSpec)}
    assert set(SOURCE_PATH_KEYS) | set(NAMED_SOURCES) == kinds
    assert not set(SOURCE_PATH_KEYS) & set(NAMED_SOURCES)


TFRECORD = ("      features: {x: {dtype: float32, shape: [3]}, y: int64}\n"
            "      label: y\n")


@pytest.mark.parametrize("data, expected", [
    ("  source: {csv: {path: data/t.csv, label: y}}\n", ["data.source.csv.path"]),
    ("  source: {npz: data/t.npz}\n", ["data.source.npz.path"]),
    ("  source: {images: {dir: pictures, image_size: [8, 8]}}\n", ["data.source.images.dir"]),
    ("  source: {text: {dir: texts}}\n  preprocess:\n    - TextVectorization: {max_tokens: 50, "
     "output_mode: multi_hot}\n", ["data.source.text.dir"]),
    ("  source:\n    tfrecord:\n      files: data/*.tfrecord\n" + TFRECORD,
     ["data.source.tfrecord.files"]),
    ("  source:\n    tfrecord:\n      files: [data/a-*.tfrecord, b.tfrecord]\n" + TFRECORD,
     ["data.source.tfrecord.files[0]", "data.source.tfrecord.files[1]"]),
    ("  source: {npz: data/t.npz}\n  split: {validation: {file: v.npz}, test: {file: t.npz}}\n",
     ["data.source.npz.path", "data.split.validation.file", "data.split.test.file"]),
], ids=["csv", "npz", "images", "text", "tfrecord-glob", "tfrecord-globs", "split-files"])
def test_validate_warns_of_each_data_path_that_is_not_there(tmp_path, data, expected):
    path = write_pipeline(tmp_path, data)
    assert warnings_of(path) == [("missing-data", key) for key in expected]
    assert validate_file(path).spec is not None  # a warning: the spec stays usable


def test_a_layers_vocabulary_file_that_is_not_there_is_a_warning(tmp_path):
    path = write_pipeline(tmp_path, "  source: {sample: mnist}\n", "model:\n  layers:\n"
                          "    - Flatten\n    - StringLookup: {vocabulary: words.txt}\n"
                          "    - Dense: {units: 10}\n")
    assert warnings_of(path) == [("missing-data", "model.layers[1].StringLookup.vocabulary")]
    (tmp_path / "words.txt").write_text("a\nb\n", "utf-8")
    assert warnings_of(path) == []


def test_data_that_is_there_relative_to_the_pipeline_folder_is_no_warning(
        tmp_path, monkeypatch):
    (tmp_path / "data" / "pictures" / "cat").mkdir(parents=True)
    (tmp_path / "data" / "t.csv").write_text("a,y\n1,0\n", "utf-8")
    (tmp_path / "data" / "p-0.tfrecord").write_bytes(b"")
    monkeypatch.chdir(tmp_path / "data")  # not the pipeline's folder: the cwd plays no part
    for data in ("  source: {csv: {path: data/t.csv, label: y}}\n  split: {validation: "
                 "{file: data/t.csv}, test: 0.1}\n",
                 "  source: {images: {dir: data/pictures, image_size: [8, 8]}}\n",
                 "  source:\n    tfrecord:\n      files: data/p-*.tfrecord\n" + TFRECORD,
                 "  source: {keras: fashion_mnist}\n", "  source: {tfds: mnist}\n"):
        assert warnings_of(write_pipeline(tmp_path, data)) == [], data


def test_a_linked_pipeline_finds_its_data_next_to_the_real_file_as_the_run_does(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "t.npz").write_bytes(b"")
    real = write_pipeline(tmp_path / "real", "  source: {npz: t.npz}\n")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(real, tmp_path / "elsewhere" / "p.yaml")
    assert warnings_of(tmp_path / "elsewhere" / "p.yaml") == []


def test_pipeline_text_and_a_run_folders_spec_are_not_checked_for_data(tmp_path):
    text = "kerapipe: 1\ndata:\n  source: {npz: nowhere.npz}\n" + MODEL
    assert validate_text(text, str(tmp_path / "spec.yaml")).warnings == []


def test_validate_command_warns_with_exit_0_and_position(tmp_path, call_main):
    path = write_pipeline(tmp_path, "  source: {npz: data/t.npz}\n")
    code, out, err = call_main("validate", str(path))
    assert code == 0
    looked = os.path.join(str(tmp_path.resolve()), "data", "t.npz")
    assert out.splitlines() == [
        f"{path}:3:17: warning[missing-data]: data.source.npz.path: the file 'data/t.npz' "
        f"does not exist (looked for {looked}), so a run would stop there. Paths are "
        "relative to the pipeline file's folder: fix the path, or ignore this where the "
        "data is not at hand (CI). Received: path='data/t.npz'",
        "1 file(s) checked: 0 error(s), 1 warning(s)"]
    code, out, err = call_main("validate", "--strict", str(path))
    assert code == 2  # --strict fails on warnings, this one too


def test_validate_json_lists_the_warning_in_its_issues(tmp_path, call_main):
    path = write_pipeline(tmp_path, "  source: {csv: {path: t.csv, label: y}}\n")
    code, out, err = call_main("validate", "--format", "json", str(path))
    report = json.loads(out)
    assert code == 0
    assert (report["errors"], report["warnings"]) == (0, 1)
    assert [(i["severity"], i["code"], i["path"], i["line"], i["column"])
            for i in report["issues"]] == [("warning", "missing-data", "data.source.csv.path",
                                            3, 24)]


# --- validate --deep on CSV pipelines with listed features ---------------------------

TYPED = ("  source: {csv: {path: t.csv, label: y}}\n  features:\n    age: float_normalized\n"
         "    city: string_categorical\n    year: integer_categorical\n"
         "    notes: {text: {max_tokens: 100, output_mode: multi_hot}}\n")


def deep_issues(call_main, path) -> tuple[int, list[tuple[str, str]], str]:
    code, out, err = call_main("validate", "--deep", "--format", "json", str(path))
    report = json.loads(out)
    return code, [(i["code"], i["path"]) for i in report["issues"]
                  if i["code"] != "missing-data"], out


def test_deep_builds_a_model_of_typed_features_and_reports_what_keras_refuses(
        tmp_path, call_main):
    path = write_pipeline(tmp_path, TYPED, "model:\n  layers:\n    - Conv2D: {filters: 3, "
                          "kernel_size: 3}\n    - Dense: {units: 3}\n")
    code, issues, out = deep_issues(call_main, path)
    assert (code, issues) == (2, [("shape-error", "model.layers[0].Conv2D")])
    assert "expected min_ndim=4, found ndim=2" in out  # built on the features' one vector
    path = write_pipeline(tmp_path, TYPED)
    assert deep_issues(call_main, path)[:2] == (0, [])  # built, not skipped


def test_deep_builds_typed_features_that_are_model_inputs_of_their_own(tmp_path, call_main):
    data = ("  source: {csv: {path: t.csv, label: y}}\n  features:\n    age: float_normalized\n"
            "    notes: {text: {max_tokens: 100, output_sequence_length: 20}}\n")
    model = ("model:\n  inputs: [notes, tabular]\n  layers:\n"
             "    - Embedding: {input_dim: 100, output_dim: 8}\n      inputs: notes\n"
             "    - GlobalAveragePooling1D: {name: pooled}\n"
             "    - Concatenate: {}\n      inputs: [pooled, tabular]\n    - Dense: {units: 3}\n")
    assert deep_issues(call_main, write_pipeline(tmp_path, data, model))[:2] == (0, [])
    wrong = model.replace("GlobalAveragePooling1D: {name: pooled}", "Flatten: {name: pooled}")
    wrong = wrong.replace("    - Embedding: {input_dim: 100, output_dim: 8}\n      inputs: notes\n",
                          "    - Conv2D: {filters: 2, kernel_size: 2}\n      inputs: notes\n")
    code, issues, _ = deep_issues(call_main, write_pipeline(tmp_path, data, wrong))
    assert (code, issues) == (2, [("shape-error", "model.layers[0].Conv2D")])


def test_deep_knows_the_example_shape_of_listed_csv_columns(tmp_path, call_main):
    data = ("  source: {csv: {path: t.csv, label: y, features: [a, b, c]}}\n"
            "  preprocess:\n    - reshape: [2, 2]\n")
    code, issues, out = deep_issues(call_main, write_pipeline(tmp_path, data))
    assert (code, issues) == (2, [("layer-arguments", "data.preprocess[0].reshape")])
    assert "shape (3,)" in out


def test_deep_no_longer_skips_the_shipped_typed_feature_pipeline(call_main):
    code, issues, _ = deep_issues(call_main, ROOT / "pipelines" / "penguins.yaml")
    assert (code, issues) == (0, [])


# --- too many output units: one rule for every source -------------------------------

def npz_data(folder) -> str:
    import numpy as np

    from tests.conftest import npz_bytes

    x = np.random.default_rng(0).normal(size=(30, 4)).astype("float32")
    (folder / "t.npz").write_bytes(npz_bytes(x=x, y=np.arange(30) % 3))
    return "  source: {npz: t.npz}\n"


def csv_data(folder) -> str:
    rows = ["a,b,label"] + [f"{i % 7},{i % 3},{'xyz'[i % 3]}" for i in range(30)]
    (folder / "t.csv").write_text("\n".join(rows) + "\n", "utf-8")
    return "  source: {csv: {path: t.csv, label: label}}\n"


def text_data(folder) -> str:
    for label in ("neg", "pos", "mid"):
        (folder / "texts" / label).mkdir(parents=True)
        for i in range(6):
            (folder / "texts" / label / f"{i}.txt").write_text(f"{label} {i}", "utf-8")
    return ("  source: {text: texts}\n  preprocess:\n    - TextVectorization: "
            "{max_tokens: 20, output_sequence_length: 4}\n")


@pytest.mark.parametrize("make_data, holder", [
    (npz_data, "the labels (0..2) hold"), (csv_data, "the labels (x, y, z) hold"),
    (text_data, "the labels (mid, neg, pos) hold")], ids=["npz-indices", "csv-names", "text-dir"])
def test_too_many_output_units_is_refused_alike_for_every_source(tmp_path, call_main,
                                                                  make_data, holder):
    layers = ("    - Embedding: {input_dim: 20, output_dim: 4}\n    - Flatten\n"
              if make_data is text_data else "")
    path = write_pipeline(tmp_path, make_data(tmp_path),
                          f"model:\n  layers:\n{layers}    - Dense: {{units: 5}}\n")
    line = path.read_text("utf-8").splitlines().index("    - Dense: {units: 5}") + 1
    code, out, err = call_main("plan", str(path))
    assert code == 2, err
    dense = "model.layers[2]" if layers else "model.layers[0]"
    assert (f"{path}:{line}:22: error[class-count-mismatch]: {dense}.Dense.units: the "
            f"output layer has 5 units but {holder} 3 classes, so 2 of its units would stand "
            "for no class. Set units: 3.") in err
    path.write_text(path.read_text("utf-8").replace("units: 5", "units: 3"), "utf-8")
    assert call_main("plan", str(path))[0] == 0


def test_too_many_output_units_for_a_named_data_set_is_the_same_rule_before_any_data():
    text = "kerapipe: 1\ndata:\n  source: {sample: mnist}\n" + MODEL.replace("3", "12")
    assert [i.format() for i in validate_text(text, "p.yaml").errors] == [
        "p.yaml:6:22: error[class-count-mismatch]: model.layers[0].Dense.units: the output "
        "layer has 12 units but 'mnist' has 10 classes, so 2 of its units would stand for no "
        "class. Set units: 10."]


def test_too_many_units_of_one_output_of_several_is_the_same_rule(tmp_path, call_main):
    from tests.test_multi_io import TWO_OUTPUTS, two_output_arrays, write_workspace

    text = TWO_OUTPUTS.replace("{units: 3, activation: softmax, name: digit}",
                               "{units: 4, activation: softmax, name: digit}")
    path = write_workspace(tmp_path, text, **two_output_arrays())
    code, out, err = call_main("plan", str(path))
    assert code == 2, err
    assert ("error[class-count-mismatch]: model.layers[2].Dense.units: the output layer has "
            "4 units but the labels of output 'digit' (0..2) hold 3 classes, so 1 of its "
            "units would stand for no class. Set units: 3.") in err
