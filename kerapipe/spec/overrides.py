"""`--set key.path=value`: command-line overrides with the same key paths as the file.

The value is read by the same safe YAML loader (``--set train.epochs=3`` is an integer,
``--set data.preprocess[1].reshape=[28,28,1]`` a list), applied to the loaded data, and
then validated with the file, so an override gets exactly the file's errors, located
at the ``--set`` that caused it.
"""

from __future__ import annotations

import re
from typing import Any

from kerapipe.spec.issues import Issue
from kerapipe.spec.yaml_loader import Document, LoadProblem, load_document

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def parse_key_path(text: str) -> tuple | None:
    """``model.layers[2].Dense.units`` -> ``("model", "layers", 2, "Dense", "units")``."""
    parts: list = []
    for segment in text.split("."):
        pieces = list(_PART.finditer(segment))
        if not pieces or "".join(m.group(0) for m in pieces) != segment or pieces[0].group(1) is None:
            return None
        parts += [m.group(1) if m.group(1) is not None else int(m.group(2)) for m in pieces]
    return tuple(parts)


def apply_overrides(document: Document, overrides: list[str]) -> list[Issue]:
    """Apply ``KEY.PATH=VALUE`` overrides to ``document`` in place; return syntax issues."""
    issues: list[Issue] = []
    for text in overrides:
        origin = f"--set {text}"
        key, sep, raw_value = text.partition("=")
        path = parse_key_path(key.strip()) if sep else None
        if path is None:
            issues.append(Issue("bad-override", (), "expected KEY.PATH=VALUE, e.g. "
                                "`--set train.epochs=3` or `--set model.layers[0].Dense.units=64`.",
                                file=origin))
            continue
        try:
            value = load_document(raw_value, origin).data if raw_value.strip() else None
        except LoadProblem as problem:
            problem.issue.file, problem.issue.line = origin, 0
            problem.issue.path = path
            issues.append(problem.issue)
            continue
        problem = _assign(document.data, path, value)
        if problem:
            issues.append(Issue("bad-override", path, problem, file=origin))
            continue
        document.overrides[path] = origin
    return issues


def _assign(data: Any, path: tuple, value: Any) -> str:
    target = data
    for depth, part in enumerate(path[:-1]):
        nxt = path[depth + 1]
        if isinstance(part, int):
            if not isinstance(target, list) or part >= len(target):
                return f"there is no item [{part}] to change here."
            target = target[part]
            continue
        if not isinstance(target, dict):
            return f"'{part}' is not inside a mapping."
        if part not in target or target[part] is None:
            if isinstance(nxt, int):
                return f"there is no list '{part}' to index."
            target[part] = {}
        target = target[part]
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(target, list) or last >= len(target):
            return f"there is no item [{last}] to change here."
    elif not isinstance(target, dict):
        return f"'{last}' is not inside a mapping."
    target[last] = value
    return ""
