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
end status that matches the run's (FINISHED, FAILED, KILLED). Before a run folder exists,
``MlflowTracker.for_run`` checks that the store answers, with MLflow's HTTP retries and
timeout bounded (``PROBE_SETTINGS``, where the user set none): a store that does not is an
``OutputError`` (exit 5) in seconds, before any training, not minutes of MLflow's retries
and then an untracked run. Once the run has begun, MLflow is a witness, not a part of the
run: any MLflow failure (a server that stops answering, a store that refuses) is one
``note:`` line on standard error, tracking stops there, and the run and its folder go on
as without it. A finished tracked run's ``RunResult.mlflow`` (``TrackedRun``) says where it
is, and ``kerapipe run`` prints it. A tracking URI's credentials (``user:password@``) are
never printed or recorded (``redact_uri``).

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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional
from urllib.parse import urlsplit
from urllib.request import url2pathname

from kerapipe.errors import Interrupted, OutputError, UsageError

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
_CREDENTIALS = re.compile(r"(?<=//)[^/?#\s]*@")  # a URL's user:password@ (to its last @)
# The check at the start: one retry, at once (urllib3 waits before the second only), and
# 10 s a request, so that a server that refuses costs a second and one that never answers
# about 20 s. MLflow's defaults (7 retries, backoff 2, 120 s) stay for the run itself,
# where a rate limit or a restart of the server should not cost the rest of the tracking.
PROBE_SETTINGS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
                  "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


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
    untracked: str = field(default="remove output.mlflow", compare=False)  # how to opt out


def redact_uri(text: str) -> str:
    """``text`` with any URL's credentials (``user:password@``, a token before ``@``) as
    ``***@``: ``http://u:p@host:5000`` -> ``http://***@host:5000``."""
    return _CREDENTIALS.sub("***@", text)


def store_location(uri: str) -> str:
    """Where a tracking URI points, for a reader: a ``file:`` store's path, any other URI
    without its credentials (``redact_uri``)."""
    if uri.startswith("file:"):
        return url2pathname(urlsplit(uri).path)
    return redact_uri(uri)


@dataclass(frozen=True)
class TrackedRun:
    """Where a finished run is in MLflow (``RunResult.mlflow``).

    Args:
        run_id: the MLflow run's id.
        experiment: its experiment's name.
        experiment_id: its experiment's id.
        tracking_uri: the tracking URI, its credentials redacted (``redact_uri``).
    """

    run_id: str
    experiment: str
    experiment_id: str
    tracking_uri: str

    def describe(self) -> str:
        """The line ``kerapipe run`` prints: ``mlflow: run ID in experiment 'NAME' at
        WHERE`` (a ``file:`` store's path, else the URI)."""
        return (f"mlflow: run {self.run_id} in experiment {self.experiment!r} at "
                f"{store_location(self.tracking_uri)}")


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
    run_id = previous.get("run_id") if isinstance(previous, dict) and isinstance(
        previous.get("tracking_uri"), str) and redact_uri(
        previous["tracking_uri"]) == redact_uri(uri) else None  # run.json's is redacted
    if not (isinstance(run_id, str) and _RUN_ID.fullmatch(run_id)):
        run_id = None
    opt_out = ([f"unset {TRACKING_URI_VARIABLE}"] if environ.get(TRACKING_URI_VARIABLE) else []) \
        + (["--set output.mlflow=null"] if asked is not None else [])
    return TrackingTarget(uri, experiment, run_id, " and ".join(opt_out))


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


