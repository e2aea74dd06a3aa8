"""`kerapipe export RUN_DIR --format saved_model|tflite|onnx`: each format written, run by
its own runtime on the run's test split and checked against the Keras model; never
overwriting, nothing left behind by a failed export, the onnx extra named when missing."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ["saved_model", "tflite", "onnx"]
DEFAULT_NAMES = {"saved_model": "export/saved_model", "tflite": "export/model.tflite",
                 "onnx": "export/model.onnx"}
# mnist.yaml made quick: one epoch of a narrower CNN on the shipped 5,000 digits.
QUICK = ["--set", "train.epochs=1", "--set", "model.layers[0].Conv2D.filters=8",
         "--set", "model.layers[2].Conv2D.filters=8"]


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory, kerapipe_main) -> Path:
    out = tmp_path_factory.mktemp("runs")
    code = kerapipe_main("run", ROOT / "pipelines" / "mnist.yaml", *QUICK, "--output", out)
    assert code == 0
    (run,) = out.iterdir()
    return run


def _max_delta(output: str) -> float:
    found = re.search(r"max \|Δp\| = (\S+)", output)
    assert found, output
    return float(found.group(1))


def _leftovers(folder: Path) -> list:
    return [p.name for p in folder.iterdir() if ".partial-" in p.name]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_reproduces_the_keras_model_on_the_test_split(mnist_run, call_main, fmt):
    code, out, err = call_main("export", mnist_run, "--format", fmt)
    assert code == 0, err
    path = mnist_run / DEFAULT_NAMES[fmt]
    assert path.exists() and f"exported {fmt} to {path}" in out
    assert _max_delta(out) <= 1e-4
    assert "parity on the test split (500 examples)" in out
    assert "500/500 equal the Keras model's" in out
    assert "500/500 equal the run's predictions.csv" in out
    assert _leftovers(path.parent) == []


@pytest.mark.slow
def test_saved_model_export_serves_raw_inputs_by_its_signature(mnist_run, call_main, tmp_path):
    """The SavedModel takes raw pixels (its preprocessing is inside) by the input's name."""
    import tensorflow as tf

    path = tmp_path / "sm"
    assert call_main("export", mnist_run, "--format", "saved_model", "-o", path)[0] == 0
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    (probabilities,) = serve(raw_features=tf.zeros([2, 28, 28])).values()
    assert probabilities.shape == (2, 10)
    np.testing.assert_allclose(np.sum(probabilities, axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_output_option_writes_where_the_user_says_creating_folders(mnist_run, call_main,
                                                                    tmp_path):
    path = tmp_path / "a" / "b" / "digits.tflite"
    code, out, err = call_main("export", mnist_run, "--format", "tflite", "-o", path)
    assert code == 0, err
    assert path.is_file() and path.read_bytes()[4:8] == b"TFL3"  # the flatbuffer identifier
    assert _leftovers(path.parent) == []


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_an_existing_path_is_never_overwritten(mnist_run, call_main, tmp_path, fmt):
    path = tmp_path / "taken"
    path.write_bytes(b"the user's file")
    code, out, err = call_main("export", mnist_run, "--format", fmt, "-o", path)
    assert code == 5
    assert f"{path} already exists; kerapipe export never overwrites" in err
    assert path.read_bytes() == b"the user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


@pytest.mark.slow
def test_an_export_that_misses_the_tolerance_fails_and_leaves_nothing(mnist_run, call_main,
                                                                      tmp_path, monkeypatch):
    import kerapipe.export

    monkeypatch.setitem(kerapipe.export.TOLERANCE, "tflite", 0.0)  # TFLite differs by ~1e-6
    path = tmp_path / "model.tflite"
    code, out, err = call_main("export", mnist_run, "--format", "tflite", "-o", path)
    assert code == 4
    assert "the tflite export does not reproduce the run's model on its test split: " \
           "max |Δp| = " in err and "exceeds the tolerance 0" in err
    assert "Nothing was written." in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_missing_onnx_extra_names_the_install_command(mnist_run, call_main, tmp_path,
                                                     monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails
    code, out, err = call_main("export", mnist_run, "--format", "onnx", "-o",
                               tmp_path / "m.onnx")
    assert code == 2
    assert "--format onnx needs onnxruntime, not installed here" in err
    assert 'pip install "kerapipe[onnx]"' in err
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_is_not_a_run_is_refused(call_main, tmp_path):
    code, out, err = call_main("export", tmp_path, "--format", "saved_model")
    assert code == 2
    assert "is not a finished kerapipe run folder (missing spec.yaml, run.json, " \
           "model.keras)" in err
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_format_is_a_usage_error(call_main, tmp_path):
    code, out, err = call_main("export", tmp_path, "--format", "pickle")
    assert code == 2 and "'pickle' is not one of 'saved_model', 'tflite', 'onnx'" in err


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_a_model_that_takes_strings_is_refused_for_tflite_and_onnx(fmt, tmp_path):
    """Text and typed string columns need string lookups neither format has."""
    from kerapipe.compiler import backend  # noqa: F401
    import keras

    from kerapipe.errors import UsageError
    from kerapipe.export import export_run

    text = keras.Input(shape=(), dtype="string", name="raw_features")
    model = keras.Model(text, keras.layers.Identity()(text))
    saved = SimpleNamespace(model=model, run_dir=tmp_path)
    with pytest.raises(UsageError, match=rf"cannot be exported to {fmt}: it takes strings "
                       r"\(input\(s\) raw_features\).*Export it as saved_model"):
        export_run(saved, fmt)
    assert list(tmp_path.iterdir()) == []


def _compared(keras_p, exported_p, run=None):
    from kerapipe.export import _check_parity, _compare

    result = _compare("onnx", {"p": np.array(keras_p)}, {"p": np.array(exported_p)}, ["p"],
                      None if run is None else {"p": np.array(run)}, "test")
    _check_parity(result)
    return result


def test_a_different_predicted_class_fails_the_export():
    from kerapipe.export import ExportMismatch

    with pytest.raises(ExportMismatch, match="1 of 2 predicted classes differ from the "
                       "Keras model's"):
        _compared([[0.2, 0.8], [0.7, 0.3]], [[0.2, 0.8], [0.3, 0.7]])


def test_a_class_flipped_on_a_near_tie_is_reported_not_failed():
    result = _compared([[0.2, 0.8], [0.50002, 0.49998]], [[0.2, 0.8], [0.49999, 0.50001]])
    assert (result.agreed, result.near_ties) == (1, 1)
    assert "1/2 equal the Keras model's (1 near-tie(s))" in result.summary()


def test_predictions_csv_that_disagrees_fails_the_export():
    from kerapipe.export import ExportMismatch

    with pytest.raises(ExportMismatch, match="differ from the run's predictions.csv"):
        _compared([[0.2, 0.8], [0.9, 0.1]], [[0.2, 0.8], [0.9, 0.1]], run=[1, 1])


def test_values_are_held_to_the_tolerance_relative_to_their_size():
    """A regression output of 1e5 differs by float32 rounding (~1e-2), not by 1e-4."""
    from kerapipe.export import ExportMismatch, _check_parity, _compare

    result = _compare("tflite", {"v": np.array([[1.5e5], [0.5]])},
                      {"v": np.array([[1.5e5 + 0.03], [0.5]])}, [], None, "test")
    _check_parity(result)
    assert result.max_delta == pytest.approx(0.03, rel=1e-3) and result.agreed is None
    assert "max |Δp| = 0.03 (2e-07 of max(1, |value|))" in result.summary()
    small = _compare("tflite", {"v": np.array([[0.5]])}, {"v": np.array([[0.5003]])}, [],
                     None, "test")
    with pytest.raises(ExportMismatch, match="exceeds the tolerance 0.0001"):
        _check_parity(small)


@pytest.mark.slow
def test_a_linked_export_folder_in_the_run_is_refused(mnist_run, call_main, tmp_path):
    """A run folder's `export` that links elsewhere would carry the export out of it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("spec.yaml", "run.json", "model.keras", "predictions.csv"):
        (copy / name).write_bytes((mnist_run / name).read_bytes())
    (copy / "export").symlink_to(elsewhere)
    code, out, err = call_main("export", copy, "--format", "tflite")
    assert code == 5 and f"{copy / 'export'} is a link" in err
    assert list(elsewhere.iterdir()) == []


@pytest.mark.slow
def test_an_export_its_runtime_cannot_run_is_refused_and_leaves_nothing(mnist_run, call_main,
                                                                        tmp_path,
                                                                        monkeypatch):
    import kerapipe.export

    def refuses(*args):
        raise RuntimeError("Node number 2 (FlexStringLower) failed to prepare.")

    monkeypatch.setitem(kerapipe.export._RUNNERS, "tflite", refuses)
    code, out, err = call_main("export", mnist_run, "--format", "tflite", "-o",
                               tmp_path / "m.tflite")
    assert code == 4
    assert "the tflite export was converted, but tf.lite.Interpreter cannot run it on the " \
           "run's inputs (RuntimeError: Node number 2 (FlexStringLower) failed to " \
           "prepare.). Nothing was written" in err
    assert list(tmp_path.iterdir()) == []


NORMALIZED_NPZ = """\
kerapipe: 1
name: {name}
seed: 1
data:
  source: {{npz: data.npz}}
  split: {{validation: 0.2, test: {test}}}
  preprocess: [{{normalize: {{}}}}]
  batch_size: 8
model:
  layers: [{{Dense: {{units: 3}}}}]
train: {{epochs: 1}}
"""


def _tiny_run(npz_workspace, kerapipe_main, folder: Path, name: str, test: float) -> Path:
    pipeline = npz_workspace(folder, text=NORMALIZED_NPZ.format(name=name, test=test))
    assert kerapipe_main("run", pipeline, "--output", folder / "runs") == 0
    (run,) = (folder / "runs").iterdir()
    return run


@pytest.mark.slow
def test_onnx_export_of_a_normalize_step_runs_without_extra_inputs(
        npz_workspace, kerapipe_main, call_main, tmp_path):
    """The step's mean and variance are constants the function captures: Keras's own
    onnx export (tf2onnx.from_function) made them graph inputs no caller can feed."""
    import onnxruntime

    run = _tiny_run(npz_workspace, kerapipe_main, tmp_path, "normalized", 0.2)
    code, out, err = call_main("export", run, "--format", "onnx")
    assert code == 0, err
    assert _max_delta(out) <= 1e-4 and "6/6 equal the run's predictions.csv" in out
    session = onnxruntime.InferenceSession(str(run / "export" / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["raw_features"]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]


@pytest.mark.slow
def test_a_run_without_a_test_split_is_checked_on_its_validation_split(
        npz_workspace, kerapipe_main, call_main, tmp_path):
    run = _tiny_run(npz_workspace, kerapipe_main, tmp_path, "no-test", 0)
    code, out, err = call_main("export", run, "--format", "tflite")
    assert code == 0, err
    assert "parity on the validation split (6 examples)" in out
    assert "note: the run has no test split: checked on its validation split, without " \
           "predictions.csv" in out
    assert "equal the run's predictions.csv" not in out


@pytest.mark.slow
def test_a_destination_made_during_the_export_is_not_replaced(mnist_run, call_main, tmp_path,
                                                              monkeypatch):
    import kerapipe.export

    path = tmp_path / "m.onnx"
    check = kerapipe.export.check_parity  # export_run calls it by this name

    def check_then_another_writer(result):
        check(result)
        path.write_bytes(b"written meanwhile")

    monkeypatch.setattr(kerapipe.export, "check_parity", check_then_another_writer)
    code, out, err = call_main("export", mnist_run, "--format", "onnx", "-o", path)
    assert code == 5 and "already exists" in err
    assert path.read_bytes() == b"written meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
