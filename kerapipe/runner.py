"""The run loop: fit, evaluate and predict a compiled pipeline into its run folder, and
continue an interrupted run (``resume_run``).

Where a run folder goes, what its files hold and every write into it is
``kerapipe.run_folder``; reading one back is ``kerapipe.run_files``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from kerapipe.compiler.predictions import (class_columns, outputs_predictions_csv,
                                           prediction_arrays, predictions_csv,
                                           probabilities_to_classes)
from kerapipe.errors import Interrupted, PeerLost, SpecError, TrainingError, UsageError
from kerapipe.run_folder import BEST_WEIGHTS, RunFolder, resolved_yaml
from kerapipe.run_location import ensure_free_space
from kerapipe.tracking import MlflowTracker, TrackedRun

__all__ = ["RunResult", "resume_run", "run_pipeline"]


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
        mlflow: where the run is in MLflow (``TrackedRun``); ``None``: not tracked, or
            tracking stopped (a note said so).
    """

    run_dir: Path
    test_metrics: dict
    history: dict
    predicted: Optional[np.ndarray] = None
    true: Optional[np.ndarray] = None
    class_names: Optional[list] = None
    seconds: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    mlflow: Optional[TrackedRun] = None

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


@dataclass
class _Run:
    """One run in progress: its folder, what a resume restored, and the callbacks that
    say how training stopped."""

    compiled: Any
    folder: RunFolder
    stopper: Any  # SignalStop
    state: dict = field(default_factory=dict)  # the checkpoint's state.json ({}: none)
    checkpoint: Optional[Path] = None
    seconds: dict = field(default_factory=dict)
    early: Any = None  # the pipeline's EarlyStopping
    guard: Any = None  # NonFiniteLossGuard
    saver: Any = None  # EpochCheckpoint
    files: list = field(default_factory=list)  # train.callbacks that write files
    best_weights: Any = None  # a multi-worker resume: early stopping's best, the chief's
    tracker: MlflowTracker = field(default_factory=MlflowTracker)  # MLflow, when asked

    @property
    def history(self) -> dict:
        """The finished epochs' history so far (a resume's own, before the saver has it)."""
        return self.saver.history if self.saver is not None else dict(
            self.state.get("history") or {})


def run_pipeline(compiled, output_dir: Optional[str] = None,
                 command: Optional[Sequence[str]] = None,
                 verbose: Union[int, str] = "auto",
                 resume_dir: Optional[Union[str, os.PathLike, RunFolder]] = None,
                 resumed_spec_text: Optional[str] = None,
                 callbacks: Sequence[Any] = ()) -> RunResult:
    """Fit, evaluate on the test split, predict (argmax), and write the run folder.

    Every finished epoch is checkpointed and its history.csv rewritten. SIGINT/SIGTERM
    stop at the next step boundary (``Interrupted``, exit 130/143); a non-finite loss
    stops with ``TrainingError`` (exit 4). Any other failure once the run folder exists
    (a kerapipe error, an unexpected exception, a KeyboardInterrupt) marks run.json
    ``failed`` (or ``interrupted``) with the reason, keeps the finished epochs' history,
    and is re-raised unchanged. With ``resume_dir``, training continues from that run's
    last checkpoint (``resumed_spec_text``: the new spec.yaml of a ``--force`` resume).
    ``callbacks`` (Keras callbacks) are added to the pipeline's own.
    """
    from kerapipe.callbacks import SignalStop
    from kerapipe.compiler.keras_callbacks import close_files

    spec = compiled.spec
    started = time.perf_counter()
    ensure_free_space(resume_dir if resume_dir is not None else
                      (output_dir or spec.output.dir), compiled)
    if resume_dir is not None:  # a refusal here leaves the run folder as it was
        run = _reopen(compiled, resume_dir, SignalStop())
        run.tracker = MlflowTracker.for_run(compiled, run.folder.path.parent, run.folder.record)
    else:
        tracker = MlflowTracker.for_run(compiled, output_dir or spec.output.dir)  # refusals first
        run = _Run(compiled, _new_folder(compiled, output_dir or spec.output.dir),
                   SignalStop(), tracker=tracker)
    run.stopper.install()  # until the last file is written: a late signal is handled too
    try:  # from here on, every failure is recorded in the run folder
        result = _train_and_record(run, command, verbosity() if verbose == "auto" else verbose,
                                   list(callbacks), resume_dir is None or
                                   resumed_spec_text is not None, resumed_spec_text)
        run.seconds["total"] = time.perf_counter() - started
        result.seconds = run.seconds
        if compiled.distribution.is_chief:  # another worker's folder is its backup only
            run.folder.write_metrics(result.history, result.test_metrics, result.accuracy)
        run.folder.finish(run.seconds)
    except BaseException as err:  # out of memory, a full disk, a bug, a second Ctrl-C, ...
        if not getattr(err, "recorded", False):  # _record_stop said why already
            run.folder.record_failure(err, run.history, run.seconds)
        run.tracker.end(run.folder, err)
        raise
    finally:
        run.stopper.uninstall()
        close_files(run.files)  # a fit that raised never ran their on_train_end
    if compiled.distribution.is_chief:
        _write_report(run.folder, result)
    result.mlflow = run.tracker.finish(run.folder, result)  # last: report.html is an artifact
    return result


