"""Graphs and blocks on the compile side (issue 12, items 1, 3 and 6): the Keras model
``build_core_model`` makes has the wiring the file says (each layer's inbound tensors),
repeats are scoped copies, ``trainable: false`` freezes exactly what it is written on,
several inputs reach a layer as its ``call`` takes them (``MultiHeadAttention(query,
value)``, a list for merges), ``--deep`` reports a merge's shapes at its line, the resolved
spec round-trips, and a residual pipeline trains and its saved model predicts.

Models are built without weights where only the wiring matters; the one training run is
one epoch on 30 generated examples.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerapipe.compiler.build import build_core_model, node_layers
from kerapipe.compiler.deep import deep_check
from kerapipe.pipeline import compile_pipeline
from kerapipe.spec.graph import MODEL_INPUT, model_nodes
from kerapipe.spec.typed import to_plain
from kerapipe.spec.validate import load_spec, validate_text

# See tests/test_compile_run.py: NumPy 2.4's warning for any Keras model saved on TF 2.21.
KERAS_SAVE_WARNING = ("ignore:__array__ implementation doesn't accept a copy keyword, so "
                      "passing copy=False failed:DeprecationWarning")

REST = """\
kerapipe: 1
name: graph
data:
  source: {sample: mnist}
  preprocess:
    - rescale: 1/255
    - reshape: [28, 28, 1]
loss: sparse_categorical_crossentropy
train: {epochs: 1}
"""

RESIDUAL = """\
model:
  blocks:
    residual:
      params: {filters: int, kernel: {type: int, default: 3}}
      layers:
        - Conv2D: {filters: $filters, kernel_size: $kernel, padding: same, activation: relu, name: a}
        - Conv2D: {filters: $filters, kernel_size: $kernel, padding: same, name: b}
        - Add: {}
          inputs: [input, b]
  layers:
    - Conv2D: {filters: 8, kernel_size: 3, padding: same, name: stem}
    - residual: {filters: 8, name: stage}
      repeat: REPEAT
    - GlobalAveragePooling2D
    - Dense: {units: 10}
"""


def spec_of(model: str):
    """The typed spec of an mnist pipeline with this ``model:`` section; no errors."""
    result = validate_text(model + REST, "p.yaml")
    assert [i for i in result.issues if i.severity == "error"] == []
    return result.spec


def built(model: str, input_shape=(28, 28, 1)):
    """(nodes, {node name: Keras layer}, model) for this ``model:`` section."""
    spec = spec_of(model)
    keras_model = build_core_model(spec, input_shape, allocate=False)
    layers = {node.name: layer for node, layer in node_layers(keras_model)}
    return model_nodes(spec), layers, keras_model


def fed_by(layer) -> list[str]:
    """The Keras names of the layers whose outputs ``layer`` is called on."""
    (node,) = layer._inbound_nodes
    return [tensor._keras_history.operation.name for tensor in node.input_tensors]


def assert_wired_as_the_nodes_say(nodes, layers, keras_model):
    names = {name: layer.name for name, layer in layers.items()}
    names[MODEL_INPUT] = keras_model.layers[0].name
    assert len(layers) == len(nodes)
    for node in nodes:
        assert type(layers[node.name]).__name__ == node.layer.name
        assert fed_by(layers[node.name]) == [names[name] for name in node.inputs], node.name


def test_a_residual_block_is_built_with_the_wiring_the_file_says():
    nodes, layers, keras_model = built(RESIDUAL.replace("REPEAT", "1"))
    assert [n.name for n in nodes] == ["stem", "stage.a", "stage.b", "stage.layers[2]",
                                       "model.layers[2]", "model.layers[3]"]
    assert_wired_as_the_nodes_say(nodes, layers, keras_model)
    assert fed_by(layers["stage.layers[2]"]) == ["stem", "stage.b"]  # the skip connection
    assert keras_model.output_shape == (None, 10)


def test_repeat_3_makes_three_scoped_copies_each_taking_the_last():
    nodes, layers, keras_model = built(RESIDUAL.replace("REPEAT", "3"))
    assert_wired_as_the_nodes_say(nodes, layers, keras_model)
    convs = [layers[f"stage.{i}.{name}"] for i in (1, 2, 3) for name in "ab"]
    assert [layer.name for layer in convs] == ["stage.1.a", "stage.1.b", "stage.2.a",
                                               "stage.2.b", "stage.3.a", "stage.3.b"]
    assert len({id(layer) for layer in convs}) == 6  # copies, not one layer shared
    adds = [layers[f"stage.{i}.layers[2]"] for i in (1, 2, 3)]
    assert fed_by(adds[0]) == ["stem", "stage.1.b"]
    assert fed_by(layers["stage.2.a"]) == [adds[0].name]
    assert fed_by(adds[1]) == [adds[0].name, "stage.2.b"]
    assert fed_by(layers["stage.3.a"]) == [adds[1].name]
    assert fed_by(layers["model.layers[2]"]) == [adds[2].name]


FROZEN = """\
model:
  blocks:
    pair_dense:
      layers:
        - Dense: {units: 4, name: p}
        - Dense: {units: 4, name: q}
  layers:
    - Flatten
    - Dense: {units: 4, name: frozen}
      trainable: false
    - Dense: {units: 4, name: free}
    - pair_dense: {name: fb}
      trainable: false
    - pair_dense: {name: tb}
    - Dense: {units: 10, name: head}
