"""`--set key.path=value`: command-line overrides with the same key paths as the file.

The value is read by the same safe YAML loader (``--set train.epochs=3`` is an integer,
``--set data.preprocess[1].reshape=[28,28,1]`` a list), applied to the loaded data, and
then validated with the file, so an override gets exactly the file's errors, located
at the ``--set`` that caused it (``Document.locate``).

A key under a shorthand scalar expands the shorthand first, as the file format reads it:
with ``loss: sparse_categorical_crossentropy`` in the file, ``--set loss.from_logits=true``
means ``loss: {name: sparse_categorical_crossentropy, from_logits: true}``. Which keys are
shorthands is read from the spec dataclasses' ``shorthand`` declarations in ``model.py``.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Any, Union

from kerapipe.spec.issues import Issue
from kerapipe.spec.yaml_loader import Document, LoadProblem, load_document

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
MAX_INDEX_DIGITS = 9  # a list index in a pipeline file is far below 10**9
_MAX_SHOWN = 100  # characters of a `--set` shown as the place of its issues
_ARGUMENTS = object()  # the keyword arguments of a Keras layer (free-form below)
_SYNTAX = ("expected KEY.PATH=VALUE, e.g. `--set train.epochs=3` or "
           "`--set model.layers[0].Dense.units=64`.")


def parse_key_path(text: str) -> tuple | None:
    """``model.layers[2].Dense.units`` -> ``("model", "layers", 2, "Dense", "units")``.

    ``None`` when the text is not a key path or an index has over ``MAX_INDEX_DIGITS``
    digits.
    """
    parts = _split_key_path(text)
    return parts if isinstance(parts, tuple) else None


def format_key_path(parts: tuple) -> str:
    """``("model", "layers", 2, "Dense", "units")`` -> ``model.layers[2].Dense.units``: the
    inverse of ``parse_key_path``, the form ``--set``, ``compare`` and ``tune`` write."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def flatten_key_paths(data: Any, prefix: tuple = ()) -> dict[str, Any]:
    """Every leaf of plain data (a resolved spec's ``to_plain`` form) by its key path:
    ``{"train.epochs": 3, "model.layers[0].Dense.units": 64, ...}``, in document order.

    An empty mapping or list is a leaf of its own (``{}``, ``[]``), so two specs that differ
    only there still differ here.
    """
    if isinstance(data, dict) and data:
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(flatten_key_paths(value, prefix + (str(key),)))
        return flat
    if isinstance(data, list) and data:
        flat = {}
        for index, value in enumerate(data):
            flat.update(flatten_key_paths(value, prefix + (index,)))
        return flat
    return {format_key_path(prefix): data}


def _split_key_path(text: str) -> tuple | str:
    """The key path's parts, or why it is not one."""
    parts: list = []
    for segment in text.split("."):
        pieces = list(_PART.finditer(segment))
        if not pieces or "".join(m.group(0) for m in pieces) != segment or pieces[0].group(1) is None:
            return _SYNTAX
        for match in pieces:
            if match.group(1) is not None:
                parts.append(match.group(1))
            elif len(match.group(2)) > MAX_INDEX_DIGITS:
                return (f"a list index has at most {MAX_INDEX_DIGITS} digits; no list in a "
                        f"pipeline file is that long. Received: index of "
                        f"{len(match.group(2))} digits")
            else:
                parts.append(int(match.group(2)))
    return tuple(parts)


def override_origin(text: str) -> str:
    """``--set KEY.PATH=VALUE`` as the place of an issue, cut to a readable length."""
    origin = f"--set {text}"
    return origin if len(origin) <= _MAX_SHOWN else origin[:_MAX_SHOWN - 3] + "..."


def apply_overrides(document: Document, overrides: list[str]) -> list[Issue]:
    """Apply ``KEY.PATH=VALUE`` overrides to ``document`` in place; return their issues.

    The issues are those of the overrides themselves (syntax, no such place, a value
    YAML refuses), each located at its ``--set``.
    """
    issues: list[Issue] = []
    for text in overrides:
        origin = override_origin(text)
        key, sep, raw_value = text.partition("=")
        path = _split_key_path(key.strip()) if sep else _SYNTAX
        if isinstance(path, str):
            issues.append(Issue("bad-override", (), path, file=origin))
            continue
        try:
            loaded = load_document(raw_value, origin) if raw_value.strip() else None
        except LoadProblem as problem:
            problem.issue.file, problem.issue.line, problem.issue.column = origin, 0, 0
            problem.issue.path = path
            issues.append(problem.issue)
            continue
        if loaded is not None and loaded.issues:  # e.g. a duplicate key inside the value
            for issue in loaded.issues:
                issue.path = path + tuple(issue.path)
                issue.file, issue.line, issue.column = origin, 0, 0
            issues += loaded.issues
            continue
        path = _join_dotted_keys(document.data, path)
        created: list[tuple] = []
        problem = _assign(document.data, path, loaded.data if loaded else None, created)
        if problem:
            issues.append(Issue("bad-override", path, problem, file=origin))
            continue
        for made in created:  # what is inside a mapping the --set made is the --set's
            document.overrides[made] = origin
        document.overrides[path] = origin
    return issues