def _write_report(folder: RunFolder, result: RunResult) -> None:
    """The finished run's plots, classification report and report.html
    (``kerapipe.html_report``). A failure to write them is a note, not a failed run: the
    run's results are in its folder already, and ``kerapipe report`` writes them again."""
    from kerapipe.html_report import CallbackFileInTheWay, write_run_report

    try:
        write_run_report(folder)
    except CallbackFileInTheWay as err:
        result.notes.append(str(err))
    except Exception as err:  # noqa: BLE001 (the run stays finished; the note says why)
        result.notes.append(f"the report was not written ({type(err).__name__}: {err}); "
                            f"write it with: kerapipe report {folder.path}")


def _new_folder(compiled, output_dir) -> RunFolder:
    """The chief's new run folder; any other worker's own backup folder beside it, named
    after the chief's (``cluster.worker_folder``), which every worker learns from the
    chief."""
    distribution = compiled.distribution
    folder = RunFolder.create(output_dir, compiled.spec.name) if distribution.is_chief \
        else None
    if distribution.workers == 1:
        return folder
    name = distribution.agree_on_text(folder.path.name if folder is not None else "")
    if folder is not None:
        return folder
    from kerapipe.cluster import worker_folder

    return RunFolder.create_worker_backup(worker_folder(Path(output_dir) / name,
                                                        distribution.worker_index))


def own_folder(run_dir: Union[str, os.PathLike]) -> Path:
    """The folder this process resumes: ``run_dir``, or for a multi-worker worker other
    than the chief (``TF_CONFIG`` says which) its own backup beside it."""
    if os.environ.get("TF_CONFIG"):
        from kerapipe.cluster import cluster_from_environment, worker_folder

        try:
            cluster = cluster_from_environment()
        except UsageError:
            return Path(run_dir)  # not a cluster kerapipe can train in: said when it compiles
        if not cluster.is_chief:
            return worker_folder(run_dir, cluster.index)
    return Path(run_dir)


def _reopen(compiled, resume_dir, stopper) -> _Run:
    """The interrupted run, its model and optimizer back at the last checkpoint."""
    from kerapipe.callbacks import restore_checkpoint

    distribution = compiled.distribution
    if not isinstance(resume_dir, RunFolder) and not distribution.is_chief:
        from kerapipe.cluster import worker_folder

        resume_dir = worker_folder(resume_dir, distribution.worker_index)  # its own backup
    folder = resume_dir if isinstance(resume_dir, RunFolder) else \
        RunFolder.open_for_resume(resume_dir, finished_ok=not distribution.is_chief)
    # (the API's too: never a foreign folder, nor a finished one but a worker's backup)
    run = _Run(compiled, folder, stopper, checkpoint=folder.latest_checkpoint())
    if distribution.workers > 1:
        _reopen_on_every_worker(run)
    elif run.checkpoint is not None:
        if compiled.spec.train.stages:  # the checkpoint's stage first: its optimizer's state
            compiled.resume_stages(_checkpoint_state(run.checkpoint))
        run.state = restore_checkpoint(compiled.model, run.checkpoint, compiled.custom_objects)
        # Later epochs must not replay the first epochs' data order.
        compiled.reshuffle(int(run.state.get("epochs_done", 0)))
    return run


