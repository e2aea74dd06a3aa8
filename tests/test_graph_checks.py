"""The checks of a model's graph and blocks (issue 12, items 1, 3 and 6), through
``validate_text``: each problem's code, key path and line, all of them at once; and the
hostile cases (deep nesting, huge repeats, odd ``inputs:``, ``$`` in keys, dotted names,
``--set`` into a block use, the JSON Schema's view of entries).

Each case is the ``model:`` section as text, written first in the file, so a case's row
number is its line number (``model:`` is line 1); the rest of the pipeline follows it.
"""

from __future__ import annotations

import time

import jsonschema
import pytest
import yaml

from kerapipe.spec.graph import MAX_NODES, model_nodes
from kerapipe.spec.schema import pipeline_json_schema
from kerapipe.spec.validate import validate_text

REST = """\
kerapipe: 1
name: graph
data:
  source: {sample: mnist}
  preprocess:
    - rescale: 1/255
    - reshape: [28, 28, 1]
loss: sparse_categorical_crossentropy
train: {epochs: 1}
"""

# A block of one parameterised Dense layer named `d` (rows 2-6).
DENSE_BLOCK = ("  blocks:",
               "    dense_block:",
               "      params: {units: int}",
               "      layers:",
               "        - Dense: {units: $units, name: d}")

# A block of two inputs that adds them (rows 2-7).
PAIR_BLOCK = ("  blocks:",
              "    pair:",
              "      inputs: [x, context]",
              "      layers:",
              "        - Add: {}",
              "          inputs: [x, context]")


def pipeline(*rows: str) -> str:
    """A pipeline whose first line is ``model:``, then ``rows`` (row i at line i + 1)."""
    return "\n".join(("model:",) + rows) + "\n" + REST


def found(text: str, overrides=()) -> list[tuple]:
    result = validate_text(text, "p.yaml", list(overrides))
    return [(issue.code, issue.key_path, issue.line, issue.severity) for issue in result.issues]


def case(code, path, line, *rows, severity="error", id):
    return pytest.param(pipeline(*rows), [(code, path, line, severity)], id=id)


