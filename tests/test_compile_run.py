"""The Python API of the compile and run sides: ``compile_pipeline`` -> ``CompiledPipeline``.

Everything is tiny (Flatten + Dense models, one epoch, a few generated examples in
tmp_path), and the one mnist run folder is trained once per module and shared.
"""

import csv
import json
import math
import os
import textwrap
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerapipe import DataError, SpecError, validate_text
from kerapipe.pipeline import CompiledPipeline, compile_pipeline

# Keras 3.15 + TensorFlow 2.21 + NumPy 2.4: `model.save` converts every variable with
# np.array(variable), and TF's ResourceVariable.__array__ has no `copy` keyword, so NumPy
# emits this DeprecationWarning for any Keras model (not a kerapipe issue: a plain
# `keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save("m.keras")` emits it).
KERAS_SAVE_WARNING = ("ignore:__array__ implementation doesn't accept a copy keyword, so "
                      "passing copy=False failed:DeprecationWarning")

TINY_MNIST = """\
kerapipe: 1
name: tiny
seed: 7
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
  epochs: 1
"""

TINY_MNIST_DICT = {
    "kerapipe": 1, "name": "tiny", "seed": 7,
    "data": {"source": {"sample": "mnist"},
             "preprocess": [{"rescale": "1/255"}, {"reshape": [28, 28, 1]}],
             "batch_size": 64},
    "model": {"layers": ["Flatten", {"Dense": {"units": 10}}]},
    "train": {"epochs": 1},
}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def spec_dict(**changes) -> dict:
    """A deep copy of TINY_MNIST_DICT with top-level or data-level keys replaced."""
    spec = json.loads(json.dumps(TINY_MNIST_DICT))
    for key, value in changes.items():
        if key.startswith("data_"):
            spec["data"][key[5:]] = value
        else:
            spec[key] = value
    return spec


def batches(dataset, take=None):
    """All (x, y) of a dataset as two numpy arrays (optionally only the first batches)."""
    if take is not None:
        dataset = dataset.take(take)
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in dataset))
    return np.concatenate(xs), np.concatenate(ys)


