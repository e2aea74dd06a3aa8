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
from itertools import combinations
from typing import Any, ClassVar, Optional

from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.keras_objects import CUSTOM_NAME, KERAS_PREFIXES, LayerSpec
from kerapipe.spec.object_schemas import (bare_names_schema, class_schemas, names_pattern,
                                          unknown_name_message)
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
        return entry_json_schema()


_INPUTS_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"},
                                                 "minItems": 1}],
                  "description": ENTRY_KEY_DOCS["inputs"][2]}


def entry_json_schema() -> dict:
    """The JSON Schema of a layer-list entry, written so that editors teach it.

    One object whose properties are every layer class (typed and described arguments),
    the imported and block names as patterns, and the sibling keys: an editor completes
    the class names in a `model.layers` item and the arguments inside `Dense: {}`, hovers
    both, and reports a misspelt class (`Dens:`) at its key. Exactly one key names the
    layer or block (`if`/`then` for at least one, one `anyOf` case per set of siblings
    present for at most one); `repeat:` goes with a block use only.
    """
    classes = class_schemas(load_catalog().layers)
    not_keras = "".join(f"(?!{re.escape(prefix)})" for prefix in KERAS_PREFIXES)
    custom = "^" + not_keras + CUSTOM_NAME.pattern.replace("\\Z", "$")
    block = BLOCK_NAME.pattern.replace("\\Z", "$")
    block_use = "^(?!(?:" + "|".join(ENTRY_KEYS) + ")$)" + block  # not a sibling's name
    siblings = {"inputs": _INPUTS_SCHEMA,
                "trainable": {"type": "boolean", "description": ENTRY_KEY_DOCS["trainable"][2]},
                "repeat": {"type": "integer", "minimum": 1, "maximum": MAX_REPEAT,
                           "description": ENTRY_KEY_DOCS["repeat"][2]}}
    mapping = {
        "type": "object",
        # What an editor says of a string that is no bare name below (`- Flaten`): the
        # mapping is the alternative it reports, and only its type check reads this.
        "errorMessage": unknown_name_message(
            "layer", "keras.layers", " that needs no argument (`- Flatten`), a block's "
            "snake_case name or an imported `module.Name`; or write `ClassName: {...}`",
            written="name"),
        "properties": {**classes, **siblings},
        "patternProperties": {
            custom: {"type": ["object", "null"], "description": "A layer class of a module "
                     "in `imports:` (`module.Name`); its arguments are checked at run time."},
            block_use: {"type": ["object", "null"], "description": "A use of a block of "
                        "`model.blocks`, with its parameters' values."}},
        "propertyNames": {
            "pattern": names_pattern(classes, custom, "^" + block),
            "patternErrorMessage": unknown_name_message(
                "layer", "keras.layers (or keras_hub.layers)",
                ", a block's snake_case name or an imported `module.Name`")},
        # Only sibling keys: require a key no entry has, so that editors show this
        # errorMessage (a `not` would say "Matches a schema that is not allowed").
        "if": {"propertyNames": {"enum": list(ENTRY_KEYS)}},
        "then": {"required": ["<layer>"], "errorMessage": "An entry names its layer "
                 "(`Dense: {units: 10}`) or block use beside `inputs:`, `trainable:` and "
                 "`repeat:`; this one has only those keys."},
        # At most one layer or block key: as many keys as the siblings present, plus one.
        "anyOf": [{"required": list(present), "maxProperties": len(present) + 1}
                  for size in range(len(ENTRY_KEYS) + 1)
                  for present in combinations(ENTRY_KEYS, size)],
        "dependentSchemas": {"repeat": {"propertyNames": {
            "pattern": "^" + block,
            "patternErrorMessage": "`repeat:` applies a block use several times; a layer "
                                   "is one entry (write it again, or make it a block)."}}},
    }
    bare = bare_names_schema(load_catalog().layers)
    names = {"type": "string", "anyOf": [bare, {"pattern": custom}, {"pattern": block_use}]}
    return {"anyOf": [mapping, names], "description": "A Keras layer `ClassName: {keyword: "
            "value}` or a block use `block_name: {param: value}`, with optional `inputs:`, "
            "`trainable:` (and for a block `repeat:`) beside it."}
