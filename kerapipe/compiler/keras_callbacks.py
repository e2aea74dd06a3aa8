"""``train.callbacks`` built as Keras callbacks, and the learning rate in every history.

Each ``CallbackSpec`` (checked on the spec side, ``spec/callbacks.py``) becomes the
public ``keras.callbacks`` class of its name, built with the file's arguments. Those that
write files (``PATH_ARGUMENTS``: TensorBoard's ``log_dir``, CSVLogger's ``filename``) are
built only with a folder to write in (``file_callbacks``): a run gives its run folder;
``CompiledPipeline.fit`` alone has none, so it runs the others (``pipeline_callbacks``)
and a caller who wants the files passes ``file_callbacks(spec, folder)`` to it.
``output.tensorboard: true`` is one more TensorBoard among the file callbacks, writing to
the run folder's ``tensorboard/`` (``TENSORBOARD_DIR``).

``LearningRateLogger`` comes first in every fit: it logs ``learning_rate``, the rate the
epoch trained with (Keras's own key and meaning, as ReduceLROnPlateau writes it; with a
schedule, its value at the epoch's end), so history.csv has the column in every run.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Optional, Union

from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
import keras

from kerapipe.compiler.build import keras_guard
from kerapipe.errors import OutputError, UsageError
from kerapipe.spec.callbacks import PATH_ARGUMENTS, CallbackSpec
from kerapipe.spec.model import PipelineSpec

TENSORBOARD_INSTALL = "pip install kerapipe[tensorboard]"  # the extra that brings tensorboard
TENSORBOARD_DIR = "tensorboard"  # output.tensorboard's logs, in the run folder

# The Keras callbacks whose counters a resumed run restores (kerapipe/callbacks.py):
# the attributes that carry over from one epoch to the next.
STATEFUL_ATTRIBUTES = {"ReduceLROnPlateau": ("wait", "cooldown_counter", "best")}


class LearningRateLogger(keras.callbacks.Callback):
    """Adds ``learning_rate`` to each epoch's logs: the optimizer's rate at the epoch's
    end, before any callback after it (ReduceLROnPlateau) changes it for the next one."""

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        optimizer = getattr(self.model, "optimizer", None)
        if logs is None or optimizer is None or hasattr(optimizer, "optimizers"):
            return  # several optimizers: Keras's ReduceLROnPlateau logs each one's itself
        logs.setdefault("learning_rate", learning_rate(optimizer))


def learning_rate(optimizer: Any) -> float:
    """The optimizer's current learning rate as a float (a schedule's at this step)."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def writes_files(callback: CallbackSpec) -> bool:
    """Whether the callback writes files (and so needs a folder to write in)."""
    return any(name == callback.name for name, _ in PATH_ARGUMENTS)


def _build(callback: CallbackSpec, index: int, kwargs: dict) -> keras.callbacks.Callback:
    """The Keras callback, tagged with its place in the file (``entry``) for resume."""
    path = ("train", "callbacks", index, callback.name)
    with keras_guard("keras-arguments", path, f"Keras refused {callback.name}"):
        built = getattr(keras.callbacks, callback.name)(**kwargs)
    built.kerapipe_entry = (index, callback.name)
    return built


def pipeline_callbacks(spec: PipelineSpec) -> list[keras.callbacks.Callback]:
    """The file's callbacks that write no files, in file order.

    Raises:
        UsageError: TensorBoard (a callback, or ``output.tensorboard``) without the
            tensorboard package installed (said when the pipeline is compiled, before a
            run folder exists).
    """
    check_tensorboard_installed(spec)
    return [_build(callback, index, dict(callback.kwargs))
            for index, callback in enumerate(spec.train.callbacks) if not writes_files(callback)]


def check_tensorboard_installed(spec: PipelineSpec) -> None:
    """The one rule for TensorBoard's package: what writes TensorBoard logs (a
    ``train.callbacks`` TensorBoard, ``output.tensorboard: true``) needs it installed.

    Raises:
        UsageError: it is not, naming the key and the extra that brings it.
    """
    users = [(f"train.callbacks[{index}].TensorBoard", "Or remove the callback.")
             for index, callback in enumerate(spec.train.callbacks)
             if callback.name == "TensorBoard"]
    if spec.output.tensorboard:
        users.append(("output.tensorboard", "Or set output.tensorboard: false."))
    if users and importlib.util.find_spec("tensorboard") is None:
        key, fix = users[0]
        raise UsageError(f"{key} needs the tensorboard package, an optional extra of "
                         f"kerapipe: `{TENSORBOARD_INSTALL}`. {fix}")


def file_callbacks(spec: PipelineSpec, folder: Union[str, os.PathLike],
                   resumed: bool = False) -> list[keras.callbacks.Callback]:
    """The file's callbacks that write files, their paths resolved inside ``folder``, and
    ``output.tensorboard``'s TensorBoard (last) writing to ``folder/tensorboard``.

    A path that leads out of ``folder`` once links are followed (a run folder someone
    changed between an interruption and ``--resume``) is refused. ``resumed``: a
    continued run, whose CSVLogger appends to the rows of the epochs done before.

    Raises:
        OutputError: a path leaves ``folder``, or its parent folder cannot be created.
    """
    root = Path(os.path.realpath(folder))
    built = []
    for index, callback in enumerate(spec.train.callbacks):
        if not writes_files(callback):
            continue
        kwargs = dict(callback.kwargs)
        for name, arg in PATH_ARGUMENTS:
            if name == callback.name:
                kwargs[arg] = str(_inside(root, str(callback.argument(arg)), name))
        if callback.name == "CSVLogger" and resumed:
            kwargs["append"] = True
        built.append(_build(callback, index, kwargs))
    if spec.output.tensorboard:
        built.append(keras.callbacks.TensorBoard(
            log_dir=str(_inside(root, TENSORBOARD_DIR, "output.tensorboard"))))
    return built


def _inside(root: Path, value: str, name: str) -> Path:
    target = Path(os.path.realpath(root / value))
    if os.path.commonpath([target, root]) != str(root):
        raise OutputError(f"{name} would write to {target}, outside the run folder {root} "
                          f"(a link in the folder leads there). Remove the link, or start "
                          "a new run.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create {target.parent} for {name}: "
                          f"{err.strerror or err}.") from err
    return target


def close_files(callbacks: list) -> None:
    """Close what ``file_callbacks``' callbacks hold open (CSVLogger's file, TensorBoard's
    writers), as their ``on_train_end`` does: a fit that raised never ran it. Never raises."""
    for callback in callbacks:
        try:
            if isinstance(callback, keras.callbacks.CSVLogger):
                callback.on_train_end()
            elif isinstance(callback, keras.callbacks.TensorBoard):
                callback._close_writers()  # noqa: SLF001 (what its on_train_end calls)
        except Exception:  # noqa: BLE001 (closing is best effort; the run's error stands)
            pass


__all__ = ["LearningRateLogger", "STATEFUL_ATTRIBUTES", "TENSORBOARD_DIR",
           "check_tensorboard_installed", "close_files", "file_callbacks", "learning_rate",
           "pipeline_callbacks", "writes_files"]
