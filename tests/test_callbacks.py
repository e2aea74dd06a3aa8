"""``train.callbacks``: Keras callbacks by name, checked at their line, built in the run.

Spec side (``validate_text``, no TensorFlow): unknown and refused names, arguments,
``monitor`` by early stopping's rule, and the paths a callback writes. Run side: one
tiny run (30 examples, 4 epochs) interrupted after its second epoch and resumed, in
which ReduceLROnPlateau lowers ``learning_rate`` in history.csv, keeps its counters and
lowered rate across the resume, and TensorBoard and CSVLogger write inside the run
folder.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from kerapipe.spec.callbacks import REPORT_NAMES, RUN_FOLDER_NAMES, callback_catalog
from kerapipe.spec.validate import validate_text

BASE = """\
kerapipe: 1
data:
  source: {npz: data.npz}
  split: {validation: 0.2, test: 0.2}
model:
  layers: [{Dense: {units: 3}}]
train:
  epochs: 4
  callbacks:
"""


def issues_of(*callbacks: str, extra: str = "") -> list[tuple[str, tuple, int]]:
    text = BASE + "".join(f"    - {c}\n" for c in callbacks) + extra
    result = validate_text(text, "p.yaml")
    return [(i.code, i.path, i.line) for i in result.issues]


def at(index: int, *rest) -> tuple:
    return ("train", "callbacks", index, *rest)


def test_the_design_example_validates_each_callback_as_written():
    text = BASE + ("    - ReduceLROnPlateau: {monitor: val_loss, factor: 0.5, patience: 3}\n"
                   "    - TerminateOnNaN: null\n    - TensorBoard: {log_dir: tb}\n"
                   "    - CSVLogger: {filename: log.csv}\n    - TerminateOnNaN\n")
    result = validate_text(text, "p.yaml")
    assert result.issues == []
    assert [(c.name, c.kwargs) for c in result.spec.train.callbacks] == [
        ("ReduceLROnPlateau", {"monitor": "val_loss", "factor": 0.5, "patience": 3}),
        ("TerminateOnNaN", {}), ("TensorBoard", {"log_dir": "tb"}),
        ("CSVLogger", {"filename": "log.csv"}), ("TerminateOnNaN", {})]


def test_unknown_callback_suggests_the_closest_name_at_its_line():
    text = BASE + "    - ReduceLRonPlateau: {}\n"
    [issue] = validate_text(text, "p.yaml").issues
    assert (issue.code, issue.path, issue.line) == (
        "unknown-callback", at(0, "ReduceLRonPlateau"), 10)
    assert "Did you mean 'ReduceLROnPlateau'?" in issue.message


@pytest.mark.parametrize("name, says", [
    ("EarlyStopping", "train.early_stopping"),
    ("ModelCheckpoint", "every epoch is checkpointed"),
    ("BackupAndRestore", "kerapipe run --resume RUN"),
    ("LearningRateScheduler", "optimizer.learning_rate"),
    ("LambdaCallback", "Python functions"),
    ("RemoteMonitor", "network"),
    ("OrbaxCheckpoint", "checkpointed in the run folder"),
    ("History", "plumbing"), ("ProgbarLogger", "plumbing"), ("CallbackList", "plumbing"),
    ("Callback", "abstract"),
], ids=lambda v: v if isinstance(v, str) and v[0].isupper() else "")
def test_refused_callback_says_why_and_the_key_to_use(name, says):
    result = validate_text(BASE + f"    - {name}: {{}}\n", "p.yaml")
    [issue] = result.issues
    assert (issue.code, issue.path, issue.line) == ("refused-callback", at(0, name), 10)
    assert says in issue.message


def test_every_offered_callback_has_every_argument_typed_in_the_catalogue():
    catalog = callback_catalog()
    for name, entry in catalog.family.entries.items():
        untyped = set(entry.params) - set(entry.args)
        # embeddings_metadata takes any value: it is refused whatever it is (_check_values)
        assert untyped == ({"embeddings_metadata"} if name == "TensorBoard" else set()), name
    assert not set(catalog.refused) & set(catalog.family.entries)


@pytest.mark.parametrize("callback, expected", [
    ("ReduceLROnPlateau: {monitr: val_loss}",
     [("unknown-argument", at(0, "ReduceLROnPlateau", "monitr"), 10)]),
    ("ReduceLROnPlateau: {factor: 1.5}",
     [("out-of-range", at(0, "ReduceLROnPlateau", "factor"), 10)]),
    ("ReduceLROnPlateau: {mode: mx}", [("unknown-value", at(0, "ReduceLROnPlateau", "mode"), 10)]),
    ("ReduceLROnPlateau: {patience: '3'}",
     [("wrong-type", at(0, "ReduceLROnPlateau", "patience"), 10)]),
    ("CSVLogger", [("missing-argument", at(0, "CSVLogger"), 10)]),
    ("CSVLogger: {filename: a.csv, separator: ';;'}",
     [("wrong-type", at(0, "CSVLogger", "separator"), 10)]),
    ("TerminateOnNaN: {raise_error: true}",
     [("not-applicable", at(0, "TerminateOnNaN", "raise_error"), 10)]),
    ("TensorBoard: {embeddings_metadata: meta.tsv}",
     [("not-applicable", at(0, "TensorBoard", "embeddings_metadata"), 10)]),
    ("TensorBoard: {profile_batch: [20, 10]}",
     [("wrong-type", at(0, "TensorBoard", "profile_batch"), 10)]),
    ("[TerminateOnNaN]", [("wrong-type", at(0), 10)]),
], ids=["unknown-argument", "factor", "mode", "quoted-number", "no-filename", "separator",
        "raise-error", "embeddings-metadata", "profile-range", "not-a-mapping"])
def test_callback_arguments_are_checked_at_their_line(callback, expected):
    assert issues_of(callback) == expected


def test_monitor_follows_the_early_stopping_rule():
    assert issues_of("ReduceLROnPlateau: {monitor: val_los}") == [
        ("unknown-monitor", at(0, "ReduceLROnPlateau", "monitor"), 10)]
    callback = validate_text(BASE + "    - ReduceLROnPlateau: {monitor: val_los}\n", "p.yaml")
    early = validate_text(BASE.replace("  callbacks:\n", "  early_stopping: {monitor: val_los}\n"),
                          "p.yaml")
    assert [i.message for i in callback.issues] == [i.message for i in early.issues]
    # The default monitor (val_loss) without a validation split, at the callback's name.
    text = BASE.replace("validation: 0.2", "validation: 0") + "    - ReduceLROnPlateau\n"
    [issue] = validate_text(text, "p.yaml").issues
    assert (issue.code, issue.path) == ("unknown-monitor", at(0, "ReduceLROnPlateau"))
    assert "'val_loss' (the default of ReduceLROnPlateau)" in issue.message
    assert "There is no validation split" in issue.message


@pytest.mark.parametrize("callback, problem", [
    ("TensorBoard: {log_dir: /tmp/tb}", "absolute"),
    ("TensorBoard: {log_dir: ../tb}", "'..'"),
    ("TensorBoard: {log_dir: 'a/../../tb'}", "'..'"),
    ("TensorBoard: {log_dir: '.'}", "the run folder itself"),
    ("TensorBoard: {log_dir: 'gs://bucket/tb'}", "URL"),
    ("TensorBoard: {log_dir: '~/tb'}", "absolute"),
    ("CSVLogger: {filename: history.csv}", "'history.csv' is one of the run folder's own"),
    ("CSVLogger: {filename: checkpoints/log.csv}", "'checkpoints' is one of"),
    ("CSVLogger: {filename: model.keras}", "'model.keras' is one of"),
    ("CSVLogger: {filename: .tmp-x.csv}", "'.tmp-x.csv' is one of"),
    ("CSVLogger: {filename: \"log\\0.csv\"}", "control character"),
], ids=["absolute", "up", "up-inside", "dot", "url", "home", "history", "checkpoints",
        "model", "temporary", "nul"])
def test_a_callback_writes_only_new_paths_inside_the_run_folder(callback, problem):
    text = BASE + f"    - {callback}\n"
    [issue] = validate_text(text, "p.yaml").issues
    assert (issue.code, issue.line) == ("bad-callback-path", 10)
    assert problem in issue.message


def test_two_callbacks_cannot_write_the_same_path_and_the_default_log_dir_counts():
    assert issues_of("TensorBoard", "CSVLogger: {filename: logs/a.csv}") == [
        ("bad-callback-path", at(1, "CSVLogger", "filename"), 11)]


def test_reduce_lr_on_plateau_needs_a_number_as_the_learning_rate():
    extra = ("optimizer: {name: adam, learning_rate: {ExponentialDecay: {initial_learning_rate:"
             " 0.01, decay_steps: 10, decay_rate: 0.9}}}\n")
    assert issues_of("ReduceLROnPlateau", extra=extra) == [
        ("not-applicable", at(0, "ReduceLROnPlateau"), 10)]
    assert issues_of("SwapEMAWeights") == [("not-applicable", at(0, "SwapEMAWeights"), 10)]
    assert issues_of("SwapEMAWeights", extra="optimizer: {name: adam, use_ema: true}\n") == []


# --- the run ---------------------------------------------------------------------------

RUN_CALLBACKS = """\
  callbacks:
    - ReduceLROnPlateau: {monitor: loss, patience: 0, factor: 0.5, min_delta: 1000}
    - TerminateOnNaN
    - TensorBoard: {log_dir: tb}
    - CSVLogger: {filename: logs/epochs.csv}
