"""The model as a node list (issue 11): ``model.layers`` becomes nodes (name, layer,
inputs, key path) once, on the spec side, and every check, the builder and
``validate --deep`` read those nodes."""

from __future__ import annotations

import pytest

from kerapipe.spec import graph
from kerapipe.spec.checks import every_layer, output_activation, run_checks
from kerapipe.spec.graph import MODEL_INPUT, ModelNode, model_nodes
from kerapipe.spec.model import LayerSpec, parse_pipeline
from kerapipe.spec.validate import load_spec


def spec_of(*layers):
    """The typed spec of an mnist pipeline with these layers (cross-key checks not run)."""
    issues: list = []
    spec = parse_pipeline({"kerapipe": 1, "name": "nodes", "data": {"source": {"sample": "mnist"}},
                           "model": {"layers": list(layers)}, "train": {"epochs": 1}}, issues)
    assert issues == []
    return spec


CNN = ({"Reshape": {"target_shape": [28, 28, 1]}},
       {"Conv2D": {"filters": 2, "kernel_size": 3, "name": "stem"}},
       "Flatten",
       {"Dense": {"units": 10, "activation": "softmax"}})


def test_a_chain_is_a_node_list_where_each_node_takes_the_one_above():
    nodes = model_nodes(spec_of(*CNN))
    assert [(n.name, n.layer.name, n.inputs, n.path) for n in nodes] == [
        ("model.layers[0]", "Reshape", (MODEL_INPUT,), ("model", "layers", 0)),
        ("stem", "Conv2D", ("model.layers[0]",), ("model", "layers", 1)),
        ("model.layers[2]", "Flatten", ("stem",), ("model", "layers", 2)),
        ("model.layers[3]", "Dense", ("model.layers[2]",), ("model", "layers", 3))]
    assert graph.output_node(nodes) is nodes[-1]


def test_node_names_are_unique_and_stable():
    first = model_nodes(spec_of(*CNN))
    assert model_nodes(spec_of(*CNN)) == first  # the same file, the same nodes
    longer = model_nodes(spec_of(*CNN[:-1], {"Dense": {"units": 16}}, CNN[-1]))
    assert [n.name for n in longer[:3]] == [n.name for n in first[:3]]  # layers below move
    names = [n.name for n in longer]
    assert len(set(names)) == len(names) and MODEL_INPUT not in names


def test_a_nested_layer_stays_inside_its_node():
    spec = load_spec({"kerapipe": 1, "data": {"source": {"keras": "imdb"},
                                              "preprocess": [{"pad_sequences": 8}]},
                      "model": {"layers": [{"Embedding": {"input_dim": 100, "output_dim": 4}},
                                           {"Bidirectional": {"layer": {"LSTM": {"units": 2}}}},
                                           {"Dense": {"units": 1, "activation": "sigmoid"}}]},
                      "loss": "binary_crossentropy"})
    nodes = model_nodes(spec)
    assert [n.layer.name for n in nodes] == ["Embedding", "Bidirectional", "Dense"]
    assert nodes[1].layer.kwargs["layer"] == LayerSpec("LSTM", {"units": 2})
    assert [(path, layer.name) for path, layer in every_layer(spec)] == [
        (("model", "layers", 0), "Embedding"), (("model", "layers", 1), "Bidirectional"),
        (("model", "layers", 1, "Bidirectional", "layer"), "LSTM"),
        (("model", "layers", 2), "Dense")]


def test_the_output_activation_is_read_back_from_the_output_node():
    nodes = model_nodes(spec_of("Flatten", {"Dense": {"units": 10, "activation": "sigmoid"}},
                                {"Dropout": {"rate": 0.1}}))
    assert output_activation(nodes) == "sigmoid"
    assert output_activation([n.layer for n in nodes]) == "sigmoid"  # a chain of layers


def _without_the_last_layer(monkeypatch):
    """Every reader's node list loses the file's last layer."""
    expand = graph._expand_model
    monkeypatch.setattr(graph, "_expand_model",
                        lambda model: graph.ModelNodes(expand(model)[:-1]))
    monkeypatch.setattr(graph, "_CACHE", {})


