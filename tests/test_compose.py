"""Reuse (issue 17): ``extends: base.yaml`` merges a file over its base, and
``${env:NAME}`` / ``${env:NAME:default}`` in string values read the environment; both
before typing, with every value located in the file it was written in.

All through ``validate_file`` / ``validate_text`` (no TensorFlow), but for the last tests,
which run a tiny npz pipeline: a run folder's spec.yaml is the resolved spec, and a resume
notices a changed base.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from kerapipe.spec.compose import MAX_EXTENDS
from kerapipe.spec.schema import iter_keys, pipeline_json_schema
from kerapipe.spec.validate import validate_data, validate_file, validate_text

ROOT = Path(__file__).resolve().parent.parent

BASE = textwrap.dedent("""\
    kerapipe: 1
    name: base
    data:
      source: {sample: mnist}
      preprocess:
        - rescale: 1/255
        - reshape: [784]
      batch_size: 64
      shuffle: 500
    model:
      layers:
        - Dense: {units: 32, activation: relu}
        - Dense: {units: 10}
    metrics: [accuracy]
    train:
      epochs: 3
      early_stopping: {monitor: val_loss, patience: 1}
    """)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def located(result) -> list[tuple]:
    return [(i.code, i.key_path, Path(i.file).name, i.line, i.column) for i in result.issues]


@pytest.fixture
def base(tmp_path) -> Path:
    return write(tmp_path, "base.yaml", BASE)


# --- extends: the merge --------------------------------------------------------------

def test_extends_merges_mappings_key_by_key_and_replaces_lists_and_scalars(tmp_path, base):
    top = write(tmp_path, "top.yaml", """\
        extends: base.yaml
        name: top
        data: {batch_size: 16}
        model:
          layers: [{Dense: {units: 10}}]
        train:
          early_stopping: {patience: 2}
        """)
    result = validate_file(top)
    assert result.issues == []
    spec = result.spec
    assert (spec.name, spec.data.batch_size, spec.data.shuffle) == ("top", 16, 500)
    assert len(spec.data.preprocess) == 2  # the base's, kept
    assert [layer.kwargs["units"] for layer in spec.model.layers] == [10]  # the list: replaced
    assert (spec.train.epochs, spec.train.early_stopping.monitor,
            spec.train.early_stopping.patience) == (3, "val_loss", 2)
    assert result.bases == [str(tmp_path / "base.yaml")]


def test_null_in_the_extending_file_sets_null_rather_than_deleting(tmp_path, base):
    top = write(tmp_path, "top.yaml", "extends: base.yaml\ntrain: {early_stopping: null}\n")
    assert validate_file(top).spec.train.early_stopping is None


def test_the_bases_keys_keep_their_order_and_new_keys_follow(tmp_path, base):
    top = write(tmp_path, "top.yaml", "extends: base.yaml\noutput: {dir: out}\nname: top\n")
    document = validate_file(top).document
    assert list(document.data) == ["kerapipe", "name", "data", "model", "metrics", "train",
                                   "output"]


def test_a_base_may_extend_another_and_the_nearest_wins(tmp_path, base):
    write(tmp_path, "bases/middle.yaml", "extends: ../base.yaml\nname: middle\ndata: "
          "{batch_size: 8}\n")
    top = write(tmp_path, "top.yaml", "extends: bases/middle.yaml\ndata: {shuffle: 0}\n")
    result = validate_file(top)
    assert result.issues == []
    assert (result.spec.name, result.spec.data.batch_size, result.spec.data.shuffle) == (
        "middle", 8, 0)
    assert result.bases == [str(tmp_path / "bases/middle.yaml"), str(tmp_path / "base.yaml")]


# --- extends: where issues are reported ------------------------------------------------

def test_an_inherited_value_is_reported_in_the_base_and_an_own_value_in_the_file(tmp_path):
    write(tmp_path, "base.yaml", BASE.replace("batch_size: 64", "batch_size: big"))
    top = write(tmp_path, "top.yaml", "extends: base.yaml\n\ntrain:\n  epochs: three\n")
    assert located(validate_file(top)) == [
        ("wrong-type", "train.epochs", "top.yaml", 4, 11),
        ("wrong-type", "data.batch_size", "base.yaml", 8, 15)]


def test_an_inherited_value_a_set_overrides_is_reported_at_the_set(tmp_path, base):
    top = write(tmp_path, "top.yaml", "extends: base.yaml\n")
    result = validate_file(top, ["data.shuffle=-1"])
    assert [(i.code, i.file) for i in result.issues] == [("out-of-range", "--set data.shuffle=-1")]
    assert validate_file(top, ["data.shuffle=7"]).spec.data.shuffle == 7  # after the merge


def test_a_key_the_base_misspells_is_reported_in_the_base(tmp_path):
    write(tmp_path, "base.yaml", BASE.replace("  shuffle: 500", "  shufle: 500"))
    top = write(tmp_path, "top.yaml", "extends: base.yaml\nname: top\n")
    (issue,) = validate_file(top).issues
    assert (issue.code, Path(issue.file).name, issue.line, issue.column) == (
        "unknown-key", "base.yaml", 9, 3)


@pytest.mark.parametrize("text, fragment", [
    ("[1, 2]", "holds a list"),
    ("kerapipe: [", "yaml-syntax"),
    ("a: 1\na: 2\n", "duplicate-key"),
], ids=["a-list", "bad-yaml", "duplicate-key"])
def test_a_base_that_is_no_good_mapping_is_reported_in_the_base(tmp_path, text, fragment):
    write(tmp_path, "base.yaml", text)
    top = write(tmp_path, "top.yaml", "kerapipe: 1\nextends: base.yaml\n")
    found = [i for i in validate_file(top).issues if fragment in i.code + i.message]
    assert [Path(i.file).name for i in found] == ["base.yaml"]


# --- extends: hostile and wrong values -------------------------------------------------

@pytest.mark.parametrize("value, fragment", [
    ("[base.yaml]", "a string"),
    ("/etc/passwd.yaml", "relative"),
    ("~/base.yaml", "relative"),
    ("https://example.com/base.yaml", "relative"),
    ("'${env:BASE}'", "relative"),
    ("'a\\0.yaml'", "relative"),
    ("../../../../../proc/self/environ", ".yaml or .yml"),
    ("base.txt", ".yaml or .yml"),
    ("missing.yaml", "No such file"),
    ("folder.yaml", "a folder"),
], ids=["list", "absolute", "home", "url", "reference", "nul", "proc", "suffix", "missing",
        "a-folder"])
def test_a_bad_extends_value_is_an_issue_at_the_value(tmp_path, value, fragment):
    (tmp_path / "folder.yaml").mkdir()
    top = write(tmp_path, "top.yaml", f"kerapipe: 1\nextends: {value}\n")
    (issue,) = validate_file(top).issues
    assert (issue.code, issue.key_path, issue.file, issue.line, issue.column) == (
        "bad-extends", "extends", str(top), 2, 10)
    assert fragment in issue.message


def test_a_fifo_base_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo.yaml")
    top = write(tmp_path, "top.yaml", "extends: fifo.yaml\n")
    (issue,) = validate_file(top).issues
    assert issue.code == "bad-extends" and "a FIFO" in issue.message


def test_a_symlink_loop_is_refused(tmp_path):
    os.symlink(tmp_path / "b.yaml", tmp_path / "a.yaml")
    os.symlink(tmp_path / "a.yaml", tmp_path / "b.yaml")
    top = write(tmp_path, "top.yaml", "extends: a.yaml\n")
    (issue,) = validate_file(top).issues
    assert issue.code == "bad-extends" and "symbolic links" in issue.message


def test_a_cycle_of_bases_is_an_error_naming_the_cycle(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\nkerapipe: 1\n")
    write(tmp_path, "b.yaml", "kerapipe: 1\nextends: a.yaml\n")
    (issue,) = validate_file(tmp_path / "a.yaml").issues
    assert (issue.code, Path(issue.file).name, issue.line) == ("bad-extends", "b.yaml", 2)
    assert f"a cycle: {tmp_path}/a.yaml -> {tmp_path}/b.yaml -> {tmp_path}/a.yaml" in \
        issue.message


def test_a_file_that_extends_itself_is_a_cycle(tmp_path):
    top = write(tmp_path, "top.yaml", "extends: ./top.yaml\n")
    (issue,) = validate_file(top).issues
    assert issue.code == "bad-extends" and "cycle" in issue.message


def test_a_chain_of_bases_is_bounded(tmp_path, base):
    for number in range(MAX_EXTENDS + 1):  # each extends the next; the last, base.yaml
        target = f"b{number + 1}.yaml" if number < MAX_EXTENDS else "base.yaml"
        write(tmp_path, f"b{number}.yaml", f"extends: {target}\n")
    (issue,) = validate_file(tmp_path / "b0.yaml").issues
    assert (issue.code, Path(issue.file).name) == ("bad-extends", f"b{MAX_EXTENDS}.yaml")
    assert f"at most {MAX_EXTENDS} files" in issue.message
    write(tmp_path, f"b{MAX_EXTENDS - 1}.yaml", "extends: base.yaml\n")  # 8 bases: fine
    assert validate_file(tmp_path / "b0.yaml").issues == []


def test_a_pipeline_and_its_bases_together_keep_the_size_bound(tmp_path, base):
    half = "#" * 600_000 + "\n"
    write(tmp_path, "big.yaml", half + BASE)
    top = write(tmp_path, "top.yaml", "extends: big.yaml\n" + half)
    (issue,) = validate_file(top).issues
    assert (issue.code, Path(issue.file).name) == ("too-large", "top.yaml")


def test_the_same_base_twice_in_a_chain_is_a_cycle_not_a_merge(tmp_path, base):
    write(tmp_path, "mid.yaml", "extends: base.yaml\n")
    write(tmp_path, "sub/base.yaml", "extends: ../mid.yaml\n")
    top = write(tmp_path, "top.yaml", "extends: sub/base.yaml\n")
    assert validate_file(top).issues == []  # two files named base.yaml: no cycle
    write(tmp_path, "mid.yaml", "extends: sub/base.yaml\n")
    assert [i.code for i in validate_file(top).issues] == ["bad-extends"]


def test_extends_in_a_dict_or_a_stored_spec_is_not_read(tmp_path, base):
    issues = validate_data({**yaml.safe_load(BASE), "extends": "base.yaml"}).issues
    assert [(i.code, i.key_path) for i in issues] == [("bad-extends", "extends")]
    result = validate_text("extends: base.yaml\n" + BASE, str(tmp_path / "spec.yaml"),
                           resolve=False)
    assert [i.code for i in result.issues] == ["bad-extends"]


def test_extends_given_by_a_set_is_refused_at_the_set(tmp_path, base):
    top = write(tmp_path, "top.yaml", "extends: base.yaml\n")
    (issue,) = validate_file(top, ["extends=other.yaml"]).issues
    assert (issue.code, issue.file) == ("bad-extends", "--set extends=other.yaml")


def test_validate_prints_an_inherited_issue_at_the_base_in_every_format(tmp_path):
    from click.testing import CliRunner

    from kerapipe.cli import cli

    write(tmp_path, "base.yaml", BASE.replace("batch_size: 64", "batch_size: big"))
    top = write(tmp_path, "top.yaml", "extends: base.yaml\n")
    text = CliRunner().invoke(cli, ["validate", str(top)])
    assert text.exit_code == 2
    assert f"{tmp_path}/base.yaml:8:15: error[wrong-type]: data.batch_size:" in text.output
    github = CliRunner().invoke(cli, ["validate", "--format", "github", str(top)]).output
    assert f"::error file={tmp_path}/base.yaml,line=8,col=15," in github.replace("%3A", ":")
    (issue,) = json.loads(CliRunner().invoke(cli, ["validate", "--format", "json",
                                                   str(top)]).output)["issues"]
    assert (issue["file"], issue["line"], issue["column"]) == (str(tmp_path / "base.yaml"), 8, 15)


def test_extends_in_text_is_read_relative_to_the_working_folder(tmp_path, base, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = validate_text("extends: base.yaml\nname: text\n")
    assert result.issues == [] and result.spec.name == "text"


# --- ${env:NAME} -----------------------------------------------------------------------

ENV_BASE = BASE.replace("name: base", "name: ${env:KP_NAME:fallback}")


def test_a_reference_reads_the_variable_or_its_default(tmp_path, monkeypatch):
    path = write(tmp_path, "p.yaml", ENV_BASE)
    monkeypatch.delenv("KP_NAME", raising=False)
    assert validate_file(path).spec.name == "fallback"
    monkeypatch.setenv("KP_NAME", "from-env")
    assert validate_file(path).spec.name == "from-env"


def test_a_whole_unquoted_reference_is_typed_as_yaml_types_its_text(tmp_path, monkeypatch):
    path = write(tmp_path, "p.yaml", BASE.replace("epochs: 3", "epochs: ${env:KP_EPOCHS:5}")
                 .replace("shuffle: 500", "shuffle: '${env:KP_EPOCHS:5}'"))
    monkeypatch.delenv("KP_EPOCHS", raising=False)
    issues = validate_file(path).issues
    assert [(i.code, i.key_path) for i in issues] == [("wrong-type", "data.shuffle")]  # quoted
    assert "Received: shuffle='5' (a string)" in issues[0].message
    path.write_text(BASE.replace("epochs: 3", "epochs: ${env:KP_EPOCHS:5}"))
    assert validate_file(path).spec.train.epochs == 5
    monkeypatch.setenv("KP_EPOCHS", "2")
    assert validate_file(path).spec.train.epochs == 2
    monkeypatch.setenv("KP_EPOCHS", "9" * 500)  # bounded as the file's own integers are
    (issue,) = validate_file(path).issues
    assert (issue.code, issue.key_path, issue.line) == ("out-of-range", "train.epochs", 16)


def test_a_reference_inside_a_longer_value_is_text(tmp_path, monkeypatch):
    monkeypatch.setenv("KP_TAG", "7")
    path = write(tmp_path, "p.yaml", BASE.replace("name: base", "name: run-${env:KP_TAG}-x"))
    assert validate_file(path).spec.name == "run-7-x"


def test_a_set_variable_wins_over_the_default_even_when_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("KP_DIR", "")
    path = write(tmp_path, "p.yaml", BASE + "output: {dir: 'runs${env:KP_DIR:/other}'}\n")
    assert validate_file(path).spec.output.dir == "runs"


def test_an_unset_variable_without_default_is_an_error_at_its_line(tmp_path, monkeypatch):
    monkeypatch.delenv("KP_UNSET", raising=False)
    write(tmp_path, "base.yaml", BASE.replace("shuffle: 500", "shuffle: ${env:KP_UNSET}"))
    top = write(tmp_path, "top.yaml", "extends: base.yaml\nname: 'x-${env:KP_UNSET}'\n")
    result = validate_file(top)
    assert result.spec is None
    assert located(result) == [("unset-variable", "name", "top.yaml", 2, 7),
                               ("unset-variable", "data.shuffle", "base.yaml", 9, 12)]
    assert "KP_UNSET is not set" in result.issues[0].message


def test_dollar_dollar_brace_is_a_literal_and_keys_are_never_read(tmp_path, monkeypatch):
    monkeypatch.setenv("KP_X", "no")
    path = write(tmp_path, "p.yaml", BASE.replace("name: base", "name: a$${env:KP_X}b")
                 + "tune:\n  space: {'${env:KP_X}': [1, 2]}\n")
    document = validate_file(path).document
    assert document.data["name"] == "a${env:KP_X}b"
    assert list(document.data["tune"]["space"]) == ["${env:KP_X}"]


@pytest.mark.parametrize("value", ["${KP_X}", "${env:1X}", "${env:KP_X", "${env:A:${env:B}}",
                                   "${ env:KP_X}"],
                         ids=["no-env", "digit-first", "unclosed", "nested", "blank"])
def test_a_dollar_brace_that_is_no_reference_is_an_error(tmp_path, value):
    path = write(tmp_path, "p.yaml", BASE + f"output: {{dir: '{value}'}}\n")
    issues = validate_file(path).issues
    assert [(i.code, i.key_path, i.line) for i in issues] == [("bad-reference", "output.dir", 18)]


def test_a_set_value_is_not_read_for_references_and_hides_the_one_it_replaces(
        tmp_path, monkeypatch):
    monkeypatch.delenv("KP_UNSET", raising=False)
    path = write(tmp_path, "p.yaml", BASE.replace("name: base", "name: ${env:KP_UNSET}"))
    assert [i.code for i in validate_file(path).issues] == ["unset-variable"]
    result = validate_file(path, ["name=ok"])
    assert result.issues == [] and result.spec.name == "ok"
    assert validate_file(path, ["output.dir=${env:KP_UNSET}"]).issues[0].code == "unset-variable"
    assert validate_file(path, ["name=ok", "output.dir=a${x}"]).spec.output.dir == "a${x}"


def test_the_environment_read_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setenv("KP_BIG", "x" * 600_000)
    path = write(tmp_path, "p.yaml", BASE + "output: {dir: '${env:KP_BIG}${env:KP_BIG}'}\n")
    assert [i.code for i in validate_file(path).issues] == ["too-large"]


def test_a_stored_spec_is_read_without_references(tmp_path):
    result = validate_text(BASE.replace("name: base", "name: a${env:KP_UNSET}"), "spec.yaml",
                           resolve=False)
    assert result.spec.name == "a${env:KP_UNSET}"  # the text as it is, not resolved


def test_a_run_folders_spec_yaml_is_never_resolved_again(tmp_path, base, monkeypatch):
    from kerapipe.saved_run import _validate_stored_spec

    monkeypatch.setenv("KP_SECRET", "from-env")
    text = "extends: base.yaml\n" + BASE.replace("name: base", "name: a${env:KP_SECRET}")
    result = _validate_stored_spec(text, tmp_path / "spec.yaml")  # a tampered spec.yaml
    assert [i.code for i in result.issues] == ["bad-extends"]  # base.yaml is not read
    assert result.document.data["name"] == "a${env:KP_SECRET}"


# --- the schema, the README, the example ---------------------------------------------

def test_the_schema_takes_a_partial_file_that_extends_and_a_whole_one_that_does_not():
    validator = jsonschema.Draft202012Validator(pipeline_json_schema())
    partial = {"extends": "base.yaml", "data": {"batch_size": 8, "source": {"csv": {
        "path": "x.csv"}}}, "model": {"blocks": {"b": {"params": {}}}}}
    assert [e.message for e in validator.iter_errors(partial)] == []
    assert [e.message for e in validator.iter_errors({**partial, "extends": "base.txt"})]
    assert [e.message for e in validator.iter_errors({"data": {"batch_size": 8}})] == [
        "'kerapipe' is a required property", "'model' is a required property",
        "'source' is a required property"]
    assert [e.message for e in validator.iter_errors({"extends": "b.yaml", "dat": {}})]
    assert ("extends", "a string") == next(iter_keys())[:2]


def test_the_example_that_extends_mnist_validates_and_differs_where_it_says():
    small = validate_file(ROOT / "pipelines" / "mnist_small.yaml")
    mnist = validate_file(ROOT / "pipelines" / "mnist.yaml")
    assert small.issues == [] and small.bases == [str(ROOT / "pipelines" / "mnist.yaml")]
    assert small.spec.data == mnist.spec.data and small.spec.loss == mnist.spec.loss
    assert small.spec.name == "mnist-small" and small.spec.train.epochs < mnist.spec.train.epochs


# --- a run: spec.yaml and --resume -------------------------------------------------------

@pytest.mark.slow
def test_a_run_stores_the_resolved_spec_and_a_resume_notices_a_changed_base(
        tmp_path, npz_workspace, call_main, monkeypatch):
    base = npz_workspace(tmp_path / "w")  # w/p.yaml beside its data.npz
    base.rename(tmp_path / "w" / "base.yaml")
    top = write(tmp_path, "w/top.yaml", "extends: base.yaml\nname: ${env:KP_RUN}\n")
    monkeypatch.setenv("KP_RUN", "from-env")
    code, out, err = call_main("run", top, "--output", tmp_path / "runs")
    assert code == 0, out + err
    (run_dir,) = (tmp_path / "runs").iterdir()
    spec_yaml = (run_dir / "spec.yaml").read_text()
    assert "name: from-env" in spec_yaml and "extends" not in spec_yaml
    assert "source:" in spec_yaml  # the base's keys, merged in
    record = json.loads((run_dir / "run.json").read_text())
    assert record["pipeline_file"] == str(top)
    assert record["extends"] == [str(tmp_path / "w" / "base.yaml")]
    record["status"] = "interrupted"
    (run_dir / "run.json").write_text(json.dumps(record))
    base_path = tmp_path / "w" / "base.yaml"
    base_path.write_text(base_path.read_text().replace("units: 3", "units: 3, use_bias: false"))
    code, out, err = call_main("run", "--resume", run_dir)
    assert code == 2 and "the pipeline changed since this run started" in err
    assert "use_bias: false" in err  # the diff shows the base's change
    monkeypatch.setenv("KP_RUN", "other")  # and so does another value of a variable
    base_path.write_text(base_path.read_text().replace(", use_bias: false", ""))
    code, out, err = call_main("run", "--resume", run_dir)
    assert code == 2 and "+name: other" in err