"""


def test_trainable_false_freezes_exactly_the_layer_and_the_block_use_it_is_on():
    spec = spec_of(FROZEN)
    keras_model = build_core_model(spec, (28, 28))
    layers = {node.name: layer for node, layer in node_layers(keras_model)}
    frozen = {"frozen", "fb.p", "fb.q"}
    for name in ("frozen", "free", "fb.p", "fb.q", "tb.p", "tb.q", "head"):
        layer = layers[name]
        if name in frozen:
            assert not layer.trainable and layer.trainable_weights == [], name
            assert len(layer.non_trainable_weights) == 2, name
        else:
            assert layer.trainable and len(layer.trainable_weights) == 2, name
    assert len(keras_model.trainable_weights) == 2 * 4  # free, tb.p, tb.q, head


def test_multi_head_attention_is_called_on_query_and_value():
    nodes, layers, keras_model = built("""\
model:
  layers:
    - Dense: {units: 8, name: q}
    - Dense: {units: 6, name: v}
      inputs: features
    - MultiHeadAttention: {num_heads: 2, key_dim: 4, name: attention}
      inputs: [q, v]
    - Flatten
    - Dense: {units: 10}
""", input_shape=(5, 3))
    attention = layers["attention"]
    assert fed_by(attention) == ["q", "v"]
    (call,) = attention._inbound_nodes
    assert [tuple(t.shape) for t in call.input_tensors] == [(None, 5, 8), (None, 5, 6)]
    # MultiHeadAttention(query, value): the output takes the query's last axis
    assert tuple(attention.output.shape) == (None, 5, 8)
    assert_wired_as_the_nodes_say(nodes, layers, keras_model)


def test_concatenate_joins_two_branches():
    nodes, layers, keras_model = built("""\
model:
  layers:
    - Conv2D: {filters: 3, kernel_size: 3, padding: same, name: left}
    - Conv2D: {filters: 5, kernel_size: 1, name: right}
      inputs: features
    - Concatenate: {name: joined}
      inputs: [left, right]
    - Flatten
    - Dense: {units: 10}
""", input_shape=(6, 6, 1))
    assert fed_by(layers["joined"]) == ["left", "right"]
    assert tuple(layers["joined"].output.shape) == (None, 6, 6, 8)
    assert_wired_as_the_nodes_say(nodes, layers, keras_model)


def test_a_two_input_block_repeated_chains_its_first_input_and_keeps_the_second():
    nodes, layers, keras_model = built("""\
model:
  blocks:
    gated:
      inputs: [x, context]
      params: {units: int}
      layers:
        - Dense: {units: $units, name: proj}
        - Concatenate: {name: joined}
          inputs: [proj, context]
        - Dense: {units: $units, name: out}
  layers:
    - Dense: {units: 4, name: a}
    - Dense: {units: 3, name: b}
      inputs: features
    - gated: {units: 4, name: g}
      inputs: [a, b]
      repeat: 2
    - Dense: {units: 10}
""", input_shape=(7,))
    assert fed_by(layers["g.1.proj"]) == ["a"]
    assert fed_by(layers["g.1.joined"]) == ["g.1.proj", "b"]
    assert fed_by(layers["g.2.proj"]) == ["g.1.out"]        # the first input: chained
    assert fed_by(layers["g.2.joined"]) == ["g.2.proj", "b"]  # the second: kept
    assert tuple(layers["g.2.joined"].output.shape) == (None, 7)
    assert_wired_as_the_nodes_say(nodes, layers, keras_model)


def test_deep_reports_a_merge_s_shape_mismatch_at_its_line_with_both_shapes():
    model = """\
model:
  layers:
    - Conv2D: {filters: 32, kernel_size: 3, padding: same, name: a}
    - Conv2D: {filters: 64, kernel_size: 3, padding: same, name: b}
    - Add: {}
      inputs: [a, b]
    - Flatten
    - Dense: {units: 10}
