"""Callbacks that make a run safe to leave alone: checkpoints, signals, non-finite loss.

They are added by the run side (``runner.py``) on top of the pipeline's own callbacks
(early stopping): a finished epoch is checkpointed atomically, SIGINT/SIGTERM stop at
the next step boundary, and a NaN or infinite loss stops training with the epoch and
batch where it happened.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import signal
from pathlib import Path
from typing import Callable, Optional

from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
import keras
import numpy as np

from kerapipe.errors import OutputError, TrainingStopped, UsageError
from kerapipe.io import write_text_atomic
from kerapipe.run_files import load_saved_model, read_checkpoint_pointer, read_checkpoint_state

CHECKPOINT_DIR = "checkpoints"
LATEST = "LATEST"
LAST_MODEL = "last.keras"
BEST_WEIGHTS = "best.weights.h5"
STATE_FILE = "state.json"


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stop at the first batch whose loss is NaN or infinite, and remember where."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0
        self.tripped: Optional[tuple[int, int, float]] = None  # (epoch, batch, loss), 1-based

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.tripped = (self.epoch + 1, batch + 1, float(loss))
            raise TrainingStopped("non-finite loss")


class SignalStop(keras.callbacks.Callback):
    """Turn SIGINT/SIGTERM into a stop at the next step boundary (not a traceback)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        super().__init__()
        self.received: Optional[int] = None
        self._previous: dict = {}

    def install(self) -> None:
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.received is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.received = signum

    def on_train_batch_end(self, batch, logs=None):
        if self.received is not None:
            raise TrainingStopped("signal")

    def on_epoch_end(self, epoch, logs=None):
        if self.received is not None:  # arrived during validation: the epoch is complete
            raise TrainingStopped("signal")


