"""The run folder's plots, classification_report.csv and report.html
(``kerapipe.html_report``), and ``kerapipe report RUN_DIR``.

Most tests write a run folder's files by hand (what a finished run leaves) and report on
it without TensorFlow; the slow ones train tiny shipped pipelines for real."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from kerapipe.compiler.predictions import outputs_predictions_csv, predictions_csv
from kerapipe.html_report import write_run_report
from kerapipe.plots import png_size
from kerapipe.report import classification_report, counts_of_classes
from kerapipe.run_folder import RunFolder

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"
HOSTILE = ['<script>alert("x")</script>', '"><img src=x onerror=alert(1)>', "$\\frac{a$",
           "&amp; <b>bold</b>"]


def _write_run(folder: Path, *, class_names=("a", "b", "c"), true=None, outputs=None,
               regression=False, status="finished", spec_text="name: demo\n",
               inputs=None, several=None, test=True) -> Path:
    """A finished run's files as kerapipe writes them (no model.keras: none is read)."""
    folder.mkdir(parents=True)
    data = {"description": "npz:data.npz (9 examples)", "splits": {"train": 5,
            "validation": 2, "test": 9}, "class_names": None if regression else
            list(class_names), "num_classes": None if regression else len(class_names),
            "example_shape": [4], "feature_columns": None, "outputs": None}
    rng = np.random.default_rng(0)
    if several:
        data["outputs"] = several
    record = {"status": status, "kerapipe": "0.1.0", "keras": "3", "tensorflow": "2",
              "seed": 1, "command": ["kerapipe", "run", "x.yaml"], "data": data,
              "started_at": "2026-01-01T00:00:00+00:00",
              "finished_at": "2026-01-01T00:01:00+00:00"}
    (folder / "run.json").write_text(json.dumps(record))
    (folder / "spec.yaml").write_text(spec_text)
    (folder / "history.csv").write_text(
        "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate\n"
        "1,1.0,0.5,1.1,0.4,0.01\n2,0.8,0.6,0.9,0.55,0.01\n3,0.7,0.7,0.85,0.6,0.01\n")
    (folder / "metrics.json").write_text(json.dumps(
        {"test": {"loss": 0.85, "accuracy": 0.6} if test else {}, "epochs_run": 3}))
    (folder / "model_summary.txt").write_text("Model: \"demo\"\n Total params: 15\n")
    if not test:
        return folder
    if several:
        (folder / "predictions.csv").write_text(outputs_predictions_csv(
            outputs, {name: (facts["class_names"], facts["num_classes"])
                      for name, facts in several.items()},
            inputs=inputs, true=true))
    elif regression:
        targets = rng.normal(100, 10, 9) if true is None else true
        values = targets + rng.normal(0, 3, 9) if outputs is None else outputs
        (folder / "predictions.csv").write_text(predictions_csv(
            values[:, None], inputs=inputs or list(range(2, 11)), true=targets))
    else:
        true = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2]) if true is None else true
        outputs = rng.dirichlet(np.ones(len(class_names)), len(true)) if outputs is None \
            else outputs
        (folder / "predictions.csv").write_text(predictions_csv(
            outputs, inputs=inputs or [f"images/{i}.png" for i in range(len(true))],
            true=true, class_names=list(class_names), num_classes=len(class_names)))
    return folder


def _report(folder: Path) -> list[Path]:
    return write_run_report(RunFolder.open_finished(folder))


