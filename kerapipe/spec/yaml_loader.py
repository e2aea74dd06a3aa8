"""A safe, bounded YAML loader that remembers where every key and value came from.

PyYAML's loaders are not enough for a pipeline file:
- ``safe_load`` follows YAML 1.1, so ``1e-3`` is a string and ``yes``/``off`` are booleans;
- duplicate keys silently keep the last value;
- positions are thrown away, so an error cannot name a line;
- alias expansion ("billion laughs") and nesting depth are unbounded, and the C loader
  segfaults on deep nesting.

So we drive PyYAML's parser (libyaml's events through PyYAML's C extension, the
pure-Python scanner and parser where it is missing) into PyYAML's Python composer (no
implicit tag resolution at all), refuse explicit tags, bound depth while composing, and
convert the node tree ourselves with YAML 1.2 core-schema scalars, counting every value
produced so that alias expansion is bounded before it can cost memory. An integer scalar longer than
``MAX_INT_DIGITS`` is never converted (Python refuses to read or print one over 4,300
digits, and no key takes one): it is reported at its position and stands in the data as
an ``OversizedInteger``, which the typed layer skips.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

try:  # PyYAML's C extension (libyaml), in every PyYAML wheel on PyPI
    from yaml._yaml import CParser
except ImportError:  # a PyYAML built without it: the pure-Python parser
    CParser = None

from kerapipe.spec.issues import Issue, Path, safe_repr
from kerapipe.spec.yaml_errors import explain as explain_yaml_error

MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_VALUES = 100_000  # after alias expansion
# More digits than the largest float (309), far fewer than Python's 4,300-digit limit on
# converting an int to or from text: every message can still print the value.
MAX_INT_DIGITS = 400
_INT_LIMIT = 10 ** MAX_INT_DIGITS

_NULLS = {"", "~", "null", "Null", "NULL"}
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_OCT = re.compile(r"0o[0-7]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
# The YAML 1.2 core schema's: [-+]?(.inf|.Inf|.INF) and .nan|.NaN|.NAN.
_SPECIAL_FLOATS = {**{sign + inf: float(sign + "inf") for sign in ("", "+", "-")
                      for inf in (".inf", ".Inf", ".INF")},
                   ".nan": float("nan"), ".NaN": float("nan"), ".NAN": float("nan")}


class LoadProblem(Exception):
    """A problem that stops loading; carries the issue to report."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message)
        self.issue = issue


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
        if value >= _INT_LIMIT:
            oversized = _oversized(text)
            oversized.digits = int(value.bit_length() * 0.30103) + 1  # decimal digits
            return oversized
        return value
    if _FLOAT.match(text):
        return float(text)
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    return text


class _Bounds(Composer):
    """PyYAML's composer with no tag resolution, explicit tags refused, and the number of
    nodes and their depth bounded (checked before each node is composed, so the
    recursion never goes deeper than ``MAX_DEPTH``)."""

    def compose_node(self, parent, index):  # noqa: D102 - PyYAML hook
        event = self.peek_event()
        if not isinstance(event, AliasEvent) and event.tag not in (None, "!"):
            mark = event.start_mark
            raise LoadProblem(Issue(
                "forbidden-tag", (),
                f"explicit YAML tags are not allowed in a pipeline file (it never runs code "
                f"or builds objects). Remove the tag. Received: tag={event.tag!r}",
                line=mark.line + 1, column=mark.column + 1))
        self.nodes += 1
        if self.nodes > MAX_VALUES:
            mark = event.start_mark
            raise LoadProblem(Issue(
                "too-large", (), f"the file holds more than {MAX_VALUES} values; a pipeline "
                "file never needs that many.", line=mark.line + 1, column=mark.column + 1))
        self.depth += 1
        if self.depth > MAX_DEPTH:
            mark = event.start_mark
            raise LoadProblem(Issue(
                "too-deep", (),
                f"nesting is deeper than {MAX_DEPTH} levels; a pipeline file never needs that. "
                "Check for unbalanced '[' or '{'.",
                line=mark.line + 1, column=mark.column + 1))
        try:
            return Composer.compose_node(self, parent, index)
        finally:
            self.depth -= 1

    def compose_scalar_node(self, anchor):  # noqa: D102 - PyYAML hook
        # `! 12`: the non-specific tag makes a plain scalar a string (YAML 1.2), which the
        # node's style alone does not say.
        non_specific = self.peek_event().tag == "!"
        node = Composer.compose_scalar_node(self, anchor)
        node.non_specific = non_specific
        return node


