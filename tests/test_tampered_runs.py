"""Issue 10: a run folder changed since kerapipe wrote it (``kerapipe/run_files.py``).

``run --resume``, ``predict`` and ``evaluate`` read back run.json, spec.yaml,
``checkpoints/LATEST``, a checkpoint's state.json and the saved models. Each case below
copies one finished run, damages one file (a FIFO, a link to /dev/zero, wrong JSON, a
model Keras refuses) and checks the command exits 2 naming the file, with no traceback,
never hangs, and leaves every other file of the folder as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def finished(tmp_path_factory, npz_workspace, kerapipe_main):
    """One finished run of a 30-example npz (seed drawn), and a .keras file holding a
    Python lambda (which Keras's safe mode refuses)."""
    root = tmp_path_factory.mktemp("tampered")
    pipeline = npz_workspace(root, name="tampered", seed="null")
    assert kerapipe_main("run", pipeline, "--output", root / "runs") == 0
    (run_dir,) = (root / "runs").iterdir()
    import keras  # after the run: kerapipe imports TensorFlow quietly first
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs)).save(
        root / "lambda.keras")
    return root, run_dir


def _edit_json(path: Path, change) -> None:
    record = json.loads(path.read_text("utf-8"))
    change(record)
    path.write_text(json.dumps(record))


