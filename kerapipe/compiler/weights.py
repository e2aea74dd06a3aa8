"""Example weights: class weights resolved on the data, sample weights checked, and the
weight each training example carries into ``fit``.

- ``train.class_weight: balanced`` is ``n_samples / (n_classes * bincount(y_train))`` over
  the classes the training split holds: exactly scikit-learn's
  ``compute_class_weight("balanced", classes=np.unique(y), y=y)``. A class with no
  training example weighs nothing in training (no example has it); it is recorded with
  1.0, the weight of a class a mapping does not list (as in Keras).
- ``{class: weight}``: each key a class name of the data, else a whole number as a class
  index; a key that names no class is a ``DataError`` listing the classes.
- Sample weights (a CSV column, an npz array): finite numbers from 0, one per example.

Both weight the training loss only (validation and test stay unweighted, as with
Keras's ``fit(class_weight=)``), and combine by multiplication. Keras's own
``class_weight`` maps a dataset to ``(x, y, weight)`` the same way, but refuses it beside
sample weights, so kerapipe maps the training dataset itself (``with_sample_weights``
zips the sample weights, ``times_class_weights`` multiplies in the class weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from kerapipe.compiler.values import show
from kerapipe.errors import DataError
from kerapipe.spec.issues import did_you_mean
from kerapipe.spec.weights import MAX_WEIGHT, ClassWeightSpec


@dataclass(frozen=True)
class ClassWeights:
    """The class weights of a run, resolved on its training split.

    Attributes:
        rule: ``balanced`` or ``given`` (a mapping in the file).
        by_index: one weight per class index (float64).
        class_names: the classes' names, in index order.
    """

    rule: str
    by_index: np.ndarray
    class_names: list[str]

    def by_name(self) -> dict[str, float]:
        """Each class's weight by its name."""
        return {name: float(w) for name, w in zip(self.class_names, self.by_index)}

    def record(self) -> dict:
        """What ``run.json`` says of them (``data.class_weight``)."""
        return {"rule": self.rule, "by_class": self.by_name(),
                "by_index": [float(w) for w in self.by_index]}

    def describe(self) -> str:
        """One line for ``plan``."""
        how = "balanced over the training split" if self.rule == "balanced" else "given"
        shown = ", ".join(f"{name} {w:.4g}" for name, w in list(self.by_name().items())[:20])
        more = f", ... ({len(self.class_names)} classes)" if len(self.class_names) > 20 else ""
        return f"class weights ({how}; training loss only): {shown}{more}"


