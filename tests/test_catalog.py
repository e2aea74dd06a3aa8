"""The shipped Keras name catalogue: in step with the installed Keras, and right on key facts.

The catalogue is ``kerapipe/spec/keras_catalog.json``, written by
``scripts/gen_keras_catalog.py``. If the first test fails after a Keras (or keras-hub)
upgrade, regenerate it: ``.venv/bin/python scripts/gen_keras_catalog.py``. Its keras-hub
part is compared only where keras-hub is installed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CATALOG_PATH = ROOT / "kerapipe" / "spec" / "keras_catalog.json"
SCRIPT_PATH = ROOT / "scripts" / "gen_keras_catalog.py"


@pytest.fixture(scope="module")
def catalog() -> dict[str, Any]:
    return json.loads(CATALOG_PATH.read_text("utf-8"))


@pytest.fixture(scope="module")
def keras() -> ModuleType:
    return pytest.importorskip("keras")


@pytest.fixture(scope="module")
def generator(keras: ModuleType) -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_keras_catalog", SCRIPT_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- in step with the installed Keras ------------------------------------------------


def test_shipped_catalog_equals_fresh_build_from_installed_keras(
    catalog: dict[str, Any], generator: ModuleType
) -> None:
    fresh = generator.build_catalog()
    differences = generator.diff_summary(catalog, fresh)
    assert not differences, (
        "keras_catalog.json is stale; run scripts/gen_keras_catalog.py:\n" + "\n".join(differences)
    )
    assert CATALOG_PATH.read_text("utf-8") == generator.render(fresh)


def test_without_keras_hub_the_hub_part_is_kept_as_shipped(
    catalog: dict[str, Any], generator: ModuleType, keras: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check compares the Keras part always, the keras-hub part only where keras-hub
    is installed (CI installs it; a machine without it keeps the shipped names)."""
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    kept = generator.hub_sections(keras, set(catalog["layers"]), catalog)
    assert kept == {key: catalog[key] for key in generator.HUB_SECTIONS}
    assert kept["hub_layers"]  # there is a hub part to keep


def test_the_hub_part_is_built_from_the_installed_keras_hub(
    catalog: dict[str, Any], generator: ModuleType, keras: ModuleType,
) -> None:
    pytest.importorskip("keras_hub")
    keras_names = {n for n, e in catalog["layers"].items() if "origin" not in e}
    built = generator.build_hub(keras, keras_names | set(catalog["refused_layers"]))
    assert built == {key: catalog[key] for key in generator.HUB_SECTIONS}


def test_every_alias_resolves_in_keras(catalog: dict[str, Any], keras: ModuleType) -> None:
    for family in ("losses", "metrics", "optimizers"):
        get = getattr(keras, family).get
        for name, entry in catalog[family].items():
            for alias in entry["aliases"]:
                assert get(alias) is not None, (family, name, alias)


def test_keras_builds_dense_from_required_params_only(keras: ModuleType) -> None:
    assert keras.layers.Dense(units=3).units == 3


def test_keras_rejects_a_dense_param_missing_from_catalogue(
    catalog: dict[str, Any], keras: ModuleType
) -> None:
    assert "unit" not in catalog["layers"]["Dense"]["params"]
    with pytest.raises(ValueError, match="Unrecognized keyword arguments"):
        keras.layers.Dense(units=3, unit=3)


def test_conv2d_rank_is_fixed_by_keras_so_not_a_param(
    catalog: dict[str, Any], keras: ModuleType
) -> None:
    # Conv2D passes rank=2 to its base class itself; a caller cannot pass it.
    assert "rank" not in catalog["layers"]["Conv2D"]["params"]
    with pytest.raises(TypeError):
        keras.layers.Conv2D(filters=2, kernel_size=3, rank=2)


def test_gru_cell_is_built_by_keras_so_not_a_param(catalog: dict[str, Any]) -> None:
    assert "cell" not in catalog["layers"]["GRU"]["params"]
    assert catalog["layers"]["GRU"]["required"] == ["units"]


# --- spot checks on the JSON alone -----------------------------------------------------


def test_dense_requires_units(catalog: dict[str, Any]) -> None:
    assert catalog["layers"]["Dense"]["required"] == ["units"]


def test_dense_accepts_activation_and_base_layer_params(catalog: dict[str, Any]) -> None:
    params = set(catalog["layers"]["Dense"]["params"])
    assert {"units", "activation", "name", "dtype", "trainable"} <= params


