"""The YAML front end: libyaml's events (PyYAML's C extension) under kerapipe's bounded
composer, with the pure-Python parser as the fallback and as the voice of refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from kerapipe.spec import yaml_loader
from kerapipe.spec.validate import validate_text

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))


def test_the_libyaml_parser_is_in_use():
    """CI installs PyYAML from its wheels, which carry libyaml: validate parses with it."""
    assert yaml.__with_libyaml__
    assert yaml_loader._BoundedLoader is yaml_loader._CLoader


def _nodes(node, out: list) -> list:
    plain = isinstance(node, ScalarNode) and not node.style
    out.append((node.start_mark.line, node.start_mark.column, type(node).__name__,
                node.value if isinstance(node, ScalarNode) else None, plain))
    if isinstance(node, MappingNode):
        for key, value in node.value:
            _nodes(key, out)
            _nodes(value, out)
    elif isinstance(node, SequenceNode):
        for value in node.value:
            _nodes(value, out)
    return out


@pytest.mark.parametrize("path", PIPELINES, ids=[p.name for p in PIPELINES])
def test_both_parsers_give_every_node_of_a_shipped_pipeline_the_same_position(path):
    text = path.read_text()
    fast = _nodes(yaml_loader._compose(yaml_loader._CLoader, text), [])
    pure = _nodes(yaml_loader._compose(yaml_loader._PythonLoader, text), [])
    assert fast == pure and len(fast) > 20


def test_a_tab_after_a_value_is_accepted_as_yaml_1_2_allows():
    text = ("kerapipe: 1\nname: tabs\t\ndata: {source: {sample: mnist}}\n"
            "model: {layers: [Flatten, {Dense: {units: 10}}]}\ntrain: {epochs: 15}\t\n")
    result = validate_text(text, "p.yaml")
    assert result.errors == [] and result.spec.train.epochs == 15


def test_what_libyaml_refuses_is_said_by_the_pure_parser_at_its_position(monkeypatch):
    text = "kerapipe: 1\nname: [a, b\ndata: x\n"
    [issue] = validate_text(text, "p.yaml").errors
    monkeypatch.setattr(yaml_loader, "_BoundedLoader", yaml_loader._PythonLoader)
    [pure] = validate_text(text, "p.yaml").errors
    assert issue.code == "yaml-syntax" and issue.format() == pure.format()


def test_the_pure_parser_alone_loads_the_same_document(monkeypatch):
    """Where PyYAML has no C extension, the pure-Python parser does the whole job."""
    text = (ROOT / "pipelines" / "mnist.yaml").read_text()
    fast = yaml_loader.load_document(text, "m.yaml")
    monkeypatch.setattr(yaml_loader, "_BoundedLoader", yaml_loader._PythonLoader)
    pure = yaml_loader.load_document(text, "m.yaml")
    assert (fast.data, fast.value_marks, fast.key_marks) == (
        pure.data, pure.value_marks, pure.key_marks)


@pytest.mark.parametrize("loader", ["_CLoader", "_PythonLoader"])
@pytest.mark.parametrize("text, value", [
    ("! 12", "12"), ("! true", "true"), ("12", 12), ('"12"', "12"),
    ("+.Inf", float("inf")), ("+.INF", float("inf")), ("-.INF", float("-inf")),
    ("-.Inf", float("-inf")), (".NAN", "nan"), ("+.nan", "+.nan"),
], ids=["non-specific-tag", "non-specific-bool", "plain-int", "quoted", "plus-Inf", "plus-INF",
        "minus-INF", "minus-Inf", "NAN", "signed-nan-is-text"])
def test_scalars_follow_the_yaml_1_2_core_schema(monkeypatch, loader, text, value):
    monkeypatch.setattr(yaml_loader, "_BoundedLoader", getattr(yaml_loader, loader))
    loaded = yaml_loader.load_document(f"a: {text}\n").data["a"]
    if value == "nan":
        assert loaded != loaded  # NaN
    else:
        assert loaded == value and type(loaded) is type(value)


LOADERS = pytest.mark.parametrize("loader", ["_CLoader", "_PythonLoader"])


def _load(monkeypatch, loader: str, text: str) -> yaml_loader.Document:
    monkeypatch.setattr(yaml_loader, "_BoundedLoader", getattr(yaml_loader, loader))
    return yaml_loader.load_document(text, "p.yaml")


@LOADERS
def test_a_later_anchor_of_a_name_replaces_the_earlier_as_yaml_1_2_says(monkeypatch, loader):
    doc = _load(monkeypatch, loader, "a: &x 1\nb: *x\nc: &x [2]\nd: *x\n")
    assert doc.data == {"a": 1, "b": 1, "c": [2], "d": [2]} and doc.issues == []


@LOADERS
@pytest.mark.parametrize("text, value", [
    ("k: &an:chor v\nl: *an:chor\n", "v"),   # libyaml would read the anchor `an` on ':chor v'
    ("k: &a.b v\nl: *a.b\n", "v"),
    ("k: &dense-defaults_1 v\nl: *dense-defaults_1\n", "v"),
], ids=["colon", "dot", "dash-underscore"])
def test_anchor_names_run_to_a_blank_or_flow_indicator(monkeypatch, loader, text, value):
    doc = _load(monkeypatch, loader, text)
    assert doc.data == {"k": value, "l": value} and doc.issues == []


@LOADERS
@pytest.mark.parametrize("text, data", [
    ("epochs:\t15\n", {"epochs": 15}),
    ("a:\n-\tx\n- \ty\n", {"a": ["x", "y"]}),
    ("epochs: 15\t# the default\n", {"epochs": 15}),
    ("name: a\tb\n", {"name": "a\tb"}),
    ("a: 1\n\t\nb: 2\n", {"a": 1, "b": 2}),
    ("a:\n  b: 1\n \t \n  c: 2\n", {"a": {"b": 1, "c": 2}}),
    ("a:\n\t# a comment\n  b: 1\n", {"a": {"b": 1}}),
    ("a: [1,\t2]\n", {"a": [1, 2]}),
], ids=["after-colon", "after-dash", "before-comment", "inside-plain", "blank-line",
        "blank-line-in-mapping", "before-comment-at-line-start", "in-flow"])
def test_the_tabs_people_type_separate_as_yaml_1_2_allows(monkeypatch, loader, text, data):
    doc = _load(monkeypatch, loader, text)
    assert doc.data == data and doc.issues == []


@LOADERS
@pytest.mark.parametrize("text, line", [
    ("train:\n\tepochs: 15\n", 2),    # a tab never indents
    ("a:\n-\t- x\n", 2),              # nor starts a nested block entry
    ("a:\n- \tb: 1\n", 2),            # nor a block key
    ("a: |\n  text\n\t\nb: 1\n", 3),    # nor ends a block scalar (no separation there)
], ids=["indentation", "nested-entry", "compact-mapping", "after-block-scalar"])
def test_a_tab_that_would_indent_is_still_refused(monkeypatch, loader, text, line):
    with pytest.raises(yaml_loader.LoadProblem) as refused:
        _load(monkeypatch, loader, text)
    assert refused.value.issue.line == line


@LOADERS
@pytest.mark.parametrize("key", ["0", "1", "-3", "007", "'true'", '"1.5"', "! null", "cat"],
                         ids=["zero", "one", "negative", "leading-zeros", "quoted-true",
                              "quoted-float", "non-specific-tag", "name"])
def test_a_string_or_integer_key_is_read_as_its_text(monkeypatch, loader, key):
    doc = _load(monkeypatch, loader, f"m:\n  {key}: 1.0\n")
    text = key.strip("'\"").removeprefix("! ")
    assert doc.data == {"m": {text: 1.0}} and doc.issues == []
    assert doc.key_marks[("m", text)] == (2, 3)


def _with_train_key(line: str) -> str:
    """pipelines/mnist.yaml with one more line at the top of its ``train:`` section."""
    text = (ROOT / "pipelines" / "mnist.yaml").read_text()
    assert text.count("\ntrain:\n") == 1
    return text.replace("\ntrain:\n", f"\ntrain:\n  {line}\n")


def test_integer_class_weight_keys_keep_naming_class_indices():
    result = validate_text(_with_train_key("class_weight: {0: 1.0, 1: 4.0}"), "p.yaml")
    assert result.errors == [] and result.spec.train.class_weight.weights == {"0": 1.0, "1": 4.0}


@LOADERS
@pytest.mark.parametrize("key, path, column", [
    ("true", ("m", "true"), 3), ("False", ("m", "False"), 3), ("null", ("m", "null"), 3),
    ("~", ("m", "~"), 3), ("1.5", ("m", "1.5"), 3), ("1e3", ("m", "1e3"), 3),
    (".inf", ("m", ".inf"), 3), ("[a, b]", ("m",), 3), ("{a: 1}", ("m",), 3),
    ("? [a]\n  ", ("m",), 5),
], ids=["true", "False", "null", "tilde", "float", "exponent", "inf", "flow-list",
        "flow-mapping", "complex-key"])
def test_a_key_yaml_reads_as_no_name_is_reported_at_the_key(monkeypatch, loader, key, path,
                                                            column):
    doc = _load(monkeypatch, loader, f"m:\n  {key}: x\n  ok: 1\n")
    assert doc.data == {"m": {"ok": 1}}
    assert [(i.code, i.path, i.line, i.column) for i in doc.issues] == [
        ("bad-key", path, 2, column)]


def test_a_key_yaml_reads_as_a_boolean_says_so_and_how_to_quote_it():
    [issue] = validate_text(_with_train_key("class_weight: {true: 2.0, 1: 1.0}"),
                            "p.yaml").errors
    assert issue.format() == (
        "p.yaml:31:18: error[bad-key]: train.class_weight.true: a key is a name (or a whole "
        "number, such as a class index), but YAML reads 'true' as the boolean true. Quote it "
        "('true': ...) if the name is meant. Received: key=true")


def test_an_empty_key_is_reported_where_it_stands():
    doc = yaml_loader.load_document("m:\n  ? \n  : x\n  ok: 1\n")
    assert doc.data == {"m": {"ok": 1}}
    [issue] = doc.issues
    assert (issue.code, issue.path, issue.line) == ("bad-key", ("m",), 2)
    assert "is empty" in issue.message and "Received: key=null" in issue.message


MERGED_LAYERS = """kerapipe: 1
data: {source: {sample: mnist}}
model:
  layers:
    - Flatten
    - Dense: &hidden {units: 64, activation: relu}
    - Dense: {<<: *hidden, units: 32}
    - Dense:
        <<: [{units: 16, use_bias: false}, *hidden]
    - Dense: {units: 10}
