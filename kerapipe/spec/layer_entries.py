"""An entry of a layer list (``model.layers``, a block's ``layers``) and its wiring keys.

An entry is a Keras layer (``Conv2D: {...}``) or the use of a block (``residual:
{filters: 64}``), with keys beside it that are kerapipe's, not Keras's: ``inputs:`` (the
names whose outputs it takes; default: the entry above), ``trainable:`` and, for a block,
``repeat:``. A layer's name is Keras's ``name`` argument. ``spec/layer_lists.py`` parses
entries; ``spec/graph.py`` turns them into the one node list every reader walks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from kerapipe.spec.keras_objects import LayerSpec
from kerapipe.spec.typed import to_plain

# Keys of an entry beside its one layer (or block) key: (type, default, doc) for the
# README's key table and `kerapipe schema`.
ENTRY_KEY_DOCS = {
    "inputs": ("a name or a list of names", "the entry above",
               "The layers above (their `name:`), block uses or model inputs whose outputs "
               "this entry takes; several go to a merge layer as a list."),
    "trainable": ("a boolean or null", None, "`false` freezes the weights of the layer (or "
                  "of every layer of a block use or backbone)."),
    "repeat": ("an integer", 1, "How many times a block use is applied, each on the output "
               "of the one before (names scoped `use.1`, `use.2`, ...); blocks only."),
}
ENTRY_KEYS = tuple(ENTRY_KEY_DOCS)
# A block's name is snake_case, so it never looks like a Keras class (`Conv2D`) or an
# imported one (`module.Name`), and the JSON Schema tells a block use from a layer.
BLOCK_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
MAX_REPEAT = 1000
NAME_REFERENCE = re.compile(r"[^\s/]{1,200}\Z")  # a layer or input name: no space, no '/'


@dataclass(frozen=True)
class Entry:
    """One item of a layer list: a layer, or a use of a block, and its wiring.

    Args:
        layer: the Keras layer (``None`` for a block use).
        block: the name of the block used (``None`` for a layer).
        arguments: the use's parameter values (``name:`` names the use).
        inputs: the names whose outputs it takes; ``None``: the entry above.
        trainable: ``false`` freezes its weights; ``None``: Keras's default.
        repeat: how many times a block is applied, each on the output of the last.
        body: a block use's entries, its values substituted (with their key paths in
            the block's definition).
        path: the entry's key path (``("model", "layers", 3)``).
        block_inputs: a block use's block's input names, as its body refers to them.
    """

    sibling_keys: ClassVar[dict] = ENTRY_KEY_DOCS  # documented beside the layer's name
    layer: Optional[LayerSpec]
    block: Optional[str] = None
    arguments: dict = field(default_factory=dict)
    inputs: Optional[tuple[str, ...]] = None
    trainable: Optional[bool] = None
    repeat: int = 1
    body: tuple = ()
    path: tuple = ()
    block_inputs: tuple = ()  # a use's block's input names (its definition's `inputs:`)

    @property
    def name(self) -> str:
        """The layer's Keras class name, or the block's name."""
        return self.block if self.block is not None else self.layer.name

    @property
    def kwargs(self) -> dict:
        """The layer's keyword arguments, or the block use's values."""
        return self.arguments if self.block is not None else self.layer.kwargs

    def to_yaml(self) -> Any:
        if self.block is not None:
            main: dict = {self.block: to_plain(self.arguments)}
        else:
            main = self.layer.to_yaml()
            if not self.layer.kwargs and self.inputs is None and self.trainable is None:
                return self.layer.name  # `- Flatten` stays a bare name
        if self.inputs is not None:
            main["inputs"] = list(self.inputs) if len(self.inputs) != 1 else self.inputs[0]
        if self.trainable is not None:
            main["trainable"] = self.trainable
        if self.repeat != 1:
            main["repeat"] = self.repeat
        return main

    @staticmethod
    def json_schema() -> dict:
        siblings = {"inputs": _INPUTS_SCHEMA,
                    "trainable": {"type": "boolean",
                                  "description": ENTRY_KEY_DOCS["trainable"][2]}}
        layer = LayerSpec.json_schema()
        # A key that names the layer or block besides the siblings (a pattern alone, which
        # the siblings' names do not match, would take `{inputs: x}` for an entry).
        not_only_siblings = {"not": {"propertyNames": {"enum": list(ENTRY_KEYS)}}}
        variants = []
        for variant in layer["anyOf"]:
            if variant.get("type") == "object":
                variant = dict(variant, properties={**variant.get("properties", {}), **siblings})
                variant.pop("maxProperties", None)
                if "patternProperties" in variant:
                    variant.update(not_only_siblings)
            variants.append(variant)
        # A block's name is snake_case, as the siblings' names are: the pattern leaves them
        # out, or each sibling would have to be a block's values too.
        block_name = ("^(?!(?:" + "|".join(ENTRY_KEYS) + ")$)"
                      + BLOCK_NAME.pattern.replace("\\Z", "$"))
        variants.append({  # a block use
            "type": "object", "minProperties": 1,
            "patternProperties": {block_name: {"type": ["object", "null"]}},
            "properties": {**siblings, "repeat": {"type": "integer", "minimum": 1,
                                                  "maximum": MAX_REPEAT,
                                                  "description": ENTRY_KEY_DOCS["repeat"][2]}},
            "additionalProperties": False, **not_only_siblings})
        variants.append({"type": "string", "pattern": block_name})
        return {"anyOf": variants, "description": "A Keras layer `ClassName: {keyword: "
                "value}` or a block use `block_name: {param: value}`, with optional "
                "`inputs:`, `trainable:` (and for a block `repeat:`) beside it."}


_INPUTS_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"},
                                                 "minItems": 1}],
                  "description": ENTRY_KEY_DOCS["inputs"][2]}
