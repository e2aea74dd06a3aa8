"""The JSON Schema of a Keras object named in a pipeline file (``ClassName: {kwargs}``).

``kerapipe schema`` and editors read it; the validator checks the same catalogue entries
(``spec/keras_objects.py``).
"""

from __future__ import annotations

from kerapipe.spec.catalog import Family


def named_object_schema(family: Family, allow_bare: bool) -> dict:
    variants: list[dict] = []
    for name in sorted(family.entries):
        entry = family.entries[name]
        args = {"type": ["object", "null"], "properties": {p: {} for p in sorted(entry.params)},
                "additionalProperties": False}
        if entry.required:
            args["required"] = list(entry.required)
            args["type"] = "object"
        variants.append({"type": "object", "properties": {name: args}, "required": [name],
                         "additionalProperties": False})
    if allow_bare:
        bare = [n for n, e in sorted(family.entries.items()) if not e.required]
        variants.append({"enum": bare})
    return {"anyOf": variants}
