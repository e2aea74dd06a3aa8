"""Reuse in a pipeline file: ``extends: base.yaml`` and ``${env:NAME}`` references.

Both are resolved on the located document, before ``--set`` (``extends``) and typing, so
the typed spec, a run's ``spec.yaml`` and every message see the resolved values, and each
value keeps the file, line and column it was written at (``Document.files``):

- ``extends: PATH`` (top level): the base file, relative to the folder of the file that
  names it, is loaded with the same safe loader, and the file is merged over it:
  mappings key by key, anything else (lists, scalars, ``null``) replaced whole. A base
  may extend another, up to ``MAX_EXTENDS`` files; a cycle names its files.
- ``${env:NAME}`` / ``${env:NAME:default}`` in a string value (never in a key) is the
  variable's value (set, even empty, wins over the default); ``$${`` is a literal
  ``${``. An unquoted value that is one reference is typed as YAML types the text
  (``epochs: ${env:EPOCHS:3}`` is the integer 3); any other is a string.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Mapping, Optional

from kerapipe.spec.document import Document
from kerapipe.spec.issues import Issue, Path, safe_repr
from kerapipe.spec.typed import describe_value
from kerapipe.spec.yaml_loader import MAX_FILE_BYTES, LoadProblem, load_document
from kerapipe.spec.yaml_scalars import OversizedInteger, typed_scalar

EXTENDS = "extends"
EXTENDS_DOC = ("the base pipeline file this one is merged over, relative to this file's "
               "folder (see Reuse: `extends:` and `${env:NAME}`); read before the rest")
MAX_EXTENDS = 8  # bases in one chain: a real project needs two or three
BASE_SUFFIXES = (".yaml", ".yml")

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# `$${` (a literal `${`), a reference, or a `${` that is neither (refused).
_PIECE = re.compile(r"\$\$\{|\$\{env:(" + _NAME + r")(?::([^}]*))?\}|\$\{")
_WHOLE = re.compile(r"\$\{env:" + _NAME + r"(?::[^}]*)?\}\Z")
_FORMS = ("`${env:NAME}` or `${env:NAME:default}` (NAME: letters, digits and `_`, not "
          "starting with a digit; the default ends at the first `}`)")


def pipeline_folder(file: str) -> str:
    """The folder a pipeline's relative paths start from (the cwd for text and dicts)."""
    return os.path.dirname(os.path.abspath(file)) if not file.startswith("<") else os.getcwd()


# --- extends ---------------------------------------------------------------------------

