"""A safe, bounded YAML loader that remembers where every key and value came from.

PyYAML's loaders are not enough for a pipeline file:
- ``safe_load`` follows YAML 1.1, so ``1e-3`` is a string and ``yes``/``off`` are booleans;
- duplicate keys silently keep the last value, and ``1: a`` or ``true: b`` become keys
  that are no names;
- positions are thrown away, so an error cannot name a line;
- alias expansion ("billion laughs") and nesting depth are unbounded, and the C loader
  segfaults on deep nesting.

So we drive PyYAML's parser (libyaml's events through PyYAML's C extension; what libyaml
refuses, and where it is missing, the pure-Python scanner with YAML 1.2's tab and anchor
rules, ``spec/yaml_scanner.py``) into PyYAML's Python composer (no implicit tag
resolution at all; a later anchor of a name replaces the earlier, as YAML 1.2 says),
refuse explicit tags, bound depth while composing, and convert the node tree ourselves
with YAML 1.2 core-schema scalars (``spec/yaml_scalars.py``), counting every value
produced so that alias expansion is bounded before it can cost memory. A key is a name:
a string, or an integer read as its digits (a class index in ``train.class_weight``); a
key YAML reads as a float, boolean or null, or a list or mapping as a key, is reported
(``bad-key``). ``<<`` merge keys (YAML 1.1) copy the keys of a mapping, or of a list of
mappings, that the mapping does not set itself.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver

try:  # PyYAML's C extension (libyaml), in every PyYAML wheel on PyPI
    from yaml._yaml import CParser
except ImportError:  # a PyYAML built without it: the pure-Python parser
    CParser = None

from kerapipe.spec.document import Document
from kerapipe.spec.issues import Issue, Path, safe_repr
from kerapipe.spec.yaml_errors import explain as explain_yaml_error
from kerapipe.spec.yaml_errors import explain_character
from kerapipe.spec.yaml_scalars import (INT_LIMIT, MAX_INT_DIGITS, WORDS_NOT_TEXT,
                                        OversizedInteger, typed_scalar)
from kerapipe.spec.yaml_scanner import ANCHOR_END, Yaml12Scanner

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_INT_DIGITS", "MAX_VALUES", "Document",
           "LoadProblem", "OversizedInteger", "bound_plain_data", "load_document",
           "typed_scalar"]

MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_VALUES = 100_000  # after alias expansion


class LoadProblem(Exception):
    """A problem that stops loading; carries the issue to report."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message)
        self.issue = issue


class _Bounds(Composer):
    """PyYAML's composer with no tag resolution, explicit tags refused, anchors that may
    be redefined, and the number of nodes and their depth bounded (checked before each
    node is composed, so the recursion never goes deeper than ``MAX_DEPTH``)."""

    def compose_node(self, parent, index):  # noqa: D102 - PyYAML hook
        event = self.peek_event()
        if event.anchor is not None:
            self.check_anchor_name(event)
            if not isinstance(event, AliasEvent):
                # YAML 1.2: an alias refers to the latest anchor of its name before it, so
                # a second `&name` replaces the first (PyYAML refuses it).
                self.anchors.pop(event.anchor, None)
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

    def check_anchor_name(self, event) -> None:
        """Refuse (a ``YAMLError``) an anchor or alias name the parser read wrongly."""


