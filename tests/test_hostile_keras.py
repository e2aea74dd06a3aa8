"""What Keras refuses, and what fails only in training, is a located spec issue (issue 10).

Every Keras constructor call, first use and model-against-labels mismatch is reported by
`validate --deep` and by `plan`/`run` alike: exit 2 at the key's line (or 3/4 where the
data or the memory is the cause), never exit 1 and never a traceback.
"""

from __future__ import annotations

import dataclasses
import io
import re
import textwrap

import numpy as np
import pytest

TEMPLATE = textwrap.dedent("""\
    kerapipe: 1
    name: hostile
    seed: 1
    data:
      source: {source}
      split: {{validation: 0.2, test: 0.2}}
      batch_size: 16
      preprocess: {preprocess}
    model:
      layers: {layers}
    loss: {loss}
    optimizer: {optimizer}
    metrics: {metrics}
    train: {{epochs: 1}}
    """)
DEFAULTS = dict(source="{sample: mnist}", preprocess="[{rescale: 1/255}]",
                layers="[Flatten, {Dense: {units: 10, activation: softmax}}]",
                loss="sparse_categorical_crossentropy", optimizer="adam", metrics="[accuracy]")
NPZ = "{npz: data.npz}"  # 40 examples of 4x4 'images', 10 classes


def pipeline(folder, **changes) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hostile.yaml"
    path.write_text(TEMPLATE.format(**{**DEFAULTS, **changes}))
    if changes.get("source") == NPZ:
        out = io.BytesIO()
        rng = np.random.default_rng(0)
        np.savez(out, x=rng.random((40, 4, 4)).astype("float32"), y=np.arange(40) % 10)
        (folder / "data.npz").write_bytes(out.getvalue())
    return str(path)


def assert_located(code, out, err, exit_code, issue, key):
    text = out + err
    assert code == exit_code, text
    assert "Traceback" not in text and "internal error" not in text, text
    assert re.search(rf"hostile\.yaml:\d+:\d+: error\[{issue}\]: {re.escape(key)}:", text), text


# --- 1. Keras refuses optimizer, schedule or metric arguments ------------------------------

SCHEDULE = "{{name: adam, learning_rate: {{{}: {}}}}}"
# Values of the wrong type or outside their bounds (`momentum: -1`, `epsilon: x`, a text
# `decay_rate` or `k`) are refused by plain validate already, by the arguments' types in
# the catalogue (tests/test_argument_types.py); these need Keras to tell.
REFUSED_ARGUMENTS = {
    "two-clipnorms": (dict(optimizer="{name: adam, clipnorm: 1, global_clipnorm: 1}"),
                      "optimizer"),
    "decay-steps-0": (dict(optimizer=SCHEDULE.format("ExponentialDecay", "{initial_learning_"
                                                     "rate: 0.1, decay_steps: 0, decay_rate: 0.9}")),
                      "optimizer.learning_rate.ExponentialDecay"),
    "piecewise-lists": (dict(optimizer=SCHEDULE.format("PiecewiseConstantDecay", "{boundaries: "
                                                       "[10, 20], values: [0.1]}")),
                        "optimizer.learning_rate.PiecewiseConstantDecay"),
    "auc-thresholds": (dict(metrics="[{name: AUC, num_thresholds: 1}]"), "metrics[0]"),
}


@pytest.mark.parametrize("command", ["plan", "validate"])
@pytest.mark.parametrize("changes, key", REFUSED_ARGUMENTS.values(), ids=REFUSED_ARGUMENTS.keys())
def test_keras_refusing_optimizer_schedule_or_metric_arguments_exits_2_at_the_key(
        command, changes, key, tmp_path, call_main):
    file = pipeline(tmp_path, **changes)
    args = ["validate", "--deep", file] if command == "validate" else ["plan", file]
    assert_located(*call_main(*args), 2, "keras-arguments", key)


# --- 2. preprocessing arguments: the compile-side guard ------------------------------------

def _unchecked_spec(tmp_path, index: int, step):
    """A valid pipeline's spec with one preprocess step replaced after validation (as if
    the spec side had let it through)."""
    from kerapipe.spec.model import PreprocessStep
    from kerapipe.spec.validate import validate_file

    result = validate_file(pipeline(tmp_path, preprocess="[{rescale: 1/255}, {reshape: "
                                               "[28, 28, 1]}, {rescale: 1}]"))
    steps = list(result.spec.data.preprocess)
    steps[index] = PreprocessStep(*step)
    spec = dataclasses.replace(result.spec, data=dataclasses.replace(result.spec.data,
                                                                     preprocess=steps))
    return dataclasses.replace(result, spec=spec)


