"""Problems found in a pipeline file, and the three ways they are printed.

An ``Issue`` is a value: code, dotted key path, message, severity and position.
Validation collects all of them before anything is reported (pydantic style),
so a user fixes a file in one round trip instead of one error at a time.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

PathPart = Union[str, int]
Path = tuple  # tuple[PathPart, ...]

ERROR = "error"
WARNING = "warning"
NOTE = "note"  # information only; never fails a check, not even under --strict


def format_path(path: Sequence[PathPart]) -> str:
    """Render ``("model", "layers", 2, "Dense")`` as ``model.layers[2].Dense``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "<file>"


# The cost of one file's report is bounded: at most MAX_ISSUES issues are kept (plus one
# summary, see validate.py), and at most MAX_SUGGESTIONS names get a difflib search, the
# only step whose cost grows with the catalogue (~0.1-0.3 ms a name against ~300 layers).
MAX_ISSUES = 100
MAX_SUGGESTIONS = 2 * MAX_ISSUES
# No Keras or kerapipe name is a tenth as long; difflib's cost grows with the square.
MAX_SUGGESTED_NAME = 100
MAX_SHOWN_VALUE = 60  # characters of a value's repr shown in a message

_SUGGESTIONS_LEFT: contextvars.ContextVar[Optional[list]] = contextvars.ContextVar(
    "kerapipe_suggestions_left", default=None)
_LOWERED: dict[tuple, dict] = {}
_CLOSEST: dict[tuple, Optional[str]] = {}
_MEMO_SIZE = 4096


@contextlib.contextmanager
def suggestion_budget(limit: int = MAX_SUGGESTIONS) -> Iterator[None]:
    """Within the block, at most ``limit`` new names get a did-you-mean search."""
    token = _SUGGESTIONS_LEFT.set([limit])
    try:
        yield
    finally:
        _SUGGESTIONS_LEFT.reset(token)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest candidate, or ``""``.

    Case is ignored when matching (``conv2d`` finds ``Conv2D``). Answers are remembered
    per (name, candidates); inside ``suggestion_budget`` only the first names searched
    get a close match (a case-insensitive exact match is always found), and a name over
    ``MAX_SUGGESTED_NAME`` characters gets none.
    """
    if not isinstance(name, str):
        return ""
    choices = tuple(candidates)
    by_lower = _LOWERED.get(choices)
    if by_lower is None:
        by_lower = {}
        for candidate in choices:
            by_lower.setdefault(candidate.lower(), candidate)
        _remember(_LOWERED, choices, by_lower)
    lowered = name.lower()
    if lowered in by_lower:
        return f" Did you mean '{by_lower[lowered]}'?"
    if len(lowered) > MAX_SUGGESTED_NAME:
        return ""
    key = (lowered, choices)
    if key not in _CLOSEST:
        left = _SUGGESTIONS_LEFT.get()
        if left is not None:
            if left[0] <= 0:
                return ""
            left[0] -= 1
        import difflib  # only when a name is unknown: not on the path of a valid file

        matches = difflib.get_close_matches(lowered, list(by_lower), n=1, cutoff=0.6)
        _remember(_CLOSEST, key, matches[0] if matches else None)
    match = _CLOSEST[key]
    return f" Did you mean '{by_lower[match]}'?" if match is not None else ""


def _remember(memo: dict, key: tuple, value: Any) -> None:
    if len(memo) >= _MEMO_SIZE:
        memo.clear()  # names in a file are few; a full memo means a hostile file
    memo[key] = value


def add_once(issues: list, seen: set, issue: Issue) -> None:
    """Append ``issue`` unless one of its code, key path and message is in ``seen``: a
    block used many times reports a fault of its definition once."""
    key = (issue.code, tuple(issue.path), issue.message)
    if key not in seen:
        seen.add(key)
        issues.append(issue)


def safe_repr(value: Any, limit: int = MAX_SHOWN_VALUE) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages.

    Never raises: Python refuses to print an int over 4,300 digits (``ValueError``), and
    data given as a dict may nest deeper than ``repr`` recurses.
    """
    try:
        text = repr(value)
    except ValueError:
        if isinstance(value, int):
            digits = int(abs(value).bit_length() * 0.30103) + 1
            return f"<an integer of about {digits} digits>"
        text = f"<{type(value).__name__} holding an integer too long to print>"
    except RecursionError:
        text = f"<{type(value).__name__} nested too deep to show>"
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return text


@dataclass
class Issue:
    """One problem in a pipeline file.

    Args:
        code: stable machine-readable kind, e.g. ``unknown-argument``.
        path: key path inside the document, e.g. ``("train", "epochs")``.
        message: what happened, what was expected, how to fix it.
        severity: ``error``, ``warning`` or ``note``. Defaults to ``error``.
        file: the file the issue is in. Filled in by the validator.
        line: 1-based line, or 0 when unknown. Filled in by the validator.
        column: 1-based column, or 0 when unknown.
        at_key: point at the key itself rather than its value (unknown keys).
    """

    code: str
    path: Path
    message: str
    severity: str = ERROR
    file: str = ""
    line: int = 0
    column: int = 0
    at_key: bool = field(default=False, repr=False)

    @property
    def key_path(self) -> str:
        return format_path(self.path)

    def format(self) -> str:
        """``FILE:LINE:COL: error[CODE]: key.path: message`` (no key path for an issue of
        the whole file, such as a YAML syntax error: its place says it all)."""
        where = self.file or "<string>"
        if self.line:
            where += f":{self.line}:{self.column}"
        return f"{where}: {self.severity}[{self.code}]: {self._located(self.message)}"

    def _located(self, message: str) -> str:
        return f"{self.key_path}: {message}" if self.path else message

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "code": self.code,
            "path": self.key_path,
            "message": self.message,
        }

    def format_github(self) -> str:
        """A GitHub Actions workflow command, shown as an annotation on the diff."""
        level = {ERROR: "error", WARNING: "warning"}.get(self.severity, "notice")
        props = [f"file={_escape_property(self.file)}"]
        if self.line:
            props += [f"line={self.line}", f"col={self.column}"]
        props.append(f"title={_escape_property(f'kerapipe {self.code}')}")
        return f"::{level} {','.join(props)}::{_escape_data(self._located(self.message))}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(issues: list[Issue], fmt: str, files_checked: int) -> str:
    """Render issues of a ``validate`` run as ``text``, ``json`` or ``github``."""
    if fmt == "json":
        counts = {sev: sum(i.severity == sev for i in issues) for sev in (ERROR, WARNING, NOTE)}
        payload = {"files": files_checked, "errors": counts[ERROR], "warnings": counts[WARNING],
                   "issues": [issue.to_dict() for issue in issues]}
        return json.dumps(payload, indent=2)
    if fmt == "github":
        return "\n".join(issue.format_github() for issue in issues)
    return "\n".join(issue.format() for issue in issues)
