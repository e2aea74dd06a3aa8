"""A small declarative typing layer: spec dataclasses -> validation + JSON Schema.

The pipeline format is declared once, as frozen dataclasses in ``spec/model.py``. This
module reads those declarations (type hints plus ``spec_field`` metadata) and derives
both the strict validator and the JSON Schema from them, so docs, ``kerapipe schema``
and validation never disagree.

Why not pydantic: importing it and building ~20 models costs about 0.2 s, which alone
would break the 0.3 s budget of ``kerapipe validate``; and every error needs kerapipe's
own codes, key paths and did-you-mean hints anyway.

Class-level options a spec dataclass may declare:
- ``shorthand``: a field name; a scalar or list value ``v`` means ``{shorthand: v}``.
- ``exactly_one``: the mapping must set exactly one of the fields (a tagged union).
- ``extra``: a field name collecting unknown keys (Keras keyword arguments that are
  checked later against the Keras name catalogue) instead of refusing them.
- ``from_yaml``: a classmethod ``(value, path, issues) -> instance | None`` that takes
  over parsing entirely (layers, schedules), and ``json_schema()`` for its schema.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, ClassVar, Literal, Union

from kerapipe.spec.issues import Issue, Path, did_you_mean, format_path, safe_repr
from kerapipe.spec.key_hints import under_indented_keys, under_indented_message, unknown_key_issue
from kerapipe.spec.yaml_loader import OversizedInteger

_REQUIRED = dataclasses.MISSING
_HINTS_CACHE: dict[type, dict[str, Any]] = {}


def spec_field(default: Any = _REQUIRED, doc: str = "", *, ge: float | None = None,
               gt: float | None = None, le: float | None = None, lt: float | None = None,
               min_items: int | None = None, max_items: int | None = None,
               coerce: Any = None, json_schema: dict | None = None) -> Any:
    """Declare a field of a spec dataclass.

    Args:
        default: the default value; leave out for a required field. Mutable defaults
            (lists, dicts, spec dataclasses) are copied for each instance.
        doc: one sentence for the README and the JSON Schema.
        ge, gt, le, lt: numeric bounds (inclusive / exclusive).
        min_items, max_items: bounds on a list's length.
        coerce: ``f(value) -> value`` run before type checking; raises ``ValueError``
            with a message for a value it cannot accept (e.g. the fraction ``1/255``).
        json_schema: the field's JSON Schema when the type alone does not say it (a
            coerced field accepts more than its type).
    """
    meta = {"doc": doc, "ge": ge, "gt": gt, "le": le, "lt": lt, "min_items": min_items,
            "max_items": max_items, "coerce": coerce, "json_schema": json_schema}
    if default is _REQUIRED:
        return dataclasses.field(metadata=meta)
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        frozen = default
        return dataclasses.field(default_factory=lambda: _copy(frozen), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value  # spec dataclasses are frozen: sharing them is safe


def hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS_CACHE:
        _HINTS_CACHE[cls] = typing.get_type_hints(cls)
    return _HINTS_CACHE[cls]


def spec_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def describe_value(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a mapping", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def _received(path: Path, value: Any) -> str:
    name = next((p for p in reversed(path) if isinstance(p, str)), "value")
    return f"Received: {name}={safe_repr(value)} ({describe_value(value)})"


def type_name(tp: Any) -> str:
    """Human name of an annotation, for 'expected ...' messages."""
    origin = typing.get_origin(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if tp is Any:
        return "any value"
    if origin is Literal:
        return "one of " + ", ".join(repr(c) for c in typing.get_args(tp))
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    if origin is Union:
        names = [type_name(a) for a in typing.get_args(tp) if a is not type(None)]
        if type(None) in typing.get_args(tp):
            names.append("null")
        return " or ".join(dict.fromkeys(names))
    if dataclasses.is_dataclass(tp):
        short = getattr(tp, "shorthand", None)
        if short:
            inner = type_name(hints(tp)[short])
            return f"{inner} or a mapping"
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def parse(tp: Any, value: Any, path: Path, issues: list[Issue], meta: dict | None = None) -> Any:
    """Check ``value`` against annotation ``tp``; return the typed value.

    Problems are appended to ``issues``; the return value is then best effort.
    """
    meta = meta or {}
    if isinstance(value, OversizedInteger):
        return None  # the loader reported it where it stands
    if meta.get("coerce") is not None and value is not None:
        try:
            value = meta["coerce"](value)
        except ValueError as err:
            issues.append(Issue("wrong-type", path, f"{err} {_received(path, value)}"))
            return None
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Union:
        return _parse_union(tp, value, path, issues, meta)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices and type(value) in {type(c) for c in choices}:
            return value
        words = all(isinstance(c, str) for c in choices) and isinstance(value, str)
        hint = did_you_mean(value, choices) if words else ""
        issues.append(Issue("unknown-value", path, f"expected {type_name(tp)}.{hint} "
                            f"{_received(path, value)}"))
        return None
    if dataclasses.is_dataclass(tp):
        return parse_spec(tp, value, path, issues)
    if origin is list:
        if not isinstance(value, list):
            issues.append(Issue("wrong-type", path, f"expected a list. {_received(path, value)}"))
            return None
        _check_length(value, path, issues, meta)
        (item_tp,) = typing.get_args(tp)
        return [parse(item_tp, item, path + (i,), issues) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            issues.append(Issue("wrong-type", path, f"expected a mapping. {_received(path, value)}"))
            return None
        return dict(value)
    return _parse_scalar(tp, value, path, issues, meta)


def _parse_scalar(tp: Any, value: Any, path: Path, issues: list[Issue], meta: dict) -> Any:
    ok = {
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        bool: isinstance(value, bool),
        str: isinstance(value, str),
    }.get(tp)
    if ok is None:
        raise TypeError(f"spec annotation {tp!r} is not supported")  # a bug in spec/model.py
    if not ok:
        hint = ""
        if tp is bool and isinstance(value, str) and value.lower() in {"yes", "no", "on", "off", "y", "n"}:
            hint = " Write true or false (YAML 1.2: 'yes'/'no'/'on'/'off' are strings)."
        elif tp in (int, float) and isinstance(value, str) and looks_numeric(value):
            hint = " Write the number without quotes."
        issues.append(Issue("wrong-type", path, f"expected {type_name(tp)}.{hint} "
                            f"{_received(path, value)}"))
        return None
    if tp is float:
        try:
            number = float(value)
        except OverflowError:
            issues.append(Issue("out-of-range", path, f"must be a finite number; this integer "
                                f"is beyond the range of a float (about 1.8e308). "
                                f"{_received(path, value)}"))
            return None
        if not math.isfinite(number):
            issues.append(Issue("out-of-range", path, f"must be a finite number. "
                                f"{_received(path, number)}"))
            return None
        value = number
    if tp in (int, float):
        _check_bounds(value, path, issues, meta)
    return value


def looks_numeric(text: str) -> bool:
    """Whether ``float(text)`` accepts the text (e.g. a quoted number)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_bounds(value: float, path: Path, issues: list[Issue], meta: dict) -> None:
    rules = [("ge", "at least", lambda b: value >= b), ("gt", "greater than", lambda b: value > b),
             ("le", "at most", lambda b: value <= b), ("lt", "less than", lambda b: value < b)]
    for key, words, holds in rules:
        bound = meta.get(key)
        if bound is not None and not holds(bound):
            issues.append(Issue("out-of-range", path, f"must be {words} {bound}. "
                                f"{_received(path, value)}"))
            return