def _replace(path: Path, how) -> None:
    """Put something else where `path` was: a FIFO, a link, a folder, bytes."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    if how == "fifo":
        os.mkfifo(path)
    elif how == "dir":
        path.mkdir()
    elif how == "missing":
        pass
    elif isinstance(how, str) and how.startswith("->"):
        os.symlink(how[2:], path)
    else:
        path.write_bytes(how)


def _empty_zip(path: Path) -> None:
    path.unlink()
    zipfile.ZipFile(path, "w").close()


STATE = "checkpoints/epoch-0001/state.json"
LAST = "checkpoints/epoch-0001/last.keras"
LATEST = "checkpoints/LATEST"

# id: (command, what the message names, how to damage the copy `d` of the run; `r` holds
# `outside` (a copy of its checkpoint folder) and `lambda.keras`)
CASES = {
    "resume-run-json-fifo": ("resume", "run.json", lambda d, r: _replace(d / "run.json", "fifo")),
    "resume-run-json-dev-zero": ("resume", "run.json",
                                 lambda d, r: _replace(d / "run.json", "->/dev/zero")),
    "resume-run-json-array": ("resume", "run.json", lambda d, r: _replace(d / "run.json", b"[1,2]")),
    "resume-run-json-not-json": ("resume", "run.json", lambda d, r: _replace(d / "run.json", b"{x")),
    "resume-run-json-not-utf8": ("resume", "run.json",
                                 lambda d, r: _replace(d / "run.json", b"\xff\xfe{}")),
    "resume-pipeline-file-int": ("resume", "pipeline_file", lambda d, r: _edit_json(
        d / "run.json", lambda j: j.update(pipeline_file=5))),
    "resume-pipeline-file-nul": ("resume", "pipeline_file", lambda d, r: _edit_json(
        d / "run.json", lambda j: j.update(pipeline_file="/tmp/a\0.yaml"))),
    "resume-overrides-not-strings": ("resume", "overrides", lambda d, r: _edit_json(
        d / "run.json", lambda j: j.update(overrides=[5, None]))),
    "resume-spec-fifo": ("resume", "spec.yaml", lambda d, r: _replace(d / "spec.yaml", "fifo")),
    "resume-spec-dev-zero": ("resume", "spec.yaml",
                             lambda d, r: _replace(d / "spec.yaml", "->/dev/zero")),
    "resume-spec-too-large": ("resume", "spec.yaml",
                              lambda d, r: _replace(d / "spec.yaml", b"#" * 1_000_001)),
    "resume-drawn-seed-not-an-int": ("resume", "spec.yaml", lambda d, r: (d / "spec.yaml").write_text(
        "\n".join("seed: abc" if line.startswith("seed:") else line
                  for line in (d / "spec.yaml").read_text().splitlines()))),
    "resume-spec-a-list": ("resume", "spec.yaml", lambda d, r: _replace(d / "spec.yaml", b"[1]")),
    "resume-latest-fifo": ("resume", "LATEST", lambda d, r: _replace(d / LATEST, "fifo")),
    "resume-latest-dev-zero": ("resume", "LATEST", lambda d, r: _replace(d / LATEST, "->/dev/zero")),
    "resume-latest-not-utf8": ("resume", "LATEST", lambda d, r: _replace(d / LATEST, b"\xff\n")),
    "resume-latest-long-name": ("resume", "LATEST", lambda d, r: _replace(d / LATEST, b"a" * 300)),
    "resume-latest-a-folder": ("resume", "LATEST", lambda d, r: _replace(d / LATEST, "dir")),
    "resume-latest-absolute-folder-outside": ("resume", "LATEST", lambda d, r: _replace(
        d / LATEST, str(r / "outside").encode() + b"\n")),
    "resume-latest-climbs-out": ("resume", "LATEST", lambda d, r: _replace(
        d / LATEST, b"../../outside\n")),
    "resume-latest-names-no-folder": ("resume", "epoch-0002", lambda d, r: _replace(
        d / LATEST, b"epoch-0002\n")),
    "resume-checkpoint-a-link": ("resume", "epoch-0001", lambda d, r: (
        shutil.rmtree(d / "checkpoints/epoch-0001"),
        os.symlink(r / "outside", d / "checkpoints/epoch-0001"))),
    "resume-state-not-json": ("resume", "state.json", lambda d, r: _replace(d / STATE, b"{x")),
    "resume-state-array": ("resume", "state.json", lambda d, r: _replace(d / STATE, b"[1]")),
    "resume-state-epochs-a-string": ("resume", "epochs_done", lambda d, r: _edit_json(
        d / STATE, lambda j: j.update(epochs_done="abc"))),
    "resume-state-history-a-string": ("resume", "history", lambda d, r: _edit_json(
        d / STATE, lambda j: j.update(history="zzz"))),
    "resume-state-missing": ("resume", "state.json", lambda d, r: _replace(d / STATE, "missing")),
    "resume-last-keras-garbage": ("resume", "last.keras", lambda d, r: _replace(d / LAST, b"junk")),
    "resume-last-keras-empty-zip": ("resume", "last.keras", lambda d, r: _empty_zip(d / LAST)),
    "resume-last-keras-missing": ("resume", "last.keras", lambda d, r: _replace(d / LAST, "missing")),
    "resume-last-keras-holds-a-lambda": ("resume", "last.keras", lambda d, r: shutil.copy(
        r / "lambda.keras", d / LAST)),
    "predict-model-garbage": ("predict", "model.keras",
                              lambda d, r: _replace(d / "model.keras", b"junk")),
    "predict-model-empty-zip": ("predict", "model.keras", lambda d, r: _empty_zip(d / "model.keras")),
    "predict-model-holds-a-lambda": ("predict", "model.keras", lambda d, r: shutil.copy(
        r / "lambda.keras", d / "model.keras")),
    "predict-model-a-folder": ("predict", "model.keras",
                               lambda d, r: _replace(d / "model.keras", "dir")),
    "predict-run-json-fifo": ("predict", "run.json", lambda d, r: _replace(d / "run.json", "fifo")),
    "predict-run-json-array": ("predict", "run.json",
                               lambda d, r: _replace(d / "run.json", b"[1,2]")),
    "predict-class-names-a-number": ("predict", "class_names", lambda d, r: _edit_json(
        d / "run.json", lambda j: j["data"].update(class_names=5))),
    "predict-spec-fifo": ("predict", "spec.yaml", lambda d, r: _replace(d / "spec.yaml", "fifo")),
    "predict-without-data": ("predict", "data.num_classes", lambda d, r: _edit_json(
        d / "run.json", lambda j: j.pop("data"))),  # was: a classifier read as a regression
    "evaluate-model-garbage": ("evaluate", "model.keras",
                               lambda d, r: _replace(d / "model.keras", b"junk")),
    "evaluate-run-json-not-json": ("evaluate", "run.json",
                                   lambda d, r: _replace(d / "run.json", b"{x")),
    "evaluate-base-dir-a-number": ("evaluate", "base_dir", lambda d, r: _edit_json(
        d / "run.json", lambda j: j.update(base_dir=5))),
    "evaluate-data-an-array": ("evaluate", "data", lambda d, r: _edit_json(
        d / "run.json", lambda j: j.update(data=[1]))),
}


@pytest.mark.parametrize("command, named, tamper", CASES.values(), ids=CASES.keys())
def test_a_damaged_run_folder_is_refused_naming_the_file_and_left_as_it_was(
        command, named, tamper, finished, tmp_path, call_main, tree_digest):
    root, run_dir = finished
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    shutil.copytree(run_dir / "checkpoints" / "epoch-0001", tmp_path / "outside")
    shutil.copy(root / "lambda.keras", tmp_path)
    if command == "resume":  # a run that did not finish, so that --resume reads on
        _edit_json(copy / "run.json", lambda j: j.update(status="running"))
    tamper(copy, tmp_path)
    before = tree_digest(tmp_path)
    args = {"resume": ["run", "--resume", copy],
            "predict": ["predict", copy, root / "data.npz", "--output", tmp_path / "p.csv"],
            "evaluate": ["evaluate", copy]}[command]
    code, out, err = call_main(*args)
    assert code == 2, out + err
    assert "Traceback" not in out + err
    assert named in err and "damaged" in err, err
    assert tree_digest(tmp_path) == before


def test_resume_of_a_finished_run_is_refused_by_the_python_api_too(finished, tmp_path, tree_digest):
    from kerapipe import compile_pipeline
    from kerapipe.errors import UsageError

    root, run_dir = finished
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    before = tree_digest(copy)
    with pytest.raises(UsageError, match="finished already") as raised:
        compile_pipeline(root / "p.yaml").run(resume_dir=copy, verbose=0)
    assert raised.value.exit_code == 2 and tree_digest(copy) == before


def test_resume_into_a_folder_that_is_no_run_is_refused_by_the_python_api(finished, tmp_path):
    from kerapipe import compile_pipeline
    from kerapipe.errors import UsageError

    root, _ = finished
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my files\n")
    with pytest.raises(UsageError, match="not a kerapipe run folder") as raised:
        compile_pipeline(root / "p.yaml").run(resume_dir=tmp_path / "mine", verbose=0)
    assert raised.value.exit_code == 2
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_a_checkpoint_left_without_latest_by_a_kill_does_not_block_the_resume(
        finished, tmp_path, call_main):
    """A kill between renaming epoch-0001 into place and pointing LATEST at it leaves the
    folder without LATEST: the resume trains from the start and replaces the folder."""
    _, run_dir = finished
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    _edit_json(copy / "run.json", lambda j: j.update(status="running"))
    (copy / LATEST).unlink()
    code, out, err = call_main("run", "--resume", copy)
    assert code == 0, out + err
    assert (copy / LATEST).read_text() == "epoch-0001\n"
    assert json.loads((copy / "run.json").read_text())["status"] == "finished"
