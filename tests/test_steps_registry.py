"""Preprocessing steps registered once (issue 11): ``spec/steps.STEPS`` gives each step's
options, stage, shape effect and docs; parsing, the ``unknown-step`` message, the JSON
Schema, the README, the shape checks and the compile side's layer builders read it."""

from __future__ import annotations

from dataclasses import dataclass

import jsonschema
import pytest
import yaml

from kerapipe.spec import steps
from kerapipe.spec.model import PreprocessStep
from kerapipe.spec.steps import AUGMENTATION, STAGES, STEPS, StepKind, step_kind
from kerapipe.spec.typed import spec_field
from kerapipe.spec.validate import validate_text

PIPELINE = """kerapipe: 1
data:
  source: {sample: mnist}
  preprocess:
    - rescale: 1/255
    - %s
model:
  layers:
    - Flatten
    - Dense: {units: 10}
train: {epochs: 1}
"""


def test_the_compile_side_builds_a_layer_for_every_layer_step_and_no_other():
    from kerapipe.compiler.preprocess import LAYER_BUILDERS

    assert set(LAYER_BUILDERS) == {name for name, kind in STEPS.items() if kind.stage == "layer"}


def test_every_step_has_a_stage_a_doc_and_an_example_that_parses():
    for kind in (*STEPS.values(), AUGMENTATION):
        assert kind.stage in STAGES and kind.doc, kind.name
        issues: list = []
        parsed = PreprocessStep.from_yaml(yaml.safe_load(kind.example), ("s",), issues)
        assert issues == [] and step_kind(parsed.kind) is kind, kind.name


def test_the_stage_says_where_a_step_runs():
    from kerapipe.compiler.deep import raw_example_shape
    from kerapipe.compiler.preprocess import preprocessing_layers
    from kerapipe.spec.validate import load_spec

    imdb = load_spec({"kerapipe": 1, "data": {"source": {"keras": "imdb"}, "preprocess": [
        {"pad_sequences": 12}, {"one_hot": {}}, {"rescale": 0.5}]},
        "model": {"layers": [{"Dense": {"units": 2}}]}, "loss": "categorical_crossentropy"})
    assert raw_example_shape(imdb) == (12,)  # load: before any layer
    prep = preprocessing_layers(imdb, (12,))
    assert [name for name, _ in prep.stages] == ["raw input", "rescale"]  # layer steps only
    assert prep.one_hot_classes is None  # label: no layer, the count comes from the data


def test_a_load_step_on_files_leaves_the_shape_to_the_data():
    from kerapipe.compiler.deep import raw_example_shape
    from kerapipe.spec.validate import load_spec

    images = load_spec({"kerapipe": 1, "data": {"source": {"images": "x"}, "preprocess": [
        {"pad_sequences": 12}]}, "model": {"layers": [{"Dense": {"units": 2}}]}})
    assert raw_example_shape(images) is None


@dataclass(frozen=True)
class FlattenStep:
    """Flatten each example to one axis (keras.layers.Flatten)."""

    data_format: str = spec_field("channels_last", "Where the channels are.")


def _flat_shape(shape, options, path, issues):
    if shape is None:
        return None
    size = 1
    for dim in shape:
        size *= dim
    return (size,)


@pytest.fixture
def flatten_step(monkeypatch):
    """A step added the way the registry promises: its entry, its layer builder."""
    import keras

    from kerapipe.compiler.preprocess import LAYER_BUILDERS

    kind = StepKind("flatten", FlattenStep, "layer", _flat_shape, "flatten: {}")
    monkeypatch.setitem(STEPS, "flatten", kind)
    monkeypatch.setitem(LAYER_BUILDERS, "flatten",
                        lambda options: keras.layers.Flatten(data_format=options.data_format,
                                                             name="flatten"))
    return kind


def test_a_registered_step_is_parsed_traced_and_built(flatten_step):
    from kerapipe.compiler.preprocess import preprocessing_layers
    from kerapipe.spec.checks import trace_example_shape

    result = validate_text(PIPELINE % "flatten: {}", "p.yaml")
    assert [i.format() for i in result.issues] == []
    assert result.spec.data.preprocess[1].options == FlattenStep()
    assert trace_example_shape(result.spec) == (784,)
    assert preprocessing_layers(result.spec, (28, 28)).stages[-1] == ("flatten", (784,))


def test_a_registered_step_is_in_the_unknown_step_message(flatten_step):
    issue, = validate_text(PIPELINE % "flaten: {}", "p.yaml").errors
    assert issue.code == "unknown-step" and issue.key_path == "data.preprocess[1].flaten"
    assert "Did you mean 'flatten'?" in issue.message
    assert ("Steps: rescale, normalize, reshape, resize, one_hot, pad_sequences, "
            "preprocess_input, flatten, a Keras Random* layer") in issue.message


def test_a_registered_step_is_in_the_schema_and_the_readme_tables(flatten_step):
    from kerapipe.spec.schema import (iter_keys, pipeline_json_schema, render_key_table,
                                      render_step_table)

    validator = jsonschema.Draft202012Validator(pipeline_json_schema())
    assert list(validator.iter_errors(yaml.safe_load(PIPELINE % "flatten: {}"))) == []
    assert list(validator.iter_errors(yaml.safe_load(PIPELINE % "flatten: {x: 1}")))
    assert "data.preprocess[].flatten.data_format" in [path for path, *_ in iter_keys()]
    assert "| `data.preprocess[].flatten` | a mapping |  | Flatten each example" \
        in render_key_table()
    assert ("| `flatten` | `- flatten: {}` | as a Keras layer, in tf.data and in the saved "
            "model | Flatten each example to one axis (keras.layers.Flatten). |"
            in render_step_table())


def test_the_readme_lists_every_step_from_the_registry():
    from pathlib import Path

    from kerapipe.spec.schema import render_step_table

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    table = readme.split("<!-- steps:start -->\n", 1)[1].split("<!-- steps:end -->", 1)[0]
    assert table == render_step_table() + "\n"
    assert [row.split("`")[1] for row in table.splitlines()[2:]] == [*STEPS, "Random*",
                                                                      "adaptable Keras layer"]


def test_shape_effects_report_what_a_step_cannot_take():
    issues: list = []
    normalize = STEPS["normalize"]
    assert normalize.example_shape((28, 28), steps.NormalizeStep(axis=3), ("p",), issues) \
        == (28, 28)
    assert [(i.code, i.path) for i in issues] == [("out-of-range", ("p", "axis"))]
    assert STEPS["reshape"].example_shape((28, 28), steps.ReshapeStep([-1, 7]), ("p",), []) \
        == (112, 7)
    assert STEPS["pad_sequences"].example_shape(None, steps.PadSequencesStep(5), ("p",), []) \
        == (5,)
