"""The ``model:`` section: its layers and blocks, the model's inputs and outputs.

``model.layers`` is a list of entries (``spec/layer_entries.py``) parsed with the blocks
of ``model.blocks`` (``spec/blocks.py``) by ``spec/layer_lists.py``; ``model.inputs``
and ``model.outputs`` name the model's inputs and outputs. ``spec/graph.py`` turns the
parsed section into the one node list every reader walks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from kerapipe.spec.issues import Issue, Path, did_you_mean, safe_repr
from kerapipe.spec.key_hints import unknown_key_issue
from kerapipe.spec.typed import parse, spec_field, to_plain
from kerapipe.spec.blocks import BlockSpec, parse_block
from kerapipe.spec.layer_entries import Entry
from kerapipe.spec.layer_lists import LayerListParser

MODEL_INPUT_NAME = re.compile(r"[A-Za-z_]\w{0,199}\Z")  # a model input: an identifier
MAX_MODEL_INPUTS = 64
MAX_MODEL_OUTPUTS = 64


@dataclass(frozen=True)
class ModelSpec:
    """The model: layers (a chain, or a graph wired by names), blocks and outputs; the
    input shape is inferred from the data."""

    documented_keys: ClassVar[bool] = True  # parsed by hand, its keys listed all the same
    layers: list[Entry] = spec_field(doc="Keras layers (or block uses) in order; each takes "
                                     "the output of the one above unless `inputs:` names "
                                     "others; the last one outputs the logits (or "
                                     "probabilities).", min_items=1)
    blocks: dict[str, BlockSpec] = spec_field({}, "Named, parameterised sub-graphs (snake_case "
                                              "names), used in `layers` like a layer.")
    inputs: Optional[list[str]] = spec_field(None, "The names of the model's inputs "
                                             "(identifiers): with the npz source, the arrays "
                                             "that feed them. Layers name them in `inputs:`. "
                                             "Defaults to one input, `features`.", min_items=1,
                                             max_items=MAX_MODEL_INPUTS,
                                             json_schema={"anyOf": [  # one name, or a list
                                                 {"type": "null"}, {"type": "string"},
                                                 {"type": "array", "items": {"type": "string"},
                                                  "minItems": 1,
                                                  "maxItems": MAX_MODEL_INPUTS}]})
    outputs: Optional[list[str]] = spec_field(
        None, "The model's outputs: each a layer's (or block use's) name, or `{name, label, "
        "loss, metrics, weight}` (several outputs: each its own label array, default `y` "
        "for the first; loss and metrics default to the top-level ones; weight to 1). "
        "Defaults to the last layer.", min_items=1, max_items=MAX_MODEL_OUTPUTS,
        json_schema={"anyOf": [{"type": "null"}, {"type": "string"}, {"type": "array", "minItems": 1,
                     "maxItems": 64, "items": {"anyOf": [
                         {"type": "string"},
                         {"type": "object", "required": ["name"],
                          "additionalProperties": False,
                          "properties": {"name": {"type": "string"},
                                         "label": {"type": "string"},
                                         "loss": {"$ref": "#/$defs/LossSpec"},
                                         "metrics": {"type": "array", "items": {
                                             "$ref": "#/$defs/MetricSpec"}},
                                         "weight": {"type": "number",
                                                    "exclusiveMinimum": 0}}}]}}]})
    # Filled in by parsing: each output's options (``ModelOutput``), in order.
    heads: tuple = field(default=(), compare=False, repr=False, init=False)

    @classmethod
    def from_yaml(cls, value: Any, path: Path, issues: list[Issue]) -> Optional["ModelSpec"]:
        if not isinstance(value, dict):
            issues.append(Issue("wrong-type", path, "expected a mapping with `layers:`. "
                                f"Received: {safe_repr(value)}"))
            return None
        before = len(issues)
        known = ("layers", "blocks", "inputs", "outputs")
        for key in value:
            if key not in known:
                issues.append(unknown_key_issue(key, path, known))
        blocks: dict[str, BlockSpec] = {}
        raw_blocks = value.get("blocks")
        raw_blocks = {} if raw_blocks is None else raw_blocks  # `blocks:` with nothing after it
        if not isinstance(raw_blocks, dict):
            issues.append(Issue("wrong-type", path + ("blocks",), "`blocks:` maps each block's "
                                f"name to its definition. Received: {safe_repr(raw_blocks)}"))
            raw_blocks = {}
        for name, definition in raw_blocks.items():
            block = parse_block(name, definition, path + ("blocks", name), issues)
            if block is not None:
                blocks[name] = block
        parser = LayerListParser(blocks, issues)
        if "layers" not in value:
            issues.append(Issue("missing-key", path + ("layers",), "required key 'layers' is "
                                "missing from model."))
            layers: list[Entry] = []
        else:
            raw = value["layers"]
            if isinstance(raw, list) and not raw:
                issues.append(Issue("out-of-range", path + ("layers",), "the model needs at "
                                    "least one layer. Received: layers=[]"))
            layers = parser.entries(raw, path + ("layers",))
        inputs = _parse_model_inputs(value.get("inputs"), path + ("inputs",), issues)
        heads = _parse_model_outputs(value.get("outputs"), path + ("outputs",), issues)
        outputs = [head.name for head in heads] if heads is not None else None
        for name, block in blocks.items():
            at = path + ("blocks", name)
            for param in block.parameters if name in parser.used_blocks else ():
                if param not in parser.used_params[name]:
                    issues.append(Issue("unused-parameter", at + ("params", param), f"parameter "
                                        f"'{param}' of block '{name}' is declared but no layer "
                                        f"of the block uses it (as `${param}`). Remove it, or "
                                        "use it.", at_key=True))
        if len(issues) > before:
            return None
        model = cls(layers, blocks, inputs, outputs)
        object.__setattr__(model, "heads", tuple(heads or ()))
        return model

    def to_yaml(self) -> Any:
        out: dict = {"layers": [entry.to_yaml() for entry in self.layers]}
        if self.blocks:
            out["blocks"] = {name: block.to_yaml() for name, block in self.blocks.items()}
        if self.inputs is not None:
            out["inputs"] = list(self.inputs)
        if self.outputs is not None:
            out["outputs"] = ([head.to_yaml() for head in self.heads] if self.heads
                              else list(self.outputs))
        return out


def _parse_model_inputs(value: Any, path: Path, issues: list[Issue]) -> Optional[list[str]]:
    """``model.inputs``: a name or a list of distinct identifiers (the npz arrays that feed
    the inputs, the names layers give in ``inputs:``); ``None`` when not given."""
    if value is None:
        return None
    names = parse(list[str], [value] if isinstance(value, str) else value, path, issues,
                  {"min_items": 1, "max_items": MAX_MODEL_INPUTS})
    if names is None:
        return None
    before = len(issues)
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        at = path + (index,)
        if not isinstance(name, str):
            return None  # not text: parse reported it (the item is None)
        if not MODEL_INPUT_NAME.match(name):
            issues.append(Issue("wrong-type", at, "a model input's name is an identifier "
                                "(letters, digits and `_`, not starting with a digit), as an "
                                f"npz array's name is. Received: {safe_repr(name)}"))
        elif name in seen:
            issues.append(Issue("duplicate-name", at, f"'{name}' is model.inputs[{seen[name]}] "
                                "already; each input needs a name of its own. Remove the "
                                "repeat."))
        else:
            seen[name] = index
    return names if len(issues) == before else None


@dataclass(frozen=True)
class ModelOutput:
    """One entry of ``model.outputs``: the layer (or block use) it names and, for a model
    of several outputs, what it learns; ``None``: the default (see ``ModelSpec.outputs``).

    Args:
        name: the layer's ``name:`` or the block use's; Keras's name of the output.
        label: the npz array of its labels.
        loss: its ``LossSpec``.
        metrics: its ``MetricSpec`` list.
        weight: its loss weight.
        path: its key path (``("model", "outputs", 1)``).
    """

    name: str
    label: Optional[str] = None
    loss: Any = None
    metrics: Optional[list] = None
    weight: float = 1.0
    path: tuple = ()

    def to_yaml(self) -> Any:
        out: dict = {"name": self.name}
        if self.label is not None:
            out["label"] = self.label
        if self.loss is not None:
            out["loss"] = to_plain(self.loss)
        if self.metrics is not None:
            out["metrics"] = to_plain(self.metrics)
        if self.weight != 1.0:
            out["weight"] = self.weight
        return out if len(out) > 1 else self.name


_OUTPUT_KEYS = ("name", "label", "loss", "metrics", "weight")


def _parse_model_outputs(value: Any, path: Path, issues: list[Issue]
                         ) -> Optional[list[ModelOutput]]:
    """``model.outputs``: a name, or a list of names and ``{name, label, loss, metrics,
    weight}`` mappings. With one output only its name is given (the top-level loss and
    metrics are its); with several, each after the first names its label array."""
    from kerapipe.spec.model import LossSpec, MetricSpec  # (model.py imports this module)

    if value is None:
        return None
    items = [value] if isinstance(value, (str, dict)) else value
    if not isinstance(items, list) or not items or len(items) > MAX_MODEL_OUTPUTS:
        issues.append(Issue("wrong-type" if not isinstance(items, list) else "out-of-range",
                            path, "model.outputs is a name or a list of 1 to "
                            f"{MAX_MODEL_OUTPUTS} names or `{{name: ..., label: ...}}` "
                            f"mappings. Received: {safe_repr(value)}"))
        return None
    before = len(issues)
    heads = []
    for index, item in enumerate(items):
        at = path + (index,)
        if isinstance(item, str):
            heads.append(ModelOutput(item, path=at))
            continue
        if not isinstance(item, dict):
            issues.append(Issue("wrong-type", at, "an output is a layer's name or `{name: "
                                "..., label: ..., loss: ..., metrics: [...], weight: ...}`. "
                                f"Received: {safe_repr(item)}"))
            continue
        for key in item:
            if key not in _OUTPUT_KEYS:
                issues.append(Issue("unknown-key", at + (key,), f"unknown key '{key}'."
                                    f"{did_you_mean(str(key), _OUTPUT_KEYS)} An output has "
                                    f"{', '.join(_OUTPUT_KEYS)}.", at_key=True))
            elif key != "name" and len(items) == 1:
                issues.append(Issue("not-applicable", at + (key,), f"`{key}` is for a model "
                                    "of several outputs; the one output of this model learns "
                                    "the top-level label (`y`) with the top-level loss and "
                                    "metrics. Write them there.", at_key=True))
        name = parse(str, item.get("name"), at + ("name",), issues) if "name" in item else None
        if "name" not in item:
            issues.append(Issue("missing-key", at + ("name",), "an output needs `name:`, the "
                                "layer (or block use) whose output it is.", at_key=False))
        label = item.get("label")
        if label is not None and (not isinstance(label, str) or not MODEL_INPUT_NAME.match(label)):
            issues.append(Issue("wrong-type", at + ("label",), "a label is the name of an npz "
                                f"array (an identifier). Received: {safe_repr(label)}"))
            label = None
        loss = parse(LossSpec, item["loss"], at + ("loss",), issues) if "loss" in item else None
        metrics = (parse(list[MetricSpec], item["metrics"], at + ("metrics",), issues)
                   if "metrics" in item else None)
        weight = parse(float, item.get("weight", 1.0), at + ("weight",), issues, {"gt": 0})
        if isinstance(name, str):
            heads.append(ModelOutput(name, label, loss, metrics, float(weight or 1.0), at))
    if len(heads) > 1:
        seen: dict[str, int] = {}
        for index, head in enumerate(heads):
            if head.name in seen:
                issues.append(Issue("duplicate-name", head.path, f"'{head.name}' is "
                                    f"model.outputs[{seen[head.name]}] already; each output is "
                                    "another layer."))
            seen.setdefault(head.name, index)
            if index and head.label is None:
                issues.append(Issue("missing-key", head.path, f"output '{head.name}' needs "
                                    "`label:`, the npz array it learns (only the first output "
                                    "learns `y` by default): write it as `{name: "
                                    f"{head.name}, label: y_{head.name}}}`."))
    return heads if len(issues) == before else None
