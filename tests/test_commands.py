"""`kerapipe run / plan / predict / evaluate`: output through click's CliRunner, and exit
codes through ``kerapipe.cli.main`` (the entry point that maps errors to codes).

One tiny mnist run (Flatten + Dense, 1 epoch) is trained per module and shared by the
predict and evaluate tests.
"""

import csv
import importlib.resources
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from kerapipe.cli import cli

# Keras 3.15 + TensorFlow 2.21 + NumPy 2.4: `model.save` (every `run`) converts variables
# with np.array(variable); TF's ResourceVariable.__array__ has no `copy` keyword, so NumPy
# warns. Not a kerapipe issue: saving any plain Keras model emits it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword, so passing copy=False "
    "failed:DeprecationWarning")

TINY = """\
kerapipe: 1
name: tiny
seed: 11
data:
  source: {sample: mnist}
  preprocess:
    - rescale: 1/255
    - reshape: [28, 28, 1]
  batch_size: 64
model:
  layers:
    - Flatten
    - Dense: {units: 10}
train:
  epochs: 3
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def mnist_sample_images(count: int) -> np.ndarray:
    resource = importlib.resources.files("kerapipe.data") / "mnist_sample.npz"
    with importlib.resources.as_file(resource) as path, np.load(path) as arrays:
        return arrays["x"][:count]


# --- the shared run ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`kerapipe run tiny.yaml --set train.epochs=1 --output DIR`, once per module."""
    folder = tmp_path_factory.mktemp("cli-run")
    pipeline = write(folder, "tiny.yaml", TINY)
    output = folder / "runs"
    result = invoke("run", pipeline, "--set", "train.epochs=1", "--output", output)
    runs = sorted(output.iterdir()) if output.is_dir() else []
    return SimpleNamespace(result=result, pipeline=pipeline, output=output,
                           run_dir=runs[0] if len(runs) == 1 else None)


def test_run_exits_zero_and_prints_metrics_run_folder_and_predictions_summary(trained):
    result = trained.result
    assert result.exit_code == 0, result.output
    assert trained.run_dir is not None  # exactly one new folder
    out = result.stdout
    assert "test metrics:" in out
    assert any(line.split()[:1] == ["loss"] for line in out.splitlines())
    assert any(line.split()[:1] == ["accuracy"] for line in out.splitlines())
    assert f"run folder: {trained.run_dir}" in out
    assert "/500 correct" in out and "most confused:" in out
    assert "kerapipe: tiny: sample:mnist (5,000 examples)" in result.stderr
    metrics = json.loads((trained.run_dir / "metrics.json").read_text())
    assert (metrics["epochs_run"], metrics["epochs_planned"]) == (1, 1)  # --set applied


def test_run_json_records_the_command_line_that_ran(trained):
    record = json.loads((trained.run_dir / "run.json").read_text())
    assert record["command"] == ["kerapipe", "run", str(trained.pipeline), "--set",
                                 "train.epochs=1", "--output", str(trained.output)]


# --- run: failures and their exit codes -----------------------------------------------------

_PROBE = """
import json, sys
from kerapipe.cli import main
try:
    main(["run", {path!r}])
    code = 0
except SystemExit as exit_:
    code = exit_.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print(json.dumps({{"code": code, "heavy": heavy}}))
"""


@pytest.mark.slow
def test_run_with_a_spec_error_exits_2_with_located_message_before_importing_tensorflow(
        tmp_path):
    path = write(tmp_path, "typo.yaml", TINY.replace("units: 10", "unit: 10"))
    done = subprocess.run([sys.executable, "-c", _PROBE.format(path=str(path))],
                          capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"code": 2, "heavy": []}
    assert (f"{path}:13:15: error[unknown-argument]: model.layers[1].Dense.unit: unknown "
            "argument 'unit' of Dense. Did you mean 'units'?") in done.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("override, code", [
    ("train.epochs=yes", "wrong-type"),
    ('data.batch_size="64"', "wrong-type"),
    ("train.epochs", "bad-override"),
])
def test_run_with_a_bad_set_exits_2_located_at_the_set(override, code, call_main, tmp_path,
                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "tiny.yaml", TINY)
    exit_code, out, err = call_main("run", path, "--set", override)
    assert exit_code == 2
    assert f"--set {override}: error[{code}]" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_run_with_a_missing_npz_exits_3_naming_the_file_without_traceback(call_main,
                                                                         tmp_path):
    path = write(tmp_path, "npz.yaml", TINY.replace("{sample: mnist}", "{npz: data/gone.npz}")
                 .replace("    - reshape: [28, 28, 1]\n", ""))
    exit_code, out, err = call_main("run", path, "--output", tmp_path / "runs")
    assert exit_code == 3
    assert "error: data/gone.npz: no such file" in err
    assert str(tmp_path / "data" / "gone.npz") in err
    assert "Traceback" not in out + err
    assert not (tmp_path / "runs").exists()


