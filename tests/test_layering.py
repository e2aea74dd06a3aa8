"""The layering, read from the imports: spec -> compiler -> run side -> CLI.

Every ``import``/``from ... import`` in every kerapipe module (at the top, inside
functions, under ``if``/``try``) and every ``importlib.import_module("kerapipe...")``
with a literal name is read with ``ast`` and checked against the table below. A run-time
test (tests/test_import_boundary.py) proves that ``validate`` loads no TensorFlow; this
one keeps a layer from reaching up even on a code path no test runs.

The rules are data: rename a module and change the table, not the checker.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kerapipe"

# --- the rules ------------------------------------------------------------------------------

# The bottom modules: every layer may import them, and they import nothing above them.
BOTTOM = ("kerapipe.errors", "kerapipe.safe_io")
RUN_SIDE = ("kerapipe.pipeline", "kerapipe.runner", "kerapipe.run_folder", "kerapipe.run_location",
            "kerapipe.run_files", "kerapipe.saved_run", "kerapipe.callbacks", "kerapipe.report",
            "kerapipe.launcher", "kerapipe.tracking", "kerapipe.plots", "kerapipe.html_report",
            "kerapipe.compare", "kerapipe.export", "kerapipe.tuning", "kerapipe.scaffold")
# The commands: kerapipe/cli.py and one module per command in kerapipe/commands/.
CLI = ("kerapipe.cli", "kerapipe.commands")
# What reads or writes run folders and data files without a model: works without TensorFlow.
NO_MODEL = ("kerapipe.compare", "kerapipe.html_report", "kerapipe.plots", "kerapipe.scaffold")
HEAVY = ("tensorflow", "keras", "jax", "torch")
# The standard library: free for every layer (``packages`` rules concern the others).
STDLIB = frozenset(sys.stdlib_module_names)
BACKEND = "kerapipe.compiler.backend"


@dataclass(frozen=True)
class Rule:
    """Modules under ``applies_to`` may import only ``only`` (when given; modules outside
    kerapipe are free), of the packages outside kerapipe and the standard library only
    ``packages`` (when given), and never ``never``; ``except_for`` modules are exempt."""

    why: str
    applies_to: tuple[str, ...]
    never: tuple[str, ...] = ()
    only: tuple[str, ...] | None = None
    except_for: tuple[str, ...] = ()
    packages: tuple[str, ...] | None = None


RULES = (
    Rule("spec/ imports only spec/ and the bottom modules",
         applies_to=("kerapipe.spec",), only=("kerapipe.spec", *BOTTOM)),
    Rule("spec/ never imports TensorFlow or Keras", applies_to=("kerapipe.spec",),
         never=HEAVY),
    Rule("the bottom modules import nothing above them", applies_to=BOTTOM, only=BOTTOM),
    Rule("spec/ and the bottom modules import no package but PyYAML outside the standard "
         "library (the light install, README \"In CI and editors\": kerapipe without its "
         "dependencies, PyYAML and click)", applies_to=("kerapipe.spec", *BOTTOM,
                                                        "kerapipe.dependencies"),
         packages=("yaml",)),
    Rule("compiler/ never imports the run side or the CLI", applies_to=("kerapipe.compiler",),
         never=RUN_SIDE + CLI),
    Rule("the cluster facts and the local launcher never import TensorFlow (`run --workers` "
         "starts its workers without it)", applies_to=("kerapipe.cluster", "kerapipe.launcher"),
         never=HEAVY),
    Rule("compare, report and init read files, never a model: no TensorFlow or Keras "
         "(`kerapipe report` and `kerapipe compare` run where TensorFlow is not installed)",
         applies_to=NO_MODEL, never=HEAVY),
    Rule("only the CLI imports the CLI", applies_to=("kerapipe",), never=CLI,
         except_for=CLI + ("kerapipe.__main__",)),
)

# Known violations, (importer, imported) -> why it is still here. Each entry must still be
# needed (test_every_allowed_violation_still_exists), so a fixed one is deleted here.
ALLOWED: dict[tuple[str, str], str] = {}


# --- the checker ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Import:
    """One module named by an import statement (or an ``import_module`` literal)."""

    importer: str
    imported: str
    file: str
    line: int
    text: str  # the statement (or the call), on one line
    scope: tuple[int, ...]  # ids of the enclosing function definitions, outermost first
    at_import_time: bool  # runs when the module is imported (not inside a function)

    def where(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    """``name`` is one of ``prefixes`` or inside one of them (``a.b`` is under ``a``)."""
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_sources(package: Path = PACKAGE) -> dict[str, tuple[str, str]]:
    """Dotted name -> (path relative to the repository, source) for every module."""
    return {module_name(path): (str(path.relative_to(ROOT)), path.read_text("utf-8"))
            for path in sorted(package.rglob("*.py"))}


def _resolve_from(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base[:len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _literal_import(node: ast.Call) -> str | None:
    """The module named by ``importlib.import_module("x")`` / ``__import__("x")``."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) \
        else None


