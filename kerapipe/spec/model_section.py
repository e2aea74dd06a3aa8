"""The ``model:`` section: layers and their wiring, blocks, the model's outputs.

``model.layers`` is a list of entries. An entry is a Keras layer (``Conv2D: {...}``) or
the use of a block (``residual: {filters: 64}``), with sibling keys that are kerapipe's,
not Keras's: ``inputs:`` (the names whose outputs it takes; default: the entry above),
``trainable:`` and, for a block, ``repeat:``. Layer names are Keras's ``name`` argument.

``model.blocks`` defines named, parameterised sub-graphs. A block's layers refer to its
parameters as ``$name``; each use substitutes its values and is parsed like any layer
list, so an error inside a block is found at the block's line for the values of the use.
The parsed use carries its ``body`` (the block's entries with the values substituted);
``spec/graph.py`` turns entries and bodies into the one node list every reader walks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Optional

from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.issues import Issue, Path, did_you_mean, safe_repr
from kerapipe.spec.keras_objects import LayerSpec
from kerapipe.spec.typed import parse, spec_field, to_plain

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
# A parameter reference inside a block: a whole value `$filters`.
PARAMETER_REFERENCE = re.compile(r"\$([A-Za-z_]\w*)\Z")
# The name a block's layers use for the block's one input, unless `inputs:` names them.
BLOCK_INPUT = "input"
MAX_REPEAT = 1000
MAX_BLOCK_DEPTH = 8  # blocks used inside blocks
NAME_REFERENCE = re.compile(r"[^\s/]{1,200}\Z")  # a layer or input name: no space, no '/'
MODEL_INPUT_NAME = re.compile(r"[A-Za-z_]\w{0,199}\Z")  # a model input: an identifier
MAX_MODEL_INPUTS = 64
MAX_MODEL_OUTPUTS = 64

ParameterType = Literal["int", "float", "str", "bool", "list", "any"]
_PYTHON_TYPES: dict[str, tuple] = {"int": (int,), "float": (int, float), "str": (str,),
                                   "bool": (bool,), "list": (list,), "any": (object,)}
_NO_DEFAULT = object()


def _is_of(kind: str, value: Any) -> bool:
    if kind in ("int", "float") and isinstance(value, bool):
        return False
    return isinstance(value, _PYTHON_TYPES[kind])


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
                    "trainable": {"type": "boolean", "description": "false freezes the "
                                  "layer's weights (a backbone for fine-tuning)."}}
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
                                                  "maximum": MAX_REPEAT}},
            "additionalProperties": False, **not_only_siblings})
        variants.append({"type": "string", "pattern": block_name})
        return {"anyOf": variants, "description": "A Keras layer `ClassName: {keyword: "
                "value}` or a block use `block_name: {param: value}`, with optional "
                "`inputs:`, `trainable:` (and for a block `repeat:`) beside it."}


_INPUTS_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"},
                                                 "minItems": 1}],
                  "description": "The layers or model inputs whose outputs this entry "
                                 "takes (default: the entry above)."}


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
    # Filled in by parsing: each parameter as (type, default or _NO_DEFAULT).
    parameters: dict = field(default_factory=dict, compare=False, repr=False, init=False)

    def to_yaml(self) -> Any:
        out: dict = {"layers": to_plain(self.layers)}
        if self.params:
            out["params"] = to_plain(self.params)
        if self.inputs != [BLOCK_INPUT]:
            out["inputs"] = list(self.inputs)
        return out


def _parse_block(name: Any, value: Any, path: Path, issues: list[Issue]) -> Optional[BlockSpec]:
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
        default = declared.get("default", _NO_DEFAULT)
        if kind and default is not _NO_DEFAULT and not _is_of(kind, default):
            issues.append(Issue("wrong-type", at + ("default",), f"the default of '{param}' "
                                f"must be of type {kind}. Received: {safe_repr(default)}"))
        parameters[param] = (kind or "any", default)
    if len(issues) > before:
        return None
    block = BlockSpec(layers, params, inputs)
    object.__setattr__(block, "parameters", parameters)
    return block


def _substitute(value: Any, values: dict, path: Path, used: set, issues: list[Issue],
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
        return {key: _substitute(item, values, path + (key,), used, issues, declared)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, values, path + (index,), used, issues, declared)
                for index, item in enumerate(value)]
    return value


class _Parser:
    """Parses the layer lists of one ``model:`` section, expanding block uses."""

    def __init__(self, blocks: dict[str, BlockSpec], issues: list[Issue]) -> None:
        self.blocks = blocks
        self.issues = issues
        self.used_blocks: set[str] = set()
        self.used_params: dict[str, set] = {name: set() for name in blocks}
        self._reported: set = set()
        # Blocks whose definition was refused (reported there): their uses are skipped,
        # not reported as unknown layers.
        self.refused = {issue.path[2] for issue in issues if len(issue.path) > 2
                        and tuple(issue.path[:2]) == ("model", "blocks")}
        # The body of each (block, depth, values) parsed so far: a block used many times
        # (or inside a block used many times) is parsed once per distinct use, not per use.
        self._bodies: dict = {}

    def entries(self, items: Any, path: Path, stack: tuple = ()) -> list[Entry]:
        if not isinstance(items, list):
            self.issues.append(Issue("wrong-type", path, "expected a list of layers. "
                                     f"Received: {safe_repr(items)}"))
            return []
        out = []
        for index, item in enumerate(items):
            entry = self.entry(item, path + (index,), stack)
            if entry is not None:
                out.append(entry)
        return out

    def entry(self, item: Any, path: Path, stack: tuple) -> Optional[Entry]:
        if isinstance(item, str) or not isinstance(item, dict):
            main_key, main_value, siblings = item, {}, {}
            if not isinstance(item, str):
                self.issues.append(Issue("wrong-type", path, "a layer is written as `LayerName: "
                                         "{argument: value}` (with optional `inputs:` or "
                                         f"`trainable:` beside it). Received: {safe_repr(item)}"))
                return None
        else:
            mains = [key for key in item if key not in ENTRY_KEYS]
            if len(mains) != 1:
                found = ", ".join(map(safe_repr, mains)) or "none"
                self.issues.append(Issue("wrong-type", path, "an entry has exactly one key that "
                                         "names a layer or a block (beside `inputs:`, "
                                         f"`trainable:`, `repeat:`); found {found}."))
                return None
            main_key = mains[0]
            main_value = item[main_key]
            siblings = {key: item[key] for key in ENTRY_KEYS if key in item}
        before = len(self.issues)
        inputs = siblings.get("inputs")
        if "inputs" in siblings and not isinstance(inputs, (str, list)):
            self.issues.append(Issue("wrong-type", path + ("inputs",), "`inputs:` is a name or "
                                     "a list of names (of layers above, or model inputs). "
                                     f"Received: {safe_repr(inputs)}"))
        elif "inputs" in siblings:
            one = isinstance(inputs, str)
            inputs = parse(list[str], [inputs] if one else inputs,
                           path + ("inputs",), self.issues, {"min_items": 1})
            for at, name in enumerate(inputs or []):
                if isinstance(name, str) and not NAME_REFERENCE.match(name):
                    where = path + ("inputs",) + (() if one else (at,))
                    self.issues.append(Issue("wrong-type", where, "an input is a layer's "
                                             "`name:` or a model input's name. Received: "
                                             f"{safe_repr(name)}"))
        trainable = parse(Optional[bool], siblings.get("trainable"), path + ("trainable",),
                          self.issues)
        repeat = parse(int, siblings.get("repeat", 1), path + ("repeat",), self.issues,
                       {"ge": 1, "le": MAX_REPEAT})
        if isinstance(main_key, str) and main_key in self.blocks:
            body = self.use(main_key, main_value, path, stack)
            if len(self.issues) > before or body is None:
                return None
            return Entry(None, main_key, dict(main_value or {}),
                         tuple(inputs) if inputs is not None else None, trainable, repeat,
                         tuple(body), path, tuple(self.blocks[main_key].inputs))
        if isinstance(main_key, str) and main_key in self.refused:
            return None
        if "repeat" in siblings:
            self.issues.append(Issue("unknown-key", path + ("repeat",), "`repeat:` repeats a "
                                     "block; for a layer, write it as many times (or make it "
                                     "a block).", at_key=True))
        if (self.blocks and isinstance(main_key, str) and BLOCK_NAME.match(main_key)
                and load_catalog().layers.get(main_key) is None):
            blocks = sorted(self.blocks)
            hint = did_you_mean(main_key, blocks) or did_you_mean(
                main_key, load_catalog().layers.names())
            self.issues.append(Issue("unknown-layer", path + (main_key,), f"'{main_key}' is "
                                     f"neither a Keras layer nor a block.{hint} Blocks: "
                                     f"{', '.join(blocks)}.", at_key=True))
            return None
        layer = LayerSpec.from_yaml({main_key: main_value}, path, self.issues)
        if layer is None or len(self.issues) > before:
            return None
        return Entry(layer, None, {}, tuple(inputs) if inputs is not None else None,
                     trainable, 1, (), path)

    def use(self, name: str, arguments: Any, path: Path, stack: tuple) -> Optional[list[Entry]]:
        """The body of one use of block ``name``: its entries, the values substituted."""
        block = self.blocks[name]
        self.used_blocks.add(name)
        at = path + (name,)
        if name in stack or len(stack) >= MAX_BLOCK_DEPTH:
            chain = " -> ".join(stack + (name,))
            why = (f"block '{name}' is used inside itself ({chain}); a block cannot hold "
                   "itself. Write its layers out, or use another block" if name in stack else
                   f"blocks nest deeper than {MAX_BLOCK_DEPTH} ({chain}). Use fewer levels")
            self.issues.append(Issue("block-cycle", at, why + ".", at_key=True))
            return None
        if arguments is None:
            arguments = {}
        faulty = not isinstance(arguments, dict)
        if faulty:
            self.issues.append(Issue("wrong-type", at, f"the values of block '{name}' are a "
                                     f"mapping of its parameters. Received: {safe_repr(arguments)}"))
            arguments = {}
        before = len(self.issues)
        values: dict = {}
        for param, value in arguments.items():
            if param == "name":
                if not isinstance(value, str) or not NAME_REFERENCE.match(value):
                    self.issues.append(Issue("wrong-type", at + ("name",), "a use's name is text "
                                             f"without spaces or '/'. Received: {safe_repr(value)}"))
                continue
            if param not in block.parameters:
                self.issues.append(Issue("unknown-parameter", at + (param,), f"block '{name}' has "
                                         f"no parameter '{param}'."
                                         f"{did_you_mean(param, block.parameters)} Its "
                                         f"parameters: {', '.join(block.parameters) or 'none'}.",
                                         at_key=True))
                continue
            kind = block.parameters[param][0]
            if not _is_of(kind, value):
                self.issues.append(Issue("wrong-type", at + (param,), f"parameter '{param}' of "
                                         f"block '{name}' takes a value of type {kind}. "
                                         f"Received: {param}={safe_repr(value)}"))
                continue
            values[param] = value
        for param, (kind, default) in block.parameters.items():
            if param not in arguments:
                if default is _NO_DEFAULT and not faulty:
                    self.issues.append(Issue("missing-argument", at, f"block '{name}' needs the "
                                             f"parameter '{param}' ({kind}). Add `{param}: ...` "
                                             f"under {name}.", at_key=True))
                else:
                    values[param] = default
        # A use whose values are refused is not parsed (its layers would repeat its
        # faults), but its block's definition is still read for `$` references.
        faulty = faulty or len(self.issues) > before
        key = (name, len(stack), repr(sorted(values.items())))
        if not faulty and key in self._bodies:
            return self._bodies[key]
        definition = ("model", "blocks", name, "layers")
        issues: list[Issue] = []
        layers = _substitute(block.layers, values, definition, self.used_params[name], issues,
                             block.parameters)
        body = (self.entries(layers, definition, stack + (name,))
                if not issues and not faulty else None)
        self._report(issues)
        if not faulty:
            self._bodies[key] = body
        return body

    def _report(self, issues: list[Issue]) -> None:
        for issue in issues:  # a block used twice reports its definition's faults once
            key = (issue.code, tuple(issue.path), issue.message)
            if key not in self._reported:
                self._reported.add(key)
                self.issues.append(issue)


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
                                         "loss": {}, "metrics": {"type": "array"},
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
                issues.append(Issue("unknown-key", path + (key,), f"unknown key '{key}'."
                                    f"{did_you_mean(key, known)} Expected one of: "
                                    f"{', '.join(known)}.", at_key=True))
        blocks: dict[str, BlockSpec] = {}
        raw_blocks = value.get("blocks")
        raw_blocks = {} if raw_blocks is None else raw_blocks  # `blocks:` with nothing after it
        if not isinstance(raw_blocks, dict):
            issues.append(Issue("wrong-type", path + ("blocks",), "`blocks:` maps each block's "
                                f"name to its definition. Received: {safe_repr(raw_blocks)}"))
            raw_blocks = {}
        for name, definition in raw_blocks.items():
            block = _parse_block(name, definition, path + ("blocks", name), issues)
            if block is not None:
                blocks[name] = block
        parser = _Parser(blocks, issues)
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
