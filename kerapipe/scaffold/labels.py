"""The label's kind (``data.labels``), its output units and classes, guessed from its values:
text names are classes (or, with ``|`` between them, label sets), whole numbers from 0
class indices (two other values: binary), other numbers a regression target."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from kerapipe.errors import DataError
from kerapipe.scaffold.facts import (MAX_STRING_CATEGORIES, LabelGuess, number, shown,
                                     whole_number)

MAX_CLASSES_GUESS = 20  # whole-number labels with more values than this: a target, unless
CLASS_EXAMPLES_GUESS = 20  # ... every index from 0 (or 1) is used, by this many examples each
CSV_HINT = "Choose the label with --label COLUMN."
NPZ_HINT = "Save the .npz file with labels that differ from example to example."


def label_from_texts(name: str, cells: list[str], where: str,
                     hint: str = CSV_HINT) -> LabelGuess:
    """The label's kind from its cells (missing ones left out), as ``data.labels`` names it.

    Args:
        name: the label column (or array).
        cells: its values read, as text.
        where: the data file, as messages name it.
        hint: what to do, ending a message that refuses the label. Defaults to choosing
            another CSV column.

    Raises:
        DataError: labels that cannot train a model: one value only, or a different text
            in most rows.
    """
    from kerapipe.compiler.values import csv_number

    numbers = [number(cell) for cell in cells]
    unbounded = [c for c, n in zip(cells, numbers) if n is None and csv_number(c) is not None]
    if unbounded and all(n is not None or csv_number(c) is not None
                         for c, n in zip(cells, numbers)):
        raise DataError(f"{where}: the label '{shown(name)}' holds numbers that are not "
                        f"finite ({shown(unbounded[0])}, {len(unbounded):,} in the examples "
                        "read): no loss can be computed from them. Remove those rows, or "
                        "write them as missing values.")
    if all(n is not None for n in numbers):
        # 1.0 is a class index too (as pandas writes whole numbers of a float column)
        wholes = [whole_number(c) if whole_number(c) is not None else
                  int(n) if n == int(n) and abs(n) < 2 ** 53 else None
                  for c, n in zip(cells, numbers)]
        if all(w is not None for w in wholes):
            return label_from_numbers(name, wholes, where, hint)
        distinct = len(set(numbers))
        if distinct < 2:
            raise DataError(f"{where}: the label '{shown(name)}' holds one value only "
                            f"({shown(cells[0])}) in the examples read; a model needs labels "
                            f"that differ. {hint}")
        return LabelGuess(name, "regression", 1, reason=f"numbers with fractions, {distinct:,} "
                          "different values: a target to predict (regression)")
    if sum("|" in cell for cell in cells) * 10 >= len(cells):
        labels = Counter(part.strip() for cell in cells for part in cell.split("|")
                         if part.strip())
        if 1 < len(labels) <= MAX_STRING_CATEGORIES:
            names = sorted(labels)
            sets = [{p.strip() for p in c.split("|") if p.strip()} for c in cells]
            _check_label_sets(name, where, sets, names, hint)
            return LabelGuess(name, "multi_label", len(names), tuple(names),
                              tuple(labels[n] for n in names),
                              reason="cells hold labels separated by '|', as "
                              f"'{shown(next(c for c in cells if '|' in c))}'")
    counts = Counter(cells)
    if len(counts) > max(MAX_STRING_CATEGORIES, len(cells) // 2):
        raise DataError(f"{where}: the label '{shown(name)}' holds {len(counts):,} different "
                        f"texts in {len(cells):,} rows: an id or free text rather than class "
                        f"names. {hint}")
    names = sorted(counts)
    if len(names) < 2:
        raise DataError(f"{where}: the label '{shown(name)}' holds one class only "
                        f"('{shown(names[0])}') in the examples read; a classifier needs two. "
                        f"{hint}")
    return LabelGuess(name, "classes", len(names), tuple(names),
                      tuple(counts[n] for n in names), reason="one per name")


def _check_label_sets(name: str, where: str, sets: list[set], names: Sequence[str],
                      hint: str) -> None:
    """Refuse label sets where every label is in every example, or in none: each of the
    model's outputs would learn a constant."""
    seen = Counter(n for labels in sets for n in labels)
    if any(0 < seen[n] < len(sets) for n in names):
        return

    def listed(found: list[str]) -> str:
        return ", ".join(shown(n, 24) for n in found[:6]) + (", ..." if len(found) > 6 else "")

    always = [n for n in names if seen[n]]
    never = [n for n in names if not seen[n]]
    what = "; ".join(([f"every example has {listed(always)}"] if always else [])
                     + ([f"none has {listed(never)}"] if never else []))
    raise DataError(f"{where}: the label '{shown(name)}' is the same in every example read "
                    f"({what}); a model needs labels that differ. {hint}")