def resolve_extends(document: Document, read_text: Callable[[str], str], size: int = 0
                    ) -> Document:
    """``document`` merged over the chain of bases its ``extends:`` names.

    Args:
        document: the loaded pipeline file.
        read_text: reads a base file's text with the pipeline file's bounds (a regular
            file, at most ``MAX_FILE_BYTES`` read); raises ``OSError`` or ``ValueError``.
        size: the pipeline file's size in bytes; with its bases' it is at most
            ``MAX_FILE_BYTES``.

    Returns:
        ``document`` itself when it extends nothing, else a new merged ``Document``.

    Raises:
        LoadProblem: a bad ``extends`` value, a base that cannot be read or loaded or is
            no mapping, a cycle, a chain over ``MAX_EXTENDS`` bases or over the size.
    """
    if not isinstance(document.data, dict) or EXTENDS not in document.data:
        return document
    chain = [document]
    seen = [os.path.realpath(document.file) if not document.file.startswith("<") else None]
    while EXTENDS in chain[-1].data:
        current = chain[-1]
        name, target = _base_path(current, current.data.pop(EXTENDS))
        if os.path.realpath(target) in seen:
            files = [doc.file for doc in chain[seen.index(os.path.realpath(target)):]]
            raise _problem(current, f"the bases form a cycle: {' -> '.join(files + [name])}. "
                           "A file cannot extend, directly or through its bases, a file that "
                           "extends it. Remove one of the `extends:`.")
        if len(chain) > MAX_EXTENDS:
            raise _problem(current, f"a chain of bases is at most {MAX_EXTENDS} files long; "
                           f"this one goes on at {name}. Merge some of the bases.")
        try:
            text = read_text(target)
        except (OSError, ValueError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise _problem(current, f"cannot read the base file {name}: {reason} (looked "
                           f"for {target}). `extends` names a YAML file relative to the "
                           "folder of the file that names it.") from err
        size += len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_FILE_BYTES:
            raise _problem(current, f"the pipeline and its bases hold {size} bytes or more "
                           f"together; at most {MAX_FILE_BYTES} (the bound of one file).",
                           "too-large")
        base = load_document(text, name)  # its problems are located in it
        if not isinstance(base.data, dict):
            kind, (line, column) = describe_value(base.data), base.position(())
            raise LoadProblem(Issue("bad-extends", (), f"a base pipeline file holds a mapping "
                                    f"of keys, as a pipeline file does; this one holds {kind} "
                                    f"(it is the base of {current.file}).", file=name,
                                    line=line, column=column))
        chain.append(base)
        seen.append(os.path.realpath(target))
    merged = chain[-1]
    for doc in reversed(chain[:-1]):
        merged = _merge_documents(merged, doc)
    merged.bases = [doc.file for doc in chain[1:]]
    return merged


def _base_path(current: Document, value: Any) -> tuple[str, str]:
    """The base ``value`` names, as named in messages and as an absolute path."""
    problem = None
    if not isinstance(value, str):
        problem = ("a base is named by one path, a string (several bases are not read: let "
                   "each base extend the next). Received: "
                   f"{EXTENDS}={safe_repr(value)} ({describe_value(value)})")
    elif (not value or "\0" in value or "://" in value or os.path.isabs(value)
          or value.startswith("~") or "${" in value):
        problem = ("a base is named by a path relative to the folder of the file that names "
                   "it (no absolute path, `~`, URL or `${...}`; `..` may step out of the "
                   f"folder). Received: {EXTENDS}={safe_repr(value)}")
    elif not value.endswith(BASE_SUFFIXES):
        problem = ("a base is a YAML pipeline file, whose name ends in .yaml or .yml. "
                   f"Received: {EXTENDS}={safe_repr(value)}")
    if problem is not None:
        raise _problem(current, problem)
    if current.file.startswith("<"):
        name = os.path.normpath(value)
    else:
        name = os.path.normpath(os.path.join(os.path.dirname(current.file), value))
    return name, os.path.join(pipeline_folder(current.file), value)


def _problem(current: Document, message: str, code: str = "bad-extends") -> LoadProblem:
    line, column = current.position((EXTENDS,))
    return LoadProblem(Issue(code, (EXTENDS,), message, file=current.file, line=line,
                             column=column))


def _merge_documents(base: Document, top: Document) -> Document:
    """``top`` merged over ``base``: a mapping in both merges key by key (the base's keys
    first, in their order, then the new ones); anything else of ``top`` replaces the
    base's whole. Each key and value keeps the marks and file of the one it came from."""
    merged = Document(data=None, file=top.file, issues=base.issues + top.issues)
    pending: list = []  # (base value, top value, path, slot) with both mappings
    root: dict = {}
    pending.append((base.data, top.data, (), root))
    while pending:  # a loop, not recursion: both are bounded, but cheaply so
        old, new, path, result = pending.pop()
        _copy_marks(top, path, merged)
        for key, value in old.items():
            if key in new and isinstance(value, dict) and isinstance(new[key], dict):
                result[key] = {}
                pending.append((value, new[key], path + (key,), result[key]))
            elif key in new:
                result[key] = new[key]
                _copy_subtree(top, new[key], path + (key,), merged)
            else:
                result[key] = value
                _copy_subtree(base, value, path + (key,), merged)
        for key, value in new.items():
            if key not in old:
                result[key] = value
                _copy_subtree(top, value, path + (key,), merged)
    merged.data = root
    return merged


def _copy_marks(source: Document, path: Path, target: Document) -> None:
    for marks, into in ((source.value_marks, target.value_marks),
                        (source.key_marks, target.key_marks)):
        if path in marks:
            into[path] = marks[path]
    file = source.files.get(path, source.file)
    if file != target.file:
        target.files[path] = file
    if path in source.references:
        target.references[path] = source.references[path]


def _copy_subtree(source: Document, value: Any, path: Path, target: Document) -> None:
    pending = [(value, path)]
    while pending:
        value, path = pending.pop()
        _copy_marks(source, path, target)
        if isinstance(value, dict):
            pending += [(v, path + (k,)) for k, v in value.items()]
        elif isinstance(value, list):
            pending += [(v, path + (i,)) for i, v in enumerate(value)]


# --- ${env:NAME} -----------------------------------------------------------------------

def substitute_env(document: Document, environ: Optional[Mapping[str, str]] = None
                   ) -> list[Issue]:
    """Replace the ``${env:NAME}`` references in ``document``'s string values, in place.

    A value a ``--set`` gave or replaced is left as it is (the shell substitutes there).

    Args:
        document: the loaded (and merged) pipeline, with its ``references``.
        environ: the variables. Defaults to ``os.environ``.

    Returns:
        An issue for each unset variable without a default (``unset-variable``), each
        ``${`` that is no reference (``bad-reference``), and for values from the
        environment over ``MAX_FILE_BYTES`` characters in all (``too-large``).
    """
    environ = os.environ if environ is None else environ
    issues: list[Issue] = []
    budget = [MAX_FILE_BYTES]
    for path, plain in document.references.items():
        if any(path[:n] in document.overrides for n in range(len(path) + 1)):
            continue
        slot = _slot(document.data, path)
        if slot is None:
            continue
        container, key = slot
        value = container[key]
        if not isinstance(value, str) or "${" not in value:
            continue
        text = _substituted(value, path, environ, issues, budget)
        if text is None:
            continue
        if plain and _WHOLE.match(value):
            typed = typed_scalar(text)
            if isinstance(typed, OversizedInteger):
                issues.append(typed.issue(path))
                continue
            container[key] = typed
        else:
            container[key] = text
    return issues


def _slot(data: Any, path: Path) -> Optional[tuple[Any, Any]]:
    """The container and key of the value at ``path``, or ``None`` if it is gone."""
    if not path:
        return None
    for part in path[:-1]:
        data = _child(data, part)
        if data is None:
            return None
    last = path[-1]
    return (data, last) if _child(data, last) is not None else None


def _child(data: Any, part: Any) -> Any:
    if isinstance(data, dict) and not isinstance(part, int):
        return data.get(part)
    if isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
        return data[part]
    return None


def _substituted(value: str, path: Path, environ: Mapping[str, str], issues: list,
                 budget: list) -> Optional[str]:
    """``value`` with its references replaced, or ``None`` after reporting a problem."""
    parts: list[str] = []
    start = 0
    for match in _PIECE.finditer(value):
        parts.append(value[start:match.start()])
        start = match.end()
        piece = match.group(0)
        if piece == "$${":
            parts.append("${")
            continue
        name, default = match.group(1), match.group(2)
        if name is None or (default is not None and "${" in default):
            shown = safe_repr(value[match.start():match.start() + 40])
            issues.append(Issue("bad-reference", path, f"{shown} is no reference kerapipe "
                                f"reads: write {_FORMS}, or `$${{` for a literal `${{`. "
                                f"Received: {_last_name(path)}={safe_repr(value)}"))
            return None
        found = environ.get(name)
        if found is None and default is None:
            issues.append(Issue("unset-variable", path, f"the environment variable {name} "
                                f"is not set, and `${{env:{name}}}` gives no default. Set it "
                                f"(in CI: in the job's environment), or give a default: "
                                f"`${{env:{name}:VALUE}}`."))
            return None
        text = default if found is None else found
        budget[0] -= len(text)
        if budget[0] < 0:
            issues.append(Issue("too-large", path, f"the values of the environment variables "
                                f"the file refers to are over {MAX_FILE_BYTES} characters in "
                                f"all (the bound of one file); {name} makes it so."))
            return None
        parts.append(text)
    parts.append(value[start:])
    return "".join(parts)


def _last_name(path: Path) -> str:
    return next((str(p) for p in reversed(path) if isinstance(p, str)), "value")
