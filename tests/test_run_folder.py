"""The run folder as one object (issue 11): ``kerapipe.run_folder.RunFolder`` writes every
file of a run; run.json says ``finished_at`` only once the run is over; callbacks passed
in Python are added to the pipeline's own (its early stopping), never instead of them.

The checkpoint layout is tested with a stand-in model (no TensorFlow); the rest trains a
3-class npz pipeline of 30 examples for at most a few epochs.
"""

from __future__ import annotations

import errno
import json
import os
import textwrap
from pathlib import Path

import pytest

from kerapipe.run_folder import LATEST, RunFolder

PIPELINE = textwrap.dedent("""\
    kerapipe: 1
    name: folder
    seed: 1
    data:
      source: {npz: data.npz}
      split: {validation: 0.2, test: 0.2}
      batch_size: 8
    model:
      layers: [{Dense: {units: 3}}]
    train:
      epochs: 8
      # No epoch improves the loss by 1000: the second epoch stops the run.
      early_stopping: {monitor: loss, patience: 1, min_delta: 1000}
    """)


@pytest.fixture
def workspace(npz_workspace):
    """(folder, text=PIPELINE) -> folder/p.yaml beside the shared 30-example data.npz."""
    return lambda folder, text=PIPELINE: npz_workspace(folder, text=text)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text("utf-8"))


def epoch_recorder(run_dir_of=None):
    """A Keras callback that counts the epochs it sees and, given ``run_dir_of`` (a
    function returning the run folder), keeps run.json as it is at each epoch's end."""
    from kerapipe.compiler import backend  # noqa: F401
    import keras

    class Recorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs: list[int] = []
            self.records: list[dict] = []

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append(epoch + 1)
            if run_dir_of is not None:
                (record,) = [read_json(p) for p in Path(run_dir_of()).glob("*/run.json")]
                self.records.append(record)

    return Recorder()


# --- callbacks passed in Python ------------------------------------------------------

def test_a_callback_passed_to_fit_keeps_the_files_early_stopping(tmp_path, workspace):
    from kerapipe import compile_pipeline

    compiled = compile_pipeline(workspace(tmp_path))
    recorder = epoch_recorder()
    history = compiled.fit(verbose=0, callbacks=[recorder])
    assert len(history.history["loss"]) == 2  # stopped early, not 8 epochs
    assert recorder.epochs == [1, 2]
    # the learning-rate logger and the file's early stopping, not replaced by the caller's
    assert [type(c).__name__ for c in compiled.callbacks] == ["LearningRateLogger",
                                                              "EarlyStopping"]


def test_run_calls_the_callbacks_passed_in_python_and_keeps_early_stopping(tmp_path, workspace):
    from kerapipe import compile_pipeline

    compiled = compile_pipeline(workspace(tmp_path / "p"))
    recorder = epoch_recorder(lambda: tmp_path / "runs")
    result = compiled.run(output_dir=str(tmp_path / "runs"), verbose=0, callbacks=[recorder])
    assert recorder.epochs == [1, 2] and result.epochs_run == 2
    assert (result.run_dir / "checkpoints" / "epoch-0002").is_dir()  # the run's own too


# --- run.json -----------------------------------------------------------------------

def test_run_json_says_finished_at_only_once_the_run_is_over(tmp_path, workspace):
    from kerapipe import compile_pipeline

    compiled = compile_pipeline(workspace(tmp_path / "p"))
    recorder = epoch_recorder(lambda: tmp_path / "runs")
    result = compiled.run(output_dir=str(tmp_path / "runs"), verbose=0, callbacks=[recorder])
    while_running = recorder.records[0]
    assert while_running["status"] == "running"
    assert "finished_at" not in while_running and while_running["started_at"]
    record = read_json(result.run_dir / "run.json")
    assert record["status"] == "finished"
    assert record["started_at"] == while_running["started_at"]
    assert record["finished_at"] >= record["started_at"]
    assert set(while_running) == set(record) - {"finished_at"}  # the rest of it, kept


def _a_run_pretending_it_was_interrupted(pipeline, tmp_path, call_main):
    """A finished run of ``pipeline`` whose run.json says interrupted, so it can be
    resumed: (its folder, the record as written)."""
    code, out, err = call_main("run", pipeline, "--output", tmp_path / "runs")
    assert code == 0, out + err
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = read_json(run_dir / "run.json")
    record["status"] = "interrupted"
    (run_dir / "run.json").write_text(json.dumps(record))
    return run_dir, record


def test_a_resumed_run_keeps_when_it_first_started_and_validates_its_file_once(
        tmp_path, call_main, monkeypatch, workspace):
    import kerapipe.spec.validate as validate_module

    pipeline = workspace(tmp_path / "p", PIPELINE.replace("seed: 1", "seed: null"))
    run_dir, record = _a_run_pretending_it_was_interrupted(pipeline, tmp_path, call_main)
    validated, real = [], validate_module.validate_text
    monkeypatch.setattr(validate_module, "validate_text",
                        lambda text, file="<string>", overrides=(), **options: validated.append(
                            (file, tuple(overrides))) or real(text, file, overrides, **options))
    code, out, err = call_main("run", "--resume", run_dir)
    assert code == 0, out + err
    validated = [(file, overrides) for file, overrides in validated
                 if not file.endswith("spec.yaml")]  # the stored spec, read for the report
    assert validated == [(str(pipeline), ())]  # was 3 times: twice for a drawn seed
    resumed = read_json(run_dir / "run.json")
    assert resumed["status"] == "finished" and resumed["started_at"] == record["started_at"]
    assert resumed["resumed_at"] >= record["started_at"]
    assert resumed["seed"] == record["seed"]  # the seed the run drew, kept
    assert resumed["overrides"] == [f"seed={record['seed']}"]