def _checkpoint_state(checkpoint: Path) -> dict:
    from kerapipe.run_files import read_checkpoint_state
    from kerapipe.run_folder import STATE_FILE

    return read_checkpoint_state(checkpoint / STATE_FILE)


def _reopen_on_every_worker(run: _Run) -> None:
    """A multi-worker resume: every worker goes on from the chief's checkpoint.

    Each worker restores its own backup, then takes the chief's state (epochs done,
    history, counters) and the chief's weights and optimizer variables over the
    collectives: a kill between the chief's checkpoint and another worker's leaves that
    worker an epoch behind (or with none), and workers that went on from different
    epochs would run different steps and never meet again."""
    from kerapipe.callbacks import restore_checkpoint

    compiled, distribution = run.compiled, run.compiled.distribution
    own = _checkpoint_state(run.checkpoint) if run.checkpoint is not None else {}
    state = distribution.agree_on_json(own)
    if not state:
        return  # the chief has no checkpoint: every worker starts from the beginning
    if compiled.spec.train.stages:
        compiled.resume_stages(state)
    if run.checkpoint is not None and own.get("epochs_done") == state.get("epochs_done"):
        restore_checkpoint(compiled.model, run.checkpoint, compiled.custom_objects)
    model = compiled.model
    distribution.share_the_chiefs([*model.weights, *model.optimizer.variables])
    run.state = state
    compiled.reshuffle(int(state.get("epochs_done", 0)))
    early = _pipeline_early_stopping(compiled)
    if early is None or not early.restore_best_weights or not state.get("early_stopping"):
        return
    # Early stopping's best weights: the chief's too (a worker's own may be older).
    best = run.checkpoint / BEST_WEIGHTS if run.checkpoint is not None else None
    if distribution.agree_on_int(int(best is not None and best.exists())):
        current = model.get_weights()
        if distribution.is_chief:
            model.load_weights(best)
        distribution.share_the_chiefs(model.weights)
        run.best_weights = model.get_weights()
        model.set_weights(current)


def _train_and_record(run: _Run, command, verbose, extra: list, write_spec: bool,
                      spec_text: Optional[str]) -> RunResult:
    """spec.yaml and run.json, training, then evaluation, predictions and the model."""
    from kerapipe.compiler.faults import user_faults

    compiled, folder = run.compiled, run.folder
    callbacks = _loop_callbacks(run, extra)
    if write_spec:  # a new run, or a --force resume: the new file
        folder.write_spec(spec_text or resolved_yaml(compiled.spec))
        folder.copy_imports(compiled.spec, compiled.base_dir)
    folder.begin(compiled, command)
    run.tracker.start(folder, compiled.spec)
    _fit(run, callbacks, verbose)
    if run.guard.tripped or run.stopper.received:
        _record_stop(run)
    with user_faults(compiled, "evaluation"):
        result = _evaluate_and_predict(compiled, folder, run.history, run.seconds)
    if run.stopper.received:  # arrived during evaluation: --resume redoes only that part
        _record_stop(run)
    if compiled.distribution.is_chief:  # another worker's folder is its backup only
        from kerapipe.report import model_summary

        folder.save_model(compiled.inference_model)
        folder.write_model_summary(model_summary(compiled.model))  # for report.html
    folder.write_history(result.history)
    return result


