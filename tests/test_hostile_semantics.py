"""Hostile values that are valid YAML and the right type (issue 10, spec side).

Each case failed on the main branch before issue 10: a file outside the pipeline's folder
read through a nested layer, run names that leave ``--output`` or that Keras refuses,
integers without an upper bound, unchecked preprocessing arguments, CSV delimiters that
the two CSV readers disagree on, a ``top_k`` above the class count, and an ``imports:``
folder reported as missing. All are refused by validation, before any data is read.
"""

from __future__ import annotations

import pytest

from kerapipe.spec.validate import validate_file, validate_text

BASE = "\n".join((
    "kerapipe: 1",                                                   # 1
    "name: mnist-cnn",                                               # 2
    "seed: 42",                                                      # 3
    "data:",                                                         # 4
    "  source: {sample: mnist}",                                     # 5
    "  preprocess:",                                                 # 6
    "    - rescale: 1/255",                                          # 7
    "    - reshape: [28, 28, 1]",                                    # 8
    "  batch_size: 64",                                              # 9
    "model:",                                                        # 10
    "  layers:",                                                     # 11
    "    - Conv2D: {filters: 4, kernel_size: 3, activation: relu}",  # 12
    "    - Flatten: {}",                                             # 13
    "    - Dense: {units: 10}",                                      # 14
    "train: {epochs: 1}",                                            # 15
    "output: {dir: runs}",                                           # 16
)) + "\n"

CSV = "\n".join((
    "kerapipe: 1",
    "data:",
    "  source: {csv: {path: t.csv, label: y}}",
    "model:",
    "  layers:",
    "    - Dense: {units: 3}",
    "train: {epochs: 1}",
)) + "\n"


def change(old: str, new: str, *more: str, text: str = BASE) -> str:
    """``text`` (``BASE``) with ``old`` replaced by ``new`` (more old/new pairs may follow)."""
    pairs = (old, new) + more
    for before, after in zip(pairs[::2], pairs[1::2]):
        assert text.count(before) == 1, f"{before!r} must occur exactly once"
        text = text.replace(before, after)
    return text


def codes(text: str, file: str = "<string>", overrides=()) -> list[tuple[str, str]]:
    return [(i.code, i.key_path) for i in validate_text(text, file, overrides).errors]


def with_layer(layer: str) -> str:
    return change("    - Conv2D:", f"    - {layer}\n    - Conv2D:")


# --- 1. a file outside the pipeline's folder, through any layer ----------------------

@pytest.mark.parametrize("layer, path", [
    ("TimeDistributed: {layer: {IntegerLookup: {vocabulary: /etc/passwd}}}",
     "model.layers[0].TimeDistributed.layer.IntegerLookup.vocabulary"),
    ("Bidirectional: {layer: {LSTM: {units: 2}}, backward_layer: "
     "{TimeDistributed: {layer: {StringLookup: {vocabulary: ../secret.txt}}}}}",
     "model.layers[0].Bidirectional.backward_layer.TimeDistributed.layer.StringLookup"
     ".vocabulary"),
    ("Pipeline: {layers: [{IntegerLookup: {vocabulary: /etc/passwd}}]}",
     "model.layers[0].Pipeline.layers[0].IntegerLookup.vocabulary"),
    ("TextVectorization: {vocabulary: '~/x'}", "model.layers[0].TextVectorization.vocabulary"),
    ('StringLookup: {vocabulary: "v\\0.txt"}', "model.layers[0].StringLookup.vocabulary"),
    ("StringLookup: {vocabulary: 'gs://bucket/v.txt'}",
     "model.layers[0].StringLookup.vocabulary"),
], ids=["time-distributed", "backward-layer-twice-nested", "inside-a-list", "home",
        "nul-byte", "url"])
def test_a_file_argument_in_any_layer_must_stay_in_the_pipeline_folder(tmp_path, layer, path):
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(with_layer(layer))
    result = validate_file(pipeline)
    assert ("outside-path", path) in [(i.code, i.key_path) for i in result.errors]
    (issue,) = [i for i in result.errors if i.code == "outside-path"]
    assert issue.line == 12 and "inside the pipeline's folder" in issue.message