def _check_length(value: list, path: Path, issues: list[Issue], meta: dict) -> None:
    low, high = meta.get("min_items"), meta.get("max_items")
    if low is not None and len(value) < low:
        issues.append(Issue("out-of-range", path, f"needs at least {low} item(s); it has "
                            f"{len(value)}."))
    if high is not None and len(value) > high:
        issues.append(Issue("out-of-range", path, f"takes at most {high} item(s); it has "
                            f"{len(value)}. {_received(path, value)}"))


def _coerces(cls: type, name: str) -> bool:
    return any(f.name == name and f.metadata.get("coerce") for f in spec_fields(cls))


def _kind_matches(tp: Any, value: Any) -> bool:
    """Whether ``value`` has the shape that member ``tp`` of a union expects."""
    origin = typing.get_origin(tp)
    if tp is type(None):
        return value is None
    if dataclasses.is_dataclass(tp):
        if isinstance(value, dict):
            return True
        short = getattr(tp, "shorthand", None)
        return bool(short) and _kind_matches(hints(tp)[short], value)
    if origin is Union:  # a shorthand of Optional[int]: `one_hot: 10`
        return any(member is not type(None) and _kind_matches(member, value)
                   for member in typing.get_args(tp))
    if origin is list:
        return isinstance(value, list)
    if origin is dict:
        return isinstance(value, dict)
    if origin is Literal:  # same kind as the choices: parse() then names the closest one
        return any(type(value) is type(choice) for choice in typing.get_args(tp))
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp in (bool, str):
        return isinstance(value, tp)
    return tp is Any


