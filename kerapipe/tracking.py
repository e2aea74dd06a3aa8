"""MLflow tracking of a run: ``output.mlflow``, or the MLFLOW_TRACKING_URI environment
variable (the optional extra ``kerapipe[mlflow]``, mlflow-skinny).

``tracking_target`` decides, before a run folder exists, whether a run is tracked and
where: the tracking URI is ``output.mlflow.tracking_uri``, else MLFLOW_TRACKING_URI, else
the ``file:`` URI of ``<output.dir>/mlruns`` (never the current directory); the experiment
is ``output.mlflow.experiment``, else MLFLOW_EXPERIMENT_NAME, else the pipeline's name. A
resumed run goes on in the MLflow run its run.json records (``mlflow.run_id``) when that
run is in the store resolved now.

``MlflowTracker`` does the tracking with MLflow's own client (``MlflowClient``, no global
active run): a run named after the run folder, the resolved spec as params (its key paths,
``flatten_key_paths``), one value per epoch of each logged metric (step: the epoch number,
as history.csv counts it), the test metrics, the run folder's files as artifacts, and an
end status that matches the run's (FINISHED, FAILED, KILLED). MLflow is a witness, not a
part of the run: any MLflow failure (a server that does not answer, a store that refuses)
is one ``note:`` line on standard error, tracking stops there, and the run and its folder
go on as without it.

MLflow is imported only when a run is tracked; its telemetry is switched off
(MLFLOW_DISABLE_TELEMETRY, unless the user set it): a run sends nothing anywhere but to the
tracking URI.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from kerapipe.errors import Interrupted, UsageError

MLFLOW_INSTALL = 'pip install "kerapipe[mlflow]"'  # the extra that brings mlflow-skinny
TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"
EXPERIMENT_VARIABLE = "MLFLOW_EXPERIMENT_NAME"
DEFAULT_STORE = "mlruns"  # inside output.dir
RECORD_KEY = "mlflow"  # run.json: {"run_id", "experiment_id", "tracking_uri"}
TRUNCATED = " ...[truncated: the artifact spec.yaml holds the whole value]"
ARTIFACTS = ("model.keras", "report.html", "plots", "classification_report.csv", "spec.yaml",
             "run.json", "metrics.json", "history.csv")  # those the run folder has, at its end
KEPT_OF_A_STOPPED_RUN = ("run.json", "history.csv")  # a failed or interrupted run's artifacts
_PARAM_KEY = re.compile(r"[^/\w.\- ]")  # what MLflow refuses in a param key (and ':')
_RUN_ID = re.compile(r"[a-zA-Z0-9][\w\-]{0,255}")  # an MLflow run id (as MLflow checks it)


def note(text: str) -> None:
    """One ``note:`` line on standard error (as the CLI prints a run's notes)."""
    print(f"note: {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class TrackingTarget:
    """Where a run is tracked.

    Args:
        tracking_uri: MLflow's tracking URI.
        experiment: the experiment's name.
        run_id: the MLflow run a resumed run goes on in (``None``: a new MLflow run).
    """

    tracking_uri: str
    experiment: str
    run_id: Optional[str] = None


def check_mlflow_installed(spec) -> None:
    """The rule for MLflow's package: ``output.mlflow`` needs it installed (a command may
    call this before it loads the data; ``tracking_target`` does in any case).

    Raises:
        UsageError: it is not, naming the extra that brings it (exit 2).
    """
    if spec.output.mlflow is not None and importlib.util.find_spec("mlflow") is None:
        raise UsageError(f"output.mlflow tracks the run in MLflow, which is not installed: "
                         f"`{MLFLOW_INSTALL}`. Or remove output.mlflow.")


def tracking_target(spec, output_dir: str | os.PathLike, is_chief: bool = True,
                    recorded: Optional[Mapping] = None,
                    environ: Optional[Mapping[str, str]] = None) -> Optional[TrackingTarget]:
    """Whether and where the run of ``spec`` is tracked; ``None``: it is not.

    Tracking is on when ``output.mlflow`` is given or MLFLOW_TRACKING_URI is set. A
    resumed run (``recorded``: its run.json) goes on in the MLflow run it recorded when
    that run is in the store resolved now (a URI is never taken from run.json). On a
    multi-worker run only the chief tracks (``is_chief``); every worker makes the same
    refusal.

    Args:
        spec: the resolved ``PipelineSpec``.
        output_dir: the folder that holds the run folder (``--output``, else
            ``output.dir``); the default store is ``mlruns`` in it.
        is_chief: this process writes the run folder.
        recorded: the run.json of a resumed run, else ``None``.
        environ: the environment variables. Defaults to ``os.environ``.

    Raises:
        UsageError: ``output.mlflow`` is given and mlflow is not installed (said before a
            run folder exists). With only the environment variable, that is a note and
            the run is not tracked.
    """
    environ = os.environ if environ is None else environ
    asked = spec.output.mlflow
    if asked is None and not environ.get(TRACKING_URI_VARIABLE):
        return None
    check_mlflow_installed(spec)
    if importlib.util.find_spec("mlflow") is None:
        if is_chief:
            note(f"{TRACKING_URI_VARIABLE} is set but mlflow is not installed "
                 f"(`{MLFLOW_INSTALL}`); this run is not tracked.")
        return None
    if not is_chief:
        return None
    uri = (asked.tracking_uri if asked is not None else None) or \
        environ.get(TRACKING_URI_VARIABLE) or \
        (Path(os.path.abspath(output_dir)) / DEFAULT_STORE).as_uri()
    experiment = (asked.experiment if asked is not None else None) or \
        environ.get(EXPERIMENT_VARIABLE) or spec.name
    previous = (recorded or {}).get(RECORD_KEY)
    run_id = previous.get("run_id") if isinstance(previous, dict) and \
        previous.get("tracking_uri") == uri else None
    if not (isinstance(run_id, str) and _RUN_ID.fullmatch(run_id)):
        run_id = None
    return TrackingTarget(uri, experiment, run_id)


# --- the spec as MLflow params ----------------------------------------------------------

def param_key(key_path: str) -> str:
    """A key path as an MLflow param key: ``model.layers[0].Dense.units`` ->
    ``model.layers.0.Dense.units`` (MLflow refuses brackets); any other character MLflow
    refuses becomes ``_``."""
    return _PARAM_KEY.sub("_", re.sub(r"\[(\d+)\]", r".\1", key_path))


def param_value(value: Any, limit: int) -> str:
    """A spec value as an MLflow param value: a string as it is, anything else as JSON
    (``true``, ``null``, ``0.001``, ``[]``: what ``--set`` reads); cut to ``limit``
    characters (MLflow's) with the ``TRUNCATED`` marker."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[:limit - len(TRUNCATED)] + TRUNCATED


def spec_params(spec, limit: int, key_limit: int = 250) -> tuple[dict[str, str], list[str]]:
    """The resolved spec as MLflow params (``param_key`` -> ``param_value``), and the key
    paths left out: longer than MLflow's ``key_limit``, or one key again once made an
    MLflow key."""
    from kerapipe.spec.overrides import flatten_key_paths
    from kerapipe.spec.typed import to_plain

    params: dict[str, str] = {}
    left_out = []
    for path, value in flatten_key_paths(to_plain(spec)).items():
        key = param_key(path)
        if len(key) > key_limit or key in params or key.startswith("/") or ".." in key:
            left_out.append(path)
            continue
        params[key] = param_value(value, limit)
    return params, left_out


def _import_mlflow():
    # MLflow 3 sends usage telemetry unless told not to; a run sends nothing but its tracking.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    from mlflow import MlflowClient

    return mlflow, MlflowClient


def _allow_file_store(uri: str) -> None:
    """MLflow 3 refuses its file store unless MLFLOW_ALLOW_FILE_STORE is true; it is the one
    local store mlflow-skinny can write (a database store needs the full mlflow), and
    kerapipe's default. A user's own setting stands."""
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


# --- the tracker ------------------------------------------------------------------------

class MlflowTracker:
    """Tracks one run in MLflow (``TrackingTarget``; ``None``: the run is not tracked, and
    every method does nothing); never raises once made (``note`` instead).

    ``start`` after run.json says the run is running, ``callbacks`` in the fit, ``finish``
    after the run folder is complete, or ``end`` with the error a run failed or stopped
    with.
    """

    def __init__(self, target: Optional[TrackingTarget] = None) -> None:
        self.target = target
        self.client: Any = None
        self.run_id: Optional[str] = target.run_id if target is not None else None
        self.active = False
        self.recorded: Optional[dict] = None  # a resumed run's run.json ``mlflow``

    @classmethod
    def for_run(cls, compiled, output_dir: str | os.PathLike,
                recorded: Optional[Mapping] = None) -> "MlflowTracker":
        """The tracker of ``compiled``'s run in ``output_dir`` (``tracking_target``).

        Raises:
            UsageError: ``output.mlflow`` without mlflow installed.
        """
        tracker = cls(tracking_target(compiled.spec, output_dir,
                                      compiled.distribution.is_chief, recorded))
        if tracker.run_id is not None:
            tracker.recorded = dict((recorded or {})[RECORD_KEY])
        return tracker

    # --- guarded calls -----------------------------------------------------------------

    def _stopped(self, err: BaseException) -> None:
        self.active = False
        text = " ".join(str(err).split())
        text = text if len(text) <= 300 else text[:297] + "..."
        note(f"MLflow tracking at {self.target.tracking_uri} stopped "
             f"({type(err).__name__}: {text}); the run goes on, and its run folder is "
             "complete without it.")

    # --- the run -----------------------------------------------------------------------

    def start(self, folder, spec) -> None:
        """A new MLflow run named after the run folder, with the spec as params and
        spec.yaml as an artifact, or the resumed run's MLflow run set running again; its
        id recorded in run.json."""
        if self.target is None:
            return
        try:
            mlflow, client_class = _import_mlflow()
            _allow_file_store(self.target.tracking_uri)
            self.client = client = client_class(tracking_uri=self.target.tracking_uri)
            if self.run_id is not None:
                run = client.get_run(self.run_id)
                client.update_run(self.run_id, status="RUNNING")
                client.set_tag(self.run_id, "kerapipe.status", "running")
                experiment_id = run.info.experiment_id
            else:
                experiment_id = self._experiment_id(mlflow)
                run = client.create_run(experiment_id, run_name=folder.path.name,
                                        tags=self._tags(folder, "running"))
                self.run_id = run.info.run_id
            self.active = True
            _record_in_run_json(folder, {
                "run_id": self.run_id, "experiment_id": experiment_id,
                "experiment": self.target.experiment,
                "tracking_uri": self.target.tracking_uri})
            if self.target.run_id is None:  # a resume's params are the run's already
                self._log_params(mlflow, spec)
            client.log_artifact(self.run_id, str(folder.path / "spec.yaml"))
        except Exception as err:  # noqa: BLE001 (MLflow never costs the run)
            self._stopped(err)
            if self.recorded is not None:  # kept, so that a later resume goes on in it
                try:
                    _record_in_run_json(folder, self.recorded)
                except Exception:  # noqa: BLE001 (run.json's next write says its own failure)
                    pass

    def _experiment_id(self, mlflow) -> str:
        client, name = self.client, self.target.experiment
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return client.create_experiment(name)
        except mlflow.exceptions.MlflowException:  # another process made it meanwhile
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def _tags(self, folder, status: str) -> dict[str, str]:
        from kerapipe import __version__

        return {"kerapipe.version": __version__, "kerapipe.run_dir": str(
            Path(os.path.abspath(folder.path))), "kerapipe.status": status}

    def _log_params(self, mlflow, spec) -> None:
        from mlflow.entities import Param
        from mlflow.utils import validation

        params, left_out = spec_params(spec, getattr(validation, "MAX_PARAM_VAL_LENGTH", 500),
                                       getattr(validation, "MAX_ENTITY_KEY_LENGTH", 250))
        items = [Param(k, v) for k, v in params.items()]
        batch = getattr(validation, "MAX_PARAMS_TAGS_PER_BATCH", 100)
        for start in range(0, len(items), batch):
            self.client.log_batch(self.run_id, params=items[start:start + batch])
        if left_out:
            note(f"MLflow params leave out {len(left_out)} key path(s) MLflow cannot name "
                 f"(e.g. {left_out[0][:80]}); the artifact spec.yaml holds them.")

    def log_metrics(self, values: Mapping[str, Any], step: int) -> None:
        """``values`` (numbers; anything else is skipped) at ``step``."""
        if not self.active:
            return
        try:
            import time

            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            metrics = [Metric(str(k), float(v), now, step) for k, v in values.items()
                       if _is_number(v)]
            if metrics:
                self.client.log_batch(self.run_id, metrics=metrics)
        except Exception as err:  # noqa: BLE001
            self._stopped(err)

    def callbacks(self) -> list:
        """What the fit adds: a Keras callback that logs each finished epoch's values
        (step: the epoch's number, 1 for the first, as history.csv counts); none when the
        run is not tracked."""
        if self.target is None:
            return []
        from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
        import keras

        tracker = self

        class MlflowEpochLogger(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                tracker.log_metrics(logs or {}, epoch + 1)

        return [MlflowEpochLogger()]

    def finish(self, folder, result) -> None:
        """The test metrics (``test_<name>``), the run folder's files as artifacts, and
        the MLflow run FINISHED. Call it last: report.html is one of the artifacts."""
        if not self.active:
            return
        try:
            self.log_metrics({f"test_{k}": v for k, v in result.test_metrics.items()},
                             result.epochs_run)
            if self.active:
                self._close(folder, "finished", "FINISHED")
        except BaseException as err:  # noqa: BLE001 (a second Ctrl-C: the run is finished)
            self._stopped(err)

    def end(self, folder, err: BaseException) -> None:
        """A run that failed (FAILED) or stopped on a signal (KILLED): run.json (which
        says why) and history.csv as artifacts, then the MLflow run ended."""
        if not self.active:
            return
        killed = isinstance(err, (Interrupted, KeyboardInterrupt))
        try:
            self._close(folder, "interrupted" if killed else "failed",
                        "KILLED" if killed else "FAILED")
        except BaseException as problem:  # noqa: BLE001 (the run's own error stands)
            self._stopped(problem)

    def _close(self, folder, status: str, mlflow_status: str) -> None:
        client = self.client
        for name in ARTIFACTS if status == "finished" else KEPT_OF_A_STOPPED_RUN:
            path = folder.path / name
            if path.is_dir() and not path.is_symlink():
                client.log_artifacts(self.run_id, str(path), name)
            elif path.is_file() and not path.is_symlink():
                client.log_artifact(self.run_id, str(path))
        client.set_tag(self.run_id, "kerapipe.status", status)
        client.set_terminated(self.run_id, status=mlflow_status)
        self.active = False


def _is_number(value: Any) -> bool:
    try:
        return not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _record_in_run_json(folder, facts: dict) -> None:
    """run.json's ``mlflow``: the MLflow run a ``--resume`` goes on in, kept in every
    later rewrite of run.json."""
    folder.record_fact(RECORD_KEY, facts)


__all__ = ["MlflowTracker", "TrackingTarget", "check_mlflow_installed", "param_key",
           "param_value", "spec_params", "tracking_target"]