def test_a_nested_file_argument_inside_the_folder_is_accepted(tmp_path):
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(with_layer("TimeDistributed: {layer: {IntegerLookup: "
                                   "{vocabulary: data/v.txt}}}"))
    assert "outside-path" not in [i.code for i in validate_file(pipeline).issues]


@pytest.mark.parametrize("command", ["plan", "run"])
def test_plan_and_run_refuse_a_nested_outside_file_without_reading_it(tmp_path, call_main,
                                                                       command):
    (tmp_path / "pipe").mkdir()
    (tmp_path / "elsewhere").mkdir()
    secret = tmp_path / "elsewhere" / "secret.txt"
    secret.write_text("1\n2\n3\n")
    outputs = []
    for target in (secret, tmp_path / "elsewhere" / "missing.txt"):
        pipeline = tmp_path / "pipe" / "p.yaml"
        pipeline.write_text(with_layer("TimeDistributed: {layer: {IntegerLookup: "
                                       f"{{vocabulary: '{target}'}}}}}}"))
        extra = ("--output", tmp_path / "runs") if command == "run" else ()
        exit_code, out, err = call_main(command, pipeline, *extra)
        assert exit_code == 2, err
        assert "error[outside-path]" in err and "Traceback" not in out + err
        outputs.append((out + err).replace(str(target), "<path>"))
    assert outputs[0] == outputs[1]  # the message does not tell whether the file exists
    assert not (tmp_path / "runs").exists()


# --- 2. run names and output paths -----------------------------------------------------

@pytest.mark.parametrize("name", [
    "a/../../escaped", "../x", "/abs", "..", ".", "_x", "-x", ".x", "a\\\\b", " x", "x" * 201,
    "é" * 101, "a\\0b", "a\\tb", "a\\u2028b", "\\ud800",
], ids=["dotdot-inside", "parent", "absolute", "dotdot", "dot", "underscore-first",
        "dash-first", "dot-first", "backslash", "space-first", "too-long", "too-many-bytes",
        "nul", "tab", "line-separator", "lone-surrogate"])
def test_a_run_name_must_be_one_safe_folder_name_keras_accepts(name):
    from kerapipe.spec.model import RUN_NAME_RULE
    text = change("name: mnist-cnn", f'name: "{name}"')
    assert codes(text) == [("bad-name", "name")]
    (issue,) = validate_text(text).errors
    assert RUN_NAME_RULE in issue.message


@pytest.mark.parametrize("name", ["mnist-cnn", "run.v2", "9lives", "A_b-1.x", "my run",
                                  "x" * 200, "résumé-run", "model (1)", "実験1", "é"])
def test_ordinary_run_names_stay_valid(name):
    assert codes(change("name: mnist-cnn", f"name: {name}")) == []


def test_a_run_name_from_set_is_checked_like_the_file():
    assert codes(BASE, overrides=["name=a/../../escaped"]) == [("bad-name", "name")]


def test_a_nul_byte_in_the_output_folder_is_a_spec_error():
    assert codes(change("output: {dir: runs}", 'output: {dir: "runs\\0x"}')) == [
        ("bad-path", "output.dir")]


@pytest.mark.parametrize("key, value", [
    ("npz", '{path: "d\\0.npz"}'), ("csv", '{path: "t\\0.csv", label: y}'),
    ("images", '{dir: "i\\0"}')])
def test_a_nul_byte_in_a_data_path_is_a_spec_error(key, value):
    text = change("{sample: mnist}", f"{{{key}: {value}}}")
    field = "dir" if key == "images" else "path"
    assert ("bad-path", f"data.source.{key}.{field}") in codes(text)


def test_a_pipeline_file_name_with_a_space_still_validates(tmp_path):
    pipeline = tmp_path / "my pipeline.yaml"
    pipeline.write_text(change("name: mnist-cnn\n", ""))
    assert validate_file(pipeline).errors == []