class EpochCheckpoint(keras.callbacks.Callback):
    """After every finished epoch, a complete checkpoint in its own folder.

    ``checkpoints/epoch-NNNN/`` holds ``last.keras`` (weights and optimizer state),
    ``best.weights.h5`` (the early-stopping best, when there is one) and ``state.json``
    (epochs done, history, early-stopping counters). It is written under a temporary
    name, fsynced and renamed, then ``checkpoints/LATEST`` is switched to it atomically
    and older epochs are removed: a kill at any moment leaves a complete checkpoint.
    """

    def __init__(self, run_dir: Path, early_stopping: Optional[keras.callbacks.EarlyStopping],
                 history: Optional[dict] = None, resume_command: str = "",
                 after_checkpoint: Optional[Callable[[dict], None]] = None) -> None:
        """``after_checkpoint(history)`` runs once an epoch's checkpoint is complete (the
        run side rewrites history.csv there, so a later failure cannot lose it)."""
        super().__init__()
        self.resume_command = resume_command or f"kerapipe run --resume {run_dir}"
        self.folder = Path(run_dir) / CHECKPOINT_DIR
        try:
            self.folder.mkdir(exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create {self.folder}: {err.strerror or err}. Free some "
                              "space or make the folder writable, then run again.") from err
        self.early_stopping = early_stopping
        self.after_checkpoint = after_checkpoint
        self.history: dict = {k: list(v) for k, v in (history or {}).items()}

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        if not math.isfinite(float(logs.get("loss", 0.0))):
            return  # never checkpoint a diverged model: keep the last good one
        name = f"epoch-{epoch + 1:04d}"
        tmp = self.folder / f".tmp-{name}"
        try:
            self._write(epoch, name, tmp)
        except OSError as err:  # disk full, folder removed, ...: the last checkpoint stands
            shutil.rmtree(tmp, ignore_errors=True)
            previous = _intact_checkpoint(self.folder.parent)
            fix = ("free some space" if err.errno in (errno.ENOSPC, errno.EDQUOT)
                   else "make the folder writable")
            kept = (f"the checkpoint {previous.name} is intact; {fix} and continue with: "
                    f"{self.resume_command}") if previous else "no epoch was checkpointed"
            raise OutputError(f"cannot write the checkpoint of epoch {epoch + 1} in "
                              f"{self.folder}: {err.strerror or err}. {kept}.") from err
        if self.after_checkpoint is not None:
            self.after_checkpoint(self.history)

    def _write(self, epoch: int, name: str, tmp: Path) -> None:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self.model.save(tmp / LAST_MODEL)
        state = {"epochs_done": epoch + 1, "history": self.history}
        early = self.early_stopping
        previous = _intact_checkpoint(self.folder.parent)
        if early is not None:
            state["early_stopping"] = {
                "wait": int(early.wait), "best_epoch": int(early.best_epoch),
                "best": None if early.best is None else float(early.best)}
            if early.wait == 0:  # this epoch is the new best
                self.model.save_weights(tmp / BEST_WEIGHTS)
            elif previous is not None and (previous / BEST_WEIGHTS).exists():
                shutil.copy2(previous / BEST_WEIGHTS, tmp / BEST_WEIGHTS)
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n")
        for file in tmp.iterdir():
            _fsync(file)
        target = self.folder / name
        if previous is None or previous.name != name:  # left by a kill before LATEST moved
            shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        write_text_atomic(str(self.folder / LATEST), name + "\n")
        for old in self.folder.glob("epoch-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(run_dir: Path) -> Optional[Path]:
    """The folder of the newest complete checkpoint of a run, or ``None`` when it has none.

    Raises:
        UsageError: checkpoints/LATEST is damaged or names no checkpoint folder of the run
            (``run_files.read_checkpoint_pointer``).
    """
    return read_checkpoint_pointer(Path(run_dir) / CHECKPOINT_DIR)


def _intact_checkpoint(run_dir: Path) -> Optional[Path]:
    """``latest_checkpoint`` for a message about a failure: ``None`` rather than a raise."""
    try:
        return latest_checkpoint(run_dir)
    except UsageError:
        return None


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras's EarlyStopping, whose patience counter and best weights survive a resume."""

    def __init__(self, *args, restored: Optional[dict] = None,
                 best_weights_file: Optional[Path] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.restored = restored
        self.best_weights_file = best_weights_file

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if not self.restored:
            return
        self.wait = self.restored["wait"]
        self.best_epoch = self.restored["best_epoch"]
        self.best = self.restored["best"]
        if self.restore_best_weights and self.best_weights_file and self.best_weights_file.exists():
            current = self.model.get_weights()
            try:
                self.model.load_weights(self.best_weights_file)
            except Exception as err:  # a truncated or foreign weights file
                from kerapipe.run_files import damaged

                raise damaged(self.best_weights_file, "Keras cannot load these best weights "
                              f"({str(err)[:200]})") from err
            self.best_weights = self.model.get_weights()
            self.model.set_weights(current)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def restore_checkpoint(model: keras.Model, folder: Path,
                       custom_objects: Optional[dict] = None) -> dict:
    """Load a checkpoint's weights and optimizer state into ``model``; return its state.

    ``custom_objects``: the pipeline's imported classes (``CompiledPipeline.custom_objects``).
    """
    state = read_checkpoint_state(folder / STATE_FILE)
    saved = load_saved_model(folder / LAST_MODEL, custom_objects)
    try:
        model.set_weights(saved.get_weights())
        optimizer = model.optimizer
        optimizer.build(model.trainable_variables)
        pairs = list(zip(optimizer.variables, saved.optimizer.variables))
        if len(optimizer.variables) != len(saved.optimizer.variables) or any(
                tuple(t.shape) != tuple(v.shape) for t, v in pairs):
            raise ValueError("the optimizer state does not match")
        for target, source in pairs:
            if target.name == "learning_rate":
                continue  # the pipeline's (possibly changed) learning rate wins
            target.assign(np.asarray(source))
    except ValueError as err:
        raise UsageError(f"the checkpoint {folder} does not fit this pipeline's model or "
                         f"optimizer ({err}). Resume with the pipeline it was trained with, "
                         "or start a new run.") from err
    return state