def _loop_callbacks(run: _Run, extra: list) -> list:
    """What ``fit`` gets on top of the pipeline's callbacks: a resume's early-stopping
    counters first, then the caller's, then the guard, the checkpoints and the signal
    stop (the saver checkpoints a finished epoch before the stopper acts on a signal)."""
    from kerapipe.callbacks import (EpochCheckpoint, NonFiniteLossGuard, RestoreCallbackState,
                                    RestoreEarlyStopping)
    from kerapipe.compiler.keras_callbacks import file_callbacks

    run.early = _pipeline_early_stopping(run.compiled)
    restore = []
    mid_stage = not run.compiled.spec.train.stages or run.compiled.stage_progress.continuing
    if run.early is not None and run.state.get("early_stopping") and mid_stage:
        restore = [RestoreEarlyStopping(run.early, run.state["early_stopping"],
                                        run.checkpoint / BEST_WEIGHTS
                                        if run.checkpoint is not None else None,
                                        best_weights=run.best_weights)]
    # train.callbacks: their counters and lowered learning rate back; their files inside
    # the run folder (a resumed CSVLogger appends to the rows it wrote before)
    rate = run.compiled.spec.optimizer.learning_rate
    rate = rate if isinstance(rate, float) else None
    if run.state.get("callbacks") and mid_stage:
        restore.append(RestoreCallbackState(run.compiled.callbacks, run.state["callbacks"],
                                            rate))
    run.files = files = file_callbacks(run.compiled.spec, run.folder.path,
                                       resumed=bool(run.state)) \
        if run.compiled.distribution.is_chief else []  # TensorBoard, CSVLogger: the chief's
    run.guard = NonFiniteLossGuard()
    run.saver = EpochCheckpoint(run.folder, run.early, run.state.get("history"),
                                stateful=run.compiled.callbacks, file_learning_rate=rate)
    # MLflow logs an epoch after the saver checkpointed it, before a signal stops the fit
    return restore + files + extra + [run.guard, run.saver, *run.tracker.callbacks(),
                                      run.stopper]


def _fit(run: _Run, callbacks: list, verbose) -> None:
    from kerapipe.callbacks import stopped_early
    from kerapipe.compiler.faults import user_faults
    from kerapipe.errors import TrainingStopped

    compiled, done = run.compiled, int(run.state.get("epochs_done", 0))
    tick = time.perf_counter()
    try:
        if compiled.spec.train.stages:  # the stage loop goes on from stage_progress
            more = compiled.stage_progress.index < len(compiled.spec.train.stages)
        else:
            more = done < compiled.spec.train.epochs and not stopped_early(run.state, run.early)
        if more:
            with user_faults(compiled, "training"):
                compiled.fit(verbose=verbose, callbacks=callbacks, initial_epoch=done)
    except TrainingStopped:
        pass  # the guard or the signal handler says why
    except PeerLost as err:  # train.distribute: multi_worker
        checkpoint = run.folder.intact_checkpoint()
        err.add_note(f"{run.folder.path} keeps " + (
            f"its checkpoint {checkpoint.name}" if checkpoint else "no checkpoint yet")
            + f"; rerun every worker with: {run.folder.resume_command}")
        raise
    run.seconds["fit"] = time.perf_counter() - tick


def _pipeline_early_stopping(compiled):
    """The EarlyStopping among the pipeline's callbacks (``train.early_stopping``)."""
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import keras

    return next((c for c in compiled.callbacks
                 if isinstance(c, keras.callbacks.EarlyStopping)), None)


