"""What the YAML parser refused, said in kerapipe's words: an issue code, a message, a place.

``spec/yaml_loader.py`` parses; when PyYAML's pure-Python parser refuses the text, its
error comes here to be explained (what, where, the fix) for a pipeline author. PyYAML
says what its grammar expected ("expected <block end>, but found '?'"); an author needs
to hear that a key is indented to the wrong column, that a `[` is never closed, or that
a tab indents a line. Each rule below reads the parser's problem, its two marks (where
it gave up, and where the construct it was reading began) and the text, and names the
place the author must fix: the `[` or quote that was opened, the line that is indented
wrong. What no rule recognises keeps PyYAML's own words (``yaml-syntax``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

import yaml
import yaml.reader

# The line breaks PyYAML counts (its marks' line numbers follow these, not str.splitlines).
# Patterns stay strings: `re` compiles (and caches) them on the first refusal, not at import.
_BREAKS = "\r\n|[\r\n\x85\u2028\u2029]"
_GOT = r"(?:but (?:got|found) )'(.*)'$"
_ALIAS = r"found undefined alias '(.*)'"
_CLOSERS = {"[": "]", "{": "}"}


@dataclass(frozen=True)
class YamlProblem:
    """A refusal of the parser, explained: the issue code, the message, 1-based place."""

    code: str
    message: str
    line: int
    column: int


class _Refusal:
    """The parser's refusal as the rules read it: words, 1-based places, the lines.

    A plain class: a dataclass costs a millisecond of import time on the validate path."""

    __slots__ = ("problem", "context", "at", "opened", "lines")

    def __init__(self, problem: str, context: str, at: tuple[int, int],
                 opened: Optional[tuple[int, int]], lines: list[str]) -> None:
        self.problem, self.context, self.lines = problem, context, lines
        self.at = at          # where the parser gave up
        self.opened = opened  # where the construct it was reading began

    def line(self, number: int) -> str:
        return self.lines[number - 1] if 1 <= number <= len(self.lines) else ""

    def char(self, place: tuple[int, int]) -> str:
        text = self.line(place[0])
        return text[place[1] - 1] if 0 < place[1] <= len(text) else ""

    def before(self, place: tuple[int, int]) -> str:
        """The text of ``place``'s line before it."""
        return self.line(place[0])[:place[1] - 1]

    def found(self) -> str:
        match = re.search(_GOT, self.problem)
        return match.group(1) if match else ""


def explain(err: yaml.MarkedYAMLError, text: str) -> YamlProblem:
    """The issue the pure-Python parser's refusal ``err`` of ``text`` is reported as.

    Each rule recognises one way of writing a file wrong and says it in kerapipe's
    words at the place to fix; PyYAML's own words are the last resort."""
    refusal = _Refusal(str(err.problem or ""), str(err.context or ""),
                       _place(err.problem_mark or err.context_mark) or (1, 1),
                       _place(err.context_mark), re.split(_BREAKS, text))
    for rule in _RULES:
        problem = rule(refusal)
        if problem is not None:
            return problem
    message = "; ".join(part for part in (refusal.context, refusal.problem) if part)
    return YamlProblem("yaml-syntax", f"invalid YAML: {message}", *refusal.at)


def explain_character(err: yaml.reader.ReaderError, text: str) -> YamlProblem:
    """A character YAML does not allow in a file (a control character, a lone surrogate),
    at its place: PyYAML says it with a character offset and a `<unicode string>`."""
    position = max(0, min(int(err.position), len(text)))
    lines = re.split(_BREAKS, text[:position])
    code = f"U+{err.character:04X}" if isinstance(err.character, int) else repr(err.character)
    return YamlProblem("yaml-syntax", (
        f"the character {code} stands here, and YAML allows no control characters in a file "
        "(tabs and line breaks aside). Remove it; inside a double-quoted value, an escape "
        f"such as \"\\x{err.character:02x}\" writes it.") if isinstance(err.character, int)
        and err.character < 0x100 else (
        f"the character {code} stands here, and YAML does not allow it in a file. Remove "
        "it."), len(lines), len(lines[-1]) + 1)


