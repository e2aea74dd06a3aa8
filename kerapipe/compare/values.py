"""A spec value, a number and a time as compare reads and shows them.

``MISSING`` stands for a key path a run's spec does not have (a blank cell, no JSON
value). A value is shown as YAML writes it (``true``, ``null``, ``0.001``); a mapping or a
list, which a column holds where the runs differ in the shape of their specs there
(``output.mlflow`` is ``null`` in one run and a mapping in another), as one line of flow
YAML (``{tracking_uri: null, experiment: x}``), the form ``--set`` takes.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Optional

import yaml

MISSING = object()  # a key path a run's spec does not have


def is_number(value: Any) -> bool:
    """An ``int`` or a ``float``, not a ``bool``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def instant(text: Optional[str]) -> Optional[datetime]:
    """An ISO 8601 time as ``datetime``; ``None`` when ``text`` is not one."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def text_of(value: Any) -> str:
    """``str(value)``, never raising (an int over 4,300 digits refuses ``str``)."""
    try:
        return str(value)
    except ValueError:
        return "<an integer too long to show>"


def show_value(value: Any) -> str:
    """A spec value as YAML writes it: ``true``, ``null``, ``0.001``, ``[]``,
    ``{experiment: x}``; blank when the run's spec lacks the key. Not yet escaped for a
    terminal (``escape.printable``)."""
    if value is MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        return _flow(value) if value else ("{}" if isinstance(value, dict) else "[]")
    return text_of(value)


def json_value(value: Any) -> Any:
    """A spec value as JSON data: non-finite numbers are ``null``, a mapping's keys text,
    a value JSON has no type for its text."""
    if value is MISSING:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, dict):
        return {text_of(key): json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_value(item) for item in value]
    return text_of(value)


class _FlowDumper(yaml.SafeDumper):
    """PyYAML's safe dumper writing a value that an alias repeated again, not as ``*id001``,
    and a text of several lines double-quoted (``"a\\nb"``), so that it stays on one line."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: D102 - PyYAML hook
        return True


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = '"' if any(c in text for c in "\n\r\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_FlowDumper.add_representer(str, _represent_text)


def _flow(value: Any) -> str:
    """A mapping or a list as one line of flow YAML, in its own order."""
    try:
        return yaml.dump(value, Dumper=_FlowDumper, default_flow_style=True, sort_keys=False,
                         allow_unicode=True, width=1 << 30).strip()
    except (ValueError, yaml.YAMLError):  # an integer too long for str, a type YAML lacks
        return text_of(value)