@contextmanager
def _bounded_requests() -> Iterator[None]:
    """``PROBE_SETTINGS`` in the environment, where the user set none, while MLflow makes
    its first request (MLflow reads them at each request)."""
    added = [name for name in PROBE_SETTINGS if name not in os.environ]
    os.environ.update({name: PROBE_SETTINGS[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


# What a refused connection says, deep in urllib3's retry error (MLflow wraps it in a
# long message): kept when ``_brief`` cuts the text before it.
_NETWORK_CAUSES = ("Connection refused", "Name or service not known", "timed out",
                   "No route to host", "Temporary failure in name resolution",
                   "certificate verify failed")


def _brief(err: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line, the message at most ``limit`` characters (a network
    cause the cut would hide is added: ``...: Connection refused``), credentials
    redacted."""
    text = redact_uri(" ".join(str(err).split()))
    if len(text) > limit:
        hidden = next((c for c in _NETWORK_CAUSES if c in text[limit - 3:]), None)
        text = text[:limit - 3] + "..." + (f": {hidden}" if hidden else "")
    return f"{type(err).__name__}: {text}"


def _store_hint(uri: str) -> str:
    """What to fix, by the kind of store the URI names."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else "file"
    if scheme == "file":
        return "Check that the store's folder can be created and written"
    if scheme.startswith(("sqlite", "postgresql", "mysql", "mssql")):
        return ("A database store needs the full MLflow package (pip install mlflow; "
                "kerapipe[mlflow] brings mlflow-skinny, which writes file: stores)")
    return "Start the tracking server or fix the tracking URI"


def _allow_file_store(uri: str) -> None:
    """MLflow 3 refuses its file store unless MLFLOW_ALLOW_FILE_STORE is true; it is the one
    local store mlflow-skinny can write (a database store needs the full mlflow), and
    kerapipe's default. A user's own setting stands."""
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


# --- the tracker ------------------------------------------------------------------------

class MlflowTracker:
    """Tracks one run in MLflow (``TrackingTarget``; ``None``: the run is not tracked, and
    every method does nothing).

    ``connect`` before a run folder exists (``for_run`` does; it raises ``OutputError``);
    then, never raising (a ``note`` instead): ``start`` after run.json says the run is
    running, ``callbacks`` in the fit, ``finish`` after the run folder is complete, or
    ``end`` with the error a run failed or stopped with.
    """

    def __init__(self, target: Optional[TrackingTarget] = None) -> None:
        self.target = target
        self.client: Any = None
        self.run_id: Optional[str] = target.run_id if target is not None else None
        self.active = False
        self.recorded: Optional[dict] = None  # a resumed run's run.json ``mlflow``
        self.tracked: Optional[TrackedRun] = None  # the MLflow run, once it runs

    @classmethod
    def for_run(cls, compiled, output_dir: str | os.PathLike,
                recorded: Optional[Mapping] = None) -> "MlflowTracker":
        """The tracker of ``compiled``'s run in ``output_dir`` (``tracking_target``),
        connected to its store (``connect``).

        Raises:
            UsageError: ``output.mlflow`` without mlflow installed.
            OutputError: the store does not answer, or refuses.
        """
        tracker = cls(tracking_target(compiled.spec, output_dir,
                                      compiled.distribution.is_chief, recorded))
        if tracker.run_id is not None:
            tracker.recorded = dict((recorded or {})[RECORD_KEY])
            tracker.recorded["tracking_uri"] = redact_uri(tracker.recorded["tracking_uri"])
        tracker.connect()
        return tracker

    def connect(self) -> None:
        """MLflow's client of the target's store, and one request that shows the store
        answers (the experiment looked up), bounded by ``PROBE_SETTINGS``: before a run
        folder exists, so that a run is never trained untracked for want of a check.

        Raises:
            OutputError: the store does not answer, or refuses (exit 5); the message says
                how to run untracked.
        """
        if self.target is None or self.client is not None:
            return
        _, client_class = _import_mlflow()  # a broken install: the CLI names the extra
        _allow_file_store(self.target.tracking_uri)
        try:
            client = client_class(tracking_uri=self.target.tracking_uri)
            with _bounded_requests():
                client.get_experiment_by_name(self.target.experiment)
        except Exception as err:  # noqa: BLE001 (whatever MLflow raises: said, not a traceback)
            uri = self.target.tracking_uri
            raise OutputError(
                f"MLflow tracking at {redact_uri(uri)} cannot start ({_brief(err)}); "
                f"nothing was trained. {_store_hint(uri)}, or run "
                f"untracked ({self.target.untracked}).") from err
        self.client = client

    # --- guarded calls -----------------------------------------------------------------

    def _stopped(self, err: BaseException) -> None:
        self.active = False
        note(f"MLflow tracking at {redact_uri(self.target.tracking_uri)} stopped "
             f"({_brief(err)}); the run goes on, and its run folder is complete without it.")

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
            if self.client is None:  # a tracker ``for_run`` did not make
                self.client = client_class(tracking_uri=self.target.tracking_uri)
            client = self.client
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
            self.tracked = TrackedRun(self.run_id, self.target.experiment, experiment_id,
                                      redact_uri(self.target.tracking_uri))
            _record_in_run_json(folder, {
                "run_id": self.run_id, "experiment_id": experiment_id,
                "experiment": self.target.experiment,
                "tracking_uri": self.tracked.tracking_uri})
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

    def finish(self, folder, result) -> Optional[TrackedRun]:
        """The test metrics (``test_<name>``), the run folder's files as artifacts, and
        the MLflow run FINISHED. Call it last: report.html is one of the artifacts.

        Returns:
            Where the run is in MLflow; ``None``: it is not tracked, or tracking stopped
            (a note said so).
        """
        if not self.active:
            return None
        try:
            self.log_metrics({f"test_{k}": v for k, v in result.test_metrics.items()},
                             result.epochs_run)
            if self.active:
                self._close(folder, "finished", "FINISHED")
                return self.tracked
        except BaseException as err:  # noqa: BLE001 (a second Ctrl-C: the run is finished)
            self._stopped(err)
        return None

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


__all__ = ["MlflowTracker", "TrackedRun", "TrackingTarget", "check_mlflow_installed",
           "param_key", "param_value", "redact_uri", "spec_params", "store_location",
           "tracking_target"]
