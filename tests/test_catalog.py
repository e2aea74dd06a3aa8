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
DOCS_PATH = ROOT / "kerapipe" / "spec" / "keras_docs.json"
SCRIPT_PATH = ROOT / "scripts" / "gen_keras_catalog.py"


@pytest.fixture(scope="module")
def catalog() -> dict[str, Any]:
    return json.loads(CATALOG_PATH.read_text("utf-8"))


@pytest.fixture(scope="module")
def docs() -> dict[str, Any]:
    return json.loads(DOCS_PATH.read_text("utf-8"))


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


def test_shipped_catalog_and_docs_equal_fresh_build_from_installed_keras(
    catalog: dict[str, Any], docs: dict[str, Any], generator: ModuleType
) -> None:
    fresh_docs: dict[str, Any] = {}
    fresh = generator.build_catalog(docs=fresh_docs)
    for name, shipped, built in (("keras_catalog.json", catalog, fresh),
                                 ("keras_docs.json", docs, fresh_docs)):
        differences = generator.diff_summary(shipped, built)
        assert not differences, (
            f"{name} is stale; run scripts/gen_keras_catalog.py:\n" + "\n".join(differences))
    assert CATALOG_PATH.read_text("utf-8") == generator.render(fresh)
    assert DOCS_PATH.read_text("utf-8") == generator.render(fresh_docs)


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


# --- typed arguments and their docs ------------------------------------------------------


def test_loaded_entries_carry_their_typed_arguments_and_the_shared_types() -> None:
    from kerapipe.spec.catalog import load_catalog

    catalog = load_catalog()
    dense = catalog.layers.get("Dense")
    assert dense.args["units"] == {"type": "integer", "minimum": 1}
    assert dense.args["activation"] == {"$ref": "#/$defs/activation"}
    assert "relu" in catalog.arg_defs["activation"]["anyOf"][0]["enum"]
    assert "glorot_uniform" in catalog.arg_defs["initializer"]["anyOf"][0]["enum"]
    hash(dense)  # entries stay hashable with their args


@pytest.mark.parametrize("layer, arg, fragment", [
    ("Dropout", "rate", {"type": "number", "minimum": 0, "maximum": 1}),
    ("Conv2D", "padding", {"enum": ["valid", "same"]}),
    ("Conv1D", "padding", {"enum": ["valid", "same", "causal"]}),
    ("Conv2D", "kernel_size", {"anyOf": [
        {"type": "integer", "minimum": 1},
        {"type": "array", "items": {"type": "integer", "minimum": 1},
         "minItems": 2, "maxItems": 2}]}),
    ("MaxPooling3D", "strides", {"anyOf": [
        {"type": "integer", "minimum": 1},
        {"type": "array", "items": {"type": "integer", "minimum": 1},
         "minItems": 3, "maxItems": 3}, {"type": "null"}]}),
    ("LSTM", "recurrent_activation", {"$ref": "#/$defs/activation"}),
    ("BatchNormalization", "epsilon", {"type": "number"}),
    ("Embedding", "mask_zero", {"type": "boolean"}),
], ids=lambda v: v if isinstance(v, str) else "")
def test_keras_argument_types_are_read_from_keras(catalog: dict[str, Any], layer: str, arg: str,
                                                  fragment: dict) -> None:
    assert catalog["layers"][layer]["args"][arg] == fragment