def _parse_union(tp: Any, value: Any, path: Path, issues: list[Issue], meta: dict) -> Any:
    members = typing.get_args(tp)
    for member in members:
        if _kind_matches(member, value):
            return None if member is type(None) else parse(member, value, path, issues, meta)
    issues.append(Issue("wrong-type", path, f"expected {type_name(tp)}. {_received(path, value)}"))
    return None


def parse_spec(cls: type, value: Any, path: Path, issues: list[Issue]) -> Any:
    """Build spec dataclass ``cls`` from plain data, collecting every issue."""
    custom = getattr(cls, "from_yaml", None)
    if custom is not None:
        return custom(value, path, issues)
    short = getattr(cls, "shorthand", None)
    if value is None:
        value = {}  # `normalize:` with nothing after it means "all defaults"
    elif not isinstance(value, dict):
        if short and (_kind_matches(hints(cls)[short], value) or _coerces(cls, short)):
            value = {short: value}
        else:
            issues.append(Issue("wrong-type", path, f"expected {type_name(cls)}. "
                                f"{_received(path, value)}"))
            return None
    fields = {f.name: f for f in spec_fields(cls)}
    extra_name = getattr(cls, "extra", None)
    known = [name for name in fields if name != extra_name]
    before = len(issues)
    kwargs: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    indented = None  # key indented too little -> its section; found at the first unknown key
    for key, item in value.items():
        if key in known:
            continue
        if extra_name:
            extras[key] = item
            continue
        indented = under_indented_keys(path, value, known) if indented is None else indented
        if key in indented:
            issues.append(Issue("bad-indentation", path + (key,),
                                under_indented_message(key, indented[key], path), at_key=True))
        else:
            issues.append(unknown_key_issue(key, path, known))
    emptied = set(indented.values()) if indented else set()  # their own issues: not reported
    if getattr(cls, "exactly_one", False):
        present = [k for k in known if value.get(k) is not None]  # `csv:` alone gives nothing
        if len(present) != 1 and len(issues) == before:
            found = f"found {', '.join(present)}" if present else "found none"
            empty = [k for k in known if k in value and value[k] is None]
            if empty:
                found += f" ({', '.join(empty)}: empty)"
            issues.append(Issue("one-of", path, f"give exactly one of {', '.join(known)}; {found}."))
    for name, fld in fields.items():
        if name == extra_name:
            kwargs[name] = extras
            continue
        if name in value:
            kwargs[name] = parse(hints(cls)[name], value[name], path + (name,),
                                 [] if name in emptied else issues, dict(fld.metadata))
        elif fld.default is _REQUIRED and fld.default_factory is _REQUIRED:
            if not getattr(cls, "exactly_one", False):
                issues.append(Issue("missing-key", path + (name,),
                                    f"required key '{name}' is missing"
                                    f" from {format_path(path)}." if path else
                                    f"required key '{name}' is missing.", ))
    check_local = getattr(cls, "check_local", None)
    if check_local is not None:  # runs even after other issues, so all are reported at once
        check_local(kwargs, path, issues)
    if len(issues) > before:
        return None
    return cls(**kwargs)


