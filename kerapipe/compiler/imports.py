"""The pipeline's `imports:`: the only way Python code of the user's reaches a run.

A pipeline file names custom layers and losses as ``module.Name``; the module comes
from its `imports:` list: a ``.py`` file inside the pipeline's folder (module name: the
file's stem) or an installed module. Nothing is imported unless the caller allows it
(``--allow-imports`` / ``allow_imports=True``), so a pipeline file received from
someone else can be validated, planned and reviewed without running its code.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
import keras

from kerapipe.errors import SpecError, UsageError
from kerapipe.spec.checks import (custom_references, import_name, imports_not_allowed,
                                  refused_imports)
from kerapipe.spec.model import PipelineSpec
from kerapipe.spec.validate import inside_folder

_PACKAGE = "kerapipe_imports"  # file imports live under this name in sys.modules


def imported_objects(result, allowed: bool, base_dir: os.PathLike | str) -> dict[str, Any]:
    """``{"module.Name": object}`` of a validated pipeline (``ValidationResult``), its
    modules imported from ``base_dir``; ``{}`` when it imports nothing.

    Raises:
        SpecError: it imports code and ``allowed`` is false (before any of it runs).
        UsageError: a module cannot be imported or lacks a name the pipeline uses.
    """
    spec = result.spec
    if not spec.imports:
        return {}
    refused = refused_imports(result, allowed)
    if refused:
        raise SpecError(refused)
    return resolve_custom_objects(spec, load_imports(spec, base_dir))


def load_imports(spec: PipelineSpec, base_dir: os.PathLike | str) -> dict[str, ModuleType]:
    """Import every `imports:` entry; ``{module name used in the file: module}``.

    Raises:
        UsageError: a file is missing or outside ``base_dir``, or importing fails.
    """
    modules: dict[str, ModuleType] = {}
    for entry in spec.imports:
        name = import_name(entry)
        try:
            if entry.endswith(".py"):
                modules[name] = _import_file(name, entry, str(base_dir))
            else:
                modules[name] = importlib.import_module(entry)
        except UsageError:
            raise
        except (Exception, SystemExit) as err:  # the user's code may raise anything
            raise UsageError(f"imports: importing '{entry}' failed: "
                             f"{type(err).__name__}: {err}") from err
    return modules


def _import_file(name: str, entry: str, base_dir: str) -> ModuleType:
    path = inside_folder(base_dir, entry)
    if path is None or not os.path.isfile(path):
        raise UsageError(f"imports: '{entry}' is not a file inside {base_dir}.")
    qualified = f"{_PACKAGE}.{name}"
    module_spec = importlib.util.spec_from_file_location(qualified, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[qualified] = module  # Keras serialisation looks classes up by module
    write_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # no __pycache__ in the user's (or a run's) folder
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[qualified]
        raise
    finally:
        sys.dont_write_bytecode = write_bytecode
    return module


def resolve_custom_objects(spec: PipelineSpec, modules: dict[str, ModuleType]
                           ) -> dict[str, Any]:
    """``{"module.Name": object}`` for every custom name the pipeline uses.

    Raises:
        UsageError: the module has no such name, or it is not a layer class (layers) or a
            loss class or function (the loss).
    """
    objects: dict[str, Any] = {}
    for path, reference in custom_references(spec):
        module_name, attribute = reference.rsplit(".", 1)
        module = modules[module_name]
        obj = getattr(module, attribute, None)
        where = ".".join(str(p) for p in path)
        if obj is None:
            public = sorted(n for n in vars(module) if not n.startswith("_"))
            raise UsageError(f"{where}: module '{module_name}' has no '{attribute}'. It "
                             f"defines: {', '.join(public) or 'nothing public'}.")
        if getattr(obj, "__module__", None) != module.__name__:
            # `imports: [keras.layers]` must not reopen the door to TFSMLayer or Lambda:
            # only what the imported module itself defines is accepted.
            raise UsageError(f"{where}: '{reference}' is defined in "
                             f"'{getattr(obj, '__module__', '?')}', not in the imported "
                             f"module; use only classes and functions written in "
                             f"'{module_name}' itself.")
        if path[0] == "loss":
            if not (_is_subclass(obj, keras.losses.Loss) or inspect.isfunction(obj)):
                raise UsageError(f"loss: '{reference}' is a {type(obj).__name__}, not a "
                                 "keras.losses.Loss subclass or a function (y_true, y_pred).")
        elif not _is_subclass(obj, keras.layers.Layer):
            raise UsageError(f"{where}: '{reference}' is not a keras.layers.Layer subclass.")
        objects[reference] = obj
    return objects


def saving_scope(objects: dict[str, Any]) -> keras.saving.CustomObjectScope:
    """A scope in which Keras finds the custom classes when it loads a saved model."""
    by_name: dict[str, Any] = {}
    for reference, obj in objects.items():
        for name in {obj.__name__, keras.saving.get_registered_name(obj)}:
            if by_name.setdefault(name, obj) is not obj:
                raise UsageError(f"two imported objects are named '{name}'; Keras saves "
                                 "custom classes by name, so rename one (or register it "
                                 "with keras.saving.register_keras_serializable(package=...)).")
    return keras.saving.CustomObjectScope(by_name)


def import_file_hashes(spec: PipelineSpec, base_dir: os.PathLike | str) -> dict[str, str]:
    """sha256 of each imported ``.py`` file, by its `imports:` entry (for run.json, so a
    resume notices changed code)."""
    hashes = {}
    for entry in spec.imports:
        source = inside_folder(str(base_dir), entry) if entry.endswith(".py") else None
        if source and os.path.isfile(source):
            hashes[entry] = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    return hashes


def _is_subclass(obj: Any, base: type) -> bool:
    return inspect.isclass(obj) and issubclass(obj, base)


def custom_loss(obj: Any, kwargs: dict) -> Any:
    """An imported loss: a Loss subclass is instantiated with the file's arguments; a
    function is used as it is (it takes no arguments from the file)."""
    if inspect.isclass(obj):
        return obj(**kwargs)
    if kwargs:
        raise UsageError(f"loss: the function '{obj.__name__}' takes no arguments from the "
                         f"file (got {', '.join(kwargs)}); make it a keras.losses.Loss "
                         "subclass to pass arguments.")
    return obj


__all__ = ["imported_objects", "imports_not_allowed", "load_imports", "resolve_custom_objects",
           "saving_scope", "import_file_hashes", "custom_loss"]