CASES = [
    # --- wiring (item 6) ---------------------------------------------------------------
    case("unknown-input", "model.layers[1].inputs", 5,
         "  layers:",
         "    - Flatten: {name: flat}",
         "    - Dense: {units: 10}",
         "      inputs: flatt", id="unknown-input-typo"),
    case("unknown-input", "model.layers[2].inputs[1]", 6,
         "  layers:",
         "    - Flatten: {name: flat}",
         "    - Dense: {units: 10, name: a}",
         "    - Add: {}",
         "      inputs: [a, b]",
         "    - Dense: {units: 10}", id="unknown-input-in-a-list-of-a-merge"),
    case("unknown-input", "model.layers[2].inputs[1]", 12,
         *PAIR_BLOCK,
         "  layers:",
         "    - Flatten: {name: flat}",
         "    - Dense: {units: 10, name: a}",
         "    - pair: {}",
         "      inputs: [a, b]",
         "    - Dense: {units: 10}", id="unknown-input-of-a-two-input-block"),
    case("graph-cycle", "model.layers[0].inputs", 4,
         "  layers:",
         "    - Flatten: {}",
         "      inputs: flat",
         "    - Dense: {units: 10, name: flat}", id="graph-cycle-a-name-below"),
    case("graph-cycle", "model.layers[0].inputs", 4,
         "  layers:",
         "    - Flatten: {name: flat}",
         "      inputs: flat",
         "    - Dense: {units: 10}", id="graph-cycle-its-own-name"),
    case("duplicate-name", "model.layers[1].Dense.name", 4,
         "  layers:",
         "    - Flatten: {name: x}",
         "    - Dense: {units: 10, name: x}", id="duplicate-name-two-layers"),
    case("duplicate-name", "model.layers[0].Flatten.name", 3,
         "  layers:",
         "    - Flatten: {name: features}",
         "    - Dense: {units: 10}", id="duplicate-name-the-model-input"),
    case("duplicate-name", "model.layers[2].dense_block.name", 10,
         *DENSE_BLOCK,
         "  layers:",
         "    - Flatten",
         "    - dense_block: {units: 4, name: s}",
         "    - dense_block: {units: 10, name: s}", id="duplicate-name-two-uses-named-alike"),
    case("duplicate-name", "model.layers[1].dense_block.name", 9,
         *DENSE_BLOCK,
         "  layers:",
         "    - Flatten: {name: s}",
         "    - dense_block: {units: 10, name: s}", id="duplicate-name-a-use-named-like-a-layer"),
    case("duplicate-name", "model.layers[2].Dense.name", 10,
         *DENSE_BLOCK,
         "  layers:",
         "    - Flatten",
         "    - dense_block: {units: 4, name: s}",
         "    - Dense: {units: 10, name: s.d}", id="duplicate-name-a-dotted-name-of-a-scoped-one"),
    case("duplicate-name", "model.layers[2].Dense.name", 11,
         *DENSE_BLOCK,
         "  layers:",
         "    - Flatten",
         "    - dense_block: {units: 4, name: s}",
         "      repeat: 2",
         "    - Dense: {units: 10, name: s.2.d}", id="duplicate-name-a-repeat-s-scoped-name"),
    case("duplicate-name", "model.blocks.pair.inputs[1]", 4,
         "  blocks:",
         "    pair:",
         "      inputs: [x, x]",
         "      layers:",
         "        - Add: {}",
         "          inputs: [x, x]",
         "  layers:",
         "    - Flatten: {name: a}",
         "    - pair: {}",
         "      inputs: [a, a]",
         "    - Dense: {units: 10}", id="duplicate-name-a-block-s-inputs"),
    case("duplicate-name", "model.blocks.one.layers[0].Dense.name", 6,
         "  blocks:",
         "    one:",
         "      inputs: [x]",
         "      layers:",
         "        - Dense: {units: 3, name: x}",
         "        - Dense: {units: 3}",
         "          inputs: x",
         "  layers:",
         "    - Flatten",
         "    - one",
         "    - one",
         "    - Dense: {units: 10}", id="duplicate-name-a-block-s-layer-named-like-its-input"),
    case("merge-inputs", "model.layers[1].Add", 4,
         "  layers:",
         "    - Flatten: {name: a}",
         "    - Add: {}",
         "      inputs: a",
         "    - Dense: {units: 10}", id="merge-inputs-add-of-one"),
    case("merge-inputs", "model.layers[3].Subtract", 7,
         "  layers:",
         "    - Flatten: {name: a}",
         "    - Dense: {units: 10, name: b}",
         "    - Dense: {units: 10, name: c}",
         "      inputs: a",
         "    - Subtract: {}",
         "      inputs: [a, b, c]", id="merge-inputs-subtract-of-three"),
    case("unknown-output", "model.outputs[0]", 2,
         "  outputs: [logit]",
         "  layers:",
         "    - Flatten",
         "    - Dense: {units: 10, name: logits}", id="unknown-output"),
    case("unused-layer", "model.layers[1].Dense", 4,
         "  layers:",
         "    - Flatten: {name: a}",
         "    - Dense: {units: 4}",
         "    - Dense: {units: 10}",
         "      inputs: a", severity="warning", id="unused-layer"),
    case("redundant-inputs", "model.layers[0].inputs", 4,
         "  layers:",
         "    - Flatten: {}",
         "      inputs: features",
         "    - Dense: {units: 10}", severity="warning", id="redundant-inputs"),
    case("wrong-type", "model.layers[0].inputs", 4,
         "  layers:",
         "    - Flatten: {}",
         "      inputs: 3",
         "    - Dense: {units: 10}", id="inputs-a-number"),
    case("wrong-type", "model.layers[0].inputs", 4,
         "  layers:",
         "    - Flatten: {}",
         "      inputs: {a: 1}",
         "    - Dense: {units: 10}", id="inputs-a-mapping"),
    case("wrong-type", "model.layers[0].inputs[1]", 4,
         "  layers:",
         "    - Flatten: {}",
         "      inputs: [features, [features]]",
         "    - Dense: {units: 10}", id="inputs-a-nested-list"),
    case("out-of-range", "model.layers[0].inputs", 4,
         "  layers:",
         "    - Flatten: {}",
         "      inputs: []",
         "    - Dense: {units: 10}", id="inputs-empty"),
    case("wrong-type", "model.layers[0].Flatten.name", 3,
         "  layers:",
         "    - Flatten: {name: 4}",
         "    - Dense: {units: 10}", id="name-a-number"),
    case("wrong-type", "model.layers[1].Dense.name", 4,
         "  layers:",
         "    - Flatten: {}",
         "    - Dense: {units: 10, name: a/b}", id="name-with-a-slash"),
    # --- blocks (item 3) ---------------------------------------------------------------
    case("bad-block", "model.blocks.DenseBlock", 3,
         "  blocks:",
         "    DenseBlock: {layers: [Flatten]}",
         "  layers:",
         "    - Flatten",
         "    - Dense: {units: 10}", id="bad-block-not-snake-case"),
    case("bad-block", "model.blocks.repeat", 3,
         "  blocks:",
         "    repeat: {layers: [Flatten]}",
         "  layers:",
         "    - Flatten",
         "    - Dense: {units: 10}", id="bad-block-named-like-a-sibling-key"),
    case("bad-block", "model.blocks.dense_block.params.name", 4,
         "  blocks:",
         "    dense_block:",
         "      params: {name: str}",
         "      layers: [Flatten]",
         "  layers:",
         "    - Flatten",
         "    - Dense: {units: 10}", id="bad-block-a-parameter-named-name"),
    case("block-cycle", "model.blocks.loop.layers[0].loop", 4,
         "  blocks:",
         "    loop:",
         "      layers: [loop]",
         "  layers:",
         "    - loop",
         "    - Dense: {units: 10}", id="block-cycle-direct"),
    case("block-cycle", "model.blocks.inner.layers[0].outer", 6,
         "  blocks:",
         "    outer:",
         "      layers: [inner]",
         "    inner:",
         "      layers: [outer]",
         "  layers:",
         "    - outer",
         "    - Flatten",
         "    - Dense: {units: 10}", id="block-cycle-indirect"),
    case("block-inputs", "model.layers[1].inputs", 11,
         *PAIR_BLOCK,
         "  layers:",
         "    - Flatten: {name: a}",
         "    - pair: {}",
         "      inputs: [a, a, a]",
         "    - Dense: {units: 10}", id="block-inputs-three-for-two"),
    case("block-inputs", "model.layers[1].pair", 10,
         *PAIR_BLOCK,
         "  layers:",
         "    - Flatten: {name: a}",
         "    - pair",
         "    - Dense: {units: 10}", id="block-inputs-the-entry-above-for-two"),
    case("unknown-parameter", "model.blocks.dense_block.layers[1].Dense.units", 7,
         "  blocks:",
         "    dense_block:",
         "      params: {units: int}",
         "      layers:",
         "        - Dense: {units: $units}",
         "        - Dense: {units: $size}",
         "  layers:",
         "    - Flatten",
         "    - dense_block: {units: 4}",
         "    - Dense: {units: 10}", id="unknown-parameter-a-reference"),
    case("unknown-parameter", "model.layers[1].dense_block.activation", 9,
         *DENSE_BLOCK,
         "  layers:",
         "    - Flatten",
         "    - dense_block: {units: 4, activation: relu}",
         "    - Dense: {units: 10}", id="unknown-parameter-a-use-s-value"),
    case("unknown-parameter", "model.blocks.dense_block.layers[0].Dense.$key", 6,
         "  blocks:",
         "    dense_block:",
         "      params: {units: int, key: str}",
         "      layers:",
         "        - Dense: {units: $units, $key: 3}",
         "  layers:",
         "    - Flatten",
         "    - dense_block: {units: 4, key: units}",
         "    - Dense: {units: 10}", id="unknown-parameter-in-a-key"),
    case("unknown-parameter", "model.blocks.dense_block.layers[0].$layer", 6,
         "  blocks:",
         "    dense_block:",
         "      params: {units: int, layer: str}",
         "      layers:",
         "        - $layer: {units: $units}",
         "  layers:",
         "    - Flatten",
         "    - dense_block: {units: 4, layer: Dense}",
         "    - Dense: {units: 10}", id="unknown-parameter-as-a-layer-class"),
    case("unused-parameter", "model.blocks.dense_block.params.rate", 4,
         "  blocks:",
         "    dense_block:",
         "      params: {units: int, rate: float}",
         "      layers:",
         "        - Dense: {units: $units}",
         "  layers:",
         "    - Flatten",
         "    - dense_block: {units: 4, rate: 0.5}",
         "    - Dense: {units: 10}", id="unused-parameter"),
    case("missing-argument", "model.layers[1].dense_block", 9,
         *DENSE_BLOCK,
         "  layers:",
         "    - Flatten",
         "    - dense_block: {name: hidden}",
         "    - Dense: {units: 10}", id="missing-argument-a-required-parameter"),
    case("wrong-type", "model.layers[1].dense_block.units", 9,
         *DENSE_BLOCK,
         "  layers:",
         "    - Flatten",
         "    - dense_block: {units: '4'}",
         "    - Dense: {units: 10}", id="wrong-type-a-use-s-value"),
    case("wrong-type", "model.layers[1].dense_block", 9,
         *DENSE_BLOCK,
         "  layers:",
         "    - Flatten",
         "    - dense_block: 4",
         "    - Dense: {units: 10}", id="wrong-type-a-use-s-values-not-a-mapping"),
    case("wrong-type", "model.blocks.dense_block.params.units.default", 4,
         "  blocks:",
         "    dense_block:",
         "      params: {units: {type: int, default: 2.5}}",
         "      layers:",
         "        - Dense: {units: $units}",
         "  layers:",
         "    - Flatten",
         "    - dense_block",
         "    - Dense: {units: 10}", id="wrong-type-a-default-its-use-not-unknown"),
    case("unknown-value", "model.blocks.dense_block.params.units.type", 4,
         "  blocks:",
         "    dense_block:",
         "      params: {units: {type: integer}}",
         "      layers:",
         "        - Dense: {units: $units}",
         "  layers:",
         "    - Flatten",
         "    - dense_block: {units: 3}",
         "    - Dense: {units: 10}", id="unknown-value-a-parameter-type"),
    case("unused-block", "model.blocks.dense_block", 3,
         *DENSE_BLOCK,
         "  layers:",
         "    - Flatten",
         "    - Dense: {units: 10}", severity="warning", id="unused-block"),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_each_problem_is_reported_with_its_code_key_path_and_line(text, expected):
    assert found(text) == expected


def test_an_unknown_input_suggests_the_closest_name_in_reach():
    text = pipeline("  layers:",
                    "    - Flatten: {name: flat}",
                    "    - Dense: {units: 10}",
                    "      inputs: flatt")
    (issue,) = validate_text(text, "p.yaml").issues
    assert "Did you mean 'flat'?" in issue.message
    assert "Names in reach: features, flat" in issue.message


@pytest.mark.parametrize("rows, message", [
    pytest.param(("    - Flatten: {name: flat}",
                  "      inputs: flat"), "'flat' is this layer's own name", id="its-own-name"),
    pytest.param(("    - Flatten: {}",
                  "      inputs: flat",
                  "    - Dense: {units: 10, name: flat}"),
                 "'flat' is a layer below this one (model.layers[1])", id="a-name-below"),
    pytest.param(("    - Flatten: {}",
                  "      inputs: 3"), "`inputs:` is a name or a list of names",
                 id="inputs-a-number"),
    pytest.param(("    - Flatten: {}",
                  "      inputs: [features, ' ']"), "an input is a layer's `name:`",
                 id="inputs-a-blank-name"),
])
def test_a_wiring_message_says_what_is_wrong(rows, message):
    (issue,) = [i for i in validate_text(pipeline("  layers:", *rows), "p.yaml").issues
                if i.severity == "error"]
    assert message in issue.message


@pytest.mark.parametrize("rows", [
    pytest.param(("  layers:",
                  "    - Flatten",
                  "    - dense_block: {units: 4}",
                  "    - dense_block: {units: 10}"), id="two-unnamed-uses"),
    pytest.param(("  layers:",
                  "    - Flatten",
                  "    - dense_block: {units: 4, name: s1}",
                  "    - dense_block: {units: 10, name: s2}"), id="two-named-uses"),
    pytest.param(("  layers:",
                  "    - Flatten: {name: dense_block_1}",
                  "    - dense_block: {units: 4}",
                  "    - dense_block: {units: 10}"), id="an-unnamed-use-skips-a-taken-name"),
])
def test_two_uses_of_one_block_scope_its_names_apart(rows):
    result = validate_text(pipeline(*DENSE_BLOCK, *rows), "p.yaml")
    assert result.issues == []
    names = [node.name for node in model_nodes(result.spec)]
    assert len(names) == len(set(names)) == 3
    assert [name.rsplit(".", 1)[-1] for name in names[1:]] == ["d", "d"]


def test_all_problems_of_a_file_are_reported_at_once():
    text = pipeline("  layers:",
                    "    - Flatten: {name: flat}",
                    "    - Dense: {units: 4, name: flat}",   # duplicate-name, line 4
                    "      inputs: flat",
                    "    - Add: {}",                          # merge-inputs, line 6
                    "    - Dense: {units: 10}",
                    "      inputs: nowhere")                  # unknown-input, line 8
    assert found(text) == [("duplicate-name", "model.layers[1].Dense.name", 4, "error"),
                           ("merge-inputs", "model.layers[2].Add", 6, "error"),
                           ("unknown-input", "model.layers[3].inputs", 8, "error")]


# --- hostile input ----------------------------------------------------------------------

def _nested_blocks(depth: int, width: int = 1, repeat: int = 1) -> str:
    """Block b0 is one Dense layer; each b<d> uses b<d-1> ``width`` times, each with
    ``repeat``; model.layers uses the last."""
    rows = ["  blocks:", "    b0:", "      layers:", "        - Dense: {units: 2}"]
    for level in range(1, depth):
        rows += [f"    b{level}:", "      layers:"]
        for _ in range(width):
            rows += ([f"        - b{level - 1}: {{}}", f"          repeat: {repeat}"]
                     if repeat > 1 else [f"        - b{level - 1}"])
    rows += ["  layers:", "    - Flatten", f"    - b{depth - 1}", "    - Dense: {units: 10}"]
    return pipeline(*rows)


def test_blocks_eight_deep_are_taken_and_nine_deep_refused_at_the_innermost_use():
    assert found(_nested_blocks(8)) == []
    (issue,) = validate_text(_nested_blocks(9), "p.yaml").issues
    assert (issue.code, issue.key_path, issue.line) == (
        "block-cycle", "model.blocks.b1.layers[0].b0", 8)
    assert "deeper than 8" in issue.message


def test_a_block_of_ten_layers_repeated_a_thousand_times_is_ten_thousand_nodes():
    rows = ["  blocks:", "    ten:", "      params: {units: int}", "      layers:"]
    rows += [f"        - Dense: {{units: $units, name: d{i}}}" for i in range(10)]
    rows += ["  layers:", "    - Flatten", "    - ten: {units: 4, name: t}",
             "      repeat: 1000", "    - Dense: {units: 10}"]
    start = time.perf_counter()  # a hang guard, not a benchmark: the real cost is ~0.3 s
    result = validate_text(pipeline(*rows), "p.yaml")
    assert time.perf_counter() - start < 3.0
    assert result.issues == []
    nodes = model_nodes(result.spec)
    assert len(nodes) == 10_002
    assert nodes[11].name == "t.2.d0" and nodes[11].inputs == ("t.1.d9",)
    assert nodes[-1].inputs == ("t.1000.d9",)


@pytest.mark.parametrize("text, path, line", [
    pytest.param(_nested_blocks(8, repeat=1000), "model.layers[1].b7", 36,
                 id="eight-levels-each-repeat-1000"),
    pytest.param(_nested_blocks(6, width=10), "model.layers[1].b5", 68,
                 id="six-levels-each-using-the-one-below-ten-times"),
])
def test_a_model_that_expands_past_the_node_bound_is_refused_without_expanding(text, path,
                                                                            line):
    start = time.perf_counter()  # a hang guard: expanding would take hours (or forever)
    issues = validate_text(text, "p.yaml").issues
    assert time.perf_counter() - start < 2.0
    assert [(i.code, i.key_path, i.line) for i in issues] == [("out-of-range", path, line)]
    assert f"at most {MAX_NODES:,} layers" in issues[0].message


def test_a_repeat_past_the_node_bound_is_refused_at_its_repeat_key():
    rows = ["  blocks:", "    ten:", "      layers:"]
    rows += ["        - Dense: {units: 2}"] * 30
    rows += ["  layers:", "    - Flatten", "    - ten: {}", "      repeat: 1000",
             "    - Dense: {units: 10}"]
    (issue,) = validate_text(pipeline(*rows), "p.yaml").issues
    assert (issue.code, issue.key_path, issue.line) == ("out-of-range", "model.layers[1].repeat",
                                                        38)
    assert "30,000 layers (1000 x 30)" in issue.message


def test_a_block_used_many_times_is_parsed_once_per_distinct_use():
    start = time.perf_counter()  # a hang guard: 10**4 uses were parsed one by one (~1.5 s)
    result = validate_text(_nested_blocks(5, width=10), "p.yaml")
    assert time.perf_counter() - start < 2.0
    assert result.issues == [] and len(model_nodes(result.spec)) == 10_002


@pytest.mark.parametrize("rows, expected", [
    pytest.param(("    - dense_block: {units: 4, name: s}",
                  "    - Dense: {units: 10, name: s.d.x}"), [], id="a-longer-dotted-name"),
    pytest.param(("    - dense_block: {units: 4, name: s.d}",
                  "    - Dense: {units: 10}"), [], id="a-dotted-use-name"),
    pytest.param(("    - dense_block: {units: 4, name: 's.layers[0]'}",
                  "    - Dense: {units: 10, name: 's.layers[0].d'}"),
                 [("duplicate-name", "model.layers[2].Dense.name", 10, "error")],
                 id="a-bracketed-use-name-and-its-layer-s"),
    pytest.param(("    - dense_block: {units: 4, name: x y}",
                  "    - Dense: {units: 10}"),
                 [("wrong-type", "model.layers[1].dense_block.name", 9, "error")],
                 id="a-use-name-with-a-space"),
])
def test_dotted_names_collide_only_with_the_scoped_name_they_spell(rows, expected):
    assert found(pipeline(*DENSE_BLOCK, "  layers:", "    - Flatten", *rows)) == expected


def test_a_block_named_like_a_step_or_a_sibling_key_is_still_a_block():
    text = pipeline("  blocks:",
                    "    rescale:",
                    "      layers: [Flatten]",
                    "  layers:",
                    "    - rescale",
                    "    - Dense: {units: 10}")
    result = validate_text(text, "p.yaml")
    assert result.issues == []
    assert [node.name for node in model_nodes(result.spec)][0] == "rescale_1.layers[0]"


def test_a_block_parameter_may_wire_repeat_and_trainable():
    text = pipeline("  blocks:",
                    "    inner:",
                    "      layers: [Dropout: {rate: 0.1}]",
                    "    outer:",
                    "      params: {times: int, frozen: bool}",
                    "      layers:",
                    "        - Dense: {units: 4, name: d}",
                    "          trainable: $frozen",
                    "        - inner: {}",
                    "          repeat: $times",
                    "  layers:",
                    "    - Flatten",
                    "    - outer: {times: 3, frozen: false, name: o}",
                    "    - Dense: {units: 10}")
    result = validate_text(text, "p.yaml")
    assert result.issues == []
    nodes = model_nodes(result.spec)
    assert [(n.name, n.trainable) for n in nodes[1:-1]] == [
        ("o.d", False), ("o.inner_1.1.layers[0]", None), ("o.inner_1.2.layers[0]", None),
        ("o.inner_1.3.layers[0]", None)]


RESIDUAL = pipeline("  blocks:",
                    "    residual:",
                    "      params: {filters: int, kernel: {type: int, default: 3}}",
                    "      layers:",
                    "        - Conv2D: {filters: $filters, kernel_size: $kernel, padding: same, "
                    "activation: relu, name: a}",
                    "        - Conv2D: {filters: $filters, kernel_size: $kernel, padding: same, "
                    "name: b}",
                    "        - Add: {}",
                    "          inputs: [input, b]",
                    "  layers:",
                    "    - Conv2D: {filters: 8, kernel_size: 3, padding: same, name: stem}",
                    "    - residual: {filters: 8, name: stage}",
                    "      repeat: 2",
                    "    - GlobalAveragePooling2D",
                    "    - Dense: {units: 10}")


@pytest.mark.parametrize("override, expected", [
    pytest.param("model.layers[1].residual.filterz=4",
                 [("unknown-parameter", "model.layers[1].residual.filterz", 0, "error")],
                 id="an-unknown-parameter"),
    pytest.param("model.layers[1].residual.filters=x",
                 [("wrong-type", "model.layers[1].residual.filters", 0, "error")],
                 id="a-value-of-the-wrong-type-alone"),
    pytest.param("model.layers[1].residual=3",
                 [("wrong-type", "model.layers[1].residual", 0, "error")],
                 id="values-that-are-no-mapping-alone"),
    pytest.param("model.layers[1].inputs=[stem, stem]",
                 [("block-inputs", "model.layers[1].inputs", 0, "error")],
                 id="inputs-for-a-one-input-block"),
])
def test_a_bad_set_into_a_block_use_is_reported_at_the_set_option_alone(override, expected):
    assert found(RESIDUAL, [override]) == expected


@pytest.mark.parametrize("override, filters, count", [
    pytest.param("model.layers[1].residual.filters=4", 4, 9, id="a-parameter"),
    pytest.param("model.layers[1].repeat=3", 8, 12, id="the-repeat"),
    pytest.param("model.blocks.residual.layers[0].Conv2D.filters=5", 5, 9,
                 id="the-block-s-definition"),
])
def test_set_reaches_into_block_uses_and_definitions(override, filters, count):
    result = validate_text(RESIDUAL, "p.yaml", [override])
    assert result.issues == []
    nodes = model_nodes(result.spec)
    assert len(nodes) == count
    assert nodes[1].name == "stage.1.a" and nodes[1].layer.kwargs["filters"] == filters


# --- the JSON Schema ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def schema_validator():
    return jsonschema.Draft202012Validator(pipeline_json_schema())


def _residual_with(entry=None, index=3) -> dict:
    document = yaml.safe_load(RESIDUAL)
    if entry is not None:
        document["model"]["layers"][index] = entry
    return document


@pytest.mark.parametrize("entry", [
    pytest.param(None, id="the-residual-file"),
    pytest.param({"Dense": {"units": 3}, "inputs": ["stem"], "trainable": False},
                 id="a-layer-with-inputs-and-trainable"),
    pytest.param({"residual": {"filters": 8}, "inputs": "stem", "trainable": False,
                  "repeat": 3}, id="a-block-use-with-every-sibling"),
    pytest.param("residual", id="a-bare-block-use"),
    pytest.param({"my_module.MyLayer": {}, "inputs": "stem"}, id="an-imported-layer-with-inputs"),
])
def test_the_json_schema_takes_graph_and_block_entries(schema_validator, entry):
    document = _residual_with(entry)
    assert [error.message for error in schema_validator.iter_errors(document)] == []


@pytest.mark.parametrize("entry", [
    pytest.param({"Dense": {"unit": 3}, "inputs": "stem"}, id="an-unknown-argument-beside-inputs"),
    pytest.param({"Dense": {"units": 3}, "repeat": 2}, id="repeat-on-a-layer"),
    pytest.param({"inputs": "stem"}, id="inputs-alone"),
    pytest.param({"repeat": 2, "trainable": False}, id="siblings-alone"),
    pytest.param({"residual": {"filters": 8}, "repeat": 0}, id="repeat-zero"),
    pytest.param({"Dense": {"units": 3}, "inputs": 3}, id="inputs-a-number"),
    pytest.param({"Dense": {"units": 3}, "trainable": "no"}, id="trainable-a-string"),
])
def test_the_json_schema_refuses_bad_entries(schema_validator, entry):
    assert list(schema_validator.iter_errors(_residual_with(entry)))


@pytest.mark.parametrize("blocks, expected", [
    ("[]", [("wrong-type", "model.blocks", 4)]),  # was read as "no blocks"
    ("{one: {inputs: x, layers: [{Dense: {units: 3, name: d}}]}}", []),  # one name, as an entry's
], ids=["blocks-as-a-list", "block-inputs-as-one-name"])
def test_the_blocks_mapping_and_a_block_of_one_named_input(blocks, expected):
    text = ("kerapipe: 1\ndata: {source: {sample: mnist}}\nmodel:\n  blocks: " + blocks +
            "\n  layers:\n    - Flatten\n    - one: {}\n    - Dense: {units: 10}\n")
    if blocks == "[]":
        text = text.replace("    - one: {}\n", "")
    errors = [(i.code, i.key_path, i.line) for i in validate_text(text, "p.yaml").errors]
    assert errors == expected


def test_a_fault_in_a_repeated_block_is_reported_once_and_nested_uses_count_per_scope():
    """An unused layer inside a block used with `repeat: 3` gave three warnings at one
    line; an unnamed nested use was numbered across the whole model (`inner_3` in the
    second repeat)."""
    text = ("kerapipe: 1\ndata: {source: {sample: mnist}}\nmodel:\n  blocks:\n"
            "    inner:\n      layers: [{Dense: {units: 4, name: d}}]\n"
            "    outer:\n      layers:\n        - Dense: {units: 4, name: spare}\n"
            "        - inner: {}\n          inputs: input\n"
            "  layers:\n    - Flatten\n    - outer: {name: stage}\n      repeat: 3\n"
            "    - Dense: {units: 10}\n")
    result = validate_text(text, "p.yaml")
    assert [(i.code, i.key_path, i.line) for i in result.issues] == [
        ("unused-layer", "model.blocks.outer.layers[0].Dense", 9)]
    names = [node.name for node in model_nodes(result.spec)]
    assert "stage.2.inner_1.d" in names and not any("inner_2" in name for name in names)


def test_model_inputs_that_are_not_names_are_reported_not_raised():
    """`model.inputs: [{Conv2D: ...}, 3]` raised TypeError out of validate_text."""
    text = ("kerapipe: 1\ndata: {source: {npz: d.npz}}\nmodel:\n"
            "  inputs: [{Conv2D: {filters: 2}}, 3]\n  layers: [Flatten, {Dense: {units: 2}}]\n")
    issues = validate_text(text, "p.yaml").errors
    assert [(i.code, i.key_path, i.line) for i in issues] == [
        ("wrong-type", "model.inputs[0]", 4), ("wrong-type", "model.inputs[1]", 4)]