def _place(mark: Optional[yaml.Mark]) -> Optional[tuple[int, int]]:
    return (mark.line + 1, mark.column + 1) if mark is not None else None


def _document(r: _Refusal) -> Optional[YamlProblem]:
    # Two an author meets without any syntax error: a second document, `...` first.
    if "found another document" in r.problem:
        return YamlProblem("multiple-documents", (
            "a second YAML document starts here (`---`), but a pipeline file is one "
            "document. Remove this `---` and what follows it, or move that into a file of "
            "its own."), *r.at)
    if "'<document end>'" in r.problem:
        return YamlProblem("document-end-marker", (
            "`...` (YAML's end-of-document marker) stands where the pipeline should begin; "
            "a pipeline file is one document that starts with `kerapipe: 1`. Remove the "
            "`...` line (it may only follow the document)."), *r.at)
    return None


def _tab(r: _Refusal) -> Optional[YamlProblem]:
    if "cannot start any token" not in r.problem or r.char(r.at) != "\t":
        return None
    if not r.before(r.at).strip(" \t"):  # the tab is (part of) the line's indentation
        return YamlProblem("bad-indentation", "this line is indented with a tab, but YAML "
                           "indents with spaces only. Replace the tab with spaces (as many "
                           "as the lines around it use).", r.at[0], 1)
    return _tab_inside(*r.at)


def _tab_inside(line: int, column: int) -> YamlProblem:
    return YamlProblem("yaml-syntax", "a tab stands here, where YAML allows only spaces "
                       "(after `-`, `?` or a key's `:`). Replace it with a space.", line, column)


def _reserved_character(r: _Refusal) -> Optional[YamlProblem]:
    if "cannot start any token" not in r.problem or not r.char(r.at):
        return None
    value = re.split(r"[,\]}]| #", r.line(r.at[0])[r.at[1] - 1:])[0].rstrip()
    example = f' (`"{value}"`)' if not re.search(r'["\\`]', value) else ""
    char = f"`{r.char(r.at)}`" if r.char(r.at) != "`" else "'`'"
    return YamlProblem("yaml-syntax", f"{char} cannot start a plain YAML value "
                       f"(YAML reserves it). Put the value in quotes{example}.", *r.at)


def _unclosed_quote(r: _Refusal) -> Optional[YamlProblem]:
    if "quoted scalar" not in r.context or r.opened is None or "unexpected" not in r.problem:
        return None
    quote = r.char(r.opened) or '"'
    end = "a `---` or `...` line" if "document separator" in r.problem else "the end of the file"
    return YamlProblem("yaml-syntax", f"this `{quote}` opens a quoted value that is never "
                       f"closed: YAML read on to {end} looking for the closing `{quote}`. Add "
                       f"the closing `{quote}` where the value ends.", *r.opened)


def _unknown_escape(r: _Refusal) -> Optional[YamlProblem]:
    match = re.search(r"found unknown escape character '(.*)'", r.problem)
    if match is None:
        return None
    char = match.group(1)
    return YamlProblem("yaml-syntax", f"`\\{char}` is not an escape YAML knows inside double "
                       f"quotes. Write `\\\\` for a backslash, or use single quotes, inside "
                       f"which a backslash is just a backslash.", *r.at)


