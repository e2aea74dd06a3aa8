"""JSON Schema of the pipeline format, generated from the spec dataclasses.

Editors (the YAML language server) use it for completion and inline errors; it is the
same declaration the validator runs on, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Iterator

from kerapipe.spec.compose import BASE_SUFFIXES, EXTENDS, EXTENDS_DOC
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
    _teach_keras_names(defs)
    _share_repeated_properties(schema, defs)
    _allow_extends(schema, defs)
    schema["$defs"] = dict(sorted(defs.items()))
    return schema


PARTIAL = "partial."  # `$defs` names of a mapping's schema without its required keys


def _allow_extends(schema: dict, defs: dict) -> None:
    """A file with ``extends:`` is merged over its base, so it may leave out any key: the
    root's properties are the partial schemas (no key required, in every mapping the merge
    reaches: not inside lists, which replace the base's whole), and only a file without
    ``extends`` must also meet the whole ones (``else``). Completion sees the same keys."""
    memo: dict[str, str] = {}
    whole = schema["properties"]
    partial = {key: _partial(value, defs, memo) for key, value in whole.items()}
    suffixes = "|".join(s.lstrip(".") for s in BASE_SUFFIXES)
    schema["properties"] = {EXTENDS: {"type": "string", "pattern": rf"\.({suffixes})$",
                                      "description": EXTENDS_DOC[:1].upper() + EXTENDS_DOC[1:]
                                      + "."}, **partial}
    schema["if"] = {"required": [EXTENDS]}
    schema["else"] = {"required": schema.pop("required"),
                      "properties": {k: v for k, v in whole.items() if partial[k] != v}}


def _partial(node: Any, defs: dict, memo: dict) -> Any:
    """``node`` with no key required in it or in the mappings it holds (a ``$ref`` to a
    mapping that requires some becomes one to its ``partial.`` copy); lists as they are."""
    if isinstance(node, list):
        return [_partial(item, defs, memo) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict = {}
    for key, value in node.items():
        if key == "required":
            continue
        if key == "$ref" and value.startswith("#/$defs/"):
            result[key] = _partial_ref(value, defs, memo)
        elif key in ("properties", "patternProperties"):
            result[key] = {name: _partial(each, defs, memo) for name, each in value.items()}
        elif key in ("additionalProperties", "then", "else", "anyOf", "allOf"):
            result[key] = _partial(value, defs, memo)
        else:  # items (a list is replaced whole), if, not, enum, ...
            result[key] = value
    return result


def _partial_ref(ref: str, defs: dict, memo: dict) -> str:
    name = ref.rsplit("/", 1)[1]
    if name not in memo:
        memo[name] = ref  # a mapping that holds itself: its copy refers to the whole one
        copy = _partial(defs[name], defs, memo)
        if copy != defs[name]:
            defs[PARTIAL + name] = copy
            memo[name] = f"#/$defs/{PARTIAL}{name}"
    return memo[name]


SHARED = "shared."  # `$defs` names of the property schemas written once (below)
MIN_SAVED_CHARACTERS = 200  # what writing one once must save, or it stays inline


def _share_repeated_properties(*parts: dict) -> None:
    """Write each described property schema that the schema repeats verbatim once, under
    ``$defs``, and refer to it: Keras's layers all take `name`, `dtype`, `trainable`, ...,
    and the Random* layers are both layers and preprocessing steps. The same schema, a
    file a quarter smaller for the editors that load it."""
    uses: dict[str, list[dict]] = {}

    def properties_in(node: Any) -> Iterator[dict]:
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict):
                yield node["properties"]
            for value in node.values():
                yield from properties_in(value)
        elif isinstance(node, list):
            for value in node:
                yield from properties_in(value)

    found = [props for part in parts for props in properties_in(part)]
    for props in found:
        for name, value in props.items():
            if isinstance(value, dict) and "description" in value:
                uses.setdefault(json.dumps([name, value], sort_keys=True), []).append(value)
    defs = parts[-1]
    shared: dict[str, str] = {}
    for key, values in uses.items():
        if (len(values) - 1) * len(key) >= MIN_SAVED_CHARACTERS:
            name = json.loads(key)[0]
            def_name = SHARED + name
            number = 1
            while def_name in defs:
                number += 1
                def_name = f"{SHARED}{name}.{number}"
            defs[def_name] = values[0]
            shared[key] = def_name
    for props in found:
        for name, value in props.items():
            key = json.dumps([name, value], sort_keys=True) if isinstance(value, dict) else ""
            if key in shared:
                props[name] = {"$ref": f"#/$defs/{shared[key]}"}


def _teach_keras_names(defs: dict) -> None:
    """Make precise, from the catalogue, what the dataclasses declare as plain strings
    and mappings: the catalogue's shared argument types go under ``$defs``
    (``#/$defs/activation``, as its fragments refer to them); the loss, optimizer and
    metric names become enums (`_name_choices`); a schedule's step counts also take
    ``{epochs: N}``."""
    from kerapipe.spec.keras_objects import MAX_SCHEDULE_EPOCHS, STEP_ARGUMENTS
    from kerapipe.spec.object_schemas import arg_defs_schemas, in_epochs_too

    for def_name, fragment in arg_defs_schemas().items():
        if def_name in defs:  # a spec class of that name: the fragments' $ref would be it
            raise ValueError(f"the catalogue's argument type '{def_name}' has the name of "
                             "a spec class in the JSON Schema's $defs")
        defs[def_name] = fragment
    _name_choices(defs)
    # A learning rate that is neither a number nor a schedule: an editor reports the first
    # alternative that fails, so the schedule comes first and says what both take.
    learning_rate = defs["OptimizerSpec"]["anyOf"][1]["properties"]["learning_rate"]
    learning_rate["anyOf"].reverse()
    defs["ScheduleSpec"]["errorMessage"] = (
        "A learning rate is a number above 0 or one keras.optimizers.schedules class, "
        "e.g. `{ExponentialDecay: {initial_learning_rate: 0.01, decay_steps: 1000, "
        "decay_rate: 0.9}}`.")
    epochs = {"type": "object", "properties": {"epochs": {
        "type": "number", "exclusiveMinimum": 0, "maximum": MAX_SCHEDULE_EPOCHS}},
        "required": ["epochs"], "additionalProperties": False,
        "description": "A count of optimizer steps written in epochs (`{epochs: 10}`)."}
    for arguments in defs["ScheduleSpec"]["properties"].values():
        properties = arguments["properties"]
        for arg in set(STEP_ARGUMENTS) & set(properties):
            fragment = dict(properties[arg])
            described = {"description": fragment.pop("description")} if (
                "description" in fragment) else {}
            properties[arg] = {**in_epochs_too(fragment, epochs), **described}


def _name_choices(defs: dict) -> None:
    """The loss, optimizer and metric names as enums of the catalogue's aliases and class
    names, each described (completion after `loss:`), under ``$defs`` once for the bare
    name and ``name:``; and their mappings' keyword arguments typed per class, any other
    key refused as validate refuses it (an imported loss takes any)."""
    from kerapipe.spec.catalog import load_catalog
    from kerapipe.spec.keras_objects import CUSTOM_NAME
    from kerapipe.spec.object_schemas import (family_words, name_enum_schema,
                                              typed_keywords_schema, unknown_name_message)

    catalog = load_catalog()
    custom_loss = {"type": "string", "pattern": "^" + CUSTOM_NAME.pattern.replace("\\Z", "$")}
    for spec, family, extra in (("LossSpec", catalog.losses, ()),
                                ("OptimizerSpec", catalog.optimizers, ()),
                                ("MetricSpec", catalog.metrics, ("acc",))):
        noun, module, _ = family_words(family)
        names = dict(name_enum_schema(family, *extra),
                     errorMessage=unknown_name_message(noun, module, written="value"))
        if spec == "LossSpec":  # `module.Name`: a loss of `imports:`
            names = {"anyOf": [names, custom_loss]}
        defs[f"{noun}-names"] = names
        ref = {"$ref": f"#/$defs/{noun}-names"}
        shorthand, mapping = defs[spec]["anyOf"]
        default = mapping["properties"]["name"].get("default")
        cases = typed_keywords_schema(family, mapping["properties"], default)
        if spec == "LossSpec":
            cases.append({"if": {"properties": {"name": custom_loss}, "required": ["name"]},
                          "then": {"patternProperties": {"": {}}}})
        mapping = {k: v for k, v in mapping.items() if k != "additionalProperties"}
        mapping.update(allOf=cases, unevaluatedProperties=False)
        mapping["properties"] = dict(mapping["properties"], name=dict(
            ref, **{k: v for k, v in mapping["properties"]["name"].items() if k != "type"}))
        defs[spec]["anyOf"] = [dict(ref, description=shorthand.get("description", "")),
                               mapping]


def iter_keys(cls: type = PipelineSpec, prefix: str = "") -> Iterator[tuple[str, str, Any, str]]:
    """Every documented key: ``(dotted.path, type, default, doc)``, depth first.

    Used by the README key reference and by the test that keeps the README complete.
    List items show as ``key[]``; the keyword arguments a Keras class takes beside
    ``name`` show as ``key.<kwarg>``.
    """
    from kerapipe.spec.model import PreprocessStep
    from kerapipe.spec.steps import STEPS

    if cls is PipelineSpec and not prefix:  # read before typing (spec/compose.py)
        yield EXTENDS, "a string", "", EXTENDS_DOC[:1].upper() + EXTENDS_DOC[1:] + "."
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
