"""The model as a node list: each layer of ``model.layers`` with its name and its inputs.

A chain is the special case of a graph, as Sequential is of Functional in Keras: a layer
takes the output of the entry above it unless its ``inputs:`` names others, and the first
takes the model's input. Block uses (``spec/blocks.py``) are expanded here into
their layers, with names scoped per use (``stage1.conv``; ``stage1.2.conv`` for the
second of ``repeat: 2``). The spec side turns ``model.layers`` into nodes here, once
(``model_nodes``), and every reader walks the nodes: the checks (``graph_issues``,
``checks.every_layer``, the output layer and its activation), the builder
(``compiler/build.build_core_model``), ``validate --deep``, ``plan`` and the inference
model.

References go upward only: an ``inputs:`` name is a model input or a layer above the
entry (in its block, a block input or a layer of the block above it), the order in
which a Python user would write the functional API. So the graph has no cycle, and a
name below is reported as one (``graph-cycle``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

from kerapipe.spec.issues import (WARNING, Issue, add_once, did_you_mean, format_path,
                                  safe_repr)
from kerapipe.spec.layer_entries import NAME_REFERENCE, Entry
from kerapipe.spec.keras_objects import LayerSpec

# The name of the model's input (the trainable model's ``keras.Input``), which the first
# node takes. ``model.inputs`` (DESIGN.md section 3) will name several.
MODEL_INPUT = "features"

_LAYERS = ("model", "layers")

# Keras's merge layers (keras.layers.merging): they take a list of two or more tensors.
MERGE_LAYERS = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
                          "Concatenate", "Dot"})
_TWO_INPUTS = frozenset({"Subtract", "Dot"})  # exactly two
# The most layers a model may expand to: a hundred ResNet-50s. Blocks nested in blocks,
# each `repeat: 1000`, would otherwise make validate build billions of nodes.
MAX_NODES = 20_000


@dataclass(frozen=True)
class ModelNode:
    """One layer of the model and where its inputs come from.

    Args:
        name: unique in the model: the layer's Keras ``name`` argument when the file
            gives one (scoped by its block use: ``stage1.conv``), else its key path
            (``model.layers[2]``; ``stage1.layers[0]`` in a block).
        layer: the layer as the file writes it (nested layers inside its arguments); in
            a block, with its values substituted and its ``name`` scoped.
        inputs: the names of the nodes (or ``MODEL_INPUT``) whose outputs it takes.
        path: the key path of its entry, ``("model", "layers", 2)`` (in a block, the
            entry in the block's definition); its arguments sit at ``path + (layer.name,
            argument)`` (``model.layers[2].Dense.units``).
        trainable: ``False`` freezes it (the entry's or its block use's ``trainable:``).
        use: the key path of the block use it comes from (``()``: none).
    """

    name: str
    layer: LayerSpec
    inputs: tuple[str, ...]
    path: tuple
    trainable: Optional[bool] = None
    use: tuple = ()


class ModelNodes(tuple):
    """The nodes in build order (each after the nodes it takes), with ``inputs`` (the
    names of the model's inputs: ``model.inputs``, else ``(MODEL_INPUT,)``), ``outputs``
    (the names of the output nodes) and ``problems`` (wiring issues, for
    ``graph_issues``)."""

    inputs: tuple[str, ...] = (MODEL_INPUT,)
    outputs: tuple[str, ...] = ()
    problems: tuple[Issue, ...] = ()


def model_nodes(spec: Any) -> ModelNodes:
    """The nodes of a typed ``PipelineSpec``'s model (computed once per spec)."""
    model = spec.model
    cached = _CACHE.get(id(model))
    if cached is not None and cached[0] is model:
        return cached[1]
    nodes = _expand_model(model)
    if len(_CACHE) > 16:
        _CACHE.clear()
    _CACHE[id(model)] = (model, nodes)
    return nodes


_CACHE: dict[int, tuple[Any, ModelNodes]] = {}


def chain_nodes(layers: Sequence[Any]) -> ModelNodes:
    """The nodes of layers (``LayerSpec``, or entries of ``model.layers``) written as a
    chain: each takes the one above."""
    return _expand_entries([layer if isinstance(layer, Entry) else Entry(layer, path=_LAYERS + (i,))
                            for i, layer in enumerate(layers)])


def as_nodes(model: Any) -> ModelNodes:
    """Nodes from a ``PipelineSpec``, a node list, or a list of ``LayerSpec`` (a chain)."""
    if hasattr(model, "model"):
        return model_nodes(model)
    if isinstance(model, ModelNodes):
        return model
    if all(isinstance(item, ModelNode) for item in model):
        return ModelNodes(model)
    return chain_nodes(model)


def output_node(nodes: Sequence[ModelNode]) -> Optional[ModelNode]:
    """The node whose output is the model's (first) output: the one ``model.outputs``
    names, else the last; ``None`` for none."""
    outputs = getattr(nodes, "outputs", ())
    if outputs:
        named = next((node for node in reversed(nodes) if node.name == outputs[0]), None)
        if named is not None:
            return named
    return nodes[-1] if nodes else None


def toward_input(nodes: Sequence[ModelNode], node: Optional[ModelNode]
                 ) -> Iterator[ModelNode]:
    """``node``, then the node that feeds it, and so on, while each has exactly one
    input that is a node (the walk ends at the model's input or where inputs merge)."""
    by_name = {each.name: each for each in nodes}
    seen: set[int] = set()
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        yield node
        node = by_name.get(node.inputs[0]) if len(node.inputs) == 1 else None


def given_name(layer: LayerSpec) -> Optional[str]:
    """The Keras ``name`` argument the file gives a layer, if any."""
    name = layer.kwargs.get("name")
    return name if isinstance(name, str) and name else None


def graph_issues(spec: Any) -> list[Issue]:
    """The wiring's problems (unknown or downward references, repeated names, merges of
    one input, unused outputs, unknown ``model.outputs``), each at its key path."""
    return list(model_nodes(spec).problems)


# --- expansion ----------------------------------------------------------------------

def _expand_model(model: Any) -> ModelNodes:
    too_large = _too_many_nodes(model.layers)
    if too_large is not None:
        nodes = ModelNodes()
        nodes.problems = (too_large,)
    else:
        nodes = _expand_entries(model.layers, getattr(model, "outputs", None),
                                getattr(model, "inputs", None))
    used = set()
    pending = list(model.layers)
    walked: set[int] = set()  # bodies are shared by the uses of one block with one value
    while pending:
        entry = pending.pop()
        if entry.block is not None and id(entry.body) not in walked:
            walked.add(id(entry.body))
            used.add(entry.block)
            pending += entry.body
    unused = [Issue("unused-block", ("model", "blocks", name), f"block '{name}' is defined "
                    "but no layer list uses it. Use it in model.layers, or remove it.",
                    severity=WARNING, at_key=True)
              for name in model.blocks if name not in used]
    nodes.problems = nodes.problems + tuple(unused)
    return nodes


def _node_count(entries: Sequence[Entry], counted: dict) -> int:
    """How many nodes ``entries`` expand to (``counted``: by body, those known)."""
    total = 0
    for entry in entries:
        if entry.block is None:
            total += 1
            continue
        if id(entry.body) not in counted:
            counted[id(entry.body)] = _node_count(entry.body, counted)
        total += entry.repeat * counted[id(entry.body)]
    return total


def _too_many_nodes(entries: Sequence[Entry]) -> Optional[Issue]:
    """An issue when ``entries`` expand to more than ``MAX_NODES`` nodes, at the
    largest top-level entry (counted without expanding anything)."""
    counted: dict = {}
    sizes = [_node_count([entry], counted) for entry in entries]
    total = sum(sizes)
    if total <= MAX_NODES:
        return None
    bound = (f"kerapipe builds at most {MAX_NODES:,} layers. Use fewer repeats, or fewer "
             "levels of blocks.")
    largest = max(range(len(entries)), key=sizes.__getitem__)
    entry = entries[largest]
    if entry.block is None or sizes[largest] * 2 < total:
        return Issue("out-of-range", _LAYERS, f"the model expands to {total:,} layers; "
                     + bound)
    per_use = counted[id(entry.body)]
    if entry.repeat > 1:
        return Issue("out-of-range", entry.path + ("repeat",), f"this use of block "
                     f"'{entry.block}' expands to {sizes[largest]:,} layers ({entry.repeat} "
                     f"x {per_use:,}), the model to {total:,}; " + bound)
    return Issue("out-of-range", entry.path + (entry.block,), f"this use of block "
                 f"'{entry.block}' expands to {sizes[largest]:,} layers, the model to "
                 f"{total:,}; " + bound, at_key=True)


def _expand_entries(entries: Sequence[Entry], outputs: Optional[Sequence[str]] = None,
                    inputs: Optional[Sequence[str]] = None) -> ModelNodes:
    expansion = _Expansion()
    model_inputs = tuple(inputs or (MODEL_INPUT,))
    if len(model_inputs) > 1:  # no input is "the one above" the first layer
        expansion.owner = {name: f"model input '{name}'" for name in model_inputs}
        if entries and entries[0].inputs is None:
            expansion.problem(Issue("ambiguous-input", entries[0].path, "the model has "
                                    f"{len(model_inputs)} inputs ({', '.join(model_inputs)}), "
                                    "so the first layer must say which it takes: add "
                                    f"`inputs: {model_inputs[0]}` (or a list) beside it."))
    else:
        expansion.owner = {model_inputs[0]: "the model's input"}
    # (An ambiguous first layer is expanded on the first input: the error above says
    # what is wrong, and the layers below it are still checked.)
    last = expansion.entries(entries, scope="", visible={name: name for name in model_inputs},
                             previous=model_inputs[0], use=(), trainable=None)
    names = expansion.names_of_uses
    chosen: list[str] = []
    for index, name in enumerate(outputs or ()):
        target = names.get(name) or (name if name in expansion.owner else None)
        if target is None:
            expansion.problem(Issue("unknown-output", ("model", "outputs", index), f"'{name}' "
                                    "names no layer of the model."
                                    + did_you_mean(name, expansion.visible_top)
                                    + " Name a layer (its `name:`) or a block use."))
        else:
            chosen.append(target)
    if not chosen and last is not None:
        chosen.append(last)
    expansion.report_unused(set(chosen))
    result = ModelNodes(expansion.nodes)
    result.inputs = model_inputs
    result.outputs = tuple(chosen)
    result.problems = tuple(expansion.problems)
    return result


class _Expansion:
    """Walks entries and block bodies into nodes, resolving names in their scope."""

    def __init__(self) -> None:
        self.nodes: list[ModelNode] = []
        self.owner: dict[str, str] = {MODEL_INPUT: "the model's input"}
        self.names_of_uses: dict[str, str] = {}  # a top-level use's name -> its output node
        self.visible_top: list[str] = []
        self.problems: list[Issue] = []
        self._seen: set = set()
        self._use_counts: dict[tuple, int] = {}

    def problem(self, issue: Issue) -> None:
        add_once(self.problems, self._seen, issue)

    def entries(self, entries: Sequence[Entry], scope: str, visible: dict[str, str],
                previous: Optional[str], use: tuple, trainable: Optional[bool]) -> Optional[str]:
        """Expand ``entries`` in ``scope``; ``visible`` maps the names they may use to node
        names (updated as layers are met); the node name of the last output."""
        own_inputs = set(visible) if scope else set()  # a block's inputs, in its scope
        visible = dict(visible)
        below = {}  # names given further down, to tell a downward reference from a typo
        for index, entry in enumerate(entries):
            name = self._local_name(entry)
            if name is not None:
                below.setdefault(name, index)
        for index, entry in enumerate(entries):
            sources = self._sources(entry, index, visible, previous, below, scope)
            local = self._local_name(entry)
            if local is not None:
                below.pop(local, None) if below.get(local) == index else None
            if local in own_inputs:  # its layers could no longer name that input
                self.problem(Issue("duplicate-name", entry.path + (entry.name, "name"),
                             f"the name '{local}' is an input of the block; each layer of a "
                             "block needs a name other than its inputs'. Rename the layer."))
            frozen = entry.trainable if entry.trainable is not None else trainable
            if entry.block is not None:
                out = self._use(entry, sources, scope, frozen, use)
            else:
                out = self._layer(entry, index, sources, scope, frozen, use)
            if out is None:
                continue
            if local is not None:
                visible[local] = out
                if not scope:
                    self.visible_top.append(local)
            previous = out
        return previous

    @staticmethod
    def _local_name(entry: Entry) -> Optional[str]:
        if entry.block is not None:
            name = entry.arguments.get("name")
            return name if isinstance(name, str) else None
        return given_name(entry.layer)

    def _sources(self, entry: Entry, index: int, visible: dict, previous: Optional[str],
                 below: dict, scope: str) -> tuple[str, ...]:
        if entry.inputs is None:
            return (previous,) if previous is not None else ()
        if not scope and index == 0 and entry.inputs == (MODEL_INPUT,):
            self.problem(Issue("redundant-inputs", entry.path + ("inputs",), "the first layer takes "
                         f"the model's input ('{MODEL_INPUT}') anyway; remove `inputs:`.",
                         severity=WARNING))
        found = []
        for at, name in enumerate(entry.inputs):
            path = entry.path + ("inputs",) + ((at,) if len(entry.inputs) > 1 else ())
            if name in visible:
                found.append(visible[name])
            elif below.get(name) == index:
                self.problem(Issue("graph-cycle", path, f"'{name}' is this layer's own name; a "
                             "layer cannot take its own output (the model would have a cycle). "
                             "Name a model input or a layer above it."))
            elif name in below:
                self.problem(Issue("graph-cycle", path, f"'{name}' is a layer below this one "
                             f"({format_path(entry.path[:-1] + (below[name],))}); a layer "
                             "takes only the outputs of model inputs and layers above it, so "
                             "the model has no cycle. Move the layer up, or name another."))
            else:
                hint = did_you_mean(name, visible)
                choices = ", ".join(sorted(visible)[:12])
                self.problem(Issue("unknown-input", path, f"'{name}' names no layer above this one "
                             f"and no input.{hint} Names in reach: {choices} (a layer gets a "
                             "name with Keras's `name:` argument)."))
        return tuple(found)

    def _layer(self, entry: Entry, index: int, sources: tuple, scope: str,
               trainable: Optional[bool], use: tuple) -> Optional[str]:
        layer = entry.layer
        local = given_name(layer)
        written = layer.kwargs.get("name")
        if written is not None and not (isinstance(written, str) and NAME_REFERENCE.match(written)):
            self.problem(Issue("wrong-type", entry.path + (layer.name, "name"), "a layer's name "
                         "is text without spaces or '/', so that `inputs:` can name it (and "
                         f"Keras takes it). Received: {safe_repr(written)}"))
            local = None
        prefix = f"{scope}." if scope else ""
        if local is not None:
            name = prefix + local
            if scope:  # the Keras name too, so two uses of a block do not clash
                layer = LayerSpec(layer.name, {**layer.kwargs, "name": name})
        else:
            name = f"{scope}.layers[{index}]" if scope else format_path(entry.path)
        if name in self.owner:
            where = entry.path + ((layer.name, "name") if local is not None else ())
            self.problem(Issue("duplicate-name", where, f"the name '{name}' is taken by "
                         f"{self.owner[name]}; each layer of a model needs a name of its own. "
                         "Rename one, or remove `name:` (Keras then picks one)."))
        else:  # (a repeated name stays a node: the checks after this one see every layer)
            self.owner[name] = format_path(entry.path) + (f" (in {format_path(use)})"
                                                          if use else "")
        if not sources:
            return None  # an unknown input, already reported
        if entry.inputs is not None and len(sources) < len(entry.inputs):
            pass  # an unknown input, already reported: the merge's count would mislead
        elif layer.name in MERGE_LAYERS:
            wanted = 2 if layer.name in _TWO_INPUTS else None
            if len(sources) < 2 or (wanted and len(sources) != wanted):
                self.problem(Issue("merge-inputs", entry.path + (layer.name,), f"{layer.name} merges "
                             f"{'exactly two' if wanted else 'two or more'} inputs but takes "
                             f"{len(sources)}. Name them: `inputs: [a, b]` beside the layer.",
                             at_key=True))
        self.nodes.append(ModelNode(name, layer, sources, entry.path, trainable, use))
        return name

    def _use(self, entry: Entry, sources: tuple, scope: str, trainable: Optional[bool],
             use: tuple) -> Optional[str]:
        given = self._local_name(entry)
        while True:  # a use without `name:` gets the first free `block_N`
            key = (scope, entry.block)  # numbered within its scope: `stage.1.conv_block_1`
            count = self._use_counts[key] = self._use_counts.get(key, 0) + 1
            local = given or f"{entry.block}_{count}"
            base = f"{scope}.{local}" if scope else local
            if given or base not in self.owner:
                break
        if base in self.owner:  # its layers are scoped apart all the same: one report
            self.problem(Issue("duplicate-name", entry.path + (entry.block, "name"), f"the name "
                         f"'{base}' is taken by {self.owner[base]}; each layer and block use of "
                         "a model needs a name of its own. Rename one."))
            base = f"{base}#{count}"
        else:
            self.owner[base] = (f"{format_path(entry.path)} (a use of block '{entry.block}')"
                                + (f" in {format_path(use)}" if use else ""))
        block_inputs = entry.block_inputs
        if entry.inputs is not None and len(sources) < len(entry.inputs):
            return None  # an unknown input, already reported
        if len(sources) != len(block_inputs):
            if sources and entry.inputs is not None:
                self.problem(Issue("block-inputs", entry.path + ("inputs",), f"block '{entry.block}' "
                             f"takes {len(block_inputs)} input(s) ({', '.join(block_inputs)}) "
                             f"but this use gives {len(sources)}."))
            elif sources:  # it took the entry above
                self.problem(Issue("block-inputs", entry.path + (entry.block,), f"block "
                             f"'{entry.block}' takes {len(block_inputs)} inputs "
                             f"({', '.join(block_inputs)}) but this use gives 1 (the entry "
                             f"above). Name them: `inputs: [a, b]` beside the use.", at_key=True))
            return None
        out: Optional[str] = None
        current = list(sources)
        for repeat in range(1, entry.repeat + 1):
            inner_scope = base if entry.repeat == 1 else f"{base}.{repeat}"
            visible = dict(zip(block_inputs, current))
            out = self.entries(entry.body, inner_scope, visible, current[0], entry.path,
                               trainable)
            if out is None:
                return None
            current[0] = out  # the next repeat takes this one's output (other inputs stay)
        if not scope:
            self.names_of_uses[local] = out
        return out

    def report_unused(self, outputs: set) -> None:
        taken = {name for node in self.nodes for name in node.inputs} | outputs
        for node in self.nodes:
            if node.name not in taken:  # in a block: once for every use (no scoped name)
                which = f" ({node.name})" if not node.use else " in each use of its block"
                self.problem(Issue("unused-layer", node.path + (node.layer.name,), "nothing takes the "
                             f"output of this layer{which} and it is not a model output; "
                             "it is computed for nothing. Wire it with `inputs:`, list it in "
                             "`model.outputs`, or remove it.", severity=WARNING, at_key=True))