def read_imports(importer: str, file: str, source: str, known: set[str],
                 is_package: bool = False) -> list[Import]:
    """Every module ``source`` imports, wherever the statement is.

    ``from a import b`` names ``a.b`` when that is a known module, else ``a``.
    """
    tree = ast.parse(source, filename=file)
    found: list[Import] = []

    def add(node: ast.AST, imported: str, scope: tuple[int, ...]) -> None:
        found.append(Import(importer, imported, file, node.lineno, ast.unparse(node), scope,
                            at_import_time=not scope))

    def visit(node: ast.AST, scope: tuple[int, ...]) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node, alias.name, scope)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(node, importer, is_package)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(node, full if full in known else base, scope)
        elif isinstance(node, ast.Call) and (literal := _literal_import(node)):
            add(node, literal, scope)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            scope = scope + (id(node),)
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(tree, ())
    return found


def all_imports(sources: dict[str, tuple[str, str]]) -> list[Import]:
    known = set(sources)
    return [found for name, (file, source) in sources.items()
            for found in read_imports(name, file, source, known,
                                      is_package=file.endswith("__init__.py"))]


def layer_violations(imports: list[Import], allowed=ALLOWED) -> list[tuple[Import, str]]:
    """(import, the rule it breaks) for every import a rule refuses, minus ``allowed``."""
    broken = []
    for found in imports:
        if (found.importer, found.imported) in allowed:
            continue
        for rule in RULES:
            if not under(found.importer, rule.applies_to) \
                    or found.importer in rule.except_for:
                continue
            outside_only = (rule.only is not None and under(found.imported, ("kerapipe",))
                            and not under(found.imported, rule.only))
            third_party = (rule.packages is not None and found.imported
                           and not under(found.imported, ("kerapipe", *rule.packages))
                           and found.imported.split(".")[0] not in STDLIB)
            if outside_only or third_party or under(found.imported, rule.never):
                broken.append((found, rule.why))
                break  # one line per import, under the first rule it breaks
    return broken


def unquiet_heavy_imports(imports: list[Import]) -> list[Import]:
    """``keras``/``tensorflow`` imports (and ``keras_tuner``'s, which loads TensorFlow) not
    preceded by an import of the backend module in the same or an enclosing scope (the
    backend module itself excepted)."""
    backend = [found for found in imports if found.imported == BACKEND]
    late = []
    for found in imports:
        if found.importer == BACKEND or not under(found.imported, ("tensorflow", "keras",
                                                                  "keras_tuner")):
            continue
        if not any(first.importer == found.importer and first.line < found.line
                   and found.scope[:len(first.scope)] == first.scope for first in backend):
            late.append(found)
    return late


