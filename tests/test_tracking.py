"""Tracking: ``output.tensorboard`` and MLflow (``output.mlflow``, MLFLOW_TRACKING_URI).

Spec and rules without training: MLflow param keys and values, where a run is tracked
(the key, then the environment, then ``<output.dir>/mlruns``), the chief alone, telemetry
off, the missing extras. Then tiny runs (30 examples, 1-3 epochs) tracked in a ``file:``
store under tmp_path: one interrupted by SIGINT after its second epoch (its MLflow run
KILLED) and resumed (the same MLflow run, FINISHED), with TensorBoard logs; one tracked
by the environment variable alone; one in the default store; one whose environment asks
for MLflow that is not installed. A tracking server that does not answer (a closed port
on loopback) stops ``kerapipe run`` in seconds, before a run folder exists.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
from pathlib import Path

import pytest

from kerapipe.spec.validate import validate_text
from kerapipe.tracking import (PROBE_SETTINGS, TRUNCATED, TrackedRun, TrackingTarget, param_key,
                               param_value, redact_uri, spec_params, store_location,
                               tracking_target)

MLFLOW_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_ALLOW_FILE_STORE",
                    "MLFLOW_DISABLE_TELEMETRY", "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                    "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")


@pytest.fixture(autouse=True)
def no_mlflow_environment(monkeypatch):
    """Every test starts without the user's MLflow variables and leaves none behind
    (kerapipe sets MLFLOW_ALLOW_FILE_STORE and MLFLOW_DISABLE_TELEMETRY when unset)."""
    for name in MLFLOW_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def spec_of(output: str = "", name: str = "case"):
    text = (f"kerapipe: 1\nname: {name}\ndata: {{source: {{npz: d.npz}}}}\n"
            f"model: {{layers: [{{Dense: {{units: 3}}}}]}}\n{output}")
    result = validate_text(text, "p.yaml")
    assert result.errors == [], result.errors
    return result.spec


def without(module: str, monkeypatch) -> None:
    """``module`` looks not installed (``importlib.util.find_spec`` finds nothing)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == module else real(name, *a))


# --- the rules -------------------------------------------------------------------------

@pytest.mark.parametrize("path, key", [
    ("train.epochs", "train.epochs"),
    ("model.layers[0].Dense.units", "model.layers.0.Dense.units"),
    ("data.preprocess[12].reshape[1]", "data.preprocess.12.reshape.1"),
    ("train.class_weight.a:b[c]", "train.class_weight.a_b_c_"),
], ids=["plain", "list-index", "nested-indexes", "refused-characters"])
def test_a_key_path_becomes_an_mlflow_param_key_mlflow_accepts(path, key):
    from mlflow.utils.validation import validate_param_and_metric_name

    assert param_key(path) == key
    assert validate_param_and_metric_name(key)


def test_param_values_are_written_as_set_reads_them_and_cut_with_a_marker():
    assert [param_value(v, 100) for v in ("relu", 3, 0.001, True, None, [], {})] == [
        "relu", "3", "0.001", "true", "null", "[]", "{}"]
    long = param_value("x" * 500, 100)
    assert len(long) == 100 and long.endswith(TRUNCATED)


def test_params_are_the_resolved_specs_key_paths():
    from kerapipe.spec.overrides import flatten_key_paths
    from kerapipe.spec.typed import to_plain

    spec = spec_of()
    params, left_out = spec_params(spec, 6000)
    assert left_out == []
    assert list(params) == [param_key(k) for k in flatten_key_paths(to_plain(spec))]
    assert params["model.layers.0.Dense.units"] == "3"
    assert params["output.tensorboard"] == "false"


