"""The TensorFlow Datasets source (``source: {tfds: NAME}``), without the network and
without tensorflow-datasets (an optional extra, not in the test extra): the package is
monkeypatched away (not installed) or replaced by a small stand-in with TFDS's builder
interface (offline, unknown names, and the streamed splits).
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from kerapipe import load_spec
from kerapipe.errors import DataError, SpecError


def spec_of(tfds, **data):
    return load_spec({"kerapipe": 1, "data": {"source": {"tfds": tfds}, **data},
                      "model": {"layers": [{"Flatten": {}}, {"Dense": {"units": 3}}]}})


def load(spec, base="."):
    from kerapipe.compiler.sources.loading import load_data

    return load_data(spec, base)


class NotFound(Exception):
    pass


class Image:
    shape = (2, 2, 1)


def fake_tfds(sizes=None, offline: bool = False, supervised=("image", "label")):
    """A stand-in for ``tensorflow_datasets``: ``builder(name)`` of a set of small images
    whose pixels hold their position, labels ``position % 3``; records what it was asked."""
    import tensorflow as tf

    sizes = sizes or {"train": 12, "test": 6}
    calls: list = []

    class Builder:
        def __init__(self, name):
            if name == "nosuchset":
                raise NotFound("Dataset nosuchset not found.")
            self.info = types.SimpleNamespace(
                supervised_keys=supervised, version="3.0.1", splits=dict(sizes),
                features={"image": Image(), "label": types.SimpleNamespace(
                    names=["zero", "one", "two"])})

        def download_and_prepare(self):
            calls.append("download")
            if offline:
                raise ConnectionError("Failed to establish a new connection")

        def as_dataset(self, split, shuffle_files, as_supervised, decoders=None):
            calls.append((split, decoders))
            if split not in sizes:
                raise ValueError(f"Unknown split '{split}'.")
            start = 100 if split == "test" else 0
            positions = np.arange(start, start + sizes[split])
            images = np.repeat(positions.astype(np.uint8), 4).reshape(-1, 2, 2, 1)
            return tf.data.Dataset.from_tensor_slices((images, positions % 3))

    module = types.ModuleType("tensorflow_datasets")
    module.builder = Builder
    module.features = types.SimpleNamespace(Image=Image)
    module.decode = types.SimpleNamespace(SkipDecoding=lambda: "skip")
    module.core = types.SimpleNamespace(DatasetNotFoundError=NotFound)
    return module, calls


# --- spec side ------------------------------------------------------------------------------

def test_a_tfds_source_is_a_name_with_a_split_and_an_optional_test_split():
    source = spec_of("mnist").data.source
    assert source.kind == "tfds" and source.tfds.name == "mnist"
    assert source.tfds.split == "train" and source.tfds.test_split is None


@pytest.mark.parametrize("tfds, key", [
    ({"name": "../mnist"}, "name"),
    ({"name": "mnist", "split": "train; rm"}, "split"),
    ({"name": "mnist", "test_split": "test\n"}, "test_split"),
], ids=["name", "split", "test-split"])
def test_a_name_or_split_tfds_would_not_take_is_refused_at_its_key(tfds, key):
    with pytest.raises(SpecError) as err:
        spec_of(tfds)
    assert [(i.code, i.path) for i in err.value.issues] == [
        ("unknown-value", ("data", "source", "tfds", key))]


def test_the_tfds_extra_is_not_in_the_test_extra():
    import configparser
    from pathlib import Path

    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parent.parent / "setup.cfg")
    extras = config["options.extras_require"]
    assert "tensorflow-datasets" in extras["tfds"]
    assert "tensorflow-datasets" not in extras["test"]


# --- not installed, offline, unknown --------------------------------------------------------

def test_without_tensorflow_datasets_the_error_gives_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails
    with pytest.raises(DataError) as err:
        load(spec_of("mnist"))
    assert str(err.value).startswith("tfds:mnist: needs TensorFlow Datasets")
    assert "pip install kerapipe[tfds]" in str(err.value)


def test_offline_the_error_names_the_cache_folder(monkeypatch, tmp_path):
    module, _ = fake_tfds(offline=True)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", module)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError) as err:
        load(spec_of("mnist"))
    message = str(err.value)
    assert message.startswith("tfds:mnist: cannot load TensorFlow Datasets 'mnist' "
                              "(ConnectionError: Failed to establish a new connection)")
    assert f"downloads it once into {tmp_path / 'cache'}" in message


def test_an_unknown_name_points_at_the_catalogue(monkeypatch):
    module, _ = fake_tfds()
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", module)
    with pytest.raises(DataError, match="has no set 'nosuchset'.*catalog"):
        load(spec_of("nosuchset"))


def test_an_unknown_split_lists_the_splits(monkeypatch):
    module, _ = fake_tfds()
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", module)
    with pytest.raises(DataError, match="cannot read the split 'valid'.*splits: train, test"):
        load(spec_of({"name": "mnist", "split": "valid"}))


def test_a_set_without_supervised_keys_is_explained(monkeypatch):
    module, _ = fake_tfds(supervised=None)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", module)
    with pytest.raises(DataError, match="declares no \\(feature, label\\) pair"):
        load(spec_of("mnist"))


# --- the splits, streamed -------------------------------------------------------------------

def test_the_first_pass_skips_image_decoding_and_the_splits_stream_their_examples(monkeypatch):
    module, calls = fake_tfds()
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", module)
    data = load(spec_of("mnist", split={"validation": 0.25, "test": 0.25}))
    assert calls[:2] == ["download", ("train", {"image": "skip"})]
    assert data.class_names == ["zero", "one", "two"] and data.example_shape == (2, 2, 1)
    assert "tfds:mnist (12 train)" == data.description
    for split in (data.train, data.validation, data.test):
        pairs = sorted((int(x[0, 0, 0]), int(y)) for x, y in
                       data.source.examples(split).as_numpy_iterator())
        assert pairs == [(i, i % 3) for i in sorted(split.ids.tolist())]
        in_order = [int(x[0, 0, 0]) for x in data.source.features(split).as_numpy_iterator()]
        assert in_order == split.ids.tolist()


def test_a_test_split_is_the_test_split_with_its_own_ids(monkeypatch):
    module, calls = fake_tfds()
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", module)
    data = load(spec_of({"name": "mnist", "test_split": "test"}, split={"validation": 0.25}))
    assert data.test.ids.tolist() == list(range(6))
    got = [(int(x[0, 0, 0]), int(y)) for x, y in
           data.source.examples(data.test).as_numpy_iterator()]
    assert got == [(100 + i, (100 + i) % 3) for i in range(6)]
    assert len(data.train) + len(data.validation) == 12
    calls.clear()
    list(data.source.examples(data.train).as_numpy_iterator())
    assert [c[0] for c in calls] == ["train"]  # the test split is not read for training