def heavy_at_import_time(imports: list[Import], modules: set[str]) -> set[str]:
    """The modules whose import loads TensorFlow or Keras, by their import-time imports
    (their own, their parent packages' and those of the kerapipe modules they import).

    The backend module is heavy by definition: it imports TensorFlow in a function that
    it calls at import time."""
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for found in imports:
        if found.at_import_time:
            edges[found.importer].add(found.imported)
    for name in modules:
        parts = name.split(".")
        edges[name].update(".".join(parts[:end]) for end in range(1, len(parts)))
    heavy = {BACKEND} & modules
    changed = True
    while changed:
        changed = False
        for name in modules - heavy:
            if any(under(target, HEAVY) or target in heavy for target in edges[name]):
                heavy.add(name)
                changed = True
    return heavy


def report(lines: list[str]) -> str:
    return "\n".join(lines)


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return all_imports(package_sources())


# --- the package as it is -------------------------------------------------------------------

def test_every_layer_imports_only_what_its_rules_allow(imports):
    broken = layer_violations(imports)
    assert not broken, "imports that break the layering:\n" + report(
        [f"{found.where()}  ({found.imported}: {why})" for found, why in broken])


def test_every_allowed_violation_still_exists(imports):
    present = {(found.importer, found.imported) for found in imports}
    stale = [f"{importer} -> {imported}" for importer, imported in ALLOWED
             if (importer, imported) not in present]
    assert not stale, "fixed: delete these entries from ALLOWED: " + ", ".join(stale)


def test_every_tensorflow_import_comes_after_the_quiet_backend_import(imports):
    late = unquiet_heavy_imports(imports)
    assert not late, (f"import {BACKEND} first (`from kerapipe.compiler import backend  "
                      "# noqa: F401`, in the same function for a function-level import):\n"
                      + report([found.where() for found in late]))


