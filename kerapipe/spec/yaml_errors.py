"""What the YAML parser refused, said in kerapipe's words: an issue code, a message, a place.

``spec/yaml_loader.py`` parses; when PyYAML's pure-Python parser refuses the text, its
error comes here to be explained (what, where, the fix) for a pipeline author.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class YamlProblem:
    """A refusal of the parser, explained: the issue code, the message, 1-based place."""

    code: str
    message: str
    line: int
    column: int


def explain(err: yaml.MarkedYAMLError, text: str) -> YamlProblem:
    """The issue the pure-Python parser's refusal ``err`` of ``text`` is reported as.

    Its own words, except for the two a pipeline author meets without any syntax error
    (a second document, YAML's `...` marker first)."""
    mark = err.problem_mark or err.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    if "found another document" in str(err.problem):
        return YamlProblem("multiple-documents", (
            "a second YAML document starts here (`---`), but a pipeline file is one "
            "document. Remove this `---` and what follows it, or move that into a file of "
            "its own."), line, column)
    if "'<document end>'" in str(err.problem):
        return YamlProblem("document-end-marker", (
            "`...` (YAML's end-of-document marker) stands where the pipeline should begin; "
            "a pipeline file is one document that starts with `kerapipe: 1`. Remove the "
            "`...` line (it may only follow the document)."), line, column)
    message = "; ".join(part for part in (err.context, err.problem) if part)
    return YamlProblem("yaml-syntax", f"invalid YAML: {message}", line, column)