def _record_stop(run: _Run) -> None:
    """A run that stops early keeps what it finished, then raises the matching error."""
    from kerapipe.callbacks import restore_checkpoint

    compiled, folder, guard, early = run.compiled, run.folder, run.guard, run.early
    history = run.history
    if guard.tripped:
        checkpoint = folder.latest_checkpoint()
        epoch, batch, loss = guard.tripped
        if early is not None and early.best_weights is not None:
            compiled.model.set_weights(early.best_weights)
            kept = f"the best weights (epoch {early.best_epoch + 1})"
        elif checkpoint is not None:
            restore_checkpoint(compiled.model, checkpoint, compiled.custom_objects)
            kept = f"the last good checkpoint ({checkpoint.name})"
        else:
            kept = ""
        if kept and compiled.distribution.is_chief:
            folder.save_model(compiled.inference_model)
        reason = f"loss became {loss} at epoch {epoch}, batch {batch}"
        folder.record_stop("failed", reason, history, run.seconds)
    else:
        reason = f"interrupted by {'SIGTERM' if run.stopper.received == 15 else 'SIGINT'}"
        folder.record_stop("interrupted", reason, history, run.seconds)
    done = len(next(iter(history.values()), []))
    if guard.tripped:
        error: Exception = TrainingError(
            f"{reason}; training stopped. The run folder {folder.path} keeps "
            f"{kept or 'no model (no epoch finished)'} and the history of {done} finished "
            "epoch(s). Lower optimizer.learning_rate (e.g. 10x), check the data for extreme "
            "values, or add a normalize step.")
    else:
        error = Interrupted(f"{reason} after {done} finished epoch(s); the run folder "
                            f"{folder.path} keeps its last checkpoint. Continue it with: "
                            f"{folder.resume_command}", run.stopper.received)
    error.recorded = True  # run.json and metrics.json say why already
    raise error


def _evaluate_and_predict(compiled, folder: RunFolder, history: dict,
                          seconds: dict) -> RunResult:
    """Test metrics, and predictions.csv with the argmax class of each test example."""
    spec = compiled.spec
    tick = time.perf_counter()
    test_metrics = compiled.evaluate()
    seconds["evaluate"] = time.perf_counter() - tick

    result = RunResult(folder.path, test_metrics, history,
                       class_names=compiled.data.class_names)
    if not compiled.distribution.is_chief:  # the chief predicts, from the same weights
        return result
    test = compiled.data.test
    if test is not None and len(test.y) and spec.output.predictions == "argmax":
        tick = time.perf_counter()
        probabilities = compiled.predict_proba()
        seconds["predict"] = time.perf_counter() - tick
        if compiled.data.outputs is not None:  # several outputs: one column group each
            _write_outputs_predictions(compiled, folder, probabilities, result)
            return result
        labels = compiled.data.labels
        if labels is not None and labels.kind == "raw":  # arrays of any shape: no CSV rows
            folder.write_prediction_arrays(prediction_arrays(probabilities, test.ids))
            return result
        folder.write_predictions(predictions_csv(
            probabilities, inputs=test.ids, true=test.y,
            class_names=compiled.data.class_names, top_k=spec.output.top_k,
            num_classes=compiled.data.num_classes,
            **(labels.prediction_options() if labels is not None else {})))
        if compiled.data.num_classes is not None and (
                labels is None or labels.kind in ("classes", "binary")):
            classes = class_columns(probabilities).shape[1]
            if spec.output.top_k > classes:
                result.notes.append(f"output.top_k is {spec.output.top_k} but the model has "
                                    f"{classes} classes; predictions.csv ranks all {classes}.")
            result.predicted = probabilities_to_classes(probabilities)
            result.true = np.asarray(test.y).astype(np.int64)
    return result


def _write_outputs_predictions(compiled, folder: RunFolder, outputs: dict,
                               result: RunResult) -> None:
    """predictions.csv of a model of several outputs; the run's summary counts the
    first output's classes (when it predicts classes)."""
    data, test = compiled.data, compiled.data.test
    heads = {name: (facts.class_names, facts.num_classes) for name, facts in data.outputs.items()}
    folder.write_predictions(outputs_predictions_csv(
        outputs, heads, inputs=test.ids, true=test.y_outputs, top_k=compiled.spec.output.top_k))
    first = next(iter(data.outputs))
    if data.outputs[first].num_classes is not None:
        result.predicted = probabilities_to_classes(outputs[first])
        result.true = np.asarray(test.y).astype(np.int64)


# --- resume ----------------------------------------------------------------------------

