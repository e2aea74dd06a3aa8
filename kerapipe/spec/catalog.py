"""The Keras name catalogue: layers, losses, metrics, optimizers, schedules, activations.

It ships as plain JSON (``keras_catalog.json``) generated from the installed Keras by
``scripts/gen_keras_catalog.py``, so the spec side can check names and keyword arguments
without importing Keras. ``tests/test_catalog.py`` keeps it in step with Keras.

Layers come from three origins (``Entry.origin``): ``keras`` (``keras.layers``),
``applications`` (``keras.applications`` models as one layer, named
``applications.<Function>``; their facts are ``Catalog.applications``, read through
``spec/applications.py``) and ``keras_hub`` (``keras_hub.layers``, known here even
when keras-hub is not installed; a name both have means Keras's layer).

Typed arguments: an entry's ``args`` maps each argument whose type is known to a JSON
Schema fragment (``type``, ``enum``, bounds, ``items``, ``anyOf``, ``$ref`` to a shared
type of ``Catalog.arg_defs``); an argument not in ``args`` takes any value. The
docstring summaries (hover text of the JSON Schema) are a second file,
``keras_docs.json``, read by ``load_docs`` only: ``validate`` never loads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

# The JSON files ship beside this module (setup.cfg package_data). Read by path, not
# through importlib.resources: that import costs ~14 ms of every `kerapipe validate`
# (tempfile, shutil, zipfile...), and kerapipe is never installed zipped.
_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Entry:
    """One constructible Keras class: its accepted and required keyword arguments."""

    name: str
    params: frozenset
    required: tuple
    logged_name: str = ""
    origin: str = "keras"  # layers: "keras", "applications" or "keras_hub" (ORIGINS)
    # argument -> JSON Schema fragment, for the arguments whose type is known
    args: dict = field(default_factory=dict, hash=False)


# Where a layer's class comes from: the package that must be importable to build it.
ORIGINS = {"keras": "keras", "applications": "keras", "keras_hub": "keras-hub"}


class Family:
    """The classes of one Keras family (e.g. losses), looked up by class name or alias."""

    def __init__(self, raw: dict) -> None:
        self.entries: dict[str, Entry] = {}
        self.by_alias: dict[str, str] = {}
        for name, info in raw.items():
            entry = Entry(name, frozenset(info["params"]), tuple(info["required"]),
                          info.get("logged_name", ""), info.get("origin", "keras"),
                          info.get("args", {}))
            self.entries[name] = entry
            for alias in info.get("aliases", []):
                self.by_alias[alias] = name

    def get(self, name: str) -> Entry | None:
        key = self.by_alias.get(name, name)
        return self.entries.get(key)

    def names(self) -> list[str]:
        """Every accepted name: aliases first (the usual spelling), then class names.

        Sorted once: a file with thousands of unknown names asks for it every time."""
        if getattr(self, "_names", None) is None:
            self._names = sorted(self.by_alias) + sorted(self.entries)
        return list(self._names)


@dataclass(frozen=True)
class Catalog:
    """The shipped catalogue.

    ``layers`` holds Keras's layers, the backbones and the keras-hub layers;
    ``refused_layers`` the public ones of Keras and keras-hub a file may not use, with
    why; ``applications`` the facts of each backbone by function name (its module,
    smallest image side, preprocessing mode, the defaults of ``weights`` and
    ``include_top``); ``callbacks`` Keras's callbacks a file may use, ``refused_callbacks``
    the others with why, ``callback_defaults`` each offered one's plain-value defaults;
    ``keras_hub_version`` the keras-hub the hub part was read from; ``arg_defs`` the
    shared argument types (``activation``, ``initializer``, ``regularizer``,
    ``constraint``, ``dtype``) that the entries' ``args`` name as ``#/$defs/<name>``.
    """

    keras_version: str
    layers: Family
    refused_layers: dict
    activations: frozenset
    losses: Family
    metrics: Family
    optimizers: Family
    schedules: Family
    applications: dict
    keras_hub_version: str
    callbacks: Family
    refused_callbacks: dict
    callback_defaults: dict
    arg_defs: dict = field(default_factory=dict, hash=False)


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """Load the shipped catalogue (once per process)."""
    text = (_HERE / "keras_catalog.json").read_text("utf-8")
    raw = json.loads(text)
    # Keras's own layer wins a name keras-hub also has (the generator leaves those out).
    layers = {**raw.get("hub_layers", {}), **raw["layers"]}
    refused = {**raw.get("refused_hub_layers", {}), **raw["refused_layers"]}
    return Catalog(
        keras_version=raw["keras_version"],
        layers=Family(layers),
        refused_layers=refused,
        activations=frozenset(raw["activations"]),
        losses=Family(raw["losses"]),
        metrics=Family(raw["metrics"]),
        optimizers=Family(raw["optimizers"]),
        schedules=Family(raw["schedules"]),
        applications=dict(raw.get("applications", {})),
        keras_hub_version=raw.get("keras_hub_version", ""),
        callbacks=Family(raw["callbacks"]),
        refused_callbacks=dict(raw["refused_callbacks"]),
        callback_defaults={name: dict(entry.get("defaults", {}))
                           for name, entry in raw["callbacks"].items()},
        arg_defs=dict(raw.get("arg_defs", {})),
    )


@lru_cache(maxsize=1)
def load_docs() -> dict:
    """The shipped docstring summaries (``keras_docs.json``, once per process):
    ``{family: {ClassName: {"summary": ..., "args": {argument: text}}}, "arg_defs":
    {name: text}, "activations": {name: summary}}``, families named as in the catalogue
    (``layers``, ``hub_layers``, ``losses``, ``metrics``, ``optimizers``, ``schedules``,
    ``callbacks``); ``{}`` when the file is missing. For the JSON Schema only."""
    docs = _HERE / "keras_docs.json"
    if not docs.is_file():
        return {}
    return json.loads(docs.read_text("utf-8"))