def _unclosed_flow(r: _Refusal) -> Optional[YamlProblem]:
    if "expected ',' or" not in r.problem or r.opened is None:
        return None
    bracket = r.char(r.opened) if r.char(r.opened) in _CLOSERS else (
        "[" if "sequence" in r.context else "{")
    close, found = _CLOSERS[bracket], r.found()
    if found == "<stream end>" or r.at[0] != r.opened[0]:
        reached = "the end of the file" if found == "<stream end>" else f"line {r.at[0]}"
        what = "list" if bracket == "[" else "mapping"
        return YamlProblem("yaml-syntax", f"this `{bracket}` opens a {what} that is never "
                           f"closed with `{close}` (YAML reached {reached} still inside it). "
                           f"Add the `{close}` where the {what} ends.", *r.opened)
    if found in ("]", "}"):  # the other bracket's closer
        return YamlProblem("yaml-syntax", f"this `{found}` does not close the `{bracket}` opened "
                           f"at column {r.opened[1]}: that one closes with `{close}`. Remove the "
                           f"`{found}`, or write `{close}`.", *r.at)
    words = r.before(r.at).split()
    example = (f" (`{words[-2]}, {words[-1]}`)" if len(words) >= 2 and found == ":"
               and not words[-2].endswith((":", ",", bracket)) else "")
    return YamlProblem("yaml-syntax", f"YAML expected `,` or `{close}` here, inside the "
                       f"`{bracket}` opened at column {r.opened[1]}: entries are separated by "
                       f"commas. Add the missing comma{example}, or quote a value that holds "
                       f"`: `.", *r.at)


def _value_colon(r: _Refusal) -> Optional[YamlProblem]:
    if "mapping values are not allowed" not in r.problem:
        return None
    text = r.line(r.at[0])
    head = r.before(r.at)
    if "\t" in head.lstrip(" "):  # `-<TAB>key: value`: a tab before a key (YAML 1.2 refuses)
        return _tab_inside(r.at[0], head.index("\t", len(head) - len(head.lstrip(" "))) + 1)
    if ": " in head or head.rstrip().endswith(":"):  # a second `: ` after the key's own
        key, _, value = text.strip().partition(": ")
        full = value.split(" #")[0].strip()
        example = f' (`{key}: "{full}"`)' if '"' not in full else ""
        return YamlProblem("yaml-syntax", "a second `: ` on this line: a value cannot start a "
                           f"mapping on its key's line. Quote the value if the colon belongs "
                           f"to it{example}, or put each key on a line of its own.", *r.at)
    above = _content_line_above(r, r.at[0])
    key = head.strip()
    start = (r.at[0], len(text) - len(text.lstrip(" ")) + 1)
    if above is None:
        return None
    if _indent(text) > _indent(r.line(above)):
        return YamlProblem("bad-indentation", f"this line is indented deeper than line "
                           f"{above}, whose key already has a value, so YAML reads `{key}` as "
                           f"more of that value. Indent `{key}:` like the other keys of its "
                           "mapping.", *start)
    return YamlProblem("yaml-syntax", f"YAML reads this line as more of the value that begins "
                       f"above it (line {above} has no `key: ` of its own), so `{key}:` cannot "
                       f"start a key here. Write line {above} as `key: value` (a space after "
                       "the colon), or remove it.", *start)


def _missing_colon(r: _Refusal) -> Optional[YamlProblem]:
    if "expected ':'" not in r.problem or r.opened is None:
        return None
    text = r.line(r.opened[0])
    words = text[r.opened[1] - 1:].split(" #")[0].strip()
    above = _content_line_above(r, r.opened[0])
    if above is not None and r.line(above).rstrip().endswith(":") \
            and _indent(text) <= _indent(r.line(above)):
        key = r.line(above).strip()
        return YamlProblem("bad-indentation", f"`{words}` is not indented under `{key}` "
                           f"(line {above}), so YAML expects a key here. Indent the value "
                           f"deeper than its key, or write it on the key's line.", *r.opened)
    squeezed = re.search(r"(\w):(\S)", words)
    fix = (f"YAML needs a space after the colon: `{words[:squeezed.end(1)]}: "
           f"{words[squeezed.start(2):]}`." if squeezed else
           "Write it as `key: value` (a space after the colon), or indent it under its key.")
    return YamlProblem("yaml-syntax", f"`{words}` stands where a key is expected, but no "
                       f"`: ` follows it. {fix}", *r.opened)


