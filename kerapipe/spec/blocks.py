"""Blocks: named, parameterised sub-graphs (``model.blocks``), used like a layer.

A block's layers refer to its parameters as ``$name``. Each use substitutes its values
(``substitute``) and its layers are then parsed like any layer list
(``spec/layer_lists.py``), so an error inside a block is found at the block's line for
the values of the use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Optional

from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.issues import Issue, Path, did_you_mean, safe_repr
from kerapipe.spec.typed import parse, spec_field, to_plain
from kerapipe.spec.layer_entries import BLOCK_NAME, ENTRY_KEYS, NAME_REFERENCE

# A parameter reference inside a block: a whole value `$filters`.
PARAMETER_REFERENCE = re.compile(r"\$([A-Za-z_]\w*)\Z")
# The name a block's layers use for the block's one input, unless `inputs:` names them.
BLOCK_INPUT = "input"
MAX_BLOCK_DEPTH = 8  # blocks used inside blocks

ParameterType = Literal["int", "float", "str", "bool", "list", "any"]
_PYTHON_TYPES: dict[str, tuple] = {"int": (int,), "float": (int, float), "str": (str,),
                                   "bool": (bool,), "list": (list,), "any": (object,)}
NO_DEFAULT = object()


def is_of(kind: str, value: Any) -> bool:
    if kind in ("int", "float") and isinstance(value, bool):
        return False
    return isinstance(value, _PYTHON_TYPES[kind])


@dataclass(frozen=True)
class BlockParameter:
    """A parameter of a block: its type and, unless it is required, its default."""

    shorthand: ClassVar[str] = "type"  # `filters: int` is short for `filters: {type: int}`
    type: ParameterType = spec_field("any", "The kind of value: int, float, str, bool, list "
                                     "or any.")
    default: Any = spec_field(None, "The value when a use does not give one; leave out to "
                              "make the parameter required.")


@dataclass(frozen=True)
class BlockSpec:
    """A named, parameterised sub-graph, used in ``model.layers`` like a layer."""

    layers: list[Any] = spec_field(doc="The block's layer list, written like model.layers; "
                              "`$param` stands for a parameter's value, and `inputs:` may "
                              "name the block's inputs.", min_items=1)
    params: dict[str, BlockParameter] = spec_field({}, "Parameters by name: `{type: int, default: 32}` (leave "
                              "out `default` for a required one) or just the type.")
    inputs: list[str] = spec_field([BLOCK_INPUT], "Names of the block's inputs, as its "
                                   "layers refer to them; a use gives as many `inputs:`.",
                                   min_items=1)
    # Filled in by parsing: each parameter as (type, default or NO_DEFAULT).
    parameters: dict = field(default_factory=dict, compare=False, repr=False, init=False)

    def to_yaml(self) -> Any:
        out: dict = {"layers": to_plain(self.layers)}
        if self.params:
            out["params"] = to_plain(self.params)
        if self.inputs != [BLOCK_INPUT]:
            out["inputs"] = list(self.inputs)
        return out


def parse_block(name: Any, value: Any, path: Path, issues: list[Issue]) -> Optional[BlockSpec]:
    if not isinstance(name, str) or not BLOCK_NAME.match(name):
        issues.append(Issue("bad-block", path, "a block's name is snake_case (lower-case "
                            "letters, digits and `_`, starting with a letter), so it cannot "
                            "be taken for a Keras layer. Received: " + safe_repr(name),
                            at_key=True))
        return None
    if load_catalog().layers.get(name) is not None:
        issues.append(Issue("bad-block", path, f"'{name}' is a Keras layer name; give the "
                            "block another name.", at_key=True))
        return None
    if name in ENTRY_KEYS:
        issues.append(Issue("bad-block", path, f"'{name}' is a key beside a layer (`{name}:`), "
                            "so a use could not name the block; give the block another name.",
                            at_key=True))
        return None
    if not isinstance(value, dict):
        issues.append(Issue("wrong-type", path, "a block is a mapping with `layers:` (and "
                            f"optional `params:` and `inputs:`). Received: {safe_repr(value)}"))
        return None
    before = len(issues)
    for key in value:
        if key not in ("layers", "params", "inputs"):
            issues.append(Issue("unknown-key", path + (key,), f"unknown key '{key}'."
                                f"{did_you_mean(key, ('layers', 'params', 'inputs'))} A block "
                                "has layers, params and inputs.", at_key=True))
    layers = value.get("layers")
    if not isinstance(layers, list) or not layers:
        issues.append(Issue("missing-key" if layers is None else "wrong-type", path + ("layers",),
                            "a block needs `layers:`, a list of at least one layer."))
    inputs = value.get("inputs", [BLOCK_INPUT])
    inputs = parse(list[str], [inputs] if isinstance(inputs, str) else inputs,  # one name
                   path + ("inputs",), issues, {"min_items": 1})
    for at, name in enumerate(inputs or ()):
        if not isinstance(name, str):
            continue  # (reported by parse)
        if not NAME_REFERENCE.match(name):
            issues.append(Issue("wrong-type", path + ("inputs", at), "a block's input is a "
                                f"name without spaces or '/'. Received: {safe_repr(name)}"))
        elif name in inputs[:at]:
            issues.append(Issue("duplicate-name", path + ("inputs", at), f"'{name}' is "
                                f"inputs[{inputs.index(name)}] already; each input of a block "
                                "needs a name of its own."))
    parameters: dict = {}
    params = value.get("params", {}) or {}
    if not isinstance(params, dict):
        issues.append(Issue("wrong-type", path + ("params",), "`params:` maps each parameter's "
                            f"name to its type or to `{{type: ..., default: ...}}`. Received: "
                            f"{safe_repr(params)}"))
        params = {}
    for param, declared in params.items():
        at = path + ("params", param)
        if not isinstance(param, str) or not re.match(r"[A-Za-z_]\w*\Z", param) or param == "name":
            issues.append(Issue("bad-block", at, "a parameter's name is an identifier other "
                                "than `name` (which names a use). Received: " + safe_repr(param),
                                at_key=True))
            continue
        if isinstance(declared, str) or declared is None:
            declared = {"type": declared or "any"}
        if not isinstance(declared, dict):
            issues.append(Issue("wrong-type", at, "a parameter is its type (`int`) or `{type: "
                                f"int, default: 32}}`. Received: {safe_repr(declared)}"))
            continue
        kind = parse(ParameterType, declared.get("type", "any"), at + ("type",), issues)
        for key in declared:
            if key not in ("type", "default"):
                issues.append(Issue("unknown-key", at + (key,), f"unknown key '{key}'; a "
                                    "parameter has `type` and `default`.", at_key=True))
        default = declared.get("default", NO_DEFAULT)
        if kind and default is not NO_DEFAULT and not is_of(kind, default):
            issues.append(Issue("wrong-type", at + ("default",), f"the default of '{param}' "
                                f"must be of type {kind}. Received: {safe_repr(default)}"))
        parameters[param] = (kind or "any", default)
    if len(issues) > before:
        return None
    block = BlockSpec(layers, params, inputs)
    object.__setattr__(block, "parameters", parameters)
    return block


def substitute(value: Any, values: dict, path: Path, used: set, issues: list[Issue],
                declared: Optional[dict] = None) -> Any:
    """``value`` with each ``$param`` replaced by ``values[param]`` (at any depth);
    a reference to a parameter not in ``declared`` (default: ``values``) is an issue at
    its key path, and so is one in a key (a parameter stands for a value). A declared
    parameter without a value (the use's fault, reported there) becomes ``None``."""
    declared = values if declared is None else declared
    if isinstance(value, str):
        match = PARAMETER_REFERENCE.match(value)
        if match is None:
            return value
        name = match.group(1)
        used.add(name)
        if name not in declared:
            issues.append(Issue("unknown-parameter", path, f"'${name}' names no parameter of "
                                f"this block.{did_you_mean(name, declared)} Declare it under "
                                f"`params:` (e.g. `{name}: {{type: int, default: 1}}`)."))
            return None
        return values.get(name)
    if isinstance(value, dict):
        for key in value:
            match = PARAMETER_REFERENCE.match(key) if isinstance(key, str) else None
            if match is not None:
                used.add(match.group(1))  # (not reported unused as well)
                issues.append(Issue("unknown-parameter", path + (key,), f"'{key}' is a key; "
                                    "a parameter stands for a value (`units: $units`), not "
                                    "for a key (an argument's or a layer's name). Write the "
                                    "key out.", at_key=True))
        return {key: substitute(item, values, path + (key,), used, issues, declared)
                for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, values, path + (index,), used, issues, declared)
                for index, item in enumerate(value)]
    return value
