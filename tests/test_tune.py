"""`kerapipe tune`: keras-tuner's oracles over a pipeline's `tune:` section, each trial a
kerapipe run (tiny: the Iris table, 1-2 epochs a trial)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IRIS = ROOT / "pipelines" / "data" / "iris.csv"

PIPELINE = """\
kerapipe: 1
name: iris-t
seed: 3
data:
  source:
    csv: {path: iris.csv, label: species}
  split: {validation: 0.2, test: 0.2, stratify: true}
  preprocess: [{normalize: {}}]
  batch_size: 16
model:
  layers:
    - Dense: {units: 4, activation: relu}
    - Dense: {units: 3}
optimizer: {name: adam, learning_rate: 0.001}
train: {epochs: 2}
output: {dir: runs}
tune:
  space:
    optimizer.learning_rate: [0.001, 0.01, 0.1]
    model.layers[0].Dense.units: [4, 16]
  objective: OBJECTIVE
  max_trials: 3
"""


@pytest.fixture
def workspace(tmp_path):
    shutil.copy(IRIS, tmp_path / "iris.csv")

    def write(objective: str = "val_loss", text: str = PIPELINE) -> Path:
        path = tmp_path / "p.yaml"
        path.write_text(text.replace("OBJECTIVE", objective))
        return path
    return write


def _run(path: Path, **kwargs):
    from kerapipe.tuning import tune_pipeline

    lines: list[str] = []
    return tune_pipeline(str(path), output_dir=str(path.parent / "runs"), echo=lines.append,
                         **kwargs), lines


def _history(run_dir: Path, key: str) -> list[float]:
    import csv

    with open(run_dir / "history.csv") as handle:
        return [float(row[key]) for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_a_random_search_writes_best_yaml_with_the_best_trials_values(workspace):
    from kerapipe.spec.validate import validate_file

    result, lines = _run(workspace())
    assert [row["status"] for row in result.trials] == ["completed"] * 3
    objectives = [row["objective"] for row in result.trials]
    assert result.best["objective"] == min(objectives)
    # each trial's objective is its run's best epoch of val_loss
    for row in result.trials:
        (run,) = row["runs"]
        assert row["objective"] == pytest.approx(min(_history(result.tune_dir / run, "val_loss")))
    # best.yaml: a complete pipeline with the best values and no tune section
    best = validate_file(result.best_file)
    assert best.issues == [] and best.spec.tune is None  # no missing-data: paths rebased
    assert best.spec.optimizer.learning_rate == result.best["values"]["optimizer.learning_rate"]
    assert best.spec.model.layers[0].kwargs["units"] == \
        result.best["values"]["model.layers[0].Dense.units"]
    # the best run is the best trial's own run folder, of best.yaml's pipeline
    assert result.best_run == result.tune_dir / result.best["runs"][0]
    assert (result.best_run / "model.keras").is_file()
    assert result.tune_dir.name.startswith("iris-t-tune-")
    assert (result.tune_dir / "keras_tuner" / "oracle.json").is_file()
    table = lines[-1]
    assert table.splitlines()[0].split() == ["trial", "status", "optimizer.learning_rate",
                                             "model.layers[0].Dense.units", "val_loss"]
    assert f"best: trial {result.best['trial']}, val_loss=" in table


@pytest.mark.slow
def test_val_accuracy_is_maximised_with_direction_auto(workspace):
    result, _ = _run(workspace("val_accuracy"), max_trials=2)
    assert result.direction == "max"
    assert result.best["objective"] == max(row["objective"] for row in result.trials)


@pytest.mark.slow
@pytest.mark.parametrize("objective, direction", [
    ("val_loss", "min"), ("val_accuracy", "max"), ("val_mae", "min"), ("val_auc", "max")],
    ids=["loss", "accuracy", "mae", "auc"])
def test_direction_auto_follows_the_metric(objective, direction, tmp_path):
    from kerapipe.spec.validate import validate_text
    from kerapipe.tuning import objective_direction

    text = PIPELINE.replace("metrics", "m").replace("train: {epochs: 2}",
                                                    "metrics: [accuracy, mae, auc]\ntrain: {epochs: 2}")
    spec = validate_text(text.replace("OBJECTIVE", "val_loss"), str(tmp_path / "p.yaml")).spec
    assert objective_direction(spec, objective) == direction


@pytest.mark.slow
def test_resume_after_an_interrupted_search_keeps_the_finished_trials(workspace, monkeypatch):
    from kerapipe.errors import Interrupted
    from kerapipe.pipeline import CompiledPipeline

    real_run = CompiledPipeline.run
    calls = []

    def interrupted_second_trial(self, *args, **kwargs):
        calls.append(kwargs["output_dir"])
        if len(calls) == 2:  # as a Ctrl-C during the second trial's training ends it
            raise Interrupted("interrupted by SIGINT", 2)
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(CompiledPipeline, "run", interrupted_second_trial)
    path = workspace()
    with pytest.raises(Interrupted) as stop:
        _run(path)
    (tune_dir,) = (path.parent / "runs").iterdir()
    assert stop.value.exit_code == 130
    assert str(stop.value) == (  # the search's message, not the trial run's
        f"interrupted by SIGINT during trial 1; the search's 1 finished trial(s) are kept "
        f"in {tune_dir}. Continue the search with: kerapipe tune --resume {tune_dir}")
    monkeypatch.setattr(CompiledPipeline, "run", real_run)
    result, _ = _run(path, resume_dir=str(tune_dir))
    assert result.tune_dir == tune_dir
    assert [row["status"] for row in result.trials] == ["completed"] * 3
    first = result.trials[0]
    assert len(first["runs"]) == 1 and first["runs"][0].startswith("trials/0/")
    # trial 0 ran once in all; trial 1 again on resume; then trial 2
    assert len(list((tune_dir / "trials" / "0").iterdir())) == 1
    assert [row["trial"] for row in result.trials] == ["0", "1", "2"]


@pytest.mark.slow
def test_a_resume_keeps_the_budget_the_search_started_with(workspace, monkeypatch):
    """`--max-trials 2`, interrupted in trial 1, resumed without --max-trials: 2 trials in
    all (tune.json records the budget), not the file's 3. A tune.json of an older
    kerapipe (no max_trials) falls back to the file's. Keras's session is cleared after
    every trial."""
    import json

    import keras

    from kerapipe.errors import Interrupted
    from kerapipe.pipeline import CompiledPipeline

    real_run = CompiledPipeline.run
    calls = []

    def interrupted_second_trial(self, *args, **kwargs):
        calls.append(kwargs["output_dir"])
        if len(calls) == 2:
            raise Interrupted("interrupted by SIGINT", 2)
        return real_run(self, *args, **kwargs)

    cleared = []
    real_clear = keras.backend.clear_session
    monkeypatch.setattr(keras.backend, "clear_session",
                        lambda *a, **k: (cleared.append(1), real_clear(*a, **k))[1])
    monkeypatch.setattr(CompiledPipeline, "run", interrupted_second_trial)
    path = workspace()
    with pytest.raises(Interrupted):
        _run(path, max_trials=2)
    (tune_dir,) = (path.parent / "runs").iterdir()
    record = json.loads((tune_dir / "tune.json").read_text())
    assert record["max_trials"] == 2
    monkeypatch.setattr(CompiledPipeline, "run", real_run)
    result, _ = _run(path, resume_dir=str(tune_dir))
    assert [row["status"] for row in result.trials] == ["completed"] * 2
    assert json.loads((tune_dir / "tune.json").read_text())["max_trials"] == 2
    assert len(cleared) >= 2  # after trial 0, and after trial 1 on resume
    record = json.loads((tune_dir / "tune.json").read_text())
    del record["max_trials"]  # as an older kerapipe wrote it
    (tune_dir / "tune.json").write_text(json.dumps(record))
    result, _ = _run(path, resume_dir=str(tune_dir))
    assert len(result.trials) == 3  # the file's tune.max_trials


def test_a_search_drops_tensorflows_retracing_warning_only():
    """Every trial is a new model whose predict function TensorFlow traces once; it counts
    the tracings of that function's code over the process and, from the fifth trial,
    warns of "retracing" (seen at trials 4 and 5 of a 7-trial search). The search drops
    that warning and no other."""
    import logging

    from kerapipe.tuning import without_retracing_warning

    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    try:
        with without_retracing_warning():
            logger.warning("5 out of the last 5 calls to <function f> triggered tf.function "
                           "retracing. Tracing is expensive")
            logger.warning("another warning")
        logger.warning("6 out of the last 6 calls to <function f> triggered tf.function "
                       "retracing.")
    finally:
        logger.removeHandler(handler)
    assert seen == ["another warning", "6 out of the last 6 calls to <function f> "
                    "triggered tf.function retracing."]


def test_a_tune_record_with_a_bad_budget_is_refused(tmp_path, call_main):
    import json

    (tmp_path / "keras_tuner").mkdir()
    (tmp_path / "keras_tuner" / "oracle.json").write_text("{}")
    (tmp_path / "tune.json").write_text(json.dumps({
        "pipeline_file": "p.yaml", "runs": {}, "max_trials": "3"}))
    code, out, err = call_main("tune", "--resume", str(tmp_path))
    assert code == 2 and "max_trials is '3', not a trial budget" in err


@pytest.mark.slow
def test_resume_with_a_larger_budget_runs_only_the_new_trials(workspace):
    path = workspace()
    first, _ = _run(path, max_trials=2)
    before = {row["trial"]: row["runs"] for row in first.trials}
    best_text = first.best_file.read_text()
    second, lines = _run(path, resume_dir=str(first.tune_dir), max_trials=3)
    assert first.best_file.read_text() == best_text  # never overwritten: a new best is best-2
    assert second.best_file.name == ("best.yaml" if second.best["trial"] == first.best["trial"]
                                     else "best-2.yaml")
    assert len(second.trials) == 3
    assert {row["trial"]: row["runs"] for row in second.trials[:2]} == before
    assert sum(line.endswith(tuple("0123456789.")) and "val_loss=" in line and "trial " in line
               for line in lines if line.startswith("kerapipe tune: trial")) == 1


@pytest.mark.slow
def test_a_trial_whose_values_do_not_validate_together_fails_and_the_search_goes_on(workspace):
    text = PIPELINE.replace("    optimizer.learning_rate: [0.001, 0.01, 0.1]\n", "").replace(
                            "    model.layers[0].Dense.units: [4, 16]\n",
                            "    data.split.validation: [0.2, 0.6]\n"
                            "    data.split.test: [0.2, 0.6]\n")
    result, lines = _run(workspace(text=text), max_trials=4)  # every pair: one fails
    statuses = {row["trial"]: row["status"] for row in result.trials}
    for row in result.trials:
        together = row["values"]["data.split.validation"] + row["values"]["data.split.test"]
        assert statuses[row["trial"]] == ("failed" if together >= 1 else "completed")
    assert sorted(statuses.values()) == ["completed"] * 3 + ["failed"], result.trials
    assert any("does not validate" in line for line in lines)


def test_tune_without_keras_tuner_names_the_extra(workspace, monkeypatch, call_main):
    monkeypatch.setitem(sys.modules, "keras_tuner", None)  # `import keras_tuner` fails
    code, out, err = call_main("tune", str(workspace()))
    assert code == 2
    assert 'pip install "kerapipe[tune]"' in err


def test_tune_refuses_a_file_without_a_tune_section(workspace, call_main):
    path = workspace(text=PIPELINE.split("tune:\n")[0])
    code, out, err = call_main("tune", str(path))
    assert code == 2 and "no `tune:` section" in err


def test_tune_reports_a_bad_space_before_loading_anything(workspace, call_main):
    path = workspace(text=PIPELINE.replace("[4, 16]", "[4, 0]"))
    code, out, err = call_main("tune", str(path))
    assert code == 2 and "error[bad-tune-value]" in err and "p.yaml:20:5" in err


def test_tune_resume_of_a_folder_that_is_no_tune_folder_is_refused(tmp_path, call_main):
    code, out, err = call_main("tune", "--resume", str(tmp_path))
    assert code == 2 and "is not a tune folder" in err


# TensorFlow's C++ start-up log, which kerapipe.compiler.backend keeps off stderr
TF_STARTUP_LOG = ("absl::InitializeLog", "oneDNN custom operations", "cuda drivers",
                  "cpu_feature_guard", "cuInit")


def tune_dir_name(path: Path) -> str:
    (tune_dir,) = (path.parent / "runs").iterdir()
    return tune_dir.name


def _quiet_env() -> dict:
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAPIPE_DEBUG")}
    return env


def test_loading_keras_tuner_keeps_tensorflows_start_up_log_off_stderr(tmp_path):
    """keras_tuner imports TensorFlow: import_keras_tuner() loads it through
    kerapipe.compiler.backend first, as every other command does (a fresh process:
    this one has TensorFlow loaded already)."""
    import subprocess

    code = ("import sys\nfrom kerapipe.tuning import import_keras_tuner\n"
            "assert 'tensorflow' not in sys.modules\nimport_keras_tuner()\n"
            "assert 'kerapipe.compiler.backend' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=_quiet_env())
    assert done.returncode == 0, done.stderr[-2000:]
    assert not [m for m in TF_STARTUP_LOG if m in done.stderr], done.stderr[:2000]
    assert done.stdout == ""


@pytest.mark.slow
def test_ctrl_c_during_a_trial_keeps_the_finished_ones_and_resume_retries_it(workspace):
    """A real SIGINT to `kerapipe tune` while trial 1 trains: exit 130, trial 0's run
    stays finished; `--resume` runs trial 1 again (a new run folder beside the
    interrupted one) and never trial 0."""
    import glob
    import json
    import signal
    import subprocess
    import time

    path = workspace(text=PIPELINE.replace("train: {epochs: 2}", "train: {epochs: 40}")
                     .replace("max_trials: 3", "max_trials: 2"))
    command = [sys.executable, "-m", "kerapipe", "tune", str(path), "-o", str(path.parent / "runs")]
    process = subprocess.Popen(command, cwd=path.parent, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=_quiet_env())
    pattern = str(path.parent / "runs" / "*" / "trials" / "1" / "*" / "history.csv")
    deadline = time.monotonic() + 240
    while not glob.glob(pattern) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "during trial 1; the search's 1 finished trial(s) are kept" in err
    assert "kerapipe run --resume" not in err
    assert err.rstrip().endswith("Continue the search with: kerapipe tune --resume "
                                 f"{path.parent / 'runs' / tune_dir_name(path)}"), err[-2000:]
    assert not [m for m in TF_STARTUP_LOG if m in err], err[:2000]
    assert out == ""
    (tune_dir,) = (path.parent / "runs").iterdir()
    record = json.loads((tune_dir / "tune.json").read_text())
    assert len(record["runs"]["0"]) == 1 and not record["runs"].get("1")  # 1: unfinished
    interrupted = list((tune_dir / "trials" / "1").iterdir())
    assert len(interrupted) == 1
    assert json.loads((interrupted[0] / "run.json").read_text())["status"] == "interrupted"

    resumed = subprocess.run([sys.executable, "-m", "kerapipe", "tune", "--resume",
                              str(tune_dir)], cwd=path.parent, capture_output=True, text=True,
                             timeout=600, env=_quiet_env())
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "trial 0:" not in resumed.stderr  # never run again
    assert len(list((tune_dir / "trials" / "0").iterdir())) == 1
    assert len(list((tune_dir / "trials" / "1").iterdir())) == 2  # the retry beside it
    assert "best: trial" in resumed.stdout
    # stdout: kerapipe's table only (keras-tuner prints "Reloading Tuner from ...")
    assert "Reloading" not in resumed.stdout + resumed.stderr
    assert resumed.stdout.splitlines()[0].split()[:2] == ["trial", "status"], resumed.stdout
    assert not [m for m in TF_STARTUP_LOG if m in resumed.stderr], resumed.stderr[:2000]


def test_a_tune_record_naming_folders_outside_the_tune_folder_is_refused(tmp_path, call_main):
    import json

    (tmp_path / "keras_tuner").mkdir()
    (tmp_path / "keras_tuner" / "oracle.json").write_text("{}")
    (tmp_path / "tune.json").write_text(json.dumps({
        "pipeline_file": "p.yaml", "runs": {"0": ["../../../etc"]}}))
    code, out, err = call_main("tune", "--resume", str(tmp_path))
    assert code == 2 and "outside" in err


@pytest.mark.slow
def test_hyperband_trials_train_at_most_the_files_epochs_and_the_best_runs_in_full(workspace):
    import yaml

    text = PIPELINE.replace("train: {epochs: 2}", "train: {epochs: 3}").replace(
        "  max_trials: 3\n", "  max_trials: 3\n  tuner: hyperband\n")
    result, _ = _run(workspace(text=text))
    epochs = []
    for row in result.trials:
        (run,) = row["runs"]
        spec = yaml.safe_load((result.tune_dir / run / "spec.yaml").read_text())
        epochs.append(spec["train"]["epochs"])
    assert max(epochs) <= 3 and min(epochs) < 3  # the brackets: fewer epochs first
    best_epochs = yaml.safe_load((result.best_run / "spec.yaml").read_text())["train"]["epochs"]
    assert best_epochs == 3  # best.yaml's pipeline, with the file's epochs
    if epochs[result.trials.index(result.best)] < 3:
        assert result.best_run.parent == result.tune_dir / "best"


@pytest.mark.slow
def test_a_damaged_oracle_state_is_a_usage_error_on_resume(workspace, call_main):
    path = workspace()
    first, _ = _run(path, max_trials=1)
    (first.tune_dir / "keras_tuner" / "oracle.json").write_text('{"ongoing_trials": ')
    code, out, err = call_main("tune", "--resume", str(first.tune_dir))
    assert code == 2 and "cannot reload the search's state" in err


@pytest.mark.slow
def test_each_execution_of_a_trial_has_its_own_seed_and_the_objective_is_their_mean(workspace):
    import json

    text = PIPELINE.replace("  max_trials: 3\n", "  max_trials: 1\n  executions_per_trial: 2\n")
    result, _ = _run(workspace(text=text))
    (row,) = result.trials
    assert len(row["runs"]) == 2
    seeds = [json.loads((result.tune_dir / run / "run.json").read_text())["overrides"][-2]
             for run in row["runs"]]
    best = [min(_history(result.tune_dir / run, "val_loss")) for run in row["runs"]]
    assert row["objective"] == pytest.approx(sum(best) / 2)
    assert result.best_run == result.tune_dir / row["runs"][0]  # the file's own seed
    assert "seed=4" in seeds[1]


def test_a_resume_with_other_set_values_is_refused(tmp_path, call_main):
    import json

    (tmp_path / "keras_tuner").mkdir()
    (tmp_path / "keras_tuner" / "oracle.json").write_text("{}")
    (tmp_path / "tune.json").write_text(json.dumps({
        "pipeline_file": "p.yaml", "overrides": ["train.epochs=2"], "runs": {}}))
    code, out, err = call_main("tune", "--resume", str(tmp_path), "--set", "train.epochs=3")
    assert code == 2 and "ran with --set train.epochs=2" in err


# --- best.yaml names the files the search read ------------------------------------------

NPZ_PIPELINE = """\
kerapipe: 1
name: files-t
seed: 1
imports: [lib/layers.py]
data:
  source: {npz: data.npz}
  split: {validation: 0.2, test: 0.2}
