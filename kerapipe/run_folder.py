"""The run folder: the one object that writes a run's files (``kerapipe.run_location``
says where it may go).

Every run gets a new folder ``<output.dir>/<name>-<timestamp>/`` (never reused, never
overwritten; ``RunFolder.create``), or continues an interrupted one
(``RunFolder.open_for_resume``). ``RunFolder`` writes every file in it: spec.yaml, the
copies of imported files, run.json, history.csv, metrics.json, predictions.csv,
model.keras and the checkpoints. Each is written atomically (temporary file, fsync,
rename), so an interrupted run never leaves a half-written file under its final name.
Reading a run folder back is ``kerapipe.run_files``.

No TensorFlow is imported here until a model is saved or the record's versions are read.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from kerapipe.errors import KerapipeError, OutputError, UsageError
from kerapipe.safe_io import rewrite_when_full, write_bytes_atomic, write_text_atomic
from kerapipe.run_files import (max_spec_bytes, read_checkpoint_pointer, read_run_record,
                                read_run_text)
from kerapipe.run_location import (RESOLVED_SPEC_HEADER, check_run_name, make_new_folder,
                                   refuse_inside_a_run)

CHECKPOINT_DIR = "checkpoints"
LATEST = "LATEST"
LAST_MODEL = "last.keras"
BEST_WEIGHTS = "best.weights.h5"
STATE_FILE = "state.json"
PLOTS_DIR = "plots"
MODEL_SUMMARY = "model_summary.txt"
_REASON_LIMIT = 2000  # characters of an error kept in run.json and metrics.json

PathLike = Union[str, os.PathLike]


# --- what the files hold -------------------------------------------------------------

def resolved_yaml(spec) -> str:
    """spec.yaml: the pipeline as it ran, every default filled in."""
    import yaml

    from kerapipe.spec.typed import to_plain

    return RESOLVED_SPEC_HEADER + yaml.safe_dump(to_plain(spec), sort_keys=False,
                                                 default_flow_style=None)


def history_csv(history: dict) -> str:
    """history.csv: one row per finished epoch, one column per value Keras logged."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = list(history)
    writer.writerow(["epoch", *keys])
    for epoch in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([epoch + 1, *(repr(history[k][epoch]) for k in keys)])
    return out.getvalue()


def run_facts(compiled, command: Optional[Sequence[str]]) -> dict:
    """What run.json says of a run whatever its status: versions, seed, pipeline file,
    command line, imported files' hashes, data fingerprint and splits."""
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import keras
    import numpy as np
    import tensorflow as tf

    from kerapipe import __version__

    data = compiled.data
    shape = data.example_shape  # several inputs: each input's, by name
    shape = ({name: list(each) for name, each in shape.items()} if isinstance(shape, dict)
             else list(shape))
    splits = {"train": len(data.train.y)}
    for name in ("validation", "test"):
        split = getattr(data, name)
        splits[name] = 0 if split is None else len(split.y)
    return {
        "kerapipe": __version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "seed": compiled.spec.seed,
        "pipeline_file": os.path.abspath(compiled.source_file) if compiled.source_file else None,
        "base_dir": str(compiled.base_dir),
        "command": list(command) if command else None,
        "overrides": list(getattr(compiled, "overrides", [])),
        "extends": list(getattr(compiled, "bases", [])),
        "imports": compiled.import_hashes,
        "data": {"description": data.description, "fingerprint": data.fingerprint,
                 "splits": splits, "class_names": data.class_names,
                 "num_classes": data.num_classes, "example_shape": shape,
                 "feature_columns": data.feature_names,
                 # train.class_weight as resolved on the training split (compiler.weights)
                 "class_weight": None if data.class_weights is None
                 else data.class_weights.record(),
                 "sample_weight": getattr(getattr(data.source, "options", None),
                                          "sample_weight", None),
                 # typed features: the learned fills and the rows dropped (csv_typed)
                 **data.source.record(),
                 # several outputs: each one's classes (the first's are also above)
                 "outputs": None if data.outputs is None else {
                     name: {"class_names": facts.class_names, "num_classes": facts.num_classes}
                     for name, facts in data.outputs.items()}},
    }


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


