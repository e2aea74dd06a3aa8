"""Parsing layer lists: ``model.layers`` and the layers of each block use.

``LayerListParser`` reads each entry (``layer_entries.Entry``): a layer checked against
the catalogue, or a block use whose values are substituted into the block's layers
(``blocks.substitute``) and parsed in turn; the parsed use carries that ``body``.
"""

from __future__ import annotations

from typing import Any, Optional

from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.issues import Issue, Path, add_once, did_you_mean, safe_repr
from kerapipe.spec.keras_objects import LayerSpec
from kerapipe.spec.typed import parse
from kerapipe.spec.blocks import MAX_BLOCK_DEPTH, NO_DEFAULT, BlockSpec, is_of, substitute
from kerapipe.spec.layer_entries import (BLOCK_NAME, ENTRY_KEYS, MAX_REPEAT, NAME_REFERENCE,
                                         Entry)


class LayerListParser:
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
            if not is_of(kind, value):
                self.issues.append(Issue("wrong-type", at + (param,), f"parameter '{param}' of "
                                         f"block '{name}' takes a value of type {kind}. "
                                         f"Received: {param}={safe_repr(value)}"))
                continue
            values[param] = value
        for param, (kind, default) in block.parameters.items():
            if param not in arguments:
                if default is NO_DEFAULT and not faulty:
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
        layers = substitute(block.layers, values, definition, self.used_params[name], issues,
                             block.parameters)
        body = (self.entries(layers, definition, stack + (name,))
                if not issues and not faulty else None)
        self._report(issues)
        if not faulty:
            self._bodies[key] = body
        return body

    def _report(self, issues: list[Issue]) -> None:
        for issue in issues:
            add_once(self.issues, self._reported, issue)