def _join_dotted_keys(data: Any, path: tuple) -> tuple:
    """``path`` with the parts joined that name one key holding dots in the file: a layer
    key such as ``applications.ResNet50`` or ``module.Name`` (the key path is split at
    every dot). The longest key the file has at that place wins."""
    joined: list = []
    target, index = data, 0
    while index < len(path):
        part = path[index]
        if isinstance(part, str) and isinstance(target, (dict, str)) and not (
                isinstance(target, dict) and part in target):
            for end in range(len(path), index + 1, -1):
                pieces = path[index:end]
                name = ".".join(pieces) if all(isinstance(p, str) for p in pieces) else None
                if name is not None and (name in target if isinstance(target, dict)
                                         else name == target):  # `- applications.X` bare
                    part, index = name, end - 1
                    break
        joined.append(part)
        if isinstance(target, dict):
            target = target.get(part)
        elif isinstance(target, list) and isinstance(part, int) and 0 <= part < len(target):
            target = target[part]
        else:
            target = None
        index += 1
    return tuple(joined)


def _assign(data: Any, path: tuple, value: Any, created: list[tuple]) -> str:
    target = data
    spec_type: Any = _pipeline_spec()
    for depth, part in enumerate(path[:-1]):
        nxt = path[depth + 1]
        spec_type = _member_type(spec_type, part)
        if isinstance(part, int):
            if not isinstance(target, list) or part >= len(target):
                return f"there is no item [{part}] to change here."
        else:
            if not isinstance(target, dict):
                return f"'{part}' is not inside a mapping."
            if part not in target or target[part] is None:
                if isinstance(nxt, int):
                    return f"there is no list '{part}' to index."
                target[part] = {}
                created.append(path[:depth + 1])
        if isinstance(nxt, str) and not isinstance(target[part], (dict, type(None))):
            expanded = _expand_shorthand(spec_type, target[part], nxt)
            if expanded is not None:
                target[part] = expanded
        target = target[part]
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(target, list) or last >= len(target):
            return f"there is no item [{last}] to change here."
    elif not isinstance(target, dict):
        return f"'{last}' is not inside a mapping."
    target[last] = value
    return ""


# --- the spec type at a key path (for shorthands) ------------------------------------

def _pipeline_spec() -> type:
    from kerapipe.spec.model import PipelineSpec  # model imports the catalogue: on demand

    return PipelineSpec


def _member_type(spec_type: Any, part: Any) -> Any:
    """The annotation the value at ``part`` inside a ``spec_type`` value is read as;
    ``None`` where the format says nothing (unknown keys, Keras arguments)."""
    from kerapipe.spec.model import NESTED_LAYER_ARGS, LayerSpec, PreprocessStep
    from kerapipe.spec.layer_entries import ENTRY_KEYS, Entry
    from kerapipe.spec.steps import STEPS
    from kerapipe.spec.typed import hints

    if spec_type is _ARGUMENTS:
        return LayerSpec if part in NESTED_LAYER_ARGS else None
    spec_type = _container_member(spec_type, part)
    if spec_type is None:
        return None
    if typing.get_origin(spec_type) is list:
        return typing.get_args(spec_type)[0] if isinstance(part, int) else None
    if spec_type is LayerSpec or (spec_type is Entry and part not in ENTRY_KEYS):
        return _ARGUMENTS
    if spec_type is PreprocessStep:
        step = STEPS.get(part)  # or a Keras Random* layer's arguments
        return step.options if step is not None else _ARGUMENTS
    if dataclasses.is_dataclass(spec_type) and isinstance(part, str):
        if (getattr(spec_type, "from_yaml", None) is not None
                and not getattr(spec_type, "documented_keys", False)):
            return None  # a schedule: `Name: {kwargs}`
        return hints(spec_type).get(part)
    return None


def _container_member(spec_type: Any, part: Any) -> Any:
    """The member of a union that can hold ``part`` (a list for an index, else a mapping)."""
    if typing.get_origin(spec_type) is not Union:
        return spec_type
    for member in typing.get_args(spec_type):
        is_list = typing.get_origin(member) is list
        if is_list == isinstance(part, int) and (is_list or dataclasses.is_dataclass(member)):
            return member
    return None


def _expand_shorthand(spec_type: Any, value: Any, key: str) -> dict | None:
    """``value`` written in full as a mapping, so ``key`` can be set inside it; ``None``
    when the format has no shorthand there."""
    from kerapipe.spec.model import LayerSpec
    from kerapipe.spec.layer_entries import Entry

    spec_type = _container_member(spec_type, key)
    if spec_type in (LayerSpec, Entry) and isinstance(value, str) and value == key:
        return {value: {}}  # `- Flatten` is short for `- Flatten: {}`
    short = getattr(spec_type, "shorthand", None) if dataclasses.is_dataclass(spec_type) else None
    return {short: value} if short else None
