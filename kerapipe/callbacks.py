"""Callbacks that make a run safe to leave alone: checkpoints, signals, non-finite loss.

They are added by the run side (``runner.py``) after the pipeline's own callbacks
(early stopping): a finished epoch is checkpointed atomically (written by the run's
``RunFolder``), SIGINT/SIGTERM stop at the next step boundary, a NaN or infinite loss
stops training with the epoch and batch where it happened, and a resumed run's early
stopping carries on from its counters.
"""

from __future__ import annotations

import errno
import math
import signal
from pathlib import Path
from typing import Any, Optional, Sequence

from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
import keras
import numpy as np

from kerapipe.compiler.keras_callbacks import STATEFUL_ATTRIBUTES, learning_rate
from kerapipe.errors import OutputError, TrainingStopped, UsageError
from kerapipe.run_files import load_saved_model, read_checkpoint_state
from kerapipe.run_folder import LAST_MODEL, STATE_FILE


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
    """After every finished epoch, a complete checkpoint (``RunFolder.write_checkpoint``),
    then history.csv rewritten, so a later failure cannot lose a finished epoch.

    ``checkpoints/epoch-NNNN/`` holds ``last.keras`` (weights and optimizer state),
    ``best.weights.h5`` (the early-stopping best, when there is one) and ``state.json``
    (epochs done, history, early-stopping counters); a kill at any moment leaves a
    complete checkpoint.

    Args:
        folder: the run's ``RunFolder``, which writes the checkpoint and history.csv.
        early_stopping: the pipeline's EarlyStopping, whose counters the checkpoint keeps.
        history: the history of the epochs done before (a resumed run).
    """

    def __init__(self, folder, early_stopping: Optional[keras.callbacks.EarlyStopping],
                 history: Optional[dict] = None, stateful: Sequence = (),
                 file_learning_rate: Any = None) -> None:
        super().__init__()
        self.run_folder = folder
        folder.make_checkpoints()
        self.early_stopping = early_stopping
        self.history: dict = {k: list(v) for k, v in (history or {}).items()}
        self.stateful = list(stateful)  # the file's callbacks (train.callbacks): their counters
        self.file_learning_rate = file_learning_rate

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for key, value in logs.items():  # (the stage number of train.stages stays an int)
            self.history.setdefault(key, []).append(value if key == "stage" else float(value))
        if not math.isfinite(float(logs.get("loss", 0.0))):
            return  # never checkpoint a diverged model: keep the last good one
        state: dict = {"epochs_done": epoch + 1, "history": self.history}
        early = self.early_stopping
        if early is not None and not getattr(early, "active", True):
            early = None  # a stage of train.stages without early stopping
        if early is not None:
            state["early_stopping"] = {
                "wait": int(early.wait), "best_epoch": int(early.best_epoch),
                "best": None if early.best is None else float(early.best)}
        states = callback_states(self.stateful, self.model, self.file_learning_rate)
        if states is not None:
            state["callbacks"] = states
        folder = self.run_folder
        try:  # early.wait == 0: this epoch is the new best
            folder.write_checkpoint(epoch + 1, self.model, state,
                                    new_best=None if early is None else early.wait == 0)
        except OSError as err:  # disk full, folder removed, ...: the last checkpoint stands
            previous = folder.intact_checkpoint()
            fix = ("free some space" if err.errno in (errno.ENOSPC, errno.EDQUOT)
                   else "make the folder writable")
            kept = (f"the checkpoint {previous.name} is intact; {fix} and continue with: "
                    f"{folder.resume_command}") if previous else "no epoch was checkpointed"
            raise OutputError(f"cannot write the checkpoint of epoch {epoch + 1} in "
                              f"{folder.checkpoints}: {err.strerror or err}. {kept}.") from err
        folder.write_history(self.history)


class RestoreEarlyStopping(keras.callbacks.Callback):
    """Gives the pipeline's EarlyStopping back the patience counter, best value and best
    weights a resumed run had, after its own ``on_train_begin`` reset them.

    Keras calls callbacks in list order: this one must come after ``early_stopping``.

    Args:
        early_stopping: the pipeline's EarlyStopping (``CompiledPipeline.callbacks``).
        restored: the checkpoint's ``early_stopping`` counters (``wait``, ``best_epoch``,
            ``best``).
        best_weights_file: the checkpoint's ``best.weights.h5``, or ``None``.
        best_weights: the best weights themselves, instead of the file (a multi-worker
            resume: the chief's, on every worker).
    """

    def __init__(self, early_stopping: keras.callbacks.EarlyStopping, restored: dict,
                 best_weights_file: Optional[Path] = None,
                 best_weights: Optional[list] = None) -> None:
        super().__init__()
        self.early_stopping = early_stopping
        self.restored = restored
        self.best_weights_file = best_weights_file
        self.best_weights = best_weights

    def on_train_begin(self, logs=None):
        if self.restored is None:
            return  # given back once: a later stage of train.stages starts its own counters
        early = self.early_stopping
        early.wait = self.restored["wait"]
        early.best_epoch = self.restored["best_epoch"]
        early.best = self.restored["best"]
        if early.restore_best_weights and self.best_weights is not None:
            early.best_weights = self.best_weights
        elif early.restore_best_weights and self.best_weights_file \
                and self.best_weights_file.exists():
            current = self.model.get_weights()
            try:
                self.model.load_weights(self.best_weights_file)
            except Exception as err:  # a truncated or foreign weights file
                from kerapipe.run_files import damaged

                raise damaged(self.best_weights_file, "Keras cannot load these best weights "
                              f"({str(err)[:200]})") from err
            early.best_weights = self.model.get_weights()
            self.model.set_weights(current)
        self.restored = None