# --- JSON Schema -------------------------------------------------------------------

def json_schema_for(tp: Any, defs: dict) -> dict:
    """JSON Schema of an annotation; spec dataclasses go to ``defs`` by class name."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return {}
    if tp is type(None):
        return {"type": "null"}
    if origin is Union:
        return {"anyOf": [json_schema_for(a, defs) for a in typing.get_args(tp)]}
    if origin is Literal:
        return {"enum": list(typing.get_args(tp))}
    if origin is list:
        return {"type": "array", "items": json_schema_for(typing.get_args(tp)[0], defs)}
    if origin is dict:
        values = typing.get_args(tp)[1:]
        if values and values[0] is not Any:  # dict[str, BlockSpec]: each value's schema
            return {"type": "object", "additionalProperties": json_schema_for(values[0], defs)}
        return {"type": "object"}
    if dataclasses.is_dataclass(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # placeholder against recursion
            defs[name] = _dataclass_schema(tp, defs)
        return {"$ref": f"#/$defs/{name}"}
    return {int: {"type": "integer"}, float: {"type": "number"}, bool: {"type": "boolean"},
            str: {"type": "string"}}[tp]


def _dataclass_schema(cls: type, defs: dict) -> dict:
    custom = getattr(cls, "json_schema", None)
    if custom is not None:
        return custom()
    props: dict[str, dict] = {}
    required: list[str] = []
    extra_name = getattr(cls, "extra", None)
    for fld in spec_fields(cls):
        if fld.name == extra_name:
            continue
        schema = _field_schema(cls, fld, defs)
        meta = fld.metadata
        if meta.get("doc"):
            schema["description"] = meta["doc"]
        for key, json_key in (("ge", "minimum"), ("gt", "exclusiveMinimum"), ("le", "maximum"),
                              ("lt", "exclusiveMaximum"), ("min_items", "minItems"),
                              ("max_items", "maxItems")):
            if meta.get(key) is not None:
                schema[json_key] = meta[key]
        default = default_of(fld)
        if default is not _REQUIRED:
            schema["default"] = to_plain(default)
        elif not getattr(cls, "exactly_one", False):
            required.append(fld.name)
        props[fld.name] = schema
    obj: dict[str, Any] = {"type": "object", "properties": props,
                           "additionalProperties": bool(extra_name)}
    if cls.__doc__:
        obj["description"] = cls.__doc__.strip().split("\n\n")[0].replace("\n", " ")
    if required:
        obj["required"] = required
    if getattr(cls, "exactly_one", False):
        obj["minProperties"] = obj["maxProperties"] = 1
    short = getattr(cls, "shorthand", None)
    if short:
        short_field = next(f for f in spec_fields(cls) if f.name == short)
        return {"anyOf": [_field_schema(cls, short_field, defs), obj],
                "description": obj.get("description", "")}
    return obj


def _field_schema(cls: type, fld: dataclasses.Field, defs: dict) -> dict:
    override = fld.metadata.get("json_schema")
    return dict(override) if override else dict(json_schema_for(hints(cls)[fld.name], defs))


def default_of(fld: dataclasses.Field) -> Any:
    if fld.default is not _REQUIRED:
        return fld.default
    if fld.default_factory is not _REQUIRED:
        return fld.default_factory()
    return _REQUIRED


def to_plain(value: Any) -> Any:
    """A spec value as plain YAML/JSON data (the fully resolved form)."""
    to_yaml = getattr(value, "to_yaml", None)
    if to_yaml is not None:
        return to_yaml()
    if dataclasses.is_dataclass(value):
        out: dict[str, Any] = {}
        extra_name = getattr(value, "extra", None)
        for fld in spec_fields(type(value)):
            item = getattr(value, fld.name)
            if fld.name == extra_name:
                out.update({k: to_plain(v) for k, v in item.items()})
            elif not (getattr(value, "exactly_one", False) and item is None):
                out[fld.name] = to_plain(item)
        return out
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value


__all__ = ["spec_field", "parse", "parse_spec", "json_schema_for", "to_plain", "hints",
           "spec_fields", "default_of", "type_name", "ClassVar"]
