"""A file never makes kerapipe read outside the folders it names: every spec value that
reaches a Keras API taking a file is confined to the pipeline's folder.

The audit (``validate.FILE_ARGUMENTS``): a layer's ``vocabulary`` (tests/test_file_
arguments.py, tests/test_hostile_semantics.py) and a backbone's ``weights``, which Keras
takes for a path whenever it is neither ``null`` nor ``imagenet``
(``keras.applications.*: model.load_weights(weights)``). Callbacks write only inside the
run folder (tests/test_callbacks.py). Nothing here downloads: no test builds a backbone
with ``weights: imagenet``.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kerapipe.spec.validate import validate_file

WEIGHTS_KEY = "model.layers[0].applications.MobileNetV3Small.weights"
WEIGHTS_LINE = 10

PIPELINE = textwrap.dedent("""\
    kerapipe: 1
    name: backbone
    seed: 1
    data:
      source: {npz: data.npz}
      split: {validation: 0.25, test: 0.25}
      batch_size: 8
    model:
      layers:
        - applications.MobileNetV3Small: {include_top: false, weights: WEIGHTS, pooling: avg}
        - Dense: {units: 2}
    train: {epochs: 1}
    """)


def write_pipeline(folder: Path, weights: str, layer: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = PIPELINE.replace("WEIGHTS", weights)
    if layer:
        text = text.replace("- applications.MobileNetV3Small: {include_top: false, weights: "
                            f"{weights}, pooling: avg}}", layer)
    pipeline = folder / "p.yaml"
    pipeline.write_text(text)
    return pipeline


def write_images(folder: Path, count: int = 16) -> None:
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", x=rng.uniform(0, 255, (count, 32, 32, 3)).astype("float32"),
             y=np.arange(count) % 2)


def errors_of(pipeline: Path) -> list[tuple[str, str, int]]:
    return [(i.code, i.key_path, i.line) for i in validate_file(pipeline).errors]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file beside the pipeline's folder, which no pipeline in it may read."""
    (tmp_path / "elsewhere").mkdir()
    secret = tmp_path / "elsewhere" / "secret.weights.h5"
    secret.write_bytes(b"not for the pipeline")
    return secret


# --- validate: each hostile weights value is an error at its key -------------------------

@pytest.mark.parametrize("weights", [
    "/etc/passwd", "../elsewhere/secret.weights.h5", "a/../../elsewhere/secret.weights.h5",
    "'~/.keras/w.weights.h5'", "'http://example.com/w.weights.h5'",
    "'file:///etc/w.weights.h5'", "'gs://bucket/w.weights.h5'", '"w\\0.weights.h5"',
], ids=["absolute", "dot-dot", "dot-dot-inside-first", "home", "http", "file-url", "gs-url",
        "nul-byte"])
def test_a_backbone_weights_path_outside_the_pipeline_folder_is_refused_at_its_key(
        tmp_path, outside, weights):
    pipeline = write_pipeline(tmp_path / "pipe", weights)
    assert errors_of(pipeline) == [("outside-path", WEIGHTS_KEY, WEIGHTS_LINE)]
    (issue,) = validate_file(pipeline).errors
    assert issue.file == str(pipeline)
    assert "a backbone's weights file must be next to the pipeline file" in issue.message
    assert "weights: imagenet" in issue.message


def test_a_weights_link_that_leads_out_of_the_folder_is_refused(tmp_path, outside):
    folder = tmp_path / "pipe"
    folder.mkdir()
    (folder / "w.weights.h5").symlink_to(outside)
    assert errors_of(write_pipeline(folder, "w.weights.h5")) == [
        ("outside-path", WEIGHTS_KEY, WEIGHTS_LINE)]


def test_the_outside_path_message_does_not_tell_whether_the_file_exists(tmp_path, outside):
    messages = []
    for target in (outside, outside.with_name("missing.weights.h5")):
        (issue,) = validate_file(write_pipeline(tmp_path / "pipe", f"'{target}'")).errors
        messages.append(issue.message.replace(str(target), "<path>"))
    assert messages[0] == messages[1]


def test_a_backbone_in_a_mapping_of_another_layer_is_checked_too(tmp_path):
    layer = ("- Pipeline: {layers: [{applications.MobileNetV3Small: {include_top: false, "
             "weights: /etc/passwd}}]}")
    pipeline = write_pipeline(tmp_path / "pipe", "/etc/passwd", layer)
    assert ("outside-path", "model.layers[0].Pipeline.layers[0].applications.MobileNetV3Small"
            ".weights", WEIGHTS_LINE) in errors_of(pipeline)


