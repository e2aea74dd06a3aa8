"""The JSON Schema of a Keras object named in a pipeline file (``ClassName: {kwargs}``).

``kerapipe schema`` and editors read it; the validator checks the same catalogue entries
(``spec/keras_objects.py``). The schema teaches: every class and argument carries its
Keras docstring summary as ``description`` (hover), argument types come from the
catalogue's ``args`` (completion after ``activation:``), and a class name is one property
of one object, so an editor reports an unknown name at its key and offers the known ones
(an ``anyOf`` over every class named the first variant's missing key instead).
"""

from __future__ import annotations

import re
from typing import Iterable

from kerapipe.spec import catalog
from kerapipe.spec.catalog import Entry, Family

def docs() -> dict:
    """The Keras docstrings (``keras_docs.json``, read here only: validate never does)."""
    return catalog.load_docs()


def class_docs(families: Iterable[str]) -> dict:
    """``{ClassName: {"summary": ..., "args": {...}}}`` of the docs' ``families`` (the
    first family that has a class wins, as the catalogue's own ``layers`` win)."""
    found: dict = {}
    for family in reversed(tuple(families)):
        found.update(docs().get(family, {}))
    return found


def arguments_schema(entry: Entry, doc: dict) -> dict:
    """The schema of one class's keyword arguments: each typed as the catalogue says
    (``Entry.args``; an argument it has no type for takes any value) and described by
    the class's docstring (``doc``: ``{"summary", "args"}``)."""
    from kerapipe.spec.argument_values import CASE_INSENSITIVE

    typed = entry.args
    arg_docs = doc.get("args", {})
    properties = {}
    for name in sorted(entry.params):
        fragment = dict(typed.get(name, {}))
        if {("*", name), (entry.name, name)} & CASE_INSENSITIVE:
            fragment = case_folded(fragment)
        if arg_docs.get(name):
            fragment["description"] = arg_docs[name]
        properties[name] = fragment
    schema: dict = {"type": "object" if entry.required else ["object", "null"],
                    "properties": properties, "additionalProperties": False}
    if entry.required:
        schema["required"] = list(entry.required)
    if doc.get("summary"):
        schema["description"] = doc["summary"]
    return schema


def case_folded(fragment: dict) -> dict:
    """An enum of words that Keras lower-cases before checking (``padding: SAME``): the
    enum (completion offers its words) or the same words in any case."""
    words = [w for w in fragment.get("enum", []) if isinstance(w, str)]
    if not words:
        return fragment
    folded = "|".join("".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c)
                              for c in word) for word in words)
    return {"anyOf": [fragment, {"type": "string", "pattern": f"^(?:{folded})$"}]}


def class_schemas(family: Family, names: Iterable[str] | None = None) -> dict:
    """``{ClassName: its arguments' schema}`` for the classes of ``family`` (or those of
    them in ``names``), sorted, each titled by its Keras path (hover's heading)."""
    _, module, doc_families = family_words(family)
    described = class_docs(doc_families)
    schemas = {}
    for name in sorted(family.entries if names is None else names):
        entry = family.entries[name]
        path = {"keras_hub": "keras_hub.layers", "applications": "keras"}.get(entry.origin, module)
        schemas[name] = {"title": f"{path}.{name}",
                         **arguments_schema(entry, described.get(name, {}))}
    return schemas


def names_pattern(names: Iterable[str], *patterns: str) -> str:
    """A regular expression that matches exactly ``names`` and the full ``patterns``."""
    alternatives = ["^(?:" + "|".join(re.escape(n) for n in names) + ")$"]
    return "|".join(alternatives + [f"(?:{p})" for p in patterns])


def unknown_name_message(noun: str, family_text: str, others: str = "",
                         written: str = "key") -> str:
    """What an editor says at a key (or value: ``written``) that names no known class (a
    static text: a schema cannot compute a did-you-mean; ``kerapipe validate`` does)."""
    return (f"Unknown {noun}: not a {family_text} class name{others}. Complete the "
            f"{written} (Ctrl+Space) to see the known names; `kerapipe validate` names "
            f"the closest.")


def bare_names_schema(family: Family) -> dict:
    """The classes that may be written as a bare name (``- Flatten``): those without a
    required argument, each described."""
    described = class_docs(family_words(family)[2])
    names = [n for n, e in sorted(family.entries.items()) if not e.required]
    return {"enum": names,
            "enumDescriptions": [described.get(n, {}).get("summary", "") for n in names]}


# Each family of the catalogue (``Catalog``'s attribute): the word for one of its classes,
# the Keras module named in messages, and the families of ``keras_docs.json`` that
# describe it (the catalogue's ``layers`` hold keras-hub's layers too).
FAMILIES = {
    "layers": ("layer", "keras.layers", ("layers", "hub_layers")),
    "losses": ("loss", "keras.losses", ("losses",)),
    "metrics": ("metric", "keras.metrics", ("metrics",)),
    "optimizers": ("optimizer", "keras.optimizers", ("optimizers",)),
    "schedules": ("schedule", "keras.optimizers.schedules", ("schedules",)),
    "callbacks": ("callback", "keras.callbacks", ("callbacks",)),
}