@pytest.mark.parametrize("family, name, arg, fragment", [
    # read from Keras's own constants, where the docstring lists fewer
    ("layers", "Resizing", "interpolation",
     {"enum": ["bilinear", "nearest", "lanczos3", "lanczos5", "bicubic", "area"]}),
    ("losses", "CategoricalCrossentropy", "reduction",
     {"enum": ["sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight"]}),
    # as kerapipe accepts it: a step count in epochs
    ("schedules", "CosineDecay", "decay_steps",
     {"anyOf": [{"type": "integer"}, {"type": "object"}]}),
    # "(Optional) Integer class ID": the kind, and null
    ("metrics", "Precision", "class_id", {"type": ["integer", "null"]}),
    ("metrics", "RecallAtPrecision", "precision", {"type": "number", "minimum": 0, "maximum": 1}),
    ("optimizers", "Adam", "beta_1", {"type": "number"}),
    ("hub_layers", "TransformerEncoder", "num_heads", {"type": "integer"}),
    ("layers", "MultiHeadAttention", "num_heads", {"type": "integer"}),  # "Number of ..."
], ids=lambda v: v if isinstance(v, str) else "")
def test_other_families_are_typed_too(catalog: dict[str, Any], family: str, name: str, arg: str,
                                      fragment: dict) -> None:
    assert catalog[family][name]["args"][arg] == fragment


@pytest.mark.parametrize("family, name, arg", [
    ("optimizers", "Adam", "learning_rate"),  # a number or a schedule: OptimizerSpec's
    ("layers", "Rescaling", "scale"),  # "Float", yet a list per channel works
    ("layers", "RandAugment", "factor"),  # a float or a (min, max) pair
    ("layers", "applications.MobileNetV3Small", "weights"),  # or a weights file's path
    ("layers", "MelSpectrogram", "window"),  # or a tensor
    ("layers", "Softmax", "axis"),  # "Integer, or list of Integers"
], ids=lambda v: v)
def test_an_argument_that_takes_more_than_its_text_says_first_is_untyped(
        catalog: dict[str, Any], family: str, name: str, arg: str) -> None:
    assert arg in catalog[family][name]["params"]
    assert arg not in catalog[family][name].get("args", {})


def test_schedule_names_are_any_string_not_their_default(catalog: dict[str, Any]) -> None:
    assert catalog["schedules"]["CosineDecay"]["args"]["name"] == {"type": "string"}


def test_an_args_entry_indented_one_space_off_is_its_own_entry(generator: ModuleType) -> None:
    doc = """Summary.

    Args:
        padding: string, either `"valid"` or `"same"`.
            More about padding.
         output_padding: An integer or tuple/list of 3 integers.
        data_format: string.
    """
    texts = generator.docstrings.docstring_args(doc)
    assert texts == {"padding": 'string, either `"valid"` or `"same"`. More about padding.',
                     "output_padding": "An integer or tuple/list of 3 integers.",
                     "data_format": "string."}


def test_an_argument_keras_says_no_type_of_is_left_untyped(catalog: dict[str, Any]) -> None:
    # noise_shape is "1D integer tensor": a list, or null; input_shape has no Args: text
    assert "noise_shape" not in catalog["layers"]["Dropout"]["args"]
    assert "input_shape" not in catalog["layers"]["Dense"]["args"]


def test_callback_arguments_carry_kerapipes_bounds(catalog: dict[str, Any]) -> None:
    args = catalog["callbacks"]["ReduceLROnPlateau"]["args"]
    assert args["factor"] == {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}
    assert args["mode"] == {"enum": ["auto", "min", "max"]}
    assert "embeddings_metadata" not in catalog["callbacks"]["TensorBoard"]["args"]


def test_every_fragment_uses_only_the_agreed_json_schema_subset(catalog: dict[str, Any]) -> None:
    allowed = {"type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
               "items", "minItems", "maxItems", "anyOf", "$ref"}
    kinds = {"integer", "number", "string", "boolean", "null", "array", "object"}

    def check(fragment: dict, where: str) -> None:
        assert set(fragment) <= allowed, where
        types = fragment.get("type", [])
        assert set(types if isinstance(types, list) else [types]) <= kinds, where
        if "$ref" in fragment:
            assert fragment["$ref"].removeprefix("#/$defs/") in catalog["arg_defs"], where
        for part in fragment.get("anyOf", []) + ([fragment["items"]] if "items" in fragment
                                                 else []):
            check(part, where)

    for name, fragment in catalog["arg_defs"].items():
        check(fragment, name)
    for family in ("layers", "hub_layers", "losses", "metrics", "optimizers", "schedules",
                   "callbacks"):
        for name, entry in catalog[family].items():
            assert set(entry.get("args", {})) <= set(entry["params"]), (family, name)
            for arg, fragment in entry.get("args", {}).items():
                check(fragment, f"{family}.{name}.{arg}")