@pytest.mark.parametrize("file, expected", [
    ("my pipeline.yaml", "my pipeline"), ("_x.yaml", "x"), ("a/b:c?.yaml", "b:c?"),
    ("é.yaml", "é"), ("résumé (1).yaml", "résumé (1)"), ("..yaml", "pipeline"),
    ("<string>", "pipeline"), ("a" * 240 + ".yml", "a" * 200), ("_\x01.yaml", "pipeline"),
    ("mnist-cnn.yaml", "mnist-cnn")])
def test_the_default_run_name_is_the_file_stem_made_safe(file, expected):
    from kerapipe.spec.model import default_run_name
    assert default_run_name(file) == expected
    assert codes(change("name: mnist-cnn", f"name: '{expected}'")) == []


@pytest.mark.parametrize("stem", ["_x", "-x", "é", "model (1)", "a" * 80])
def test_a_file_without_name_gets_a_run_name_keras_accepts(tmp_path, stem):
    from kerapipe.spec.model import is_run_name
    pipeline = tmp_path / f"{stem}.yaml"
    pipeline.write_text(BASE.replace("name: mnist-cnn\n", ""))
    result = validate_file(pipeline)
    assert result.errors == [] and is_run_name(result.spec.name), result.spec.name


# --- 3. every integer field has an upper bound -----------------------------------------

@pytest.mark.parametrize("old, new, path", [
    ("seed: 42", f"seed: {2**32}", "seed"),
    ("batch_size: 64", f"batch_size: {2**20 + 1}", "data.batch_size"),
    ("batch_size: 64", f"batch_size: 64\n  shuffle: {2**63}", "data.shuffle"),
    ("train: {epochs: 1}", f"train: {{epochs: {2**63}}}", "train.epochs"),
    ("train: {epochs: 1}", f"train: {{epochs: 1, steps_per_execution: {2**63}}}",
     "train.steps_per_execution"),
    ("train: {epochs: 1}", f"train: {{epochs: 1, early_stopping: {{patience: {2**63}}}}}",
     "train.early_stopping.patience"),
    ("train: {epochs: 1}", f"train: {{epochs: 1, early_stopping: {{start_from_epoch: "
     f"{2**63}}}}}", "train.early_stopping.start_from_epoch"),
    ("{sample: mnist}", f"{{keras: {{name: imdb, num_words: {2**63}}}}}",
     "data.source.keras.num_words"),
    ("    - rescale: 1/255", f"    - pad_sequences: {2**40}", "data.preprocess[0].pad_sequences"
     ".maxlen"),
    ("    - rescale: 1/255", f"    - one_hot: {{num_classes: {2**40}}}",
     "data.preprocess[0].one_hot.num_classes"),
    ("    - reshape: [28, 28, 1]", f"    - reshape: [28, 28, {2**40}]",
     "data.preprocess[1].reshape.target_shape[2]"),
    ("    - rescale: 1/255", "    - resize: [100000, 28]", "data.preprocess[0].resize.size[0]"),
    ("output: {dir: runs}", f"output: {{dir: runs, top_k: {10**9}}}", "output.top_k"),
], ids=["seed", "batch_size", "shuffle", "epochs", "steps_per_execution", "patience",
        "start_from_epoch", "num_words", "maxlen", "num_classes", "reshape", "resize", "top_k"])
def test_every_integer_field_has_an_upper_bound(old, new, path):
    assert ("out-of-range", path) in codes(change(old, new))


def test_image_size_items_have_bounds():
    text = change("{sample: mnist}", "{images: {dir: imgs, image_size: [0, 100000]}}",
                  "    - reshape: [28, 28, 1]\n", "")
    assert codes(text) == [("out-of-range", "data.source.images.image_size[0]"),
                           ("out-of-range", "data.source.images.image_size[1]")]


# --- 4. preprocessing arguments ---------------------------------------------------------