def family_words(family: Family) -> tuple[str, str, tuple[str, ...]]:
    """``FAMILIES``' words for a family of the shipped catalogue (found by identity:
    callers pass ``load_catalog().<family>``); generic words for any other."""
    shipped = catalog.load_catalog()
    for key, words in FAMILIES.items():
        if getattr(shipped, key) is family:
            return words
    return "Keras object", "Keras", ()


def named_object_schema(family: Family, allow_bare: bool) -> dict:
    """``{ClassName: {kwargs}}`` with exactly one class of ``family`` (or, with
    ``allow_bare``, the bare name of one that needs no argument)."""
    noun, module, _ = family_words(family)
    classes = class_schemas(family)
    schema: dict = {
        "type": "object", "properties": classes, "minProperties": 1, "maxProperties": 1,
        "propertyNames": {"pattern": names_pattern(classes),
                          "patternErrorMessage": unknown_name_message(noun, module)}}
    if not allow_bare:
        return schema
    # An editor reports the mapping for a string that is no bare name (`- EarlyStoping`);
    # only its type check reads this.
    schema["errorMessage"] = unknown_name_message(
        noun, module, " that needs no argument, written alone", written="name")
    return {"anyOf": [schema, bare_names_schema(family)]}


def name_enum_schema(family: Family, *extra: str) -> dict:
    """A string naming a class of ``family``: ``extra`` names, its aliases (the usual
    spelling, e.g. ``sparse_categorical_crossentropy``) and class names, each described
    by its class's summary."""
    described = class_docs(family_words(family)[2])
    names = list(extra) + family.names()
    summaries = [described.get(getattr(family.get(n), "name", n), {}).get("summary", "")
                 for n in names]
    return {"type": "string", "enum": names, "enumDescriptions": summaries}


def arg_defs_schemas() -> dict:
    """The catalogue's shared argument types (``Catalog.arg_defs``) as the schema's
    ``$defs`` entries, each described; the activation names each carry their summary."""
    described = docs()
    activations = described.get("activations", {})
    found = {}
    for name, fragment in sorted(catalog.load_catalog().arg_defs.items()):
        fragment = _with_enum_descriptions(fragment, activations if name == "activation"
                                           else {}, name)
        if described.get("arg_defs", {}).get(name):
            fragment["description"] = described["arg_defs"][name]
        found[name] = fragment
    return found


def _with_enum_descriptions(fragment: dict, summaries: dict, noun: str) -> dict:
    """``fragment`` with, beside each of its enums (nested ones included), the values'
    ``enumDescriptions`` (completion and hover text in editors) when ``summaries`` has
    them, and an ``errorMessage`` in place of the editor's list of every value."""
    fragment = dict(fragment)
    if "enum" in fragment:
        if summaries:
            fragment["enumDescriptions"] = [summaries.get(v, "") for v in fragment["enum"]]
        fragment["errorMessage"] = (f"Unknown {noun}: not a name Keras knows. Complete "
                                    f"the value (Ctrl+Space) to see them; `kerapipe "
                                    f"validate` names the closest.")
    if "anyOf" in fragment:
        fragment["anyOf"] = [_with_enum_descriptions(f, summaries, noun)
                             for f in fragment["anyOf"]]
    return fragment


def typed_keywords_schema(family: Family, declared: Iterable[str],
                          default: str | None = None) -> list[dict]:
    """For an object that names its class by ``name`` (``{name: adam, beta_1: 0.9}``):
    one ``if``/``then`` per class that lists, types and describes its keyword arguments
    once ``name`` is one of the class's spellings (or is left out, for the ``default``
    class), so that ``unevaluatedProperties: false`` beside them refuses any other key as
    the validator does (the ``declared`` keys keep their own schemas)."""
    declared = set(declared)
    described = class_docs(family_words(family)[2])
    aliases: dict[str, list[str]] = {}
    for alias, name in family.by_alias.items():
        aliases.setdefault(name, []).append(alias)
    cases = []
    for name in sorted(family.entries):
        entry = family.entries[name]
        arguments = arguments_schema(entry, described.get(name, {}))["properties"]
        arguments = {k: v for k, v in arguments.items() if k not in declared}
        spellings = [name] + sorted(aliases.get(name, []))
        named = {"properties": {"name": {"enum": spellings}}, "required": ["name"]}
        if default in spellings:
            named = {"anyOf": [named, {"not": {"required": ["name"]}}]}
        cases.append({"if": named, "then": {"properties": arguments}})
    return cases


def in_epochs_too(fragment: dict, epochs: dict) -> dict:
    """A step count's fragment that also takes ``{epochs: N}`` (``epochs``), item by item
    for a list of counts."""
    if fragment.get("type") == "array" and "items" in fragment:
        return dict(fragment, items={"anyOf": [fragment["items"], epochs]})
    return {"anyOf": [fragment, epochs]} if fragment else {}
