"""YAML 1.2 core-schema typing of plain scalars, and the stand-in for an integer too long.

The loader types a plain (unquoted) scalar here, values and keys alike: ``1e-3`` is a
float, only ``true``/``false`` are booleans. An integer scalar longer than
``MAX_INT_DIGITS`` is never converted (Python refuses to read or print one over 4,300
digits, and no key takes one): it stands in the data as an ``OversizedInteger``, reported
at its position, which the typed layer skips.
"""

from __future__ import annotations

import re
from typing import Any

from kerapipe.spec.issues import Issue, Path

# More digits than the largest float (309), far fewer than Python's 4,300-digit limit on
# converting an int to or from text: every message can still print the value.
MAX_INT_DIGITS = 400
INT_LIMIT = 10 ** MAX_INT_DIGITS

_NULLS = {"", "~", "null", "Null", "NULL"}
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
# The plain scalars that start with a letter and are no string: every other such is one.
WORDS_NOT_TEXT = frozenset(word for word in (*_NULLS, *_BOOLS) if word[:1].isalpha())
_INT = re.compile(r"[-+]?[0-9]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_OCT = re.compile(r"0o[0-7]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
# The YAML 1.2 core schema's: [-+]?(.inf|.Inf|.INF) and .nan|.NaN|.NAN.
_SPECIAL_FLOATS = {**{sign + inf: float(sign + "inf") for sign in ("", "+", "-")
                      for inf in (".inf", ".Inf", ".INF")},
                   ".nan": float("nan"), ".NaN": float("nan"), ".NAN": float("nan")}


class OversizedInteger:
    """Stands in for an integer over ``MAX_INT_DIGITS`` digits, already reported."""

    def __init__(self, digits: int, shown: str) -> None:
        self.digits = digits
        self.shown = shown

    def __repr__(self) -> str:
        return f"<an integer of {self.digits} digits>"

    def issue(self, path: Path, line: int = 0, column: int = 0) -> Issue:
        name = next((p for p in reversed(path) if isinstance(p, str)), "value")
        return Issue("out-of-range", path, f"an integer of {self.digits} digits is too long: "
                     f"a pipeline file's integers have at most {MAX_INT_DIGITS} digits (no key "
                     f"takes more; the largest float has 309). Write a smaller number. "
                     f"Received: {name}={self.shown} ({self.digits} digits)",
                     line=line, column=column)


def _oversized(text: str) -> OversizedInteger:
    shown = text if len(text) <= 24 else text[:21] + "..."
    return OversizedInteger(len(text.lstrip("+-").lstrip("0")), shown)


def typed_scalar(text: str) -> Any:
    """Type a plain (unquoted) scalar by the YAML 1.2 core schema.

    ``1e-3``, ``1E3`` and ``.5`` are floats; only ``true``/``false`` are booleans, so
    ``yes``, ``no``, ``on`` and ``off`` stay strings (and a strict field refuses them).
    An integer over ``MAX_INT_DIGITS`` digits is an ``OversizedInteger`` (leading zeros
    do not count).
    """
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if _INT.match(text):
        digits = text.lstrip("+-").lstrip("0")
        if len(digits) > MAX_INT_DIGITS:  # int() itself refuses 4,300 digits
            return _oversized(text)
        return -int(digits or "0") if text.startswith("-") else int(digits or "0")
    if _HEX.match(text) or _OCT.match(text):
        value = int(text[2:], 16 if text[1] == "x" else 8)  # no digit limit in these bases
        if value >= INT_LIMIT:
            oversized = _oversized(text)
            oversized.digits = int(value.bit_length() * 0.30103) + 1  # decimal digits
            return oversized
        return value
    if _FLOAT.match(text):
        return float(text)
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    return text