def test_the_tracking_uri_is_the_key_then_the_environment_then_mlruns_in_the_output_dir(
        tmp_path):
    key = spec_of("output: {mlflow: {tracking_uri: 'http://h:5000', experiment: e}}\n")
    empty = spec_of("output: {mlflow: {}}\n")
    environ = {"MLFLOW_TRACKING_URI": "http://env:5000", "MLFLOW_EXPERIMENT_NAME": "env-e"}
    assert tracking_target(key, tmp_path, environ=environ) == TrackingTarget("http://h:5000", "e")
    assert tracking_target(empty, tmp_path, environ=environ) == TrackingTarget(
        "http://env:5000", "env-e")
    assert tracking_target(empty, tmp_path / "runs", environ={}) == TrackingTarget(
        (tmp_path / "runs" / "mlruns").as_uri(), "case")
    assert tracking_target(spec_of(), tmp_path, environ=environ) == TrackingTarget(
        "http://env:5000", "env-e")  # the environment variable alone turns it on
    assert tracking_target(spec_of(), tmp_path, environ={}) is None


def test_a_resume_goes_on_in_the_recorded_mlflow_run_only_in_the_same_store(tmp_path):
    spec = spec_of("output: {mlflow: {}}\n")
    uri = (tmp_path / "mlruns").as_uri()
    recorded = {"mlflow": {"run_id": "abc123", "tracking_uri": uri}}
    assert tracking_target(spec, tmp_path, recorded=recorded, environ={}).run_id == "abc123"
    moved = {"mlflow": {"run_id": "abc123", "tracking_uri": "file:/elsewhere"}}
    assert tracking_target(spec, tmp_path, recorded=moved, environ={}).run_id is None
    hostile = {"mlflow": {"run_id": "../../etc", "tracking_uri": uri}}
    assert tracking_target(spec, tmp_path, recorded=hostile, environ={}).run_id is None
    redacted = {"mlflow": {"run_id": "abc123", "tracking_uri": "http://***@h:5000"}}
    with_credentials = {"MLFLOW_TRACKING_URI": "http://u:secret@h:5000"}
    assert tracking_target(spec, tmp_path, recorded=redacted,
                           environ=with_credentials).run_id == "abc123"


@pytest.mark.parametrize("uri, redacted", [
    ("http://u:secret@h:5000/x?y=1", "http://***@h:5000/x?y=1"),
    ("https://token@h", "https://***@h"),
    ("http://u:p@ss@h:5000", "http://***@h:5000"),
    ("http://h:5000/a@b", "http://h:5000/a@b"),
    ("file:///tmp/mlruns", "file:///tmp/mlruns"),
], ids=["user-password", "token", "at-in-password", "at-in-path", "file"])
def test_a_tracking_uris_credentials_are_redacted(uri, redacted):
    assert redact_uri(uri) == redacted
    assert redact_uri(f"API request to {uri}/api failed") == f"API request to {redacted}/api failed"


def test_the_mlflow_line_names_the_run_the_experiment_and_where_the_store_is(tmp_path):
    store = tmp_path / "my runs" / "mlruns"
    assert store_location(store.as_uri()) == str(store)
    assert TrackedRun("abc", "iris", "1", "http://***@h:5000").describe() == (
        "mlflow: run abc in experiment 'iris' at http://***@h:5000")


def test_the_start_bounds_mlflows_retries_only_where_the_user_set_none(monkeypatch):
    from kerapipe.tracking import _bounded_requests

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")
    with _bounded_requests():
        assert {name: os.environ[name] for name in PROBE_SETTINGS} == {
            **PROBE_SETTINGS, "MLFLOW_HTTP_REQUEST_TIMEOUT": "300"}
    assert [name for name in PROBE_SETTINGS if name in os.environ] == [
        "MLFLOW_HTTP_REQUEST_TIMEOUT"]  # MLflow's own defaults again for the run itself



def test_a_resume_whose_mlflow_run_cannot_be_reached_keeps_it_recorded(tmp_path, capsys):
    from kerapipe.run_folder import RunFolder
    from kerapipe.tracking import MlflowTracker

    uri = (tmp_path / "store").as_uri()
    recorded = {"run_id": "0123abcd", "experiment_id": "1", "experiment": "e",
                "tracking_uri": uri}
    tracker = MlflowTracker(TrackingTarget(uri, "e", "0123abcd"))
    tracker.recorded = recorded
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    (folder.path / "spec.yaml").write_text("kerapipe: 1\n")
    tracker.start(folder, spec_of())  # the store has no such run
    assert not tracker.active
    assert json.loads((folder.path / "run.json").read_text())["mlflow"] == recorded
    assert capsys.readouterr().err.startswith(f"note: MLflow tracking at {uri} stopped")