"""


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory, npz_workspace):
    """A 4-epoch run interrupted as its third epoch begins, then resumed to the end."""
    from kerapipe import compile_pipeline
    from kerapipe.compiler import backend  # noqa: F401
    import keras

    from kerapipe.runner import resume_run

    folder = tmp_path_factory.mktemp("callbacks")
    pipeline = npz_workspace(folder, epochs=4)
    pipeline.write_text(pipeline.read_text().replace("train: {epochs: 4}\n",
                                                     "train:\n  epochs: 4\n" + RUN_CALLBACKS))

    class InterruptAtThirdEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    compiled = compile_pipeline(pipeline)
    kinds = [type(c).__name__ for c in compiled.callbacks]
    with pytest.raises(KeyboardInterrupt):
        compiled.run(output_dir=str(folder / "runs"), verbose=0,
                     callbacks=[InterruptAtThirdEpoch()])
    [run_dir] = (folder / "runs").iterdir()
    state = json.loads((run_dir / "checkpoints" / "epoch-0002" / "state.json").read_text())
    csv_rows_at_interrupt = len((run_dir / "logs" / "epochs.csv").read_text().splitlines())
    result = resume_run(run_dir, verbose=0)
    return {"run_dir": run_dir, "result": result, "state": state, "kinds": kinds,
            "csv_rows_at_interrupt": csv_rows_at_interrupt, "folder": folder}


def read_history(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_reduce_lr_on_plateau_lowers_the_learning_rate_in_history_csv_across_a_resume(
        resumed_run):
    rates = [float(row["learning_rate"]) for row in read_history(resumed_run["run_dir"])]
    # Epoch 1 sets the best loss; each later one misses it by min_delta and halves the
    # rate for the next epoch. Epoch 3 is the resumed run's first: it kept both the
    # lowered rate and the counters (without them it would train at 0.001 again and
    # take its loss as a new best).
    assert rates == pytest.approx([0.001, 0.001, 0.0005, 0.00025])
    assert resumed_run["result"].history["learning_rate"] == pytest.approx(rates)
    saved = resumed_run["state"]["callbacks"]
    assert saved["learning_rate"] == pytest.approx(0.0005)
    assert [(e["index"], e["name"], e["wait"], e["cooldown_counter"]) for e in saved["entries"]] \
        == [(0, "ReduceLROnPlateau", 0, 0)]


def test_tensorboard_and_csv_logger_write_inside_the_run_folder(resumed_run):
    run_dir = resumed_run["run_dir"]
    assert list((run_dir / "tb" / "train").glob("events.out.tfevents.*"))
    assert list((run_dir / "tb" / "validation").glob("events.out.tfevents.*"))
    with open(run_dir / "logs" / "epochs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert resumed_run["csv_rows_at_interrupt"] == 3  # the header and two epochs
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2, 3]  # the resume appended
    assert [float(row["learning_rate"]) for row in rows] == pytest.approx(
        [0.001, 0.001, 0.0005, 0.00025])
    assert {p.name for p in resumed_run["folder"].iterdir()} == {"data.npz", "p.yaml", "runs"}
    # Every other name in the run folder is one kerapipe owns (so a path may not take it).
    assert {p.name for p in run_dir.iterdir()} - {"tb", "logs"} <= set(RUN_FOLDER_NAMES
                                                                     + REPORT_NAMES)


def test_a_bare_fit_runs_the_callbacks_that_write_no_files(resumed_run):
    assert resumed_run["kinds"] == ["LearningRateLogger", "ReduceLROnPlateau",
                                    "TerminateOnNaN"]


def test_a_damaged_callback_state_refuses_the_resume(resumed_run, tmp_path):
    from kerapipe.callbacks import check_callback_states
    from kerapipe.errors import UsageError

    good = resumed_run["state"]["callbacks"]
    assert check_callback_states(good, tmp_path / "state.json") == good
    for bad in ({"entries": "x", "learning_rate": 0.1},
                {**good, "learning_rate": float("nan")},
                {**good, "entries": [{**good["entries"][0], "wait": -1}]},
                {**good, "entries": [{**good["entries"][0], "name": "EarlyStopping"}]}):
        with pytest.raises(UsageError, match="damaged"):
            check_callback_states(bad, tmp_path / "state.json")


def test_file_callbacks_resolve_inside_the_given_folder_and_refuse_a_link_out(tmp_path):
    from kerapipe.compiler.keras_callbacks import close_files, file_callbacks
    from kerapipe.errors import OutputError

    text = BASE + ("    - TensorBoard\n    - CSVLogger: {filename: logs2/e.csv}\n"
                   "    - TerminateOnNaN\n")
    spec = validate_text(text, "p.yaml").spec
    folder = tmp_path / "out"
    folder.mkdir()
    built = file_callbacks(spec, folder)
    assert [(type(c).__name__, c.kerapipe_entry) for c in built] == [
        ("TensorBoard", (0, "TensorBoard")), ("CSVLogger", (1, "CSVLogger"))]
    assert built[0].log_dir == str(folder.resolve() / "logs")
    assert built[1].filename == str(folder.resolve() / "logs2" / "e.csv")
    close_files(built)
    (folder / "logs").symlink_to(tmp_path)  # a run folder changed before --resume
    with pytest.raises(OutputError, match="outside the run folder"):
        file_callbacks(spec, folder, resumed=True)


def test_tensorboard_without_its_package_is_refused_before_a_run_folder_exists(
        tmp_path, npz_workspace, call_main, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    pipeline = npz_workspace(tmp_path)
    pipeline.write_text(pipeline.read_text().replace(
        "train: {epochs: 1}\n", "train:\n  epochs: 1\n  callbacks: [TensorBoard]\n"))
    code, out, err = call_main("run", pipeline, "--output", tmp_path / "runs")
    assert code == 2, out + err
    assert "TensorBoard needs the tensorboard package" in err
    assert "pip install kerapipe[tensorboard]" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_callback_file_where_the_report_goes_keeps_its_file_and_the_run_has_no_report(
        tmp_path, npz_workspace):
    """A file that validated before the report existed still validates (with a warning)
    and runs; the callback's file is kept, and the report is not written over it."""
    from kerapipe import compile_pipeline
    from kerapipe.spec.validate import validate_file

    pipeline = npz_workspace(tmp_path, epochs=1)
    pipeline.write_text(pipeline.read_text().replace(
        "train: {epochs: 1}\n", "train:\n  epochs: 1\n  callbacks: [{CSVLogger: "
        "{filename: report.html}}]\n"))
    result = validate_file(str(pipeline))
    assert [(i.code, i.severity) for i in result.issues] == [("callback-path-shared", "warning")]
    run = compile_pipeline(result).run(output_dir=str(tmp_path / "runs"), verbose=0)
    assert (run.run_dir / "report.html").read_text().startswith("epoch,")  # the CSV log
    assert not (run.run_dir / "plots").exists()
    assert any("the report is not written" in note for note in run.notes), run.notes