@pytest.mark.parametrize("text, default, fragment", [
    ("Positive integer, dimensionality of the output space.", None,
     {"type": "integer", "minimum": 1}),
    ("A positive int specifying the number of groups.", 1, {"type": "integer", "minimum": 1}),
    ("Float between 0 and 1. Fraction of the input units to drop.", None,
     {"type": "number", "minimum": 0, "maximum": 1}),
    ('string, either `"valid"` or `"same"` (case-insensitive).', "valid",
     {"enum": ["valid", "same"]}),
    ("Integer, or list of Integers, axis along which", -1, None),
    ("int or tuple/list of 2 integers, the size of the window.", None, None),
    ("1D integer tensor representing the shape of the mask.", None, None),
    ("Boolean, whether the layer uses a bias vector.", True, {"type": "boolean"}),
    ("If `True`, add offset of `beta` to normalized tensor.", True, {"type": "boolean"}),
    ("Momentum for the moving average.", 0.99, {"type": "number"}),
    ("Number of attention heads.", None, {"type": "integer"}),
    ("A float value or a constant float tensor, or a callable.", 0.9, None),
], ids=["positive", "positive-int-words", "fraction", "enum", "int-or-list", "rank-tuple",
        "tensor", "boolean", "flag-by-default", "float-by-default", "count",
        "float-or-tensor"])
def test_argument_texts_are_parsed_into_fragments(generator: ModuleType, text: str,
                                                  default: Any, fragment: dict | None) -> None:
    types = generator.arg_types
    parsed = types.from_text(text, default) or types.from_default(text, default)
    assert parsed == fragment


def test_the_self_check_refuses_a_default_its_type_refuses(generator: ModuleType) -> None:
    types = generator.arg_types
    args = {"rate": {"type": "number", "minimum": 0, "maximum": 1},
            "units": {"type": "integer"}, "padding": {"enum": ["valid", "same"]}}
    problems = types.check_defaults("layers", "Odd", args,
                                    {"rate": 1.5, "units": True, "padding": "same"}, {})
    assert [line.split(":")[0] for line in problems] == ["layers.Odd.rate", "layers.Odd.units"]


def test_docs_hold_summaries_and_argument_texts(docs: dict[str, Any]) -> None:
    from kerapipe.spec.catalog import load_docs

    assert load_docs() == docs
    dense = docs["layers"]["Dense"]
    assert dense["summary"] == "Just your regular densely-connected NN layer."
    assert dense["args"]["units"].startswith("Positive integer")
    assert docs["activations"]["relu"]
    assert set(docs["arg_defs"]) == {"activation", "initializer", "regularizer", "constraint",
                                     "dtype"}
    assert docs["hub_layers"]["TransformerEncoder"]["summary"]
    texts = [e["summary"] for family in ("layers", "losses", "callbacks")
             for e in docs[family].values()]
    texts += [t for e in docs["layers"].values() for t in e["args"].values()]
    assert max(len(t) for t in texts) <= 300
    assert not [t for t in texts if ">>>" in t or "```" in t]