class RecordingClient:
    """What ``MlflowTracker.start`` asks of MLflow's client, answered at once."""

    def get_experiment_by_name(self, name):
        from types import SimpleNamespace

        return SimpleNamespace(experiment_id="7")

    def create_run(self, experiment_id, run_name, tags):
        from types import SimpleNamespace

        return SimpleNamespace(info=SimpleNamespace(run_id="r1"))

    def log_batch(self, *args, **kwargs):
        pass

    def log_artifact(self, *args):
        pass


def test_run_json_and_the_run_result_never_hold_the_uris_credentials(tmp_path):
    from kerapipe.run_folder import RunFolder
    from kerapipe.tracking import MlflowTracker

    tracker = MlflowTracker(TrackingTarget("http://u:secret@h:5000", "e"))
    tracker.client = RecordingClient()
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    (folder.path / "spec.yaml").write_text("kerapipe: 1\n")
    tracker.start(folder, spec_of())
    assert tracker.active
    assert json.loads((folder.path / "run.json").read_text())["mlflow"] == {
        "run_id": "r1", "experiment_id": "7", "experiment": "e",
        "tracking_uri": "http://***@h:5000"}
    assert tracker.tracked == TrackedRun("r1", "e", "7", "http://***@h:5000")


def test_a_note_of_tracking_that_stopped_never_shows_the_uris_credentials(
        tmp_path, capsys, monkeypatch):
    from kerapipe.run_folder import RunFolder
    from kerapipe.tracking import MlflowTracker

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    tracker = MlflowTracker(TrackingTarget(f"http://u:secret@127.0.0.1:{closed_port()}", "e"))
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    tracker.start(folder, spec_of())  # made without for_run: nothing checked the server
    err = capsys.readouterr().err
    assert err.startswith("note: MLflow tracking at http://***@127.0.0.1:") and \
        "secret" not in err and not tracker.active

def test_only_the_chief_tracks_a_multi_worker_run(tmp_path):
    spec = spec_of("output: {mlflow: {}}\n")
    assert tracking_target(spec, tmp_path, is_chief=False, environ={}) is None
    assert tracking_target(spec_of(), tmp_path, is_chief=False,
                           environ={"MLFLOW_TRACKING_URI": "http://h"}) is None


def test_output_mlflow_without_mlflow_is_refused_on_every_worker(tmp_path, monkeypatch):
    from kerapipe.errors import UsageError

    without("mlflow", monkeypatch)
    for chief in (True, False):
        with pytest.raises(UsageError, match=r'pip install "kerapipe\[mlflow\]"') as caught:
            tracking_target(spec_of("output: {mlflow: {}}\n"), tmp_path, is_chief=chief)
        assert caught.value.exit_code == 2


def test_the_environment_variable_without_mlflow_is_one_note(tmp_path, monkeypatch, capsys):
    without("mlflow", monkeypatch)
    assert tracking_target(spec_of(), tmp_path, environ={"MLFLOW_TRACKING_URI": "x"}) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("note: MLFLOW_TRACKING_URI is set but "
                                                   "mlflow is not installed")
    assert 'pip install "kerapipe[mlflow]"' in err


def test_mlflow_telemetry_is_switched_off_unless_the_user_chose(monkeypatch):
    from kerapipe.tracking import _import_mlflow

    _import_mlflow()
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")
    _import_mlflow()
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "false"


def test_output_tensorboard_without_tensorboard_is_refused_by_the_callbacks_rule(monkeypatch):
    from kerapipe.compiler.keras_callbacks import TENSORBOARD_INSTALL, check_tensorboard_installed
    from kerapipe.errors import UsageError

    without("tensorboard", monkeypatch)
    check_tensorboard_installed(spec_of())  # nothing asks for TensorBoard
    with pytest.raises(UsageError) as caught:
        check_tensorboard_installed(spec_of("output: {tensorboard: true}\n"))
    assert str(caught.value) == (
        f"output.tensorboard needs the tensorboard package, an optional extra of kerapipe: "
        f"`{TENSORBOARD_INSTALL}`. Or set output.tensorboard: false.")
    assert caught.value.exit_code == 2