def stopped_early(state: dict, early: Optional[keras.callbacks.EarlyStopping]) -> bool:
    """Whether the checkpoint ``state`` was taken when ``early`` (the run's EarlyStopping,
    as set up for the checkpoint's stage) had already ended the training: its wait reached
    the patience after its start epoch. A stage without early stopping (``active``
    false) never is."""
    saved = state.get("early_stopping")
    return bool(early is not None and getattr(early, "active", True) and saved
                and saved["wait"] >= early.patience
                and int(state.get("epochs_done", 0)) > early.start_from_epoch)


def restore_checkpoint(model: keras.Model, folder: Path,
                       custom_objects: Optional[dict] = None) -> dict:
    """Load a checkpoint's weights and optimizer state into ``model``; return its state.

    ``custom_objects``: the pipeline's imported classes (``CompiledPipeline.custom_objects``).
    """
    state = read_checkpoint_state(folder / STATE_FILE)
    check_callback_states(state.get("callbacks"), folder / STATE_FILE)
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


# --- the file's callbacks (train.callbacks) across a resume ------------------------------

def callback_states(callbacks: Sequence, model: keras.Model,
                    file_learning_rate: Any) -> Optional[dict]:
    """What state.json keeps of the file's stateful callbacks (``STATEFUL_ATTRIBUTES``):
    each one's counters by its place in ``train.callbacks``, the optimizer's learning rate
    (ReduceLROnPlateau lowers it; last.keras holds it too, but a resume keeps the
    pipeline's) and the file's learning rate it started from. ``None``: there is none."""
    entries = []
    for callback in callbacks:
        entry = getattr(callback, "kerapipe_entry", None)
        if entry is None or entry[1] not in STATEFUL_ATTRIBUTES:
            continue
        values = {name: getattr(callback, name) for name in STATEFUL_ATTRIBUTES[entry[1]]}
        entries.append({"index": entry[0], "name": entry[1],
                        **{k: None if v is None else float(v) if k == "best" else int(v)
                           for k, v in values.items()}})
    if not entries:
        return None
    return {"entries": entries, "learning_rate": learning_rate(model.optimizer),
            "file_learning_rate": file_learning_rate}


class RestoreCallbackState(keras.callbacks.Callback):
    """Gives the file's stateful callbacks (ReduceLROnPlateau) back the counters a resumed
    run had, after their own ``on_train_begin`` reset them, and the optimizer the learning
    rate they had lowered it to (unless the file's learning rate changed: a ``--force``
    resume with a new rate starts from that). Once: a later stage starts its own.

    Keras calls callbacks in list order: this one must come after the file's callbacks.

    Args:
        callbacks: the pipeline's callbacks (``CompiledPipeline.callbacks``).
        saved: the checkpoint's ``callbacks`` state (``callback_states``; checked by
            ``restore_checkpoint``).
        file_learning_rate: the pipeline's ``optimizer.learning_rate`` now.
    """

    def __init__(self, callbacks: Sequence, saved: dict, file_learning_rate: Any) -> None:
        super().__init__()
        self.targets = {getattr(c, "kerapipe_entry", None): c for c in callbacks}
        self.saved: Optional[dict] = saved
        self.file_learning_rate = file_learning_rate

    def on_train_begin(self, logs=None):
        if self.saved is None:
            return
        saved, self.saved = self.saved, None
        for entry in saved["entries"]:
            target = self.targets.get((entry["index"], entry["name"]))
            if target is None:
                continue  # a --force resume changed train.callbacks: that one starts anew
            for name in STATEFUL_ATTRIBUTES[entry["name"]]:
                setattr(target, name, entry[name])
        rate = saved["learning_rate"]
        if saved.get("file_learning_rate") == self.file_learning_rate and \
                not hasattr(self.model.optimizer, "optimizers"):
            self.model.optimizer.learning_rate = float(rate)


def check_callback_states(saved: Any, state_file: Path) -> Optional[dict]:
    """state.json's ``callbacks`` as ``callback_states`` writes it, else the checkpoint is
    damaged (``UsageError``)."""
    from kerapipe.run_files import damaged

    def number(value: Any) -> bool:
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value))

    def counter(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    def fits(entry: Any) -> bool:
        names = STATEFUL_ATTRIBUTES.get(entry.get("name")) if isinstance(entry, dict) else None
        return names is not None and counter(entry.get("index")) and all(
            (entry.get(n) is None or number(entry.get(n))) if n == "best" else
            counter(entry.get(n)) for n in names)

    if saved is None:
        return None
    if not isinstance(saved, dict) or not isinstance(saved.get("entries"), list) \
            or not number(saved.get("learning_rate")) or saved["learning_rate"] < 0:
        raise damaged(state_file, "its 'callbacks' should hold 'entries' (a list) and a "
                      f"learning_rate (a number >= 0). Received: {str(saved)[:200]}")
    for entry in saved["entries"]:
        if not fits(entry):
            raise damaged(state_file, "an entry of its 'callbacks' should name a stateful "
                          "callback (ReduceLROnPlateau), its place and its counters. "
                          f"Received: {str(entry)[:200]}")
    return saved
