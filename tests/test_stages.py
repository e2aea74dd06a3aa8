"""Fine-tuning stages, `train.stages` (issue 14, item 4): later stages continue the same
model and data, each with what it trains and its own optimizer and early stopping."""

from __future__ import annotations

import contextlib
import io
import json
import signal

import numpy as np
import pytest

from kerapipe.spec.validate import validate_text

PIPELINE = """\
kerapipe: 1
name: tune
seed: 1
data:
  source: {npz: data.npz}
  split: {validation: 0.2, test: 0.2}
  batch_size: 8
model:
  layers:
    - Dense: {units: 8, activation: relu, name: body}
    - BatchNormalization: {name: norm}
    - Dense: {units: 3, activation: softmax, name: head}
train:
%s
output: {dir: runs}
"""
# Stage 1 trains the head; stage 2 everything, until its early stopping (which no
# epoch can satisfy: min_delta 100) ends it after 2 of its 3 epochs.
STAGES = """\
  stages:
    - {epochs: 2, trainable: [head]}
    - {epochs: 3, trainable: all, optimizer: {learning_rate: 0.01},
       early_stopping: {monitor: loss, patience: 0, min_delta: 100}}"""
RESUMED = """\
  stages:
    - {epochs: 1, trainable: [head]}
    - {epochs: 3, trainable: {except: [head]}, optimizer: {learning_rate: 0.0001}}"""


def issues_of(train: str) -> list[tuple[str, tuple, int]]:
    result = validate_text(PIPELINE % train, "p.yaml")
    return [(i.code, i.path, i.line) for i in result.errors]


@pytest.mark.parametrize("train, expected", [
    ("  stages: [{epochs: 2, trainable: [haed]}]",
     [("unknown-stage-layer", ("train", "stages", 0, "trainable", 0), 14)]),
    ("  epochs: 4\n  stages: [{epochs: 2, trainable: [head]}, {epochs: 1}]",
     [("stage-epochs", ("train", "epochs"), 14)]),
    ("  stages: [{epochs: 2, trainable: {except: [body, norm, head]}}]",
     [("stage-trains-nothing", ("train", "stages", 0, "trainable"), 14)]),
    ("  stages: [{epochs: 2, trainable: []}]",
     [("wrong-type", ("train", "stages", 0, "trainable"), 14)]),
    ("  stages: [{epochs: 0, trainable: all, early_stopping: true}]",
     [("out-of-range", ("train", "stages", 0, "epochs"), 14),
      ("wrong-type", ("train", "stages", 0, "early_stopping"), 14)]),
    ("  stages: [{epochs: 1, optimizer: {name: sgd, beta_1: 0.5}}]",
     [("unknown-argument", ("train", "stages", 0, "optimizer", "beta_1"), 14)]),
    ("  stages: [{epochs: 1, early_stopping: {monitor: val_los}}]",
     [("unknown-monitor", ("train", "stages", 0, "early_stopping", "monitor"), 14)]),
], ids=["unknown-name", "epochs-differ", "trains-nothing", "empty-list", "bad-values",
        "optimizer-argument", "monitor"])
def test_stage_refusals_are_located_at_their_key(train, expected):
    assert issues_of(train) == expected


def test_unknown_stage_name_suggests_the_closest_layer():
    message = validate_text(PIPELINE % "  stages: [{epochs: 2, trainable: [haed]}]",
                            "p.yaml").errors[0].message
    assert "Did you mean 'head'?" in message


def test_epochs_resolve_to_the_stages_sum_and_spec_yaml_says_it():
    from kerapipe.run_folder import resolved_yaml

    spec = validate_text(PIPELINE % STAGES, "p.yaml").spec
    assert spec.train.epochs == 5
    text = resolved_yaml(spec)
    assert "  epochs: 5\n" in text
    again = validate_text(text, "spec.yaml")
    assert again.errors == [] and again.spec == spec


def test_a_stage_optimizer_merges_over_the_files_and_another_name_starts_anew():
    from kerapipe.spec.stages import stage_early_stopping, stage_optimizer

    text = PIPELINE.replace("output:", "optimizer: {name: sgd, learning_rate: 0.1, "
                            "momentum: 0.9}\noutput:") % (
        "  early_stopping: {patience: 2}\n  stages: [{epochs: 1, optimizer: {learning_rate: "
        "0.001}, early_stopping: {patience: 1}}, {epochs: 1, optimizer: {name: adam}, "
        "early_stopping: false}]")
    spec = validate_text(text, "p.yaml").spec
    first, second = spec.train.stages
    assert (stage_optimizer(spec, first).name, stage_optimizer(spec, first).learning_rate,
            stage_optimizer(spec, first).kwargs) == ("sgd", 0.001, {"momentum": 0.9})
    assert (stage_optimizer(spec, second).name, stage_optimizer(spec, second).kwargs) == (
        "adam", {})
    assert (stage_early_stopping(spec.train, first).patience,
            stage_early_stopping(spec.train, first).monitor) == (1, "val_loss")
    assert stage_early_stopping(spec.train, second) is None


# --- training ------------------------------------------------------------------------

def _workspace(folder, train: str):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype("float32")
    np.savez(folder / "data.npz", x=x, y=(np.arange(40) % 3).astype("int64"))
    (folder / "p.yaml").write_text(PIPELINE % train)
    return folder / "p.yaml"


