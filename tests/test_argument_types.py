"""Keras argument values are checked by their type in the catalogue (issue 15, item 3).

First ``spec/argument_values.py`` on hand-written fragments of the typed-argument
contract (every keyword of the subset), then whole pipeline files through plain
``validate`` (no TensorFlow).
"""

from __future__ import annotations

import math

import pytest

from kerapipe.spec.argument_values import argument_issue, describe

SIZE = {"type": "integer", "minimum": 1}
KERNEL_2D = {"anyOf": [SIZE, {"type": "array", "items": SIZE, "minItems": 2, "maxItems": 2}]}
RATE = {"type": "number", "minimum": 0, "maximum": 1}
DEFS = {"activation": {"anyOf": [{"enum": ["relu", "sigmoid", "softmax", "linear"]},
                                 {"type": "null"}]},
        "dtype": {"enum": ["float32", "float16", "int32", None]}}


def check(value, fragment, arg="x", owner="Layer"):
    return argument_issue(owner, arg, value, fragment, DEFS, ("model", "layers", 0, owner, arg))


def problem(value, fragment, arg="x", owner="Layer"):
    issue = check(value, fragment, arg, owner)
    return None if issue is None else (issue.code, issue.path[5:], issue.message)


ACCEPTED = [
    (3, {"type": "integer"}), (3, {"type": "number"}), (2.5, {"type": "number"}),
    ("a", {"type": "string"}), (True, {"type": "boolean"}), (None, {"type": "null"}),
    ([1, 2], {"type": "array"}), ({"a": 1}, {"type": "object"}),
    (None, {"type": ["integer", "null"]}), (4, {"type": ["integer", "null"]}),
    ("same", {"enum": ["valid", "same"]}), (2, {"enum": [1, 2]}), (2.0, {"enum": [1, 2]}),
    (1, RATE), (0, RATE), (0.5, RATE),
    (0.5, {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}),
    (3, KERNEL_2D), ([3, 5], KERNEL_2D),
    ("relu", {"$ref": "#/$defs/activation"}), (None, {"$ref": "#/$defs/activation"}),
    ([], {"type": "array", "items": SIZE}),
    ("anything", {"$ref": "#/$defs/not_in_the_catalogue"}),
    (float("inf"), {"type": "number"}), (float("nan"), {"type": "number"}),
]


@pytest.mark.parametrize("value, fragment", ACCEPTED, ids=[f"{i}-{v!r}" for i, (v, _) in
                                                            enumerate(ACCEPTED)])
def test_a_value_of_the_argument_type_is_accepted(value, fragment):
    assert check(value, fragment) is None