def resume_run(run_dir: Union[str, os.PathLike], file: Optional[str] = None,
               overrides: Sequence[str] = (), force: bool = False,
               command: Optional[Sequence[str]] = None,
               verbose: Union[int, str] = "auto", allow_imports: bool = False) -> RunResult:
    """Continue an interrupted run from its last checkpoint, in its own folder.

    The pipeline file (``file``, else the one recorded in run.json) must resolve to the
    same spec as the run's spec.yaml; otherwise the resume is refused with a diff of
    what changed, unless ``force``. The file is validated once.

    Raises:
        UsageError: not a resumable run folder, already finished, or the file changed.
    """
    own = own_folder(run_dir)
    folder = RunFolder.open_for_resume(own, finished_ok=own != Path(run_dir))
    file = file or folder.record.get("pipeline_file")
    if not file:
        raise UsageError("this run was not started from a file; give the pipeline file.")
    overrides = list(overrides) or list(folder.record.get("overrides") or [])  # as it ran
    result = _validated_with_the_runs_seed(file, overrides, folder)
    current = resolved_yaml(result.spec)
    stored = folder.spec_text if current == folder.spec_text else _stored_spec_now(folder)
    if current != stored and not force:
        _refuse_a_changed_pipeline(folder, file, stored, current)
    changed = _changed_imports(folder, result.spec, file) if allow_imports else []
    if changed and not force:  # compared before any of the code runs
        raise UsageError(f"the imported code changed since this run started "
                         f"({', '.join(changed)}), so resuming would mix two different "
                         "models. Restore it, or pass --force to continue with the new "
                         "code (the run folder then keeps the new copy).")
    from kerapipe.pipeline import compile_pipeline  # TensorFlow: only now

    compiled = compile_pipeline(result, allow_imports=allow_imports)
    forced = force and (current != stored or bool(changed))
    return run_pipeline(compiled, command=command, verbose=verbose, resume_dir=folder,
                        resumed_spec_text=current if forced else None)


def _validated_with_the_runs_seed(file: str, overrides: list, folder: RunFolder):
    """The file's ``ValidationResult``; a seed the run drew (the file has none) is put
    back as the override ``seed=N`` that run.json records, without validating again."""
    import dataclasses

    from kerapipe.run_files import yaml_seed
    from kerapipe.spec.validate import validate_file

    result = validate_file(file, overrides)
    if result.spec is None:
        raise SpecError(result.errors)
    if result.spec.seed is None:
        seed = yaml_seed(folder.spec_text, str(folder.path / "spec.yaml"))
        result = dataclasses.replace(result, spec=dataclasses.replace(result.spec, seed=seed),
                                     overrides=(*result.overrides, f"seed={seed}"))
    return result


def _stored_spec_now(folder: RunFolder) -> str:
    """The run's spec.yaml as this kerapipe resolves it: a key added to the format since
    the run started is written with its default, which means what the run did (so a run
    begun by an older kerapipe resumes unforced); as stored when it no longer validates."""
    from kerapipe.spec.validate import validate_text

    stored = validate_text(folder.spec_text, str(folder.path / "spec.yaml"), resolve=False)
    return resolved_yaml(stored.spec) if stored.spec is not None else folder.spec_text


def _refuse_a_changed_pipeline(folder: RunFolder, file: str, stored: str,
                               current: str) -> None:
    import difflib

    diff = "".join(difflib.unified_diff(stored.splitlines(True), current.splitlines(True),
                                        f"{folder.path}/spec.yaml (the run)", f"{file} (now)"))
    raise UsageError(f"the pipeline changed since this run started, so resuming would "
                     f"mix two different runs:\n{diff}Resume with the unchanged file, or "
                     "pass --force to continue with the new one.")


def _changed_imports(folder: RunFolder, spec, file: str) -> list[str]:
    """The imported files whose hash differs from the one run.json recorded."""
    if not spec.imports:
        return []
    from kerapipe.compiler.imports import import_file_hashes  # TensorFlow: only now

    was = folder.record.get("imports") or {}
    now = import_file_hashes(spec, Path(file).resolve().parent)
    return sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
