"""`kerapipe compare RUN_DIR...` (issue 17): one table of runs and the spec keys in which
they differ (``kerapipe/compare/``).

Most cases build run folders by hand, file for file as `kerapipe run` writes them
(``_run_folder`` copies the layout of a real iris run: run.json, metrics.json and the
resolved spec.yaml); the slow ones compare two real runs and check that no TensorFlow is
imported.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kerapipe.compare import _same, printable

ROOT = Path(__file__).resolve().parent.parent

# spec.yaml of `kerapipe run pipelines/iris.yaml --set train.epochs=3
# --set optimizer.learning_rate=0.001`, as written (the header and every default).
SPEC = """\
# The pipeline as it ran: every default filled in (kerapipe resolved spec).
kerapipe: 1
name: iris-mlp
seed: 42
imports: []
data:
  source:
    csv:
      path: data/iris.csv
      label: species
      features: null
      delimiter: ','
      id_column: null
      sample_weight: null
      missing_values: ['']
  split: {{validation: 0.2, test: 0.2, stratify: true, order: shuffled, column: null}}
  preprocess:
  - normalize: {{axis: -1}}
  batch_size: 16
  shuffle: 200
  cache: auto
  features: null
  crosses: []
  labels: null
model:
  layers:
  - Dense: {{units: 16, activation: relu}}
  - Dense: {{units: 16, activation: relu}}
  - Dense: {{units: 3}}
loss: {{name: sparse_categorical_crossentropy}}
optimizer: {{name: adam, learning_rate: {lr}}}
metrics:
- {{name: accuracy}}
train:
  epochs: {epochs}
  early_stopping: {{monitor: val_loss, patience: 10, min_delta: 0.0, mode: auto, restore_best_weights: true,
    start_from_epoch: 0}}
  callbacks: []
  steps_per_execution: 1
  jit_compile: auto
  deterministic: true
  class_weight: null
  precision: float32
  stages: []
  distribute: {{strategy: none, startup_timeout: 300}}