def test_output_mlflow_without_mlflow_stops_run_before_a_run_folder_exists(
        tmp_path, npz_workspace, call_main, monkeypatch):
    without("mlflow", monkeypatch)
    pipeline = npz_workspace(tmp_path, extra="output: {mlflow: {}}\n")
    code, out, err = call_main("run", pipeline, "--output", tmp_path / "runs")
    assert code == 2, out + err
    assert 'output.mlflow tracks the run in MLflow, which is not installed: `pip install ' \
        '"kerapipe[mlflow]"`' in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


# --- tracked runs ----------------------------------------------------------------------

def mlflow_client(uri: str):
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the test's own reads
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def mlflow_facts(client, run_id: str) -> dict:
    """What a test checks of one MLflow run."""
    run = client.get_run(run_id)
    keys = sorted(run.data.metrics)
    return {"status": run.info.status, "name": run.info.run_name,
            "params": dict(run.data.params), "tags": dict(run.data.tags),
            "experiment": client.get_experiment(run.info.experiment_id).name,
            "metrics": {k: [(m.step, m.value) for m in client.get_metric_history(run_id, k)]
                        for k in keys},
            "artifacts": sorted(a.path for a in client.list_artifacts(run_id))}


TRACKED = "output: {{tensorboard: true, mlflow: {{tracking_uri: '{uri}', experiment: kp}}}}\n"


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, npz_workspace):
    """A 3-epoch run tracked in a ``file:`` store, with TensorBoard logs, interrupted by
    SIGINT after its second epoch, then resumed to the end."""
    from kerapipe import compile_pipeline
    from kerapipe.compiler import backend  # noqa: F401
    import keras

    from kerapipe.errors import Interrupted
    from kerapipe.runner import resume_run

    folder = tmp_path_factory.mktemp("tracked")
    uri = (folder / "store").as_uri()

    class InterruptAfterSecondEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                os.kill(os.getpid(), signal.SIGINT)  # kerapipe's handler: a stop, then 130

    with pytest.MonkeyPatch.context() as patch:
        for name in MLFLOW_VARIABLES:
            patch.delenv(name, raising=False)
        patch.chdir(folder)  # a stray ./logs or ./mlruns would land here
        pipeline = npz_workspace(folder, epochs=3, extra=TRACKED.format(uri=uri))
        with pytest.raises(Interrupted):
            compile_pipeline(pipeline).run(output_dir=str(folder / "runs"), verbose=0,
                                           callbacks=[InterruptAfterSecondEpoch()])
        [run_dir] = (folder / "runs").iterdir()
        record = json.loads((run_dir / "run.json").read_text())
        client = mlflow_client(uri)
        interrupted = mlflow_facts(client, record["mlflow"]["run_id"])
        result = resume_run(run_dir, verbose=0)
        resumed = json.loads((run_dir / "run.json").read_text())
        final = mlflow_facts(client, resumed["mlflow"]["run_id"])
    return {"folder": folder, "run_dir": run_dir, "record": record, "resumed": resumed,
            "experiment_id": client.get_experiment_by_name("kp").experiment_id,
            "interrupted": interrupted, "final": final, "result": result, "uri": uri}


@pytest.mark.slow
def test_output_tensorboard_writes_event_files_inside_the_run_folder_only(tracked):
    run_dir, folder = tracked["run_dir"], tracked["folder"]
    for part in ("train", "validation"):
        assert list((run_dir / "tensorboard" / part).glob("events.out.tfevents.*"))
    events = [p for p in folder.rglob("events.out.tfevents.*")]
    assert events and all(p.is_relative_to(run_dir / "tensorboard") for p in events)
    assert {p.name for p in folder.iterdir()} == {"data.npz", "p.yaml", "runs", "store"}


