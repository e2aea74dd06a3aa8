"""Keras docstrings read for the catalogue: a class's summary and its ``Args:`` entries.

Used by ``gen_keras_catalog.py`` twice: the argument texts are where the argument types
are parsed from (``catalog_arg_types.py``), and the summaries and texts become
``kerapipe/spec/keras_docs.json`` (the JSON Schema's hover text; ``validate`` never
loads it).

Keras's docstrings are regular (Google style): a first paragraph, then sections such as
``Args:``, whose entries are ``name: text`` with the text's continuation lines indented
deeper. An argument a class does not document is looked up in its parents' docstrings
(``name``, ``dtype`` and ``trainable`` are documented on ``keras.layers.Layer``).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

MAX_CHARS = 300  # per summary and per argument text: hover text, not the manual
_SECTION = re.compile(r"^(Args|Arguments|Parameters)\s*:\s*$")
_ENTRY = re.compile(r"^(\*{0,2}[A-Za-z_]\w*)\s*(\([^)]*\))?\s*:\s*(.*)$")


def _clean(doc: str | None) -> list[str]:
    return inspect.cleandoc(doc).splitlines() if doc else []


def docstring_args(doc: str | None, names: frozenset = frozenset()) -> dict[str, str]:
    """The ``Args:`` entries of one docstring: argument name -> its text (one line).

    ``names``: the arguments the documented callable takes; a line ``name: ...`` of one
    of them starts its entry even when indented as a continuation (Adamax's docstring
    inserts the base optimizer's arguments there)."""
    lines = _clean(doc)
    found: dict[str, str] = {}
    i = 0
    while i < len(lines):
        if not _SECTION.match(lines[i].strip()):
            i += 1
            continue
        section_indent = len(lines[i]) - len(lines[i].lstrip())
        i += 1
        entry_indent = None
        current = None
        while i < len(lines):
            line = lines[i]
            stripped = line.strip()
            indent = len(line) - len(line.lstrip())
            if stripped and indent <= section_indent:
                break  # the next section (`Returns:`, `Input shape:`, `Example:`)
            if stripped:
                if entry_indent is None:
                    entry_indent = indent
                # An entry starts at the entries' indentation (Keras's texts are off by
                # one space at times: Conv3DTranspose's output_padding); its text's
                # continuation lines are indented deeper (four spaces).
                near = entry_indent <= indent <= entry_indent + 2
                match = _ENTRY.match(stripped)
                if match and not near and match.group(1) not in names:
                    match = None
                if match:
                    current = match.group(1).lstrip("*")
                    found.setdefault(current, match.group(3))
                elif current is not None and indent > entry_indent:
                    found[current] = (found[current] + " " + stripped).strip()
            i += 1
    return {name: text for name, text in found.items() if text}


def summary(doc: str | None) -> str:
    """The docstring's first paragraph, on one line, capped."""
    paragraph = []
    for line in _clean(doc):
        if not line.strip():
            if paragraph:
                break
            continue
        if line.strip().startswith((">>>", "```")):
            break
        paragraph.append(line.strip())
    return cap(" ".join(paragraph))


def cap(text: str) -> str:
    """``text`` without doctest examples or code fences, at most ``MAX_CHARS`` long
    (cut at a word, marked with an ellipsis)."""
    text = re.sub(r"```.*?(```|$)", "", text).strip()
    text = text.split(">>>", 1)[0].strip()
    text = re.sub(r"\s+", " ", text)
    if len(text) <= MAX_CHARS:
        return text
    return text[:MAX_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;:") + "\u2026"


def class_args(cls: type) -> dict[str, str]:
    """Every argument text documented for ``cls``: its own docstring first, then its
    ``__init__``'s, then its parents' (the first one that documents a name wins)."""
    texts: dict[str, str] = {}
    for klass in inspect.getmro(cls):
        if klass is object:
            continue
        init = klass.__dict__.get("__init__")
        names = frozenset(inspect.signature(init).parameters) if inspect.isfunction(init) \
            else frozenset()
        for doc in (klass.__dict__.get("__doc__"), getattr(init, "__doc__", None)):
            for name, text in docstring_args(doc, names).items():
                texts.setdefault(name, text)
    return texts


def function_args(fn: Any) -> dict[str, str]:
    return docstring_args(fn.__doc__, frozenset(inspect.signature(fn).parameters))


def entry_docs(doc: str | None, texts: dict[str, str], params: list[str]) -> dict[str, Any]:
    """One class's entry of keras_docs.json: summary and the texts of its arguments."""
    return {"summary": summary(doc),
            "args": {name: cap(texts[name]) for name in params if name in texts}}
