"""Mixed precision, `train.precision` (issue 14, item 6): Keras's dtype policy for the
model's build only, the output layers and the loss in float32, loss scaling for float16,
and a warning where it is slower (no GPU)."""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

import numpy as np
import pytest

from kerapipe.spec.validate import validate_text

PIPELINE = """\
kerapipe: 1
seed: 1
data:
  source: {npz: data.npz}
  split: {validation: 0.2, test: 0.2}
  batch_size: 8
  preprocess: [{normalize: {}}]
model:
  layers:
    - Dense: {units: 8, activation: relu, name: hidden}
    - Dense: {units: 3, name: head}
train:
  epochs: 1
  precision: %s
"""


def _workspace(folder: Path, precision: str, text: str = PIPELINE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", x=rng.normal(size=(40, 4)).astype("float32"),
             y=np.arange(40) % 3)
    (folder / "p.yaml").write_text(text % precision)
    return folder / "p.yaml"


def _gpu_visible() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


# --- the key --------------------------------------------------------------------------

@pytest.mark.parametrize("precision", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_precision_accepts_keras_three_float_policies(precision):
    result = validate_text(PIPELINE % precision, "p.yaml")
    assert result.ok() and result.spec.train.precision == precision


def test_precision_defaults_to_float32():
    assert validate_text(PIPELINE.replace("  precision: %s\n", ""), "p.yaml").spec \
        .train.precision == "float32"


def test_another_precision_is_refused_at_its_line():
    errors = validate_text(PIPELINE % "float16", "p.yaml").errors
    assert [(i.code, i.path) for i in errors] == [("unknown-value", ("train", "precision"))]
    assert errors[0].format().startswith("p.yaml:14:14: error[unknown-value]: "
                                         "train.precision: expected one of 'float32', "
                                         "'mixed_float16', 'mixed_bfloat16'")


# --- the compiled model ---------------------------------------------------------------

def _dtypes(model) -> dict:
    return {layer.name: (layer.compute_dtype, layer.variable_dtype) for layer in model.layers
            if layer.name in ("hidden", "head")}


def test_mixed_float16_computes_hidden_layers_in_float16_the_output_in_float32(tmp_path):
    import keras

    from kerapipe import compile_pipeline

    compiled = compile_pipeline(str(_workspace(tmp_path, "mixed_float16")))
    assert _dtypes(compiled.model) == {"hidden": ("float16", "float32"),
                                       "head": ("float32", "float32")}
    assert isinstance(compiled.model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert keras.config.dtype_policy().name == "float32"  # restored after the build
    normalize = compiled.preprocessing.layers[0]
    assert normalize.compute_dtype == "float32"  # the preprocessing is not mixed


def test_mixed_bfloat16_computes_in_bfloat16_without_loss_scaling(tmp_path):
    import keras

    from kerapipe import compile_pipeline

    compiled = compile_pipeline(str(_workspace(tmp_path, "mixed_bfloat16")))
    assert _dtypes(compiled.model) == {"hidden": ("bfloat16", "float32"),
                                       "head": ("float32", "float32")}
    assert not isinstance(compiled.model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert keras.config.dtype_policy().name == "float32"


def test_a_float32_pipeline_compiled_after_a_mixed_one_is_float32(tmp_path):
    import keras

    from kerapipe import compile_pipeline

    compile_pipeline(str(_workspace(tmp_path / "mixed", "mixed_float16")))
    compiled = compile_pipeline(str(_workspace(tmp_path / "plain", "float32")))
    assert _dtypes(compiled.model) == {"hidden": ("float32", "float32"),
                                       "head": ("float32", "float32")}
    assert not isinstance(compiled.model.optimizer, keras.optimizers.LossScaleOptimizer)


def test_the_policy_is_restored_when_keras_refuses_a_layer(tmp_path):
    import keras

    from kerapipe import compile_pipeline
    from kerapipe.errors import SpecError

    bad = PIPELINE.replace("units: 8,", "units: 8, kernel_initializer: {Constant: {value: x}},")
    with pytest.raises(SpecError):
        compile_pipeline(str(_workspace(tmp_path, "mixed_float16", bad)))
    assert keras.config.dtype_policy().name == "float32"


def test_each_output_of_a_model_of_several_outputs_is_float32(tmp_path):
    from kerapipe import compile_pipeline

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x=rng.normal(size=(40, 4)).astype("float32"),
             y=np.arange(40) % 3, y_size=rng.normal(size=(40, 1)).astype("float32"))
    (tmp_path / "p.yaml").write_text(PIPELINE.replace("  preprocess: [{normalize: {}}]\n", "")
                                     .replace("    - Dense: {units: 3, name: head}\n", """\
    - Dense: {units: 3, activation: softmax, name: digit}
    - Dense: {units: 1, name: size}
      inputs: hidden
  outputs:
    - digit
    - {name: size, label: y_size, loss: mean_squared_error, metrics: [mae]}
""") % "mixed_float16")
    compiled = compile_pipeline(str(tmp_path / "p.yaml"))
    dtypes = {layer.name: layer.compute_dtype for layer in compiled.model.layers}
    assert (dtypes["hidden"], dtypes["digit"], dtypes["size"]) == ("float16", "float32",
                                                                   "float32")


def test_a_standardized_target_trains_with_loss_scaling_too(tmp_path):
    """A target scale wraps the built model in a new (float32) model after the build,
    which Model.compile would not wrap: the optimizer comes wrapped already."""
    import keras

    from kerapipe import compile_pipeline

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x=rng.normal(size=(40, 4)).astype("float32"),
             y=rng.normal(size=(40,)).astype("float32") * 50 + 100)
    text = (PIPELINE.replace("{units: 3, name: head}", "{units: 1, name: head}")
            .replace("  batch_size: 8\n", "  batch_size: 8\n  labels: {kind: regression, "
                     "scale: standardize}\n") + "loss: mean_squared_error\nmetrics: [mae]\n")
    (tmp_path / "p.yaml").write_text(text % "mixed_float16")
    compiled = compile_pipeline(str(tmp_path / "p.yaml"))
    assert isinstance(compiled.model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert compiled.model.output.dtype == "float32"


# --- a run ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory, kerapipe_main) -> tuple[int, str, Path]:
    """A 1-epoch mixed_float16 run through the CLI: (exit code, stderr, run folder)."""
    folder = tmp_path_factory.mktemp("mixed")
    pipeline = _workspace(folder, "mixed_float16")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = kerapipe_main("run", pipeline, "--output", folder / "runs")
    runs = sorted((folder / "runs").iterdir())
    return code, err.getvalue(), runs[-1]


def test_a_mixed_float16_run_saves_a_model_whose_predictions_are_the_runs(mixed_run,
                                                                          call_main):
    import keras

    code, _, run_dir = mixed_run
    assert code == 0
    model = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    x = np.load(run_dir.parent.parent / "data.npz")["x"]
    probabilities = model.predict(x, verbose=0)
    assert probabilities.dtype == np.float32
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    code, out, _ = call_main("predict", run_dir, run_dir.parent.parent / "data.npz")
    predicted = {row["input"]: row for row in csv.DictReader(io.StringIO(out))}
    with open(run_dir / "predictions.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert code == 0 and rows
    assert [(r["predicted"], r["confidence"]) for r in rows] == [
        (predicted[r["input"]]["predicted"], predicted[r["input"]]["confidence"]) for r in rows]


def test_the_cli_warns_once_that_mixed_precision_is_slower_without_a_gpu(mixed_run):
    _, err, _ = mixed_run
    warnings = [line for line in err.splitlines() if line.startswith("warning: train.precision")]
    if _gpu_visible():
        assert warnings == []
    else:
        assert len(warnings) == 1 and "no GPU" in warnings[0] and "slower" in warnings[0]


def test_a_float32_run_has_no_precision_warning():
    from kerapipe.compiler.precision import slow_precision_warning

    assert slow_precision_warning("float32") is None


def test_a_checkpoint_restores_the_loss_scale_as_a_resume_does(mixed_run, tmp_path):
    """What ``--resume`` does to the model: a new compile, then the checkpoint's weights
    and optimizer state, the loss scaler's included."""
    from kerapipe import compile_pipeline
    from kerapipe.callbacks import restore_checkpoint

    _, _, run_dir = mixed_run
    compiled = compile_pipeline(str(run_dir.parent.parent / "p.yaml"))
    state = restore_checkpoint(compiled.model, run_dir / "checkpoints" / "epoch-0001")
    assert state["epochs_done"] == 1
    optimizer = compiled.model.optimizer
    assert int(optimizer.inner_optimizer.iterations.numpy()) == 3  # 24 rows, batch 8
    assert int(optimizer.step_counter.numpy()) == 3


@pytest.mark.slow
def test_a_mixed_model_loads_in_plain_keras_and_predicts_float32(mixed_run, in_plain_keras):
    _, _, run_dir = mixed_run
    line = in_plain_keras(run_dir / "model.keras",
                          "out = model.predict(np.zeros((2, 4), 'float32'), verbose=0)\n"
                          "print(out.dtype, out.shape, 'kerapipe' in sys.modules)")
    assert line == "float32 (2, 3) False"


def test_plan_shows_the_precision_and_the_callbacks_and_warns_without_a_gpu(
        tmp_path, call_main):
    pipeline = _workspace(tmp_path, "mixed_float16\n  callbacks: [{ReduceLROnPlateau: "
                          "{patience: 1}}, TerminateOnNaN]")
    code, out, err = call_main("plan", pipeline)
    assert code == 0, out + err
    assert ("precision mixed_float16 (Keras dtype policy; the output layers compute in "
            "float32; the loss is scaled)") in out.splitlines()
    assert ("callbacks (after kerapipe's own; paths inside the run folder): "
            "ReduceLROnPlateau(patience=1), TerminateOnNaN") in out.splitlines()
    warned = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warned) == (0 if _gpu_visible() else 1)
    assert not list(tmp_path.glob("runs"))  # plan writes nothing
