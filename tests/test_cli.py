"""`kerapipe validate` and `kerapipe schema` through click's CliRunner: exit codes and output."""

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from kerapipe.cli import cli, main

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = ROOT / "pipelines"

GOOD = """\
kerapipe: 1
data:
  source: {sample: mnist}
  preprocess: [{rescale: 1/255}, {reshape: [28, 28, 1]}]
model:
  layers:
    - Conv2D: {filters: 4, kernel_size: 3, activation: relu}
    - Flatten
    - Dense: {units: 10}
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_valid_directory_exits_zero_with_summary():
    result = invoke("validate", str(PIPELINES))
    assert result.exit_code == 0, result.output
    assert "error(s)" in result.output and ": 0 error(s)" in result.output


def test_invalid_file_exits_two_with_located_message(tmp_path):
    path = write(tmp_path, "bad.yaml", GOOD.replace("units: 10", "unit: 10"))
    result = invoke("validate", path)
    assert result.exit_code == 2
    assert (f"{path}:9:15: error[unknown-argument]: model.layers[2].Dense.unit: unknown "
            "argument 'unit' of Dense. Did you mean 'units'?") in result.output


def test_every_file_is_checked_and_every_error_reported(tmp_path):
    first = write(tmp_path, "a.yaml", GOOD.replace("kerapipe: 1", "kerapipe: 2"))
    second = write(tmp_path, "b.yml", GOOD.replace("Flatten", "Flaten"))
    result = invoke("validate", str(tmp_path))
    assert result.exit_code == 2
    assert f"{first}:1:11: error[unknown-value]" in result.output
    assert f"{second}:8:7: error[unknown-layer]" in result.output
    assert "2 file(s) checked: 2 error(s)" in result.output


def test_glob_pattern_selects_files(tmp_path):
    write(tmp_path, "one.yaml", GOOD)
    write(tmp_path, "two.yaml", "kerapipe: [")
    result = invoke("validate", str(tmp_path / "one*.yaml"))
    assert result.exit_code == 0
    assert "1 file(s) checked" in result.output


def test_path_matching_nothing_is_a_usage_error(tmp_path):
    result = invoke("validate", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2
    assert "error[no-such-file]" in result.output


def test_json_format_is_one_parseable_document(tmp_path):
    path = write(tmp_path, "bad.yaml", GOOD.replace("epochs", "x") + "train: {epochs: yes}\n")
    result = invoke("validate", "--format", "json", path)
    assert result.exit_code == 2
    payload = json.loads(result.output)
    assert payload["files"] == 1 and payload["errors"] == 1
    assert payload["issues"][0] | {"message": ""} == {
        "file": path, "line": 10, "column": 17, "severity": "error", "code": "wrong-type",
        "path": "train.epochs", "message": ""}


def test_github_format_emits_workflow_annotations(tmp_path):
    path = write(tmp_path, "bad.yaml", GOOD.replace("Flatten", "Flaten"))
    result = invoke("validate", "--format", "github", path)
    assert result.exit_code == 2
    line = result.stdout.splitlines()[0]
    assert line.startswith(f"::error file={path},line=8,col=7,title=kerapipe unknown-layer::")
    assert "Did you mean 'Flatten'?" in line


def test_warnings_pass_unless_strict(tmp_path):
    path = write(tmp_path, "warn.yaml", GOOD + "optimizer: {name: sgd, learning_rate: 5}\n")
    relaxed = invoke("validate", path)
    assert relaxed.exit_code == 0
    assert "warning[large-learning-rate]" in relaxed.output
    strict = invoke("validate", "--strict", path)
    assert strict.exit_code == 2


def test_unreadable_file_is_reported_not_raised(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00kerapipe")
    result = invoke("validate", str(path))
    assert result.exit_code == 2
    assert "error[unreadable-file]" in result.output


def test_schema_prints_json_schema_that_matches_the_shipped_file():
    result = invoke("schema")
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["$schema"].endswith("2020-12/schema")
    assert result.output == (ROOT / "schema" / "pipeline.schema.json").read_text()


def test_schema_output_option_writes_file(tmp_path):
    target = tmp_path / "s.json"
    result = invoke("schema", "-o", str(target))
    assert result.exit_code == 0
    assert json.loads(target.read_text())["title"].startswith("kerapipe pipeline")


def test_unknown_option_is_usage_error_exit_two(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "--colour", "pipelines"])
    assert exit_info.value.code == 2
    assert "No such option" in capsys.readouterr().err


def test_help_lists_exit_codes():
    result = invoke("--help")
    assert result.exit_code == 0
    lines = [line.strip() for line in result.output.splitlines()]
    from kerapipe.errors import EXIT_CODES

    for code, meaning in EXIT_CODES.items():  # one line each, as errors.py says it
        assert f"{code}  {meaning}" in lines


def test_deep_reports_shape_error_at_the_layer_line(tmp_path):
    # Without the reshape, Conv2D receives (28, 28): a shape error only Keras can see.
    path = write(tmp_path, "shape.yaml", GOOD.replace(", {reshape: [28, 28, 1]}", ""))
    shallow = invoke("validate", path)
    assert shallow.exit_code == 0
    deep = invoke("validate", "--deep", path)
    assert deep.exit_code == 2
    assert f"{path}:7:7: error[shape-error]: model.layers[0].Conv2D:" in deep.output
    assert "expected min_ndim=4, found ndim=3" in deep.output


def test_deep_accepts_the_example_pipelines():
    result = invoke("validate", "--deep", "--strict", str(PIPELINES))
    assert result.exit_code == 0, result.output