def test_a_run_begun_before_new_keys_existed_resumes_without_force(
        tmp_path, call_main, workspace):
    """spec.yaml of an older kerapipe lacks the keys added since (each then means its
    default): the resume compares the specs, not the texts."""
    pipeline = workspace(tmp_path / "p", PIPELINE)
    run_dir, record = _a_run_pretending_it_was_interrupted(pipeline, tmp_path, call_main)
    spec_yaml = run_dir / "spec.yaml"
    older = [line for line in spec_yaml.read_text().splitlines(True)
             if line.strip() not in ("precision: float32", "class_weight: null", "stages: []",
                                     "callbacks: []")]
    assert len(older) < len(spec_yaml.read_text().splitlines())
    spec_yaml.write_text("".join(older))
    code, out, err = call_main("run", "--resume", run_dir)
    assert code == 0, out + err
    assert read_json(run_dir / "run.json")["status"] == "finished"
    assert spec_yaml.read_text() == "".join(older)  # the run's own file, unchanged

    record["status"] = "interrupted"  # a real change is still refused, with its diff
    (run_dir / "run.json").write_text(json.dumps(record))
    pipeline.write_text(pipeline.read_text().replace("seed: 1", "seed: 2"))
    code, out, err = call_main("run", "--resume", run_dir)
    assert code == 2 and "-seed: 1" in err and "+seed: 2" in err
    assert "precision" not in err  # the keys the older file lacked are not a change


def test_a_failure_before_the_run_began_still_gets_a_record(tmp_path):
    folder = RunFolder.create(tmp_path, "early")
    err = RuntimeError("before anything")
    folder.record_failure(err, {}, {})
    record = read_json(folder.path / "run.json")
    assert record["status"] == "failed" and record["reason"] == "RuntimeError: before anything"
    assert record["started_at"] <= record["finished_at"]
    assert read_json(folder.path / "metrics.json")["stopped"] == record["reason"]
    assert getattr(err, "__notes__", []) == [f"The run folder {folder.path} is marked failed "
                                             "and keeps the history of 0 finished epoch(s)"]


# --- creation -----------------------------------------------------------------------

def test_two_runs_started_in_the_same_second_get_two_new_folders(tmp_path):
    first, second = RunFolder.create(tmp_path, "same"), RunFolder.create(tmp_path, "same")
    assert first.path != second.path and first.path.parent == second.path.parent == tmp_path
    assert second.path.name.startswith(first.path.name)
    assert list(first.path.iterdir()) == list(second.path.iterdir()) == []
    assert str(first) == os.fspath(first) == str(first.path)  # messages name the path


# --- checkpoints (a stand-in model: no TensorFlow) -----------------------------------

class FakeModel:
    """``save`` and ``save_weights`` write the given bytes, as Keras writes its files."""

    def __init__(self, weights: bytes = b"w") -> None:
        self.weights = weights

    def save(self, path):
        Path(path).write_bytes(b"model " + self.weights)

    def save_weights(self, path):
        Path(path).write_bytes(self.weights)


def checkpoint_tree(folder: RunFolder) -> dict:
    return {str(p.relative_to(folder.checkpoints)): p.read_bytes()
            for p in sorted(folder.checkpoints.rglob("*")) if p.is_file()}


def test_a_checkpoint_replaces_the_previous_one_and_carries_its_best_weights(tmp_path):
    folder = RunFolder.create(tmp_path, "ckpt")
    folder.make_checkpoints()
    folder.write_checkpoint(1, FakeModel(b"one"), {"epochs_done": 1}, new_best=True)
    folder.write_checkpoint(2, FakeModel(b"two"), {"epochs_done": 2}, new_best=False)
    assert checkpoint_tree(folder) == {
        "LATEST": b"epoch-0002\n", "epoch-0002/best.weights.h5": b"one",
        "epoch-0002/last.keras": b"model two", "epoch-0002/state.json": b'{\n "epochs_done": 2\n}\n'}
    assert folder.latest_checkpoint() == folder.checkpoints / "epoch-0002"
    folder.write_checkpoint(3, FakeModel(b"three"), {"epochs_done": 3}, new_best=None)
    assert sorted(checkpoint_tree(folder)) == ["LATEST", "epoch-0003/last.keras",
                                               "epoch-0003/state.json"]


def test_a_checkpoint_that_cannot_be_written_leaves_the_previous_one_intact(tmp_path,
                                                                           monkeypatch):
    import kerapipe.run_folder as run_folder

    folder = RunFolder.create(tmp_path, "full")
    folder.make_checkpoints()
    folder.write_checkpoint(1, FakeModel(b"one"), {"epochs_done": 1}, new_best=True)
    before = checkpoint_tree(folder)

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_folder, "_fsync", full)
    with pytest.raises(OSError, match="No space left"):
        folder.write_checkpoint(2, FakeModel(b"two"), {"epochs_done": 2}, new_best=True)
    assert checkpoint_tree(folder) == before  # no .tmp-epoch-0002 left, LATEST unchanged
    assert folder.intact_checkpoint() == folder.checkpoints / "epoch-0001"


def test_a_damaged_latest_is_no_intact_checkpoint(tmp_path):
    from kerapipe.errors import UsageError

    folder = RunFolder.create(tmp_path, "damaged")
    folder.make_checkpoints()
    (folder.checkpoints / LATEST).write_text("../../elsewhere\n")
    with pytest.raises(UsageError, match="damaged"):
        folder.latest_checkpoint()
    assert folder.intact_checkpoint() is None
