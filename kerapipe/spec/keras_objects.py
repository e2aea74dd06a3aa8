"""Keras objects named in a pipeline file: ``ClassName: {keyword: value}``.

A layer (``LayerSpec``) or a learning-rate schedule (``ScheduleSpec``) is written with
Keras's own class name and keyword arguments, checked here against the shipped name
catalogue (``spec/catalog.py``) without importing Keras. ``module.Name`` names a class
of the pipeline's ``imports:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable

from kerapipe.spec.argument_values import argument_issue, untyped_argument_issue
from kerapipe.spec.catalog import Entry, Family, load_catalog
from kerapipe.spec.issues import Issue, Path, did_you_mean, safe_repr
from kerapipe.spec.object_schemas import named_object_schema
from kerapipe.spec.typed import to_plain

# Keyword arguments whose value is itself a layer (Bidirectional, TimeDistributed).
NESTED_LAYER_ARGS = ("layer", "backward_layer")

# `module.Name`: a layer or loss from a module in the pipeline's `imports:` list.
CUSTOM_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+\Z")


# Dotted names that are Keras's own, not modules of `imports:`: `applications.ResNet50`
# is a keras.applications model used as a layer (catalogued with the layers).
KERAS_PREFIXES = ("applications.",)


def is_custom_name(name: Any) -> bool:
    """Whether ``name`` refers to an imported object (``module.Name``), not a Keras one."""
    return (isinstance(name, str) and bool(CUSTOM_NAME.match(name))
            and not name.startswith(KERAS_PREFIXES))


def _check_named_object(family: Family, kind: str, name: str, kwargs: Any, path: Path,
                        issues: list[Issue]) -> dict:
    """Check a ``{KerasName: {kwargs}}`` entry against the catalogue; return kwargs."""
    catalog = load_catalog()
    if kind == "layer" and is_custom_name(name):
        # An imported class: its arguments are known only once its module runs, which
        # validation never does (checks.check_imports ties the prefix to `imports:`).
        if kwargs is None or isinstance(kwargs, dict):
            return dict(kwargs or {})
        issues.append(Issue("wrong-type", path + (name,), f"the arguments of layer '{name}' "
                            f"must be a mapping of keyword arguments. Received: {safe_repr(kwargs)}"))
        return {}
    entry = family.get(name)
    if entry is None:
        refused = catalog.refused_layers.get(name) if family is catalog.layers else None
        if refused:
            issues.append(Issue("refused-layer", path + (name,), f"layer '{name}' is not allowed "
                                f"in a pipeline file: {refused}.", at_key=True))
        else:
            issues.append(Issue(f"unknown-{kind}", path + (name,), f"unknown {kind} '{name}'."
                                f"{did_you_mean(name, family.names())} Names are Keras's own "
                                f"class names; `kerapipe schema` lists them all.", at_key=True))
        return {}
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        issues.append(Issue("wrong-type", path + (name,), f"the arguments of {kind} '{name}' must "
                            f"be a mapping of Keras keyword arguments. Received: {safe_repr(kwargs)}"))
        return {}
    checked: dict = {}
    for arg, value in kwargs.items():
        arg_path = path + (name, arg)
        if arg not in entry.params:
            issues.append(Issue("unknown-argument", arg_path, f"unknown argument '{arg}' of "
                                f"{entry.name}.{suggest_or_list(arg, entry.params)}",
                                at_key=True))
            continue
        if kind == "layer" and arg in NESTED_LAYER_ARGS and isinstance(value, (dict, str)):
            value = LayerSpec.from_yaml(value, arg_path, issues)
        else:
            problem = _value_issue(entry, kind, arg, value, arg_path)
            if problem is not None:
                issues.append(problem)
        checked[arg] = value
    for arg in entry.required:
        if arg not in kwargs:
            issues.append(Issue("missing-argument", path + (name,), f"{entry.name} needs the "
                                f"argument '{arg}'. Add `{arg}: ...` under {name}.", at_key=True))
    return checked


def _value_issue(entry: Entry, kind: str, arg: str, value: Any, path: Path) -> Issue | None:
    """The issue with one argument's value by its type in the catalogue (or, where the
    catalogue leaves it untyped, by its name: ``untyped_argument_issue``)."""
    if kind == "schedule":
        value = _epochs_as_steps(arg, value)
        if value is _SKIP:
            return None
    defs = load_catalog().arg_defs
    if arg in entry.args:
        return argument_issue(entry.name, arg, value, entry.args[arg], defs, path)
    return untyped_argument_issue(entry.name, arg, value, defs, path, numeric=kind == "layer")


def _in_epochs(value: Any) -> bool:
    return isinstance(value, dict) and "epochs" in value


def _epochs_as_steps(arg: str, value: Any) -> Any:
    """A schedule's step count may be written in epochs, `{epochs: 10}` (checked by
    ``_check_epoch_counts``): for its Keras type it stands for a step count, 1. On another
    argument it is that check's to refuse (``_SKIP``)."""
    items = value if isinstance(value, list) else [value]
    if not any(_in_epochs(item) for item in items):
        return value
    if arg not in STEP_ARGUMENTS:
        return _SKIP
    if isinstance(value, list):
        return [1 if _in_epochs(item) else item for item in value]
    return 1


