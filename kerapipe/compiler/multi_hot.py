"""Multi-label labels: each example's set of classes as a float32 multi-hot vector.

From a CSV label column whose cells hold the labels with a separator between them
(``Action|Comedy``), a string array of the same (npz), or a 0/1 array ``(n, K)``. The
label names are sorted; a test split's labels must be among the training split's.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from kerapipe.compiler.sources.raw import RawData
from kerapipe.compiler.values import locate, show
from kerapipe.errors import DataError
from kerapipe.spec.steps import MAX_CLASSES


def multi_hot_labels(raw: RawData, y: np.ndarray, y_test: Optional[np.ndarray],
                     separator: str
                     ) -> tuple[np.ndarray, Optional[np.ndarray], list[str], int]:
    """Sets of labels as float32 multi-hot vectors ``(n, K)`` and the K names, sorted.

    From a CSV label column (each cell the labels with ``separator`` between them), a
    string array of the same, or a 0/1 array ``(n, K)`` (its names ``0`` .. ``K-1``, or
    the CSV's label columns when ``data.source.csv.label`` lists several)."""
    texts = _label_texts(raw, y)
    if texts is None:  # an array of 0/1 vectors
        parts = [_multi_hot_array(raw, name, labels)
                 for name, labels in ((raw.names[1], y), (raw.names[3], y_test))]
        width = parts[0].shape[1]
        if parts[1] is not None and parts[1].shape[1] != width:
            raise DataError(f"{raw.where}: '{raw.names[3]}' holds vectors of "
                            f"{parts[1].shape[1]} labels, but '{raw.names[1]}' of {width}. "
                            "Both must have one column per label, in the same order.")
        names = raw.class_names or [str(i) for i in range(width)]  # several CSV columns
        return parts[0], parts[1], list(names), width
    sets = [_split_labels(text, separator) for text in texts]
    test_sets = None
    if y_test is not None:
        test_texts = _label_texts(raw, y_test, test=True)
        if test_texts is None:
            raise DataError(f"{raw.where}: '{raw.names[1]}' holds label texts but "
                            f"'{raw.names[3]}' does not; give both in one form.")
        test_sets = [_split_labels(text, separator) for text in test_texts]
    names = sorted(set().union(*sets))
    if len(names) > MAX_CLASSES:
        raise DataError(f"{raw.where}: '{raw.names[1]}' holds {len(names):,} different labels, "
                        f"more than the {MAX_CLASSES:,} classes kerapipe allows. Is "
                        f"separator {separator!r} the one the file uses?")
    if len(names) < 2:
        raise DataError(f"{raw.where}: `labels: multi_label` found only "
                        f"{len(names)} label ({', '.join(names) or 'none'}) in "
                        f"'{raw.names[1]}' with separator {separator!r}. Set "
                        "data.labels.separator to the text between the labels (e.g. `;`).")
    index = {name: i for i, name in enumerate(names)}
    if test_sets is not None:
        unknown = sorted(set().union(*test_sets) - set(index))
        if unknown:
            raise DataError(f"{raw.where}: '{raw.names[3]}' holds labels {unknown[:5]} that "
                            "the training labels do not have.")
    encoded = [None if group is None else _encode(group, index)
               for group in (sets, test_sets)]
    raw.class_names = names
    return encoded[0], encoded[1], names, len(names)


def _label_texts(raw: RawData, labels: Optional[np.ndarray], test: bool = False
                 ) -> Optional[list[str]]:
    """Each example's label cell as text (a CSV column, a string array), or ``None`` for
    an array of numbers."""
    if labels is None:
        return None
    if raw.label_text is not None and not test:  # a CSV file: the cells as written
        return [raw.label_text(i) for i in range(len(labels))]
    labels = np.asarray(labels)
    if labels.dtype.kind in "US" and labels.ndim == 1:
        return [str(v) for v in labels.tolist()]
    return None


def _split_labels(text: str, separator: str) -> frozenset:
    return frozenset(part.strip() for part in text.split(separator) if part.strip())


def _encode(sets: list, index: dict) -> np.ndarray:
    out = np.zeros((len(sets), len(index)), dtype=np.float32)
    for row, labels in enumerate(sets):
        out[row, [index[label] for label in labels]] = 1.0
    return out


def _multi_hot_array(raw: RawData, name: str, labels: Optional[np.ndarray]
                     ) -> Optional[np.ndarray]:
    """A 0/1 array ``(n, K)`` as float32, checked."""
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "biuf":
        raise DataError(f"{raw.where}: `labels: multi_label` takes a 0/1 array of shape "
                        f"(examples, labels) or label texts with a separator, but '{name}' "
                        f"holds {labels.dtype} values of shape {tuple(labels.shape)}. For "
                        "one class per example, use `labels: classes`.")
    if labels.size and not np.isin(labels, (0, 1)).all():
        row = int(np.flatnonzero(~np.isin(labels, (0, 1)).all(axis=1))[0])
        raise DataError(f"{raw.where}: {locate(name, row, None)} holds "
                        f"{show(labels[row][~np.isin(labels[row], (0, 1))][0])}; multi-hot "
                        "labels are 0 or 1 (1: the example has that label). For soft targets "
                        "use `labels: raw`.")
    return labels.astype(np.float32)