def test_weights_given_to_a_block_a_set_or_a_search_are_checked_the_same(tmp_path):
    folder = tmp_path / "pipe"
    folder.mkdir()
    block = folder / "block.yaml"
    block.write_text(PIPELINE.replace(
        "  layers:\n    - applications.MobileNetV3Small: {include_top: false, weights: "
        "WEIGHTS, pooling: avg}",
        "  blocks:\n    bb:\n      params: {w: str}\n      layers:\n        - applications"
        ".MobileNetV3Small: {include_top: false, weights: $w, pooling: avg}\n"
        "  layers:\n    - bb: {w: /etc/passwd}"))
    assert [(i.code, i.key_path) for i in validate_file(block).errors] == [
        ("outside-path", "model.blocks.bb.layers[0].applications.MobileNetV3Small.weights")]
    pipeline = write_pipeline(folder, "null")
    result = validate_file(pipeline, [f"{WEIGHTS_KEY}=/etc/passwd"])
    assert [(i.code, i.key_path) for i in result.errors] == [("outside-path", WEIGHTS_KEY)]
    pipeline.write_text(pipeline.read_text() + "tune:\n  space:\n    " + WEIGHTS_KEY
                        + ": [null, /etc/passwd]\n  objective: val_loss\n")
    (issue,) = validate_file(pipeline).errors
    assert issue.code == "bad-tune-value" and "error[outside-path]" in issue.message


@pytest.mark.parametrize("weights, code, hint", [
    ("ImageNet", "unknown-value", "Did you mean 'imagenet'?"),
    ("imagenett", "unknown-value", "Did you mean 'imagenet'?"),
    ("w.keras", "unknown-value", "Received: weights='w.keras'"),
    ("w.weights.json", "unknown-value", "Received: weights='w.weights.json'"),
    ("checkpoints", "unknown-value", "Received: weights='checkpoints'"),
    ("3", "wrong-type", "Received: weights=3"),
    ("[1, 2]", "wrong-type", "Received: weights=[1, 2]"),
], ids=["capitalised-imagenet", "misspelt-imagenet", "keras-archive", "sharded-json", "folder", "number", "list"])
def test_backbone_weights_are_null_imagenet_or_an_h5_file(tmp_path, weights, code, hint):
    pipeline = write_pipeline(tmp_path / "pipe", weights)
    assert errors_of(pipeline) == [(code, WEIGHTS_KEY, WEIGHTS_LINE)]
    (issue,) = validate_file(pipeline).errors
    assert hint in issue.message and ".h5 weights file" in issue.message


@pytest.mark.parametrize("weights", ["null", "imagenet", "w.weights.h5", "sub/w.h5",
                                     "./sub/../w.weights.h5"])
def test_null_imagenet_and_a_file_inside_the_folder_are_accepted(tmp_path, weights):
    folder = tmp_path / "pipe"
    (folder / "sub").mkdir(parents=True)
    for name in ("w.weights.h5", "sub/w.h5"):
        (folder / name).write_bytes(b"")
    write_images(folder)
    assert errors_of(write_pipeline(folder, weights)) == []


def test_a_missing_weights_file_is_a_missing_data_warning_at_its_key(tmp_path):
    folder = tmp_path / "pipe"
    folder.mkdir()
    write_images(folder)
    result = validate_file(write_pipeline(folder, "w.weights.h5"))
    assert [(i.code, i.key_path, i.line) for i in result.issues] == [
        ("missing-data", WEIGHTS_KEY, WEIGHTS_LINE)]
    assert str(folder / "w.weights.h5") in result.issues[0].message


def test_pipeline_paths_names_the_weights_file_as_confined(tmp_path):
    from kerapipe.spec.data_paths import pipeline_paths
    from kerapipe.spec.issues import format_path

    folder = tmp_path / "pipe"
    folder.mkdir()
    write_images(folder)
    (folder / "w.weights.h5").write_bytes(b"")
    spec = validate_file(write_pipeline(folder, "w.weights.h5")).spec
    assert (WEIGHTS_KEY, "w.weights.h5", "file", True) in [
        (format_path(path), value, what, inside)
        for path, value, what, inside in pipeline_paths(spec)]


