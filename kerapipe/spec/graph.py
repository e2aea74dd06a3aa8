"""The model as a node list: each layer of ``model.layers`` with its name and its inputs.

A chain is the special case of a graph, as Sequential is of Functional in Keras: today
each layer takes the output of the one above it, and the first takes the model's input.
The spec side turns ``model.layers`` into nodes here, once (``model_nodes``), and every
reader walks the nodes: the checks (``checks.every_layer``, the output layer and its
activation), the builder (``compiler/build.build_core_model``), ``validate --deep`` and
the inference model. The graph syntax to come (named layers, ``inputs:``, several
outputs; DESIGN.md section 2) then changes this module, not its readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

from kerapipe.spec.model import LayerSpec

# The name of the model's input (the trainable model's ``keras.Input``), which the first
# node takes. ``model.inputs`` (DESIGN.md section 3) will name several.
MODEL_INPUT = "features"

_LAYERS = ("model", "layers")


@dataclass(frozen=True)
class ModelNode:
    """One layer of the model and where its input comes from.

    Args:
        name: unique in the model: the layer's Keras ``name`` argument when the file
            gives one, else its key path (``model.layers[2]``), which stays the same as
            long as the layers above it do.
        layer: the layer as the file writes it (nested layers inside its arguments).
        inputs: the names of the nodes (or ``MODEL_INPUT``) whose outputs it takes.
        path: the key path of its entry, ``("model", "layers", 2)``; its arguments sit
            at ``path + (layer.name, argument)`` (``model.layers[2].Dense.units``).
    """

    name: str
    layer: LayerSpec
    inputs: tuple[str, ...]
    path: tuple


def chain_nodes(layers: Sequence[LayerSpec]) -> tuple[ModelNode, ...]:
    """The nodes of ``model.layers`` written as a chain: each takes the one above."""
    nodes: list[ModelNode] = []
    for index, layer in enumerate(layers):
        path = _LAYERS + (index,)
        name = given_name(layer) or f"model.layers[{index}]"
        inputs = (nodes[-1].name,) if nodes else (MODEL_INPUT,)
        nodes.append(ModelNode(name, layer, inputs, path))
    return tuple(nodes)


def model_nodes(spec: Any) -> tuple[ModelNode, ...]:
    """The nodes of a typed ``PipelineSpec``'s model, in the order they are written
    (every node comes after the nodes it takes its inputs from)."""
    return chain_nodes(spec.model.layers)


def as_nodes(model: Any) -> tuple[ModelNode, ...]:
    """Nodes from a ``PipelineSpec``, a node list, or a list of ``LayerSpec`` (a chain)."""
    if hasattr(model, "model"):
        return model_nodes(model)
    if all(isinstance(item, ModelNode) for item in model):
        return tuple(model)
    return chain_nodes(model)


def output_node(nodes: Sequence[ModelNode]) -> Optional[ModelNode]:
    """The node whose output is the model's output (the last one; ``None`` for none)."""
    return nodes[-1] if nodes else None


def toward_input(nodes: Sequence[ModelNode], node: Optional[ModelNode]
                 ) -> Iterator[ModelNode]:
    """``node``, then the node that feeds it, and so on, while each has exactly one
    input that is a node (the walk ends at the model's input or where inputs merge)."""
    feeder: dict[int, Optional[ModelNode]] = {}  # id(node) -> the node its one input names
    latest: dict[str, ModelNode] = {}  # a name's nearest owner above (names may repeat
    for each in nodes:                 # until the builder refuses them)
        feeder[id(each)] = latest.get(each.inputs[0]) if len(each.inputs) == 1 else None
        latest[each.name] = each
    while node is not None:
        yield node
        node = feeder.get(id(node))


def given_name(layer: LayerSpec) -> Optional[str]:
    """The Keras ``name`` argument the file gives a layer, if any."""
    name = layer.kwargs.get("name")
    return name if isinstance(name, str) and name else None


def repeated_name(nodes: Sequence[ModelNode]) -> Optional[tuple[ModelNode, str]]:
    """A node whose ``name:`` another node (or the model's input) has too, with what
    has it first; ``None`` when every name is unique (Keras refuses a model otherwise)."""
    owners: dict[str, tuple[Optional[ModelNode], str]] = {
        MODEL_INPUT: (None, "the model's input")}
    for node in nodes:
        if node.name in owners:
            first, owner = owners[node.name]
            if given_name(node.layer) is None and first is not None:
                # a key-path name (`model.layers[3]`) given to an earlier layer
                return first, f"model.layers[{node.path[-1]}] (its key path)"
            return node, owner
        owners[node.name] = (node, f"model.layers[{node.path[-1]}]")
    return None