def files_under(folder: Path) -> set:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# --- generated data, shared by the module -----------------------------------------------

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """npz (x_train differs from x_test), integer sequences, a CSV and two image folders."""
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    np.savez(folder / "shifted.npz",
             x_train=rng.normal(5.0, 2.0, size=(200, 4)).astype("float32"),
             y_train=np.arange(200) % 3,
             x_test=rng.normal(50.0, 2.0, size=(40, 4)).astype("float32"),
             y_test=np.arange(40) % 3)
    np.savez(folder / "sequences.npz", x=rng.integers(1, 50, size=(120, 12)).astype("int32"),
             y=np.arange(120) % 2)
    species = ["setosa", "virginica", "versicolor"]
    rows = [f"{rng.normal():.3f},{rng.normal():.3f},{species[i % 3]}" for i in range(60)]
    (folder / "iris.csv").write_text("a,b,species\n" + "\n".join(rows) + "\n")
    for name, level in (("cat", 30), ("dog", 220)):
        (folder / "pics" / name).mkdir(parents=True)
        for i in range(6):
            pixels = np.clip(rng.normal(level, 10, (10, 12, 3)), 0, 255).astype("uint8")
            (folder / "pics" / name / f"{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    return folder


# --- compile: inputs, outputs, no side effects -------------------------------------------

@pytest.mark.parametrize("form", ["path-str", "pathlib", "yaml-string", "dict"])
def test_compile_accepts_path_yaml_string_and_dict_and_returns_real_keras_objects(
        form, tmp_path, monkeypatch):
    pipeline = write(tmp_path, "tiny.yaml", TINY_MNIST)
    monkeypatch.chdir(tmp_path)
    source = {"path-str": str(pipeline), "pathlib": pipeline, "yaml-string": TINY_MNIST,
              "dict": TINY_MNIST_DICT}[form]
    compiled = compile_pipeline(source)
    assert isinstance(compiled, CompiledPipeline)
    assert isinstance(compiled.model, keras.Model)
    for dataset in (compiled.datasets.train, compiled.datasets.validation,
                    compiled.datasets.test):
        assert isinstance(dataset, tf.data.Dataset)
    assert compiled.spec.name == "tiny" and compiled.spec.train.epochs == 1
    assert compiled.source_file == (str(pipeline) if form.startswith("path") else None)
    assert int(compiled.model.optimizer.iterations) == 0  # no training step ran
    assert compiled.history is None
    assert files_under(tmp_path) == {"tiny.yaml"}  # no run folder, nothing written


def test_compile_twice_with_same_seed_gives_identical_untrained_weights():
    first = [w.copy() for w in compile_pipeline(TINY_MNIST_DICT).model.get_weights()]
    second = compile_pipeline(TINY_MNIST_DICT).model.get_weights()
    other_seed = compile_pipeline(spec_dict(seed=8)).model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not np.array_equal(first[0], other_seed[0])


def test_override_changes_the_compiled_spec():
    compiled = compile_pipeline(TINY_MNIST, overrides=["train.epochs=2", "data.batch_size=16"])
    assert compiled.spec.train.epochs == 2
    assert compiled.spec.data.batch_size == 16
    assert next(iter(compiled.datasets.train))[0].shape[0] == 16


@pytest.mark.parametrize("source", [TINY_MNIST, TINY_MNIST_DICT], ids=["yaml", "dict"])
@pytest.mark.parametrize("override", ["train.epochs=yes", 'data.batch_size="3"'])
def test_bad_override_raises_wrong_type_located_at_the_set_option(source, override):
    with pytest.raises(SpecError) as raised:
        compile_pipeline(source, overrides=[override])
    [issue] = raised.value.issues
    assert issue.code == "wrong-type"
    assert issue.file == f"--set {override}"
    assert issue.format().startswith(f"--set {override}: error[wrong-type]: ")


# --- datasets -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist_compiled() -> CompiledPipeline:
    return compile_pipeline(TINY_MNIST)


def test_rescale_and_reshape_give_image_batches_with_values_in_unit_range(mnist_compiled):
    x, y = next(iter(mnist_compiled.datasets.validation))
    assert tuple(x.shape) == (64, 28, 28, 1) and x.dtype == tf.float32
    assert tuple(y.shape) == (64,)
    raw = mnist_compiled.data.validation.x[:64]
    np.testing.assert_allclose(x.numpy()[..., 0], raw / 255.0, rtol=1e-6)
    assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) == pytest.approx(1.0)


@pytest.mark.parametrize("split", ["validation", "test"])
def test_validation_and_test_datasets_keep_their_order_between_iterations(mnist_compiled,
                                                                          split):
    dataset = getattr(mnist_compiled.datasets, split)
    first_x, first_y = batches(dataset)
    second_x, second_y = batches(dataset)
    assert np.array_equal(first_x, second_x) and np.array_equal(first_y, second_y)
    assert np.array_equal(first_y, getattr(mnist_compiled.data, split).y)  # raw order


def test_train_dataset_reshuffles_each_epoch_but_is_reproducible_with_the_same_seed():
    first = compile_pipeline(TINY_MNIST).datasets.train
    second = compile_pipeline(TINY_MNIST).datasets.train
    epoch1, epoch2 = batches(first)[1], batches(first)[1]
    assert len(epoch1) == 4000
    assert not np.array_equal(epoch1, epoch2)
    assert np.array_equal(np.sort(epoch1), np.sort(epoch2))  # same examples, new order
    assert np.array_equal(batches(second)[1], epoch1)
    assert np.array_equal(batches(second)[1], epoch2)


