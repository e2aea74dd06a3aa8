"""No work twice (or early) before the first training step (issue 11): what `kerapipe run`
does between validation and `model.fit` is done once, and what can wait, waits."""

from __future__ import annotations

import pytest

from kerapipe.spec.validate import validate_text

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword, so passing copy=False "
    "failed:DeprecationWarning")

PIPELINE = """\
kerapipe: 1
name: startup
seed: 5
data:
  source: {sample: mnist}
  preprocess: [{rescale: 1/255}]
  batch_size: 256
model:
  layers: [Flatten, {Dense: {units: 16, activation: relu}}, {Dense: {units: 10}}]
train: {epochs: 1}
"""


def test_the_model_is_built_once_each_layer_made_once(monkeypatch):
    import kerapipe.compiler.build as build

    made: list[str] = []
    real = build.build_layer

    def counting(spec, *args, **kwargs):
        made.append(spec.name)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(build, "build_layer", counting)
    spec = validate_text(PIPELINE).spec
    model = build.build_core_model(spec, (28, 28), "float32")
    assert made == ["Flatten", "Dense", "Dense"]
    assert all(w.value is not None for w in model.weights)  # allocated, not only counted
    assert model.count_params() == 784 * 16 + 16 + 16 * 10 + 10


def test_an_initializer_refusal_after_the_build_is_located_at_its_layer():
    import kerapipe.compiler.build as build
    from kerapipe.errors import SpecError

    text = PIPELINE.replace("{Dense: {units: 10}}", "{Dense: {units: 10, kernel_initializer: "
                            "{class_name: Constant, config: {value: x}}}}")
    with pytest.raises(SpecError) as caught:
        build.build_core_model(validate_text(text).spec, (28, 28), "float32")
    assert [(i.code, i.key_path) for i in caught.value.issues] == [
        ("shape-error", "model.layers[2].Dense")]


def test_an_optimizer_given_only_a_learning_rate_is_not_stepped_before_training(monkeypatch):
    import kerapipe.compiler.build as build

    def refuse(spec):
        raise AssertionError("stepped")

    monkeypatch.setattr(build, "build_optimizer", refuse)
    build.exercise_optimizer(validate_text(PIPELINE).spec.optimizer)  # nothing to refuse
    with_kwargs = validate_text(PIPELINE + "optimizer: {name: sgd, momentum: 0.5}\n").spec
    with pytest.raises(AssertionError, match="stepped"):
        build.exercise_optimizer(with_kwargs.optimizer)


def test_the_test_split_dataset_is_built_when_first_read(tmp_path):
    from kerapipe import compile_pipeline

    compiled = compile_pipeline(PIPELINE)
    assert "test" not in vars(compiled.datasets)  # not built by compiling
    first = compiled.datasets.test
    assert first is not None and compiled.datasets.test is first  # built once, then kept
    replaced = compiled.datasets.train.take(1)
    compiled.datasets.test = replaced  # a user may still replace it
    assert compiled.datasets.test is replaced


def test_run_moves_the_imported_objects_out_of_the_collectors_reach(tmp_path, call_main,
                                                                    monkeypatch):
    import gc

    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE)
    code, _, err = call_main("run", path, "-o", tmp_path / "runs")
    assert code == 0, err
    assert frozen == [True]
