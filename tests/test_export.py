"""`kerapipe export RUN_DIR --format saved_model|tflite|onnx`: each format written, run by
its own runtime on the run's test split and checked against the Keras model; never
overwriting, nothing left behind by a failed export, the onnx extra named when missing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ["saved_model", "tflite", "onnx"]
DEFAULT_NAMES = {"saved_model": "export/saved_model", "tflite": "export/model.tflite",
                 "onnx": "export/model.onnx"}
SUFFIXES = {"saved_model": "", "tflite": ".tflite", "onnx": ".onnx"}
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
    path = tmp_path / f"taken{SUFFIXES[fmt]}"
    path.write_bytes(b"the user's file")
    code, out, err = call_main("export", mnist_run, "--format", fmt, "-o", path)
    assert code == 5
    assert f"{path} already exists; kerapipe export never overwrites" in err
    assert path.read_bytes() == b"the user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


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


# --- what a user sees: kerapipe's lines only, refusals before TensorFlow --------------------

def _child_env() -> dict:
    """This environment as a user's shell has it: without the TF_CPP_MIN_LOG_LEVEL that
    importing kerapipe's backend in this process set (a child would inherit it, and a set
    level shows TensorFlow's log by design), nor KERAPIPE_DEBUG."""
    return {k: v for k, v in os.environ.items()
            if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAPIPE_DEBUG")}


@pytest.mark.slow
def test_an_export_prints_kerapipe_s_lines_only(npz_workspace, kerapipe_main, tmp_path):
    """No TensorFlow C++ log, no tf2onnx log, no TFLite "INFO: Created TensorFlow Lite
    XNNPACK delegate" line: each format exported by the CLI in one fresh process (onnx
    first: it used to import TensorFlow by tf2onnx, before kerapipe's quiet import)."""
    run = _tiny_run(npz_workspace, kerapipe_main, tmp_path, "quiet", 0.2)
    exports = [["export", str(run), "--format", fmt, "-o", str(tmp_path / f"m{SUFFIXES[fmt]}")]
               for fmt in ("onnx", "tflite", "saved_model")]
    done = subprocess.run([sys.executable, "-c", "import sys\nfrom kerapipe.cli import main\n"
                           f"for argv in {exports!r}:\n    main(argv)\n"],
                          capture_output=True, text=True, cwd=tmp_path, env=_child_env(),
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert len(lines) == 12 and all(line.startswith(("exported ", "parity on the test split",
                                                     "predicted classes: ")) for line in lines)


# Each refusal that needs no model, with its exit code and the words that name it.
REFUSED_WITHOUT_A_MODEL = [
    (["--format", "saved_model", "-o", "{tmp}/taken"], 5, "already exists"),
    (["--format", "tflite", "-o", "{tmp}/taken.tflite"], 5, "already exists"),
    (["--format", "onnx", "-o", "{tmp}/taken.onnx"], 5, "already exists"),
    (["--format", "onnx", "-o", "{tmp}/taken/deep/m.onnx"], 5,
     "taken is a file, not a folder. Give -o a path whose folders are folders"),
    (["--format", "tflite"], 5, "is a link; kerapipe export writes into the run folder's own"),
    (["--format", "tflite", "-o", "{tmp}/m.onnx"], 2, "a tflite export is a .tflite file"),
    (["--format", "onnx", "-o", "{tmp}/m.tflite"], 2, "an onnx export is a .onnx file"),
    (["--format", "saved_model", "-o", "{tmp}/m.onnx"], 2, "a saved_model export is a folder"),
    (["--format", "pickle"], 2, "'pickle' is not one of"),
    (["--format", "onnx", "-o", "{tmp}/new.onnx", "no onnxruntime"], 2,
     "--format onnx needs onnxruntime, not installed here"),
]
NOT_A_RUN = (["--format", "saved_model", "-o", "{tmp}/new"], 2,
             "is not a finished kerapipe run folder")


@pytest.mark.slow
def test_refusals_that_need_no_model_come_before_tensorflow_is_imported(tmp_path):
    """A taken destination, a linked RUN/export, a suffix of another format, an unknown
    format, the missing onnx extra, a folder that is not a run: refused without importing
    TensorFlow (seconds), tf2onnx or Keras. These refusals come before the run folder is
    read, so the run here is a folder whose export/ is a link and nothing else."""
    for name in ("taken", "taken.tflite", "taken.onnx"):
        (tmp_path / name).write_bytes(b"the user's")
    run = tmp_path / "run"
    run.mkdir()
    (run / "export").symlink_to(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [[str(run)] + [a.format(tmp=tmp_path) for a in args]
             for args, _, _ in REFUSED_WITHOUT_A_MODEL]
    cases.append([str(empty)] + [a.format(tmp=tmp_path) for a in NOT_A_RUN[0]])
    probe = f"""
import io, json, sys
from contextlib import redirect_stderr
from kerapipe.cli import main
for argv in {cases!r}:
    blocked = argv[-1] == "no onnxruntime"
    if blocked:
        argv.pop()
        sys.modules["onnxruntime"] = None
    err = io.StringIO()
    with redirect_stderr(err):
        try:
            main(["export", *argv])
            code = 0
        except SystemExit as exit_:
            code = exit_.code
    if blocked:
        del sys.modules["onnxruntime"]
    loaded = [m for m in ("tensorflow", "keras", "tf2onnx") if m in sys.modules]
    print(json.dumps([code, loaded, err.getvalue()]))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=tmp_path, env=_child_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = [json.loads(line) for line in done.stdout.splitlines()]
    expected = REFUSED_WITHOUT_A_MODEL + [NOT_A_RUN]
    assert [(code, loaded) for code, loaded, _ in outcomes] == [(c, []) for _, c, _ in expected]
    for (_, _, err), (_, _, words) in zip(outcomes, expected):
        assert words in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "run", "taken",
                                                          "taken.onnx", "taken.tflite"]


@pytest.mark.parametrize("fmt, name, hint", [
    ("tflite", "m.onnx", "-o m.onnx: a tflite export is a .tflite file, but this path ends "
     "in .onnx (an onnx file's suffix); a file whose suffix names another format misleads "
     "every tool that opens it. Give a path ending in .tflite, e.g. -o m.tflite."),
    ("onnx", "x.tflite", "-o x.tflite: an onnx export"),
    ("onnx", "model", "-o model: an onnx export is a .onnx file, but this path has no "
     "suffix. Give a path ending in .onnx, e.g. -o model.onnx."),
    ("tflite", "out/", "e.g. -o out/model.tflite."),
    ("saved_model", "x.onnx", "-o x.onnx: a saved_model export is a folder (saved_model.pb "
     "and variables/), but this path ends in .onnx (an onnx file's suffix). Give a folder "
     "name without it, e.g. -o x."),
    ("saved_model", "m.keras", "ends in .keras (a Keras model file's suffix)"),
    ("onnx", "m.TXT", "this path ends in .TXT; a file"),  # the suffix as the user wrote it
], ids=["tflite-to-onnx", "onnx-to-tflite", "onnx-without-suffix", "tflite-to-a-folder",
        "saved_model-to-onnx", "saved_model-to-keras", "onnx-to-upper-case-txt"])
def test_an_output_path_of_another_format_is_refused_with_the_path_to_give(
        fmt, name, hint, call_main, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = call_main("export", tmp_path, "--format", fmt, "-o", name)
    assert (code, out) == (2, "")
    assert hint in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt, name", [("tflite", "m.tflite"), ("tflite", "M.TFLITE"),
                                       ("onnx", "a/b/m.onnx"), ("saved_model", "serving"),
                                       ("saved_model", "model.v2")])
def test_an_output_path_that_names_its_format_is_accepted(fmt, name):
    from kerapipe.export import check_output_suffix

    check_output_suffix(name, fmt)


@pytest.mark.parametrize("debug", [False, True], ids=["default", "KERAPIPE_DEBUG"])
def test_tflite_runtime_info_lines_are_kept_off_stderr_and_its_errors_kept(capfd,
                                                                           monkeypatch, debug):
    """What the TFLite runtime writes to file descriptor 2: its INFO lines dropped (kept
    with KERAPIPE_DEBUG, as TensorFlow's log is), any other line written again."""
    from kerapipe.export.runtimes import _runtime_info_kept_off_stderr

    monkeypatch.delenv("KERAPIPE_DEBUG", raising=False)
    if debug:
        monkeypatch.setenv("KERAPIPE_DEBUG", "1")
    info = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
    with _runtime_info_kept_off_stderr():
        os.write(2, info.encode())
        os.write(2, b"ERROR: tensor 3 failed to prepare\n")
    assert capfd.readouterr().err == (info if debug else "") + \
        "ERROR: tensor 3 failed to prepare\n"


@pytest.mark.slow
def test_a_run_whose_data_changed_is_not_exported(npz_workspace, kerapipe_main, call_main,
                                                 tmp_path):
    """Its test split would not be the one the run held out and predicted."""
    run = _tiny_run(npz_workspace, kerapipe_main, tmp_path, "changed", 0.2)
    with (tmp_path / "data.npz").open("wb") as changed:
        np.savez(changed, x=np.ones((30, 4), "float32"), y=np.arange(30) % 3)
    code, out, err = call_main("export", run, "--format", "tflite")
    assert code == 3
    assert "the data changed since this run (its fingerprint differs from run.json)" in err
    assert not os.path.lexists(run / "export")


def test_tf2onnx_log_is_kept_off_the_terminal_and_its_unsupported_ops_named(capsys,
                                                                            caplog):
    """Its notes reach no handler (not the terminal, not the caller's root logger); the
    ops it logs it cannot convert (at ERROR) are named in the refusal."""
    import logging

    from kerapipe.export.formats import _tf2onnx_log_collected, cannot_export

    with _tf2onnx_log_collected() as unsupported:
        logging.getLogger("tf2onnx.tfonnx").warning("a progress note")
        logging.getLogger("tf2onnx.tfonnx").error(
            "Unsupported ops: Counter({'StringLower': 2, 'RegexReplace': 1})")
    assert unsupported.ops == ["StringLower", "RegexReplace"]
    assert capsys.readouterr() == ("", "") and caplog.records == []
    assert str(cannot_export("onnx", None, unsupported.ops)).startswith(
        "this run's model cannot be exported to onnx (it uses TensorFlow ops onnx has no "
        "equivalent for: StringLower, RegexReplace). Export it to another format "
        "(saved_model, tflite)")
