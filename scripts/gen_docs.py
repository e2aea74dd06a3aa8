"""Regenerate what is derived from the spec declarations: the JSON Schema file (with the
CLI's commands and options) and the README's key, preprocessing-step and error-code
tables. Run after changing kerapipe/spec/model.py, steps.py or codes.py:

    python scripts/gen_docs.py          # rewrite
    python scripts/gen_docs.py --check  # exit 1 if anything is stale (tests do this too)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from kerapipe.cli import schema_document
from kerapipe.spec.schema import render_code_table, render_key_table, render_step_table

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "schema" / "pipeline.schema.json"
README = ROOT / "README.md"


def schema_text() -> str:
    return json.dumps(schema_document(), indent=1) + "\n"


def readme_text(current: str) -> str:
    for marker, table in (("keys", render_key_table()), ("steps", render_step_table()),
                          ("codes", render_code_table())):
        pattern = re.compile(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)", re.S)
        if not pattern.search(current):
            raise SystemExit(f"README.md lacks the <!-- {marker}:start/end --> markers")
        current = pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), current)
    return current


def main(check: bool) -> int:
    wanted = {SCHEMA_FILE: schema_text(), README: readme_text(README.read_text("utf-8"))}
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text("utf-8") != text]
    if check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run python scripts/gen_docs.py)")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(exist_ok=True)
        path.write_text(wanted[path], "utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
