"""A loaded pipeline file: plain data with the line and column of every key and value.

``load_document`` (``spec/yaml_loader.py``) makes one from YAML text; ``extends:``
(``spec/compose.py``) merges a base file's under it, each value keeping the file it came
from; ``--set`` overrides (``spec/overrides.py``) add to it; every issue is located
through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kerapipe.spec.issues import Issue, Path


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
        files: ``path -> file`` of each key and value that came from another file than
            ``file`` (a base the pipeline ``extends:``), for the issues located there.
        references: ``path -> plain`` of each string value holding ``${`` (an
            ``${env:NAME}`` reference, ``spec/compose.py``); ``plain``: it was unquoted.
        bases: the files ``extends:`` merged in, nearest first (as named in messages).
    """

    data: Any
    file: str = "<string>"
    value_marks: dict = field(default_factory=dict)
    key_marks: dict = field(default_factory=dict)
    issues: list = field(default_factory=list)
    overrides: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    references: dict = field(default_factory=dict)
    bases: list = field(default_factory=list)

    def position(self, path: Path, at_key: bool = False) -> tuple[int, int]:
        """Position of ``path``, or of its closest enclosing value that has one."""
        return self._marked(path, at_key)[1]

    def file_of(self, path: Path, at_key: bool = False) -> str:
        """The file that ``position(path, at_key)`` is a line and column of."""
        return self.files.get(self._marked(path, at_key)[0], self.file)

    def _marked(self, path: Path, at_key: bool) -> tuple[Path, tuple[int, int]]:
        """The path that has the position of ``path`` (it or an enclosing one), and it."""
        path = tuple(path)
        if at_key and path in self.key_marks:
            return path, self.key_marks[path]
        while path:
            if path in self.value_marks:
                return path, self.value_marks[path]
            if path in self.key_marks:
                return path, self.key_marks[path]
            path = path[:-1]
        return (), self.value_marks.get((), (1, 1))

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
        ``--set``: its file is ``--set KEY.PATH=VALUE`` and its line 0. A value inherited
        from a base (``extends:``) is located in the base file. An issue placed where it
        was found (a loading issue: its line is set) keeps its file, if it has one.
        """
        origin = self.override_of(issue.path)
        if origin is not None:
            issue.file, issue.line, issue.column = origin, 0, 0
            return issue
        if issue.line:
            issue.file = issue.file or self.file
        else:
            where, (issue.line, issue.column) = self._marked(issue.path, issue.at_key)
            issue.file = self.files.get(where, self.file)
        return issue
