"""The search space as keras-tuner holds it, a trial's values back as ``--set`` overrides,
and which way the objective is better (``tune.direction: auto``)."""

from __future__ import annotations

import json
from typing import Any, Sequence

from kerapipe.errors import UsageError
from kerapipe.spec.tune import SearchDimension, TuneSpec, override_text

_ENCODED = "json:"  # a choice keras-tuner cannot hold (a list, a mapping, null, mixed types)


def search_space(keras_tuner, tune: TuneSpec):
    """keras-tuner ``HyperParameters`` of the space, named by their key paths."""
    hp = keras_tuner.HyperParameters()
    for key, dim in tune.space.items():
        if dim.kind == "choices":
            hp.Choice(key, list(_choice_values(dim)))
        elif dim.kind == "int":
            hp.Int(key, int(dim.low), int(dim.high), step=dim.step)
        else:
            hp.Float(key, dim.low, dim.high,
                     sampling="log" if dim.kind == "log_uniform" else "linear")
    return hp


def _choice_values(dim: SearchDimension) -> tuple:
    """The choices as keras-tuner holds them: as they are when all are numbers, all
    strings or all booleans; otherwise each as its JSON text."""
    kinds = {type(v) for v in dim.choices}
    if kinds <= {int, float} and bool not in kinds or kinds in ({str}, {bool}):
        return dim.choices
    return tuple(_ENCODED + json.dumps(v, sort_keys=True) for v in dim.choices)


def decode_value(value: Any) -> Any:
    """A trial's value as the file writes it (the inverse of ``_choice_values``)."""
    if isinstance(value, str) and value.startswith(_ENCODED):
        return json.loads(value[len(_ENCODED):])
    return value


def trial_values(trial, keys: Sequence[str]) -> dict:
    """The trial's value of each key path (keras-tuner's own ``tuner/...`` left out)."""
    values = trial.hyperparameters.values
    return {key: decode_value(values[key]) for key in keys if key in values}


def trial_overrides(values: dict) -> list[str]:
    return [override_text(key, value) for key, value in values.items()]


def objective_direction(spec, objective: str) -> str:
    """``min`` or ``max`` for ``objective`` with ``tune.direction: auto``: kerapipe's rule
    for early stopping's ``mode: auto`` (a loss goes down; a metric the way its Keras
    class says, ``_direction``)."""
    from kerapipe.pipeline import _early_stopping_mode
    from kerapipe.spec.metrics import logged_metric_name, metric_class

    mode = _early_stopping_mode(spec, objective, "auto")  # a model of several outputs
    if mode != "auto":
        return mode
    name = objective.removeprefix("val_")
    if name == "loss":
        return "min"
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import keras

    for metric in spec.metrics:
        if logged_metric_name(metric) == name:
            try:
                direction = getattr(getattr(keras.metrics, metric_class(metric))(**{
                    k: v for k, v in metric.kwargs.items() if k == "num_classes"}),
                    "_direction", None)
            except Exception:  # a metric that needs arguments
                direction = None
            if direction in ("up", "down"):
                return "max" if direction == "up" else "min"
    raise UsageError(f"cannot tell whether a lower or a higher {objective} is better. Set "
                     "tune.direction: min or max.")