_SKIP = object()


def suggest_or_list(name: str, accepted: Iterable[str]) -> str:
    hint = did_you_mean(name, accepted)
    return hint or f" Accepted: {', '.join(sorted(accepted))}."


def _single_key(value: Any, kind: str, path: Path, issues: list[Issue]) -> tuple[str, Any] | None:
    if isinstance(value, str):
        return value, {}  # `- Flatten` is short for `- Flatten: {}`
    if isinstance(value, dict) and len(value) == 1:
        (name, kwargs), = value.items()
        return name, kwargs
    issues.append(Issue("wrong-type", path, f"a {kind} is written as `{kind.capitalize()}Name: "
                        f"{{argument: value}}` (one key: the Keras name). Received: {safe_repr(value)}"))
    return None


@dataclass(frozen=True)
class _NamedKerasObject:
    """`ClassName: {keyword: value}`, naming a Keras object of one catalogue family."""

    name: str
    kwargs: dict
    family: ClassVar[str]  # the catalogue's attribute: "layers", "schedules"
    noun: ClassVar[str]  # what messages call one: "layer", "schedule"

    def __init_subclass__(cls, family: str = "", noun: str = "", **rest: Any) -> None:
        super().__init_subclass__(**rest)
        cls.family, cls.noun = family, noun

    @classmethod
    def checked(cls, name: str, kwargs: Any, path: Path, issues: list[Issue]) -> Any:
        """The object, its name and arguments checked against the catalogue; ``None``
        (and the issues recorded) when they do not check out."""
        before = len(issues)
        kwargs = _check_named_object(getattr(load_catalog(), cls.family), cls.noun, name,
                                     kwargs, path, issues)
        return cls(name, kwargs) if len(issues) == before else None

    def to_yaml(self) -> Any:
        return {self.name: to_plain(self.kwargs)}


@dataclass(frozen=True)
class LayerSpec(_NamedKerasObject, family="layers", noun="layer"):
    """A Keras layer: `ClassName: {keyword: value}` exactly as in Keras."""

    @classmethod
    def from_yaml(cls, value: Any, path: Path, issues: list[Issue]) -> "LayerSpec | None":
        parsed = _single_key(value, "layer", path, issues)
        return None if parsed is None else cls.checked(parsed[0], parsed[1], path, issues)

    @staticmethod
    def json_schema() -> dict:
        schema = named_object_schema(load_catalog().layers, allow_bare=True)
        custom = "^" + CUSTOM_NAME.pattern.replace("\\Z", "$")
        schema["anyOf"] += [  # `module.Name` from `imports:`: arguments known at run time
            {"type": "object", "patternProperties": {custom: {"type": ["object", "null"]}},
             "minProperties": 1, "maxProperties": 1, "additionalProperties": False},
            {"type": "string", "pattern": custom}]
        schema["description"] = ("A Keras layer: `ClassName: {keyword: value}`, or an "
                                 "imported `module.Name: {keyword: value}`.")
        return schema