def _predictions(folder: Path, prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
    with open(folder / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return (np.array([int(r[f"{prefix}true"]) for r in rows]),
            np.array([int(r[f"{prefix}predicted"]) for r in rows]))


def _read_report(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _assert_matches_sklearn(rows: list[dict], true, predicted, names) -> None:
    from sklearn.metrics import classification_report as sklearn_report

    expected = sklearn_report(true, predicted, labels=list(range(len(names))),
                              target_names=list(names), output_dict=True, zero_division=0)
    assert [r["class"] for r in rows] == [*names, "macro avg", "weighted avg"]
    for row in rows:
        want = expected[row["class"]]
        for column, key in (("precision", "precision"), ("recall", "recall"),
                            ("f1", "f1-score")):
            assert float(row[column]) == pytest.approx(want[key], abs=1e-6), (row, column)
        assert int(row["support"]) == want["support"]


class _Tags(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


# --- the numbers ------------------------------------------------------------------------

def test_classification_report_equals_scikit_learns_on_a_known_case():
    # class 3 is never predicted (precision 0/0 -> 0) and class 4 never occurs (support 0)
    true = np.array([0, 0, 1, 1, 1, 2, 2, 3, 3, 0])
    predicted = np.array([0, 1, 1, 1, 2, 2, 0, 2, 1, 0])
    names = ["w", "x", "y", "z", "never"]
    rows = classification_report(*counts_of_classes(true, predicted, 5), names)
    table = [dict(zip(("class", "precision", "recall", "f1", "support"), row)) for row in rows]
    _assert_matches_sklearn(table, true, predicted, names)
    assert table[0]["precision"] == pytest.approx(2 / 3) and table[0]["recall"] == \
        pytest.approx(2 / 3)


def test_run_folder_gets_png_plots_and_a_classification_report_matching_scikit_learn(tmp_path):
    run = _write_run(tmp_path / "run")
    written = _report(run)
    assert {p.relative_to(run).as_posix() for p in written} == {
        "plots/learning_curves.png", "plots/confusion_matrix.png",
        "classification_report.csv", "report.html"}
    for name in ("learning_curves.png", "confusion_matrix.png"):
        data = (run / "plots" / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 1000
        width, height = png_size(data)
        assert width > 100 and height > 100
    _assert_matches_sklearn(_read_report(run / "classification_report.csv"),
                            *_predictions(run), ["a", "b", "c"])


def test_page_is_self_contained_with_inline_images_and_no_url_or_script(tmp_path):
    run = _write_run(tmp_path / "run")
    _report(run)
    page = (run / "report.html").read_text()
    tags = _tags(page)
    images = [attrs for tag, attrs in tags if tag == "img"]
    assert len(images) == 2
    assert all(attrs["src"].startswith("data:image/png;base64,") for attrs in images)
    assert not any(tag in ("script", "link", "iframe", "object", "embed") for tag, _ in tags)
    assert "http:" not in page and "https:" not in page and "url(" not in page
    policy = next(attrs["content"] for tag, attrs in tags
                  if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy")
    assert policy.startswith("default-src 'none'")
    for section in ("Test metrics", "Plots", "Classification report", "Most confused",
                    "History", "Data", "Model", "Pipeline (spec.yaml, as it ran)"):
        assert f"<h2>{section}</h2>" in page
    assert 'id="test-metrics"' in page and 'id="splits"' in page and 'id="history"' in page
    assert "Total params: 15" in page and "name: demo" in page


def test_most_confused_examples_show_their_source_paths_most_confident_first(tmp_path):
    outputs = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1],
                        [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    run = _write_run(tmp_path / "run", true=np.array([0, 0, 1, 1, 2]), outputs=outputs,
                     inputs=["cats/0.png", "cats/1.png", "dogs/2.png", "dogs/3.png", "x/4.png"])
    _report(run)
    page = (run / "report.html").read_text()
    table = page.split('id="most-confused"')[1].split("</table>")[0]
    assert table.index("cats/1.png") < table.index("dogs/3.png")  # 0.8 before 0.6
    assert "dogs/2.png" not in table and "cats/0.png" not in table  # right ones


def test_hostile_class_names_spec_and_paths_cannot_inject_markup(tmp_path):
    run = _write_run(tmp_path / "run", class_names=HOSTILE,
                     true=np.array([0, 1, 2, 3, 0, 1]),
                     outputs=np.eye(4)[[1, 2, 3, 0, 0, 1]] * 0.7 + 0.075,
                     spec_text='name: "</pre><script>alert(1)</script>"\n',
                     inputs=['<img src="http://evil/x">'] * 6)
    _report(run)
    page = (run / "report.html").read_text()
    tags = _tags(page)
    assert {tag for tag, _ in tags} <= {"html", "head", "meta", "title", "style", "body",
                                       "h1", "h2", "p", "table", "thead", "tbody", "tr",
                                       "th", "td", "figure", "img", "figcaption", "pre",
                                       "ul", "li"}
    assert not any("onerror" in attrs for _, attrs in tags)
    assert all(attrs["src"].startswith("data:") for tag, attrs in tags if tag == "img")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;/pre&gt;&lt;script&gt;" in page and "&amp;amp; &lt;b&gt;" in page
    # the mathtext-looking name is drawn as text, not parsed (a parse error would raise)
    assert (run / "plots" / "confusion_matrix.png").read_bytes().startswith(PNG)
    rows = _read_report(run / "classification_report.csv")
    assert [r["class"] for r in rows][:4] == HOSTILE


def test_regression_run_gets_residuals_and_no_confusion_matrix(tmp_path):
    run = _write_run(tmp_path / "run", regression=True)
    written = {p.relative_to(run).as_posix() for p in _report(run)}
    assert written == {"plots/learning_curves.png", "plots/residuals.png", "report.html"}
    assert (run / "plots" / "residuals.png").read_bytes().startswith(PNG)
    page = (run / "report.html").read_text()
    assert 'id="largest-residuals"' in page and "confusion" not in page.lower()


def test_multi_label_run_gets_a_report_per_label_matching_scikit_learn(tmp_path):
    from sklearn.metrics import classification_report as sklearn_report

    names = ["Action", "Comedy", "Drama"]
    rng = np.random.default_rng(3)
    true = rng.random((12, 3)) > 0.5
    scores = np.clip(true * 0.4 + rng.random((12, 3)) * 0.6, 0, 1)  # some wrong
    run = _write_run(tmp_path / "run", class_names=names,
                     spec_text="data:\n  labels: {kind: multi_label, separator: ';'}\n")
    (run / "predictions.csv").write_text(predictions_csv(
        scores, inputs=list(range(12)), true=true.astype(float), class_names=names,
        num_classes=3, kind="multi_label", threshold=0.5, separator=";"))
    written = {p.relative_to(run).as_posix() for p in _report(run)}
    assert written == {"plots/learning_curves.png", "classification_report.csv",
                       "report.html"}
    expected = sklearn_report(true, scores > 0.5, target_names=names, output_dict=True,
                              zero_division=0)
    for row in _read_report(run / "classification_report.csv"):
        assert float(row["f1"]) == pytest.approx(expected[row["class"]]["f1-score"], abs=1e-6)
        assert int(row["support"]) == expected[row["class"]]["support"]
    page = (run / "report.html").read_text()
    assert 'id="most-confused"' in page and "multi-label predictions are sets" in page


def test_several_outputs_get_one_plot_and_report_each(tmp_path):
    rng = np.random.default_rng(1)
    several = {"digit": {"class_names": ["0", "1"], "num_classes": 2},
               "size": {"class_names": None, "num_classes": None}}
    run = _write_run(tmp_path / "run", several=several,
                     outputs={"digit": rng.dirichlet([1, 1], 6), "size": rng.normal(size=(6, 1))},
                     true={"digit": np.array([0, 1, 0, 1, 1, 0]), "size": rng.normal(size=6)},
                     inputs=list(range(6)))
    written = {p.relative_to(run).as_posix() for p in _report(run)}
    assert written == {"plots/learning_curves.png", "plots/confusion_matrix_digit.png",
                       "plots/residuals_size.png", "classification_report_digit.csv",
                       "report.html"}
    _assert_matches_sklearn(_read_report(run / "classification_report_digit.csv"),
                            *_predictions(run, "digit_"), ["0", "1"])


def test_run_without_a_test_split_writes_the_curves_and_says_what_is_missing(tmp_path):
    run = _write_run(tmp_path / "run", test=False)
    written = {p.relative_to(run).as_posix() for p in _report(run)}
    assert written == {"plots/learning_curves.png", "report.html"}
    page = (run / "report.html").read_text()
    assert "<h2>Not in this report</h2>" in page and "no test split" in page
    assert "wrote no predictions.csv" in page


# --- kerapipe report RUN_DIR ------------------------------------------------------------

def test_report_command_regenerates_the_same_files(tmp_path, call_main):
    run = _write_run(tmp_path / "run")
    code, out, err = call_main("report", run)
    assert (code, err) == (0, "")
    assert f"wrote {run / 'report.html'}" in out
    before = {name: (run / name).read_bytes() for name in
              ("report.html", "classification_report.csv", "plots/confusion_matrix.png")}
    (run / "report.html").unlink()
    (run / "plots" / "confusion_matrix.png").unlink()
    assert call_main("report", run)[0] == 0
    assert {name: (run / name).read_bytes() for name in before} == before


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.mkdir(), "is not a kerapipe run folder (it has no run.json)"),
    (lambda p: (p.mkdir(), (p / "run.json").write_text('{"status": "finished"}')),
     "its run.json is not a kerapipe run record"),
    (lambda p: _write_run(p, status="interrupted"), "is a run that was interrupted, not a "
     "finished one"),
], ids=["no-run-json", "foreign-run-json", "unfinished"])
def test_report_command_refuses_a_folder_that_is_not_a_finished_run(tmp_path, call_main,
                                                                   make, expected):
    folder = tmp_path / "folder"
    make(folder)
    code, out, err = call_main("report", folder)
    assert code == 2 and expected in err and "Traceback" not in err
    assert not (folder / "report.html").exists() and not (folder / "plots").exists()


def _head_of(run: Path):
    """The one output's ``Head`` as the report reads it (no plot drawn: cheap)."""
    from kerapipe.html_report import read_run_report

    (head,) = read_run_report(RunFolder.open_finished(run)).heads
    return head


def _one_hot(indices, classes: int) -> np.ndarray:
    """Model outputs whose argmax is ``indices``."""
    return np.eye(classes)[np.asarray(indices)] * 0.8 + 0.2 / classes


@pytest.mark.parametrize("true, predicted", [
    ([0, 0, 1, 1, 0], [0, 1, 1, 0, 0]),  # class 2 neither in the test split nor predicted
    ([0, 0, 1, 1, 0], [0, 2, 1, 2, 0]),  # predicted, but no test example holds it
    ([2, 2, 2, 2, 2], [2, 2, 2, 2, 2]),  # the test split holds one class only
], ids=["class-absent", "only-predicted", "one-class-in-test"])
def test_the_report_counts_every_class_of_the_run_whatever_the_test_split_holds(
        tmp_path, true, predicted):
    run = _write_run(tmp_path / "run", class_names=("Adelie", "Chinstrap", "Gentoo"),
                     true=np.array(true), outputs=_one_hot(predicted, 3))
    head = _head_of(run)
    assert head.class_names == ["Adelie", "Chinstrap", "Gentoo"]
    rows = classification_report(*counts_of_classes(head.true, head.predicted, 3),
                                 head.class_names)
    assert [(name, support) for name, *_, support in rows[:3]] == [
        (name, true.count(i)) for i, name in enumerate(head.class_names)]


def _record_says(run: Path, **data) -> None:
    record = json.loads((run / "run.json").read_text())
    record["data"].update(data)
    (run / "run.json").write_text(json.dumps(record))


def test_the_class_count_is_run_jsons_num_classes_when_it_names_fewer_classes(tmp_path):
    # The run's count of classes is num_classes (what the output layer was checked
    # against); a name list that is shorter leaves the other classes their indices.
    run = _write_run(tmp_path / "run", class_names=("a", "b", "c"),
                     true=np.array([0, 1, 2, 2]), outputs=_one_hot([0, 2, 2, 1], 3))
    _record_says(run, class_names=["a", "b"], num_classes=3)
    head = _head_of(run)
    assert (head.class_names, head.true.tolist(), head.predicted.tolist()) == (
        ["a", "b", "2"], [0, 1, 2, 2], [0, 2, 2, 1])


def test_a_class_beyond_the_runs_classes_is_refused_naming_run_jsons_classes(
        tmp_path, call_main):
    run = _write_run(tmp_path / "run", class_names=("Adelie", "Chinstrap", "Gentoo"),
                     true=np.array([0, 1, 2]), outputs=_one_hot([0, 1, 2], 3))
    _record_says(run, class_names=["Adelie", "Chinstrap"], num_classes=2)
    code, _, err = call_main("report", run)
    assert code == 2 and "Traceback" not in err
    assert ("predictions.csv: true should be a class index from 0 to 1 (run.json's data: "
            "2 classes, 'Adelie', 'Chinstrap'). Received: '2'.") in err
    assert not (run / "report.html").exists()


def test_damaged_predictions_are_a_usage_error_naming_the_file(tmp_path, call_main):
    run = _write_run(tmp_path / "run")
    text = (run / "predictions.csv").read_text().replace("\n1,", "\n1,x,99999,", 1)
    (run / "predictions.csv").write_text(text)
    code, _, err = call_main("report", run)
    assert code == 2 and "predictions.csv" in err and "damaged" in err


def test_a_link_in_place_of_plots_is_refused_and_nothing_is_written_through_it(tmp_path,
                                                                              call_main):
    run = _write_run(tmp_path / "run")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, run / "plots")
    code, _, err = call_main("report", run)
    assert code == 5 and "is not a folder of the run" in err
    assert list(elsewhere.iterdir()) == []


_NO_HEAVY = """
import sys
from kerapipe.cli import main
try:
    main({argv!r})
except SystemExit as exit:
    assert exit.code == 0, exit.code
print(sorted({{m.split(".")[0] for m in sys.modules}} & {{"tensorflow", "keras", "matplotlib"}}))
"""


@pytest.mark.slow
def test_report_command_needs_no_tensorflow_and_validate_no_matplotlib(tmp_path):
    run = _write_run(tmp_path / "run")
    report = subprocess.run([sys.executable, "-c", _NO_HEAVY.format(argv=["report", str(run)])],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert report.stdout.strip().splitlines()[-1] == "['matplotlib']", report.stderr
    validate = subprocess.run([sys.executable, "-c", _NO_HEAVY.format(
        argv=["validate", "pipelines"])], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert validate.stdout.strip().splitlines()[-1] == "[]", validate.stderr


# --- real runs --------------------------------------------------------------------------

@pytest.mark.slow
def test_a_finished_iris_run_has_its_report(tmp_path, call_main):
    code, out, err = call_main("run", ROOT / "pipelines" / "iris.yaml", "--set",
                               "train.epochs=2", "--output", tmp_path)
    assert code == 0, err
    run = next(tmp_path.iterdir())
    for name in ("plots/learning_curves.png", "plots/confusion_matrix.png",
                 "classification_report.csv", "report.html", "model_summary.txt"):
        assert (run / name).stat().st_size > 0, name
    assert "report was not written" not in out
    names = json.loads((run / "run.json").read_text())["data"]["class_names"]
    _assert_matches_sklearn(_read_report(run / "classification_report.csv"),
                            *_predictions(run), names)
    page = (run / "report.html").read_text()
    assert "Total params" in (run / "model_summary.txt").read_text()
    assert "Total params" in page and 'id="test-metrics"' in page


@pytest.mark.slow
def test_a_finished_regression_run_has_residuals(tmp_path, call_main):
    code, _, err = call_main("run", ROOT / "pipelines" / "regression.yaml", "--set",
                             "train.epochs=2", "--output", tmp_path)
    assert code == 0, err
    run = next(tmp_path.iterdir())
    assert (run / "plots" / "residuals.png").read_bytes().startswith(PNG)
    assert not (run / "plots" / "confusion_matrix.png").exists()
    assert not (run / "classification_report.csv").exists()
    assert 'id="largest-residuals"' in (run / "report.html").read_text()


def test_a_link_out_of_the_run_folder_is_never_shown_in_the_page(tmp_path, call_main):
    run = _write_run(tmp_path / "run")
    secret = tmp_path / "secret.txt"
    secret.write_text("name: the secret\n")
    (run / "spec.yaml").unlink()
    os.symlink(secret, run / "spec.yaml")
    code, _, err = call_main("report", run)
    assert code == 2 and "spec.yaml: it is a symbolic link" in err
    assert not (run / "report.html").exists()


@pytest.mark.slow
def test_a_report_that_cannot_be_written_leaves_the_run_finished_with_a_note(
        tmp_path, call_main, npz_workspace, monkeypatch):
    from kerapipe import html_report
    from kerapipe.errors import OutputError

    def full_disk(folder):
        raise OutputError(f"cannot write {folder.path}/report.html: No space left on device.")

    monkeypatch.setattr(html_report, "write_run_report", full_disk)
    npz_workspace(tmp_path)
    code, out, err = call_main("run", tmp_path / "p.yaml", "--output", tmp_path / "runs")
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert "note: the report was not written (OutputError: cannot write" in out
    assert f"write it with: kerapipe report {run}" in out
    assert not (run / "report.html").exists()


def _unfinished(folder: Path, status: str, reason=None) -> Path:
    _write_run(folder, status=status)
    record = json.loads((folder / "run.json").read_text())
    if reason is not None:
        record["reason"] = reason
    (folder / "run.json").write_text(json.dumps(record))
    return folder


NAN = "training stopped: the loss became NaN at epoch 1"


@pytest.mark.parametrize("status, reason, says, resume", [
    ("failed", NAN, f"is a run that failed, not a finished one: {NAN}. Only a finished run "
     "has a report. Fix the cause, then run the pipeline again.", False),
    ("interrupted", "interrupted by SIGTERM", "is a run that was interrupted, not a finished "
     "one: interrupted by SIGTERM. Only a finished run has a report; continue it with: "
     "kerapipe run --resume", True),
    ("running", None, "is a run that is still running, not a finished one. Only a finished "
     "run has a report; wait for it to finish", True),
], ids=["failed", "interrupted", "running"])
def test_report_on_an_unfinished_run_says_how_it_ended_and_suggests_resume_only_to_continue(
        tmp_path, call_main, status, reason, says, resume):
    folder = _unfinished(tmp_path / "run", status, reason)
    code, out, err = call_main("report", folder)
    assert (code, out) == (2, ""), err
    assert says in " ".join(err.split()) and "Traceback" not in err
    assert ("--resume" in err) == resume