class _PythonLoader(Reader, Scanner, Parser, _Bounds, BaseResolver):
    """PyYAML's pure-Python scanner and parser under the bounded composer (the fallback
    where PyYAML was built without libyaml)."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        BaseResolver.__init__(self)
        self.depth = 0
        self.nodes = 0


if CParser is not None:
    class _CLoader(_Bounds, CParser, BaseResolver):
        """libyaml's parser (PyYAML's C extension: its events, 5-9x faster than the
        pure-Python scanner) under the same bounded composer; the events' marks are the
        same lines and columns. libyaml's own composer is not used: it recurses without a
        bound."""

        def __init__(self, text: str) -> None:
            Reader(text)  # the pure reader's character check: the same refusals, positions
            CParser.__init__(self, text)
            Composer.__init__(self)
            BaseResolver.__init__(self)
            self.depth = 0
            self.nodes = 0

# The loader ``load_document`` uses: libyaml's events where PyYAML has them.
_BoundedLoader = _CLoader if CParser is not None else _PythonLoader


@dataclass
class Document:
    """Plain Python data loaded from YAML, with the position of every key and value.

    Args:
        data: the loaded value (dicts, lists, str, int, float, bool, None).
        file: the file name used in messages.
        value_marks: ``path -> (line, column)`` of each value, 1-based.
        key_marks: ``path -> (line, column)`` of each mapping key, 1-based.
        issues: non-fatal problems found while loading (duplicate keys, ...).
        overrides: ``path -> "--set ..."`` for values set on the command line, and for
            mappings a ``--set`` created to hold its value.
    """

    data: Any
    file: str = "<string>"
    value_marks: dict = field(default_factory=dict)
    key_marks: dict = field(default_factory=dict)
    issues: list = field(default_factory=list)
    overrides: dict = field(default_factory=dict)

    def position(self, path: Path, at_key: bool = False) -> tuple[int, int]:
        """Position of ``path``, or of its closest enclosing value that has one."""
        path = tuple(path)
        if at_key and path in self.key_marks:
            return self.key_marks[path]
        while path:
            if path in self.value_marks:
                return self.value_marks[path]
            if path in self.key_marks:
                return self.key_marks[path]
            path = path[:-1]
        return self.value_marks.get((), (1, 1))

    def override_of(self, path: Path) -> str | None:
        """The ``--set`` an issue at ``path`` is about, if any.

        That is the ``--set`` of the value at ``path`` or of a value around it (also a
        mapping the ``--set`` created), or else of a value inside it: an issue on
        ``data.split`` after ``--set data.split.validation=0.9`` is the ``--set``'s.
        """
        path = tuple(path)
        for length in range(len(path), 0, -1):
            if path[:length] in self.overrides:
                return self.overrides[path[:length]]
        if path:
            for set_path, origin in self.overrides.items():
                if set_path[:len(path)] == path:
                    return origin
        return None

    def locate(self, issue: Issue) -> Issue:
        """Fill in the file, line and column of an issue from its path.

        An issue about a ``--set`` value (see ``override_of``) is located at the
        ``--set``: its file is ``--set KEY.PATH=VALUE`` and its line 0.
        """
        origin = self.override_of(issue.path)
        if origin is not None:
            issue.file, issue.line, issue.column = origin, 0, 0
            return issue
        issue.file = self.file
        if not issue.line:
            issue.line, issue.column = self.position(issue.path, issue.at_key)
        return issue


class _Converter:
    """Node tree -> plain data, recording positions and bounding alias expansion."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.values = 0
        self.seen: set[int] = set()
        self.ancestors: set[int] = set()
        self.expanded_alias = False

    def convert(self, node, path: Path) -> Any:
        mark = (node.start_mark.line + 1, node.start_mark.column + 1)
        self.values += 1
        if id(node) in self.seen and not isinstance(node, ScalarNode):
            self.expanded_alias = True
        self.seen.add(id(node))
        if self.values > MAX_VALUES:  # only aliases can get here: the composer counted nodes
            raise LoadProblem(Issue("alias-bomb", (), f"alias expansion produces more than "
                                    f"{MAX_VALUES} values; a pipeline file never needs that "
                                    "many. Remove the repeated aliases.", line=1, column=1))
        if isinstance(node, ScalarNode):
            self.doc.value_marks.setdefault(path, mark)
            # a plain scalar's style: None from PyYAML's parser, "" from libyaml's
            plain = not node.style and not node.non_specific
            value = typed_scalar(node.value) if plain else node.value
            if isinstance(value, OversizedInteger):
                self.doc.issues.append(value.issue(path, *mark))
            return value
        if id(node) in self.ancestors:
            raise LoadProblem(Issue("alias-bomb", (), "an alias refers to a value that contains "
                                    "it, which would never end. Remove the self-reference.",
                                    line=mark[0], column=mark[1]))
        if len(self.ancestors) >= MAX_DEPTH:  # aliases can nest deeper than the text shows
            raise LoadProblem(Issue("too-deep", (), f"nesting (after alias expansion) is deeper "
                                    f"than {MAX_DEPTH} levels; a pipeline file never needs that.",
                                    line=mark[0], column=mark[1]))
        self.doc.value_marks.setdefault(path, mark)
        self.ancestors.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.convert(child, path + (index,))
                        for index, child in enumerate(node.value)]
            assert isinstance(node, MappingNode)  # the composer yields no other node kind
            return self.convert_mapping(node, path)
        finally:
            self.ancestors.discard(id(node))

    def convert_mapping(self, node: MappingNode, path: Path) -> dict:
        result: dict = {}
        merged: dict = {}
        for key_node, value_node in node.value:
            key_mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if isinstance(key_node, ScalarNode) and not key_node.style and key_node.value == "<<":
                merged.update(self.convert_merge(value_node, path))
                continue
            if not isinstance(key_node, ScalarNode):
                self.doc.issues.append(Issue("bad-key", path, "a key must be a plain name, not a list "
                                             "or mapping", line=key_mark[0], column=key_mark[1]))
                continue
            key = key_node.value
            if key in result:
                first = self.doc.key_marks[path + (key,)]
                self.doc.issues.append(Issue(
                    "duplicate-key", path + (key,),
                    f"key '{key}' appears twice in the same mapping (first at line {first[0]}); "
                    "YAML would silently keep only the last one. Remove one of them.",
                    line=key_mark[0], column=key_mark[1]))
                continue
            self.doc.key_marks[path + (key,)] = key_mark
            result[key] = self.convert(value_node, path + (key,))
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def convert_merge(self, node, path: Path) -> dict:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict = {}
        for source in sources:
            value = self.convert(source, path)
            if not isinstance(value, dict):
                raise LoadProblem(Issue("yaml-syntax", path, "a merge key '<<' needs a mapping or a "
                                        "list of mappings", line=node.start_mark.line + 1,
                                        column=node.start_mark.column + 1))
            for key, item in value.items():
                merged.setdefault(key, item)
        return merged


