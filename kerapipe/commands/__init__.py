"""Commands beyond the core four (run, plan, predict, evaluate, validate, schema live in
``kerapipe/cli.py``): one module per command, each defining ``command``, a
``click.Command``. Adding a command is adding its file here; ``kerapipe.cli`` registers
every module it finds, so no list of commands is kept by hand.

A command module imports only click and the light spec side at import time (``kerapipe
validate`` loads them all, and stays under 0.3 s); TensorFlow, matplotlib, keras-tuner,
MLflow and tf2onnx are imported inside the command's function.
"""

from __future__ import annotations

import importlib
import pkgutil

import click


def discovered_commands() -> list[click.Command]:
    """The ``command`` of every module of this package, in module-name order."""
    commands = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):  # helpers shared by several commands
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        commands.append(module.command)
    return commands