def balanced_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
    """``n_samples / (n_classes * bincount(y))`` per class index, ``n_classes`` counting
    the classes present (scikit-learn's ``balanced``); 1.0 for a class with no example."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=num_classes)
    present = counts > 0
    weights = np.ones(num_classes, dtype=np.float64)
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights


def resolve_class_weights(spec: Optional[ClassWeightSpec], y_train: np.ndarray,
                          class_names: Optional[Sequence[str]], num_classes: Optional[int],
                          where: str) -> Optional[ClassWeights]:
    """The class weights of ``train.class_weight`` on the training labels (int64 class
    indices), or ``None`` when the file sets none.

    Raises:
        DataError: the labels are no classes, or a key names no class of the data (or
            names one class twice).
    """
    if spec is None:
        return None
    if num_classes is None or y_train.ndim != 1 or y_train.dtype.kind not in "iu":
        raise DataError(f"{where}: train.class_weight weighs examples by class, but these "
                        "labels are not one class index per example. Remove "
                        "train.class_weight, or use a sample weight.")
    names = list(class_names) if class_names is not None else [str(i) for i in
                                                                range(num_classes)]
    if spec.balanced:
        return ClassWeights("balanced", balanced_weights(y_train, num_classes), names)
    weights = np.ones(num_classes, dtype=np.float64)
    position = {name: i for i, name in enumerate(names)}
    given: dict[int, Any] = {}
    for key, weight in spec.weights.items():
        index = _class_index(key, position, num_classes, names, where)
        if index in given:
            raise DataError(f"{where}: train.class_weight names class '{names[index]}' twice "
                            f"(keys {show(given[index])} and {show(key)}). Give each class "
                            "one weight.")
        given[index] = key
        weights[index] = weight
    return ClassWeights("given", weights, names)


def _class_index(key: Any, position: dict[str, int], num_classes: int, names: list[str],
                 where: str) -> int:
    """The class a ``class_weight`` key (a string) names: a class name, else a whole
    number as an index."""
    if key in position:
        return position[key]
    index = int(key) if key.strip().isascii() and key.strip().isdigit() else None
    if index is not None and 0 <= index < num_classes:
        return index
    listing = ", ".join(names[:30]) + (f", ... ({len(names)} classes)" if len(names) > 30
                                       else "")
    what = (f"class index {index}, but the labels have {num_classes} classes "
            f"(0..{num_classes - 1})." if index is not None else
            f"the class {show(key)}, which the labels do not have."
            f"{did_you_mean(str(key), names if len(names) <= 10_000 else ())}")
    raise DataError(f"{where}: train.class_weight names {what} The classes: {listing}. "
                    "Name a class as the data writes it, or by its index.")


def check_sample_weights(weights: Any, where: str, name: str,
                         lines: Optional[np.ndarray] = None) -> np.ndarray:
    """Sample weights as float32, one per example: finite numbers from 0 (``MAX_WEIGHT``
    at most), not all 0.

    Args:
        weights: the values (an array of shape ``(n,)`` or ``(n, 1)``).
        where: the file, for messages.
        name: the array or column, for messages.
        lines: a CSV's line of each example (messages name the line and column).

    Raises:
        DataError: naming the first bad weight (its line and column, or its index).
    """
    values = np.asarray(weights)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or values.dtype.kind not in "biuf":
        raise DataError(f"{where}: sample weights '{name}' must be one number per example "
                        f"(shape (examples,)); they hold {values.dtype} values of shape "
                        f"{tuple(values.shape)}.")
    numbers = values.astype(np.float64)
    bad = ~np.isfinite(numbers) | (numbers < 0) | (numbers > MAX_WEIGHT)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        at = (f"line {int(lines[first])}, column '{name}'" if lines is not None
              else f"'{name}[{first}]'")
        raise DataError(f"{where}: {at} is {show(values[first])}; a sample weight is a "
                        f"finite number from 0 (the example does not count) to "
                        f"{MAX_WEIGHT:g}.")
    if len(numbers) and not numbers.any():
        raise DataError(f"{where}: every sample weight in '{name}' is 0, so no example would "
                        "count in the loss.")
    return numbers.astype(np.float32)


def with_sample_weights(ds: Any, weights: Optional[np.ndarray]) -> Any:
    """A split's ``(x, y)`` examples as ``(x, y, weight)``, each example's sample weight
    zipped in the split's order (which the CSV and npz sources read in); ``ds`` as it is
    without sample weights."""
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import tensorflow as tf

    if weights is None:
        return ds
    return tf.data.Dataset.zip((ds, tf.data.Dataset.from_tensor_slices(weights))).map(
        lambda xy, w: (xy[0], xy[1], w))


def class_weight_table(class_weights: Optional[ClassWeights]) -> Any:
    """The class weights as a float32 tensor by class index (``None`` without them)."""
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import tensorflow as tf

    if class_weights is None:
        return None
    return tf.constant(class_weights.by_index.astype(np.float32))


def times_class_weights(y: Any, table: Any, *weight: Any) -> Any:
    """A batch's example weights: its sample weights (or 1) times each example's class
    weight, looked up by its class index (whatever order the source reads in); ``y`` the
    batch's class indices, before a ``one_hot`` step."""
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import tensorflow as tf

    labels = tf.reshape(tf.cast(y, tf.int64), [tf.shape(y)[0], -1])[:, 0]
    by_class = tf.gather(table, labels)
    return by_class * weight[0] if weight else by_class
