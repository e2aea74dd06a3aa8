"""What a run folder's text may not do: send a terminal escape, or run in a spreadsheet.

Every text a run folder supplies (its name, a status, a metric's name, a spec value) is
shown through ``printable`` in the text table, the CSV and every message, and every CSV
text cell through ``spreadsheet_safe``.
"""

from __future__ import annotations

from typing import Any, Optional

_FORMULA_STARTS = ("=", "+", "-", "@")  # what a spreadsheet reads as the start of a formula


def printable(text: Any, limit: Optional[int] = None, newlines: bool = False) -> str:
    """``text`` with every character that is not printable (ESC, other C0 and C1 controls,
    bidirectional overrides, bytes of a non-UTF-8 file name) written as its Python escape
    (``\\x1b``), cut to ``limit`` characters; ``newlines`` keeps line breaks (a message)."""
    shown = "".join(c if c.isprintable() or (newlines and c == "\n") else repr(c)[1:-1]
                    for c in str(text))
    return shown if limit is None or len(shown) <= limit else shown[:limit - 3] + "..."


def spreadsheet_safe(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would take it for a formula (it
    starts with ``=``, ``+``, ``-`` or ``@`` and is no number)."""
    if text[:1] in _FORMULA_STARTS:
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text
