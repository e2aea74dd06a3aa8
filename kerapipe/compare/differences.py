"""The spec keys in which runs differ: one column per key path, at the shallowest place
where the runs' specs really differ.

The specs are compared as trees, the first run's (the reference) against each other's.
Where every run has a mapping (or every run a list) at a key path, and the mappings share
a key, the runs differ by the keys below it: ``train.early_stopping.patience`` is a column
when two runs stop early with other patience. Everywhere else a difference is one column
at that key path, its values whole: ``output.mlflow`` is ``null`` in one run and
``{tracking_uri: null, experiment: x}`` in another, ``model.layers[3]`` is blank (the key
path is not in that run's spec) in a run of three layers and ``{Dense: {units: 2}}`` in one
of four, ``model.layers[2]`` is ``{Dense: {units: 3}}`` in one run and
``{Dropout: {rate: 0.5}}`` in another (one-key mappings with no key in common: a layer
of another kind). So a mapping only one run has never spreads into a column per key of
it, blank in every other run.

Each run's spec is kept only where it differs from the reference (``_delta``), so memory
grows with the differences, not with the runs' sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence, Union

from kerapipe.compare.escape import printable
from kerapipe.compare.run_reader import read_run
from kerapipe.compare.values import MISSING, text_of
from kerapipe.errors import UsageError

MAX_DIFFERING_KEYS = 1000  # key paths in which the runs' specs differ

_SAME = object()  # a delta: nothing differs from the reference here


@dataclass
class Comparison:
    """The table: runs in the order given, the union of their test metrics' names, the key
    paths in which their specs differ and each run's values there (a key path absent
    from a run's values is one its spec lacks; a value is a mapping or a list where the
    runs' specs differ in shape there), and warnings about folders read."""

    runs: list
    metrics: list
    differing_keys: list
    values: list
    warnings: list = field(default_factory=list)

    @property
    def metric_columns(self) -> list[str]:
        """The test metrics' column names: ``test_<name>``."""
        return [f"test_{name}" for name in self.metrics]


@dataclass(frozen=True)
class _Replaced:
    """A delta: the run's own value here (``MISSING`` where its spec lacks the key path),
    not a mapping or a list like the reference's, or another leaf."""

    value: Any


# A delta is _SAME, a _Replaced, or a dict of the parts (keys, list indices) below a
# mapping or list that the run and the reference both have, to their deltas (never _SAME).
_Delta = Union[object, _Replaced, dict]


def compare_runs(folders: Sequence[str]) -> Comparison:
    """Read every folder and find the key paths in which their specs differ.

    Raises:
        UsageError: a folder is not a run folder or is damaged (``read_run``), or the specs
            differ at more than ``MAX_DIFFERING_KEYS`` key paths.
    """
    from kerapipe.spec.overrides import format_key_path

    runs, deltas, warnings = [], [], []
    reference: Any = MISSING
    replaced: set[tuple] = set()  # the key paths of every run's _Replaced deltas
    for folder in folders:
        summary, spec, found = read_run(folder)
        runs.append(summary)
        warnings += found
        if spec is None:
            deltas.append(None)
            continue
        if reference is MISSING:
            reference = spec
            deltas.append(_SAME)
            continue
        delta = _delta(reference, spec)
        # Each column has a _Replaced at or below it, and no column is below another, so
        # the table never has more columns than there are such key paths.
        replaced.update(_replaced_paths(delta))
        if len(replaced) > MAX_DIFFERING_KEYS:
            raise UsageError(f"these runs' specs differ at more than {MAX_DIFFERING_KEYS:,} "
                             "key paths (at "
                             f"{printable(summary.folder, 200)}), too many for one table. "
                             "Compare fewer runs, or runs of one pipeline.")
        deltas.append(delta)
    columns: list[tuple[tuple, list]] = []
    if reference is not MISSING:
        _find_columns(reference, [d for d in deltas if d is not None], (), columns)
    keys = [format_key_path(path) for path, _ in columns]
    spec_values = iter(zip(*(run_values for _, run_values in columns)))
    values = []
    for delta in deltas:
        row: dict = {}
        if delta is not None and columns:
            row = {key: value for key, value in zip(keys, next(spec_values))
                   if value is not MISSING}
        values.append(row)
    metrics = list(dict.fromkeys(name for run in runs for name in run.test))
    return Comparison(runs, metrics, keys, values, warnings)


# --- one run against the reference -----------------------------------------------------

def _kind(value: Any) -> str:
    """``mapping`` and ``list`` for non-empty ones; an empty one, a scalar and ``MISSING``
    are leaves (an empty mapping is a value of its own, ``{}``)."""
    if isinstance(value, dict) and value:
        return "mapping"
    if isinstance(value, list) and value:
        return "list"
    return "leaf"


