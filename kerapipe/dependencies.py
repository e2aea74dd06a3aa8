"""The error for a package a command needs and this environment lacks.

The light install (``pip install --no-deps kerapipe`` with PyYAML and click: what the
pre-commit hook installs, README "In CI and editors") runs ``kerapipe validate`` and
``kerapipe schema`` only; every other command imports TensorFlow, Keras or numpy, and an
optional extra imports its own package. ``missing_package_error`` turns the
``ModuleNotFoundError`` of such an import into a ``UsageError`` (exit 2) that names the
command, the package and the ``pip install`` that brings it. Which packages are kerapipe's
and which extra brings each is read from kerapipe's installed metadata (setup.cfg: one
list, not a second one here).

``kerapipe.cli`` imports it only once a command has failed; it imports only the standard
library and ``kerapipe.errors``.
"""

from __future__ import annotations

import importlib.util
import re
from importlib import metadata
from typing import Optional, Sequence

from kerapipe.errors import UsageError

# Import name -> distribution name where the two differ by more than "-" for "_" (the
# distributions are the ones setup.cfg requires).
_DISTRIBUTION_OF = {"yaml": "pyyaml", "mlflow": "mlflow-skinny", "sklearn": "scikit-learn"}
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def kerapipe_requirements() -> Optional[dict[str, list[str]]]:
    """Distribution name (normalised) -> the extras that bring it, ``""`` among them for a
    core dependency (kerapipe's ``Requires-Dist`` lines); ``None`` when kerapipe's metadata cannot be read (run from a source tree
    that was never installed)."""
    try:
        lines = metadata.requires("kerapipe") or []
    except metadata.PackageNotFoundError:
        return None
    requirements: dict[str, list[str]] = {}
    for line in lines:
        name = _NAME.match(line)
        if not name:
            continue
        extra = _EXTRA.search(line)
        requirements.setdefault(_normalise(name.group(1)), []).append(
            extra.group(1) if extra else "")
    return requirements


def _command(args: Sequence[str]) -> str:
    words = [arg for arg in args if not arg.startswith("-")]
    if not words:
        return "this command"
    deep = " --deep" if words[0] == "validate" and "--deep" in args else ""
    return f"`kerapipe {words[0]}{deep}`"


def missing_package_error(err: BaseException, args: Sequence[str]) -> Optional[UsageError]:
    """The ``UsageError`` for ``err`` when it is the import of a package kerapipe requires
    (or one of its extras) that is not installed here; ``None`` for anything else.

    Args:
        err: what the command raised.
        args: the command line after ``kerapipe`` (names the command in the message).
    """
    if not isinstance(err, ModuleNotFoundError) or not err.name:
        return None
    module = err.name.split(".")[0]
    try:
        if importlib.util.find_spec(module) is not None:
            return None  # installed: a submodule is missing, which is another problem
    except (ImportError, ValueError):
        pass
    distribution = _normalise(_DISTRIBUTION_OF.get(module, module))
    extras = (kerapipe_requirements() or {}).get(distribution)
    if extras is None:
        return None  # not one of kerapipe's packages (the pipeline's own imports, a bug)
    command = _command(args)
    package = module if distribution == _normalise(module) else \
        f"{module} (pip package {distribution})"
    if "" in extras:
        return UsageError(f"{command} needs {package}, which is not installed here: "
                          "kerapipe without its dependencies (the light install, for CI and "
                          "pre-commit) runs only `kerapipe validate` without --deep and "
                          "`kerapipe schema`. Install kerapipe's dependencies: "
                          "pip install kerapipe")
    extra = next((name for name in extras if name != "test"), extras[0])
    return UsageError(f"{command} needs {package}, which is not installed here. Install it "
                      f'with kerapipe\'s {extra} extra: pip install "kerapipe[{extra}]"')
