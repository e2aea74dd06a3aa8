"""Each command validates its pipeline once (issue 11), and errors render themselves."""

from __future__ import annotations

import io

import pytest

import kerapipe.spec.validate as validate_module
from kerapipe.errors import DataError, SpecError
from kerapipe.spec.validate import validate_file

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword, so passing copy=False "
    "failed:DeprecationWarning")

PIPELINE = """\
kerapipe: 1
name: once
seed: 3
data:
  source: {sample: mnist}
  preprocess: [{rescale: 1/255}]
  batch_size: 256
model:
  layers: [Flatten, {Dense: {units: 10}}]
train: {epochs: 1}
"""


@pytest.fixture
def validations(monkeypatch) -> list[str]:
    """The file name of every validate_text call made from here on."""
    calls: list[str] = []
    real = validate_module.validate_text

    def counting(text, file="<string>", overrides=()):
        calls.append(file)
        return real(text, file, overrides)

    monkeypatch.setattr(validate_module, "validate_text", counting)
    return calls


@pytest.mark.parametrize("command", ["run", "plan"])
def test_a_command_validates_its_pipeline_once(tmp_path, call_main, validations, command):
    path = tmp_path / "once.yaml"
    path.write_text(PIPELINE)
    extra = ["-o", tmp_path / "runs"] if command == "run" else []
    code, _, err = call_main(command, path, "--set", "train.epochs=1", *extra)
    assert code == 0, err
    assert validations == [str(path)]


def test_compile_pipeline_takes_a_validation_result_as_it_is(tmp_path, validations):
    from kerapipe import compile_pipeline

    path = tmp_path / "once.yaml"
    path.write_text(PIPELINE)
    result = validate_file(path, ["train.epochs=2"])
    compiled = compile_pipeline(result)
    assert len(validations) == 1
    assert compiled.spec.train.epochs == 2
    assert compiled.overrides == ["train.epochs=2"]
    assert compiled.source_file == str(path)


def test_compile_pipeline_refuses_other_overrides_for_a_validation_result(tmp_path):
    from kerapipe import compile_pipeline
    from kerapipe.errors import UsageError

    path = tmp_path / "once.yaml"
    path.write_text(PIPELINE)
    with pytest.raises(UsageError, match="validate again"):
        compile_pipeline(validate_file(path), ["train.epochs=2"])


def test_errors_render_themselves_with_their_notes():
    err = DataError("x.csv: no such file.")
    err.add_note("The run folder runs/a keeps 2 epochs")
    out = io.StringIO()
    err.show(out)
    assert out.getvalue() == "error: x.csv: no such file.\nThe run folder runs/a keeps 2 epochs\n"
    assert err.exit_code == 3


def test_a_spec_error_renders_as_its_issue_lines(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(PIPELINE.replace("units: 10", "unit: 10"))
    err = SpecError(validate_file(path).errors)
    text = err.format_message()
    assert text.splitlines() == [issue.format() for issue in err.issues]
    assert text.startswith(f"{path}:9:") and "error[unknown-argument]" in text