@pytest.mark.parametrize("steps_per_execution, one_iterator", [(1, True), (2, True), (3, False)])
def test_fit_keeps_one_training_iterator_when_executions_fill_whole_epochs(
        steps_per_execution, one_iterator, data_dir, monkeypatch):
    # 160 train examples = 10 batches of 16 (validation: 40 = 3 batches). When the batches
    # divide into steps_per_execution calls, the train split is repeated and read by one
    # iterator for the whole fit; otherwise by new iterators each epoch, because over a
    # repeated dataset the last call of an epoch would take batches of the next one.
    compiled = compile_pipeline(npz_pipeline(data_dir), [
        "train.epochs=3", f"train.steps_per_execution={steps_per_execution}"])
    assert int(compiled.datasets.train.cardinality()) == 10
    assert int(compiled.datasets.validation.cardinality()) == 3
    train_iterators = []
    original_iter = tf.data.Dataset.__iter__

    def counting_iter(dataset):
        if int(dataset.cardinality()) in (10, tf.data.INFINITE_CARDINALITY):  # not validation
            train_iterators.append(dataset)
        return original_iter(dataset)

    monkeypatch.setattr(tf.data.Dataset, "__iter__", counting_iter)
    history = compiled.fit(verbose=0)
    assert (len(train_iterators) == 1) == one_iterator
    assert len(history.history["val_loss"]) == 3
    assert int(compiled.model.optimizer.iterations) == 3 * 10  # each epoch: exactly its batches


@pytest.mark.parametrize("case", ["replaced-unknown-length", "steps_per_epoch=None",
                                  "steps_per_epoch=2"])
def test_fit_gives_keras_the_finite_split_when_it_cannot_count_the_epoch(
        case, data_dir, monkeypatch):
    # Repeating a split whose epoch length fit cannot state would make epoch 1 endless.
    compiled = compile_pipeline(npz_pipeline(data_dir))
    kwargs = {}
    if case == "replaced-unknown-length":
        compiled.datasets.train = compiled.datasets.train.filter(lambda x, y: True)
    else:
        kwargs["steps_per_epoch"] = None if case.endswith("None") else 2
    given = {}
    monkeypatch.setattr(compiled.model, "fit",
                        lambda data, **options: given.update(data=data, **options))
    compiled.fit(verbose=0, **kwargs)
    assert given["data"] is compiled.datasets.train  # not repeated
    assert given.get("steps_per_epoch") == kwargs.get("steps_per_epoch")


# --- each preprocessing step ------------------------------------------------------------

NPZ_CLASSIFIER = """\
kerapipe: 1
data:
  source: {{npz: {npz}}}
  split: {{validation: 0.2}}
  preprocess: {preprocess}
  batch_size: 16
model:
  layers: {layers}
loss: {loss}
train: {{epochs: 1}}
"""


def npz_pipeline(folder, npz="shifted.npz", preprocess="[]", layers="[{Dense: {units: 3}}]",
                 loss="sparse_categorical_crossentropy", name="pipeline.yaml") -> Path:
    return write(folder, name, NPZ_CLASSIFIER.format(npz=npz, preprocess=preprocess,
                                                     layers=layers, loss=loss))


