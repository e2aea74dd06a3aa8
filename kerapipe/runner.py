"""The run side: fit, evaluate, predict, and the run folder with its artifacts.

Every run gets a new folder ``<output.dir>/<name>-<timestamp>/`` (never reused, never
overwritten) and every file in it is written atomically (temporary file, fsync, rename),
so an interrupted run never leaves a half-written artifact under its final name.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from kerapipe.errors import Interrupted, KerapipeError, OutputError, UsageError
from kerapipe.io import write_bytes_atomic, write_text_atomic
from kerapipe.spec.typed import to_plain


@dataclass
class RunResult:
    """What ``kerapipe run`` (or ``CompiledPipeline.run``) produced.

    Args:
        run_dir: the new run folder.
        test_metrics: loss and metrics on the test split.
        history: per-epoch values logged by Keras (``{"loss": [...], ...}``).
        predicted: argmax class of each test example.
        true: the true class of each test example.
        class_names: names of the classes, when known.
        seconds: wall time of the stages (``fit``, ``evaluate``, ``total``).
        notes: what the run adjusted and a user should know (e.g. a clamped top_k).
    """

    run_dir: Path
    test_metrics: dict
    history: dict
    predicted: Optional[np.ndarray] = None
    true: Optional[np.ndarray] = None
    class_names: Optional[list] = None
    seconds: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def epochs_run(self) -> int:
        return len(next(iter(self.history.values()), []))

    @property
    def accuracy(self) -> Optional[float]:
        if self.predicted is None or self.true is None or len(self.true) == 0:
            return None
        return float(np.mean(self.predicted == self.true))

    def most_confused(self, top: int = 3) -> list[tuple[str, str, int]]:
        """``(true name, predicted name, count)`` of the most frequent mistakes."""
        if self.predicted is None or self.true is None:
            return []
        wrong = self.predicted != self.true
        pairs: dict[tuple[int, int], int] = {}
        for t, p in zip(self.true[wrong], self.predicted[wrong]):
            pairs[(int(t), int(p))] = pairs.get((int(t), int(p)), 0) + 1
        ranked = sorted(pairs.items(), key=lambda item: (-item[1], item[0]))[:top]
        return [(self._name(t), self._name(p), n) for (t, p), n in ranked]

    def _name(self, index: int) -> str:
        names = self.class_names
        return str(names[index]) if names and index < len(names) else str(index)


def verbosity(stream=None) -> int:
    """Keras progress bars at a terminal, one line per epoch otherwise (logs, CI)."""
    stream = stream or sys.stdout
    return 1 if getattr(stream, "isatty", lambda: False)() else 2


def ensure_writable_dir(folder: Union[str, os.PathLike]) -> None:
    """Prove that run folders can be created under ``folder``, before any training.

    Creates nothing: checks the folder, or its closest existing parent when it does not
    exist yet.

    Raises:
        UsageError: the folder's name holds a NUL byte (it cannot name a folder at all).
        OutputError: it cannot be created or written, or it lies inside an earlier run.
    """
    existing = _closest_existing(folder)
    problem = ""
    if not existing.is_dir():
        problem = f"'{existing}' is a file, not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"'{existing}' is not writable"
    if problem:
        raise OutputError(f"cannot write run folders into '{folder}': {problem}. Choose "
                          "another folder with --output or output.dir.")
    _refuse_inside_a_run(folder)


RESOLVED_SPEC_HEADER = ("# The pipeline as it ran: every default filled in "
                        "(kerapipe resolved spec).\n")


def is_run_folder(folder: Union[str, os.PathLike]) -> bool:
    """A folder that ``kerapipe run`` made: its run.json is a kerapipe run record, or its
    spec.yaml the resolved spec of one (a pipeline file of a user's is neither)."""
    from kerapipe.run_files import max_spec_bytes, read_run_bytes, read_run_json

    folder = Path(folder)
    try:  # regular files only, bounded: a FIFO named run.json must not block this question
        if {"status", "kerapipe"} <= set(read_run_json(folder / "run.json")):
            return True
    except KerapipeError:
        pass
    try:
        head = read_run_bytes(folder / "spec.yaml", max_spec_bytes())[:len(RESOLVED_SPEC_HEADER)]
    except KerapipeError:
        return False
    return head == RESOLVED_SPEC_HEADER.encode()


def _refuse_inside_a_run(folder: Union[str, os.PathLike]) -> None:
    """A run folder holds one run: a new run nested in it (or in its checkpoints) would be
    taken for part of the earlier one, and `--resume` or a clean-up would mix them."""
    resolved = Path(os.path.realpath(_checked_path_text(folder)))
    for candidate in (resolved, *resolved.parents):
        if candidate.is_dir() and is_run_folder(candidate):
            raise OutputError(f"'{folder}' is inside the run folder {candidate} of an earlier "
                              "run; a run folder holds exactly one run. Give the folder that "
                              f"holds the runs instead, e.g. --output {candidate.parent}.")


def _checked_path_text(folder: Union[str, os.PathLike]) -> str:
    text = os.fspath(folder)
    if "\0" in text:
        shown = repr(text if len(text) <= 80 else text[:77] + "...")
        raise UsageError("the output folder's name holds a NUL byte, which no file system "
                         "accepts in a path. Give a plain folder path with --output or "
                         f"output.dir. Received: output={shown}")
    long = [part for part in Path(text).parts if len(os.fsencode(part)) > _NAME_MAX]
    if long:  # Path.exists() itself would raise ENAMETOOLONG
        raise OutputError(f"the output folder '{text[:80]}...' holds a folder name of "
                          f"{len(os.fsencode(long[0]))} bytes; file systems take at most "
                          f"{_NAME_MAX}. Choose another folder with --output or output.dir.")
    return text


def _closest_existing(folder: Union[str, os.PathLike]) -> Path:
    existing = Path(_checked_path_text(folder)).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing


def estimated_run_bytes(compiled) -> int:
    """Disk a run needs at its peak: while a checkpoint rotates, two of them (weights and
    optimizer state, up to 3x the weights for Adam) plus the best weights, the final
    model and predictions.csv; 1 MiB for the small files."""
    weights = 4 * compiled.model.count_params()
    test = compiled.data.test
    predictions = 0 if test is None else 120 * len(test.y)
    return 2 * 3 * weights + 2 * weights + predictions + (1 << 20)


def ensure_free_space(folder: Union[str, os.PathLike], compiled) -> None:
    """Refuse to start a run that would fill the disk halfway through.

    Raises:
        OutputError: the folder's file system has less free space than the run needs.
    """
    existing = _closest_existing(folder)
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        return  # cannot tell: the writes themselves will report a full disk
    need = estimated_run_bytes(compiled)
    if free < need:
        raise OutputError(f"'{folder}' has {free / 2**20:.1f} MiB free, and this run needs "
                          f"about {need / 2**20:.1f} MiB (checkpoints of "
                          f"{compiled.model.count_params():,} parameters, the final model and "
                          "predictions). Free some space, or choose another folder with "
                          "--output or output.dir.")


_STAMP_LENGTH = len("-20260101-120000-999")  # what new_run_dir appends to the name
_NAME_MAX = 255  # bytes in one folder name (ext4, XFS, APFS, NTFS)


def check_run_name(name: str, output_dir: Union[str, os.PathLike]) -> None:
    """Refuse a run name that is not one plain folder name.

    The run folder is ``<output_dir>/<name>-<timestamp>``; a separator, ``..``, an absolute
    path or a NUL byte in the name would put it elsewhere (or nowhere).

    Raises:
        UsageError: the name is empty, ``.``/``..``, or holds a separator or NUL byte, or
            is too long for a folder name.
    """
    limit = _NAME_MAX - _STAMP_LENGTH
    separators = sorted({"/", "\\", os.sep, os.altsep} - {None})
    if not isinstance(name, str) or name in ("", ".", ".."):
        problem = "it is empty, '.' or '..'"
    elif "\0" in name:
        problem = "it holds a NUL byte"
    elif any(sep in name for sep in separators):
        problem = f"it holds a path separator ({' or '.join(map(repr, separators))})"
    elif len(name.encode("utf-8", "surrogatepass")) > limit:
        problem = f"it is longer than {limit} bytes"
    else:
        return
    shown = repr(name if not isinstance(name, str) or len(name) <= 80 else name[:77] + "...")
    raise UsageError(f"the run name {shown} is not one folder name: {problem}. The run folder "
                     f"<name>-<timestamp> must lie directly inside the output folder "
                     f"'{output_dir}'. Set name to letters, digits, '_', '-' and '.' (at most "
                     f"{limit} bytes). Received: name={shown}")


def new_run_dir(output_dir: Union[str, os.PathLike], name: str) -> Path:
    """Create ``<output_dir>/<name>-<timestamp>[-N]``: always a new, empty folder, proven
    to lie directly inside ``output_dir``.

    Raises:
        UsageError: ``name`` is not one folder name (see ``check_run_name``), or
            ``output_dir`` holds a NUL byte.
        OutputError: the output folder cannot be created or written, or it lies inside
            the folder of an earlier run.
    """
    check_run_name(name, output_dir)
    _refuse_inside_a_run(output_dir)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(output_dir)
    try:
        base.mkdir(parents=True, exist_ok=True)
        real_base = os.path.realpath(base)
        for attempt in range(1, 1000):
            candidate = base / (f"{name}-{stamp}" + (f"-{attempt}" if attempt > 1 else ""))
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            if os.path.dirname(os.path.realpath(candidate)) != real_base:
                candidate.rmdir()  # cannot happen after check_run_name: the proof, kept
                raise UsageError(f"the run folder {candidate} would not lie directly inside "
                                 f"the output folder '{base}'. Received: name={name!r}")
            probe = candidate / ".write-test"
            probe.write_text("")
            probe.unlink()
            return candidate
    except OSError as err:
        raise OutputError(f"cannot create a run folder in '{base}': {err.strerror or err}. "
                          "Choose another folder with --output or output.dir.") from err
    raise OutputError(f"too many runs named '{name}' started at {stamp} in '{base}'.")


def run_pipeline(compiled, output_dir: Optional[str] = None,
                 command: Optional[Sequence[str]] = None,
                 verbose: Union[int, str] = "auto",
                 resume_dir: Optional[Union[str, os.PathLike]] = None,
                 resumed_spec_text: Optional[str] = None) -> RunResult:
    """Fit, evaluate on the test split, predict (argmax), and write the run folder.

    Every finished epoch is checkpointed and its history.csv rewritten. SIGINT/SIGTERM
    stop at the next step boundary (``Interrupted``, exit 130/143); a non-finite loss
    stops with ``TrainingError`` (exit 4). Any other failure once the run folder exists
    (a kerapipe error, an unexpected exception, a KeyboardInterrupt) marks run.json
    ``failed`` (or ``interrupted``) with the reason, keeps the finished epochs' history,
    and is re-raised unchanged. With ``resume_dir``, training continues from that run's
    last checkpoint.
    """
    from kerapipe.callbacks import (EpochCheckpoint, NonFiniteLossGuard, SignalStop,
                                    TrainingStopped, latest_checkpoint, restore_checkpoint)
    from kerapipe.compiler.faults import user_faults
    from kerapipe.compiler.imports import copy_import_files

    spec = compiled.spec
    started = time.perf_counter()
    state: dict = {}
    ensure_free_space(resume_dir if resume_dir is not None else
                      (output_dir or spec.output.dir), compiled)
    checkpoint = None
    if resume_dir is not None:  # a refusal here leaves the run folder as it was
        run_dir = Path(resume_dir)
        read_resumable_run(run_dir)  # the API's resume_dir too: never a finished or foreign one
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is not None:
            state = restore_checkpoint(compiled.model, checkpoint, compiled.custom_objects)
            # Later epochs must not replay the first epochs' data order.
            compiled.reshuffle(int(state.get("epochs_done", 0)))
    else:
        run_dir = new_run_dir(output_dir or spec.output.dir, spec.name)
    verbose = verbosity() if verbose == "auto" else verbose
    seconds: dict[str, float] = {}
    saver = None
    stopper = SignalStop()
    stopper.install()  # until the last file is written: a late signal is handled too
    try:  # from here on, every failure is recorded in the run folder
        early = _resumable_early_stopping(compiled, state, checkpoint if state else None)
        others = [c for c in compiled.callbacks if not isinstance(c, keras_early_stopping())]
        guard = NonFiniteLossGuard()
        saver = EpochCheckpoint(
            run_dir, early, state.get("history"),
            resume_command=resume_command(compiled, run_dir),
            after_checkpoint=lambda history: write_text_atomic(run_dir / "history.csv",
                                                               history_csv(history)))
        # The saver checkpoints a finished epoch before the stopper acts on a signal.
        callbacks = others + ([early] if early else []) + [guard, saver, stopper]
        done = int(state.get("epochs_done", 0))
        if resume_dir is None or resumed_spec_text is not None:  # --force: the new file
            write_text_atomic(run_dir / "spec.yaml", resumed_spec_text or _resolved_yaml(spec))
            copy_import_files(spec, compiled.base_dir, run_dir, write_bytes_atomic)
        write_text_atomic(run_dir / "run.json", json.dumps(
            run_record(compiled, command, {}, status="running"), indent=2) + "\n")
        tick = time.perf_counter()
        try:
            if done < spec.train.epochs and not _stopped_early(state, spec):
                with user_faults(compiled, "training"):
                    compiled.fit(verbose=verbose, callbacks=callbacks, initial_epoch=done)
        except TrainingStopped:
            pass  # the guard or the signal handler says why
        seconds["fit"] = time.perf_counter() - tick
        history = saver.history
        if guard.tripped or stopper.received:
            _write_partial(compiled, run_dir, history, seconds, command, early, guard, stopper)
        with user_faults(compiled, "evaluation"):
            result = _evaluate_and_predict(compiled, run_dir, history, seconds)
        if stopper.received:  # arrived during evaluation: --resume redoes only that part
            _write_partial(compiled, run_dir, history, seconds, command, early, guard, stopper)
        save_model_atomic(compiled.inference_model, run_dir / "model.keras")
        write_text_atomic(run_dir / "history.csv", history_csv(result.history))
        seconds["total"] = time.perf_counter() - started
        result.seconds = seconds
        _write_metrics(run_dir, spec, result.history, result.test_metrics, result.accuracy)
        write_text_atomic(run_dir / "run.json", json.dumps(
            run_record(compiled, command, seconds, status="finished"), indent=2) + "\n")
    except BaseException as err:  # out of memory, a full disk, a bug, a second Ctrl-C, ...
        if not getattr(err, "recorded", False):  # _write_partial said why already
            history = saver.history if saver is not None else dict(state.get("history") or {})
            _write_failed(compiled, run_dir, history, seconds, command, err)
        raise
    finally:
        stopper.uninstall()
    return result


def resume_command(compiled, run_dir: Path) -> str:
    """The command line that continues this run (what the messages tell a user to type)."""
    allow = " --allow-imports" if compiled.spec.imports else ""
    return f"kerapipe run --resume {run_dir}{allow}"


def _evaluate_and_predict(compiled, run_dir: Path, history: dict, seconds: dict) -> RunResult:
    """Test metrics, and predictions.csv with the argmax class of each test example."""
    spec = compiled.spec
    tick = time.perf_counter()
    test_metrics = compiled.evaluate()
    seconds["evaluate"] = time.perf_counter() - tick

    result = RunResult(run_dir, test_metrics, history, class_names=compiled.data.class_names)
    test = compiled.data.test
    if test is not None and len(test.y) and spec.output.predictions == "argmax":
        tick = time.perf_counter()
        probabilities = compiled.predict_proba()
        seconds["predict"] = time.perf_counter() - tick
        write_text_atomic(run_dir / "predictions.csv",
                          predictions_csv(probabilities, test.y, compiled.data.class_names,
                                          spec.output.top_k, compiled.data.num_classes))
        classes = probabilities.shape[1] if probabilities.ndim == 2 else 1
        classes = 2 if classes == 1 else classes  # one sigmoid unit: two classes
        if compiled.data.num_classes is not None and spec.output.top_k > classes:
            result.notes.append(f"output.top_k is {spec.output.top_k} but the model has "
                                f"{classes} classes; predictions.csv ranks all {classes}.")
        if compiled.data.num_classes is not None:
            from kerapipe.compiler.pipeline import probabilities_to_classes

            result.predicted = probabilities_to_classes(probabilities)
            result.true = np.asarray(test.y).astype(np.int64)
    return result


def resume_run(run_dir: Union[str, os.PathLike], file: Optional[str] = None,
               overrides: Sequence[str] = (), force: bool = False,
               command: Optional[Sequence[str]] = None,
               verbose: Union[int, str] = "auto", allow_imports: bool = False) -> RunResult:
    """Continue an interrupted run from its last checkpoint, in its own folder.

    The pipeline file (``file``, else the one recorded in run.json) must resolve to the
    same spec as the run's spec.yaml; otherwise the resume is refused with a diff of
    what changed, unless ``force``.

    Raises:
        UsageError: not a resumable run folder, already finished, or the file changed.
    """
    import difflib

    from kerapipe.errors import SpecError, UsageError
    from kerapipe.spec.validate import validate_file

    folder = Path(run_dir)
    record, stored = read_resumable_run(folder)
    file = file or record.get("pipeline_file")
    if not file:
        raise UsageError("this run was not started from a file; give the pipeline file.")
    overrides = list(overrides) or list(record.get("overrides") or [])  # as the run had them
    result = validate_file(file, overrides)
    if result.spec is None:
        raise SpecError(result.errors)
    if result.spec.seed is None:  # the run drew a seed: keep it
        overrides.append(f"seed={yaml_seed(stored, str(folder / 'spec.yaml'))}")
        result = validate_file(file, overrides)
    current = _resolved_yaml(result.spec)
    if current != stored and not force:
        diff = "".join(difflib.unified_diff(stored.splitlines(True), current.splitlines(True),
                                            f"{folder}/spec.yaml (the run)",
                                            f"{file} (now)"))
        raise UsageError(f"the pipeline changed since this run started, so resuming would "
                         f"mix two different runs:\n{diff}Resume with the unchanged file, or "
                         "pass --force to continue with the new one.")
    from kerapipe.compiler.imports import import_file_hashes  # TensorFlow: only now

    changed: list[str] = []
    if result.spec.imports and allow_imports:  # compare before any of the code runs
        base = Path(file).resolve().parent
        was, now = record.get("imports") or {}, import_file_hashes(result.spec, base)
        changed = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
        if changed and not force:
            raise UsageError(f"the imported code changed since this run started "
                             f"({', '.join(changed)}), so resuming would mix two different "
                             "models. Restore it, or pass --force to continue with the new "
                             "code (the run folder then keeps the new copy).")
    from kerapipe.compiler.pipeline import compile_pipeline

    compiled = compile_pipeline(file, overrides, allow_imports=allow_imports)
    forced = force and (current != stored or bool(changed))
    return run_pipeline(compiled, command=command, verbose=verbose, resume_dir=folder,
                        resumed_spec_text=current if forced else None)


def read_resumable_run(run_dir: Union[str, os.PathLike]) -> tuple[dict, str]:
    """run.json and spec.yaml of a run folder that ``--resume`` may continue.

    Raises:
        UsageError: the folder is not a kerapipe run folder, finished already, or one of
            the two files is damaged (``run_files``).
    """
    from kerapipe.errors import UsageError
    from kerapipe.run_files import max_spec_bytes, read_run_record, read_run_text

    folder = Path(run_dir)
    if not os.path.isdir(folder) or not os.path.lexists(folder / "run.json"):
        raise UsageError(f"'{folder}' is not a kerapipe run folder that can be resumed (it "
                         "has no run.json). Give a folder that `kerapipe run` created.")
    record = read_run_record(folder / "run.json")
    if "kerapipe" not in record:
        raise UsageError(f"'{folder}' is not a kerapipe run folder that can be resumed (its "
                         "run.json is not a kerapipe run record). Give a folder that "
                         "`kerapipe run` created.")
    if record["status"] == "finished":
        raise UsageError(f"'{folder}' finished already; there is nothing to resume.")
    return record, read_run_text(folder / "spec.yaml", max_spec_bytes())


def yaml_seed(spec_text: str, where: str = "spec.yaml") -> int:
    """The seed a run drew, from its resolved spec.yaml.

    Raises:
        UsageError: the text is not a pipeline mapping with an integer seed in range.
    """
    from kerapipe.run_files import damaged
    from kerapipe.spec.model import MAX_SEED
    from kerapipe.spec.yaml_loader import LoadProblem, load_document

    try:
        data = load_document(spec_text, where).data
    except LoadProblem as problem:
        raise damaged(where, f"it is not a pipeline file ({problem.issue.message})") from problem
    seed = data.get("seed") if isinstance(data, dict) else None
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise damaged(where, f"its seed should be an integer from 0 to {MAX_SEED}. "
                             f"Received: seed={str(seed)[:40]}")
    return seed


def keras_early_stopping():
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import keras

    return keras.callbacks.EarlyStopping


def _resumable_early_stopping(compiled, state: dict, checkpoint: Optional[Path]):
    """The pipeline's EarlyStopping, rebuilt so a resume carries its patience and best."""
    from kerapipe.callbacks import BEST_WEIGHTS, ResumableEarlyStopping

    early = compiled.spec.train.early_stopping
    if early is None:
        return None
    return ResumableEarlyStopping(
        monitor=early.monitor, patience=early.patience, min_delta=early.min_delta,
        mode=early.mode, restore_best_weights=early.restore_best_weights,
        start_from_epoch=early.start_from_epoch, restored=state.get("early_stopping"),
        best_weights_file=checkpoint / BEST_WEIGHTS if checkpoint else None)


def _stopped_early(state: dict, spec) -> bool:
    early, saved = spec.train.early_stopping, state.get("early_stopping")
    return bool(early and saved and saved["wait"] >= early.patience
                and state.get("epochs_done", 0) > early.start_from_epoch)


def _write_metrics(run_dir: Path, spec, history: dict, test_metrics: dict,
                   accuracy: Optional[float], stopped: Optional[str] = None) -> None:
    epochs_run = len(next(iter(history.values()), []))
    payload = {"test": test_metrics, "test_accuracy_argmax": accuracy,
               "epochs_run": epochs_run, "epochs_planned": spec.train.epochs,
               "last_epoch": {k: v[-1] for k, v in history.items() if v}}
    if stopped:
        payload["stopped"] = stopped
    write_text_atomic(run_dir / "metrics.json", json.dumps(payload, indent=2) + "\n")


def _write_partial(compiled, run_dir: Path, history: dict, seconds: dict, command, early,
                   guard, stopper) -> None:
    """A run that stops early keeps what it finished, then raises the matching error."""
    from kerapipe.callbacks import latest_checkpoint, restore_checkpoint
    from kerapipe.errors import TrainingError

    checkpoint = latest_checkpoint(run_dir)
    if guard.tripped:
        epoch, batch, loss = guard.tripped
        if early is not None and early.best_weights is not None:
            compiled.model.set_weights(early.best_weights)
            kept = f"the best weights (epoch {early.best_epoch + 1})"
        elif checkpoint is not None:
            restore_checkpoint(compiled.model, checkpoint, compiled.custom_objects)
            kept = f"the last good checkpoint ({checkpoint.name})"
        else:
            kept = ""
        if kept:
            save_model_atomic(compiled.inference_model, run_dir / "model.keras")
        reason = f"loss became {loss} at epoch {epoch}, batch {batch}"
        status = "failed"
    else:
        reason = f"interrupted by {'SIGTERM' if stopper.received == 15 else 'SIGINT'}"
        status = "interrupted"
    write_text_atomic(run_dir / "history.csv", history_csv(history))
    _write_metrics(run_dir, compiled.spec, history, {}, None, stopped=reason)
    write_text_atomic(run_dir / "run.json", json.dumps(
        run_record(compiled, command, seconds, status=status, reason=reason), indent=2) + "\n")
    done = len(next(iter(history.values()), []))
    if guard.tripped:
        error: Exception = TrainingError(
            f"{reason}; training stopped. The run folder {run_dir} keeps "
            f"{kept or 'no model (no epoch finished)'} and the history of {done} finished "
            "epoch(s). Lower optimizer.learning_rate (e.g. 10x), check the data for extreme "
            "values, or add a normalize step.")
    else:
        error = Interrupted(f"{reason} after {done} finished epoch(s); the run folder "
                            f"{run_dir} keeps its last checkpoint. Continue it with: "
                            f"{resume_command(compiled, run_dir)}", stopper.received)
    error.recorded = True  # run.json and metrics.json say why already
    raise error


_REASON_LIMIT = 2000  # characters of an error kept in run.json and metrics.json


def failure_reason(err: BaseException) -> str:
    """What run.json says about a failed run: a kerapipe error's own message; for anything
    else (a bug, a signal turned exception) its type as well."""
    if isinstance(err, KerapipeError):
        text = str(err)
    elif isinstance(err, KeyboardInterrupt):
        text = "interrupted by KeyboardInterrupt (a second Ctrl-C)"
    elif isinstance(err, SystemExit):
        text = f"stopped by SystemExit({err.code!r})"
    else:
        text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return text if len(text) <= _REASON_LIMIT else text[:_REASON_LIMIT - 3] + "..."


def _write_failed(compiled, run_dir: Path, history: dict, seconds: dict, command,
                  err: BaseException) -> None:
    """A run that fails after its folder exists says why and keeps its checkpoints and
    finished epochs: run.json first (the smallest, and what says the run is over), then
    history.csv and metrics.json. Each write is tried on its own, and when the disk is
    full run.json is rewritten in the blocks it already holds. Never raises: the original
    error is the one to report (a note on it says what could not be written)."""
    from kerapipe.io import rewrite_when_full

    interrupted = not isinstance(err, Exception)  # KeyboardInterrupt, SystemExit
    status = "interrupted" if interrupted else "failed"
    reason = failure_reason(err)
    try:
        record = run_record(compiled, command, seconds, status=status, reason=reason)
    except Exception:  # the record's own parts failed: the status and reason still go
        record = {"status": status, "reason": reason,
                  "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    done = len(next(iter(history.values()), []))
    writes = [("run.json", lambda: rewrite_when_full(
                   run_dir / "run.json", json.dumps(record, indent=2) + "\n")),
              ("history.csv", lambda: write_text_atomic(run_dir / "history.csv",
                                                        history_csv(history))),
              ("metrics.json", lambda: _write_metrics(run_dir, compiled.spec, history, {},
                                                      None, stopped=reason))]
    unwritten = []
    for name, write in writes:
        try:
            write()
        except Exception as problem:  # noqa: BLE001 (best effort, reported below)
            unwritten.append(f"{name} ({problem})")
    if unwritten:
        err.add_note(f"kerapipe could not record the failure in {run_dir}: "
                     + "; ".join(unwritten))
    elif not isinstance(err, KerapipeError):  # a kerapipe error says what was kept itself
        continue_with = (f"; continue it with: {resume_command(compiled, run_dir)}"
                         if (run_dir / "checkpoints" / "LATEST").exists() else "")
        err.add_note(f"The run folder {run_dir} is marked {status} and keeps the history of "
                     f"{done} finished epoch(s){continue_with}")


def save_model_atomic(model, path: Path) -> None:
    """``model.save`` to a temporary ``.keras`` name in the same folder, then rename."""
    tmp = path.with_name(f".tmp-{path.name}")  # Keras requires the .keras suffix
    try:
        model.save(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}.") from err
    finally:
        if tmp.exists():
            tmp.unlink()


def _resolved_yaml(spec) -> str:
    import yaml

    return RESOLVED_SPEC_HEADER + yaml.safe_dump(to_plain(spec), sort_keys=False,
                                                 default_flow_style=None)


def history_csv(history: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = list(history)
    writer.writerow(["epoch", *keys])
    for epoch in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([epoch + 1, *(repr(history[k][epoch]) for k in keys)])
    return out.getvalue()


def ranked_columns(top_k: int, classes: int) -> int:
    """How many classes predictions.csv ranks per example: ``output.top_k``, at most the
    classes the model outputs (a larger top_k would promise columns no row can fill)."""
    return max(1, min(int(top_k), int(classes)))


_RANK_CHUNK = 1 << 22  # index entries ranked at a time (32 MiB of int64), whatever the rows


def _top_classes(probabilities: np.ndarray, k: int):
    """Per row, the ``k`` most probable classes, most probable first; the first is always
    ``argmax`` (ties go to the lower class index; at the edge of a partitioned top k, a tie
    goes either way). Yields one block of rows at a time."""
    classes = probabilities.shape[1]
    rows = max(1, _RANK_CHUNK // max(classes, 1))
    for start in range(0, len(probabilities), rows):
        block = probabilities[start:start + rows]
        if k < classes and classes > 64:  # many classes, few asked for: partition first
            part = np.argpartition(-block, k - 1, axis=1)[:, :k]
            values = np.take_along_axis(block, part, axis=1)
            top = np.take_along_axis(part, np.lexsort((part, -values), axis=1), axis=1)
            top[:, 0] = np.argmax(block, axis=1)  # a tied best left out by the partition
            yield top
        else:
            yield np.argsort(-block, axis=1, kind="stable")[:, :k]


def predictions_csv(probabilities: np.ndarray, true: np.ndarray, class_names: Optional[list],
                    top_k: int, num_classes: Optional[int]) -> str:
    """index, predicted, predicted_name, confidence, true, true_name (+ top-k columns).

    ``top_k`` is clamped to the number of classes the model outputs (``ranked_columns``).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if num_classes is None:  # regression: the predicted value itself
        writer.writerow(["index", "predicted", "true"])
        for index, (value, target) in enumerate(zip(probabilities.reshape(len(true), -1)[:, 0],
                                                    true)):
            writer.writerow([index, f"{value:.6g}", f"{float(target):.6g}"])
        return out.getvalue()
    if probabilities.ndim == 2 and probabilities.shape[1] == 1:  # one sigmoid unit
        probabilities = np.concatenate([1 - probabilities, probabilities], axis=1)
    name = (lambda i: str(class_names[i]) if class_names and i < len(class_names) else str(i))
    k = ranked_columns(top_k, probabilities.shape[1])
    header = ["index", "predicted", "predicted_name", "confidence", "true", "true_name"]
    for rank in range(2, k + 1):
        header += [f"top{rank}", f"top{rank}_name", f"top{rank}_confidence"]
    writer.writerow(header)
    index = 0
    for block in _top_classes(probabilities, k):
        for row in block:
            best = int(row[0])
            label = int(true[index])
            line: list[Any] = [index, best, name(best), f"{probabilities[index, best]:.6f}",
                               label, name(label)]
            for cls in row[1:]:
                line += [int(cls), name(int(cls)), f"{probabilities[index, cls]:.6f}"]
            writer.writerow(line)
            index += 1
    return out.getvalue()


def run_record(compiled, command: Optional[Sequence[str]], seconds: dict,
               status: str = "finished", reason: Optional[str] = None) -> dict:
    """run.json: status (and the reason a run did not finish), versions, seed, data
    fingerprint, command line, timings."""
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import keras
    import tensorflow as tf

    from kerapipe import __version__

    data = compiled.data
    splits = {"train": len(data.train.y)}
    for name in ("validation", "test"):
        split = getattr(data, name)
        splits[name] = 0 if split is None else len(split.y)
    return {
        "status": status,
        **({"reason": reason} if reason is not None else {}),
        "kerapipe": __version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": compiled.spec.seed,
        "pipeline_file": os.path.abspath(compiled.source_file) if compiled.source_file else None,
        "base_dir": str(compiled.base_dir),
        "command": list(command) if command else None,
        "overrides": list(getattr(compiled, "overrides", [])),
        "imports": compiled.import_hashes,
        "data": {"description": data.description, "fingerprint": data.fingerprint,
                 "splits": splits, "class_names": data.class_names,
                 "num_classes": data.num_classes, "example_shape": list(data.example_shape)},
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