def test_vocabulary_is_still_a_file_argument_in_any_layer():
    from kerapipe.spec.validate import is_file_argument

    assert is_file_argument("StringLookup", "vocabulary", "v.txt")
    assert is_file_argument("layers", "vocabulary", "v.txt")
    assert is_file_argument("applications.VGG16", "weights", "w.h5")
    assert not is_file_argument("applications.VGG16", "weights", "imagenet")
    assert not is_file_argument("applications.VGG16", "weights", None)
    assert not is_file_argument("Embedding", "weights", "w.h5")  # an array there, not a file


# --- compile and run: Keras never gets a path outside -------------------------------------

@pytest.fixture
def backbone_calls(monkeypatch) -> list[dict]:
    """Every call of ``keras.applications.MobileNetV3Small``, recorded; none builds."""
    import keras

    calls: list[dict] = []

    def record(**kwargs):
        calls.append(kwargs)
        raise AssertionError("the backbone was built")

    monkeypatch.setattr(keras.applications, "MobileNetV3Small", record)
    return calls


@pytest.mark.parametrize("weights", ["../secret.weights.h5", "/etc/passwd",
                                     "http://example.com/w.h5"])
def test_the_compile_side_refuses_outside_weights_on_its_own(tmp_path, backbone_calls,
                                                              weights):
    """Defence in depth: a spec built past validation still cannot reach Keras."""
    from kerapipe.compiler.build import build_layer
    from kerapipe.errors import SpecError
    from kerapipe.spec.model import LayerSpec

    (tmp_path / "secret.weights.h5").write_bytes(b"x")
    (tmp_path / "pipe").mkdir()
    spec = LayerSpec("applications.MobileNetV3Small", {"include_top": False, "weights": weights})
    with pytest.raises(SpecError) as caught:
        build_layer(spec, path=("model", "layers", 0, "applications.MobileNetV3Small"),
                    base_dir=str(tmp_path / "pipe"), input_shape=(None, 32, 32, 3))
    assert [(i.code, i.key_path) for i in caught.value.issues] == [("outside-path", WEIGHTS_KEY)]
    assert backbone_calls == []


def test_the_compile_side_finds_weights_in_a_mapping_of_another_layer(tmp_path):
    from kerapipe.compiler.build import build_layer
    from kerapipe.errors import SpecError
    from kerapipe.spec.model import LayerSpec

    spec = LayerSpec("Pipeline", {"layers": [
        {"applications.MobileNetV3Small": {"weights": "/etc/passwd"}}]})
    with pytest.raises(SpecError) as caught:
        build_layer(spec, path=("model", "layers", 0, "Pipeline"), base_dir=str(tmp_path))
    assert [(i.code, i.key_path) for i in caught.value.issues] == [(
        "outside-path",
        "model.layers[0].Pipeline.layers[0].applications.MobileNetV3Small.weights")]


def test_a_mapping_argument_without_a_file_reaches_keras_unchanged(tmp_path):
    from kerapipe.compiler.build import build_layer
    from kerapipe.spec.model import LayerSpec

    initializer = {"class_name": "Constant", "config": {"value": 0.5}}
    layer = build_layer(LayerSpec("Dense", {"units": 2, "kernel_initializer": initializer}),
                        base_dir=str(tmp_path))
    layer.build((None, 3))
    np.testing.assert_array_equal(layer.kernel.numpy(), np.full((3, 2), 0.5, "float32"))


@pytest.mark.parametrize("command", ["plan", "run"])
def test_plan_and_run_refuse_outside_weights_before_keras_sees_them(tmp_path, call_main,
                                                                    backbone_calls, outside,
                                                                    command):
    folder = tmp_path / "pipe"
    folder.mkdir()
    write_images(folder)
    pipeline = write_pipeline(folder, f"'{outside}'")
    extra = ("--output", tmp_path / "runs") if command == "run" else ()
    exit_code, out, err = call_main(command, pipeline, *extra)
    assert exit_code == 2, err
    assert f"p.yaml:{WEIGHTS_LINE}:" in err and "error[outside-path]" in err
    assert WEIGHTS_KEY in err and "Traceback" not in out + err
    assert backbone_calls == []
    assert not (tmp_path / "runs").exists()


