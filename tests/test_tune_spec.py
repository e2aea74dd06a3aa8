"""The `tune:` section on the spec side (no TensorFlow, no keras-tuner): its types, and
`validate` checking every choice and range end against the rest of the file, each issue
at its line in `tune:`."""

from __future__ import annotations

import json

import pytest

from kerapipe.spec.issues import ERROR
from kerapipe.spec.tune import MAX_CHECKED_VALUES, MAX_CHOICES, SearchDimension, override_text
from kerapipe.spec.typed import to_plain
from kerapipe.spec.validate import validate_text
from kerapipe.spec.yaml_loader import load_document

BASE = "\n".join((
    "kerapipe: 1",                                                 # 1
    "name: t",                                                     # 2
    "data:",                                                       # 3
    "  source: {sample: mnist}",                                   # 4
    "  split: {validation: 0.2, test: 0.2}",                       # 5
    "  preprocess: [{rescale: 1/255}]",                            # 6
    "model:",                                                      # 7
    "  layers:",                                                   # 8
    "    - Flatten",                                               # 9
    "    - Dense: {units: 16, activation: relu}",                  # 10
    "    - Dense: {units: 10}",                                    # 11
    "optimizer: {name: adam, learning_rate: 0.001}",               # 12
    "tune:",                                                       # 13
    "  space:",                                                    # 14
)) + "\n"


def with_space(*lines: str, after: str = "") -> str:
    return BASE + "".join(f"    {line}\n" for line in lines) + after


def codes(text: str) -> list[tuple[str, str, int]]:
    result = validate_text(text, "p.yaml")
    return [(i.code, i.key_path, i.line) for i in result.issues if i.severity == ERROR]


def test_a_tune_section_is_typed_with_its_defaults():
    result = validate_text(with_space("optimizer.learning_rate: {log_uniform: [0.0001, 0.01]}",
                                      "model.layers[1].Dense.units: [32, 64, 128]",
                                      "train.epochs: {int: [1, 9], step: 2}",
                                      "data.split.validation: {uniform: [0.1, 0.3]}"), "p.yaml")
    assert result.errors == []
    tune = result.spec.tune
    assert (tune.objective, tune.direction, tune.tuner, tune.max_trials,
            tune.executions_per_trial) == ("val_loss", "auto", "random", 10, 1)
    assert tune.space == {
        "optimizer.learning_rate": SearchDimension("log_uniform", low=0.0001, high=0.01),
        "model.layers[1].Dense.units": SearchDimension("choices", (32, 64, 128)),
        "train.epochs": SearchDimension("int", low=1, high=9, step=2),
        "data.split.validation": SearchDimension("uniform", low=0.1, high=0.3)}


def test_the_resolved_spec_writes_the_space_as_the_file_does():
    result = validate_text(with_space("train.epochs: {int: [1, 9], step: 2}",
                                      "optimizer.name: [adam, sgd]"), "p.yaml")
    plain = to_plain(result.spec)["tune"]
    assert plain["space"] == {"train.epochs": {"int": [1, 9], "step": 2},
                              "optimizer.name": ["adam", "sgd"]}


def test_a_file_without_tune_has_none():
    result = validate_text(BASE.replace("tune:\n  space:\n", ""), "p.yaml")
    assert result.errors == [] and result.spec.tune is None