def _steps():
    from kerapipe.spec.model import LayerSpec
    from kerapipe.spec.steps import NormalizeStep, ResizeStep

    return {
        "normalize-axis-9": ((2, ("normalize", NormalizeStep(axis=9))), "layer-arguments",
                             "data.preprocess[2].normalize"),
        "resize-0x0": ((2, ("resize", ResizeStep(size=[0, 0]))), "shape-error",
                       "data.preprocess[2].resize"),
        "resize-negative": ((2, ("resize", ResizeStep(size=[-5, 10]))), "layer-arguments",
                            "data.preprocess[2].resize"),
        "crop-larger-than-input": ((2, ("RandomCrop", LayerSpec("RandomCrop", {
            "height": 50, "width": 50}))), "augmentation-shape", "data.preprocess[2].RandomCrop"),
        "rotation-factor-text": ((2, ("RandomRotation", LayerSpec("RandomRotation", {
            "factor": "x"}))), "layer-arguments", "data.preprocess[2].RandomRotation"),
    }


STEP_CASES = ["normalize-axis-9", "resize-0x0", "resize-negative", "crop-larger-than-input",
              "rotation-factor-text"]


@pytest.mark.parametrize("case", STEP_CASES)
def test_deep_reports_a_refused_preprocessing_step_at_its_key(case, tmp_path):
    from kerapipe.compiler.deep import deep_check

    step, issue, key = _steps()[case]
    result = _unchecked_spec(tmp_path, *step)
    issues = deep_check(result.spec, result.document)
    assert [(i.code, i.key_path) for i in issues] == [(issue, key)]
    assert issues[0].line > 0


@pytest.mark.parametrize("case", STEP_CASES)
def test_compile_reports_a_refused_preprocessing_step_as_a_located_spec_error(
        case, tmp_path, monkeypatch):
    import kerapipe.pipeline as compiler
    from kerapipe.errors import SpecError

    step, issue, key = _steps()[case]
    result = _unchecked_spec(tmp_path, *step)
    monkeypatch.setattr(compiler, "validate_source", lambda source, overrides: (result,
                                                                                 result.file))
    with pytest.raises(SpecError) as caught:
        compiler.compile_pipeline(result.file)
    assert [(i.code, i.key_path) for i in caught.value.issues] == [(issue, key)]
    assert caught.value.issues[0].line > 0


# --- 3. model/data/loss mismatches found only in training ---------------------------------

MISMATCHES = {
    "dense-without-flatten": (dict(layers="[{Dense: {units: 10, activation: softmax}}]"),
                              "output-shape", "model.layers[0].Dense"),
    "only-activation": (dict(layers="[{Activation: {activation: softmax}}]"), "output-shape",
                        "model.layers[0].Activation"),
    "mse-on-class-labels": (dict(loss="mse"), "output-shape", "loss"),
}


@pytest.mark.parametrize("command", ["plan", "validate", "run"])
@pytest.mark.parametrize("changes, issue, key", MISMATCHES.values(), ids=MISMATCHES.keys())
def test_a_model_whose_output_does_not_fit_the_labels_exits_2_before_training(
        command, changes, issue, key, tmp_path, call_main):
    if command == "run":  # the data's label shape, after loading (npz: unknown to --deep)
        file = pipeline(tmp_path, source=NPZ, **changes)
        assert_located(*call_main("run", file, "--output", tmp_path / "runs"), 2, issue, key)
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
        return
    file = pipeline(tmp_path, **changes)
    args = ["validate", "--deep", file] if command == "validate" else ["plan", file]
    assert_located(*call_main(*args), 2, issue, key)


ONE_HOT_2 = dict(preprocess="[{rescale: 1/255}, {one_hot: {num_classes: 2}}]",
                 loss="categorical_crossentropy")


def test_deep_refuses_one_hot_with_fewer_classes_than_the_data_set(tmp_path, call_main):
    assert_located(*call_main("validate", "--deep", pipeline(tmp_path, **ONE_HOT_2)), 2,
                   "one-hot-classes", "data.preprocess[1].one_hot.num_classes")


def test_run_refuses_one_hot_with_fewer_classes_than_the_labels_as_a_data_error(
        tmp_path, call_main):
    code, out, err = call_main("run", pipeline(tmp_path, source=NPZ, **ONE_HOT_2),
                               "--output", tmp_path / "runs")
    assert code == 3, out + err
    assert "data.preprocess[1].one_hot.num_classes" in err and "10 classes" in err
    assert "Traceback" not in out + err and "internal error" not in err


def _raise_in_keras(self, *args, **kwargs):
    import keras

    # What tracing the train step of a model without Flatten raises (rank of the output)
    keras.losses.SparseCategoricalCrossentropy()(keras.KerasTensor((None,)),
                                                 keras.KerasTensor((None, 4, 10)))


