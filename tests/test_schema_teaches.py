"""The JSON Schema teaches Keras in an editor: one object per layer list entry whose
properties are the layer classes (an unknown one is reported at its key), typed and
described arguments, the loss, optimizer and metric names as enums; and it still accepts
exactly what the validator accepts, as far as a schema can tell."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from kerapipe.spec.catalog import load_catalog, load_docs
from kerapipe.spec.schema import SHARED, pipeline_json_schema
from kerapipe.spec.validate import validate_text

ROOT = Path(__file__).resolve().parent.parent
MNIST = yaml.safe_load((ROOT / "pipelines" / "mnist.yaml").read_text())
DROPOUT = 5  # mnist.yaml's `Dropout` entry, after Flatten: the cases replace it


@pytest.fixture(scope="module")
def schema():
    return pipeline_json_schema()


@pytest.fixture(scope="module")
def validator(schema):
    return jsonschema.Draft202012Validator(schema)


def with_entry(entry, index=DROPOUT) -> dict:
    document = copy.deepcopy(MNIST)
    document["model"]["layers"][index] = entry
    return document


def schema_errors(validator, document) -> list:
    return list(validator.iter_errors(document))


def entry_mapping(schema) -> dict:
    """The object alternative of a layer list entry."""
    return next(v for v in schema["$defs"]["Entry"]["anyOf"] if v.get("type") == "object")


def resolve(schema, node: dict) -> dict:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_a_misspelt_layer_is_reported_at_its_key_and_names_no_other_layer(schema, validator):
    entry = {"Dens": {"units": 10}}
    assert schema_errors(validator, with_entry(entry))
    mapping = jsonschema.Draft202012Validator({"$defs": schema["$defs"], **entry_mapping(schema)})
    errors = list(mapping.iter_errors(entry))
    assert [(e.validator, e.instance) for e in errors] == [("pattern", "Dens")]
    assert list(errors[0].absolute_schema_path)[:1] == ["propertyNames"]


def test_the_unknown_layer_message_the_editor_shows(schema):
    names = entry_mapping(schema)["propertyNames"]
    assert names["patternErrorMessage"].startswith("Unknown layer: not a keras.layers")
    assert "kerapipe validate" in names["patternErrorMessage"]


def test_every_layer_class_is_one_property_of_the_entry_beside_the_wiring_keys(schema):
    mapping = entry_mapping(schema)
    keys = set(mapping["properties"])
    assert set(load_catalog().layers.entries) | {"inputs", "trainable", "repeat"} == keys
    assert "anyOf" not in json.dumps(mapping["properties"]["Dense"]["properties"]["units"])


def test_layers_and_arguments_carry_their_keras_docstrings(schema):
    dense = entry_mapping(schema)["properties"]["Dense"]
    documented = load_docs()["layers"]["Dense"]
    assert dense["title"] == "keras.layers.Dense"
    assert dense["description"] == documented["summary"]
    assert resolve(schema, dense["properties"]["units"])["description"] == \
        documented["args"]["units"]


def test_argument_types_come_from_the_catalogue_and_shared_types_sit_under_defs(schema):
    dense = entry_mapping(schema)["properties"]["Dense"]["properties"]
    assert resolve(schema, dense["units"])["type"] == "integer"
    activation = resolve(schema, dense["activation"])
    assert activation == resolve(schema, {"$ref": "#/$defs/activation"})
    assert set(load_catalog().arg_defs) <= set(schema["$defs"])


def test_activation_names_carry_their_summaries(schema):
    enum = next(f for f in schema["$defs"]["activation"]["anyOf"] if "enum" in f)
    described = dict(zip(enum["enum"], enum["enumDescriptions"]))
    assert described["relu"] == load_docs()["activations"]["relu"]


@pytest.mark.parametrize("entry", [
    pytest.param({"Dense": {"units": "ten"}}, id="units-a-word"),
    pytest.param({"Dense": {"units": 10, "activation": "rellu"}}, id="an-unknown-activation"),
    pytest.param({"Dense": {"units": 0}}, id="units-zero"),
    pytest.param({"Dropout": {"rate": "half"}}, id="rate-a-word"),
])
def test_the_schema_refuses_an_argument_value_of_the_wrong_type(validator, entry):
    assert schema_errors(validator, with_entry(entry))


@pytest.mark.parametrize("entry, ok", [
    ({"Conv2D": {"filters": 8, "kernel_size": 3, "padding": "SAME"}}, True),
    ({"Conv2D": {"filters": 8, "kernel_size": [3, 3], "padding": "same"}}, True),
    ({"Conv2D": {"filters": 8, "kernel_size": 3, "padding": "smae"}}, False),
    ({"Conv2D": {"filters": 8, "kernel_size": [3]}}, False),
], ids=["padding-in-capitals-as-keras-lowercases-it", "a-kernel-size-pair",
        "a-misspelt-padding", "one-kernel-size-on-a-2d-layer"])
def test_conv2d_arguments_in_the_schema(validator, entry, ok):
    assert (schema_errors(validator, with_entry(entry, index=0)) == []) == ok


# Entries the schema can judge without the rest of the file: its verdict is the
# validator's (a case the validator refuses for a reason of its own stays out).
PARITY = [
    pytest.param({"Dense": {"units": 3}}, id="a-layer"),
    pytest.param("Flatten", id="a-bare-name"),
    pytest.param({"Flatten": None}, id="a-layer-without-arguments"),
    pytest.param({"Dropout": {"rate": 0.5}, "trainable": False}, id="a-layer-and-trainable"),
    pytest.param("Flaten", id="a-misspelt-bare-name"),
    pytest.param("Dense", id="a-bare-name-of-a-layer-with-a-required-argument"),
    pytest.param({"Dens": {"units": 3}}, id="a-misspelt-layer"),
    pytest.param({"Dense": {"unit": 3}}, id="a-misspelt-argument"),
    pytest.param({"Dense": None}, id="a-required-argument-missing"),
    pytest.param({"Dense": {"units": 3}, "Dropout": {"rate": 0.1}}, id="two-layers-in-one-entry"),
    pytest.param({"Dense": {"units": 3}, "repeat": 2}, id="repeat-on-a-layer"),
    pytest.param({"trainable": False}, id="a-sibling-alone"),
    pytest.param({}, id="an-empty-entry"),
    pytest.param("applications.NoSuchNet", id="an-unknown-backbone"),
    pytest.param({"a.B": {}, "c.D": {}}, id="two-imported-layers-in-one-entry"),
    pytest.param(3, id="a-number"),
]


@pytest.mark.parametrize("entry", PARITY)
def test_the_schema_accepts_an_entry_exactly_when_the_validator_does(validator, entry):
    document = with_entry(entry)
    by_schema = schema_errors(validator, document) == []
    result = validate_text(yaml.safe_dump(document, sort_keys=False), "p.yaml")
    assert by_schema == (result.errors == []), [i.format() for i in result.errors]


@pytest.mark.parametrize("field, value, ok", [
    ("loss", "sparse_categorical_crossentropy", True),
    ("loss", "mse", True),
    ("loss", "SparseCategoricalCrossentropy", True),
    ("loss", "my_losses.Focal", True),
    ("loss", {"name": "categorical_crossentropy", "label_smoothing": 0.1}, True),
    ("loss", "sparse_categorical_crossentropyy", False),
    ("optimizer", "adamw", True),
    ("optimizer", {"name": "SGD", "momentum": 0.9}, True),
    ("optimizer", "adamm", False),
    ("metrics", ["accuracy", "acc", "auc", {"name": "top_k_categorical_accuracy", "k": 3}], True),
    ("metrics", ["acuracy"], False),
    ("optimizer", {"name": "adam", "beta_11": 0.9}, False),
    ("optimizer", {"learning_rate": 0.01, "beta_1": 0.9}, True),  # adam, the default
    ("optimizer", {"learning_rate": 0.01, "momentum": 0.9}, False),  # not adam's
    ("loss", {"name": "my_losses.Focal", "gamma": 2}, True),  # an imported loss: any key
    ("loss", {"name": "categorical_crossentropy", "label_smoothin": 0.1}, False),
    ("metrics", [{"name": "auc", "num_threshold": 3}], False),
    ("metrics", [{"name": "acc", "dtype": "float32"}], False),  # `acc` only alone
], ids=lambda v: json.dumps(v) if not isinstance(v, bool) else str(v))
def test_loss_optimizer_and_metric_names_are_the_catalogues(validator, field, value, ok):
    document = {**MNIST, field: value}
    assert (schema_errors(validator, document) == []) == ok


@pytest.mark.parametrize("head, ok", [
    ({"name": "out", "loss": "mse", "metrics": ["mae"]}, True),
    ({"name": "out", "loss": "msee"}, False),
    ({"name": "out", "metrics": [{"name": "auc", "num_threshold": 3}]}, False),
], ids=["known-names", "a-misspelt-loss", "an-unknown-metric-argument"])
def test_an_outputs_loss_and_metrics_are_those_of_the_top_level(validator, head, ok):
    document = {**MNIST, "model": {**MNIST["model"], "outputs": [head]}}
    assert (schema_errors(validator, document) == []) == ok


def test_the_name_enums_offer_aliases_and_class_names_each_described(schema):
    shorthand = resolve(schema, schema["$defs"]["LossSpec"]["anyOf"][0])
    names = next(a for a in shorthand["anyOf"] if "enum" in a)
    assert {"sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"} <= set(names["enum"])
    described = dict(zip(names["enum"], names["enumDescriptions"]))
    summary = load_docs()["losses"]["SparseCategoricalCrossentropy"]["summary"]
    assert described["sparse_categorical_crossentropy"] == summary


def test_a_schedule_step_count_may_be_written_in_epochs(validator):
    schedule = {"ExponentialDecay": {"initial_learning_rate": 0.01,
                                     "decay_steps": {"epochs": 2}, "decay_rate": 0.9}}
    document = {**MNIST, "optimizer": {"name": "adam", "learning_rate": schedule}}
    assert schema_errors(validator, document) == []


def test_a_layer_that_is_also_a_preprocessing_step_is_written_once(schema):
    steps = schema["$defs"]["PreprocessStep"]["properties"]
    assert entry_mapping(schema)["properties"]["RandomFlip"] == steps["RandomFlip"]
    assert resolve(schema, steps["RandomFlip"])["title"] == "keras.layers.RandomFlip"


def test_an_argument_many_layers_repeat_is_written_once_under_defs(schema):
    dense = entry_mapping(schema)["properties"]["Dense"]["properties"]
    assert dense["name"]["$ref"].startswith("#/$defs/" + SHARED)
    description = json.dumps(resolve(schema, dense["name"])["description"])
    rest = {**schema, "$defs": {k: v for k, v in schema["$defs"].items()
                                if not k.startswith(SHARED)}}
    assert description not in json.dumps(rest)


def test_the_schema_is_the_same_every_time(schema):
    assert json.dumps(pipeline_json_schema()) == json.dumps(schema)


def test_validate_never_reads_the_docstrings_only_the_schema_does():
    code = ("from kerapipe.spec import catalog\n"
            "from kerapipe.spec.validate import validate_text\n"
            "text = open('pipelines/mnist.yaml').read().replace('Flatten: {}', 'Flaten: {}')\n"
            "assert validate_text(text, 'mnist.yaml').errors\n"
            "print(catalog.load_docs.cache_info().currsize)\n"
            "from kerapipe.spec.schema import pipeline_json_schema\n"
            "pipeline_json_schema()\n"
            "print(catalog.load_docs.cache_info().currsize)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert done.stdout.split() == ["0", "1"]


PROBES = [1, 0, -1, 2.5, 0.5, "same", "SAME", "relu", "rellu", True, None, [1, 1], [3], "ten",
          {"a": 1}, "glorot_uniform", "float32"]


@pytest.mark.parametrize("layer", ["Dense", "Conv2D", "Dropout", "LSTM", "BatchNormalization",
                                   "Embedding", "MaxPooling2D", "Conv1D"])
def test_the_schema_and_validate_agree_on_each_typed_argument_of_a_layer(schema, layer):
    from kerapipe.spec.keras_objects import LayerSpec

    entry = load_catalog().layers.entries[layer]
    mapping = jsonschema.Draft202012Validator({"$defs": schema["$defs"], **entry_mapping(schema)})
    disagree = []
    for arg in sorted(entry.args):
        for value in PROBES:
            kwargs = {**{name: 1 for name in entry.required}, arg: value}
            issues: list = []
            by_validate = LayerSpec.from_yaml({layer: kwargs}, ("model", "layers", 0),
                                              issues) is not None
            by_schema = not list(mapping.iter_errors({layer: kwargs}))
            if by_validate != by_schema:
                disagree.append((arg, value, by_schema, [i.code for i in issues]))
    assert disagree == []