def test_without_keras_hub_the_hub_docs_are_kept_as_shipped(
    docs: dict[str, Any], generator: ModuleType, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    assert generator.hub_docs({"layers": {}}, docs) == docs["hub_layers"]
    built = {"hub_layers": {"X": {"summary": "x", "args": {}}}}
    assert generator.hub_docs(built, docs) == built["hub_layers"]


def _keras_arguments(node: Any, catalog: dict[str, Any]):
    """(family, class, argument, value) of every `ClassName: {argument: value}` in a
    loaded pipeline, and of `optimizer: {name: ..., argument: value}`."""
    families = {family: {**catalog[family], **(catalog["hub_layers"] if family == "layers"
                                               else {})}
                for family in ("layers", "losses", "metrics", "optimizers", "schedules",
                               "callbacks")}
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending += item
        if not isinstance(item, dict):
            continue
        pending += list(item.values())
        optimizer = item.get("optimizer")
        if isinstance(optimizer, dict) and isinstance(optimizer.get("name"), str):
            for entry in families["optimizers"].values():
                if optimizer["name"] in entry.get("aliases", []):
                    yield from (("optimizers", entry, arg, value) for arg, value
                                in optimizer.items() if arg != "name")
        if len(item) == 1:
            [(name, kwargs)] = item.items()
            for family, entries in families.items():
                if name in entries and isinstance(kwargs, dict):
                    yield from ((family, entries[name], arg, value)
                                for arg, value in kwargs.items())


def test_every_shipped_pipelines_keras_arguments_satisfy_their_types(
        catalog: dict[str, Any], generator: ModuleType) -> None:
    """A wrong type refuses a valid file: the example pipelines and the README's YAML
    (block parameters, `$name`, are values only once the block is used) must pass."""
    import re

    import yaml

    texts = [path.read_text("utf-8") for path in sorted((ROOT / "pipelines").glob("*.yaml"))]
    texts += re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text("utf-8"), re.S)
    checked, refused = 0, []
    for text in texts:
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError:  # a README fragment that is no whole document
            continue
        for family, entry, arg, value in _keras_arguments(loaded, catalog):
            fragment = entry.get("args", {}).get(arg)
            if fragment is None or (isinstance(value, str) and value.startswith("$")):
                continue
            checked += 1
            if not generator.arg_types.satisfies(value, fragment, catalog["arg_defs"]):
                refused.append((family, arg, value, fragment))
    assert checked > 100 and refused == []


def _inside_raises(tree: Any) -> set[int]:
    import ast

    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any("aises" in ast.unparse(item.context_expr)
                                              for item in node.items):
            inside |= {id(sub) for sub in ast.walk(node)}
    return inside


def test_the_literal_arguments_of_keras_own_tests_satisfy_their_types(
        catalog: dict[str, Any], generator: ModuleType, keras: ModuleType) -> None:
    """Keras's tests (shipped in its wheel) construct classes with values Keras accepts;
    a literal keyword value there that a type refuses is a wrong type (outside
    `assertRaises`). Known gap: the gptq/awq dtype policies ('gptq/4/8_from_float32')
    name their bits and group size, which no list of names holds."""
    import ast

    root = Path(keras.__file__).parent / "src"
    files = sorted(root.rglob("*_test.py"))
    if not files:
        pytest.skip("this Keras install ships no tests")
    families = [catalog[f] for f in ("layers", "losses", "metrics", "optimizers", "schedules",
                                     "callbacks")]
    checked, refused = 0, []
    for path in files:
        tree = ast.parse(path.read_text("utf-8"))
        raising = _inside_raises(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or id(node) in raising:
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", None))
            for entries in families:
                args = entries.get(name, {}).get("args", {}) if name else {}
                for keyword in node.keywords:
                    if keyword.arg not in args:
                        continue
                    try:
                        value = json.loads(json.dumps(ast.literal_eval(keyword.value)))
                    except (ValueError, TypeError, SyntaxError):
                        continue  # not a plain literal
                    if keyword.arg == "dtype" and "/" in str(value):
                        continue
                    checked += 1
                    if not generator.arg_types.satisfies(value, args[keyword.arg],
                                                         catalog["arg_defs"]):
                        refused.append((name, keyword.arg, value, path.name, node.lineno))
    assert checked > 1000 and refused == []


def test_the_docs_file_ships_with_the_package() -> None:
    text = (ROOT / "setup.cfg").read_text("utf-8")
    assert "keras_docs.json" in text.split("[options.package_data]")[1].split("[")[0]