def test_run_with_an_output_that_is_a_file_exits_5_and_keeps_the_file(call_main, tmp_path):
    path = write(tmp_path, "tiny.yaml", TINY)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("keep me\n")
    exit_code, out, err = call_main("run", path, "--set", "train.epochs=1",
                                    "--output", blocker)
    assert exit_code == 5
    assert f"cannot write run folders into '{blocker}': '{blocker}' is a file" in err
    assert "Traceback" not in out + err
    assert blocker.read_text() == "keep me\n"


# --- plan ---------------------------------------------------------------------------------

def test_plan_shows_stages_with_shapes_splits_and_parameter_count_and_writes_nothing(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "tiny.yaml", TINY)
    result = invoke("plan", path, "--set", "data.batch_size=16")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "splits: train 4000, validation 500, test 500" in out
    stages = [line.split(None, 1) for line in out.splitlines()
              if line.startswith("  ") and line.strip().split(" ")[0] in
              ("raw", "rescale", "reshape")]
    assert [(name, shape.strip()) for name, shape in stages] == [
        ("raw", "input        (28, 28)"), ("rescale", "(28, 28)"), ("reshape", "(28, 28, 1)")]
    assert "batch 16" in out
    assert "Total params: 7,850" in out  # 784 * 10 + 10
    assert "epochs 3" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]  # no run folder


# --- predict ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def inputs_npz(trained, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inputs") / "digits.npz"
    np.savez(path, x=mnist_sample_images(7))
    return path


def test_predict_prints_one_csv_row_per_example_with_the_model_classes(trained, inputs_npz):
    result = invoke("predict", trained.run_dir, inputs_npz)
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(result.stdout.splitlines()))
    assert rows[0] == ["index", "input", "predicted", "predicted_name", "confidence"]
    assert [row[0] for row in rows[1:]] == [str(i) for i in range(7)]
    model = keras.saving.load_model(trained.run_dir / "model.keras", safe_mode=True)
    expected = model.predict(mnist_sample_images(7), verbose=0).argmax(axis=1)
    assert [int(row[2]) for row in rows[1:]] == expected.tolist()
    assert [row[3] for row in rows[1:]] == [str(c) for c in expected]


def test_predict_with_output_writes_a_new_csv_file(trained, inputs_npz, tmp_path):
    target = tmp_path / "new.csv"
    result = invoke("predict", trained.run_dir, inputs_npz, "-o", target)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"wrote {target}" in result.stderr
    assert target.read_text() == invoke("predict", trained.run_dir, inputs_npz).stdout
    assert len(target.read_text().splitlines()) == 8


def test_predict_never_overwrites_an_existing_output_file(trained, inputs_npz, tmp_path,
                                                          call_main):
    target = tmp_path / "old.csv"
    target.write_text("precious\n")
    exit_code, out, err = call_main("predict", trained.run_dir, inputs_npz, "-o", target)
    assert exit_code == 5
    assert "already exists" in err
    assert target.read_text() == "precious\n"


def test_predict_output_creates_its_missing_folders_as_export_does(trained, inputs_npz,
                                                                   tmp_path):
    target = tmp_path / "nodir" / "deeper" / "x.csv"
    result = invoke("predict", trained.run_dir, inputs_npz, "-o", target)
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and f"wrote {target}" in result.stderr
    assert len(target.read_text().splitlines()) == 8


def test_predict_output_through_a_file_is_exit_5_and_writes_nothing(trained, inputs_npz,
                                                                    tmp_path, call_main):
    (tmp_path / "iris.yaml").write_text("mine\n")
    target = tmp_path / "iris.yaml" / "sub" / "x.csv"
    exit_code, out, err = call_main("predict", trained.run_dir, inputs_npz, "-o", target)
    assert (exit_code, out) == (5, "")
    assert f"{tmp_path / 'iris.yaml'} is a file, not a folder" in err
    assert "Traceback" not in err
    assert (tmp_path / "iris.yaml").read_text() == "mine\n"