def _raise_while_running(self, *args, **kwargs):
    import tensorflow as tf

    raise tf.errors.InvalidArgumentError(None, None, "Received a label value of 12 which is "
                                         "outside the valid range of [0, 10).")


@pytest.mark.parametrize("fault, exit_code, says", [
    (_raise_in_keras, 2, "error[training-refused]"),
    (_raise_while_running, 4, "training failed: TensorFlow stopped a step"),
], ids=["keras-refuses-the-step-exit-2", "tensorflow-fails-a-running-step-exit-4"])
def test_what_still_fails_inside_fit_is_translated_never_exit_1(fault, exit_code, says,
                                                                tmp_path, call_main,
                                                                monkeypatch):
    from kerapipe.pipeline import CompiledPipeline

    monkeypatch.setattr(CompiledPipeline, "fit", fault)
    code, out, err = call_main("run", pipeline(tmp_path, source=NPZ), "--output",
                               tmp_path / "runs")
    assert code == exit_code, out + err
    assert says in err and "(10,) per example" in err, err
    assert "Traceback" not in out + err and "internal error" not in err
    (run_json,) = (tmp_path / "runs").glob("*/run.json")
    assert '"failed"' in run_json.read_text()


# --- 4. a model too large to allocate ------------------------------------------------------

HUGE = {
    "dense-2e9-units": ("[Flatten, {Dense: {units: 2000000000}}, {Dense: {units: 10}}]",
                        "model.layers[1].Dense", "1,570,000,000,000 parameters"),
    "embedding-1e10-rows": ("[{Embedding: {input_dim: 10000000000, output_dim: 8}}, Flatten, "
                            "{Dense: {units: 10}}]", "model.layers[0].Embedding",
                            "80,000,000,000 parameters"),
    # a count too large for a float (under the loader's 400-digit bound): exit 1 before
    "dense-330-digit-units": (f"[Flatten, {{Dense: {{units: {'9' * 330}}}}}, {{Dense: {{units: "
                              "10}}]", "model.layers[1].Dense", "about 10^332 parameters"),
}


@pytest.mark.parametrize("layers, key, count", HUGE.values(), ids=HUGE.keys())
def test_a_model_too_large_for_memory_is_refused_before_allocating_as_out_of_memory(
        layers, key, count, tmp_path, call_main):
    file = pipeline(tmp_path, layers=layers)
    code, out, err = call_main("plan", file)
    assert code == 4, out + err
    assert "out of memory building the model" in err and key in err and count in err
    assert "shape-error" not in err and "Traceback" not in out + err
    assert_located(*call_main("validate", "--deep", file), 2, "model-too-large", key)


# --- the same refusal in --deep as in plan/run: initializers run in --deep too ---------

def test_an_initializer_refusing_its_value_is_reported_by_deep_as_by_plan(tmp_path, call_main):
    file = pipeline(tmp_path, layers="[Flatten, {Dense: {units: 10, kernel_initializer: "
                                     "{class_name: Constant, config: {value: x}}}}]")
    for command in (("validate", "--deep"), ("plan",)):
        code, out, err = call_main(*command, file)
        assert_located(code, out, err, 2, "shape-error", "model.layers[1].Dense")
        assert "Keras could not build Dense" in out + err


@pytest.mark.parametrize("steps, expected", [
    ("[{reshape: [28, 28, 1]}, {RandomCrop: {height: 20, width: 20}}, {resize: [28, 28]}]", []),
    ("[{reshape: [28, 28, 1]}, {RandomCrop: {height: 20, width: 20}}]",
     [("augmentation-shape", "data.preprocess[1].RandomCrop")]),
    ("[{reshape: [28, 28, 1]}, {RandomCrop: {height: 20, width: 20}}, {resize: [24, 24]},"
     " {RandomFlip: {}}]", []),
], ids=["crop-then-resize-back", "crop-alone", "crop-resize-flip"])
def test_a_crop_is_accepted_when_a_later_step_gives_every_split_one_shape(steps, expected):
    """keras.io's random crop + resize: training sees crop -> resize, validation, test and
    the saved model the resize alone, so both give the model the same shape. It was
    refused at the crop (the check read each step alone), which its own hint proposed."""
    from kerapipe.compiler.deep import deep_check
    from kerapipe.spec.validate import validate_text

    text = ("kerapipe: 1\ndata:\n  source: {sample: mnist}\n  preprocess: " + steps +
            "\nmodel:\n  layers: [Flatten, {Dense: {units: 10}}]\n")
    result = validate_text(text, "p.yaml")
    assert result.errors == []
    assert [(i.code, i.key_path) for i in deep_check(result.spec)] == expected
