"""Problems found in a pipeline file, and the three ways they are printed.

An ``Issue`` is a value: code, dotted key path, message, severity and position.
Validation collects all of them before anything is reported (pydantic style),
so a user fixes a file in one round trip instead of one error at a time.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Iterable, Sequence, Union

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


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest candidate, or ``""``.

    Case is ignored when matching (``conv2d`` finds ``Conv2D``).
    """
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    lowered = str(name).lower()
    if lowered in by_lower:
        return f" Did you mean '{by_lower[lowered]}'?"
    matches = difflib.get_close_matches(lowered, list(by_lower), n=1, cutoff=0.6)
    return f" Did you mean '{by_lower[matches[0]]}'?" if matches else ""


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
        """``FILE:LINE:COL: error[CODE]: key.path: message``."""
        where = self.file or "<string>"
        if self.line:
            where += f":{self.line}:{self.column}"
        return f"{where}: {self.severity}[{self.code}]: {self.key_path}: {self.message}"

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
        return f"::{level} {','.join(props)}::{_escape_data(self.key_path + ': ' + self.message)}"


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