@pytest.mark.parametrize("folder", ["empty", "spec-only"])
def test_predict_on_a_folder_that_is_not_a_run_exits_2(folder, inputs_npz, tmp_path,
                                                       call_main):
    if folder == "spec-only":
        write(tmp_path, "spec.yaml", TINY)
    exit_code, out, err = call_main("predict", tmp_path, inputs_npz)
    assert exit_code == 2
    assert "is not a finished kerapipe run folder" in err and "model.keras" in err
    assert "Traceback" not in out + err


@pytest.mark.parametrize("status, reason, says", [
    ("failed", "training stopped: the loss became NaN at epoch 1",
     "is a run that failed, not a finished one: training stopped: the loss became NaN at "
     "epoch 1. Only a finished run has the model.keras to predict, evaluate or export with. "
     "Fix the cause, then run the pipeline again."),
    ("interrupted", "interrupted by SIGTERM", "is a run that was interrupted, not a finished "
     "one: interrupted by SIGTERM. Only a finished run has the model.keras to predict, "
     "evaluate or export with; continue it with: kerapipe run --resume"),
    ("running", None, "is a run that is still running, not a finished one."),
], ids=["failed", "interrupted", "running"])
@pytest.mark.parametrize("command", [["predict", "{run}", "{inputs}"], ["evaluate", "{run}"],
                                     ["export", "{run}", "--format", "saved_model"]],
                         ids=["predict", "evaluate", "export"])
def test_a_run_that_did_not_finish_is_refused_with_how_it_ended(command, status, reason, says,
                                                                 inputs_npz, tmp_path,
                                                                 call_main):
    run = tmp_path / "run"
    run.mkdir()
    record = {"status": status, "kerapipe": "0.1.0", "started_at": "2026-01-01T00:00:00+00:00"}
    if reason:
        record["reason"] = reason
    (run / "run.json").write_text(json.dumps(record))
    write(run, "spec.yaml", TINY)
    argv = [a.format(run=run, inputs=inputs_npz) for a in command]
    exit_code, out, err = call_main(*argv)
    assert (exit_code, out) == (2, ""), err
    assert says in " ".join(err.split()) and "Traceback" not in err
    assert "is not a finished kerapipe run folder" not in err
    assert ("--resume" in err) == (status != "failed")


def test_predict_on_a_missing_input_exits_3(trained, tmp_path, call_main):
    exit_code, out, err = call_main("predict", trained.run_dir, tmp_path / "nothing.npz")
    assert exit_code == 3
    assert "nothing.npz: no such file or folder" in err


# --- evaluate -----------------------------------------------------------------------------

def printed_metrics(text: str) -> dict:
    lines = text.splitlines()
    start = lines.index("test metrics:") + 2  # title, then the column header
    return {name: float(value) for name, value in (line.split() for line in lines[start:])}


def test_evaluate_prints_the_test_metrics_of_the_run(trained):
    result = invoke("evaluate", trained.run_dir)
    assert result.exit_code == 0, result.output
    printed = printed_metrics(result.stdout)
    saved = json.loads((trained.run_dir / "metrics.json").read_text())["test"]
    assert set(printed) == set(saved) == {"loss", "accuracy"}
    assert list(printed) == list(saved)  # in the run's order, as `run` printed them
    for name, value in saved.items():
        assert printed[name] == pytest.approx(value, abs=1e-4), name


def test_evaluate_of_an_unseeded_run_scores_the_run_test_split(tmp_path):
    path = write(tmp_path, "unseeded.yaml", TINY.replace("seed: 11", "seed: null"))
    assert invoke("run", path, "--set", "train.epochs=1", "--output",
                  tmp_path / "runs").exit_code == 0
    [run_dir] = (tmp_path / "runs").iterdir()
    saved = json.loads((run_dir / "metrics.json").read_text())["test"]
    for _ in range(2):
        result = invoke("evaluate", run_dir)
        assert result.exit_code == 0
        printed = printed_metrics(result.stdout)
        assert printed["accuracy"] == pytest.approx(saved["accuracy"], abs=1e-4)
        assert printed["loss"] == pytest.approx(saved["loss"], abs=1e-4)