@pytest.mark.parametrize("line, code, path", [
    ("model.layers[1].Dense.unit: [8, 16]", "unknown-tune-key", "tune.space.model.layers[1].Dense.unit"),
    ("model.layers[7].Dense.units: [8]", "unknown-tune-key", "tune.space.model.layers[7].Dense.units"),
    ("train.epoch: [1, 2]", "unknown-tune-key", "tune.space.train.epoch"),
    ("'train..epochs': [1, 2]", "unknown-tune-key", "tune.space.train..epochs"),
    ("tune.max_trials: [1, 2]", "unknown-tune-key", "tune.space.tune.max_trials"),
    ("kerapipe: [1]", "unknown-tune-key", "tune.space.kerapipe"),
    ("data.batch_size: [32, 0]", "bad-tune-value", "tune.space.data.batch_size"),
    ("data.batch_size: [32, '64']", "bad-tune-value", "tune.space.data.batch_size"),
    ("optimizer.learning_rate: {uniform: [0, 0.1]}", "bad-tune-value",
     "tune.space.optimizer.learning_rate"),
    ("model.layers[1].Dense.activation: [relu, rleu]", "bad-tune-value",
     "tune.space.model.layers[1].Dense.activation"),
    ("optimizer.name: [adam, adamm]", "bad-tune-value", "tune.space.optimizer.name"),
    ("train.epochs: {int: [0, 3]}", "bad-tune-value", "tune.space.train.epochs"),
    ("data.batch_size: {uniform: [16, 64]}", "bad-tune-value", "tune.space.data.batch_size"),
    ("train.epochs: []", "bad-tune-range", "tune.space.train.epochs"),
    ("train.epochs: 3", "bad-tune-range", "tune.space.train.epochs"),
    ("train.epochs: {int: [3, 1]}", "bad-tune-range", "tune.space.train.epochs.int"),
    ("train.epochs: {int: [1.5, 3]}", "bad-tune-range", "tune.space.train.epochs.int"),
    ("train.epochs: {int: [1, 3], step: 0}", "bad-tune-range", "tune.space.train.epochs.step"),
    ("optimizer.learning_rate: {uniform: [0.1, 0.2], step: 1}", "bad-tune-range",
     "tune.space.optimizer.learning_rate.step"),
    ("optimizer.learning_rate: {log_uniform: [0, 0.1]}", "bad-tune-range",
     "tune.space.optimizer.learning_rate.log_uniform"),
    ("optimizer.learning_rate: {normal: [0, 1]}", "bad-tune-range",
     "tune.space.optimizer.learning_rate"),
    ("optimizer.learning_rate: {uniform: [0.1, 0.2], log_uniform: [0.1, 1]}", "bad-tune-range",
     "tune.space.optimizer.learning_rate"),
], ids=lambda v: v if isinstance(v, str) and "tune.space" not in v and ":" in v else None)
def test_a_bad_key_path_or_value_is_an_issue_at_its_tune_key(line, code, path):
    found = codes(with_space("train.epochs: [1, 2]", line) if not line.startswith("train.epochs")
                  else with_space(line))
    assert [(c, p) for c, p, _ in found] == [(code, path)]
    assert found[0][2] == (16 if not line.startswith("train.epochs") else 15)


def test_a_value_issue_quotes_the_error_the_key_itself_gets():
    result = validate_text(with_space("data.batch_size: [32, 0]"), "p.yaml")
    (issue,) = result.errors
    assert issue.format() == (
        "p.yaml:15:5: error[bad-tune-value]: tune.space.data.batch_size: choice 2, 0, does not "
        "validate there: error[out-of-range] at data.batch_size: must be at least 1. "
        "Received: batch_size=0 (an integer)")


def test_a_misspelt_argument_is_an_unknown_key_with_the_keys_did_you_mean():
    (issue,) = validate_text(with_space("model.layers[1].Dense.unit: [8]"), "p.yaml").errors
    assert issue.code == "unknown-tune-key" and "Did you mean 'units'?" in issue.message


@pytest.mark.parametrize("line", [
    "train.early_stopping.patience: [1, 2]",   # a mapping --set creates
    "loss.from_logits: [true, false]",          # under the shorthand `loss: name`
    "model.layers[2].Dense.kernel_regularizer: [null, l2]",
    "optimizer: [adam, {name: sgd, momentum: 0.9}]",  # whole mappings as choices
    "model.layers: [[Flatten, {Dense: {units: 10}}], [Flatten, {Dense: {units: 32}}, {Dense: {units: 10}}]]",
], ids=["created-mapping", "shorthand", "null-or-name", "mappings", "lists"])
def test_a_key_path_set_could_create_or_expand_is_searchable(line):
    text = with_space(line).replace("tune:\n", "loss: sparse_categorical_crossentropy\ntune:\n")
    assert codes(text) == []


