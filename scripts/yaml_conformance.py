"""Run the official yaml-test-suite through kerapipe's YAML loader and sort the outcomes.

Nothing of the suite is vendored; fetch its ``data`` branch (one folder per case, some
cases in numbered sub-folders ``00/``, ``01/``, ``000/``) and point the script at it::

    git clone -b data https://github.com/yaml/yaml-test-suite
    python scripts/yaml_conformance.py --suite yaml-test-suite [--json]

Each case's ``in.yaml`` goes through ``kerapipe.spec.yaml_loader.load_document`` and lands
in one of five outcomes:

- ``pass``: valid YAML loaded to the value of ``in.json`` (compared as YAML 1.2 core
  data: numbers by value, booleans apart from numbers), or valid YAML without an
  ``in.json`` that loads, or invalid YAML (an ``error`` file) refused;
- ``deliberate refusal``: valid YAML that kerapipe refuses on purpose, by an issue code of
  ``DELIBERATE`` (each with the reason);
- ``false reject``: valid YAML refused with any other code (``yaml-syntax``, ...);
- ``false accept``: invalid YAML that loads without an issue;
- ``wrong value``: valid YAML that loads to something other than ``in.json``.

Exit status 0 whatever the figures: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from kerapipe.spec.yaml_loader import LoadProblem, load_document

OUTCOMES = ("pass", "deliberate refusal", "false reject", "false accept", "wrong value")

# Issue codes kerapipe returns on purpose for YAML that is valid, and why.
DELIBERATE = {
    "forbidden-tag": "a pipeline file never builds objects, so explicit tags are refused",
    "multiple-documents": "a pipeline file is one document",
    "document-end-marker": "a pipeline file is one document, so `...` may only follow it",
    "empty-file": "a pipeline file holds a document (it starts with `kerapipe: 1`)",
    "bad-key": "a key is a name: null, boolean, float, list and mapping keys are refused",
    "duplicate-key": "YAML requires unique keys; kerapipe says so instead of keeping one",
    "alias-bomb": "alias expansion is bounded (and a self-reference never ends)",
    "too-deep": "nesting is bounded",
    "too-large": "file size and value count are bounded",
    "out-of-range": "integers have at most 400 digits",
}


UNCOMPARED = "loaded; no in.json to compare with"


@dataclass
class Outcome:
    """What one case came to: its id, outcome, the issue code (if any) and a detail."""

    case: str
    outcome: str
    code: Optional[str] = None
    detail: str = ""


def find_cases(suite: Path) -> list[Path]:
    """Every case folder of the suite (one holding ``in.yaml``), sorted by id."""
    top = [path.parent for path in suite.glob("*/in.yaml")]
    numbered = [path.parent for path in suite.glob("*/*/in.yaml") if path.parent.name.isdigit()]
    return sorted(top + numbered, key=lambda folder: case_id(suite, folder))


def case_id(suite: Path, folder: Path) -> str:
    return folder.relative_to(suite).as_posix()


def json_documents(text: str) -> list[Any]:
    """The JSON documents of ``in.json``, one after another (multi-document cases)."""
    decoder, documents, index = json.JSONDecoder(), [], 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index == len(text):
            return documents
        value, index = decoder.raw_decode(text, index)
        documents.append(value)


def same_value(loaded: Any, expected: Any) -> bool:
    """YAML 1.2 core data equality: numbers by value (NaN equals NaN), a boolean never
    equals a number, keys compared as JSON writes them (strings)."""
    if isinstance(expected, bool) or isinstance(loaded, bool):
        return type(loaded) is type(expected) and loaded == expected
    if isinstance(expected, (int, float)) and isinstance(loaded, (int, float)):
        if isinstance(expected, float) and math.isnan(expected):
            return isinstance(loaded, float) and math.isnan(loaded)
        return loaded == expected
    if isinstance(expected, list):
        return isinstance(loaded, list) and len(loaded) == len(expected) and all(
            same_value(a, b) for a, b in zip(loaded, expected))
    if isinstance(expected, dict):
        return isinstance(loaded, dict) and loaded.keys() == expected.keys() and all(
            same_value(loaded[key], value) for key, value in expected.items())
    return type(loaded) is type(expected) and loaded == expected


def classify(folder: Path, case: str) -> Outcome:
    """Load one case's ``in.yaml`` and say which outcome it is."""
    invalid = (folder / "error").exists()
    text = (folder / "in.yaml").read_bytes().decode("utf-8", "replace")
    try:
        document = load_document(text, "in.yaml")
        issues = [issue for issue in document.issues if issue.severity == "error"]
        code = issues[0].code if issues else None
        detail = issues[0].message if issues else ""
    except LoadProblem as problem:
        document, code, detail = None, problem.issue.code, problem.issue.message
    if invalid:
        return Outcome(case, "false accept" if code is None else "pass", code, detail)
    if code is not None:
        return Outcome(case, "deliberate refusal" if code in DELIBERATE else "false reject",
                       code, detail)
    json_file = folder / "in.json"
    if not json_file.exists():  # e.g. complex keys, which JSON cannot write
        return Outcome(case, "pass", detail=UNCOMPARED)
    expected = json_documents(json_file.read_text("utf-8"))
    if len(expected) == 1 and same_value(document.data, expected[0]):
        return Outcome(case, "pass")
    return Outcome(case, "wrong value", detail=f"loaded {document.data!r:.200}, expected "
                   f"{expected[0] if len(expected) == 1 else expected!r:.200}")


def run_suite(suite: Path) -> list[Outcome]:
    """The outcome of every case of the suite in ``suite``."""
    return [classify(folder, case_id(suite, folder)) for folder in find_cases(suite)]


def report(outcomes: list[Outcome]) -> str:
    """The counts and case ids of each outcome, refusals grouped by code with the why."""
    lines = [f"{len(outcomes)} cases"]
    for name in OUTCOMES:
        chosen = [o for o in outcomes if o.outcome == name]
        lines.append(f"{name}: {len(chosen)}")
        if name == "pass":
            unchecked = sum(o.detail == UNCOMPARED for o in chosen)
            lines[-1] += f" ({unchecked} valid cases without in.json: loaded, value unchecked)"
        if name == "pass" or not chosen:
            continue
        for code in sorted({o.code or "" for o in chosen}):
            cases = [o.case for o in chosen if (o.code or "") == code]
            why = f" ({DELIBERATE[code]})" if name == "deliberate refusal" else ""
            lines.append(f"  {code or '-'}: {len(cases)}{why}: {' '.join(cases)}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", type=Path, required=True,
                        help="a checkout of yaml-test-suite's data branch")
    parser.add_argument("--json", action="store_true", help="one JSON object per case")
    parser.add_argument("--verbose", action="store_true",
                        help="each case not passed, with its message")
    args = parser.parse_args(argv)
    if not find_cases(args.suite):
        parser.error(f"no case folder (with in.yaml) under {args.suite}; clone the suite's "
                     "data branch: git clone -b data https://github.com/yaml/yaml-test-suite")
    outcomes = run_suite(args.suite)
    if args.json:
        print(json.dumps([asdict(o) for o in outcomes], indent=1))
        return 0
    print(report(outcomes))
    if args.verbose:
        for o in outcomes:
            if o.outcome != "pass":
                print(f"{o.case} [{o.outcome}] {o.code or ''}: {o.detail[:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