def label_from_numbers(name: str, values: Sequence[int], where: str,
                       hint: str = CSV_HINT) -> LabelGuess:
    """Whole-number labels: class indices when few and from 0, else two values (binary),
    else a target."""
    counts = Counter(values)
    low, high = min(counts), max(counts)
    if len(counts) < 2:
        raise DataError(f"{where}: the label '{shown(name)}' holds one value only ({low}) in "
                        f"the examples read; a model needs labels that differ. {hint}")
    few = low >= 0 and len(counts) <= MAX_CLASSES_GUESS and high < 4 * MAX_CLASSES_GUESS
    # More indices (CIFAR-100's 0..99) when every one is used, each by many examples.
    every = (low in (0, 1) and len(counts) == high - low + 1 and high < MAX_STRING_CATEGORIES
             and len(values) >= CLASS_EXAMPLES_GUESS * len(counts))
    if few or every:
        names = tuple(str(i) for i in range(high + 1))
        unused = "" if not low else (f"; an output per index from 0, so 0..{low - 1} "
                                     "without examples too" if low > 1 else
                                     "; an output per index from 0, so 0 without examples too")
        each = "" if few else (f", every one used by {len(values) // len(counts):,} examples "
                               "on average:")
        return LabelGuess(name, "classes", high + 1, names,
                          tuple(counts.get(i, 0) for i in range(high + 1)),
                          reason=f"whole numbers {low}..{high}{each or ','} class "
                          f"indices{unused}")
    if len(counts) == 2:
        names = tuple(str(v) for v in sorted(counts))
        return LabelGuess(name, "binary", 1, names, tuple(counts[v] for v in sorted(counts)),
                          reason=f"two values, {names[0]} is class 0 and {names[1]} "
                          "class 1")
    return LabelGuess(name, "regression", 1, reason=f"{len(counts):,} different whole "
                      f"numbers from {low} to {high}: a target to predict (regression)")


def label_from_array(name: str, y, path: str) -> LabelGuess:
    """The label's kind from an npz label array (one value per example, or rows of 0/1).

    Raises:
        DataError: labels of another shape or dtype, not finite, or that cannot train a
            model (one value only, the same label set in every row).
    """
    import numpy as np

    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2 and y.dtype.kind in "biuf" and np.isin(y, (0, 1)).all():
        names = tuple(str(i) for i in range(y.shape[1]))
        sets = [{str(i) for i in np.flatnonzero(row)} for row in y]
        _check_label_sets(name, path, sets, names, NPZ_HINT)
        return LabelGuess(name, "multi_label", y.shape[1], names,
                          tuple(int(c) for c in y.sum(axis=0)),
                          reason=f"0/1 rows of {y.shape[1]}: several labels per example")
    if y.ndim != 1:
        raise DataError(f"{path}: '{name}' has shape {y.shape}; kerapipe init reads one label "
                        "per example (a class index, a class name or a target), or rows of "
                        "0/1 (several labels).")
    if y.dtype.kind in "US":
        return label_from_texts(name, [str(v) for v in y.astype(str)], path, NPZ_HINT)
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind not in "iuf":
        raise DataError(f"{path}: '{name}' holds {y.dtype} values; labels are numbers or "
                        "class names.")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise DataError(f"{path}: '{name}' holds values that are not finite (NaN or "
                            "infinite); remove those examples.")
        if not np.all(y == np.round(y)):
            distinct = len(np.unique(y))
            if distinct < 2:
                raise DataError(f"{path}: the label '{shown(name)}' holds one value only "
                                f"({float(y[0])}) in the examples read; a model needs labels that "
                                f"differ. {NPZ_HINT}")
            return LabelGuess(name, "regression", 1, reason=f"numbers with fractions, "
                              f"{distinct:,} different values: a target to predict "
                              "(regression)")
    return label_from_numbers(name, [int(v) for v in y.tolist()], path, NPZ_HINT)
