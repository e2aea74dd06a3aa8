"""JSON Schema of the pipeline format, generated from the spec dataclasses.

Editors (the YAML language server) use it for completion and inline errors; it is the
same declaration the validator runs on, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Iterator

from kerapipe.spec.model import FORMAT_VERSION, PipelineSpec
from kerapipe.spec.typed import default_of, hints, json_schema_for, spec_fields, type_name

SCHEMA_ID = "https://kerapipe.dev/schema/pipeline-v1.json"


def pipeline_json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a version-1 pipeline file."""
    defs: dict = {}
    root = json_schema_for(PipelineSpec, defs)
    name = root["$ref"].rsplit("/", 1)[1]
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"kerapipe pipeline (format version {FORMAT_VERSION})",
    }
    schema.update(defs.pop(name))
    schema["$defs"] = dict(sorted(defs.items()))
    return schema


def iter_keys(cls: type = PipelineSpec, prefix: str = "") -> Iterator[tuple[str, str, Any, str]]:
    """Every documented key: ``(dotted.path, type, default, doc)``, depth first.

    Used by the README key reference and by the test that keeps the README complete.
    List items show as ``key[]``; the keyword arguments a Keras class takes beside
    ``name`` show as ``key.<kwarg>``.
    """
    from kerapipe.spec.model import PreprocessStep
    from kerapipe.spec.steps import STEPS

    for fld in spec_fields(cls):
        path = f"{prefix}{fld.name}"
        if fld.name == getattr(cls, "extra", None):
            yield f"{prefix}<kwarg>", "any", "", fld.metadata.get("doc", "")
            continue
        tp = hints(cls)[fld.name]
        default = default_of(fld)
        shown = "required" if default is dataclasses.MISSING else default
        yield path, type_name(tp), shown, fld.metadata.get("doc", "")
        if typing.get_origin(tp) is list:
            path += "[]"
        elif typing.get_origin(tp) is dict:
            path += ".<name>"
        for inner in _nested_classes(tp):
            if inner is PreprocessStep:
                for name, kind in STEPS.items():
                    yield f"{path}.{name}", type_name(kind.options), "", kind.doc
                    yield from iter_keys(kind.options, f"{path}.{name}.")
            elif getattr(inner, "documented_keys", not hasattr(inner, "from_yaml")
                         and not hasattr(inner, "json_schema")):
                yield from iter_keys(inner, path + ".")
            for key, (kind, default, doc) in getattr(inner, "sibling_keys", {}).items():
                yield f"{path}.{key}", kind, default, doc  # beside a layer's name


def _nested_classes(tp: Any) -> list[type]:
    if dataclasses.is_dataclass(tp):
        return [tp]
    return [c for a in typing.get_args(tp) for c in _nested_classes(a)]


def render_key_table() -> str:
    """Markdown table of every key (the README's key reference)."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for path, kind, default, doc in iter_keys():
        shown = ("**required**" if default == "required" else "" if default == ""
                 else f"`{_yaml_scalar(default)}`")
        rows.append(f"| `{path}` | {kind} | {shown} | {doc} |")
    return "\n".join(rows)


def render_step_table() -> str:
    """Markdown table of the preprocessing steps (the README's step list), from
    ``steps.STEPS``: how each is written, when it runs and what it does."""
    from kerapipe.spec.steps import ADAPTABLE, AUGMENTATION, STAGES, STEPS

    rows = ["| step | written as | runs | what it does |", "|---|---|---|---|"]
    for kind in (*STEPS.values(), AUGMENTATION, ADAPTABLE):
        runs = ("as a Keras layer, on training batches only" if kind.training_only
                else STAGES[kind.stage])
        rows.append(f"| `{kind.name}` | `- {kind.example}` | {runs} | {kind.doc} |")
    return "\n".join(rows)


def render_code_table() -> str:
    """Markdown table of every issue code (the README's error reference)."""
    from kerapipe.spec.codes import ISSUE_CODES

    rows = ["| code | meaning |", "|---|---|"]
    rows += [f"| `{code}` | {meaning} |" for code, meaning in ISSUE_CODES.items()]
    return "\n".join(rows)


def _yaml_scalar(value: Any) -> str:
    from kerapipe.spec.typed import to_plain

    value = to_plain(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value).replace('"', "")
    return str(value)
