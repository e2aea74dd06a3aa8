"""Checks of numeric values that every source shares, and how messages show a value.

Values are checked before any cast: a cast to float32 turns 1e300 into inf, one to int64
wraps 2**63, so a message shows the value as it is in the file (or, for a CSV, as
written).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from kerapipe.errors import DataError

FLOAT32_MAX = float(np.finfo(np.float32).max)  # the model computes in float32


def locate(name: str, index: int, lines: Optional[np.ndarray] = None) -> str:
    """``'y[7]'``, or ``line 9, column 'label'`` for a CSV file."""
    if lines is not None:
        return f"line {int(lines[index])}, column '{name}'"
    return f"'{name}[{index}]'"


def show(value: Any, most: int = 60) -> str:
    """A value as a message shows it: numbers as they are (a NumPy scalar as its Python
    value, never a cast), text quoted, anything long cut to ``most`` characters."""
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value) if isinstance(value, (str, bytes)) else str(value)
    return text if len(text) <= most else text[:most] + f"... ({len(text):,} characters)"


def show_as_written(text: str, most: int = 60) -> str:
    """A number as the file wrote it (a CSV label), cut to ``most`` characters."""
    return text if len(text) <= most else text[:most] + f"... ({len(text):,} characters)"


def check_finite(where: str, name: str, values: np.ndarray,
                 lines: Optional[np.ndarray] = None,
                 text: Optional[Callable[[int], str]] = None) -> None:
    """NaN or infinite values: the first one, where it is, and how many examples have one.

    ``lines`` and ``text`` (CSV) locate it by line and show it as written.
    """
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1) if len(values) else []
    if np.any(bad):
        first = int(np.flatnonzero(bad)[0])
        value = values[first].reshape(-1)[~np.isfinite(values[first].reshape(-1))][0]
        shown = show_as_written(text(first)) if text else show(value)
        count = int(np.sum(bad))
        raise DataError(f"{where}: {locate(name, first, lines)} holds {shown} ({count:,} "
                        f"example{'s' if count != 1 else ''} with NaN or infinite values). "
                        "Remove or fill those examples before training.")


def check_float32(where: str, name: str, values: np.ndarray,
                  lines: Optional[np.ndarray] = None,
                  text: Optional[Callable[[int], str]] = None) -> None:
    """Finite values beyond float32, which the model computes in (they would become inf)."""
    if values.dtype.itemsize <= 4 or not len(values):
        return
    flat = values.reshape(len(values), -1)
    bad = (flat.max(axis=1) > FLOAT32_MAX) | (flat.min(axis=1) < -FLOAT32_MAX)
    if np.any(bad):
        first = int(np.flatnonzero(bad)[0])
        row = flat[first]
        value = row[np.abs(row) > FLOAT32_MAX][0]
        shown = show_as_written(text(first)) if text else show(value)
        raise DataError(f"{where}: {locate(name, first, lines)} holds {shown}, beyond the "
                        "float32 range (±3.4e+38) that the model computes in. Scale the "
                        "values down (or remove that example) before training.")


def csv_number(text: str, kind: type = float) -> Any:
    """A CSV cell's number as ``tf.io.decode_csv`` / ``tf.strings.to_number`` read it, or
    ``None``: they parse ASCII only, where Python's ``float()`` and ``int()`` also take
    ``1_000`` and other scripts' digits, which would fail mid-training. ``kind``: ``float``
    or ``int``; range checks are the caller's."""
    if not text.isascii() or "_" in text:
        return None
    try:
        return kind(text)
    except ValueError:
        return None
