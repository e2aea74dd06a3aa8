"""Key paths as `--set` writes them, and the flattening of a resolved spec into them (the
names `compare`, `tune` and MLflow's params use)."""

import pytest

from kerapipe.spec.overrides import flatten_key_paths, format_key_path, parse_key_path
from kerapipe.spec.typed import to_plain
from kerapipe.spec.validate import validate_text

TEXT = """kerapipe: 1
data: {source: {sample: mnist}, preprocess: [{rescale: {scale: 0.5}}]}
model: {layers: [Flatten, {Dense: {units: 10}}]}
"""


@pytest.mark.parametrize("path", ["train.epochs", "model.layers[1].Dense.units",
                                  "data.preprocess[0].rescale.scale", "metrics[0].name"])
def test_format_key_path_inverts_parse_key_path(path):
    assert format_key_path(parse_key_path(path)) == path


def test_a_resolved_spec_flattens_to_the_paths_that_set_takes():
    flat = flatten_key_paths(to_plain(validate_text(TEXT, "t.yaml").spec))
    assert flat["model.layers[1].Dense.units"] == 10
    assert flat["model.layers[0]"] == "Flatten"
    assert flat["data.preprocess[0].rescale.scale"] == 0.5
    assert flat["train.epochs"] == 10  # a default, filled in
    other = validate_text(TEXT, "t.yaml", overrides=["data.preprocess[0].rescale.scale=0.25"]).spec
    changed = {k for k, v in flatten_key_paths(to_plain(other)).items() if flat.get(k) != v}
    assert changed == {"data.preprocess[0].rescale.scale"}


def test_empty_containers_are_leaves_of_their_own():
    assert flatten_key_paths({"a": [], "b": {}, "c": {"d": [1, {}]}}) == {
        "a": [], "b": {}, "c.d[0]": 1, "c.d[1]": {}}
