"""Backbones (issue 12, item 4): ``keras.applications`` models as one layer
(``applications.MobileNetV3Small: {...}``), their ``preprocess_input`` as a step, their
input-size rules checked without TensorFlow, and ImageNet weights that cannot be
downloaded reported as a data error (exit 3). No test downloads anything: every backbone
here has ``weights: null``, and the offline test makes the download fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from kerapipe.spec.applications import (application, application_names, backbone_issues,
                                        is_backbone)
from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.checks import trace_example_shape
from kerapipe.spec.issues import format_path
from kerapipe.spec.validate import validate_text

# 16 examples, 8 for training with batch_size 8: one training step.
BACKBONE_PIPELINE = textwrap.dedent("""\
    kerapipe: 1
    name: backbone
    seed: 1
    data:
      source: {npz: data.npz}
      split: {validation: 0.25, test: 0.25}
      batch_size: 8
      preprocess:
        - preprocess_input: MobileNetV3Small
    model:
      layers:
        - applications.MobileNetV3Small: {include_top: false, weights: null, pooling: avg}
        - Dense: {units: 2}
    train: {epochs: 1}
    """)


def write_images(folder: Path, count: int = 16, shape: tuple = (32, 32, 3)) -> None:
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", x=rng.uniform(0, 255, (count, *shape)).astype("float32"),
             y=np.arange(count) % 2)


def spec_of(text: str):
    """The typed spec of ``text``, before the checks across keys (``validate`` reports
    the backbone issues these tests look at too: checks.check_backbones)."""
    from kerapipe.spec.model import parse_pipeline
    from kerapipe.spec.yaml_loader import load_document

    issues: list = []
    spec = parse_pipeline(load_document(text, "p.yaml").data, issues)
    assert issues == [] and spec is not None, [i.format() for i in issues]
    return spec


def with_shape(shape: list, layer: str = "applications.MobileNetV3Small: "
               "{include_top: false, weights: null}") -> str:
    """The pipeline on examples of ``shape``, known without data: cifar10's 32x32x3
    images (mnist's 28x28 for one channel), reshaped or resized to ``shape``."""
    if shape[-1:] == [1]:
        source, steps = "{sample: mnist}", f"    - reshape: [28, 28, 1]\n    - resize: {shape[:2]}"
    elif len(shape) == 3:
        source, steps = "{keras: cifar10}", f"    - resize: {shape[:2]}"
    else:
        source, steps = "{keras: cifar10}", f"    - reshape: {shape}"
    return BACKBONE_PIPELINE.replace("{npz: data.npz}", source).replace(
        "    - preprocess_input: MobileNetV3Small", steps).replace(
        "applications.MobileNetV3Small: {include_top: false, weights: null, pooling: avg}",
        layer).replace("units: 2", "units: 10")


def first_layer_issues(text: str) -> list:
    """``backbone_issues`` of the first layer, given the example shape that reaches it
    (what spec/checks.py does for a layer that takes the model input)."""
    spec = spec_of(text)
    return backbone_issues(spec.model.layers[0], ("model", "layers", 0),
                           trace_example_shape(spec))


# --- the catalogue: every application, Keras's facts -------------------------------------

def test_every_keras_application_is_a_layer_of_origin_applications():
    keras = pytest.importorskip("keras")
    functions = sorted(name for name in dir(keras.applications) if name[0].isupper())
    assert application_names() == functions
    layers = load_catalog().layers
    for function in functions:
        entry = layers.get(f"applications.{function}")
        assert entry is not None and entry.origin == "applications", function
        assert not {"input_shape", "input_tensor"} & entry.params  # kerapipe gives the input
        assert {"weights", "include_top", "pooling"} <= entry.params, function
    assert layers.get("Dense").origin == "keras"


@pytest.mark.parametrize("function, side", [("MobileNetV3Small", 32), ("InceptionV3", 75),
                                            ("Xception", 71), ("ResNet50", 32)])
def test_the_smallest_side_is_keras_own(function, side):
    """Keras builds the model at its smallest side and refuses one pixel less."""
    keras = pytest.importorskip("keras")
    assert application(function).min_size == side
    build = getattr(keras.applications, function)
    with pytest.raises(ValueError, match=f"at least {side}x{side}"):
        build(input_shape=(side - 1, side, 3), include_top=False, weights=None)
    assert build(input_shape=(side, side, 3), include_top=False, weights=None).output_shape


@pytest.mark.parametrize("function, mode", [("ResNet50", "caffe"), ("VGG16", "caffe"),
                                            ("MobileNetV2", "tf"), ("DenseNet121", "torch"),
                                            ("MobileNetV3Small", "none"),
                                            ("EfficientNetB0", "none")])
def test_the_preprocessing_mode_is_read_from_keras(function, mode):
    assert application(function).preprocess == mode
    assert application(f"applications.{function}").function == function
    assert is_backbone(f"applications.{function}") and not is_backbone(function)


# --- validate: the input-size rules (no TensorFlow) ---------------------------------------

def test_a_backbone_validates_like_any_layer_without_tensorflow():
    code = ("import sys\nfrom kerapipe.spec.validate import validate_text\n"
            f"result = validate_text({BACKBONE_PIPELINE!r}, 'p.yaml')\n"
            "print(len(result.issues), 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0", "False", "False"]


def test_an_image_below_the_smallest_side_is_refused_at_the_backbone():
    issue, = first_layer_issues(with_shape([28, 28, 3]))
    assert issue.code == "backbone-input-size"
    assert format_path(issue.path) == "model.layers[0].applications.MobileNetV3Small"
    assert "at least 32x32 pixels" in issue.message and "resize: [32, 32]" in issue.message


def test_inception_needs_75_pixels_a_side():
    issue, = first_layer_issues(with_shape([74, 80, 3], "applications.InceptionV3: "
                                           "{include_top: false, weights: null}"))
    assert issue.code == "backbone-input-size" and "74x80" in issue.message
    assert "resize: [75, 80]" in issue.message
    assert first_layer_issues(with_shape([75, 75, 3], "applications.InceptionV3: "
                                         "{include_top: false, weights: null}")) == []


def test_an_example_that_is_no_image_is_refused():
    issue, = first_layer_issues(with_shape([3072]))
    assert issue.code == "backbone-input-size" and "[height, width, channels]" in issue.message


def test_imagenet_weights_need_three_channels_at_the_weights_key():
    issue, = first_layer_issues(with_shape([32, 32, 1], "applications.MobileNetV3Small: "
                                           "{include_top: false, weights: imagenet}"))
    assert issue.code == "backbone-channels"
    assert format_path(issue.path) == "model.layers[0].applications.MobileNetV3Small.weights"
    assert "weights: null" in issue.message


def test_keras_default_weights_are_imagenet_so_they_need_three_channels_too():
    issue, = first_layer_issues(with_shape([32, 32, 1], "applications.MobileNetV3Small: "
                                           "{include_top: false}"))
    assert issue.code == "backbone-channels" and "Keras's default" in issue.message
    assert format_path(issue.path) == "model.layers[0].applications.MobileNetV3Small"


def test_random_weights_take_one_channel():
    assert first_layer_issues(with_shape([32, 32, 1])) == []


def test_no_issue_without_a_known_shape_or_for_another_layer():
    spec = spec_of(with_shape([28, 28, 3]))
    assert backbone_issues(spec.model.layers[0], ("model", "layers", 0), None) == []
    assert backbone_issues(spec.model.layers[1], ("model", "layers", 1), (28, 28, 3)) == []


# --- the preprocess_input step ------------------------------------------------------------

@pytest.mark.parametrize("written", ["preprocess_input: VGG16", "preprocess_input: {model: VGG16}",
                                     "preprocess_input: applications.VGG16"])
def test_preprocess_input_names_the_application(written):
    spec = spec_of(BACKBONE_PIPELINE.replace("preprocess_input: MobileNetV3Small", written))
    assert spec.data.preprocess[0].options.model == "VGG16"


def test_an_unknown_application_has_a_did_you_mean():
    result = validate_text(BACKBONE_PIPELINE.replace("preprocess_input: MobileNetV3Small",
                                                     "preprocess_input: ResNet5O"), "p.yaml")
    issue, = result.errors
    assert issue.code == "unknown-value"
    assert issue.key_path == "data.preprocess[0].preprocess_input.model"
    assert "Did you mean 'ResNet50'?" in issue.message


@pytest.mark.parametrize("model, refused", [("VGG16", True), ("DenseNet121", True),
                                            ("MobileNetV2", False), ("MobileNetV3Small", False)])
def test_caffe_and_torch_preprocessing_need_three_channels(model, refused):
    resize = "    - resize: [32, 32]"
    text = with_shape([32, 32, 1]).replace(resize, f"{resize}\n    - preprocess_input: {model}")
    codes = [(i.code, i.key_path) for i in validate_text(text, "p.yaml").errors]
    expected = [("backbone-channels", "data.preprocess[2].preprocess_input.model")]
    assert codes == (expected if refused else [])


def _module_examples() -> list[str]:
    """One application of each keras.applications module (each has its preprocess_input)."""
    by_module: dict = {}
    for name in application_names():
        by_module.setdefault(application(name).module, name)
    return sorted(by_module.values())


@pytest.mark.parametrize("function", _module_examples())
def test_the_step_computes_what_keras_preprocess_input_computes(function):
    keras = pytest.importorskip("keras")
    from kerapipe.compiler.preprocess import LAYER_BUILDERS
    from kerapipe.spec.steps import PreprocessInputStep

    pixels = np.random.default_rng(3).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    app = application(function)
    expected = getattr(keras.applications, app.module).preprocess_input(pixels.copy())
    layer = LAYER_BUILDERS["preprocess_input"](PreprocessInputStep(function))
    np.testing.assert_allclose(np.asarray(layer(pixels)), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("function", ["VGG16", "DenseNet121", "Xception", "MobileNetV3Small"])
def test_the_step_is_a_plain_keras_layer_that_reloads_in_safe_mode(function, tmp_path):
    """Each mode's layer (a frozen Dense, a per-channel Rescaling, Rescaling, Identity) is
    saved and loaded back by Keras alone, with the same outputs."""
    keras = pytest.importorskip("keras")
    from kerapipe.compiler.preprocess import LAYER_BUILDERS
    from kerapipe.spec.steps import PreprocessInputStep

    layer = LAYER_BUILDERS["preprocess_input"](PreprocessInputStep(function))
    assert type(layer).__module__.startswith("keras.src.layers")
    assert layer.trainable_weights == []  # never trained: it is the fixed ImageNet recipe
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    pixels = np.random.default_rng(4).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(pixels, verbose=0),
                               model.predict(pixels, verbose=0), rtol=1e-6)


# --- build and train ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def backbone_run(tmp_path_factory):
    """A MobileNetV3Small backbone (random weights) on 32x32 RGB images, run one step."""
    from kerapipe.pipeline import compile_pipeline

    folder = tmp_path_factory.mktemp("backbone")
    write_images(folder)
    previous = os.getcwd()
    os.chdir(folder)
    try:
        compiled = compile_pipeline(BACKBONE_PIPELINE)
        result = compiled.run(output_dir=str(folder / "runs"))
    finally:
        os.chdir(previous)
    return compiled, folder / result.run_dir if not result.run_dir.is_absolute() \
        else result.run_dir


def test_a_backbone_is_built_as_one_layer_and_trains_a_step(backbone_run):
    compiled, _ = backbone_run
    backbone = compiled.model.layers[1]
    assert backbone.name == "MobileNetV3Small" and backbone.input_shape == (None, 32, 32, 3)
    assert compiled.model.output_shape == (None, 2)
    assert int(compiled.model.optimizer.iterations) == 1


@pytest.mark.slow
def test_a_backbone_runs_model_keras_loads_with_plain_keras_in_safe_mode(backbone_run,
                                                                         in_plain_keras):
    compiled, run_dir = backbone_run
    pixels = np.random.default_rng(5).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    np.save(run_dir.parent / "pixels.npy", pixels)
    line = in_plain_keras(
        run_dir / "model.keras",
        f"out = model.predict(np.load({str(run_dir.parent / 'pixels.npy')!r}), verbose=0)\n"
        f"np.save({str(run_dir.parent / 'out.npy')!r}, out)\n"
        "print(any(m.startswith('kerapipe') for m in sys.modules))")
    assert line.split()[-1] == "False"  # nothing of kerapipe was imported
    expected = compiled.inference_model.predict(pixels, verbose=0)
    np.testing.assert_allclose(np.load(run_dir.parent / "out.npy"), expected, rtol=1e-4,
                               atol=1e-6)


# --- ImageNet weights offline -------------------------------------------------------------

# Keras's advice that MobileNetV3's ImageNet weights were trained on 224x224 images.
@pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square:UserWarning")
def test_imagenet_weights_offline_fail_with_the_model_and_the_cache(tmp_path, monkeypatch,
                                                                    call_main):
    """An empty Keras cache and no network: exit 3, naming the model, the weights file and
    the cache folder, before any training; nothing is left in the cache."""
    pytest.importorskip("keras")
    from keras.src.backend import config
    from keras.src.utils import file_utils

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    cache = tmp_path / "keras-home"
    cache.mkdir()
    monkeypatch.setattr(config, "_KERAS_DIR", str(cache))  # what KERAS_HOME sets
    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    write_images(tmp_path)
    (tmp_path / "p.yaml").write_text(BACKBONE_PIPELINE.replace("weights: null",
                                                                "weights: imagenet"))
    monkeypatch.chdir(tmp_path)
    code, _, err = call_main("run", "p.yaml", "--output", "runs")
    assert code == 3, err
    assert "applications.MobileNetV3Small (weights: imagenet)" in err
    assert str(cache / "models") in err and "KERAS_HOME" in err
    assert "weights_mobilenet_v3_small" in err and "weights: null" in err
    assert "Traceback" not in err
    assert list((cache / "models").iterdir()) == []


@pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square:UserWarning")
def test_deep_validation_of_imagenet_weights_never_downloads(tmp_path, monkeypatch):
    """`validate --deep` checks shapes only: a backbone is built with `weights=None`, so
    no weights file is fetched (it downloaded, or failed offline with exit 3)."""
    from keras.src.utils import file_utils

    from kerapipe.compiler.deep import deep_check
    from kerapipe.spec.validate import validate_text

    fetched: list = []
    monkeypatch.setattr(file_utils, "urlretrieve",
                        lambda url, *args, **kwargs: fetched.append(url))
    text = BACKBONE_PIPELINE.replace("weights: null", "weights: imagenet")
    text = text.replace("source: {npz: data.npz}", "source: {keras: cifar10}")
    text = text.replace("Dense: {units: 2}", "Dense: {units: 10}")
    spec = validate_text(text, str(tmp_path / "p.yaml")).spec
    assert spec is not None and spec.data.source.kind == "keras"
    assert deep_check(spec) == [] and fetched == []