def bound_plain_data(data: Any, issues: list[Issue], path: Path = ()) -> Any:
    """Plain Python data (a dict given to the API, not YAML) held to the loader's rules.

    Each int over ``MAX_INT_DIGITS`` digits becomes an ``OversizedInteger`` and a key that
    is not a string is dropped, both reported to ``issues``; nesting deeper than
    ``MAX_DEPTH`` (a dict that contains itself) is reported and cut. Containers that
    keep every rule are returned as they are (data from YAML always does).
    """
    if isinstance(data, int) and not isinstance(data, bool):
        if abs(data) < _INT_LIMIT:
            return data
        digits = int(abs(data).bit_length() * 0.30103) + 1
        oversized = OversizedInteger(digits, f"<an integer of about {digits} digits>")
        issues.append(oversized.issue(path))
        return oversized
    if not isinstance(data, (dict, list)):
        return data
    if len(path) >= MAX_DEPTH:
        issues.append(Issue("too-deep", path, f"nesting is deeper than {MAX_DEPTH} levels; a "
                            "pipeline never needs that (does a dict contain itself?)."))
        return None
    if isinstance(data, list):
        bounded = [bound_plain_data(value, issues, path + (index,))
                   for index, value in enumerate(data)]
        return data if all(new is old for new, old in zip(bounded, data)) else bounded
    result: dict = {}
    for key, value in data.items():
        if not isinstance(key, str):
            issues.append(Issue("bad-key", path, f"a key must be a string (a plain name). "
                                f"Received: key={safe_repr(key)} ({type(key).__name__})"))
            continue
        result[key] = bound_plain_data(value, issues, path + (key,))
    same = len(result) == len(data) and all(result[k] is v for k, v in data.items())
    return data if same else result


def _compose(loader_class: type, text: str) -> Any:
    """The node tree of the one document in ``text`` (``None`` for none)."""
    loader = loader_class(text)  # the pure reader checks the characters here
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def load_document(text: str, file: str = "<string>") -> Document:
    """Load one YAML document safely, keeping positions.

    Args:
        text: the YAML source.
        file: the name used in messages. Defaults to ``<string>``.

    Returns:
        The loaded ``Document``; its ``issues`` hold non-fatal problems.

    Raises:
        LoadProblem: the text is too large, malformed, hostile or empty.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        raise LoadProblem(Issue("too-large", (), f"the file is {size} bytes; a pipeline file may be "
                                f"at most {MAX_FILE_BYTES} bytes.", file=file, line=1, column=1))
    try:
        try:
            node = _compose(_BoundedLoader, text)
        except yaml.YAMLError:
            if _BoundedLoader is _PythonLoader:
                raise
            # What libyaml refuses is said as the pure-Python parser says it (its
            # messages, its positions, and the bounds it meets first, e.g. too-deep in a
            # file of brackets); what it accepts, libyaml may refuse (a tab after a value).
            node = _compose(_PythonLoader, text)
    except LoadProblem as problem:
        problem.issue.file = file
        raise
    except yaml.MarkedYAMLError as err:
        problem = explain_yaml_error(err, text)
        raise LoadProblem(Issue(problem.code, (), problem.message, file=file,
                                line=problem.line, column=problem.column)) from err
    except yaml.YAMLError as err:
        raise LoadProblem(Issue("yaml-syntax", (), f"invalid YAML: {err}", file=file,
                                line=1, column=1)) from err
    if node is None:
        raise LoadProblem(Issue("empty-file", (), "the file holds no YAML document; a pipeline "
                                "starts with 'kerapipe: 1'", file=file, line=1, column=1))
    doc = Document(data=None, file=file)
    try:
        doc.data = _Converter(doc).convert(node, ())
    except LoadProblem as problem:
        problem.issue.file = file
        raise
    for issue in doc.issues:
        issue.file = file
    return doc