model:
  layers:
    - IntegerLookup: {vocabulary: lib/v.txt, output_mode: multi_hot}
    - layers.Twice: {}
    - Dense: {units: 2}
train: {epochs: 1}
output: {dir: out}
tune:
  space:
    optimizer.learning_rate: [0.01]
  max_trials: 1
"""

TWICE = """\
import keras


class Twice(keras.layers.Layer):
    def call(self, x):
        return keras.ops.cast(x, "float32") * 2.0
"""


def _files_workspace(tmp_path: Path, text: str = NPZ_PIPELINE) -> Path:
    """A pipeline in pipe/ that imports lib/layers.py and reads the vocabulary lib/v.txt."""
    import numpy as np

    folder = tmp_path / "pipe"
    (folder / "lib").mkdir(parents=True)
    (folder / "lib" / "layers.py").write_text(TWICE)
    (folder / "lib" / "v.txt").write_text("1\n2\n3\n")
    x = np.tile(np.array([[1], [2], [3]], dtype="int64"), (10, 1))
    np.savez(folder / "data.npz", x=x, y=(x[:, 0] % 2).astype("int64"))
    (tmp_path / "elsewhere").mkdir()
    (folder / "p.yaml").write_text(text)
    return folder / "p.yaml"


@pytest.mark.slow
def test_best_yaml_names_the_imports_vocabulary_and_data_the_trial_read(tmp_path, monkeypatch):
    """Run from another folder: best.yaml validates with no issue, and compiling it imports
    the code the best trial ran, reads its vocabulary and its data."""
    import json

    from kerapipe.pipeline import compile_pipeline
    from kerapipe.spec.data_paths import data_folder, resolve_data_path
    from kerapipe.spec.validate import validate_file
    from kerapipe.tuning import tune_pipeline

    _files_workspace(tmp_path)
    monkeypatch.chdir(tmp_path / "elsewhere")
    result = tune_pipeline("../pipe/p.yaml", allow_imports=True, echo=lambda line: None)
    assert result.best_file.parent.parent == Path("out")  # output.dir: the cwd's
    best = validate_file(str(result.best_file))
    assert best.issues == []
    assert best.spec.imports == ["best-files/lib/layers.py"]
    assert (result.tune_dir / "best-files" / "lib" / "layers.py").read_text() == TWICE
    data = resolve_data_path(data_folder(str(result.best_file)), best.spec.data.source.npz.path)
    assert Path(data).samefile(tmp_path / "pipe" / "data.npz")

    compiled = compile_pipeline(str(result.best_file), allow_imports=True)
    lookup = next(layer for layer in compiled.model.layers
                  if type(layer).__name__ == "IntegerLookup")
    assert [int(v) for v in lookup.get_vocabulary()[1:]] == [1, 2, 3]
    assert any(type(layer).__name__ == "Twice" for layer in compiled.model.layers)
    ran = json.loads((result.best_run / "run.json").read_text())
    assert list(compiled.import_hashes.values()) == list(ran["imports"].values())
    header = result.best_file.read_text().split("kerapipe: 1")[0]
    assert "best-files/ holds copies" in header and str(tmp_path) not in header


def test_best_yaml_copies_files_the_pipelines_folder_must_hold(tmp_path, monkeypatch):
    """No path leads from the tune folder into the pipeline's folder for an import, a
    vocabulary or a TFRecord glob (they must stay inside the pipeline's folder): best.yaml
    names copies in best-files/ at the same paths, a TFRecord file hard-linked."""
    import os

    from kerapipe.spec.validate import validate_file
    from kerapipe.tuning import write_best_pipeline

    text = NPZ_PIPELINE.replace("  source: {npz: data.npz}\n", (
        "  source:\n    tfrecord:\n      files: [data/*.tfrecord]\n"
        "      features: {x: {dtype: int64, shape: [1]}, y: int64}\n      label: y\n"))
    path = _files_workspace(tmp_path, text.split("tune:\n")[0])
    (path.parent / "data").mkdir()
    for name in ("a.tfrecord", "b.tfrecord", "c.txt"):
        (path.parent / "data" / name).write_bytes(b"records")
    tune_dir = tmp_path / "elsewhere" / "t"
    tune_dir.mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    best_file = write_best_pipeline("../pipe/p.yaml", [], {"train.epochs": 1}, tune_dir)
    best = validate_file(str(best_file))
    assert best.issues == []
    assert best.spec.data.source.tfrecord.files == ["best-files/data/*.tfrecord"]
    copied = tune_dir / "best-files"
    assert sorted(p.relative_to(copied).as_posix() for p in copied.rglob("*") if p.is_file()) \
        == ["data/a.tfrecord", "data/b.tfrecord", "lib/layers.py", "lib/v.txt"]
    assert os.path.samefile(copied / "data" / "a.tfrecord", path.parent / "data" / "a.tfrecord")
    assert not os.path.samefile(copied / "lib" / "v.txt", path.parent / "lib" / "v.txt")
    # written again with the same files: the same best.yaml; after a change: best-2.yaml
    assert write_best_pipeline("../pipe/p.yaml", [], {"train.epochs": 1}, tune_dir) == best_file
    (path.parent / "lib" / "v.txt").write_text("1\n2\n")
    again = write_best_pipeline("../pipe/p.yaml", [], {"train.epochs": 1}, tune_dir)
    assert again.name == "best-2.yaml" and validate_file(str(again)).issues == []
    assert (tune_dir / "best-files" / "lib" / "v.txt").read_text() == "1\n2\n3\n"
    assert (tune_dir / "best-2-files" / "lib" / "v.txt").read_text() == "1\n2\n"


@pytest.mark.slow
def test_resume_from_another_folder_finds_the_searchs_file(workspace, monkeypatch, call_main):
    """tune.json names the file as an absolute path: `--resume` alone works from any
    folder (a relative one would be looked for from the new current directory)."""
    path = workspace(text=PIPELINE.replace("max_trials: 3", "max_trials: 1"))
    monkeypatch.chdir(path.parent)
    first, _ = _run(Path("p.yaml"))
    tune_dir = first.tune_dir.resolve()
    (path.parent / "elsewhere").mkdir()
    monkeypatch.chdir(path.parent / "elsewhere")
    code, out, err = call_main("tune", "--resume", str(tune_dir))
    assert code == 0, err
    assert "best: trial 0" in out
    assert "Reloading" not in out + err  # keras-tuner's print on reload: dropped
    assert out.splitlines()[0].split()[:2] == ["trial", "status"], out


def test_best_yaml_names_data_absolutely_when_it_shares_only_the_root(tmp_path):
    """A tune folder on another tree than the data (/dev/shm against /tmp): best.yaml
    names the data by its absolute path, not by ../../../ up to the root."""
    import os
    import shutil
    import tempfile

    from kerapipe.tuning.best import best_pipeline

    if not os.path.isdir("/dev/shm") or os.path.realpath(str(tmp_path)).startswith("/dev"):
        pytest.skip("needs /dev/shm beside the test's own temporary tree")
    path = _files_workspace(tmp_path)
    elsewhere = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        best = best_pipeline(str(path), [], {"train.epochs": 1}, written_in=elsewhere,
                             ran_in=())
        data = os.path.realpath(str(path.parent / "data.npz"))
        assert best.placed[("data", "source", "npz", "path")] == data, best.placed
        assert f"source: {{npz: {data}}}" in best.text
    finally:
        shutil.rmtree(elsewhere)
