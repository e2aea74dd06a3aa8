"""Splits of example indices (pure NumPy, no TensorFlow): shuffled and optionally
stratified (``stratified_split``), in the source's order (``ordered_split``), or as a
column names them (``column_split``); ``split_indices`` picks the one ``data.split`` asks.

``stratified_split(y, [0.1, 0.1], seed, stratify=True)`` returns ``[train, validation,
test]`` index arrays: every index appears exactly once, each part is shuffled (so label-
sorted sources such as the bundled MNIST sample do not train in label order), and each
class is divided in the same proportions as the whole (scikit-learn's
``StratifiedShuffleSplit`` idea, with a largest-remainder rounding that loses nothing).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

# What a split column's cells say, in the order of the parts ``column_split`` returns.
PART_NAMES = ("train", "validation", "test")
PART_RULE = ("data.split.column names each example's split: one of train, validation, "
             "test. Fix the value")


def _part_sizes(total: int, fractions: Sequence[float]) -> list[int]:
    """Size of each held-out part: round(fraction * total), at least 1 for a fraction > 0."""
    sizes = []
    for fraction in fractions:
        size = int(math.floor(fraction * total + 0.5))
        if fraction > 0 and size == 0 and total > 0:
            size = 1
        sizes.append(size)
    # Never hand out more examples than there are (tiny inputs with the "at least 1" rule).
    while sum(sizes) > total:
        largest = max(range(len(sizes)), key=lambda k: sizes[k])
        sizes[largest] -= 1
    return sizes


def _class_codes(y: np.ndarray) -> Optional[np.ndarray]:
    """Integer class codes of ``y``, or ``None`` when it cannot be stratified on."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind in "fc":
        return None  # regression targets, one-hot or multi-output labels
    try:
        _, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    except TypeError:  # unorderable objects
        return None
    if counts.size == 0 or counts.min() < 2:
        return None  # a class with a single example cannot be in two parts
    return codes.reshape(-1)


def stratified_split(y: np.ndarray, fractions: list[float], seed: Optional[int],
                     stratify: bool) -> list[np.ndarray]:
    """Split example indices into ``[rest, part1, part2, ...]``.

    Args:
        y: labels, one per example (only their count matters without stratification).
        fractions: fraction of *all* examples in each held-out part; 0 gives an empty part.
        seed: seed of ``np.random.default_rng``; ``None`` for a different split each time.
        stratify: keep class proportions equal across the parts. Ignored (plain shuffled
            split) for float targets, labels that are not one per example, or when some
            class has fewer than 2 examples.

    Returns:
        int64 index arrays, each in shuffled order; together they hold every index once.

    Raises:
        ValueError: when a fraction is negative or the fractions add up to more than 1.
    """
    fractions = [float(f) for f in fractions]
    if any(f < 0 or not math.isfinite(f) for f in fractions) or sum(fractions) > 1:
        raise ValueError(f"fractions must be >= 0 and add up to at most 1. "
                         f"Received: {fractions}")
    total = len(y)
    rng = np.random.default_rng(seed)
    sizes = _part_sizes(total, fractions)
    codes = _class_codes(y) if stratify else None

    if codes is None:
        order = rng.permutation(total)
        parts, start = [], 0
        for size in sizes:
            parts.append(order[start:start + size])
            start += size
        return [order[start:].astype(np.int64)] + [p.astype(np.int64) for p in parts]

    num_classes = int(codes.max()) + 1
    # Each class's indices in ascending order (what np.flatnonzero(codes == c) gave, at a
    # cost of examples x classes): one stable sort, so the draws below stay the same.
    counts = np.bincount(codes, minlength=num_classes)
    by_class = np.split(np.argsort(codes, kind="stable"), np.cumsum(counts)[:-1])
    members = [rng.permutation(indices) for indices in by_class]
    # alloc[c, k]: examples of class c in held-out part k. Start from the floors, then give
    # each part its missing examples from the classes with the largest remainders.
    exact = counts[:, None] * np.array(fractions)[None, :] if fractions else \
        np.zeros((num_classes, 0))
    alloc = np.floor(exact).astype(np.int64)
    remainder = exact - alloc
    tie_break = rng.permutation(num_classes)
    for k, size in enumerate(sizes):
        missing = size - int(alloc[:, k].sum())
        order = sorted(range(num_classes), key=lambda c: (-remainder[c, k], tie_break[c]))
        # First keep at least one example of each class for training, then relax.
        for keep in (1, 0):
            progressed = True
            while missing > 0 and progressed:
                progressed = False
                for c in order:
                    if missing == 0:
                        break
                    if counts[c] - alloc[c].sum() > keep:
                        alloc[c, k] += 1
                        missing -= 1
                        progressed = True

    rest: list[np.ndarray] = []
    held: list[list[np.ndarray]] = [[] for _ in fractions]
    for c, indices in enumerate(members):
        start = 0
        for k in range(len(fractions)):
            held[k].append(indices[start:start + alloc[c, k]])
            start += alloc[c, k]
        rest.append(indices[start:])
    parts = [np.concatenate(rest)] + [np.concatenate(p) for p in held]
    return [rng.permutation(p).astype(np.int64) for p in parts]


def ordered_split(total: int, fractions: list[float]) -> list[np.ndarray]:
    """Split ``range(total)`` in order: the first examples are the rest (training), then
    each held-out part in turn (validation, then test), each part ascending.

    Args:
        total: the number of examples.
        fractions: fraction of *all* examples in each held-out part, sized as
            ``stratified_split`` sizes them.

    Returns:
        ``[rest, part1, part2, ...]`` int64 index arrays.
    """
    sizes = _part_sizes(total, [float(f) for f in fractions])
    start = total - sum(sizes)
    parts = [np.arange(start, dtype=np.int64)]
    for size in sizes:
        parts.append(np.arange(start, start + size, dtype=np.int64))
        start += size
    return parts


def part_code(cell: str) -> Optional[int]:
    """The part a split column's cell names (its position in ``PART_NAMES``), or ``None``."""
    text = cell.strip()
    return PART_NAMES.index(text) if text in PART_NAMES else None


def column_split(codes: np.ndarray) -> list[np.ndarray]:
    """``[train, validation, test]`` indices of the examples whose code (``part_code``)
    names that part, each in the source's order."""
    codes = np.asarray(codes)
    return [np.flatnonzero(codes == k).astype(np.int64) for k in range(len(PART_NAMES))]


def split_indices(y: np.ndarray, fractions: list[float], seed: Optional[int], stratify: bool,
                  order: str = "shuffled") -> list[np.ndarray]:
    """``[rest, part1, ...]`` as ``data.split.order`` draws them: ``shuffled`` (with the
    seed, stratified when asked: ``stratified_split``) or ``ordered`` (``ordered_split``)."""
    if order == "ordered":
        return ordered_split(len(y), fractions)
    return stratified_split(y, fractions, seed, stratify)
