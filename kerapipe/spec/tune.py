"""The `tune:` section: a hyperparameter search over key paths (``kerapipe tune``).

A search space names key paths, exactly the paths ``--set`` takes
(``optimizer.learning_rate``, ``model.layers[1].Dense.units``), each with a list of
choices or a range. ``kerapipe run`` ignores the section; ``kerapipe tune`` runs one
trial per point of the space (``kerapipe/tuning/``, with keras-tuner's oracles).

Validation checks the space against the rest of the file without training: each choice,
and both ends of each range, is applied as a ``--set`` to the file and the result
validated (``tune_issues``), so a key path that names no key, or a value the key
refuses, is an error at its line in ``tune.space`` before any trial runs. The work is
bounded: at most ``MAX_CHECKED_VALUES`` values are checked per file.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import Any, Literal, Optional

from kerapipe.spec.issues import Issue, Path, safe_repr
from kerapipe.spec.overrides import apply_overrides, parse_key_path
from kerapipe.spec.typed import spec_field

MAX_SPACE_KEYS = 16       # key paths searched at once
MAX_CHOICES = 32          # choices of one key path
MAX_CHECKED_VALUES = 64   # choices and range ends validated per file (each one validation)
MAX_TRIALS = 1000
MAX_EXECUTIONS = 10
RANGE_KINDS = ("uniform", "log_uniform", "int")
# Sections a search cannot change: the format version, and the search itself.
UNSEARCHABLE = ("kerapipe", "tune")

_KEY_PATH_PATTERN = (r"^[A-Za-z_][A-Za-z0-9_]*(\[[0-9]+\])*"
                     r"(\.[A-Za-z_][A-Za-z0-9_]*(\[[0-9]+\])*)*$")
_NUMBER_PAIR = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
SPACE_SCHEMA = {
    "type": "object", "minProperties": 1, "maxProperties": MAX_SPACE_KEYS,
    "propertyNames": {"pattern": _KEY_PATH_PATTERN},
    "additionalProperties": {"anyOf": [
        {"type": "array", "minItems": 1, "maxItems": MAX_CHOICES,
         "description": "Choices: any values the key takes, e.g. `[32, 64, 128]`."},
        {"type": "object", "additionalProperties": False, "minProperties": 1,
         "maxProperties": 2,
         "properties": {
             "uniform": dict(_NUMBER_PAIR, description="`[low, high]`: a number drawn "
                             "uniformly."),
             "log_uniform": dict(_NUMBER_PAIR, description="`[low, high]`, both above 0: "
                                 "a number drawn uniformly on a log scale."),
             "int": {"type": "array", "items": {"type": "integer"}, "minItems": 2,
                     "maxItems": 2, "description": "`[low, high]`: an integer, both ends "
                     "included (with `step`)."},
             "step": {"type": "integer", "minimum": 1, "description": "With `int`: the "
                      "distance between values. Defaults to 1."}}}]},
}


@dataclass(frozen=True)
class SearchDimension:
    """One key path's values: ``choices`` (a list of values), or a range ``kind``
    (``uniform``, ``log_uniform``, ``int``) from ``low`` to ``high``, with ``step``."""

    kind: Literal["choices", "uniform", "log_uniform", "int"]
    choices: tuple = ()
    low: Optional[float] = None
    high: Optional[float] = None
    step: int = 1

    def checked_values(self) -> list[tuple[str, Any]]:
        """``(what it is, value)`` of each value validation checks: every choice, or
        both ends of the range."""
        if self.kind == "choices":
            return [(f"choice {index + 1}", value) for index, value in enumerate(self.choices)]
        return [("the low end", self.low), ("the high end", self.high)]

    def to_yaml(self) -> Any:
        if self.kind == "choices":
            return list(self.choices)
        written: dict = {self.kind: [self.low, self.high]}
        if self.kind == "int" and self.step != 1:
            written["step"] = self.step
        return written


def parse_dimension(value: Any, path: Path, issues: list[Issue]) -> Optional[SearchDimension]:
    """A ``SearchDimension`` from its YAML form, or ``None`` (the problem in ``issues``)."""
    shapes = ("a list of choices (`[32, 64, 128]`) or a range: `{uniform: [low, high]}`, "
              "`{log_uniform: [low, high]}`, `{int: [low, high], step: k}`")
    if isinstance(value, list):
        if not value or len(value) > MAX_CHOICES:
            issues.append(Issue("bad-tune-range", path, f"a list of choices has 1 to "
                                f"{MAX_CHOICES} values; it has {len(value)}."))
            return None
        return SearchDimension("choices", tuple(value))
    if not isinstance(value, dict):
        issues.append(Issue("bad-tune-range", path, f"expected {shapes}. Received: "
                            f"{safe_repr(value)}"))
        return None
    kinds = [k for k in RANGE_KINDS if k in value]
    unknown = [k for k in value if k not in RANGE_KINDS and k != "step"]
    if len(kinds) != 1 or unknown:
        found = ", ".join(map(str, kinds + unknown)) or "none"
        issues.append(Issue("bad-tune-range", path, f"a range names one of {', '.join(RANGE_KINDS)}"
                            f" (and `step` with `int`); found {found}. Expected {shapes}."))
        return None
    kind = kinds[0]
    ends, step = value[kind], value.get("step", 1)
    number = int if kind == "int" else (int, float)
    if (not isinstance(ends, list) or len(ends) != 2
            or any(isinstance(e, bool) or not isinstance(e, number) for e in ends)):
        what = "integers" if kind == "int" else "numbers"
        issues.append(Issue("bad-tune-range", path + (kind,), f"`{kind}` takes two {what}, "
                            f"`[low, high]`. Received: {kind}={safe_repr(ends)}"))
        return None
    low, high = ends
    if not all(math.isfinite(e) for e in ends) or low >= high:
        issues.append(Issue("bad-tune-range", path + (kind,), f"`{kind}` needs finite ends "
                            f"with low below high. Received: {kind}={safe_repr(ends)}"))
        return None
    if kind == "log_uniform" and low <= 0:
        issues.append(Issue("bad-tune-range", path + (kind,), "`log_uniform` needs both "
                            f"ends above 0. Received: {kind}={safe_repr(ends)}"))
        return None
    if "step" in value and (kind != "int" or isinstance(step, bool)
                            or not isinstance(step, int) or step < 1):
        issues.append(Issue("bad-tune-range", path + ("step",), "`step` goes with `int` and "
                            f"is an integer of at least 1. Received: step={safe_repr(step)}"))
        return None
    if kind == "int":
        return SearchDimension(kind, low=low, high=high, step=step)
    return SearchDimension(kind, low=float(low), high=float(high))


@dataclass(frozen=True)
class TuneSpec:
    """A hyperparameter search over key paths: `kerapipe tune` (keras-tuner's oracles);
    `kerapipe run` ignores it."""

    space: dict[str, Any] = spec_field(
        doc="Key paths, exactly as `--set` writes them (`optimizer.learning_rate`, "
        "`model.layers[1].Dense.units`), each with a list of choices (`[32, 64, 128]`) or a "
        "range: `{uniform: [low, high]}`, `{log_uniform: [low, high]}`, `{int: [low, high], "
        f"step: k}}`. At most {MAX_SPACE_KEYS} key paths of at most {MAX_CHOICES} choices; "
        "each choice and both ends of each range must validate when set in the file.",
        json_schema=SPACE_SCHEMA)
    objective: str = spec_field(
        "val_loss", "What a trial is scored by: a validation value the run logs (`val_loss`, "
        "`val_accuracy`, `val_<metric>`), its best epoch.")
    direction: Literal["auto", "min", "max"] = spec_field(
        "auto", "Whether a lower or a higher objective is better; `auto`: lower for a loss, "
        "otherwise the way the Keras metric says (as early stopping's `mode: auto`).")
    tuner: Literal["random", "bayesian", "hyperband"] = spec_field(
        "random", "keras-tuner's oracle: `random` (RandomSearch), `bayesian` "
        "(BayesianOptimization), `hyperband` (Hyperband: trials of `train.epochs` at most, "
        "each trained from scratch).")
    max_trials: int = spec_field(10, "Trials to run in all (a resumed search counts the "
                                 "finished ones).", ge=1, le=MAX_TRIALS)
    executions_per_trial: int = spec_field(
        1, "Runs per trial, each with its own seed (`seed`, `seed + 1`, ...); the trial's "
        "objective is their mean.", ge=1, le=MAX_EXECUTIONS)

    @staticmethod
    def check_local(values: dict, path: Path, issues: list[Issue]) -> None:
        space = values.get("space")
        if isinstance(space, dict):
            values["space"] = _parse_space(space, path + ("space",), issues)
        objective = values.get("objective", "val_loss")
        if isinstance(objective, str) and not objective.startswith("val_"):
            issues.append(Issue("unknown-objective", path + ("objective",), "a trial is scored "
                                "on the validation split: name a `val_` value, e.g. "
                                f"`val_{objective}`. Received: objective={safe_repr(objective)}"))


def _parse_space(space: dict, path: Path, issues: list[Issue]) -> dict:
    if not space or len(space) > MAX_SPACE_KEYS:
        issues.append(Issue("bad-tune-range", path, f"a search space names 1 to "
                            f"{MAX_SPACE_KEYS} key paths; it names {len(space)}."))
        return {}
    parsed: dict = {}
    for key, value in space.items():
        parts = parse_key_path(key) if isinstance(key, str) else None
        if parts is None:
            issues.append(Issue("unknown-tune-key", path + (key,), f"{safe_repr(key)} is not a "
                                "key path as `--set` writes it, e.g. `optimizer.learning_rate` or "
                                "`model.layers[1].Dense.units`.", at_key=True))
            continue
        if parts[0] in UNSEARCHABLE:
            issues.append(Issue("unknown-tune-key", path + (key,), f"'{key}' cannot be searched: "
                                f"`{parts[0]}` is not a hyperparameter.", at_key=True))
            continue
        dimension = parse_dimension(value, path + (key,), issues)
        if dimension is not None:
            parsed[key] = dimension
    checked = sum(len(d.checked_values()) for d in parsed.values())
    if checked > MAX_CHECKED_VALUES:
        issues.append(Issue("bad-tune-range", path, f"the space lists {checked} choices and "
                            f"range ends; at most {MAX_CHECKED_VALUES} are validated per file. "
                            "Search fewer choices, or a range instead of a long list."))
    return parsed


def override_text(key: str, value: Any) -> str:
    """The ``--set`` of one value of a key path (JSON is YAML: its text reads back
    exactly)."""
    return f"{key}={json.dumps(value, allow_nan=False)}"


def tune_issues(spec: Any, data: Any, file: str) -> list[Issue]:
    """The issues of a valid spec's ``tune:`` section against the rest of the file:
    the objective is a value the run logs, and every choice and range end, set in the file
    (``data``, the loaded file with its ``--set`` values) as ``--set`` would set it,
    validates. Each issue is at its key in ``tune.space``."""
    tune = getattr(spec, "tune", None)
    if tune is None or not isinstance(data, dict):
        return []
    from kerapipe.spec.checks import monitor_issues

    issues = [Issue("unknown-objective", issue.path, issue.message.replace(
              "is not a metric this run logs", "is not a value this run logs"))
              for issue in monitor_issues(spec, tune.objective, ("tune", "objective"))]
    base = {key: value for key, value in data.items() if key != "tune"}
    for key, dimension in tune.space.items():
        for what, value in dimension.checked_values():
            issue = candidate_issue(base, key, value, what, file)
            if issue is not None:
                issues.append(issue)
                break  # one issue per key path: the first value it refuses
    return issues


def candidate_issue(base: dict, key: str, value: Any, what: str, file: str
                    ) -> Optional[Issue]:
    """Why ``value`` at ``key`` (``what``: "choice 2", "the low end") does not validate in
    the file ``base`` (``tune:`` left out), or ``None``."""
    from kerapipe.spec.document import Document
    from kerapipe.spec.validate import validate_data

    path = ("tune", "space", key)
    try:
        text = override_text(key, value)
    except (TypeError, ValueError):  # .inf, .nan
        return Issue("bad-tune-value", path, f"{what}, {safe_repr(value)}, is no value a "
                     "--set can write (not a finite number).", at_key=True)
    document = Document(data=copy.deepcopy(base), file=file)
    refused = apply_overrides(document, [text])
    if refused:
        return Issue("unknown-tune-key", path, f"'{key}' names no key of the file that "
                     f"--set could change: {refused[0].message}", at_key=True)
    parts = parse_key_path(key) or ()
    errors = [i for i in validate_data(document.data, file).errors]
    if not errors:
        return None
    first = errors[0]
    if first.code in _NO_SUCH_KEY and _within(first.path, parts):
        return Issue("unknown-tune-key", path, f"'{key}' names no key the file has or can "
                     f"have: {first.message}", at_key=True)
    return Issue("bad-tune-value", path, f"{what}, {safe_repr(value)}, does not validate "
                 f"there: error[{first.code}] at {first.key_path}: {first.message}",
                 at_key=True)


_NO_SUCH_KEY = ("unknown-key", "unknown-argument", "bad-indentation")


def _within(issue_path: tuple, parts: tuple) -> bool:
    """Whether an issue's key path lies on the key path a search set (joined keys such as
    ``applications.ResNet50`` compared as the text ``--set`` splits)."""
    flat = tuple(p for part in issue_path
                 for p in (part.split(".") if isinstance(part, str) else (part,)))
    return flat == parts[:len(flat)] or parts == flat[:len(parts)]


__all__ = ["TuneSpec", "SearchDimension", "tune_issues", "override_text", "parse_dimension",
           "MAX_SPACE_KEYS", "MAX_CHOICES", "MAX_CHECKED_VALUES", "MAX_TRIALS"]
