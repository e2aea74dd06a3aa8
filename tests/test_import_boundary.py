"""The spec side never imports TensorFlow or Keras (click's tests/test_imports.py style)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_PROBE = """
import json, sys
from kerapipe.cli import main
try:
    main(["validate", "--format", "json", {paths}])
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "jax", "torch"))
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


def _run_probe(code: str, *paths: str) -> dict:
    source = code.format(paths=", ".join(repr(p) for p in paths))
    done = subprocess.run([sys.executable, "-c", source], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    return json.loads(done.stderr.strip().splitlines()[-1])


def test_validate_imports_neither_tensorflow_nor_keras():
    outcome = _run_probe(_PROBE, "pipelines")
    assert outcome == {"code": 0, "heavy": []}


def test_validate_works_when_tensorflow_cannot_be_imported():
    # A None entry in sys.modules makes any `import tensorflow` raise ImportError.
    blocked = "import sys\nsys.modules['tensorflow'] = None\nsys.modules['keras'] = None\n" + _PROBE
    outcome = _run_probe(blocked, "pipelines")
    assert outcome["code"] == 0


def test_import_kerapipe_stays_light():
    code = ("import sys, kerapipe, kerapipe.spec, kerapipe.cli\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'pydantic')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"