def not_finished_refusal(folder: PathLike, record: dict, only_finished: str) -> str:
    """The refusal of a command that needs a finished run, for a run whose run.json says
    it failed, was interrupted or is still running, with run.json's reason; ``--resume``
    is suggested for a run it can continue (a failed one would fail again).

    Args:
        folder: the run folder, as given.
        record: its run.json (``read_run_record``).
        only_finished: what the command needs, e.g. "Only a finished run has a report".
    """
    status, reason = record.get("status"), record.get("reason")
    because = f": {reason[:500]}" if isinstance(reason, str) and reason.strip() else ""
    resume = f"kerapipe run --resume {folder}"
    if status == "failed":
        return (f"'{folder}' is a run that failed, not a finished one{because}. "
                f"{only_finished}. Fix the cause, then run the pipeline again.")
    if status == "interrupted":
        return (f"'{folder}' is a run that was interrupted, not a finished one{because}. "
                f"{only_finished}; continue it with: {resume}")
    if status == "running":
        return (f"'{folder}' is a run that is still running, not a finished one. "
                f"{only_finished}; wait for it to finish (if its process is gone, continue "
                f"it with: {resume}).")
    return (f"'{folder}' is a run whose run.json says status {status!r}, not \"finished\". "
            f"{only_finished}.")


def resume_command(compiled, run_dir: PathLike) -> str:
    """The command line that continues this run (what the messages tell a user to type);
    for a multi-worker run, the chief's folder, on every worker (``--workers N`` when
    ``kerapipe run --workers N`` started them: ``cluster.LAUNCHED_WORKERS``)."""
    from kerapipe.cluster import LAUNCHED_WORKERS, chief_folder

    allow = " --allow-imports" if compiled.spec.imports else ""
    distribution = getattr(compiled, "distribution", None)
    if distribution is None or distribution.workers == 1:
        return f"kerapipe run --resume {run_dir}{allow}"
    launched = os.environ.get(LAUNCHED_WORKERS)
    where = f" --workers {launched}" if launched else " (on every worker)"
    chiefs = run_dir if distribution.is_chief else chief_folder(run_dir)
    return f"kerapipe run --resume {chiefs}{allow}{where}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


# --- the folder ----------------------------------------------------------------------