@pytest.mark.slow
def test_mlflow_params_are_the_flattened_resolved_spec(tracked):
    from kerapipe.spec.overrides import flatten_key_paths
    from kerapipe.spec.typed import to_plain

    spec = validate_text((tracked["run_dir"] / "spec.yaml").read_text(), "spec.yaml").spec
    expected = {param_key(k): param_value(v, 6000)
                for k, v in flatten_key_paths(to_plain(spec)).items()}
    params = tracked["final"]["params"]
    assert params == expected
    assert (params["train.epochs"], params["model.layers.0.Dense.units"],
            params["output.tensorboard"]) == ("3", "3", "true")


@pytest.mark.slow
def test_mlflow_logs_one_value_per_epoch_and_the_test_metrics(tracked):
    metrics, history = tracked["final"]["metrics"], tracked["result"].history
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        assert [step for step, _ in metrics[key]] == [1, 2, 3], key
        assert [value for _, value in metrics[key]] == pytest.approx(history[key]), key
    for key, value in tracked["result"].test_metrics.items():
        assert metrics[f"test_{key}"] == [(3, pytest.approx(value))]


@pytest.mark.slow
def test_mlflow_artifacts_are_the_run_folders_files(tracked):
    artifacts, run_dir = tracked["final"]["artifacts"], tracked["run_dir"]
    assert {"model.keras", "spec.yaml", "run.json", "history.csv", "metrics.json"} <= set(
        artifacts)
    assert ("report.html" in artifacts) == (run_dir / "report.html").exists()
    store = Path(tracked["final"]["tags"]["kerapipe.run_dir"])
    assert store == run_dir.resolve()
    [copy] = (tracked["folder"] / "store").rglob("artifacts/run.json")
    assert json.loads(copy.read_text())["status"] == "finished"  # logged after the end


@pytest.mark.slow
def test_the_run_result_says_where_the_run_is_in_mlflow(tracked):
    assert tracked["result"].mlflow == TrackedRun(
        tracked["record"]["mlflow"]["run_id"], "kp", tracked["experiment_id"], tracked["uri"])


@pytest.mark.slow
def test_an_interrupted_run_is_killed_in_mlflow_and_its_resume_finishes_the_same_run(tracked):
    interrupted, final = tracked["interrupted"], tracked["final"]
    assert tracked["record"]["status"] == "interrupted"
    assert (interrupted["status"], interrupted["tags"]["kerapipe.status"]) == (
        "KILLED", "interrupted")
    assert [step for step, _ in interrupted["metrics"]["loss"]] == [1, 2]
    assert tracked["resumed"]["mlflow"] == tracked["record"]["mlflow"]  # one MLflow run
    assert (final["status"], final["tags"]["kerapipe.status"]) == ("FINISHED", "finished")
    assert (final["name"], final["experiment"]) == (tracked["run_dir"].name, "kp")
    assert tracked["record"]["mlflow"]["tracking_uri"] == tracked["uri"]


@pytest.mark.slow
def test_the_environment_variable_alone_tracks_the_run(tmp_path, npz_workspace, call_main,
                                                       monkeypatch):
    uri = (tmp_path / "store").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    code, out, err = call_main("run", npz_workspace(tmp_path), "--output", tmp_path / "runs")
    assert code == 0, out + err
    [run_dir] = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())["mlflow"]
    assert record["tracking_uri"] == uri
    assert out.splitlines()[-2:] == [  # where the run is: its folder, then its MLflow run
        f"run folder: {run_dir}",
        f"mlflow: run {record['run_id']} in experiment 'from-env' at {tmp_path / 'store'}"]
    facts = mlflow_facts(mlflow_client(uri), record["run_id"])
    assert (facts["status"], facts["experiment"]) == ("FINISHED", "from-env")
    assert [step for step, _ in facts["metrics"]["loss"]] == [1]