output: {{dir: runs, predictions: argmax, top_k: 1, tensorboard: false, mlflow: null}}
"""


def _run_folder(parent: Path, name: str, status: str = "finished", lr: float = 0.001,
                epochs: int = 3, test: dict | None = None, epochs_run: int | None = None,
                total: float | None = 13.855, reason: str | None = None,
                started: str = "2026-12-02T07:31:29+00:00",
                finished: str | None = "2026-12-02T07:31:42+00:00",
                metrics: bool = True, spec: str | None = None) -> Path:
    """A run folder as `kerapipe run` leaves it: run.json (its fields as RunFolder._record
    writes them), metrics.json (RunFolder.write_metrics) and spec.yaml."""
    folder = parent / name
    folder.mkdir(parents=True)
    record = {"status": status, **({"reason": reason} if reason else {}), "kerapipe": "0.1.0",
              "seed": 42, "overrides": [f"train.epochs={epochs}"], "imports": {},
              "data": {"splits": {"train": 90, "validation": 30, "test": 30},
                       "class_names": ["setosa", "versicolor", "virginica"],
                       "num_classes": 3}, "started_at": started}
    if finished is not None:
        record["finished_at"] = finished
    record["seconds"] = {} if total is None else {"fit": total - 2, "total": total}
    (folder / "run.json").write_text(json.dumps(record, indent=2) + "\n")
    if metrics:
        payload = {"test": {"accuracy": 0.5, "loss": 0.96} if test is None else test,
                   "test_accuracy_argmax": None,
                   "epochs_run": epochs if epochs_run is None else epochs_run,
                   "epochs_planned": epochs, "last_epoch": {}}
        if status != "finished":
            payload["stopped"] = reason
        (folder / "metrics.json").write_text(json.dumps(payload, indent=2) + "\n")
    (folder / "spec.yaml").write_text(SPEC.format(lr=lr, epochs=epochs) if spec is None
                                      else spec)
    return folder


def _json(call_main, *args) -> dict:
    code, out, err = call_main("compare", *map(str, args), "--format", "json")
    assert code == 0, err
    return json.loads(out)


def _refused(call_main, *args) -> str:
    """compare exits 2 with one clean error (no traceback); its standard error."""
    code, out, err = call_main("compare", *map(str, args))
    assert (code, out) == (2, ""), err
    assert err.startswith("error: ") and "Traceback" not in err and "\x1b" not in err
    return err


# --- the table ------------------------------------------------------------------------------

def test_table_shows_name_date_status_metrics_epochs_wall_time_and_differing_key(
        tmp_path, call_main):
    _run_folder(tmp_path, "iris-a", lr=0.001, test={"accuracy": 0.5, "loss": 0.9637})
    _run_folder(tmp_path, "iris-b", lr=0.1, test={"accuracy": 0.9, "loss": 0.1413}, total=7.25)
    code, out, err = call_main("compare", tmp_path / "iris-a", tmp_path / "iris-b")
    assert (code, err) == (0, "")
    header, first, second = out.splitlines()
    assert header.split() == ["name", "date", "status", "test_accuracy", "test_loss",
                              "epochs", "wall", "optimizer.learning_rate"]
    assert first.split() == ["iris-a", "2026-12-02", "07:31:29", "finished", "0.5000",
                             "0.9637", "3/3", "13.9", "s", "0.001"]
    assert second.split()[-6:] == ["0.9000", "0.1413", "3/3", "7.2", "s", "0.1"]
    assert len({len(line) for line in (header, first, second)}) == 1  # aligned


def test_only_the_spec_keys_that_differ_are_columns_by_their_set_key_paths(tmp_path, call_main):
    _run_folder(tmp_path, "a", lr=0.001, epochs=3)
    _run_folder(tmp_path, "b", lr=0.01, epochs=5)
    _run_folder(tmp_path, "c", lr=0.001, epochs=3,
                spec=SPEC.format(lr=0.001, epochs=3).replace("{units: 3}", "{units: 4}"))
    document = _json(call_main, tmp_path / "a", tmp_path / "b", tmp_path / "c")
    assert document["differing_keys"] == ["model.layers[2].Dense.units",
                                          "optimizer.learning_rate", "train.epochs"]
    assert [run["spec"] for run in document["runs"]] == [
        {"model.layers[2].Dense.units": 3, "optimizer.learning_rate": 0.001, "train.epochs": 3},
        {"model.layers[2].Dense.units": 3, "optimizer.learning_rate": 0.01, "train.epochs": 5},
        {"model.layers[2].Dense.units": 4, "optimizer.learning_rate": 0.001, "train.epochs": 3}]


def test_a_default_a_spec_yaml_lacks_is_no_difference(tmp_path, call_main):
    # An older kerapipe wrote no output.tensorboard: validation fills in the default.
    _run_folder(tmp_path, "new")
    _run_folder(tmp_path, "old", spec=SPEC.format(lr=0.001, epochs=3).replace(
        "tensorboard: false, ", ""))
    code, out, _ = call_main("compare", tmp_path / "new", tmp_path / "old")
    assert code == 0 and "note: the runs' specs are the same." in out


def test_metric_columns_are_the_union_of_the_runs_blank_where_one_lacks_a_metric(
        tmp_path, call_main):
    _run_folder(tmp_path, "a", test={"accuracy": 0.5, "loss": 0.9})
    _run_folder(tmp_path, "b", test={"loss": 0.3, "auc": 0.75})
    document = _json(call_main, tmp_path / "a", tmp_path / "b")
    assert document["metrics"] == ["accuracy", "loss", "auc"]
    code, out, _ = call_main("compare", tmp_path / "a", tmp_path / "b", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["test_accuracy"], r["test_loss"], r["test_auc"]) for r in rows] == [
        ("0.5", "0.9", ""), ("", "0.3", "0.75")]
    code, out, _ = call_main("compare", tmp_path / "a", tmp_path / "b")
    header, first, second = out.splitlines()[:3]
    column = header.index("test_auc")
    assert first[column:column + len("test_auc")].strip() == ""
    assert second[column:column + len("test_auc")].strip() == "0.7500"


def test_running_interrupted_and_failed_runs_are_shown_with_their_status(tmp_path, call_main):
    _run_folder(tmp_path, "1-running", status="running", finished=None, total=None,
                metrics=False)
    _run_folder(tmp_path, "2-interrupted", status="interrupted", test={}, epochs=60,
                epochs_run=4, total=None, reason="interrupted by SIGINT after epoch 4",
                finished="2026-12-02T07:33:29+00:00")
    _run_folder(tmp_path, "3-failed", status="failed", test={}, epochs_run=2, total=None,
                reason="the loss is nan at epoch 2\n(more lines)")
    _run_folder(tmp_path, "4-finished")
    code, out, err = call_main("compare", *sorted(tmp_path.iterdir()))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [line.split()[3] for line in lines[1:5]] == ["running", "interrupted", "failed",
                                                       "finished"]
    assert lines[1].split()[4:] == ["3"]  # no metrics, epochs or wall time yet
    assert lines[2].split()[4:7] == ["4/60", "2m00s", "60"]  # finished_at - started_at
    assert lines[5:] == ["2-interrupted: interrupted: interrupted by SIGINT after epoch 4",
                         "3-failed: failed: the loss is nan at epoch 2"]
    document = _json(call_main, *sorted(tmp_path.iterdir()))
    running = document["runs"][0]
    assert (running["status"], running["test"], running["epochs_run"],
            running["wall_seconds"], running["finished_at"]) == ("running", {}, None, None, None)
    assert document["runs"][2]["reason"] == "the loss is nan at epoch 2\n(more lines)"


def test_one_run_is_a_table_of_one_row_with_a_note(tmp_path, call_main):
    _run_folder(tmp_path, "only")
    code, out, _ = call_main("compare", tmp_path / "only")
    assert code == 0
    assert out.splitlines()[1].startswith("only ")
    assert out.splitlines()[-1] == "note: one run, so no spec keys to compare; give two or more."
    assert _json(call_main, tmp_path / "only")["differing_keys"] == []


def test_json_is_one_document_and_a_non_finite_number_is_null(tmp_path, call_main):
    _run_folder(tmp_path, "a")
    _run_folder(tmp_path, "b", lr=0.01)
    (tmp_path / "b" / "metrics.json").write_text(
        '{"test": {"accuracy": 0.5, "loss": NaN}, "epochs_run": 3, "epochs_planned": 3}')
    document = _json(call_main, tmp_path / "a", tmp_path / "b")
    assert set(document) == {"runs", "metrics", "differing_keys", "warnings"}
    assert document["runs"][1]["test"] == {"accuracy": 0.5, "loss": None}
    assert document["runs"][0] == {
        "name": "a", "folder": str(tmp_path / "a"), "status": "finished",
        "started_at": "2026-12-02T07:31:29+00:00", "finished_at": "2026-12-02T07:31:42+00:00",
        "reason": None, "test": {"accuracy": 0.5, "loss": 0.96}, "epochs_run": 3,
        "epochs_planned": 3, "wall_seconds": 13.855, "spec": {"optimizer.learning_rate": 0.001}}


def test_csv_has_one_row_per_run_and_the_differing_keys_as_columns(tmp_path, call_main):
    _run_folder(tmp_path, "a", lr=0.001)
    _run_folder(tmp_path, "b", lr=0.01, epochs=5)
    code, out, _ = call_main("compare", tmp_path / "a", tmp_path / "b", "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["name", "folder", "started_at", "finished_at", "status",
                       "test_accuracy", "test_loss", "epochs_run", "epochs_planned",
                       "wall_seconds", "optimizer.learning_rate", "train.epochs"]
    assert rows[2] == ["b", str(tmp_path / "b"), "2026-12-02T07:31:29+00:00",
                       "2026-12-02T07:31:42+00:00", "finished", "0.5", "0.96", "5", "5",
                       "13.855", "0.01", "5"]
    assert len(rows) == 3


def test_csv_text_cell_a_spreadsheet_would_run_as_a_formula_is_quoted(tmp_path, call_main):
    _run_folder(tmp_path, "a")
    _run_folder(tmp_path, "=HYPERLINK(1)")
    code, out, _ = call_main("compare", tmp_path / "a", tmp_path / "=HYPERLINK(1)",
                             "--format", "csv")
    assert code == 0 and list(csv.reader(io.StringIO(out)))[2][0] == "'=HYPERLINK(1)"


def test_values_equal_as_the_spec_means_them_are_no_difference():
    assert _same(1, 1.0) and _same(float("nan"), float("nan")) and _same([], [])
    assert not _same(True, 1) and not _same(None, "null") and not _same({}, [])


def test_a_spec_that_no_longer_validates_is_compared_as_written_with_a_warning(
        tmp_path, call_main):
    _run_folder(tmp_path, "a")
    _run_folder(tmp_path, "b", spec=SPEC.format(lr=0.001, epochs=3).replace(
        "seed: 42", "seed: 42\nretired_key: 1"))
    code, out, err = call_main("compare", tmp_path / "a", tmp_path / "b")
    assert code == 0
    assert err.startswith(f"warning: {tmp_path / 'b' / 'spec.yaml'} does not validate")
    assert "its keys are compared as written" in err
    assert out.splitlines()[0].split()[-1] == "retired_key"


def test_a_run_without_spec_yaml_has_blank_spec_cells_and_a_warning(tmp_path, call_main):
    _run_folder(tmp_path, "a", lr=0.001)
    _run_folder(tmp_path, "b", lr=0.01)
    failed = _run_folder(tmp_path, "c", status="failed", reason="disk full", metrics=False)
    (failed / "spec.yaml").unlink()
    code, out, err = call_main("compare", tmp_path / "a", tmp_path / "b", failed)
    assert code == 0 and "c has no spec.yaml" in err
    document = _json(call_main, tmp_path / "a", tmp_path / "b", failed)
    assert document["differing_keys"] == ["optimizer.learning_rate"]
    assert document["runs"][2]["spec"] is None


# --- where one run has a mapping (or a list) and another has not ------------------------

_ES = ("early_stopping: {monitor: val_loss, patience: 10, min_delta: 0.0, mode: auto, "
       "restore_best_weights: true,\n    start_from_epoch: 0}")
_BASE = SPEC.format(lr=0.001, epochs=3)
assert _ES in _BASE
ABSENT = object()  # the run's spec lacks the key: no value in its JSON `spec`

# (id, the other run's spec.yaml, the one column, the first run's value, the other's, the
# other's cell in the text table). The first run is SPEC as it is.
SHAPES = [
    ("null-vs-mapping", _BASE.replace("mlflow: null", "mlflow: {experiment: x}"),
     "output.mlflow", None, {"tracking_uri": None, "experiment": "x"},
     "{tracking_uri: null, experiment: x}"),
    ("mapping-vs-absent-is-null", _BASE.replace("  " + _ES + "\n", ""),
     "train.early_stopping",
     {"monitor": "val_loss", "patience": 10, "min_delta": 0.0, "mode": "auto",
      "restore_best_weights": True, "start_from_epoch": 0}, None, "null"),
    ("a-layer-more", _BASE.replace("  - Dense: {units: 3}\n",
                                   "  - Dense: {units: 3}\n  - Dense: {units: 2}\n"),
     "model.layers[3]", ABSENT, {"Dense": {"units": 2}}, "{Dense: {units: 2}}"),
    ("another-layer-kind", _BASE.replace("relu}\n  - Dense: {units: 16, activation: relu}",
                                         "relu}\n  - Dropout: {rate: 0.5}"),
     "model.layers[1]", {"Dense": {"units": 16, "activation": "relu"}},
     {"Dropout": {"rate": 0.5}}, "{Dropout: {rate: 0.5}}"),
    ("list-vs-empty-list", _BASE.replace("missing_values: ['']", "missing_values: []"),
     "data.source.csv.missing_values", [""], [], "[]"),
]


@pytest.mark.parametrize("other, key, first, second, cell", [case[1:] for case in SHAPES],
                         ids=[case[0] for case in SHAPES])
def test_where_only_one_run_has_a_mapping_there_the_parent_key_is_the_one_column(
        tmp_path, call_main, other, key, first, second, cell):
    _run_folder(tmp_path, "a")
    _run_folder(tmp_path, "b", spec=other)
    document = _json(call_main, tmp_path / "a", tmp_path / "b")
    assert document["differing_keys"] == [key]
    expected = [{} if first is ABSENT else {key: first}, {key: second}]
    assert [run["spec"] for run in document["runs"]] == expected
    code, out, _ = call_main("compare", tmp_path / "a", tmp_path / "b")
    header, row_a, row_b = out.splitlines()
    assert header.split()[-1] == key and row_b.endswith("  " + cell)
    code, out, _ = call_main("compare", tmp_path / "a", tmp_path / "b", "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][-1] == key and rows[2][-1] == cell


def test_a_mapping_both_runs_have_differs_by_its_sub_keys(tmp_path, call_main):
    _run_folder(tmp_path, "a")
    _run_folder(tmp_path, "b", spec=_BASE.replace("patience: 10", "patience: 5"))
    _run_folder(tmp_path, "c", spec=_BASE.replace("mlflow: null", "mlflow: {experiment: x}")
                .replace("patience: 10", "patience: 5"))
    document = _json(call_main, tmp_path / "a", tmp_path / "b", tmp_path / "c")
    assert document["differing_keys"] == ["train.early_stopping.patience", "output.mlflow"]
    assert [run["spec"] for run in document["runs"]] == [
        {"train.early_stopping.patience": 10, "output.mlflow": None},
        {"train.early_stopping.patience": 5, "output.mlflow": None},
        {"train.early_stopping.patience": 5,
         "output.mlflow": {"tracking_uri": None, "experiment": "x"}}]


def test_a_run_whose_mapping_differs_by_a_sub_key_shows_its_whole_mapping_beside_a_null(
        tmp_path, call_main):
    # The first run (the one the others are compared with) has the mapping.
    _run_folder(tmp_path, "a", spec=_BASE.replace("mlflow: null", "mlflow: {experiment: x}"))
    _run_folder(tmp_path, "b", spec=_BASE.replace("mlflow: null", "mlflow: {experiment: y}"))
    _run_folder(tmp_path, "c")
    _run_folder(tmp_path, "d", spec=_BASE.replace("mlflow: null", "mlflow: {experiment: x}"))
    document = _json(call_main, *(tmp_path / name for name in "abcd"))
    assert document["differing_keys"] == ["output.mlflow"]
    assert [run["spec"]["output.mlflow"] for run in document["runs"]] == [
        {"tracking_uri": None, "experiment": "x"}, {"tracking_uri": None, "experiment": "y"},
        None, {"tracking_uri": None, "experiment": "x"}]


def test_a_whole_value_is_one_line_of_flow_yaml_as_set_takes_it():
    from kerapipe.compare.values import show_value

    shared = {"units": 2}  # what a YAML alias repeats: written again, never as `*id001`
    assert show_value({"a": shared, "b": shared, "text": "two\nlines", "comma": ",",
                       "word": "yes", "none": None, "list": [1.5, []]}) == (
        '{a: {units: 2}, b: {units: 2}, text: "two\\nlines", comma: \',\', word: \'yes\', '
        "none: null, list: [1.5, []]}")


def test_a_key_only_one_spec_has_as_written_is_one_column_blank_in_the_other(
        tmp_path, call_main):
    retired = _BASE.replace("seed: 42", "seed: 42\nretired_key: 1")  # compared as written
    _run_folder(tmp_path, "a", spec=retired)
    _run_folder(tmp_path, "b", spec=retired.replace("  " + _ES + "\n", ""))
    code, out, err = call_main("compare", tmp_path / "a", tmp_path / "b")
    assert code == 0 and err.count("its keys are compared as written") == 2
    header, row_a, row_b = out.splitlines()
    assert header.split()[-1] == "train.early_stopping" and row_b.endswith(" 13.9 s")
    assert row_a.endswith("  {monitor: val_loss, patience: 10, min...")
    document = _json(call_main, tmp_path / "a", tmp_path / "b")
    assert document["differing_keys"] == ["train.early_stopping"]
    assert document["runs"][1]["spec"] == {}


# --- which folders ----------------------------------------------------------------------

def test_a_glob_is_expanded_in_name_order_and_a_folder_named_twice_comes_once(
        tmp_path, call_main):
    for name in ("run-2", "run-1", "run-3"):
        _run_folder(tmp_path, name)
    os.symlink(tmp_path / "run-1", tmp_path / "latest")
    document = _json(call_main, tmp_path / "run-3", str(tmp_path / "run-*"),
                     tmp_path / "latest")
    assert [run["name"] for run in document["runs"]] == ["run-3", "run-1", "run-2"]


def test_a_glob_skips_what_output_dir_holds_besides_run_folders(tmp_path, call_main):
    for name in ("run-1", "run-2"):
        _run_folder(tmp_path, name)
    (tmp_path / "mlruns" / "0").mkdir(parents=True)  # output.mlflow's default store
    (tmp_path / "notes.txt").write_text("mine")
    document = _json(call_main, str(tmp_path / "*"))
    assert [run["name"] for run in document["runs"]] == ["run-1", "run-2"]
    err = _refused(call_main, tmp_path / "mlruns")  # named as it is: still refused
    assert "mlruns" in err


def test_a_shells_expansion_that_brings_a_folder_with_no_run_says_to_quote_the_glob(
        tmp_path, call_main):
    for name in ("run-1", "run-2"):
        _run_folder(tmp_path, name)
    (tmp_path / "mlruns" / "0").mkdir(parents=True)  # what `compare runs/*` gets in a shell
    err = _refused(call_main, *sorted(tmp_path.iterdir()))
    assert err.startswith(f"error: {tmp_path / 'mlruns'} is not a kerapipe run folder: it "
                          "has no run.json")
    assert "quote the glob ('runs/*') so kerapipe expands it" in " ".join(err.split())


def test_a_glob_that_matches_nothing_is_an_error_naming_it(tmp_path, call_main):
    _run_folder(tmp_path, "a")
    err = _refused(call_main, tmp_path / "a", str(tmp_path / "nope-*"))
    assert f"no run folder matches {tmp_path / 'nope-*'}" in err


def test_more_run_folders_than_the_bound_are_refused(tmp_path, call_main, monkeypatch):
    monkeypatch.setattr("kerapipe.compare.folders.MAX_RUNS", 2)
    for name in "abc":
        _run_folder(tmp_path, name)
    assert "compare takes at most 2 run folders" in _refused(call_main, str(tmp_path / "*"))


def test_no_run_folder_is_a_usage_error(call_main):
    code, _, err = call_main("compare")
    assert code == 2 and "Missing argument 'RUN_DIR...'" in err


@pytest.mark.parametrize("make, says", [
    (lambda p: None, "it does not exist"),
    (lambda p: p.write_text("x"), "it is not a folder"),
    (lambda p: p.mkdir(), "it has no run.json"),
], ids=["missing", "a-file", "no-run-json"])
def test_a_path_that_is_not_a_run_folder_is_an_error_saying_what_a_run_folder_holds(
        tmp_path, call_main, make, says):
    _run_folder(tmp_path, "good")
    make(tmp_path / "bad")
    err = _refused(call_main, tmp_path / "good", tmp_path / "bad")
    assert err.startswith(f"error: {tmp_path / 'bad'} is not a kerapipe run folder: {says}")
    assert "holds run.json and spec.yaml" in err


# --- hostile run folders ----------------------------------------------------------------

def _write(name: str, data: bytes):
    return lambda folder: (folder / name).write_bytes(data)


def _replace_with_link(name: str):
    def damage(folder: Path) -> None:
        (folder.parent / "outside").write_text(json.dumps({"status": "finished"}))
        (folder / name).unlink()
        os.symlink(folder.parent / "outside", folder / name)
    return damage


def _replace_with_fifo(name: str):
    def damage(folder: Path) -> None:
        (folder / name).unlink()
        os.mkfifo(folder / name)
    return damage


HOSTILE = [
    ("run-json-huge", _write("run.json", b" " * (5 << 20)), "run.json: it holds"),
    ("run-json-not-json", _write("run.json", b"{not json"), "run.json: it is not JSON"),
    ("run-json-not-utf8", _write("run.json", b'{"status": "\xff"}'), "run.json: it is not UTF-8"),
    ("run-json-array", _write("run.json", b"[1, 2]"), "run.json: it holds an array"),
    ("run-json-status-number", _write("run.json", b'{"status": 3}'), "status should be"),
    ("run-json-deep", _write("run.json", b"[" * 100000 + b"]" * 100000),
     "run.json: it is not JSON"),
    ("run-json-huge-int", _write("run.json", b'{"status": "x", "seed": 1' + b"0" * 5000 + b"}"),
     "run.json: it is not JSON"),
    ("run-json-started-number", _write("run.json", b'{"status": "x", "started_at": 1}'),
     "started_at should be a string"),
    ("run-json-link-outside", _replace_with_link("run.json"), "run.json: it is a symbolic link"),
    ("run-json-fifo", _replace_with_fifo("run.json"), "run.json: it is a FIFO"),
    ("metrics-test-not-object", _write("metrics.json", b'{"test": [1]}'),
     "metrics.json: test should be an object"),
    ("metrics-test-string-value", _write("metrics.json", b'{"test": {"loss": "low"}}'),
     "metrics.json: test should be an object"),
    ("metrics-epochs-not-count", _write("metrics.json", b'{"test": {}, "epochs_run": -1}'),
     "epochs_run should be a count of epochs"),
    ("metrics-link-outside", _replace_with_link("metrics.json"),
     "metrics.json: it is a symbolic link"),
    ("spec-huge", _write("spec.yaml", b"a: 1\n" * 300000), "spec.yaml: it holds"),
    ("spec-not-utf8", _write("spec.yaml", b"name: \xff\n"), "spec.yaml: it is not UTF-8"),
    ("spec-a-list", _write("spec.yaml", b"- 1\n- 2\n"), "spec.yaml: it is not a pipeline file"),
    ("spec-bad-yaml", _write("spec.yaml", b"a: [1\n"), "spec.yaml: it is not a pipeline file"),
    ("spec-alias-bomb", _write("spec.yaml", b"a: &a [1,1,1,1,1,1,1,1,1,1]\n" + b"".join(
        b"%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n" % ((ord("b") + i,) * 2 + (
            ord("a") + i,) * 10) for i in range(8))), "spec.yaml: it is not a pipeline file"),
    ("spec-link-outside", _replace_with_link("spec.yaml"), "spec.yaml: it is a symbolic link"),
]


@pytest.mark.parametrize("damage, says", [case[1:] for case in HOSTILE],
                         ids=[case[0] for case in HOSTILE])
def test_a_damaged_run_file_is_an_error_naming_it_never_a_traceback(
        tmp_path, call_main, damage, says):
    _run_folder(tmp_path, "good")
    damage(_run_folder(tmp_path, "bad"))
    err = _refused(call_main, tmp_path / "good", tmp_path / "bad")
    assert str(tmp_path / "bad") in err and says in err, err


ESC = "\x1b]0;owned\x07\x1b[31m"


def test_terminal_escapes_in_names_metrics_and_values_are_never_printed_raw(
        tmp_path, call_main):
    _run_folder(tmp_path, f"run{ESC}a", test={f"acc{ESC}": 0.5},
                status=f"fin{ESC}", reason=f"why{ESC}")
    _run_folder(tmp_path, "b", spec=SPEC.format(lr=0.001, epochs=3).replace(
        "label: species", 'label: "sp\\x1b]0;owned\\x07\\x1b[31m\\u202e"'))
    for fmt in ("text", "json", "csv"):
        code, out, err = call_main("compare", tmp_path / f"run{ESC}a", tmp_path / "b",
                                   "--format", fmt)
        assert code == 0, err
        assert "\x1b" not in out + err and "\x07" not in out and "\u202e" not in out
    assert "run\\x1b]0;owned\\x07\\x1b[31ma" in out  # csv: the escaped name
    document = _json(call_main, tmp_path / f"run{ESC}a", tmp_path / "b")
    assert document["runs"][0]["name"] == f"run{ESC}a"  # JSON keeps the text, escaped
    assert document["runs"][1]["spec"] == {"data.source.csv.label": f"sp{ESC}\u202e"}


def test_a_mapping_shown_whole_in_one_cell_is_escaped_and_never_a_formula(
        tmp_path, call_main):
    _run_folder(tmp_path, "a")
    _run_folder(tmp_path, "b", spec=_BASE.replace(
        "mlflow: null", 'mlflow: {experiment: "x\\x1b]0;owned\\x07\\u202e"}'))
    retired = _BASE.replace("seed: 42", "seed: 42\nretired_key: 1")  # compared as written
    _run_folder(tmp_path, "c", spec=retired.replace(_ES, 'early_stopping: "=HYPERLINK(1)"'))
    runs = [tmp_path / name for name in "abc"]
    for fmt in ("text", "json", "csv"):
        code, out, err = call_main("compare", *runs, "--format", fmt)
        assert code == 0, err
        assert "\x1b" not in out + err and "\x07" not in out and "\u202e" not in out
    rows = list(csv.reader(io.StringIO(out)))
    spec_cells = dict(zip(rows[0], rows[3])), dict(zip(rows[0], rows[2]))
    assert spec_cells[0]["train.early_stopping"] == "'=HYPERLINK(1)"
    assert spec_cells[1]["output.mlflow"] == (
        '{tracking_uri: null, experiment: "x\\e]0;owned\\a\\u202e"}')
    document = _json(call_main, *runs)
    assert document["runs"][1]["spec"]["output.mlflow"] == {
        "tracking_uri": None, "experiment": "x\x1b]0;owned\x07\u202e"}


def test_an_error_about_a_folder_named_with_escapes_shows_them_escaped(tmp_path, call_main):
    reset = "\x1b]0;owned\x07\x1bc"  # no `[`: not a glob
    err = _refused(call_main, tmp_path / f"x{reset}")
    assert "x\\x1b]0;owned\\x07\\x1bc is not a kerapipe run folder" in err
    bad = _run_folder(tmp_path, f"y{reset}")
    (bad / "run.json").write_text("[]")  # the message run_files builds names the raw path
    assert "y\\x1b]0;owned" in _refused(call_main, bad)


def test_a_folder_name_that_is_not_utf8_is_shown_escaped(tmp_path, call_main):
    name = os.fsdecode(b"run-\xff\xfe")
    _run_folder(tmp_path, name)
    code, out, _ = call_main("compare", tmp_path / name)
    assert code == 0 and out.splitlines()[1].startswith("run-\\udcff\\udcfe ")


def test_specs_that_differ_at_more_key_paths_than_the_bound_are_refused(
        tmp_path, call_main, monkeypatch):
    monkeypatch.setattr("kerapipe.compare.differences.MAX_DIFFERING_KEYS", 1)
    _run_folder(tmp_path, "a", lr=0.001, epochs=3)
    _run_folder(tmp_path, "b", lr=0.01, epochs=5)
    assert "differ at more than 1 key paths" in _refused(call_main, tmp_path / "a",
                                                         tmp_path / "b")


def test_the_command_offers_the_formats_that_compare_renders():
    from kerapipe.commands.compare import _FORMATS  # kept apart to keep start-up light
    from kerapipe.compare import _RENDERERS, FORMATS

    assert _FORMATS == FORMATS == tuple(_RENDERERS)


def test_printable_escapes_controls_and_keeps_newlines_only_when_asked():
    assert printable("a\x1b[0m\nb") == "a\\x1b[0m\\nb"
    assert printable("a\nb\tc", newlines=True) == "a\nb\\tc"
    assert printable("x" * 50, 10) == "xxxxxxx..."


# --- real runs --------------------------------------------------------------------------

_KERAS_SAVE_WARNING = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword, so passing copy=False "
    "failed:DeprecationWarning")


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory, npz_workspace, kerapipe_main):
    """Two real runs of the 30-example npz pipeline: 1 epoch and 2 epochs at another
    learning rate."""
    root = tmp_path_factory.mktemp("compare")
    pipeline = npz_workspace(root, name="cmp")
    runs = root / "runs"
    assert kerapipe_main("run", pipeline, "--output", runs) == 0
    assert kerapipe_main("run", pipeline, "--output", runs, "--set", "train.epochs=2",
                         "--set", "optimizer.learning_rate=0.01") == 0
    return sorted(runs.iterdir())


@pytest.mark.slow
@_KERAS_SAVE_WARNING
def test_compare_of_real_runs_reads_what_run_wrote(real_runs, call_main):
    document = _json(call_main, *real_runs)
    assert document["differing_keys"] == ["optimizer.learning_rate", "train.epochs"]
    assert [run["spec"] for run in document["runs"]] == [
        {"optimizer.learning_rate": 0.001, "train.epochs": 1},
        {"optimizer.learning_rate": 0.01, "train.epochs": 2}]
    for run, folder, epochs in zip(document["runs"], real_runs, (1, 2)):
        written = json.loads((folder / "metrics.json").read_text())
        record = json.loads((folder / "run.json").read_text())
        assert (run["name"], run["status"], run["test"], run["epochs_run"]) == (
            folder.name, "finished", written["test"], epochs)
        assert run["wall_seconds"] == record["seconds"]["total"]
        assert run["started_at"] == record["started_at"]
    assert document["metrics"] == list(written["test"]) and document["warnings"] == []


@pytest.mark.slow
@_KERAS_SAVE_WARNING
def test_compare_imports_no_tensorflow(real_runs):
    probe = ("import sys\nfrom kerapipe.cli import main\ntry:\n"
             f"    main(['compare', *{[str(r) for r in real_runs]!r}])\n"
             "except SystemExit as exit:\n    assert exit.code in (0, None), exit.code\n"
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
             "('tensorflow', 'keras', 'jax', 'torch'))\nprint(heavy, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"
    assert "test_accuracy" in done.stdout
