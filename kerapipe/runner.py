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

from kerapipe.errors import KerapipeError, OutputError
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
    """

    run_dir: Path
    test_metrics: dict
    history: dict
    predicted: Optional[np.ndarray] = None
    true: Optional[np.ndarray] = None
    class_names: Optional[list] = None
    seconds: dict = field(default_factory=dict)

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
        OutputError: it cannot be created or written.
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


def _closest_existing(folder: Union[str, os.PathLike]) -> Path:
    existing = Path(folder).absolute()
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


def new_run_dir(output_dir: Union[str, os.PathLike], name: str) -> Path:
    """Create ``<output_dir>/<name>-<timestamp>[-N]``: always a new, empty folder.

    Raises:
        OutputError: the output folder cannot be created or written.
    """
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(output_dir)
    try:
        base.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 1000):
            candidate = base / (f"{name}-{stamp}" + (f"-{attempt}" if attempt > 1 else ""))
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
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

    Every finished epoch is checkpointed. SIGINT/SIGTERM stop at the next step boundary
    (``Interrupted``, exit 130/143); a non-finite loss stops with ``TrainingError``
    (exit 4). Both still write history.csv and metrics.json for the finished epochs.
    With ``resume_dir``, training continues from that run's last checkpoint.
    """
    from kerapipe.callbacks import (EpochCheckpoint, NonFiniteLossGuard, SignalStop,
                                    TrainingStopped, latest_checkpoint, restore_checkpoint)
    from kerapipe.compiler.faults import user_faults
    from kerapipe.compiler.imports import copy_import_files
    from kerapipe.errors import Interrupted

    spec = compiled.spec
    started = time.perf_counter()
    state: dict = {}
    ensure_free_space(resume_dir if resume_dir is not None else
                      (output_dir or spec.output.dir), compiled)
    if resume_dir is not None:  # a refusal here leaves the run folder as it was
        run_dir = Path(resume_dir)
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is not None:
            state = restore_checkpoint(compiled.model, checkpoint, compiled.custom_objects)
            # Later epochs must not replay the first epochs' data order.
            compiled.reshuffle(int(state.get("epochs_done", 0)))
    else:
        run_dir = new_run_dir(output_dir or spec.output.dir, spec.name)
    verbose = verbosity() if verbose == "auto" else verbose
    seconds: dict[str, float] = {}
    early = _resumable_early_stopping(compiled, state, checkpoint if state else None)
    others = [c for c in compiled.callbacks if not isinstance(c, keras_early_stopping())]
    guard, stopper = NonFiniteLossGuard(), SignalStop()
    saver = EpochCheckpoint(run_dir, early, state.get("history"),
                            resume_command=resume_command(compiled, run_dir))
    # The saver checkpoints a finished epoch before the stopper acts on a signal.
    callbacks = others + ([early] if early else []) + [guard, saver, stopper]
    done = int(state.get("epochs_done", 0))
    stopper.install()  # until the last file is written: a late signal is handled too
    try:
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
    except KerapipeError as err:  # out of memory, a full disk, an undecodable image, ...
        if not isinstance(err, Interrupted) and not getattr(err, "recorded", False):
            _write_failed(compiled, run_dir, saver.history, seconds, command, err)
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
    try:
        record = json.loads((folder / "run.json").read_text("utf-8"))
        stored = (folder / "spec.yaml").read_text("utf-8")
    except (OSError, ValueError) as err:
        raise UsageError(f"'{folder}' is not a kerapipe run folder that can be resumed "
                         f"({err}).") from err
    if record.get("status") == "finished":
        raise UsageError(f"'{folder}' finished already; there is nothing to resume.")
    file = file or record.get("pipeline_file")
    if not file:
        raise UsageError("this run was not started from a file; give the pipeline file.")
    overrides = list(overrides) or list(record.get("overrides") or [])  # as the run had them
    result = validate_file(file, overrides)
    if result.spec is None:
        raise SpecError(result.errors)
    if result.spec.seed is None:  # the run drew a seed: keep it
        overrides.append(f"seed={yaml_seed(stored)}")
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


def yaml_seed(spec_text: str) -> int:
    import yaml

    return int(yaml.safe_load(spec_text)["seed"])


def keras_early_stopping():
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
    from kerapipe.errors import Interrupted, TrainingError

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
        run_record(compiled, command, seconds, status=status), indent=2) + "\n")
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


def _write_failed(compiled, run_dir: Path, history: dict, seconds: dict, command,
                  err: Exception) -> None:
    """A run that fails after it started keeps its checkpoints and finished epochs, and
    says why in run.json and metrics.json (best effort: the folder may be what failed)."""
    try:
        write_text_atomic(run_dir / "history.csv", history_csv(history))
        _write_metrics(run_dir, compiled.spec, history, {}, None, stopped=str(err))
        write_text_atomic(run_dir / "run.json", json.dumps(
            run_record(compiled, command, seconds, status="failed"), indent=2) + "\n")
    except OutputError:
        pass  # the original error is the one to report


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

    header = "# The pipeline as it ran: every default filled in (kerapipe resolved spec).\n"
    return header + yaml.safe_dump(to_plain(spec), sort_keys=False, default_flow_style=None)


def history_csv(history: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = list(history)
    writer.writerow(["epoch", *keys])
    for epoch in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([epoch + 1, *(repr(history[k][epoch]) for k in keys)])
    return out.getvalue()


def predictions_csv(probabilities: np.ndarray, true: np.ndarray, class_names: Optional[list],
                    top_k: int, num_classes: Optional[int]) -> str:
    """index, predicted, predicted_name, confidence, true, true_name (+ top-k columns)."""
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
    order = np.argsort(-probabilities, axis=1)[:, :max(top_k, 1)]
    header = ["index", "predicted", "predicted_name", "confidence", "true", "true_name"]
    for rank in range(2, top_k + 1):
        header += [f"top{rank}", f"top{rank}_name", f"top{rank}_confidence"]
    writer.writerow(header)
    for index, row in enumerate(order):
        best = int(row[0])
        label = int(true[index])
        line: list[Any] = [index, best, name(best), f"{probabilities[index, best]:.6f}", label,
                           name(label)]
        for cls in row[1:]:
            line += [int(cls), name(int(cls)), f"{probabilities[index, cls]:.6f}"]
        writer.writerow(line)
    return out.getvalue()


def run_record(compiled, command: Optional[Sequence[str]], seconds: dict,
               status: str = "finished") -> dict:
    """run.json: versions, seed, data fingerprint, command line, timings."""
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
