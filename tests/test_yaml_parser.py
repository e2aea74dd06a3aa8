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


def test_what_libyaml_refuses_is_said_by_the_pure_parser_at_its_position():
    result = validate_text("kerapipe: 1\nname: [a, b\ndata: x\n", "p.yaml")
    [issue] = result.errors
    assert issue.code == "yaml-syntax" and (issue.line, issue.column) == (2, 7)  # the `[`
    assert "never closed" in issue.message


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