class RunFolder:
    """One run's folder, and the only writer of its files.

    Make one with ``create`` (a new run) or ``open_for_resume`` (an interrupted one);
    ``RunFolder(path)`` names an existing folder without checking it (to read its
    checkpoints). ``begin`` records the run as running; from then on ``finish``,
    ``record_stop`` or ``record_failure`` say how it ended.

    Attributes:
        path: the folder.
        record: the run.json it was opened with (``open_for_resume``), else ``{}``.
        spec_text: the spec.yaml it was opened with (``open_for_resume``), else ``None``.
        resume_command: the command line that continues the run (set by ``begin``).
    """

    def __init__(self, path: PathLike, record: Optional[dict] = None,
                 spec_text: Optional[str] = None) -> None:
        self.path = Path(path)
        self.record = dict(record or {})
        self.spec_text = spec_text
        started = self.record.get("started_at")
        self.started_at = started if isinstance(started, str) else _now()
        self.resume_command = f"kerapipe run --resume {self.path}"
        self._facts: dict = {}
        self._epochs_planned: Optional[int] = None

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:  # a message names the folder, as it named the path
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @classmethod
    def create(cls, output_dir: PathLike, name: str) -> "RunFolder":
        """A new, empty ``<output_dir>/<name>-<timestamp>[-N]``, proven to lie directly
        inside ``output_dir``.

        Raises:
            UsageError: ``name`` is not one folder name (see ``check_run_name``), or
                ``output_dir`` holds a NUL byte.
            OutputError: the output folder cannot be created or written, or it lies inside
                the folder of an earlier run.
        """
        check_run_name(name, output_dir)
        refuse_inside_a_run(output_dir)
        return cls(make_new_folder(output_dir, name))

    @classmethod
    def create_worker_backup(cls, path: PathLike) -> "RunFolder":
        """A new, empty folder for a multi-worker worker other than the chief: its own
        spec.yaml, run.json, history.csv and checkpoints (``kerapipe.cluster``).

        Raises:
            OutputError: it exists already or cannot be created.
        """
        folder = Path(path)
        try:
            folder.mkdir(parents=True)
        except OSError as err:
            raise OutputError(f"cannot create this worker's backup folder {folder}: "
                              f"{err.strerror or err}.") from err
        return cls(folder)

    @classmethod
    def open_for_resume(cls, path: PathLike, finished_ok: bool = False) -> "RunFolder":
        """An interrupted run's folder, its run.json and spec.yaml read and checked;
        ``finished_ok``: a multi-worker worker's backup, finished before its chief (which
        predicts and saves after the evaluation every worker takes part in).

        Raises:
            UsageError: the folder is not a kerapipe run folder, finished already, or one
                of the two files is damaged (``run_files``).
        """
        folder = Path(path)
        record = _kerapipe_record(folder, " that can be resumed")
        if record["status"] == "finished" and not finished_ok:
            raise UsageError(f"'{folder}' finished already; there is nothing to resume.")
        return cls(folder, record, read_run_text(folder / "spec.yaml", max_spec_bytes()))

    # --- what the run is -------------------------------------------------------------

    def write_spec(self, text: str) -> None:
        """spec.yaml: the resolved pipeline (``resolved_yaml``)."""
        write_text_atomic(self.path / "spec.yaml", text)

    def copy_imports(self, spec, base_dir: PathLike) -> None:
        """Keep each imported ``.py`` file at its `imports:` path, so the run's model can be
        reloaded (and audited) with the code it was trained with.

        Raises:
            OutputError: a file cannot be read or written.
        """
        from kerapipe.spec.validate import inside_folder

        for entry in spec.imports:
            if not entry.endswith(".py"):
                continue  # an installed module: its installed version is what reloads
            source = inside_folder(str(base_dir), entry)
            target = self.path / os.path.normpath(entry)  # the entry's path, not a link's
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                data = Path(source).read_bytes()
            except OSError as err:
                raise OutputError(f"cannot keep a copy of {entry} in {self.path}: "
                                  f"{err.strerror or err}.") from err
            write_bytes_atomic(target, data)

    # --- run.json ----------------------------------------------------------------------

    def begin(self, compiled, command: Optional[Sequence[str]]) -> None:
        """Write run.json with status ``running`` (no ``finished_at``)."""
        self.resume_command = resume_command(compiled, self.path)
        self._epochs_planned = compiled.spec.train.epochs
        self._facts = run_facts(compiled, command)
        if self.record:  # a resumed run: when it first started, and when it went on
            self._facts["resumed_at"] = _now()
        self._write_record(self._record("running", None, {}))

    def record_fact(self, key: str, value: Any) -> None:
        """Add ``key`` to run.json while the run is ``running`` (e.g. the MLflow run a
        ``--resume`` goes on in); every later rewrite of run.json keeps it."""
        self._facts[key] = value
        self._write_record(self._record("running", None, {}))

    def finish(self, seconds: dict) -> None:
        """run.json: ``finished``, with the stages' wall times."""
        self._write_record(self._record("finished", None, seconds))

    def _record(self, status: str, reason: Optional[str], seconds: dict) -> dict:
        record = {"status": status, **({"reason": reason} if reason is not None else {}),
                  **self._facts, "started_at": self.started_at}
        if status != "running":
            record["finished_at"] = _now()
        record["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
        return record

    def _write_record(self, record: dict, when_full: bool = False) -> None:
        text = json.dumps(record, indent=2) + "\n"
        (rewrite_when_full if when_full else write_text_atomic)(self.path / "run.json", text)

    # --- results -----------------------------------------------------------------------

    def write_history(self, history: dict) -> None:
        """history.csv (``history_csv``)."""
        write_text_atomic(self.path / "history.csv", history_csv(history))

    def write_metrics(self, history: dict, test_metrics: dict, accuracy: Optional[float],
                      stopped: Optional[str] = None) -> None:
        """metrics.json: test metrics, the argmax accuracy, epochs run and planned, the
        last epoch's values, and why training stopped when it did not finish."""
        epochs_run = len(next(iter(history.values()), []))
        payload = {"test": test_metrics, "test_accuracy_argmax": accuracy,
                   "epochs_run": epochs_run, "epochs_planned": self._epochs_planned,
                   "last_epoch": {k: v[-1] for k, v in history.items() if v}}
        if stopped:
            payload["stopped"] = stopped
        write_text_atomic(self.path / "metrics.json", json.dumps(payload, indent=2) + "\n")

    def write_predictions(self, text: str) -> None:
        """predictions.csv: the rows the prediction rules made."""
        write_text_atomic(self.path / "predictions.csv", text)

    def write_prediction_arrays(self, arrays: dict) -> None:
        """predictions.npz: a raw-label model's outputs, as they are (``prediction_arrays``)."""
        import numpy as np

        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_bytes_atomic(self.path / "predictions.npz", buffer.getvalue())

    def save_model(self, model) -> None:
        """model.keras: ``model.save`` to a temporary ``.keras`` name, fsync, rename.

        Raises:
            OutputError: the folder cannot be written.
        """
        path = self.path / "model.keras"
        tmp = path.with_name(f".tmp-{path.name}")  # Keras requires the .keras suffix
        try:
            model.save(tmp)
            _fsync(tmp)
            os.replace(tmp, path)
        except OSError as err:
            raise OutputError(f"cannot write {path}: {err.strerror or err}.") from err
        finally:
            if tmp.exists():
                tmp.unlink()

    # --- the report (kerapipe.html_report) ----------------------------------------------

    @classmethod
    def open_finished(cls, path: PathLike) -> "RunFolder":
        """A finished run's folder, its run.json read and checked (``kerapipe report``).

        Raises:
            UsageError: the folder is not a kerapipe run folder, has not finished, or its
                run.json is damaged (``run_files``).
        """
        folder = Path(path)
        record = _kerapipe_record(folder)
        if record["status"] != "finished":
            raise UsageError(not_finished_refusal(folder, record, "Only a finished run has a "
                                                  "report"))
        return cls(folder, record)

    def write_model_summary(self, text: str) -> None:
        """model_summary.txt: Keras's summary of the model, for the report."""
        write_text_atomic(self.path / MODEL_SUMMARY, text.rstrip("\n") + "\n")

    def write_plot(self, name: str, png: bytes) -> Path:
        """``plots/<name>``: one PNG; ``plots/`` is created, and must be a folder of the run
        (not a link that leads elsewhere).

        Raises:
            OutputError: ``plots`` is not a folder, or cannot be created or written.
        """
        plots = self.path / PLOTS_DIR
        try:
            plots.mkdir(exist_ok=True)
            if os.path.islink(plots) or not plots.is_dir():
                raise OutputError(f"cannot write {plots / name}: {plots} is not a folder of "
                                  "the run (a link or a file is in its place). Remove it, "
                                  "then run `kerapipe report` again.")
        except OSError as err:
            raise OutputError(f"cannot create {plots}: {err.strerror or err}.") from err
        write_bytes_atomic(plots / os.path.basename(name), png)
        return plots / os.path.basename(name)

    def write_report_file(self, name: str, text: str) -> Path:
        """A report file at the top of the folder: report.html, classification_report.csv.

        Raises:
            OutputError: the folder cannot be written.
        """
        path = self.path / os.path.basename(name)
        write_text_atomic(path, text)
        return path

    # --- how a run that did not finish ended --------------------------------------------

    def record_stop(self, status: str, reason: str, history: dict, seconds: dict) -> None:
        """A run that stopped on purpose (a signal, a non-finite loss): history.csv,
        metrics.json saying why, run.json ``status`` with the reason.

        Raises:
            OutputError: a file cannot be written.
        """
        self.write_history(history)
        self.write_metrics(history, {}, None, stopped=reason)
        self._write_record(self._record(status, reason, seconds))

    def record_failure(self, err: BaseException, history: dict, seconds: dict) -> None:
        """A run that fails after its folder exists says why and keeps its checkpoints and
        finished epochs: run.json first (the smallest, and what says the run is over), then
        history.csv and metrics.json. Each write is tried on its own, and when the disk is
        full run.json is rewritten in the blocks it already holds. Never raises: ``err`` is
        the one to report (a note on it says what could not be written, or what was kept).
        """
        status = "failed" if isinstance(err, Exception) else "interrupted"  # KeyboardInterrupt
        reason = failure_reason(err)
        try:
            record = self._record(status, reason, seconds)
        except Exception:  # the record's own parts failed: the status and reason still go
            record = {"status": status, "reason": reason, "finished_at": _now()}
        writes = [("run.json", lambda: self._write_record(record, when_full=True)),
                  ("history.csv", lambda: self.write_history(history)),
                  ("metrics.json", lambda: self.write_metrics(history, {}, None, reason))]
        unwritten = []
        for name, write in writes:
            try:
                write()
            except Exception as problem:  # noqa: BLE001 (best effort, reported below)
                unwritten.append(f"{name} ({problem})")
        if unwritten:
            err.add_note(f"kerapipe could not record the failure in {self.path}: "
                         + "; ".join(unwritten))
        elif not isinstance(err, KerapipeError):  # a kerapipe error says what was kept itself
            done = len(next(iter(history.values()), []))
            continue_with = (f"; continue it with: {self.resume_command}"
                             if (self.checkpoints / LATEST).exists() else "")
            err.add_note(f"The run folder {self.path} is marked {status} and keeps the "
                         f"history of {done} finished epoch(s){continue_with}")

    # --- checkpoints -------------------------------------------------------------------

    @property
    def checkpoints(self) -> Path:
        """``checkpoints/``: one ``epoch-NNNN`` folder and ``LATEST`` naming it."""
        return self.path / CHECKPOINT_DIR

    def make_checkpoints(self) -> None:
        """Create ``checkpoints/`` (kept when it exists).

        Raises:
            OutputError: it cannot be created.
        """
        try:
            self.checkpoints.mkdir(exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create {self.checkpoints}: {err.strerror or err}. Free "
                              "some space or make the folder writable, then run again.") from err

    def latest_checkpoint(self) -> Optional[Path]:
        """The newest complete checkpoint's folder, or ``None`` when there is none.

        Raises:
            UsageError: checkpoints/LATEST is damaged or names no checkpoint folder of the
                run (``run_files.read_checkpoint_pointer``).
        """
        return read_checkpoint_pointer(self.checkpoints)

    def intact_checkpoint(self) -> Optional[Path]:
        """``latest_checkpoint`` for a message about a failure: ``None`` rather than a raise."""
        try:
            return self.latest_checkpoint()
        except UsageError:
            return None

    def write_checkpoint(self, epochs_done: int, model, state: dict,
                         new_best: Optional[bool]) -> None:
        """``checkpoints/epoch-NNNN/``: ``last.keras`` (weights and optimizer state),
        ``best.weights.h5`` and ``state.json``, then ``LATEST`` names it and older epochs
        go.

        The folder is written under a temporary name, every file fsynced, then renamed;
        only then is ``LATEST`` switched to it (atomically): a kill at any moment leaves a
        complete checkpoint. ``new_best``: this epoch is early stopping's new best (its
        weights are saved), or not (the previous checkpoint's best is carried over), or
        ``None`` without early stopping.

        Raises:
            OSError: a file cannot be written (the temporary folder is removed; the
                previous checkpoint stands).
        """
        name = f"epoch-{epochs_done:04d}"
        tmp = self.checkpoints / f".tmp-{name}"
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            model.save(tmp / LAST_MODEL)
            previous = self.intact_checkpoint()
            if new_best:
                model.save_weights(tmp / BEST_WEIGHTS)
            elif new_best is not None and previous is not None \
                    and (previous / BEST_WEIGHTS).exists():
                shutil.copy2(previous / BEST_WEIGHTS, tmp / BEST_WEIGHTS)
            (tmp / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n")
            for file in tmp.iterdir():
                _fsync(file)
            target = self.checkpoints / name
            if previous is None or previous.name != name:  # left by a kill before LATEST moved
                shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        write_text_atomic(str(self.checkpoints / LATEST), name + "\n")
        for old in self.checkpoints.glob("epoch-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)


def _kerapipe_record(folder: Path, purpose: str = "") -> dict:
    """run.json of a folder that ``kerapipe run`` created (read and checked, ``run_files``);
    ``purpose`` ends "is not a kerapipe run folder" in the refusal.

    Raises:
        UsageError: there is no run.json, or it is not a kerapipe run record.
    """
    if not os.path.isdir(folder) or not os.path.lexists(folder / "run.json"):
        raise UsageError(f"'{folder}' is not a kerapipe run folder{purpose} (it has no "
                         "run.json). Give a folder that `kerapipe run` created.")
    record = read_run_record(folder / "run.json")
    if "kerapipe" not in record:
        raise UsageError(f"'{folder}' is not a kerapipe run folder{purpose} (its run.json is "
                         "not a kerapipe run record). Give a folder that `kerapipe run` "
                         "created.")
    return record