"""


@LOADERS
def test_merge_keys_copy_the_keys_a_mapping_does_not_set(monkeypatch, loader):
    doc = _load(monkeypatch, loader, MERGED_LAYERS)
    layers = doc.data["model"]["layers"]
    assert layers[2] == {"Dense": {"units": 32, "activation": "relu"}}      # its own key wins
    assert layers[3] == {"Dense": {"units": 16, "use_bias": False, "activation": "relu"}}
    assert doc.key_marks[("model", "layers", 2, "Dense", "units")] == (7, 28)   # its own
    assert doc.key_marks[("model", "layers", 2, "Dense", "activation")] == (6, 34)  # anchored
    assert doc.key_marks[("model", "layers", 3, "Dense", "units")] == (9, 15)   # the first
    assert doc.issues == []


def test_a_pipeline_with_merge_keys_validates_and_a_merged_error_points_at_its_definition():
    result = validate_text(MERGED_LAYERS, "p.yaml")
    assert result.errors == [] and result.spec.model.layers[2].layer.kwargs == {
        "units": 32, "activation": "relu"}
    bad = validate_text(MERGED_LAYERS.replace("activation: relu}", "activation: relu, unit: 3}"),
                        "p.yaml")
    assert [(i.code, i.key_path, i.line) for i in bad.errors] == [
        ("unknown-argument", f"model.layers[{index}].Dense.unit", 6) for index in (1, 2, 3)]


@LOADERS
@pytest.mark.parametrize("text, issue", [
    ("m: {<<: 3, a: 1}\n", ("bad-merge-key", ("m", "<<"), 1, 9)),
    ("m: {<<: [{b: 2}, [1]], a: 1}\n", ("bad-merge-key", ("m", "<<"), 1, 18)),
    ("m:\n  <<: {b: 2}\n  <<: {c: 3}\n  a: 1\n", ("duplicate-key", ("m", "<<"), 3, 3)),
], ids=["scalar", "list-in-list", "twice"])
def test_a_merge_key_that_gives_no_mappings_is_refused(monkeypatch, loader, text, issue):
    doc = _load(monkeypatch, loader, text)
    assert doc.data["m"]["a"] == 1
    assert [(i.code, i.path, i.line, i.column) for i in doc.issues] == [issue]


def test_a_quoted_merge_key_is_a_plain_key():
    assert yaml_loader.load_document("m: {'<<': 3}\n").data == {"m": {"<<": 3}}