def _delta(reference: Any, value: Any) -> _Delta:
    """Where ``value`` differs from ``reference``: ``_SAME``, ``_Replaced(value)``, or the
    deltas of the parts below when both are mappings (both lists)."""
    kind = _kind(reference)
    if kind != _kind(value):
        return _Replaced(value)
    if kind == "leaf":
        if (reference is MISSING) == (value is MISSING) and (
                reference is MISSING or _same(reference, value)):
            return _SAME
        return _Replaced(value)
    if kind == "mapping":
        parts = list(dict.fromkeys([*value, *reference]))
        below = {part: _delta(reference.get(part, MISSING), value.get(part, MISSING))
                 for part in parts}
    else:
        below = {index: _delta(_item(reference, index), _item(value, index))
                 for index in range(max(len(reference), len(value)))}
    changed = {part: delta for part, delta in below.items() if delta is not _SAME}
    return changed or _SAME


def _item(items: list, index: int) -> Any:
    return items[index] if index < len(items) else MISSING


def _replaced_paths(delta: _Delta, path: tuple = ()) -> list[tuple]:
    if isinstance(delta, dict):
        return [found for part, below in delta.items()
                for found in _replaced_paths(below, path + (part,))]
    return [path] if isinstance(delta, _Replaced) else []


def _patched(reference: Any, delta: _Delta) -> Any:
    """The run's value: ``reference`` with ``delta`` applied (``MISSING`` when it has none)."""
    if delta is _SAME:
        return reference
    if isinstance(delta, _Replaced):
        return delta.value
    if isinstance(reference, dict):
        patched = {key: _patched(reference.get(key, MISSING), delta.get(key, _SAME))
                   for key in dict.fromkeys([*reference, *delta])}
        return {key: value for key, value in patched.items() if value is not MISSING}
    items = (_patched(_item(reference, index), delta.get(index, _SAME))
             for index in range(max(len(reference), max(delta) + 1)))
    return [value for value in items if value is not MISSING]


# --- every run together -----------------------------------------------------------------

def _find_columns(reference: Any, deltas: list, path: tuple,
                  columns: list[tuple[tuple, list]]) -> None:
    """Append the columns at or below ``path`` to ``columns``: (key path, each run's value).

    ``deltas`` are the runs' (the reference's own ``_SAME`` among them) at ``path``; a
    ``_Replaced`` delta is a value unlike the reference's, any other has its kind."""
    if all(delta is _SAME for delta in deltas):
        return
    kinds = {_kind(delta.value) if isinstance(delta, _Replaced) else _kind(reference)
             for delta in deltas}
    parts: list = []
    if kinds == {"mapping"}:
        # No _Replaced here: the reference's own delta is _SAME, so every run has its kind.
        keys = [_mapping_keys(reference, delta) for delta in deltas]
        if set.intersection(*(set(k) for k in keys)):
            parts = list(dict.fromkeys(key for run_keys in [list(reference), *keys]
                                       for key in run_keys))
    elif kinds == {"list"}:
        parts = list(range(max([len(reference), *(max(delta) + 1 for delta in deltas
                                                  if isinstance(delta, dict))])))
    if not parts:
        columns.append((path, [_patched(reference, delta) for delta in deltas]))
        return
    for part in parts:
        below = reference.get(part, MISSING) if isinstance(reference, dict) else _item(
            reference, part)
        _find_columns(below, [delta.get(part, _SAME) if isinstance(delta, dict) else _SAME
                              for delta in deltas], path + (part,), columns)


def _mapping_keys(reference: dict, delta: _Delta) -> list:
    """The keys of a run's mapping, from the reference's and the run's delta there."""
    if not isinstance(delta, dict):
        return list(reference)
    removed = {key for key, below in delta.items()
               if isinstance(below, _Replaced) and below.value is MISSING}
    return [key for key in dict.fromkeys([*reference, *delta]) if key not in removed]


# --- equal values -----------------------------------------------------------------------

def _same(a: Any, b: Any) -> bool:
    return _canonical(a) == _canonical(b)


def _canonical(value: Any) -> tuple:
    """Values equal as the spec means them: ``1`` and ``1.0`` are one number, ``true`` is
    not ``1``, and ``nan`` is itself."""
    if isinstance(value, bool) or value is None:
        return ("constant", value)
    if isinstance(value, float):
        if math.isnan(value):
            return ("number", "nan")
        return ("number", int(value) if value.is_integer() else value)
    if isinstance(value, int):
        return ("number", value)
    if isinstance(value, (str, dict, list)):  # a leaf dict or list is an empty one
        return (type(value).__name__, value if isinstance(value, str) else len(value))
    return ("other", printable(text_of(value)))
