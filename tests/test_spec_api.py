"""The spec-side Python API: load_spec from a path, a string or a dict; defaults resolved."""

from pathlib import Path

import pytest

from kerapipe import SpecError, load_spec
from kerapipe.spec.checks import logged_metric_names, output_activation
from kerapipe.spec.model import LayerSpec, ScheduleSpec
from kerapipe.spec.steps import RescaleStep
from kerapipe.spec.typed import to_plain

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = {"kerapipe": 1, "data": {"source": {"sample": "mnist"}},
           "model": {"layers": [{"Flatten": {}}, {"Dense": {"units": 10}}]}}


def test_load_spec_accepts_path_string_and_dict_alike():
    from_path = load_spec(ROOT / "pipelines" / "mnist.yaml")
    from_text = load_spec((ROOT / "pipelines" / "mnist.yaml").read_text())
    assert from_path.model == from_text.model
    assert load_spec(MINIMAL).model.layers[1].layer == LayerSpec("Dense", {"units": 10})


def test_defaults_are_filled_in():
    spec = load_spec(MINIMAL)
    assert spec.name == "pipeline"
    assert spec.seed == 42
    assert spec.data.batch_size == 32
    assert spec.data.split.validation == 0.1
    assert spec.loss.name == "sparse_categorical_crossentropy"
    assert spec.optimizer.learning_rate == 0.001
    assert [m.name for m in spec.metrics] == ["accuracy"]
    assert spec.train.epochs == 10 and spec.train.early_stopping is None


def test_name_defaults_to_the_file_stem(tmp_path):
    text = (ROOT / "pipelines" / "mnist.yaml").read_text()
    unnamed = "".join(line for line in text.splitlines(keepends=True)
                      if not line.startswith("name:"))
    assert unnamed != text  # the shipped file sets `name:`; this copy does not
    path = tmp_path / "my-digits.yaml"
    path.write_text(unnamed)
    assert load_spec(path).name == "my-digits"
    assert load_spec(str(path)).name == "my-digits"
    assert load_spec(unnamed).name == "pipeline"  # text has no file stem


def test_a_name_the_file_sets_wins_over_its_stem():
    assert load_spec(ROOT / "pipelines" / "mnist-full.yaml").name == "mnist-full-cnn"
    assert load_spec(str(ROOT / "pipelines" / "mnist.yaml")).name == "mnist-cnn"


def test_scalar_is_shorthand_for_first_key():
    spec = load_spec({**MINIMAL, "loss": {"name": "categorical_crossentropy",
                                          "label_smoothing": 0.1},
                      "optimizer": "sgd", "data": {"source": {"keras": "cifar10"},
                                                   "preprocess": [{"rescale": "1/255"},
                                                                  {"one_hot": None}]},
                      "model": {"layers": ["Flatten", {"Dense": {"units": 10}}]}})
    assert spec.optimizer.name == "sgd"
    assert spec.loss.kwargs == {"label_smoothing": 0.1}
    assert spec.data.source.keras.name == "cifar10"
    assert spec.data.preprocess[0].options == RescaleStep(scale=1 / 255, offset=0.0)
    assert spec.model.layers[0].layer == LayerSpec("Flatten", {})


def test_schedule_is_parsed_as_a_keras_schedule():
    spec = load_spec({**MINIMAL, "optimizer": {"name": "adam", "learning_rate": {
        "ExponentialDecay": {"initial_learning_rate": 0.01, "decay_steps": 100,
                             "decay_rate": 0.9}}}})
    assert spec.optimizer.learning_rate == ScheduleSpec(
        "ExponentialDecay", {"initial_learning_rate": 0.01, "decay_steps": 100,
                             "decay_rate": 0.9})


def test_nested_layer_argument_is_a_layer_spec():
    spec = load_spec({**MINIMAL, "data": {"source": {"keras": "imdb"},
                                          "preprocess": [{"pad_sequences": 50}]},
                      "model": {"layers": [
                          {"Embedding": {"input_dim": 1000, "output_dim": 8}},
                          {"Bidirectional": {"layer": {"LSTM": {"units": 4}}}},
                          {"Dense": {"units": 1, "activation": "sigmoid"}}]},
                      "loss": "binary_crossentropy"})
    assert spec.model.layers[1].kwargs["layer"] == LayerSpec("LSTM", {"units": 4})


def test_resolved_spec_round_trips_through_plain_data():
    spec = load_spec(ROOT / "pipelines" / "mnist.yaml")
    assert load_spec(to_plain(spec)) == spec


def test_load_spec_raises_spec_error_with_every_issue():
    with pytest.raises(SpecError) as info:
        load_spec({"kerapipe": 1, "data": {"source": {}}, "model": {"layers": []},
                   "train": {"epochs": 0}})
    assert [(i.code, i.key_path) for i in info.value.issues] == [
        ("one-of", "data.source"), ("out-of-range", "model.layers"),
        ("out-of-range", "train.epochs")]


@pytest.mark.parametrize("layers, expected", [
    ([{"Dense": {"units": 10}}], "linear"),
    ([{"Dense": {"units": 10, "activation": "softmax"}}], "softmax"),
    ([{"Dense": {"units": 10}}, {"Softmax": {}}], "softmax"),
    ([{"Dense": {"units": 10}}, {"Activation": {"activation": "sigmoid"}}], "sigmoid"),
    ([{"Dense": {"units": 10, "activation": "softmax"}}, {"Dropout": {"rate": 0.1}}], "softmax"),
], ids=["dense-logits", "dense-softmax", "softmax-layer", "activation-layer", "dropout-after"])
def test_output_activation_is_read_from_the_last_shaping_layer(layers, expected):
    spec = load_spec({**MINIMAL, "model": {"layers": layers}})
    assert output_activation(spec.model.layers) == expected


def test_logged_metric_names_follow_keras_naming():
    spec = load_spec({**MINIMAL, "metrics": ["accuracy", "SparseTopKCategoricalAccuracy",
                                             "mse"]})
    assert logged_metric_names(spec) == [
        "loss", "accuracy", "sparse_top_k_categorical_accuracy", "mse",
        "val_loss", "val_accuracy", "val_sparse_top_k_categorical_accuracy", "val_mse"]