# The schedule arguments that count optimizer steps (one a batch); each may be written in
# epochs instead, `decay_steps: {epochs: 10}`, converted once the steps per epoch are known
# (``ScheduleSpec.in_steps``). `boundaries` (PiecewiseConstantDecay) is a list of them.
STEP_ARGUMENTS = ("decay_steps", "first_decay_steps", "warmup_steps", "boundaries")
MAX_SCHEDULE_EPOCHS = 1_000_000


def _epochs_value(value: Any) -> bool:
    return isinstance(value, dict) and list(value) == ["epochs"]


def _check_epoch_counts(kwargs: dict, path: Path, issues: list[Issue]) -> None:
    """``{epochs: N}`` stands only for a step count (``STEP_ARGUMENTS``), N a number > 0."""
    for key, value in kwargs.items():
        values = value if isinstance(value, list) and key == "boundaries" else [value]
        for position, item in enumerate(values):
            if not isinstance(item, dict) or "epochs" not in item:
                continue
            at = path + ((key, position) if isinstance(value, list) else (key,))
            if key not in STEP_ARGUMENTS:
                issues.append(Issue("not-applicable", at, f"`{{epochs: N}}` stands for a count "
                                    f"of optimizer steps ({', '.join(STEP_ARGUMENTS)}); "
                                    f"{key} is not one. Received: {key}={safe_repr(value)}"))
                continue
            count = item.get("epochs")
            if not _epochs_value(item) or isinstance(count, bool) or not isinstance(
                    count, (int, float)) or not 0 < count <= MAX_SCHEDULE_EPOCHS:
                issues.append(Issue("wrong-type", at, f"a step count in epochs is "
                                    f"`{{epochs: N}}`, N a number above 0 (at most "
                                    f"{MAX_SCHEDULE_EPOCHS:,}), e.g. `{key}: {{epochs: 10}}`. "
                                    f"Received: {safe_repr(item)}"))


@dataclass(frozen=True)
class ScheduleSpec(_NamedKerasObject, family="schedules", noun="schedule"):
    """A learning-rate schedule from keras.optimizers.schedules: `ExponentialDecay: {...}`;
    its step counts may be written in epochs (`decay_steps: {epochs: 10}`)."""

    @classmethod
    def from_yaml(cls, value: Any, path: Path, issues: list[Issue]) -> "ScheduleSpec | None":
        if not isinstance(value, dict) or len(value) != 1:
            issues.append(Issue("wrong-type", path, "expected a number greater than 0 or a "
                                "schedule such as `{ExponentialDecay: {initial_learning_rate: "
                                f"0.001, decay_steps: 1000, decay_rate: 0.9}}`. Received: {safe_repr(value)}"))
            return None
        (name, kwargs), = value.items()
        schedule = cls.checked(name, kwargs, path, issues)
        if schedule is not None:
            before = len(issues)
            _check_epoch_counts(schedule.kwargs, path + (name,), issues)
            if len(issues) > before:
                return None
        return schedule

    def in_steps(self, steps_per_epoch: int) -> dict:
        """The Keras arguments, each count written in epochs turned into optimizer steps
        (``round(epochs * steps_per_epoch)``, at least 1)."""
        def steps(value: Any) -> Any:
            if _epochs_value(value):
                return max(1, round(float(value["epochs"]) * steps_per_epoch))
            return value

        kwargs = dict(self.kwargs)
        for key in STEP_ARGUMENTS:
            if key in kwargs:
                value = kwargs[key]
                kwargs[key] = [steps(v) for v in value] if isinstance(value, list) else steps(value)
        return kwargs


    @staticmethod
    def json_schema() -> dict:
        return named_object_schema(load_catalog().schedules, allow_bare=False)