@pytest.mark.parametrize("old, new, expected", [
    ("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n    - normalize: {axis: 9}",
     [("out-of-range", "data.preprocess[2].normalize.axis")]),
    ("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n    - normalize: {axis: 0}",
     [("out-of-range", "data.preprocess[2].normalize.axis")]),
    ("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n    - normalize: {axis: 4}",
     [("out-of-range", "data.preprocess[2].normalize.axis")]),
    ("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n    - normalize: {axis: -4}",
     [("out-of-range", "data.preprocess[2].normalize.axis")]),
    ("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n    - resize: [-5, 10]",
     [("out-of-range", "data.preprocess[2].resize.size[0]")]),
    ("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n    - resize: [0, 0]",
     [("out-of-range", "data.preprocess[2].resize.size[0]"),
      ("out-of-range", "data.preprocess[2].resize.size[1]")]),
    ("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n"
     "    - RandomCrop: {height: 32, width: 20}",
     [("crop-size", "data.preprocess[2].RandomCrop")]),
    ("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n"
     "    - RandomRotation: {factor: x}",
     [("wrong-type", "data.preprocess[2].RandomRotation.factor")]),
    ("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n"
     "    - RandomZoom: {height_factor: [0.1, big]}",
     [("wrong-type", "data.preprocess[2].RandomZoom.height_factor")]),
    ("Conv2D: {filters: 4,", "Conv2D: {filters: four,",
     [("wrong-type", "model.layers[0].Conv2D.filters")]),
    ("Dense: {units: 10}", "Dense: {units: '10'}",
     [("wrong-type", "model.layers[2].Dense.units")]),
], ids=["axis-9", "axis-batch", "axis-beyond-rank", "axis-below-rank", "resize-negative",
        "resize-zero", "crop-larger-than-input", "factor-string", "factor-list-string",
        "filters-string", "units-quoted"])
def test_preprocessing_and_numeric_layer_arguments_are_checked(old, new, expected):
    assert codes(change(old, new)) == expected


@pytest.mark.parametrize("old, new", [
    ("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n    - normalize: {axis: 3}"),
    ("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n    - normalize: {axis: -3}"),
    ("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n    - normalize: {axis: null}"),
    ("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n"
     "    - RandomCrop: {height: 28, width: 20}"),
    ("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n"
     "    - RandomRotation: {factor: [-0.1, 0.1], fill_value: 0}"),
    ("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n    - resize: [32, 32]"),
], ids=["axis-last", "axis-first-feature", "axis-null", "crop-inside", "factor-pair",
        "resize"])
def test_sound_preprocessing_arguments_stay_valid(old, new):
    assert codes(change(old, new)) == []


def test_a_crop_that_fits_leaves_the_traced_example_shape_as_the_model_sees_it():
    from kerapipe.spec.checks import trace_example_shape
    result = validate_text(change("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n"
                                  "    - RandomCrop: {height: 28, width: 28}"))
    assert trace_example_shape(result.spec) == (28, 28, 1)


# --- 5. CSV delimiter ---------------------------------------------------------------------

@pytest.mark.parametrize("delimiter", ["§", ";;", "", '\\"', "\\n", "\\r"],
                         ids=["non-ascii", "two-chars", "empty", "quote", "newline", "cr"])
def test_a_csv_delimiter_is_one_ascii_character_other_than_quote_and_line_breaks(delimiter):
    text = change("label: y}", f'label: y, delimiter: "{delimiter}"}}', text=CSV)
    assert codes(text) == [("bad-delimiter", "data.source.csv.delimiter")]


@pytest.mark.parametrize("delimiter", [";", "\\t", "|", " "])
def test_ordinary_csv_delimiters_stay_valid(delimiter):
    assert codes(change("label: y}", f'label: y, delimiter: "{delimiter}"}}', text=CSV)) == []


# --- 6. top_k above the class count ---------------------------------------------------