def _indentation(r: _Refusal) -> Optional[YamlProblem]:
    block = "while parsing a block" in r.context
    if not (block and ("expected <block end>" in r.problem or "did not find expected" in r.problem)):
        return None
    char, head = r.char(r.at), r.before(r.at).rstrip()
    if char in "]}" and char:
        opener = "[" if char == "]" else "{"
        return YamlProblem("yaml-syntax", f"this `{char}` closes nothing: no `{opener}` is open "
                           f"here. Remove it, or add the missing `{opener}`.", *r.at)
    if r.found() == "<scalar>" and head.endswith(("'", '"', "]", "}")):
        return YamlProblem("yaml-syntax", f"text follows the closing `{head[-1]}` of this "
                           "value. Put the whole value inside the quotes or brackets, or "
                           "remove the text after them.", *r.at)
    columns = _open_columns(r, r.at[0])
    if char == "-":
        dashes = sorted({dash for _, dash in columns if dash}, reverse=True)
        lists = f" (the items above start at column {_either(dashes)})" if dashes else ""
        return YamlProblem("bad-indentation", f"this list item (`- `) is indented to column "
                           f"{r.at[1]}, where no list is open{lists}. Start the items of one "
                           "list in the same column, or remove the `- ` if this is a key.",
                           *r.at)
    keys = sorted({key for key, _ in columns if key != r.at[1]}, reverse=True)
    name = r.line(r.at[0])[r.at[1] - 1:].split(":")[0].strip()
    where = f" (the keys above start at column {_either(keys)})" if keys else ""
    what = f"`{name}:` is" if name else "this line is"
    return YamlProblem("bad-indentation", f"{what} indented to column {r.at[1]}, which lines "
                       f"it up with none of the mappings open above it{where}. Indent it "
                       "exactly like the other keys of its mapping.", *r.at)


def _undefined_alias(r: _Refusal) -> Optional[YamlProblem]:
    match = re.search(_ALIAS, r.problem)
    if match is None:
        return None
    name = match.group(1)
    return YamlProblem("yaml-syntax", f"`*{name}` refers to an anchor `&{name}` that is not "
                       f"defined before it. Define `&{name}` on a value above this one, or quote "
                       f'the value if the `*` belongs to it (`"*{name}"`).', *r.at)


def _anchor_name(r: _Refusal) -> Optional[YamlProblem]:
    if not re.search(r"while scanning an? (anchor|alias)", r.context) or r.opened is None:
        return None
    sign = r.char(r.opened) or "&"
    return YamlProblem("yaml-syntax", f"`{sign}` starts an {'anchor' if sign == '&' else 'alias'} "
                       "but no name follows it. Write a name right after it, or quote the "
                       f"value if the `{sign}` belongs to it.", *r.opened)


def _directive(r: _Refusal) -> Optional[YamlProblem]:
    if "while scanning a directive" not in r.context or r.opened is None:
        return None
    return YamlProblem("yaml-syntax", "`%` at the start of a line begins a YAML directive "
                       "(`%YAML 1.2`), which a pipeline file never needs. Quote the key if "
                       "the `%` belongs to it, or remove the line.", *r.opened)


def _block_scalar_header(r: _Refusal) -> Optional[YamlProblem]:
    if "while scanning a block scalar" not in r.context or r.opened is None:
        return None
    sign = r.char(r.opened) or "|"
    return YamlProblem("yaml-syntax", f"`{sign}` starts a block of text, so only `+`, `-`, an "
                       "indentation digit or a comment may follow it on its line; the text "
                       "itself goes on the lines below, indented. Move the text down, or quote "
                       f"the value if the `{sign}` belongs to it.", *r.opened)


