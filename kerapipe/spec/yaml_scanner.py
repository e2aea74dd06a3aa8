"""PyYAML's pure-Python scanner with YAML 1.2's rules for tabs and anchor names.

The pure scanner reads what libyaml refuses (``spec/yaml_loader.py`` falls back to it), so
its refusals are the ones a pipeline author sees. PyYAML's follows YAML 1.1 and its own
"do not use tabs" rule; YAML 1.2 lets a tab separate (never indent):

- ``key:<TAB>value``, ``-<TAB>value``, ``value<TAB># comment``, ``a<TAB>b`` inside a
  plain scalar, and a line of only blanks (tabs an editor left) are accepted;
- a tab where indentation is read (``<TAB>epochs: 15``) is still refused, and so is a
  block key, entry or ``?`` after a tab on its line (``-<TAB>- x``), as YAML 1.2 says;
- an anchor or alias name is any run of non-blank characters other than ``,[]{}``
  (``&dense-defaults``, ``&a.b``, ``&an:chor``), not only letters, digits, ``-`` and ``_``.
"""

from __future__ import annotations

from yaml.scanner import Scanner, ScannerError

_BREAKS = "\r\n\x85\u2028\u2029"
_BLANK_OR_END = "\0 \t" + _BREAKS
# YAML 1.2 ns-anchor-char: a non-blank character that is no flow indicator.
ANCHOR_END = _BLANK_OR_END + ",[]{}"


class Yaml12Scanner(Scanner):
    """The pure scanner, with YAML 1.2's tabs (separation, not indentation) and anchors."""

    after_block_scalar = False

    def scan_block_scalar(self, style):  # noqa: D102 - PyYAML hook
        # A block scalar's lines end where its indentation does: a blank line of tabs
        # right after it is neither its line nor a separation (YAML 1.2 has no
        # s-separate there), so it stays refused.
        self.after_block_scalar = True
        return Scanner.scan_block_scalar(self, style)

    def scan_to_next_token(self) -> None:  # noqa: D102 - PyYAML hook
        if self.index == 0 and self.peek() == "\uFEFF":
            self.forward()
        after_block_scalar, self.after_block_scalar = self.after_block_scalar, False
        while True:
            self._skip_separation(after_block_scalar)
            if self.peek() == "#":
                while self.peek() not in "\0" + _BREAKS:
                    self.forward()
            if not self.scan_line_break():
                return
            if not self.flow_level:
                self.allow_simple_key = True

    def _skip_separation(self, after_block_scalar: bool) -> None:
        while True:
            char = self.peek()
            if char == " ":
                self.forward()
            elif char == "\t" and not after_block_scalar and self._tab_separates():
                self.forward()
                if not self.flow_level:
                    # Past a tab no block key or entry may start on this line (they would
                    # be indented by it); a line break allows them again.
                    self.allow_simple_key = False
            else:
                return

    def _tab_separates(self) -> bool:
        """Whether the tab at the pointer separates (YAML 1.2) rather than indents."""
        if self.flow_level:
            return True
        before = self.buffer[self.pointer - self.column:self.pointer]
        return bool(before.strip(" \t")) or self._after_blanks() in "\0#" + _BREAKS

    def _after_blanks(self) -> str:
        """The first character after the spaces and tabs at the pointer."""
        length = 0
        while self.peek(length) in " \t":
            length += 1
        return self.peek(length)

    def scan_plain_spaces(self, indent, start_mark):  # noqa: D102 - PyYAML hook
        # PyYAML's, with tabs: in the line (`a<TAB>b` is one scalar) and on blank lines.
        length = 0
        while self.peek(length) in " \t":
            length += 1
        whitespaces = self.prefix(length)
        self.forward(length)
        if self.peek() not in _BREAKS:
            return [whitespaces] if whitespaces else []
        line_break = self.scan_line_break()
        self.allow_simple_key = True
        if self._at_document_marker():
            return None
        breaks = []
        while True:
            char = self.peek()
            if char == " " or (char == "\t" and self._after_blanks() in "\0" + _BREAKS):
                self.forward()
            elif char in _BREAKS:
                breaks.append(self.scan_line_break())
                if self._at_document_marker():
                    return None
            else:
                break
        chunks = []
        if line_break != "\n":
            chunks.append(line_break)
        elif not breaks:
            chunks.append(" ")
        chunks.extend(breaks)
        return chunks

    def _at_document_marker(self) -> bool:
        return self.prefix(3) in ("---", "...") and self.peek(3) in _BLANK_OR_END

    def scan_anchor(self, TokenClass):  # noqa: D102, N803 - PyYAML hook
        start_mark = self.get_mark()
        name = "alias" if self.peek() == "*" else "anchor"
        self.forward()
        length = 0
        while self.peek(length) not in ANCHOR_END:
            length += 1
        if not length:
            raise ScannerError(f"while scanning an {name}", start_mark,
                               f"expected the {name}'s name, but found {self.peek()!r}",
                               self.get_mark())
        value = self.prefix(length)
        self.forward(length)
        return TokenClass(value, start_mark, self.get_mark())