@pytest.mark.parametrize("text, ok", [
    (change("output: {dir: runs}", "output: {dir: runs, top_k: 11}"), False),
    (change("output: {dir: runs}", "output: {dir: runs, top_k: 10}"), True),
    (CSV + "output: {top_k: 4}\n", False),
    (CSV + "output: {top_k: 3}\n", True),
], ids=["known-dataset", "known-dataset-equal", "output-units", "output-units-equal"])
def test_top_k_cannot_exceed_the_class_count(text, ok):
    assert (codes(text) == []) is ok
    if not ok:
        assert codes(text) == [("out-of-range", "output.top_k")]


# --- 7. an imports: entry that is a folder ------------------------------------------------

def test_an_imports_entry_that_is_a_folder_is_reported_as_a_folder(tmp_path):
    (tmp_path / "lib.py").mkdir()
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(change("seed: 42", "seed: 42\nimports: [lib.py]"))
    (issue,) = validate_file(pipeline).errors
    assert (issue.code, issue.key_path) == ("missing-import", "imports[0]")
    assert "is a folder" in issue.message and "does not exist" not in issue.message


# --- the message text of each new code ----------------------------------------------------

GOLDEN = {
    "bad-name": (change("name: mnist-cnn", "name: a/../../escaped"),
                 "p.yaml:2:7: error[bad-name]: name: a run name is one folder name inside the "
                 "output folder: printable characters other than '/' and '\\', at most 200 "
                 "bytes in UTF-8, starting with a letter or digit (of any script). Rename the "
                 "run, e.g. `mnist-cnn`. Received: name='a/../../escaped'"),
    "bad-path": (change("output: {dir: runs}", 'output: {dir: "runs\\0x"}'), "p.yaml:16:15: "
                 "error[bad-path]: output.dir: a path cannot hold a NUL byte or another "
                 "control character (tab, newline, ...). Remove it. Received: "
                 "dir='runs\\x00x'"),
    "bad-delimiter": (change("label: y}", "label: y, delimiter: ';;'}", text=CSV),
                      "p.yaml:3:52: error[bad-delimiter]: data.source.csv.delimiter: a CSV "
                      "delimiter is exactly one printable ASCII character or a tab, other than "
                      "'\"' (both CSV readers, Python's and tf.data's, must split the file the "
                      "same way), e.g. ',', ';', '|' or '\\t'. Received: delimiter=';;'"),
    "crop-size": (change("    - reshape: [28, 28, 1]", "    - reshape: [28, 28, 1]\n"
                         "    - RandomCrop: {height: 32, width: 20}"), "p.yaml:9:7: "
                  "error[crop-size]: data.preprocess[2].RandomCrop: a crop of 32x20 does not "
                  "fit in the 28x28 image it receives: height and width are from 1 up to the "
                  "image's (Keras would enlarge the image instead of cropping it). Lower them, "
                  "or resize first. Received: height=32, width=20"),
}


@pytest.mark.parametrize("code", sorted(GOLDEN))
def test_message_text_of_each_new_code_is_golden(code):
    text, expected = GOLDEN[code]
    result = validate_text(text, "p.yaml")
    assert [i.format() for i in result.issues] == [expected]


def test_every_layer_visits_nested_layers_and_augmentation_steps():
    from kerapipe.spec.checks import every_layer
    result = validate_text(change(
        "    - rescale: 1/255", "    - RandomFlip: {mode: horizontal}\n    - rescale: 1/255",
        "    - Conv2D:", "    - TimeDistributed: {layer: {Bidirectional: {layer: "
        "{LSTM: {units: 2}}}}}\n    - Conv2D:"))
    assert result.spec is not None, [i.format() for i in result.issues]
    assert [(path, layer.name) for path, layer in every_layer(result.spec)] == [
        (("model", "layers", 0), "TimeDistributed"),
        (("model", "layers", 0, "TimeDistributed", "layer"), "Bidirectional"),
        (("model", "layers", 0, "TimeDistributed", "layer", "Bidirectional", "layer"), "LSTM"),
        (("model", "layers", 1), "Conv2D"), (("model", "layers", 2), "Flatten"),
        (("model", "layers", 3), "Dense"), (("data", "preprocess", 0), "RandomFlip")]