def test_relative_weights_are_read_from_the_pipeline_folder_not_the_cwd(tmp_path, monkeypatch):
    import keras

    from kerapipe import compile_pipeline

    folder = tmp_path / "pipe"
    folder.mkdir()
    write_images(folder)
    saved = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), include_top=False,
                                                weights=None, pooling="avg")
    saved.save_weights(folder / "w.weights.h5")
    (tmp_path / "w.weights.h5").write_bytes(b"what a cwd-relative read would take")
    monkeypatch.chdir(tmp_path)
    compiled = compile_pipeline(os.path.join("pipe", write_pipeline(folder, "w.weights.h5").name))
    backbone = next(layer for layer in compiled.model.layers
                    if isinstance(layer, keras.Model))
    for got, want in zip(backbone.get_weights(), saved.get_weights()):
        np.testing.assert_array_equal(got, want)


@pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square:UserWarning")
def test_imagenet_weights_survive_the_build_that_defers_allocation(tmp_path, monkeypatch):
    """The model is built with its variables deferred (to refuse one too large before
    allocating): what Keras loads into a backbone then must still be there after. The
    "download" is a file of known weights (monkeypatched get_file: nothing downloads)."""
    import keras
    from keras.src.utils import file_utils

    from kerapipe import compile_pipeline

    folder = tmp_path / "pipe"
    folder.mkdir()
    write_images(folder)
    saved = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), include_top=False,
                                                weights=None, pooling="avg")
    saved.save_weights(tmp_path / "imagenet.weights.h5")
    asked = []
    monkeypatch.setattr(file_utils, "get_file", lambda fname, *args, **kwargs: (
        asked.append(fname), str(tmp_path / "imagenet.weights.h5"))[1])
    compiled = compile_pipeline(str(write_pipeline(folder, "imagenet")))
    assert asked == ["weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"]
    backbone = next(layer for layer in compiled.model.layers
                    if isinstance(layer, keras.Model))
    for got, want in zip(backbone.get_weights(), saved.get_weights()):
        np.testing.assert_array_equal(got, want)


def _external_link(path: Path, other: Path) -> None:
    import h5py

    with h5py.File(path, "w") as handle:
        handle["layers"] = h5py.ExternalLink(str(other), "/x")


def _external_storage(path: Path, other: Path) -> None:
    import h5py

    with h5py.File(path, "w") as handle:
        handle.create_dataset("vars", shape=(8,), dtype="u1", external=[(str(other), 0, 8)])


def _virtual_dataset(path: Path, other: Path) -> None:
    import h5py

    layout = h5py.VirtualLayout(shape=(3,), dtype="f8")
    layout[:] = h5py.VirtualSource(str(other), "x", shape=(3,))
    with h5py.File(path, "w") as handle:
        handle.create_virtual_dataset("vars", layout)


def _not_hdf5(path: Path, other: Path) -> None:
    path.write_text("root:x:0:0:root:/root:/bin/bash\n")


def _fifo(path: Path, other: Path) -> None:
    os.mkfifo(path)  # opening it to read would wait for a writer forever


@pytest.mark.parametrize("write, said", [
    (_external_link, "is a link to another file"),
    (_external_storage, "keeps its values in another file"),
    (_virtual_dataset, "is a virtual dataset"),
    (_not_hdf5, "is not an HDF5 file"),
    (_fifo, "is not a regular file"),
], ids=["external-link", "external-storage", "virtual-dataset", "not-hdf5", "fifo"])
def test_a_weights_file_that_reads_other_files_is_refused_before_keras_opens_it(
        tmp_path, call_main, backbone_calls, outside, write, said):
    """HDF5 reads what the file says: external storage would load the bytes of any file
    (here ``outside``) into the weights, and the run would save them in model.keras."""
    folder = tmp_path / "pipe"
    folder.mkdir()
    write_images(folder)
    write(folder / "w.weights.h5", outside)
    pipeline = write_pipeline(folder, "w.weights.h5")
    assert errors_of(pipeline) == []  # validate never opens it
    exit_code, out, err = call_main("run", pipeline, "--output", tmp_path / "runs")
    assert exit_code == 3, err
    assert said in err and "applications.MobileNetV3Small" in err
    assert "Traceback" not in out + err
    assert backbone_calls == []


def test_a_weights_file_with_a_cycle_of_hard_links_is_checked_once_per_group(tmp_path):
    import h5py

    from kerapipe.compiler.layer_classes import check_weights_file

    path = tmp_path / "w.weights.h5"
    with h5py.File(path, "w") as handle:
        group = handle.create_group("a")
        group["x"] = np.zeros(3)
        group["again"] = handle["a"]  # a -> a
        handle["soft"] = h5py.SoftLink("/a")
    check_weights_file("applications.MobileNetV3Small", str(path))  # no error, it ends