def test_layers_accept_input_shape_from_base_layer(catalog: dict[str, Any]) -> None:
    assert {"input_shape", "input_dim"} <= set(catalog["layers"]["Dense"]["params"])


def test_conv2d_requires_filters_and_kernel_size(catalog: dict[str, Any]) -> None:
    assert catalog["layers"]["Conv2D"]["required"] == ["filters", "kernel_size"]


def test_conv2d_aliases_are_their_own_layer_entries(catalog: dict[str, Any]) -> None:
    layers = catalog["layers"]
    assert layers["Convolution2D"] == layers["Conv2D"]
    assert layers["MaxPool2D"] == layers["MaxPooling2D"]


@pytest.mark.parametrize("name", ["Lambda", "TFSMLayer"])
def test_code_running_layers_are_refused_not_offered(catalog: dict[str, Any], name: str) -> None:
    assert name in catalog["refused_layers"]
    assert catalog["refused_layers"][name]  # a reason to show the user
    assert name not in catalog["layers"]


def test_refused_and_offered_layers_do_not_overlap(catalog: dict[str, Any]) -> None:
    assert not set(catalog["refused_layers"]) & set(catalog["layers"])
    offered = set(catalog["layers"]) | set(catalog["hub_layers"])
    assert not set(catalog["refused_hub_layers"]) & offered


def test_hub_names_keras_also_has_are_keras_layers_only(catalog: dict[str, Any]) -> None:
    for name in catalog["hub_shadowed"]:
        assert name in catalog["layers"] and "origin" not in catalog["layers"][name], name
        assert name not in catalog["hub_layers"]


def test_every_layer_entry_has_a_known_origin(catalog: dict[str, Any]) -> None:
    for name, entry in catalog["layers"].items():
        expected = "applications" if name.startswith("applications.") else None
        assert entry.get("origin") == expected, name
        if expected:
            assert name.removeprefix("applications.") in catalog["applications"], name
    assert {entry["origin"] for entry in catalog["hub_layers"].values()} == {"keras_hub"}


def test_backbones_take_no_input_arguments_kerapipe_gives(catalog: dict[str, Any]) -> None:
    entry = catalog["layers"]["applications.MobileNetV3Small"]
    assert not {"input_shape", "input_tensor"} & set(entry["params"])
    assert {"include_top", "weights", "pooling", "alpha", "include_preprocessing"} \
        <= set(entry["params"])
    assert catalog["applications"]["InceptionV3"]["min_size"] == 75
    assert catalog["applications"]["Xception"]["min_size"] == 71
    assert catalog["applications"]["MobileNetV3Small"]["min_size"] == 32


@pytest.mark.parametrize("name", ["relu", "softmax"])
def test_common_activations_are_listed(catalog: dict[str, Any], name: str) -> None:
    assert name in catalog["activations"]


def test_activations_exclude_helper_functions(catalog: dict[str, Any]) -> None:
    assert not {"get", "serialize", "deserialize"} & set(catalog["activations"])


def test_adam_is_an_alias_of_adam_optimizer(catalog: dict[str, Any]) -> None:
    assert "adam" in catalog["optimizers"]["Adam"]["aliases"]


def test_sparse_categorical_crossentropy_is_an_alias_of_its_loss_class(
    catalog: dict[str, Any],
) -> None:
    loss = catalog["losses"]["SparseCategoricalCrossentropy"]
    assert "sparse_categorical_crossentropy" in loss["aliases"]
    assert "from_logits" in loss["params"]


def test_exponential_decay_requires_rate_steps_and_initial_rate(catalog: dict[str, Any]) -> None:
    assert catalog["schedules"]["ExponentialDecay"]["required"] == [
        "decay_rate",
        "decay_steps",
        "initial_learning_rate",
    ]


def test_sparse_categorical_accuracy_logs_under_snake_case_name(catalog: dict[str, Any]) -> None:
    metric = catalog["metrics"]["SparseCategoricalAccuracy"]
    assert metric["logged_name"] == "sparse_categorical_accuracy"


def test_every_entry_lists_required_among_sorted_params(catalog: dict[str, Any]) -> None:
    for family in ("layers", "hub_layers", "losses", "metrics", "optimizers", "schedules"):
        for name, entry in catalog[family].items():
            assert entry["params"] == sorted(entry["params"]), (family, name)
            assert entry["required"] == sorted(entry["required"]), (family, name)
            assert set(entry["required"]) <= set(entry["params"]), (family, name)