def _flow_item_dash(r: _Refusal) -> Optional[YamlProblem]:
    if "flow" not in r.context or r.found() != "-":
        return None
    return YamlProblem("yaml-syntax", "a `- ` list item cannot stand inside `[ ]` or `{ }`; "
                       "there, items are separated by commas (`[a, b]`). Remove the `- `, or "
                       "write the list as lines of `- item` without brackets.", *r.at)


def _missing_value(r: _Refusal) -> Optional[YamlProblem]:
    if "expected the node content" not in r.problem or not r.found():
        return None
    found = r.found()
    return YamlProblem("yaml-syntax", f"YAML expected a value here, but `{found}` stands in "
                       f"its place. Remove the stray `{found}`, or write the value (quoted if "
                       f"it holds `{found}`).", *r.at)


def _entry_on_a_key_line(r: _Refusal) -> Optional[YamlProblem]:
    if "sequence entries are not allowed" not in r.problem:
        return None
    return YamlProblem("yaml-syntax", "a `- ` list item cannot start here, after other text "
                       "on its line. Start the list on the next line, indented under its key, "
                       "or quote the value if the `-` belongs to it.", *r.at)


def _question_mark(r: _Refusal) -> Optional[YamlProblem]:
    if "mapping keys are not allowed" not in r.problem:
        return None
    return YamlProblem("yaml-syntax", "`? ` (YAML's marker of a complex key) cannot stand here. "
                       "Remove it, or quote the value if the `?` belongs to it.", *r.at)


def _tag(r: _Refusal) -> Optional[YamlProblem]:
    if not re.search(r"while (parsing|scanning) a tag", r.context) or r.opened is None:
        return None
    return YamlProblem("yaml-syntax", "`!` starts a YAML tag, and a pipeline file uses none. "
                       "Remove the `!`, or quote the value if it belongs to it.", *r.opened)


def _after_the_document(r: _Refusal) -> Optional[YamlProblem]:
    if "expected '<document start>'" not in r.problem or r.found() == "<stream end>":
        return None  # (a `%` directive last in the file: PyYAML's words)
    first = next((n for n in range(1, len(r.lines) + 1) if _is_content(r.line(n))), 1)
    return YamlProblem("yaml-syntax", f"YAML read the whole file as the one value that begins "
                       f"on line {first}, so nothing may follow it here. A pipeline file is "
                       f"`key: value` lines from column 1; look for a stray quote, bracket or "
                       f"text on line {first}.", *r.at)


_RULES: tuple[Callable[[_Refusal], Optional[YamlProblem]], ...] = (
    _document, _tab, _reserved_character, _unclosed_quote, _unknown_escape, _unclosed_flow,
    _value_colon, _missing_colon, _indentation, _undefined_alias, _anchor_name, _directive,
    _block_scalar_header, _flow_item_dash, _missing_value, _entry_on_a_key_line,
    _question_mark, _tag, _after_the_document)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _content_line_above(r: _Refusal, number: int) -> Optional[int]:
    """The nearest line above ``number`` that holds more than blanks or a comment."""
    for above in range(number - 1, 0, -1):
        if _is_content(r.line(above)):
            return above
    return None


def _open_columns(r: _Refusal, number: int) -> list[tuple[int, Optional[int]]]:
    """The blocks still open at line ``number``: for the line above it and each line it
    sits under, the 1-based column its keys start at and of its `- ` (None if none)."""
    columns: list[tuple[int, Optional[int]]] = []
    deepest = None
    for above in range(number - 1, 0, -1):
        text = r.line(above)
        if not _is_content(text) or (deepest is not None and _indent(text) >= deepest):
            continue
        deepest = _indent(text)
        rest = text[deepest:]
        dash = deepest + 1 if re.match(r"-( |$)", rest) else None
        key = deepest + 1 + len(re.match(r"(?:- +)*", rest).group(0))
        columns.append((key, dash))
        if deepest == 0:
            break
    return columns


def _either(columns: list[int]) -> str:
    return ", ".join(map(str, columns[:-1])) + f" or {columns[-1]}" if len(columns) > 1 \
        else str(columns[0])