def test_normalize_standardises_with_statistics_of_the_train_split_only(data_dir):
    compiled = compile_pipeline(npz_pipeline(data_dir, preprocess="[normalize: {}]"))
    train_x = batches(compiled.datasets.train)[0]
    test_x = batches(compiled.datasets.test)[0]
    np.testing.assert_allclose(train_x.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(train_x.std(axis=0), 1.0, atol=1e-3)
    # The test arrays (mean 50) were never adapted on: (50 - 5) / 2 ~ 22.5 after scaling.
    assert np.all(test_x.mean(axis=0) > 15)
    layer = compiled.preprocessing.before_cache[0]
    assert isinstance(layer, keras.layers.Normalization)
    np.testing.assert_allclose(np.ravel(layer.mean), compiled.data.train.x.mean(axis=0),
                               rtol=1e-4)


def test_resize_changes_the_image_size_of_an_image_folder(data_dir):
    compiled = compile_pipeline(write(data_dir, "resize.yaml", """\
        kerapipe: 1
        data:
          source: {images: {dir: pics, image_size: [10, 12]}}
          split: {validation: 0.17, test: 0.17}
          preprocess: [{rescale: 1/255}, {resize: [6, 8]}]
          batch_size: 4
        model:
          layers: [Flatten, {Dense: {units: 2}}]
        """))
    x, _ = next(iter(compiled.datasets.validation))
    assert tuple(x.shape[1:]) == (6, 8, 3)
    assert [stage for stage, _ in compiled.preprocessing.stages] == ["raw input", "rescale",
                                                                    "resize"]
    assert compiled.preprocessing.stages[-1][1] == (6, 8, 3)
    assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0


def test_one_hot_labels_in_the_dataset_with_categorical_crossentropy(data_dir):
    compiled = compile_pipeline(npz_pipeline(
        data_dir, preprocess="[normalize: {}, one_hot: {}]",
        layers="[{Dense: {units: 3, activation: softmax}}]", loss="categorical_crossentropy"))
    x, y = next(iter(compiled.datasets.validation))
    assert tuple(y.shape) == (16, 3) and y.dtype == tf.float32
    np.testing.assert_array_equal(y.numpy().sum(axis=1), 1.0)
    np.testing.assert_array_equal(y.numpy().argmax(axis=1), compiled.data.validation.y[:16])
    assert isinstance(compiled.model.loss, keras.losses.CategoricalCrossentropy)
    history = compiled.fit(verbose=0)
    assert math.isfinite(history.history["loss"][0])


def test_pad_sequences_gives_fixed_length_integer_tokens_for_an_embedding(data_dir):
    compiled = compile_pipeline(npz_pipeline(
        data_dir, npz="sequences.npz", preprocess="[pad_sequences: {maxlen: 8}]",
        layers="[{Embedding: {input_dim: 50, output_dim: 4}}, GlobalAveragePooling1D, "
               "{Dense: {units: 2}}]"))
    x, _ = next(iter(compiled.datasets.validation))
    assert tuple(x.shape) == (16, 8) and x.dtype == tf.int32
    with np.load(data_dir / "sequences.npz") as arrays:
        raw = arrays["x"]
    # truncating defaults to "pre": the last 8 tokens of each 12-token sequence are kept.
    kept = {tuple(row) for row in raw[:, -8:]}
    assert all(tuple(row) in kept for row in x.numpy())
    history = compiled.fit(verbose=0)
    assert math.isfinite(history.history["loss"][0])


def test_random_flip_augments_training_batches_but_not_validation_batches():
    plain = compile_pipeline(spec_dict(data_shuffle=0))
    augmented = compile_pipeline(spec_dict(data_shuffle=0, data_preprocess=[
        {"rescale": "1/255"}, {"reshape": [28, 28, 1]}, {"RandomFlip": {"mode": "horizontal"}}]))
    assert [type(layer).__name__ for layer in augmented.preprocessing.after_cache] == \
        ["RandomFlip"]
    train_plain = batches(plain.datasets.train, take=2)[0]
    train_aug = batches(augmented.datasets.train, take=2)[0]
    assert not np.allclose(train_plain, train_aug)
    flipped = [np.allclose(a, p[:, ::-1]) and not np.allclose(a, p)
               for a, p in zip(train_aug, train_plain)]
    unchanged = [np.allclose(a, p) for a, p in zip(train_aug, train_plain)]
    assert all(f or u for f, u in zip(flipped, unchanged)) and any(flipped)
    np.testing.assert_array_equal(batches(augmented.datasets.validation)[0],
                                  batches(plain.datasets.validation)[0])


# --- every source trains ------------------------------------------------------------------

SOURCES = {
    "sample": ("{sample: mnist}", "[rescale: 1/255]", "[Flatten, {Dense: {units: 10}}]"),
    "npz": ("{npz: shifted.npz}", "[normalize: {}]", "[{Dense: {units: 3}}]"),
    "csv": ("{csv: {path: iris.csv, label: species}}", "[]", "[{Dense: {units: 3}}]"),
    "images": ("{images: {dir: pics, image_size: [10, 12]}}", "[rescale: 1/255]",
               "[Flatten, {Dense: {units: 2}}]"),
}


@pytest.mark.parametrize("kind", list(SOURCES))
def test_each_source_trains_one_short_epoch(kind, data_dir):
    source, preprocess, layers = SOURCES[kind]
    pipeline = write(data_dir, f"source-{kind}.yaml", f"""\
        kerapipe: 1
        data:
          source: {source}
          split: {{validation: 0.17, test: 0.17}}
          preprocess: {preprocess}
          batch_size: 64
        model:
          layers: {layers}
        train: {{epochs: 1}}
        """)
    compiled = compile_pipeline(pipeline)
    history = compiled.fit(verbose=0)
    assert len(history.history["loss"]) == 1
    assert all(math.isfinite(values[0]) for values in history.history.values())
    assert int(compiled.model.optimizer.iterations) == math.ceil(len(compiled.data.train) / 64)
    expected_names = {"sample": [str(i) for i in range(10)], "npz": ["0", "1", "2"],
                      "csv": ["setosa", "versicolor", "virginica"],  # sorted strings
                      "images": ["cat", "dog"]}[kind]
    assert compiled.data.class_names == expected_names
    assert compiled.predict().shape == (len(compiled.data.test),)


# --- loss, callbacks, build errors ---------------------------------------------------------

@pytest.mark.parametrize("layers, from_logits", [
    (["Flatten", {"Dense": {"units": 10}}], True),
    (["Flatten", {"Dense": {"units": 10, "activation": "linear"}}], True),
    (["Flatten", {"Dense": {"units": 10, "activation": "softmax"}}], False),
    (["Flatten", {"Dense": {"units": 10}}, "Softmax"], False),
    (["Flatten", {"Dense": {"units": 10}}, {"Activation": {"activation": "softmax"}}], False),
], ids=["linear", "explicit-linear", "softmax", "Softmax-layer", "Activation-softmax"])
def test_from_logits_is_inferred_from_the_last_activation(layers, from_logits):
    compiled = compile_pipeline(spec_dict(model={"layers": layers}))
    assert compiled.model.loss.get_config()["from_logits"] is from_logits


def test_early_stopping_callback_has_the_spec_monitor_patience_and_restores_best_weights():
    compiled = compile_pipeline(spec_dict(train={
        "epochs": 5, "early_stopping": {"monitor": "val_accuracy", "patience": 2}}))
    [logger, callback] = compiled.callbacks  # the learning-rate logger comes first
    assert type(logger).__name__ == "LearningRateLogger"
    assert isinstance(callback, keras.callbacks.EarlyStopping)
    assert (callback.monitor, callback.patience, callback.restore_best_weights) == \
        ("val_accuracy", 2, True)
    assert [type(c).__name__ for c in compile_pipeline(TINY_MNIST_DICT).callbacks] == [
        "LearningRateLogger"]


SHAPE_ERROR = """\
kerapipe: 1
data:
  source: {sample: mnist}
  preprocess: [rescale: 1/255]
model:
  layers:
    - Flatten
    - Conv2D: {filters: 2, kernel_size: 3}
    - Dense: {units: 10}
"""


@pytest.mark.parametrize("form", ["file", "yaml-string"])
def test_layer_keras_rejects_raises_shape_error_at_the_layer_line(form, tmp_path):
    path = write(tmp_path, "conv.yaml", SHAPE_ERROR)
    with pytest.raises(SpecError) as raised:
        compile_pipeline(path if form == "file" else SHAPE_ERROR)
    [issue] = raised.value.issues
    assert issue.code == "shape-error"
    assert issue.key_path == "model.layers[1].Conv2D"
    assert (issue.file, issue.line, issue.column) == (
        str(path) if form == "file" else "<string>", 8, 7)
    assert "(None, 784)" in issue.message


@pytest.mark.parametrize("source, mentioned", [
    ({"npz": "missing.npz"}, "missing.npz"),
    ({"csv": {"path": "missing.csv", "label": "y"}}, "missing.csv"),
    ({"images": "no-such-folder"}, "no-such-folder"),
])
def test_missing_data_raises_data_error_naming_it(source, mentioned, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=mentioned):
        compile_pipeline(spec_dict(data={"source": source}))


# --- run: the run folder and the saved model ----------------------------------------------

RUN_FILES = {"spec.yaml", "model.keras", "history.csv", "metrics.json", "predictions.csv",
             "run.json", "checkpoints/LATEST", "checkpoints/epoch-0001/last.keras",
             "checkpoints/epoch-0001/state.json", "model_summary.txt",
             "plots/learning_curves.png", "plots/confusion_matrix.png",
             "classification_report.csv", "report.html"}


def tree_snapshot(folder: Path) -> dict:
    """Every file below ``folder`` (relative POSIX path -> bytes)."""
    return {path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One trained mnist run; its folder's bytes and the compiled predictions right after."""
    folder = tmp_path_factory.mktemp("run")
    pipeline = write(folder, "tiny.yaml", TINY_MNIST)
    compiled = compile_pipeline(pipeline)
    result = compiled.run(output_dir=str(folder / "runs"), verbose=0)
    snapshot = tree_snapshot(result.run_dir)
    return SimpleNamespace(pipeline=pipeline, compiled=compiled, result=result,
                           output=folder / "runs", snapshot=snapshot,
                           predicted=compiled.predict())


saves_model = pytest.mark.filterwarnings(KERAS_SAVE_WARNING)


@saves_model
def test_run_writes_a_new_folder_with_every_artifact(first_run):
    assert first_run.result.run_dir.parent == first_run.output
    assert set(first_run.snapshot) == RUN_FILES  # no temporary files left behind
    metrics = json.loads(first_run.snapshot["metrics.json"])
    assert set(metrics["test"]) == {"loss", "accuracy"}
    assert metrics["epochs_run"] == 1
    record = json.loads(first_run.snapshot["run.json"])
    assert record["seed"] == 7 and record["data"]["splits"] == {
        "train": 4000, "validation": 500, "test": 500}
    history = first_run.snapshot["history.csv"].decode().splitlines()
    assert history[0].split(",")[0] == "epoch" and len(history) == 2


@saves_model
def test_running_again_makes_a_second_folder_and_leaves_the_first_byte_identical(first_run):
    again = compile_pipeline(first_run.pipeline).run(output_dir=str(first_run.output),
                                                     verbose=0)
    assert again.run_dir != first_run.result.run_dir
    assert set(os.listdir(first_run.output)) == {first_run.result.run_dir.name,
                                                 again.run_dir.name}
    assert tree_snapshot(first_run.result.run_dir) == first_run.snapshot


@saves_model
def test_predictions_csv_has_the_documented_columns_and_one_row_per_test_example(first_run):
    rows = list(csv.reader(first_run.snapshot["predictions.csv"].decode().splitlines()))
    assert rows[0] == ["index", "input", "predicted", "predicted_name", "confidence", "true",
                       "true_name"]
    body = rows[1:]
    assert len(body) == 500
    assert [int(row[0]) for row in body] == list(range(500))
    test = first_run.compiled.data.test
    # input: the example's position in the source's arrays, before the shuffled split
    assert [row[1] for row in body] == [str(i) for i in test.ids]
    assert sorted(int(row[1]) for row in body) != list(range(500))  # not the split position
    assert [int(row[2]) for row in body] == first_run.predicted.tolist()
    assert [int(row[5]) for row in body] == test.y.tolist()
    assert all(0.0 <= float(row[4]) <= 1.0 for row in body)


@saves_model
def test_resolved_spec_yaml_validates_again_with_defaults_filled_in(first_run):
    text = first_run.snapshot["spec.yaml"].decode()
    result = validate_text(text, "spec.yaml")
    assert result.errors == [] and result.spec is not None
    assert "batch_size: 64" in text and "cache: auto" in text and "shuffle: 10000" in text
    assert result.spec.data.batch_size == 64 and result.spec.data.cache == "auto"
    assert result.spec.data.split.validation == 0.1
    assert result.spec.name == "tiny"


@saves_model
def test_saved_model_loads_safely_and_predicts_the_same_classes_from_raw_inputs(first_run):
    model = keras.saving.load_model(first_run.result.run_dir / "model.keras", safe_mode=True)
    raw = first_run.compiled.data.test.x
    assert raw.dtype == np.uint8 and raw.shape == (500, 28, 28)
    probabilities = model.predict(raw, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.array_equal(probabilities.argmax(axis=1), first_run.predicted)
    assert np.array_equal(first_run.result.predicted, first_run.predicted)