def test_the_checks_read_the_nodes_not_the_layers(monkeypatch):
    spec = spec_of("Flatten", {"Dense": {"units": 10}}, {"Dense": {"units": 7}})
    assert [(i.code, i.key_path) for i in run_checks(spec) if i.code == "class-count-mismatch"
            ] == [("class-count-mismatch", "model.layers[2].Dense.units")]
    _without_the_last_layer(monkeypatch)
    assert [i.code for i in run_checks(spec) if i.code == "class-count-mismatch"] == []
    assert [path for path, _ in every_layer(spec)] == [("model", "layers", 0),
                                                        ("model", "layers", 1)]


def test_the_builder_and_deep_read_the_nodes_not_the_layers(monkeypatch):
    from kerapipe.compiler.build import build_core_model
    from kerapipe.compiler.deep import deep_check

    spec = spec_of("Flatten", {"Dense": {"units": 10}}, {"Reshape": {"target_shape": [5, 2]}})
    assert [(i.code, i.key_path) for i in deep_check(spec)] == [
        ("output-shape", "model.layers[2].Reshape")]
    _without_the_last_layer(monkeypatch)
    assert deep_check(spec) == []
    model = build_core_model(spec, (28, 28), allocate=False)
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "Flatten", "Dense"]
    assert model.output_shape == (None, 10)


def test_the_built_model_is_wired_as_the_nodes_say():
    from kerapipe.compiler.build import build_core_model

    spec = spec_of(*CNN)
    nodes = model_nodes(spec)
    model = build_core_model(spec, (28, 28), allocate=False)
    assert model.input.name == MODEL_INPUT
    built = model.layers[1:]  # after the InputLayer
    assert [type(layer).__name__ for layer in built] == [n.layer.name for n in nodes]
    keras_name = {node.name: layer.name for node, layer in zip(nodes, built)}
    keras_name[MODEL_INPUT] = model.layers[0].name
    for node, layer in zip(nodes, built):
        fed_by = [t._keras_history.operation.name for t in layer._inbound_nodes[0].input_tensors]
        assert fed_by == [keras_name[name] for name in node.inputs]


@pytest.mark.parametrize("layers, path, owner", [
    (("Flatten", {"Dense": {"units": 16, "name": "x"}}, {"Dense": {"units": 10, "name": "x"}}),
     "model.layers[2].Dense.name", "model.layers[1]"),
    (({"Flatten": {"name": "features"}}, {"Dense": {"units": 10}}),
     "model.layers[0].Flatten.name", "the model's input"),
])
def test_two_layers_of_one_name_are_refused_at_the_second_name(layers, path, owner):
    """Keras refused such a model with a ValueError naming no layer (exit 1); since
    issue 12 the spec side refuses it, without TensorFlow."""
    issues = [i for i in run_checks(spec_of(*layers)) if i.severity == "error"]
    assert [(i.code, i.key_path) for i in issues] == [("duplicate-name", path)]
    assert f"is taken by {owner}; each layer of a model needs a name" in issues[0].message


def test_the_inference_model_adds_probabilities_to_a_logits_output_node():
    import keras

    from kerapipe.compiler.build import build_core_model, build_inference_model

    spec = spec_of("Flatten", {"Dense": {"units": 10}})
    core = build_core_model(spec, (28, 28))
    rescale = keras.layers.Rescaling(1 / 255)
    inference = build_inference_model(spec, core, [rescale], (28, 28), "float32",
                                      classes=True)
    assert [layer.name for layer in inference.layers][-1] == "probabilities"
    assert inference.input.name == "raw_features" and inference.output_shape == (None, 10)
    soft = spec_of("Flatten", {"Dense": {"units": 10, "activation": "softmax"}})
    plain = build_inference_model(soft, build_core_model(soft, (28, 28)), [], (28, 28),
                                  "float32", classes=True)
    assert "probabilities" not in [layer.name for layer in plain.layers]


def test_nodes_are_plain_frozen_values():
    node = model_nodes(spec_of("Flatten", {"Dense": {"units": 10}}))[0]
    assert isinstance(node, ModelNode)
    with pytest.raises(AttributeError):
        node.name = "other"  # type: ignore[misc]
