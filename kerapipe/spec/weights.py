"""Class weights (``train.class_weight``) and what sample weights ask of the spec.

``train.class_weight`` is ``balanced`` (computed from the training split on the compile
side, ``kerapipe.compiler.weights``) or a mapping ``{class: weight}`` whose keys are
class names as the data names them (CSV label texts, folder names) or class indices.
This module types the value (``ClassWeightSpec``, every key and weight checked at its
line) and refuses, at the key, class weights for labels that are not one class per
example (``weight_issues``). Which names the data really has is the compile side's to
say. Sample weights are a source option (``data.source.csv.sample_weight``,
``data.source.npz.sample_weight``, in ``spec/sources.py``); the checks across sections
they need are here too. No TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from kerapipe.spec.issues import Issue, Path, did_you_mean, safe_repr

BALANCED = "balanced"
MAX_WEIGHT = 1e30  # far above any real weight, far below float32's 3.4e38 times a loss


@dataclass(frozen=True)
class ClassWeightSpec:
    """`balanced`, or a mapping `{class: weight}` (class names or indices).

    Every mapping key is a string (the loader makes YAML's ``0:`` the key ``"0"``, and
    refuses other keys from a dict): the compile side takes a key as a class name when
    the data has that name, else a whole number as a class index.
    """

    rule: str = BALANCED  # `balanced`, or `given` for a mapping
    weights: dict = field(default_factory=dict)  # key as written -> float
    shorthand = "rule"

    @property
    def balanced(self) -> bool:
        """Whether the weights are computed from the training split."""
        return self.rule == BALANCED

    @classmethod
    def from_yaml(cls, value: Any, path: Path, issues: list[Issue]
                  ) -> Optional["ClassWeightSpec"]:
        if isinstance(value, str):
            if value == BALANCED:
                return cls(BALANCED)
            issues.append(Issue("unknown-value", path, "class_weight is `balanced` (computed "
                                "from the training split) or a mapping {class: weight}, "
                                "e.g. `{cat: 1.0, dog: 4.0}`."
                                f"{did_you_mean(value, [BALANCED])} Received: class_weight="
                                f"{safe_repr(value)}"))
            return None
        if not isinstance(value, dict):
            issues.append(Issue("wrong-type", path, "class_weight is `balanced` or a mapping "
                                "{class: weight}. Received: class_weight="
                                f"{safe_repr(value)}"))
            return None
        before = len(issues)
        weights: dict[str, float] = {}
        if not value:
            issues.append(Issue("out-of-range", path, "class_weight gives no class a weight; "
                                "name at least one class, or remove class_weight."))
        for key, weight in value.items():
            if not isinstance(key, str) or not key.strip():
                issues.append(Issue("wrong-type", path + (key,), "a class_weight key is a "
                                    "class name as the data writes it, or a class index (a "
                                    "whole number from 0); it cannot be empty. Received: key "
                                    f"{safe_repr(key)}", at_key=True))
                continue
            number = _weight(weight, path + (key,), issues)
            if number is not None:
                weights[key] = number
        if len(issues) == before and weights and not any(weights.values()):
            issues.append(Issue("out-of-range", path, "every class weight is 0, so no example "
                                "would count in the loss; give at least one class a weight "
                                "above 0."))
        return cls("given", weights) if len(issues) == before else None

    @staticmethod
    def json_schema() -> dict:
        return {"anyOf": [{"enum": [BALANCED]},
                          {"type": "object", "minProperties": 1,
                           "additionalProperties": {"type": "number", "minimum": 0,
                                                    "maximum": MAX_WEIGHT}}],
                "description": ClassWeightSpec.__doc__.split("\n")[0]}

    def to_yaml(self) -> Any:
        return BALANCED if self.balanced else dict(self.weights)


def _weight(value: Any, path: Path, issues: list[Issue]) -> Optional[float]:
    """A class weight: a finite number from 0 to ``MAX_WEIGHT``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        issues.append(Issue("wrong-type", path, "a class weight is a number (1.0 leaves "
                            f"the class as it is). Received: {safe_repr(value)}"))
        return None
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or not 0 <= number <= MAX_WEIGHT:
        issues.append(Issue("out-of-range", path, "a class weight is a finite number from 0 "
                            f"(the class does not count) to {MAX_WEIGHT:g}. Received: "
                            f"{safe_repr(value)}"))
        return None
    return number


# Why class weights have no meaning for labels of a kind (not one class per example).
_NOT_CLASSES = {
    "regression": "`labels: regression` are numbers to predict, not classes",
    "raw": "`labels: raw` are passed to the loss as they are, with no class per example",
    "multi_label": "`labels: multi_label` are sets of classes: an example has no one class "
                   "to weigh it by",
}


def weight_issues(spec: Any) -> list[Issue]:
    """What class and sample weights ask of the rest of a typed ``PipelineSpec``.

    Class weights need one class per example: they are refused at
    ``train.class_weight`` for ``regression``/``raw``/``multi_label`` labels, a
    regression loss, a data set with a continuous target and a model of several outputs
    (each output has its own labels). Which classes the keys name is the data's to say
    (``compiler.weights``). A sample weight column is no typed feature.
    """
    from kerapipe.spec.known_datasets import regression_without_data
    from kerapipe.spec.label_kinds import is_regression_loss
    from kerapipe.spec.metrics import output_heads

    issues: list[Issue] = []
    _sample_weight_issues(spec, issues)
    weights = spec.train.class_weight
    if weights is None:
        return issues
    path = ("train", "class_weight")
    declared = spec.data.labels.kind if spec.data.labels is not None else None
    heads = output_heads(spec)
    why = None
    if heads:
        why = (f"this model has {len(heads)} outputs, each with its own labels, and Keras's "
               "class weights apply to a model of one output")
    elif declared in _NOT_CLASSES:
        why = _NOT_CLASSES[declared]
    elif declared is None and is_regression_loss(spec.loss):
        why = (f"the loss {spec.loss.name} fits a continuous target, which has no "
               "classes")
    elif regression_without_data(spec.data.source):
        why = "this data set's target is continuous, not classes"
    if why:
        issues.append(Issue("class-weight-labels", path, f"class weights weigh each example "
                            f"by its class, but {why}. Remove train.class_weight"
                            + ("." if heads or declared == "raw" else
                               ", or weigh examples with a sample weight "
                               "(data.source.csv.sample_weight or "
                               "data.source.npz.sample_weight)."), at_key=True))
        return issues
    return issues


def _sample_weight_issues(spec: Any, issues: list[Issue]) -> None:
    """A sample weight column is no typed feature (``data.features``, which only a CSV
    source has; the source's own keys are checked with it, ``spec/sources.py``)."""
    source = spec.data.source
    for option in dataclasses.fields(source):  # the one source set; no branch on its kind
        weight = getattr(getattr(source, option.name), "sample_weight", None)
        if weight is None or spec.data.features is None:
            continue
        if weight in spec.data.features.names():
            issues.append(Issue("not-applicable", ("data", "source", option.name,
                                                   "sample_weight"),
                                f"column '{weight}' weighs each example, so it cannot also "
                                "be a feature of data.features. Remove it from "
                                "data.features, or name another weight column.",
                                at_key=True))