@pytest.mark.slow
def test_light_compiler_modules_import_without_tensorflow(imports):
    """Every compiler module that needs no TensorFlow at import time (by its imports) is
    imported in a child process; none may load TensorFlow or Keras."""
    modules = set(package_sources())
    heavy = heavy_at_import_time(imports, modules)
    light = sorted(name for name in modules - heavy if under(name, ("kerapipe.compiler",)))
    splits = [name for name in light if name.endswith(".splits")]
    assert splits, f"the stratified split module is not light; light modules: {light}"
    assert BACKEND in heavy and "kerapipe.compiler" in light
    probe = ("import importlib, json, sys\n"
             f"for name in {light!r}:\n"
             "    importlib.import_module(name)\n"
             "    loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
             f"{HEAVY!r})\n"
             "    if loaded:\n"
             "        print(json.dumps([name, loaded[:5]]))\n"
             "        break\n"
             "else:\n"
             "    print(json.dumps(None))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    first_heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert first_heavy is None, f"importing {first_heavy[0]} loaded {first_heavy[1]}"


# --- the checker itself ---------------------------------------------------------------------

FAKE_KNOWN = {"kerapipe", "kerapipe.spec", "kerapipe.spec.fake", "kerapipe.compiler",
              "kerapipe.compiler.fake", "kerapipe.runner", "kerapipe.cli", "kerapipe.errors",
              "kerapipe.report", BACKEND}


def fake_imports(importer: str, source: str) -> list[Import]:
    file = importer.replace(".", "/") + ".py"
    return read_imports(importer, file, source, FAKE_KNOWN)


@pytest.mark.parametrize("importer, source, line, imported", [
    ("kerapipe.spec.fake", "import os\nfrom kerapipe.runner import run_pipeline\n", 2,
     "kerapipe.runner"),
    ("kerapipe.spec.fake", "def f():\n    import tensorflow as tf\n", 2, "tensorflow"),
    ("kerapipe.spec.fake", "from .. import compiler\n", 1, "kerapipe.compiler"),
    ("kerapipe.compiler.fake", "from kerapipe.errors import DataError\n\n"
     "def run():\n    from kerapipe.runner import run_pipeline\n", 4, "kerapipe.runner"),
    ("kerapipe.compiler.fake", "import importlib\n"
     "def f():\n    return importlib.import_module('kerapipe.report')\n", 3, "kerapipe.report"),
    ("kerapipe.compiler.fake", "from kerapipe import cli\n", 1, "kerapipe.cli"),
    ("kerapipe.runner", "try:\n    import kerapipe.cli\nexcept ImportError:\n    pass\n", 2,
     "kerapipe.cli"),
    ("kerapipe.spec.fake", "import yaml\n\ndef f():\n    import numpy as np\n", 4, "numpy"),
    ("kerapipe.errors", "import sys\nimport click\n", 2, "click"),
], ids=["spec-imports-run-side", "spec-imports-tensorflow-in-a-function",
        "spec-relative-import-of-compiler", "compiler-imports-runner-in-a-function",
        "compiler-import-module-literal", "compiler-from-kerapipe-import-cli",
        "run-side-imports-cli-under-try", "spec-imports-numpy-in-a-function",
        "bottom-module-imports-click"])
def test_checker_names_the_module_line_and_import_of_a_violation(importer, source, line,
                                                                 imported):
    broken = layer_violations(fake_imports(importer, source), allowed={})
    assert [(found.importer, found.line, found.imported) for found, _ in broken] \
        == [(importer, line, imported)]
    found, why = broken[0]
    assert found.where().startswith(f"{importer.replace('.', '/')}.py:{line}: ")
    assert why


def test_checker_accepts_what_the_rules_allow():
    source = ("import os\nimport yaml\nfrom kerapipe.errors import SpecError\n"
              "from kerapipe.spec.fake import x\nfrom . import fake\n")
    assert layer_violations(fake_imports("kerapipe.spec.fake", source), allowed={}) == []
    runner = "from kerapipe.compiler.fake import x\nfrom kerapipe.report import y\n"
    assert layer_violations(fake_imports("kerapipe.runner", runner), allowed={}) == []


def test_checker_honours_the_allow_list_entry_and_only_it():
    source = "def run():\n    from kerapipe.runner import a\n    from kerapipe.report import b\n"
    broken = layer_violations(fake_imports("kerapipe.compiler.fake", source),
                              allowed={("kerapipe.compiler.fake", "kerapipe.runner"): "why"})
    assert [found.imported for found, _ in broken] == ["kerapipe.report"]


@pytest.mark.parametrize("source, late_lines", [
    ("import keras\nfrom kerapipe.compiler import backend\n", [1]),
    ("from kerapipe.compiler import backend  # noqa: F401\nimport keras\n", []),
    ("def f():\n    import tensorflow as tf\n", [2]),
    ("def f():\n    from kerapipe.compiler import backend\n    import tensorflow\n", []),
    ("def f():\n    from kerapipe.compiler import backend\n\ndef g():\n    import keras\n",
     [5]),
    ("import kerapipe.compiler.backend\n\ndef g():\n    from keras import ops\n", []),
], ids=["keras-before-backend", "backend-first", "function-without-backend",
        "function-with-backend", "backend-in-another-function", "module-level-backend"])
def test_checker_finds_tensorflow_imported_before_the_backend(source, late_lines):
    late = unquiet_heavy_imports(fake_imports("kerapipe.compiler.fake", source))
    assert [found.line for found in late] == late_lines


def test_heavy_at_import_time_follows_imports_and_parent_packages():
    sources = {
        "kerapipe.compiler": "",
        "kerapipe.compiler.fake": "from kerapipe.compiler import backend\n",
        BACKEND: "import tensorflow\n",
        "kerapipe.compiler.light": "def f():\n    import keras\n",
        "kerapipe.spec": "import kerapipe.compiler.fake\n",
    }
    imports = [found for name, source in sources.items()
               for found in read_imports(name, name + ".py", source, set(sources))]
    assert heavy_at_import_time(imports, set(sources)) \
        == {"kerapipe.compiler.fake", BACKEND, "kerapipe.spec"}
