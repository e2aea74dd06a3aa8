"""Docs, schema and CI stay derived from the one declaration of the format."""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from kerapipe.errors import EXIT_CODES
from kerapipe.spec.codes import ISSUE_CODES
from kerapipe.spec.schema import iter_keys, pipeline_json_schema
from kerapipe.spec.validate import validate_text

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PIPELINE_FILES = sorted((ROOT / "pipelines").glob("*.yaml"))


def quickstart_lines() -> list[str]:
    block = README.split("## Quickstart", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return block.strip().splitlines()


def test_readme_quickstart_is_exactly_two_lines_and_ci_runs_the_second():
    lines = quickstart_lines()
    assert len(lines) == 2
    ci_script = (ROOT / ".ci" / "run").read_text()
    assert lines[1] in ci_script.splitlines()


def test_generated_schema_file_and_readme_tables_are_current():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout


def test_every_spec_key_is_in_the_readme():
    missing = [path for path, *_ in iter_keys() if f"`{path}`" not in README]
    assert missing == []


def test_every_command_and_option_is_in_the_readme_and_in_kerapipe_schema():
    from click.testing import CliRunner

    from kerapipe.cli import cli, command_reference

    printed = json.loads(CliRunner().invoke(cli, ["schema"]).output)
    assert printed["x-kerapipe-commands"] == command_reference()
    names = {entry["command"] for entry in command_reference()}
    assert {f"kerapipe {name}" for name in cli.commands} <= names
    missing = [entry["command"] for entry in command_reference()
               if f"`{entry['command']}" not in README and entry["command"] != "kerapipe"]
    for entry in command_reference():
        for option in entry["options"]:
            if not any(re.search(rf"`[^`]*{re.escape(name)}(?![\w-])", README)
                       for name in option["names"]):
                missing.append(f"{entry['command']} {option['names']}")
    assert missing == []


def test_every_exit_code_is_in_the_readme():
    for code, meaning in EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in README


def test_every_issue_code_used_in_the_source_is_documented():
    source = "\n".join(p.read_text() for p in (ROOT / "kerapipe").rglob("*.py"))
    # an Issue(...) literal, or the code keras_guard(...) reports a Keras refusal as
    used = set(re.findall(r'(?:Issue|keras_guard)\(\s*"([a-z-]+)"', source))
    # codes built at run time rather than written as literals:
    used |= {f"unknown-{kind}" for kind in ("layer", "loss", "optimizer", "metric", "schedule")}
    used |= {"alias-bomb"}
    used |= {"multiple-documents", "document-end-marker", "yaml-syntax"}  # yaml_loader's words
    assert used - set(ISSUE_CODES) == set()
    assert set(ISSUE_CODES) - used == set()


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(pipeline_json_schema())


@pytest.mark.parametrize("path", PIPELINE_FILES, ids=[p.name for p in PIPELINE_FILES])
def test_example_pipelines_satisfy_the_json_schema(path):
    validator = jsonschema.Draft202012Validator(pipeline_json_schema())
    data = yaml.safe_load(path.read_text())
    assert [e.message for e in validator.iter_errors(data)] == []


@pytest.mark.parametrize("path", PIPELINE_FILES, ids=[p.name for p in PIPELINE_FILES])
def test_example_pipelines_validate_strictly_and_carry_the_schema_modeline(path):
    text = path.read_text()
    result = validate_text(text, str(path))
    assert [i.format() for i in result.issues] == []
    assert text.startswith("# yaml-language-server: $schema=../schema/pipeline.schema.json\n")


def test_json_schema_rejects_an_unknown_key_and_an_unknown_layer():
    validator = jsonschema.Draft202012Validator(pipeline_json_schema())
    base = yaml.safe_load((ROOT / "pipelines" / "mnist.yaml").read_text())
    assert list(validator.iter_errors({**base, "epochs": 3}))
    bad_layer = {**base, "model": {"layers": [{"Dense": {"unit": 3}}]}}
    assert list(validator.iter_errors(bad_layer))


def test_json_schema_accepts_an_imported_module_name_layer_and_nothing_else_dotted():
    schema = pipeline_json_schema()
    layers = {"$defs": schema["$defs"], **schema["$defs"]["Entry"]}
    jsonschema.validate({"custom.Scale": {"factor": 2}}, layers)
    jsonschema.validate("custom.Identity", layers)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"custom.": {}}, layers)


def test_readme_example_pipeline_is_valid():
    block = README.split("## A pipeline file", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    result = validate_text(textwrap.dedent(block), "README.md")
    assert [i.format() for i in result.issues] == []
    assert result.spec.optimizer.learning_rate == 1e-3


def test_pre_commit_hook_runs_validate():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hooks[0]["id"] == "kerapipe-validate"
    assert hooks[0]["entry"] == "kerapipe validate"
    assert json.dumps(hooks)  # plain data only


def python_blocks() -> list[str]:
    section = README.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return [part.split("```", 1)[0] for part in section.split("```python\n")[1:]]


def test_readme_python_examples_run(tmp_path, monkeypatch, capsys):
    blocks = python_blocks()
    assert len(blocks) == 2
    monkeypatch.chdir(ROOT)
    compile_block = blocks[0].replace('output_dir="runs"', f'output_dir="{tmp_path}"')
    namespace: dict = {}
    exec(compile_block, namespace)  # noqa: S102 - our own README
    exec(blocks[1], {})  # noqa: S102
    assert namespace["result"].run_dir.parent == tmp_path
    assert "error[missing-key]" in capsys.readouterr().out


def test_json_schema_takes_one_name_for_model_inputs_and_outputs_as_the_parser_does():
    validator = jsonschema.Draft202012Validator(pipeline_json_schema())
    base = yaml.safe_load((ROOT / "pipelines" / "mnist.yaml").read_text())
    for key in ("inputs", "outputs"):
        for value, ok in (("x", True), (["x"], True), (3, False), ([], False)):
            data = {**base, "model": {**base["model"], key: value}}
            assert (list(validator.iter_errors(data)) == []) == ok, (key, value)