def test_each_choice_is_checked_not_only_the_first():
    found = codes(with_space("model.layers[1].Dense.units: [8, 16, 32, -4]"))
    assert found == [("bad-tune-value", "tune.space.model.layers[1].Dense.units", 15)]


def test_every_bad_key_path_is_reported_at_once():
    found = codes(with_space("data.batch_size: [0]", "train.epoch: [1]",
                             after="  objective: val_acc\n"))
    assert [c for c, _, _ in found] == ["bad-tune-value", "unknown-tune-key", "unknown-objective"]


def test_the_work_of_checking_values_is_bounded():
    too_many = json.dumps(list(range(1, MAX_CHOICES + 2)))
    assert codes(with_space(f"train.epochs: {too_many}"))[0][0] == "bad-tune-range"
    per_key = MAX_CHECKED_VALUES // 3 + 1   # 3 keys, each under MAX_CHOICES, over the total
    lines = [f"{key}: {json.dumps(list(range(1, per_key + 1)))}"
             for key in ("train.epochs", "data.batch_size", "model.layers[1].Dense.units")]
    assert [(c, p) for c, p, _ in codes(with_space(*lines))] == [("bad-tune-range", "tune.space")]


@pytest.mark.parametrize("objective, expected", [
    ("val_loss", []), ("val_accuracy", []),
    ("accuracy", ["unknown-objective"]),           # the training value: not for scoring
    ("val_auc", ["unknown-objective"]),            # a metric the run does not log
], ids=["val_loss", "val_accuracy", "training-value", "not-logged"])
def test_the_objective_is_a_validation_value_the_run_logs(objective, expected):
    found = codes(with_space("train.epochs: [1, 2]", after=f"  objective: {objective}\n"))
    assert [c for c, _, _ in found] == expected


def test_an_objective_without_a_validation_split_says_so():
    text = with_space("train.epochs: [1, 2]", after="  objective: val_loss\n").replace(
        "validation: 0.2", "validation: 0")
    (issue,) = validate_text(text, "p.yaml").errors
    assert issue.code == "unknown-objective" and "no validation split" in issue.message


@pytest.mark.parametrize("key, value, expected", [
    ("tuner", "grid", "unknown-value"), ("max_trials", 0, "out-of-range"),
    ("executions_per_trial", 11, "out-of-range"), ("direction", "up", "unknown-value"),
], ids=["tuner", "max_trials", "executions", "direction"])
def test_the_search_settings_are_typed(key, value, expected):
    found = codes(with_space("train.epochs: [1, 2]", after=f"  {key}: {value}\n"))
    assert [(c, p) for c, p, _ in found] == [(expected, f"tune.{key}")]


@pytest.mark.parametrize("value", [1e-05, 0.1 + 0.2, 3, "relu", True, None, [28, 28, 1],
                                   {"name": "sgd", "momentum": 0.9}, "yes", "1e3"],
                         ids=repr)
def test_a_value_is_set_as_text_that_reads_back_exactly(value):
    text = override_text("a.b", value).split("=", 1)[1]
    loaded = load_document(f"v: {text}\n").data["v"]
    assert loaded == value and type(loaded) is type(value)


def test_a_trial_value_with_a_set_is_the_set_of_the_file():
    """The check applies the value as `--set` does, on top of the command's own `--set`
    values: a value valid only with them is valid."""
    text = with_space("model.layers[1].Dense.units: [8]")
    result = validate_text(text, "p.yaml", ["model.layers[1].Dense.units=4"])
    assert result.errors == []
