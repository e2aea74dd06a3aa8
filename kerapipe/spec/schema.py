"""JSON Schema of the pipeline format, generated from the spec dataclasses.

Editors (the YAML language server) use it for completion and inline errors; it is the
same declaration the validator runs on, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
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
    """
    for fld in spec_fields(cls):
        if fld.name == getattr(cls, "extra", None):
            continue
        path = f"{prefix}{fld.name}"
        tp = hints(cls)[fld.name]
        default = default_of(fld)
        shown = "required" if default is dataclasses.MISSING else default
        yield path, type_name(tp), shown, fld.metadata.get("doc", "")
        for inner in _nested_classes(tp):
            if not hasattr(inner, "from_yaml"):
                yield from iter_keys(inner, path + ".")


def _nested_classes(tp: Any) -> list[type]:
    if dataclasses.is_dataclass(tp):
        return [tp]
    return [c for a in typing.get_args(tp) for c in _nested_classes(a)]
