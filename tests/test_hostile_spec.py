"""Hostile values in a pipeline file or a `--set`, on the spec side (issue 10).

Each is a clear issue at its position, never an exception out of ``validate_text``:
- integers longer than the loader's digit bound (Python refuses to read or print ints
  over 4,300 digits), in the file, in a `--set` value and in a `--set` list index;
- integers beyond the float range in float fields;
- `--set` issues located at the `--set`, and `--set` under a shorthand scalar;
- the cost of many unknown names: bounded suggestions, bounded issue count.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml

from kerapipe.spec.issues import MAX_ISSUES, MAX_SUGGESTIONS, did_you_mean
from kerapipe.spec.validate import validate_source, validate_text
from kerapipe.spec.yaml_loader import MAX_INT_DIGITS

ROOT = Path(__file__).resolve().parent.parent

BASE = "\n".join((
    "kerapipe: 1",                                                   # 1
    "name: mnist-cnn",                                               # 2
    "seed: 42",                                                      # 3
    "data:",                                                         # 4
    "  source: {sample: mnist}",                                     # 5
    "  split: {validation: 0.1, test: 0.1, stratify: true}",         # 6
    "  preprocess:",                                                 # 7
    "    - rescale: 1/255",                                          # 8
    "    - reshape: [28, 28, 1]",                                    # 9
    "  batch_size: 64",                                              # 10
    "model:",                                                        # 11
    "  layers:",                                                     # 12
    "    - Conv2D: {filters: 32, kernel_size: 3, activation: relu}",  # 13
    "    - Flatten",                                                 # 14
    "    - Dense: {units: 10}",                                      # 15
    "loss: sparse_categorical_crossentropy",                         # 16
    "optimizer: adam",                                               # 17
    "metrics: [accuracy]",                                           # 18
    "train:",                                                        # 19
    "  epochs: 15",                                                  # 20
    "  early_stopping: {monitor: val_loss, patience: 3, min_delta: 0.0}",  # 21
)) + "\n"

HUGE = "9" * 5000  # over Python's 4,300-digit limit for int <-> str
BEYOND_FLOAT = "2" + "0" * 308  # 2e308: 309 digits, within the digit bound, beyond float
ONE_AND_400_ZEROS = "1" + "0" * 400


def change(old: str, new: str) -> str:
    assert BASE.count(old) == 1, f"{old!r} must occur exactly once in BASE"
    return BASE.replace(old, new)


def found(result) -> list[tuple]:
    return [(i.code, i.key_path, i.line) for i in result.issues]


def test_base_file_is_valid():
    assert validate_text(BASE, "p.yaml").issues == []


# --- 1. integers over the digit bound --------------------------------------------------

@pytest.mark.parametrize("old, new, path, line, column", [
    ("epochs: 15", f"epochs: {HUGE}", "train.epochs", 20, 11),
    ("epochs: 15", f"epochs: -{HUGE}", "train.epochs", 20, 11),
    ("name: mnist-cnn", "name: 0x" + "f" * 5000, "name", 2, 7),
    ("name: mnist-cnn", "name: 0o" + "7" * 5000, "name", 2, 7),
    ("seed: 42", "seed: " + "1" * (MAX_INT_DIGITS + 1), "seed", 3, 7),
    ("units: 10", f"units: {HUGE}", "model.layers[2].Dense.units", 15, 22),
    ("[28, 28, 1]", f"[28, {HUGE}, 1]", "data.preprocess[1].reshape[1]", 9, 21),
], ids=["decimal", "negative", "hex", "octal", "one-digit-over", "keras-argument", "list-item"])
def test_integer_over_the_digit_bound_is_out_of_range_at_its_position(old, new, path, line,
                                                                      column):
    result = validate_text(change(old, new), "p.yaml")
    assert found(result) == [("out-of-range", path, line)]
    issue = result.issues[0]
    assert issue.column == column
    assert f"at most {MAX_INT_DIGITS} digits" in issue.message
    assert len(issue.message) < 300  # the value is summarised, not printed


def test_integer_at_the_digit_bound_is_read():
    text = change("filters: 32", "filters: " + "1" * MAX_INT_DIGITS)  # Keras checks it
    assert validate_text(text, "p.yaml").spec.model.layers[0].kwargs["filters"] == int(
        "1" * MAX_INT_DIGITS)
    leading_zeros = change("epochs: 15", "epochs: " + "0" * 5000 + "15")  # zeros add no digits
    assert validate_text(leading_zeros, "p.yaml").spec.train.epochs == 15


def test_huge_integer_in_a_set_value_is_out_of_range_at_the_set():
    result = validate_text(BASE, "p.yaml", [f"train.epochs={HUGE}"])
    assert [(i.code, i.key_path, i.line) for i in result.issues] == [
        ("out-of-range", "train.epochs", 0)]
    assert result.issues[0].file.startswith("--set train.epochs=999")
    assert len(result.issues[0].file) <= 100 and len(result.issues[0].message) < 300


def test_huge_list_index_in_a_set_is_a_bad_override():
    result = validate_text(BASE, "p.yaml", [f"model.layers[{HUGE}].Dense.units=1"])
    assert [(i.code, i.line) for i in result.issues] == [("bad-override", 0)]
    assert result.issues[0].file.startswith("--set model.layers[999")
    assert "index" in result.issues[0].message


@pytest.mark.parametrize("data", [
    {"train": {"epochs": 10 ** 5000}},
    {"name": 10 ** 5000},
    {"model": {"layers": [{"Dense": {"units": 10 ** 5000}}]}},
    {"optimizer": {"name": "adam", "learning_rate": 10 ** 5000}},
], ids=["int-field", "str-field", "layer-arguments", "float-field"])
def test_huge_integer_in_a_dict_is_an_issue_not_an_exception(data):
    source = {"kerapipe": 1, "data": {"source": {"sample": "mnist"}},
              "model": {"layers": [{"Flatten": {}}, {"Dense": {"units": 10}}]}, **data}
    result, _ = validate_source(source)
    assert result.spec is None
    assert [i.code for i in result.errors] == ["out-of-range"]
    assert len(result.errors[0].message) < 300


@pytest.mark.parametrize("key", [1.5, True, None, (1, 2)], ids=repr)
def test_dict_with_a_key_that_is_not_a_string_is_a_bad_key(key):
    source = {"kerapipe": 1, "data": {"source": {"sample": "mnist"}, "preprocess": [{key: 2}]},
              "model": {"layers": [{"Flatten": {}}, {"Dense": {"units": 10}}]}}
    result, _ = validate_source(source)
    assert [(i.code, i.key_path) for i in result.errors][:1] == [("bad-key", "data.preprocess[0]")]


def test_integer_keys_given_to_the_api_are_their_digits_as_in_a_file():
    # class_weight={0: 1.0, 1: 4.0} is what Keras's fit takes; a file's {0: 1.0} reads alike
    text = (ROOT / "pipelines" / "imbalanced.yaml").read_text()
    from_file = validate_text(text.replace("class_weight: balanced",
                                           "class_weight: {0: 1.0, 1: 4.0}"), "p.yaml")
    source = yaml.safe_load(text)
    source["train"]["class_weight"] = {0: 1.0, 1: 4.0}
    from_api, _ = validate_source(source)
    assert from_api.errors == [] and from_file.errors == []
    assert from_api.spec.train.class_weight == from_file.spec.train.class_weight
    source["train"]["class_weight"] = {0: 1.0, "0": 4.0}
    assert [(i.code, i.key_path) for i in validate_source(source)[0].errors] == [
        ("duplicate-key", "train.class_weight.0")]


@pytest.mark.parametrize("overrides", [(), ("train.epochs=3",)], ids=["plain", "with-set"])
def test_dict_that_contains_itself_is_too_deep(overrides):
    source = {"kerapipe": 1, "data": {"source": {"sample": "mnist"}},
              "model": {"layers": [{"Flatten": {}}, {"Dense": {"units": 10}}]}}
    source["model"]["layers"][0]["Flatten"]["x"] = source
    result, _ = validate_source(source, overrides)
    assert [i.code for i in result.errors][:1] == ["too-deep"]


# --- 2. integers beyond the float range -------------------------------------------------

@pytest.mark.parametrize("old, new, path", [
    ("optimizer: adam", f"optimizer: {{name: adam, learning_rate: {BEYOND_FLOAT}}}",
     "optimizer.learning_rate"),
    ("optimizer: adam", f"optimizer: {{name: adam, learning_rate: {ONE_AND_400_ZEROS}}}",
     "optimizer.learning_rate"),
    ("validation: 0.1", f"validation: {BEYOND_FLOAT}", "data.split.validation"),
    ("test: 0.1", f"test: -{BEYOND_FLOAT}", "data.split.test"),
    ("rescale: 1/255", f"rescale: {BEYOND_FLOAT}", "data.preprocess[0].rescale.scale"),
    ("rescale: 1/255", f"rescale: {{scale: 1, offset: {BEYOND_FLOAT}}}",
     "data.preprocess[0].rescale.offset"),
    ("min_delta: 0.0", f"min_delta: {BEYOND_FLOAT}", "train.early_stopping.min_delta"),
], ids=["learning-rate", "learning-rate-1e400", "validation", "test", "rescale", "offset",
        "min-delta"])
def test_integer_beyond_the_float_range_is_out_of_range(old, new, path):
    result = validate_text(change(old, new), "p.yaml")
    assert [(i.code, i.key_path) for i in result.issues] == [("out-of-range", path)]
    assert len(result.issues[0].message) < 300


def test_integer_beyond_the_float_range_from_a_dict_is_out_of_range():
    source = {"kerapipe": 1, "data": {"source": {"sample": "mnist"},
                                      "split": {"validation": 10 ** 400}},
              "model": {"layers": [{"Flatten": {}}, {"Dense": {"units": 10}}]}}
    result, _ = validate_source(source)
    assert [(i.code, i.key_path) for i in result.issues] == [
        ("out-of-range", "data.split.validation")]


# --- 3. `--set`: located at the `--set`, and under shorthand scalars ----------------------

@pytest.mark.parametrize("override, expected", [
    ("data.split.validation=0.9", [("no-training-data", "data.split")]),
    ("loss.name=hubber", [("unknown-loss", "loss")]),
    ("data.source.csv.path=x.csv", [("one-of", "data.source"),
                                    ("missing-key", "data.source.csv.label")]),
    ("train.early_stopping.monitor=val_acc", [("unknown-monitor", "train.early_stopping.monitor")]),
], ids=["changes-a-value-a-check-reads", "shorthand-name", "creates-a-mapping", "under-a-mapping"])
def test_set_issues_are_located_at_the_set(override, expected):
    result = validate_text(BASE, "p.yaml", [override])
    assert [(i.code, i.key_path) for i in result.issues] == expected
    assert {(i.file, i.line) for i in result.issues} == {(f"--set {override}", 0)}


@pytest.mark.parametrize("text, overrides, where", [
    (change("{sample: mnist}", "{csv: }"), (), ("p.yaml", 5)),
    (change("{sample: mnist}", "{sample: ~, npz: }"), (), ("p.yaml", 5)),
    (change("{sample: mnist}", "{csv: {path: x.csv, label: y}}"), ("data.source.csv=",),
     ("--set data.source.csv=", 0)),
], ids=["empty-csv", "two-empty", "emptied-by-set"])
def test_source_whose_only_kind_is_empty_is_one_of(text, overrides, where):
    result = validate_text(text, "p.yaml", overrides)  # found by the fuzz campaign
    assert [(i.code, i.file, i.line) for i in result.issues] == [("one-of", *where)]
    assert "found none (" in result.issues[0].message


def test_file_issues_stay_at_their_line_beside_a_set():
    text = change("batch_size: 64", "batch_size: -1")
    result = validate_text(text, "p.yaml", ["train.epochs=3"])
    assert [(i.code, i.file, i.line) for i in result.issues] == [("out-of-range", "p.yaml", 10)]


@pytest.mark.parametrize("override, read", [
    ("loss.from_logits=true", lambda s: (s.loss.name, s.loss.kwargs) == (
        "sparse_categorical_crossentropy", {"from_logits": True})),
    ("loss.name=sparse_categorical_crossentropy", lambda s: s.loss.kwargs == {}),
    ("optimizer.learning_rate=0.01", lambda s: (s.optimizer.name, s.optimizer.learning_rate) == (
        "adam", 0.01)),
    ("metrics[0].name=sparse_categorical_accuracy",
     lambda s: s.metrics[0].name == "sparse_categorical_accuracy"),
    ("data.preprocess[0].rescale.offset=-1", lambda s: (
        s.data.preprocess[0].options.scale, s.data.preprocess[0].options.offset) == (1 / 255, -1)),
    ("data.preprocess[1].reshape.target_shape=[28,28,1]",
     lambda s: s.data.preprocess[1].options.target_shape == [28, 28, 1]),
    ("model.layers[1].Flatten.data_format=channels_last",
     lambda s: s.model.layers[1].kwargs == {"data_format": "channels_last"}),
], ids=["loss-kwarg", "loss-name", "optimizer-learning-rate", "metric-name", "rescale-offset",
        "reshape-list", "bare-layer-name"])
def test_set_under_a_shorthand_scalar_expands_it(override, read):
    result = validate_text(BASE, "p.yaml", [override])
    assert result.issues == []
    assert read(result.spec)


def test_set_under_a_shorthand_of_a_source_expands_it():
    text = change("{sample: mnist}", "{keras: imdb}").replace(
        "    - rescale: 1/255\n    - reshape: [28, 28, 1]\n", "    - pad_sequences: 100\n")
    text = text.replace("Conv2D: {filters: 32, kernel_size: 3, activation: relu}",
                        "Embedding: {input_dim: 1000, output_dim: 8}").replace(
        "units: 10", "units: 2")
    result = validate_text(text, "p.yaml", ["data.source.keras.num_words=1000"])
    assert result.issues == []
    assert (result.spec.data.source.keras.name, result.spec.data.source.keras.num_words) == (
        "imdb", 1000)


def test_set_value_keeps_the_issues_of_its_own_yaml():
    result = validate_text(BASE, "p.yaml", ["train={epochs: 1, epochs: 2}"])
    assert [(i.code, i.key_path, i.file) for i in result.issues] == [
        ("duplicate-key", "train.epochs", "--set train={epochs: 1, epochs: 2}")]


# --- 4. bounded cost of many unknown names -------------------------------------------------

def _unknown_layers(count: int) -> str:
    names = "".join(f"    - Qz{i:05d}x\n" for i in range(count))
    return BASE.replace("    - Flatten\n", "    - Flatten\n" + names)


def test_issues_per_file_are_bounded_with_a_summary_of_the_rest():
    result = validate_text(_unknown_layers(3 * MAX_ISSUES), "p.yaml")
    assert len(result.issues) == MAX_ISSUES + 1
    assert [i.code for i in result.issues[:MAX_ISSUES]] == ["unknown-layer"] * MAX_ISSUES
    summary = result.issues[-1]
    assert (summary.code, summary.severity, summary.key_path) == ("too-large", "error", "<file>")
    assert summary.line == result.issues[MAX_ISSUES - 1].line + 1  # where reporting stopped
    assert (f"{2 * MAX_ISSUES} more issue(s) from here on are not shown "
            f"({2 * MAX_ISSUES} error(s))") in summary.message
    assert result.spec is None


def test_suggestions_are_bounded_per_validation(monkeypatch):
    calls = []
    real = difflib.get_close_matches

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(difflib, "get_close_matches", counting)
    validate_text(_unknown_layers(3 * MAX_SUGGESTIONS), "p.yaml")
    assert 0 < len(calls) <= MAX_SUGGESTIONS


def test_suggestion_is_remembered_and_skipped_for_absurd_names(monkeypatch):
    calls = []
    real = difflib.get_close_matches
    monkeypatch.setattr(difflib, "get_close_matches",
                        lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    names = ["Dense", "Flatten", "Conv2D"]
    assert did_you_mean("Flattten-memo", names + ["Flattten"]) == " Did you mean 'Flattten'?"
    assert did_you_mean("Flattten-memo", names + ["Flattten"]) == " Did you mean 'Flattten'?"
    assert len(calls) == 1
    assert did_you_mean("x" * 100_000, names) == ""
    assert did_you_mean("DENSE", names) == " Did you mean 'Dense'?"  # case alone: no difflib
    assert len(calls) == 1


@pytest.mark.parametrize("layer", [
    "- applications.MobileNetV3Small: {include_top: false, weights: imagenet, pooling: avg}",
    "- applications.MobileNetV3Small",
], ids=["mapping", "bare-name"])
def test_set_reaches_the_arguments_of_a_dotted_layer_name(layer):
    """`--set model.layers[0].applications.MobileNetV3Small.weights=null` was split at every
    dot and refused; the parts naming one key of the file are that key."""
    text = ("kerapipe: 1\ndata:\n  source: {keras: cifar10}\nmodel:\n  layers:\n    "
            + layer + "\n    - Dense: {units: 10}\n")
    result = validate_text(text, "p.yaml",
                           ["model.layers[0].applications.MobileNetV3Small.weights=null"])
    assert result.errors == []
    assert result.spec.model.layers[0].kwargs["weights"] is None