@pytest.mark.slow
def test_the_default_store_is_mlruns_in_the_output_dir_never_the_current_directory(
        tmp_path, npz_workspace, call_main, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pipeline = npz_workspace(tmp_path / "w", extra="output: {mlflow: {}}\n")
    code, out, err = call_main("run", pipeline, "--output", tmp_path / "out")
    assert code == 0, out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "w"]  # no mlruns, mlflow.db
    [run_dir] = [p for p in (tmp_path / "out").iterdir() if p.name != "mlruns"]
    record = json.loads((run_dir / "run.json").read_text())["mlflow"]
    assert record["tracking_uri"] == (tmp_path / "out" / "mlruns").as_uri()
    facts = mlflow_facts(mlflow_client(record["tracking_uri"]), record["run_id"])
    assert (facts["status"], facts["experiment"]) == ("FINISHED", "case")
    assert out.splitlines()[-1] == (f"mlflow: run {record['run_id']} in experiment 'case' at "
                                    f"{tmp_path / 'out' / 'mlruns'}")


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("asked_by", ["key", "environment"])
def test_an_unreachable_tracking_server_stops_the_run_in_seconds_before_a_run_folder(
        tmp_path, npz_workspace, call_main, monkeypatch, asked_by):
    # MLflow's own retries (none of its variables set here) would take minutes, then the
    # run would train untracked.
    uri = f"http://user:secret@127.0.0.1:{closed_port()}"
    if asked_by == "key":
        pipeline = npz_workspace(tmp_path, extra=f"output: {{mlflow: {{tracking_uri: '{uri}'}}}}\n")
        untracked = "--set output.mlflow=null"
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        pipeline = npz_workspace(tmp_path)
        untracked = "unset MLFLOW_TRACKING_URI"
    code, out, err = call_main("run", pipeline, "--output", tmp_path / "runs")
    assert code == 5, out + err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: MLflow tracking at {redact_uri(uri)} cannot start (")
    assert ": Connection refused); nothing was trained." in line  # the cause, past the cut
    assert line.endswith("; nothing was trained. Start the tracking server or fix the tracking "
                         f"URI, or run untracked ({untracked}).")
    assert "secret" not in out + err and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    for name in PROBE_SETTINGS:  # the bounded settings were for the check alone
        assert name not in os.environ


@pytest.mark.slow
def test_the_environment_variable_without_mlflow_runs_untracked(
        tmp_path, npz_workspace, call_main, monkeypatch):
    without("mlflow", monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "store").as_uri())
    code, out, err = call_main("run", npz_workspace(tmp_path), "--output", tmp_path / "runs")
    assert code == 0, out + err
    assert [line for line in err.splitlines() if "mlflow" in line.lower()] == [
        'note: MLFLOW_TRACKING_URI is set but mlflow is not installed (`pip install '
        '"kerapipe[mlflow]"`); this run is not tracked.']
    [run_dir] = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
    assert not (tmp_path / "store").exists()


@pytest.mark.slow
def test_a_failed_run_is_failed_in_mlflow_with_its_run_json(tmp_path, npz_workspace):
    from kerapipe import compile_pipeline
    from kerapipe.compiler import backend  # noqa: F401
    import keras

    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("boom")

    uri = (tmp_path / "store").as_uri()
    pipeline = npz_workspace(tmp_path, extra=f"output: {{mlflow: {{tracking_uri: '{uri}'}}}}\n")
    with pytest.raises(RuntimeError, match="boom"):
        compile_pipeline(pipeline).run(output_dir=str(tmp_path / "runs"), verbose=0,
                                       callbacks=[Boom()])
    [run_dir] = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    facts = mlflow_facts(mlflow_client(uri), record["mlflow"]["run_id"])
    assert (record["status"], facts["status"], facts["tags"]["kerapipe.status"]) == (
        "failed", "FAILED", "failed")
    assert "run.json" in facts["artifacts"] and "model.keras" not in facts["artifacts"]


@pytest.mark.parametrize("uri, hint", [
    ("http://mlflow.example:5000", "Start the tracking server or fix the tracking URI"),
    ("file:/proc/nope/mlruns", "Check that the store's folder can be created and written"),
    ("/srv/mlruns", "Check that the store's folder can be created and written"),
    ("sqlite:///mlflow.db", "A database store needs the full MLflow package"),
])
def test_a_store_that_cannot_start_gets_the_hint_of_its_kind(uri, hint):
    from kerapipe.tracking import _store_hint

    assert _store_hint(uri).startswith(hint)