"""
    result = validate_text(model + REST, "p.yaml")
    assert result.issues == []  # the spec side cannot know the shapes
    (issue,) = deep_check(result.spec, result.document)
    assert (issue.code, issue.key_path, issue.line) == ("shape-error", "model.layers[2].Add", 5)
    assert "Add got (None, 28, 28, 32) and (None, 28, 28, 64)" in issue.message


@pytest.mark.parametrize("model", [
    pytest.param(RESIDUAL.replace("REPEAT", "2"), id="residual-repeated"),
    pytest.param(FROZEN, id="trainable-on-layers-and-uses"),
])
def test_the_resolved_spec_round_trips_to_the_same_nodes(model):
    spec = spec_of(model)
    plain = to_plain(spec)
    again = load_spec(plain)
    assert model_nodes(again) == model_nodes(spec)
    assert to_plain(again) == plain


RESIDUAL_NPZ = """\
kerapipe: 1
name: residual-npz
seed: 1
data:
  source: {npz: data.npz}
  split: {validation: 0.2, test: 0.2}
  batch_size: 8
model:
  blocks:
    dense_residual:
      params: {units: int}
      layers:
        - Dense: {units: $units, activation: relu, name: hidden}
        - Dense: {units: $units, name: back}
        - Add: {name: sum}
          inputs: [input, back]
  layers:
    - Dense: {units: 4, name: stem}
    - dense_residual: {units: 4, name: res}
      repeat: 2
    - Dense: {units: 3}
train: {epochs: 1}
"""


@pytest.mark.filterwarnings(KERAS_SAVE_WARNING)
def test_a_residual_pipeline_trains_and_its_saved_model_predicts(npz_workspace, tmp_path):
    file = npz_workspace(tmp_path / "work", text=RESIDUAL_NPZ)
    compiled = compile_pipeline(file)
    history = compiled.fit(verbose=0)
    assert len(history.history["loss"]) == 1 and np.isfinite(history.history["loss"][0])
    x = np.load(file.parent / "data.npz")["x"][:5]
    probabilities = compiled.predict_proba(x)
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    saved = tmp_path / "model.keras"
    compiled.inference_model.save(saved)
    reloaded = keras.saving.load_model(saved, safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), probabilities, rtol=1e-5,
                               atol=1e-6)
    names = {layer.name for layer in compiled.model.layers}
    assert {"res.1.hidden", "res.1.sum", "res.2.hidden", "res.2.sum"} <= names


def test_a_layer_that_returns_several_tensors_is_a_located_spec_error():
    """`LSTM: {return_state: true}` returns three tensors: --deep (and plan, run) ended
    with an internal error, exit 1."""
    from kerapipe.compiler.deep import deep_check
    from kerapipe.spec.validate import validate_text

    text = ("kerapipe: 1\ndata:\n  source: {keras: imdb}\n  preprocess: [{pad_sequences: 20}]\n"
            "model:\n  layers:\n    - Embedding: {input_dim: 100, output_dim: 4}\n"
            "    - LSTM: {units: 4, return_state: true}\n"
            "    - Dense: {units: 1, activation: sigmoid}\nloss: binary_crossentropy\n")
    result = validate_text(text, "p.yaml")
    issues = result.locate(deep_check(result.spec))
    assert [(i.code, i.key_path, i.line) for i in issues] == [
        ("shape-error", "model.layers[1].LSTM", 8)]
    assert "LSTM returns 3 tensors" in issues[0].message


def test_plan_shows_the_graph_of_a_model_that_is_not_a_chain():
    """plan's graph table: each node of the file, what it takes, its output shape, its
    parameters and where it is written; a chain shows Keras's summary alone."""
    from kerapipe.report import format_graph

    _, _, keras_model = built(RESIDUAL.replace("REPEAT", "1"))
    rows = [line.split() for line in format_graph(keras_model)[2:]]
    assert [(row[0], row[1]) for row in rows] == [
        ("stem", "Conv2D"), ("stage.a", "Conv2D"), ("stage.b", "Conv2D"),
        ("stage.layers[2]", "Add"), ("model.layers[2]", "GlobalAveragePooling2D"),
        ("model.layers[3]", "Dense")]
    add = format_graph(keras_model)[5]
    assert "stem, stage.b" in add and "(None, 28, 28, 8)" in add
    assert add.rstrip().endswith("model.blocks.residual.layers[2]")
    assert "584" in format_graph(keras_model)[3]  # 3x3x8x8 + 8 parameters
    chain = build_core_model(spec_of("model:\n  layers: [Flatten, {Dense: {units: 10}}]\n"),
                             (28, 28, 1), allocate=False)
    assert format_graph(chain) == []