REFUSED = [
    ("units-text", "ten", {"type": "integer"}, "wrong-type", ()),
    ("bool-is-no-integer", True, {"type": "integer"}, "wrong-type", ()),
    ("bool-is-no-number", False, {"type": "number"}, "wrong-type", ()),
    ("float-is-no-integer", 2.5, {"type": "integer"}, "wrong-type", ()),
    ("integer-is-no-string", 3, {"type": "string"}, "wrong-type", ()),
    ("text-is-no-boolean", "true", {"type": "boolean"}, "wrong-type", ()),
    ("null-where-a-list", None, {"type": "array"}, "wrong-type", ()),
    ("list-where-a-mapping", [1], {"type": "object"}, "wrong-type", ()),
    ("one-is-no-true", 1, {"enum": [True, False]}, "wrong-type", ()),
    ("true-is-no-one", True, {"enum": [1, 2]}, "wrong-type", ()),
    ("number-not-a-choice", 3, {"enum": [1, 2]}, "unknown-value", ()),
    ("rate-above-one", 1.5, RATE, "out-of-range", ()),
    ("rate-below-zero", -0.1, RATE, "out-of-range", ()),
    ("exclusive-minimum", 0, {"type": "number", "exclusiveMinimum": 0}, "out-of-range", ()),
    ("exclusive-maximum", 1, {"type": "number", "exclusiveMaximum": 1}, "out-of-range", ()),
    ("nan-where-bounded", float("nan"), RATE, "out-of-range", ()),
    ("inf-where-bounded", float("inf"), RATE, "out-of-range", ()),
    ("list-too-short", [3], KERNEL_2D, "out-of-range", ()),
    ("list-too-long", [3, 3, 3], KERNEL_2D, "out-of-range", ()),
    ("item-out-of-range", [3, 0], KERNEL_2D, "out-of-range", (1,)),
    ("item-wrong-type", [3, "a"], KERNEL_2D, "wrong-type", (1,)),
    ("nested-item", [[1, 2], [3, "x"]],
     {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
     "wrong-type", (1, 1)),
    ("min-items", [], {"type": "array", "minItems": 1}, "out-of-range", ()),
    ("ref-enum", "float64", {"$ref": "#/$defs/dtype"}, "unknown-value", ()),
    ("ref-wrong-type", 3, {"$ref": "#/$defs/activation"}, "wrong-type", ()),
    ("activation-typo", "rellu", {"$ref": "#/$defs/activation"}, "unknown-activation", ()),
    ("activation-in-a-list", ["relu", "sigmod"],
     {"type": "array", "items": {"$ref": "#/$defs/activation"}}, "unknown-activation", (1,)),
]


@pytest.mark.parametrize("value, fragment, code, where", [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_a_value_of_another_type_is_one_issue_at_the_value(value, fragment, code, where):
    found = problem(value, fragment)
    assert found is not None and found[:2] == (code, where)


def test_kernel_size_of_one_number_on_a_2d_layer_says_every_form_it_takes():
    issue = check([3], KERNEL_2D, "kernel_size", "Conv2D")
    assert issue.message == ("Conv2D.kernel_size takes an integer >= 1 or a list of 2 "
                             "integers >= 1. Received: kernel_size=[3]")


def test_an_item_out_of_range_is_reported_at_its_index():
    issue = check([3, 0], KERNEL_2D, "kernel_size", "Conv2D")
    assert issue.path[-2:] == ("kernel_size", 1)
    assert issue.message == ("Conv2D.kernel_size[1] must be at least 1. "
                             "Received: kernel_size=[3, 0]")


def test_text_where_an_integer_is_expected_says_so():
    assert check("ten", SIZE, "units", "Dense").message == (
        "Dense.units takes an integer >= 1. Received: units='ten' (a string)")


def test_a_quoted_number_is_told_to_lose_its_quotes():
    assert "Write the number without quotes." in check("10", SIZE, "units").message
    assert "Write the number without quotes." in check("3", KERNEL_2D, "kernel_size").message


def test_yaml_1_1_booleans_are_explained():
    assert "YAML 1.2" in check("yes", {"type": "boolean"}, "use_bias").message


def test_a_rate_above_its_maximum_says_the_bound():
    assert check(1.5, RATE, "rate", "Dropout").message == (
        "Dropout.rate must be at most 1. Received: rate=1.5")


def test_a_mistyped_choice_gets_a_did_you_mean():
    issue = check("smae", {"enum": ["valid", "same"]}, "padding", "Conv2D")
    assert (issue.code, issue.message) == ("unknown-value", "Conv2D.padding takes one of "
                                           "'valid', 'same'. Did you mean 'same'? "
                                           "Received: padding='smae'")


def test_padding_and_data_format_ignore_case_as_keras_does():
    assert check("SAME", {"enum": ["valid", "same"]}, "padding") is None
    assert check("Channels_Last", {"enum": ["channels_last", "channels_first"]},
                 "data_format") is None
    assert check("BILINEAR", {"enum": ["nearest", "bilinear"]}, "interpolation",
                 "UpSampling2D") is None
    # Keras compares other choices as written (Resizing's interpolation, a loss reduction)
    assert check("BILINEAR", {"enum": ["nearest", "bilinear"]}, "interpolation",
                 "Resizing").code == "unknown-value"


def test_an_unknown_activation_keeps_its_code_and_wording():
    issue = check("rellu", {"$ref": "#/$defs/activation"}, "recurrent_activation", "LSTM")
    assert (issue.code, issue.message) == ("unknown-activation", "unknown activation "
                                           "'rellu'. Did you mean 'relu'?")


def test_a_shared_type_is_named_in_words():
    assert check(3, {"$ref": "#/$defs/activation"}, "activation").message == (
        "Layer.activation takes an activation. Received: activation=3 (an integer)")


@pytest.mark.parametrize("fragment, words", [
    (SIZE, "an integer >= 1"),
    (RATE, "a number from 0 to 1"),
    ({"type": "number", "exclusiveMinimum": 0}, "a number > 0"),
    ({"type": "number", "minimum": 0, "exclusiveMaximum": 1}, "a number >= 0 and < 1"),
    ({"type": ["integer", "null"]}, "an integer or null"),
    (KERNEL_2D, "an integer >= 1 or a list of 2 integers >= 1"),
    ({"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 3},
     "a list of 1 to 3 numbers"),
    ({"type": "array", "items": {"type": "string"}}, "a list of strings"),
    ({"enum": ["auto", None]}, "one of 'auto', null"),
    ({"$ref": "#/$defs/initializer"}, "an initializer"),
    ({"enum": list(range(20))}, "one of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 (and 8 more)"),
], ids=lambda x: x if isinstance(x, str) else None)
def test_a_fragment_is_described_in_words(fragment, words):
    assert describe(fragment, DEFS) == words


def test_a_huge_list_is_checked_in_one_pass_and_reports_its_first_bad_item():
    values = [1] * 200_000 + ["x"] + [2] * 10
    issue = check(values, {"type": "array", "items": {"type": "integer"}}, "axes")
    assert issue.path[-1] == 200_000 and issue.code == "wrong-type"
    assert len(issue.message) < 300


def test_a_deeply_nested_value_does_not_recurse_with_it():
    value: list = []
    for _ in range(100_000):  # far deeper than Python's recursion limit
        value = [value]
    issue = check(value, {"type": "array", "items": {"type": "array",
                                                      "items": {"type": "integer"}}})
    assert issue is not None and issue.path[-2:] == (0, 0)


def test_a_self_referring_shared_type_stops_at_a_bound():
    defs = {"loop": {"$ref": "#/$defs/loop"}}
    assert argument_issue("L", "x", 1, {"$ref": "#/$defs/loop"}, defs, ("x",)) is None


def test_nan_is_refused_only_where_the_fragment_bounds_the_number():
    assert check(math.nan, {"type": "number"}) is None
    assert check(math.nan, {"type": "number", "minimum": 0}).code == "out-of-range"


# --- whole files through plain validate (the shipped catalogue's fragments) ----------

FILE = """\
kerapipe: 1
data:
  source: {npz: data.npz}
  split: {validation: 0.2, test: 0.2}
model:
  layers:
    - LAYER
    - Flatten
    - Dense: {units: 3}
loss: sparse_categorical_crossentropy
"""


def issues_in(text: str) -> list[tuple]:
    from kerapipe.spec.validate import validate_text

    return [(i.code, format_path(i.path), i.line, i.column)
            for i in validate_text(text, "p.yaml").issues]


def with_layer(layer: str) -> str:
    return FILE.replace("LAYER", layer)


def format_path(path) -> str:
    from kerapipe.spec.issues import format_path as fmt

    return fmt(path)


@pytest.mark.parametrize("layer, code, path, value", [
    ("Dense: {units: ten}", "wrong-type", "Dense.units", "ten"),
    ("Conv2D: {filters: 8, kernel_size: 3, padding: smae}", "unknown-value",
     "Conv2D.padding", "smae"),
    ("Dropout: {rate: 1.5}", "out-of-range", "Dropout.rate", "1.5"),
    ("Conv2D: {filters: 8, kernel_size: [3]}", "out-of-range", "Conv2D.kernel_size", "[3]"),
    ("Conv2D: {filters: 8, kernel_size: [3, 0]}", "out-of-range", "Conv2D.kernel_size[1]",
     "0]"),
    ("LSTM: {units: 4, recurrent_activation: rellu}", "unknown-activation",
     "LSTM.recurrent_activation", "rellu"),
    ("Bidirectional: {layer: {LSTM: {units: 4, activation: tanhh}}}", "unknown-activation",
     "Bidirectional.layer.LSTM.activation", "tanhh"),
    ("Dense: {units: 3, use_bias: 'yes'}", "wrong-type", "Dense.use_bias", "'yes'"),
], ids=["units-text", "padding-typo", "rate-above-one", "kernel-size-one-number-2d",
        "kernel-size-item", "recurrent-activation", "nested-layer", "quoted-boolean"])
def test_a_layer_argument_of_the_wrong_type_is_one_issue_at_its_value(layer, code, path,
                                                                       value):
    column = len("    - ") + layer.index(value) + 1  # the value's first character
    assert issues_in(with_layer(layer)) == [(code, f"model.layers[0].{path}", 7, column)]


@pytest.mark.parametrize("layer", [
    "Conv2D: {filters: 8, kernel_size: [3, 5], strides: 1, padding: SAME}",
    "Conv2D: {filters: 8, kernel_size: 3, data_format: channels_last, activation: null}",
    "Dropout: {rate: 0}", "Dropout: {rate: 1}",
    "LSTM: {units: 4, recurrent_activation: hard_sigmoid, dropout: 0.1}",
], ids=["list-and-upper-case-padding", "null-activation", "rate-zero", "rate-one", "lstm"])
def test_a_layer_argument_of_its_type_is_accepted(layer):
    assert issues_in(with_layer(layer)) == []


BLOCK = """\
kerapipe: 1
data:
  source: {npz: data.npz}
  split: {validation: 0.2, test: 0.2}
model:
  blocks:
    drop:
      params: {rate: {type: any, default: 0.5}}
      layers:
        - Dropout: {rate: $rate}
  layers:
    - USE
    - Dense: {units: 3}
loss: sparse_categorical_crossentropy
"""


def test_a_block_parameter_is_checked_with_the_value_of_each_use():
    assert issues_in(BLOCK.replace("USE", "drop: {rate: 0.25}")) == []
    assert issues_in(BLOCK.replace("USE", "drop")) == []  # the default
    assert issues_in(BLOCK.replace("USE", "drop: {rate: 1.5}")) == [
        ("out-of-range", "model.blocks.drop.layers[0].Dropout.rate", 10, 27)]


@pytest.mark.parametrize("layer, code, path, value", [
    ("TransformerEncoder: {intermediate_dim: 8, num_heads: 2, activation: rellu}",
     "unknown-activation", "TransformerEncoder.activation", "rellu"),
    ("TransformerEncoder: {intermediate_dim: 8, num_heads: two}", "wrong-type",
     "TransformerEncoder.num_heads", "two"),
], ids=["hub-activation", "hub-number-as-text"])
def test_an_argument_the_catalogue_leaves_untyped_is_still_judged_by_its_name(layer, code,
                                                                               path, value):
    column = len("    - ") + layer.index(value) + 1
    assert issues_in(with_layer(layer)) == [(code, f"model.layers[0].{path}", 7, column)]


TRAINING = """\
kerapipe: 1
data:
  source: {npz: data.npz}
  split: {validation: 0.2, test: 0.2}
model:
  layers: [{Dense: {units: 3}}]
loss: {name: sparse_categorical_crossentropy, from_logits: true}
optimizer: {name: adam, learning_rate: 0.001}
metrics: [accuracy]
train:
  epochs: 4
  callbacks: [TerminateOnNaN]
"""


def training(old: str, new: str) -> list[tuple]:
    assert TRAINING.count(old) == 1
    return issues_in(TRAINING.replace(old, new))


@pytest.mark.parametrize("old, new, expected", [
    ("from_logits: true", "from_logits: 'yes'", ("wrong-type", "loss.from_logits", 7)),
    ("from_logits: true", "from_logits: true, reduction: summ",
     ("unknown-value", "loss.reduction", 7)),
    ("name: adam,", "name: adam, beta_1: high,", ("wrong-type", "optimizer.beta_1", 8)),
    ("[accuracy]", "[{name: auc, num_thresholds: many}]",
     ("wrong-type", "metrics[0].num_thresholds", 9)),
    ("learning_rate: 0.001", "learning_rate: {ExponentialDecay: {initial_learning_rate: "
     "0.1, decay_steps: ten, decay_rate: 0.9}}",
     ("wrong-type", "optimizer.learning_rate.ExponentialDecay.decay_steps", 8)),
    ("[TerminateOnNaN]", "[{ReduceLROnPlateau: {factor: 1.5}}]",
     ("out-of-range", "train.callbacks[0].ReduceLROnPlateau.factor", 12)),
    # these four were refused only by Keras (validate --deep, plan; tests/test_hostile_keras)
    ("name: adam,", "name: sgd, momentum: -1,", ("out-of-range", "optimizer.momentum", 8)),
    ("name: adam,", "name: adam, epsilon: x,", ("wrong-type", "optimizer.epsilon", 8)),
    ("learning_rate: 0.001", "learning_rate: {ExponentialDecay: {initial_learning_rate: "
     "0.1, decay_steps: 10, decay_rate: x}}",
     ("wrong-type", "optimizer.learning_rate.ExponentialDecay.decay_rate", 8)),
    ("[accuracy]", "[accuracy, {name: sparse_top_k_categorical_accuracy, k: x}]",
     ("wrong-type", "metrics[1].k", 9)),
], ids=["loss-boolean", "loss-choice", "optimizer-number", "metric-integer", "schedule-steps",
        "callback-bound", "sgd-momentum", "epsilon-text", "decay-rate-text", "top-k-text"])
def test_every_family_checks_its_typed_arguments(old, new, expected):
    assert [issue[:3] for issue in training(old, new)] == [expected]


def test_a_schedule_step_count_in_epochs_is_a_step_count():
    assert training("learning_rate: 0.001", "learning_rate: {PiecewiseConstantDecay: "
                    "{boundaries: [{epochs: 1}, 100], values: [0.1, 0.01, 0.001]}}") == []
    assert training("learning_rate: 0.001", "learning_rate: {ExponentialDecay: "
                    "{initial_learning_rate: 0.1, decay_steps: {epochs: 2}, "
                    "decay_rate: 0.9}}") == []


@pytest.mark.parametrize("layer, expected", [
    ("Dropout: {rate: .nan}", ("out-of-range", "model.layers[0].Dropout.rate")),
    ("Dense: {units: .inf}", ("wrong-type", "model.layers[0].Dense.units")),
    ("Dense: {units: " + "9" * 5000 + "}", ("out-of-range", "model.layers[0].Dense.units")),
    ("Conv2D: {filters: 8, kernel_size: [" + ", ".join(["3"] * 20_000) + "]}",
     ("out-of-range", "model.layers[0].Conv2D.kernel_size")),
], ids=["nan-rate", "inf-units", "5000-digit-units", "20000-item-kernel-size"])
def test_a_hostile_argument_value_is_one_issue_not_an_exception(layer, expected):
    assert [issue[:2] for issue in issues_in(with_layer(layer))] == [expected]