def _weights(layer) -> list[np.ndarray]:
    return [np.array(w.numpy()) for w in layer.weights]


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """A fit of STAGES, with the weights at the start and after stage 1."""
    from kerapipe import compile_pipeline
    from kerapipe.compiler import backend  # noqa: F401
    import keras

    pipeline = _workspace(tmp_path_factory.mktemp("stages"), STAGES)
    compiled = compile_pipeline(str(pipeline))
    layers = {layer.name: layer for layer in compiled.model.layers}
    snapshots = {"start": {n: _weights(layer) for n, layer in layers.items()}}

    class AfterStageOne(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                snapshots["stage 1"] = {n: _weights(layer) for n, layer in layers.items()}

    with contextlib.redirect_stdout(io.StringIO()) as shown:  # Keras's progress lines
        history = compiled.fit(verbose=2, callbacks=[AfterStageOne()])
    snapshots["end"] = {n: _weights(layer) for n, layer in layers.items()}
    snapshots["progress"] = shown.getvalue()
    return compiled, history, snapshots


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_a_frozen_stage_leaves_frozen_weights_bit_identical_while_the_head_changes(staged):
    _, _, snap = staged
    for name in ("body", "norm"):  # norm's moving statistics too: inference mode
        assert _same(snap["start"][name], snap["stage 1"][name]), name
    assert not _same(snap["start"]["head"], snap["stage 1"]["head"])


def test_a_later_stage_with_all_trainable_changes_them(staged):
    _, _, snap = staged
    for name in ("body", "norm"):
        assert not _same(snap["stage 1"][name], snap["end"][name]), name


def test_the_progress_lines_show_the_metrics_but_not_the_stage_column(staged):
    lines = [line for line in staged[2]["progress"].splitlines() if "loss:" in line]
    assert len(lines) == 4  # one a epoch, each stage's fit its own progress bar
    assert not any("stage" in line for line in lines)


def test_one_history_with_a_stage_column_and_early_stopping_ends_only_its_stage(staged):
    compiled, history, _ = staged
    assert history.history["stage"] == [1, 1, 2, 2]  # stage 2's early stopping: 2 of 3
    assert history.epoch == [0, 1, 2, 3]
    assert compiled.model.optimizer.learning_rate.numpy() == pytest.approx(0.01)


def test_plan_lists_the_stages_with_their_trainable_parameter_counts(staged):
    from kerapipe.report import format_stages

    compiled = staged[0]
    lines = format_stages(compiled)
    assert lines[0].startswith("stages (fine-tuning, 5 epochs in all")
    cells = [line.split()[:4] for line in lines[2:]]
    head = 8 * 3 + 3
    assert cells == [["1", "2", "head", f"{head}"],
                     ["2", "3", "all", f"{4 * 8 + 8 + 2 * 8 + head}"]]  # BN: gamma, beta
    assert "adam (learning rate 0.01)" in lines[3] and "loss, patience 0" in lines[3]


def test_resume_in_the_middle_of_stage_2_finishes_with_the_uninterrupted_step_count(
        tmp_path):
    from kerapipe import compile_pipeline
    from kerapipe.compiler import backend  # noqa: F401
    from kerapipe.errors import Interrupted
    from kerapipe.run_files import load_saved_model
    from kerapipe.runner import resume_run
    import keras

    class SigintAfterEpoch2(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                signal.raise_signal(signal.SIGINT)

    for name in ("whole", "cut"):
        (tmp_path / name).mkdir()
    whole = compile_pipeline(str(_workspace(tmp_path / "whole", RESUMED)))
    uninterrupted = whole.run(str(tmp_path / "whole" / "runs"), verbose=0)
    cut = compile_pipeline(str(_workspace(tmp_path / "cut", RESUMED)))
    with pytest.raises(Interrupted):
        cut.run(str(tmp_path / "cut" / "runs"), verbose=0, callbacks=[SigintAfterEpoch2()])
    run_dir = next((tmp_path / "cut" / "runs").iterdir())
    last = sorted((run_dir / "checkpoints").glob("epoch-*"))[-1]
    assert json.loads((last / "state.json").read_text())["history"]["stage"] == [1, 2]

    resumed = resume_run(run_dir, verbose=0)
    assert resumed.history["stage"] == uninterrupted.history["stage"] == [1, 2, 2, 2]
    batches = int(whole.datasets.train.cardinality())
    steps = int(whole.model.optimizer.iterations)  # stage 2's optimizer, 3 epochs
    assert steps == 3 * batches
    last = sorted((run_dir / "checkpoints").glob("epoch-*"))[-1]
    assert int(load_saved_model(last / "last.keras").optimizer.iterations) == steps


def test_a_stage_compiles_again_with_the_files_loss_metrics_and_precision(tmp_path):
    """A stage's new optimizer is loss-scaled as the first one is (mixed_float16), and the
    model keeps the loss and settings assemble compiled it with."""
    from kerapipe import compile_pipeline
    from kerapipe.compiler import backend  # noqa: F401
    import keras

    pipeline = _workspace(tmp_path, "  precision: mixed_float16\n  steps_per_execution: 2\n"
                          + STAGES)
    compiled = compile_pipeline(str(pipeline))
    loss = compiled.model.loss
    compiled.apply_stage(1)
    optimizer = compiled.model.optimizer
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert float(optimizer.inner_optimizer.learning_rate) == pytest.approx(0.01)
    assert compiled.model.loss is loss and compiled.model.steps_per_execution == 2