class _PythonLoader(Reader, Yaml12Scanner, Parser, _Bounds, BaseResolver):
    """PyYAML's pure-Python parser, with YAML 1.2's tabs and anchor names, under the
    bounded composer: what libyaml refuses, and where PyYAML was built without it."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Yaml12Scanner.__init__(self)
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
            self.text = text
            self.depth = 0
            self.nodes = 0

        def check_anchor_name(self, event) -> None:  # noqa: D102 - see _Bounds
            # libyaml ends a name at the first character that is no letter, digit, '-' or
            # '_' and reads the rest as a value (`&an:chor x` is the anchor `an` on
            # ':chor x'); YAML 1.2 names run to a blank or flow indicator. The pure
            # scanner reads those (the marks' index counts characters, as `text` does).
            start = event.start_mark.index
            if not isinstance(event, AliasEvent):
                start = self.text.find("&" + event.anchor, start)
            end = start + 1 + len(event.anchor)
            if start >= 0 and end < len(self.text) and self.text[end] not in ANCHOR_END:
                raise yaml.YAMLError(f"libyaml cut the name {event.anchor!r} short")

# The loader ``load_document`` uses: libyaml's events where PyYAML has them.
_BoundedLoader = _CLoader if CParser is not None else _PythonLoader


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
            if "${" in node.value:  # an `${env:NAME}` reference, resolved by spec/compose.py
                self.doc.references.setdefault(path, _plain(node))
            value = typed_scalar(node.value) if _plain(node) else node.value
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
        merge = None  # the `<<` key's node and value, merged once the mapping's own are in
        for key_node, value_node in node.value:
            key_mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if isinstance(key_node, ScalarNode) and _plain(key_node) and key_node.value == "<<":
                if merge is None:
                    merge = (key_node, value_node)
                else:
                    self.doc.issues.append(Issue(
                        "duplicate-key", path + ("<<",),
                        f"the merge key '<<' appears twice in the same mapping (first at "
                        f"line {merge[0].start_mark.line + 1}); YAML would keep only the "
                        "last one. Merge several mappings with one key: `<<: [*a, *b]`.",
                        line=key_mark[0], column=key_mark[1]))
                continue
            key = self.key_of(key_node, path, key_mark)
            if key is None:
                continue
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
        if merge is not None:
            self.merge_into(result, merge[1], path)
        return result

    def key_of(self, node, path: Path, mark: tuple[int, int]) -> str | None:
        """The key ``node`` names, or ``None`` when it is no name (reported).

        A key is text: a string, or an integer read as its digits (a class index in
        ``train.class_weight``, a column named ``0``). YAML reads a plain ``true``,
        ``null``, ``1.5`` or an empty key as another type, and a list or mapping is no
        name at all; each is reported, not turned into text."""
        if not isinstance(node, ScalarNode):
            kind = "list" if isinstance(node, SequenceNode) else "mapping"
            self.doc.issues.append(Issue(
                "bad-key", path, f"a key is a name, but this one is a {kind} (a YAML complex "
                f"key). Write a plain name, such as `units`. Received: key=<a {kind}>",
                line=mark[0], column=mark[1]))
            return None
        if not _plain(node) or (node.value[:1].isalpha() and node.value not in WORDS_NOT_TEXT):
            return node.value  # the fast path: nearly every key is a word
        value = typed_scalar(node.value)
        if value is None or isinstance(value, (bool, float)):
            if not node.value:
                what = "is empty, which YAML reads as null. Write the name before the ':'"
            else:
                kind = ("null" if value is None else f"the boolean {node.value}"
                        if isinstance(value, bool) else f"the number {node.value}")
                what = (f"YAML reads {node.value!r} as {kind}. Quote it "
                        f"('{node.value}': ...) if the name is meant")
            self.doc.issues.append(Issue(
                "bad-key", path + (node.value,) if node.value else path,
                f"a key is a name (or a whole number, such as a class index), but {what}. "
                f"Received: key={node.value or 'null'}",
                line=mark[0], column=mark[1], at_key=True))
            return None
        return node.value

    def merge_into(self, result: dict, node, path: Path) -> None:
        """Add the keys a merge key's value gives (a mapping's, or a list of mappings')
        that ``result`` does not hold yet: the mapping's own keys win, then the first
        mapping of the list; each key stays at the position of the value it keeps."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            kept = {key: self.doc.key_marks[path + (key,)] for key in result
                    if path + (key,) in self.doc.key_marks}
            value = self.convert(source, path)  # its keys' marks land under ``path``
            self.doc.key_marks.update({path + (key,): mark for key, mark in kept.items()})
            if not isinstance(value, dict):
                mark = source.start_mark
                self.doc.issues.append(Issue(
                    "bad-merge-key", path + ("<<",),
                    "a merge key '<<' takes a mapping to copy keys from (usually an alias "
                    "of one, `<<: *defaults`) or a list of them (`<<: [*a, *b]`). Quote the "
                    f"key ('<<') if a key named << is meant. Received: <<={safe_repr(value)}",
                    line=mark.line + 1, column=mark.column + 1))
                continue
            for key, item in value.items():
                result.setdefault(key, item)


def _plain(node: ScalarNode) -> bool:
    """Whether a scalar is typed by the core schema: unquoted (a plain scalar's style is
    None from PyYAML's parser, "" from libyaml's) and without the `!` tag."""
    return not node.style and not node.non_specific


def bound_plain_data(data: Any, issues: list[Issue], path: Path = ()) -> Any:
    """Plain Python data (a dict given to the API, not YAML) held to the loader's rules.

    Each int over ``MAX_INT_DIGITS`` digits becomes an ``OversizedInteger``; an integer
    key is its digits, as in a file; any other key that is not a string is dropped; both
    are reported to ``issues``; nesting deeper than
    ``MAX_DEPTH`` (a dict that contains itself) is reported and cut. Containers that
    keep every rule are returned as they are (data from YAML always does).
    """
    if isinstance(data, int) and not isinstance(data, bool):
        if abs(data) < INT_LIMIT:
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
    same = True
    for key, value in data.items():
        if isinstance(key, int) and not isinstance(key, bool) and abs(key) < INT_LIMIT:
            # As in a file, where `{0: 1.0}` keys are their digits: class_weight={0: 1.0}
            # is what Keras's fit takes, and the API takes it too.
            key, same = str(key), False
            if key in data or key in result:
                issues.append(Issue("duplicate-key", path + (key,), f"the keys {key} and "
                                    f"'{key}' are the same name; keep one."))
                continue
        elif not isinstance(key, str):
            issues.append(Issue("bad-key", path, f"a key must be a string (a plain name). "
                                f"Received: key={safe_repr(key)} ({type(key).__name__})"))
            same = False
            continue
        result[key] = bound_plain_data(value, issues, path + (key,))
        same = same and result[key] is value
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
    except yaml.reader.ReaderError as err:
        problem = explain_character(err, text)
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
