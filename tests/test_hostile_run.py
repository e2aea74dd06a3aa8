"""Issue 10 on the run side: hostile names and output folders, failures that leave no
record, ragged or unbounded predictions, hostile `predict` inputs.

The run side is safe on its own, whatever the spec side refuses: a spec built in Python
reaches ``run_pipeline`` without ``validate``. Faults that cannot be produced on demand
(a full disk, a bug in kerapipe) are injected by patching the one call that would fail.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import io
import json
import os
import pickle
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

PIPELINE = textwrap.dedent("""\
    kerapipe: 1
    name: case
    seed: 1
    data:
      source: {npz: data.npz}
      split: {validation: 0.2, test: 0.2}
      batch_size: 8
    model:
      layers: [{Dense: {units: 3}}]
    train: {epochs: 1}
    """)


def npz_bytes(**arrays) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def history_epochs(run_dir: Path) -> list[int]:
    with open(run_dir / "history.csv", newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text("utf-8"))


@pytest.fixture(scope="module")
def finished(tmp_path_factory, npz_workspace, kerapipe_main):
    """One finished run (3 classes): the earlier run of these tests."""
    root = tmp_path_factory.mktemp("hostile-run")
    pipeline = npz_workspace(root / "p")
    assert kerapipe_main("run", pipeline, "--output", root / "runs") == 0
    (run_dir,) = (root / "runs").iterdir()
    return root, pipeline, run_dir


# --- 1. the run folder lies directly inside the output folder ---------------------------

HOSTILE_NAMES = {
    "climbs-out-through-a-folder": "a/../../escaped",
    "parent": "../x",
    "absolute": "{tmp}/absolute",
    "nested": "a/b",
    "dot-dot": "..",
    "backslash": "a\\..\\b",
    "nul-byte": "a\0b",
    "empty": "",
}


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_creating_a_run_folder_refuses_a_name_that_is_not_one_folder_name(
        name, tmp_path, tree_digest):
    from kerapipe.errors import UsageError
    from kerapipe.run_folder import RunFolder

    (tmp_path / "out" / "a").mkdir(parents=True)  # `a/..` resolves: the escape would work
    with pytest.raises(UsageError, match="one folder name") as raised:
        RunFolder.create(tmp_path / "out", name.format(tmp=tmp_path))
    assert raised.value.exit_code == 2 and "Received: name=" in str(raised.value)
    assert tree_digest(tmp_path) == {"out": "<dir>", "out/a": "<dir>"}


def test_a_compiled_pipeline_whose_name_escapes_writes_nothing_outside_the_output(
        tmp_path, npz_workspace, tree_digest):
    """Defence in depth: a spec changed in Python after validation is refused too."""
    from kerapipe import compile_pipeline
    from kerapipe.errors import UsageError

    compiled = compile_pipeline(npz_workspace(tmp_path / "p"))
    compiled.spec = dataclasses.replace(compiled.spec, name="a/../../escaped")
    (tmp_path / "out" / "a").mkdir(parents=True)
    before = tree_digest(tmp_path)
    with pytest.raises(UsageError, match="one folder name"):
        compiled.run(output_dir=str(tmp_path / "out"), verbose=0)
    assert tree_digest(tmp_path) == before


@pytest.mark.parametrize("name", ["é", "résumé (1)", "9 lives"])
def test_a_run_name_of_any_script_runs_to_the_end(name, tmp_path, call_main, npz_workspace):
    """A name may start with a letter of any script: the Keras model's name is made
    ASCII and never starts with `_` (TensorFlow's root scope refuses it)."""
    pipeline = npz_workspace(tmp_path / "p")
    pipeline.write_text(pipeline.read_text().replace("name: case", f"name: '{name}'"))
    code, out, err = call_main("run", pipeline, "--output", tmp_path / "runs")
    assert code == 0, out + err
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith(f"{name}-") and read_json(run_dir / "run.json")[
        "status"] == "finished"


@pytest.mark.parametrize("inside", ["", "checkpoints", "new/deeper"],
                         ids=["the-run-folder", "its-checkpoints", "a-new-folder-inside"])
def test_run_refuses_an_output_folder_inside_an_earlier_run(inside, finished, tmp_path,
                                                            call_main, tree_digest):
    root, pipeline, run_dir = finished
    before = tree_digest(run_dir)
    code, out, err = call_main("run", pipeline, "--output", run_dir / inside)
    assert code == 5, out + err
    assert f"inside the run folder {run_dir}" in err and f"--output {run_dir.parent}" in err
    assert "Traceback" not in out + err
    assert tree_digest(run_dir) == before


@pytest.mark.parametrize("name", ["run.json", "spec.yaml"])
def test_an_output_folder_below_a_fifo_named_like_a_run_file_does_not_block(name, tmp_path,
                                                                           call_main,
                                                                           npz_workspace):
    """is_run_folder reads through run_files: a FIFO is no run record, never a wait."""
    import signal

    parent = tmp_path / "out"
    parent.mkdir()
    os.mkfifo(parent / name)
    previous = signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(
        TimeoutError("blocked on the FIFO")))
    signal.alarm(60)
    try:
        code, out, err = call_main("run", npz_workspace(tmp_path / "p"), "--output",
                                   parent / "runs")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert code == 0, out + err


def test_creating_a_run_folder_refuses_a_run_folder_as_the_output_folder(finished, tree_digest):
    from kerapipe.errors import OutputError
    from kerapipe.run_folder import RunFolder

    root, pipeline, run_dir = finished
    before = tree_digest(run_dir)
    with pytest.raises(OutputError, match="inside the run folder"):
        RunFolder.create(run_dir, "again")
    assert tree_digest(run_dir) == before


def test_a_nul_byte_in_the_output_folder_exits_2_without_traceback(
        tmp_path, call_main, npz_workspace):
    code, out, err = call_main("run", npz_workspace(tmp_path / "p"), "--output", "runs\0x")
    assert code == 2, out + err
    assert "NUL" in err and "Received: output=" in err
    assert "Traceback" not in out + err and "internal error" not in err


# --- 2. every failure the process survives is recorded ------------------------------------

def _raise_in_epoch_2(monkeypatch, error: BaseException):
    from kerapipe.callbacks import NonFiniteLossGuard

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise error
        self.epoch = epoch

    monkeypatch.setattr(NonFiniteLossGuard, "on_epoch_begin", on_epoch_begin)


def _raise_in_evaluation(monkeypatch, error: BaseException):
    from kerapipe.pipeline import CompiledPipeline

    def evaluate(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(CompiledPipeline, "evaluate", evaluate)


@pytest.mark.parametrize("inject, epochs_kept", [(_raise_in_epoch_2, [1]),
                                                 (_raise_in_evaluation, [1, 2])],
                         ids=["during-epoch-2", "in-evaluation"])
def test_an_unexpected_error_marks_the_run_failed_and_keeps_the_finished_epochs(
        inject, epochs_kept, tmp_path, call_main, monkeypatch, npz_workspace):
    inject(monkeypatch, RuntimeError("boom inside kerapipe"))
    code, out, err = call_main("run", npz_workspace(tmp_path / "p", epochs=2), "--output",
                               tmp_path / "runs")
    assert code == 1, out + err  # a plain RuntimeError is a bug: re-raised unchanged
    assert "internal error: RuntimeError: boom inside kerapipe" in err
    assert "Traceback" not in out + err
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert f"{run_dir} is marked failed" in err
    record = read_json(run_dir / "run.json")
    assert record["status"] == "failed"
    assert record["reason"] == "RuntimeError: boom inside kerapipe"
    assert history_epochs(run_dir) == epochs_kept
    assert read_json(run_dir / "metrics.json")["stopped"] == record["reason"]
    assert not list(run_dir.rglob(".tmp-*"))


def test_a_keyboard_interrupt_marks_the_run_interrupted_and_keeps_the_finished_epochs(
        tmp_path, call_main, monkeypatch, npz_workspace):
    _raise_in_epoch_2(monkeypatch, KeyboardInterrupt())
    code, out, err = call_main("run", npz_workspace(tmp_path / "p", epochs=2), "--output",
                               tmp_path / "runs")
    assert code == 130, out + err
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = read_json(run_dir / "run.json")
    assert record["status"] == "interrupted" and "KeyboardInterrupt" in record["reason"]
    assert history_epochs(run_dir) == [1]
    assert (run_dir / "checkpoints" / "epoch-0001" / "state.json").is_file()


def _disk_full_from_the_checkpoint_of_epoch_2(monkeypatch):
    """The checkpoint of epoch 2 fills the disk: from then on no new file can be created
    (mkstemp fails), while the blocks a file already holds can still be rewritten."""
    import tempfile

    import kerapipe.run_folder as run_folder

    full = []
    real_fsync, real_mkstemp = run_folder._fsync, tempfile.mkstemp

    def fsync(path):
        if ".tmp-epoch-0002" in str(path):
            full.append(True)
        if full:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(path)

    def mkstemp(*args, **kwargs):
        if full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(run_folder, "_fsync", fsync)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)  # safe_io imports it when it writes


def test_a_full_disk_still_marks_the_run_failed_and_keeps_the_history(tmp_path, call_main,
                                                                     monkeypatch, npz_workspace):
    _disk_full_from_the_checkpoint_of_epoch_2(monkeypatch)
    code, out, err = call_main("run", npz_workspace(tmp_path / "p", epochs=3), "--output",
                               tmp_path / "runs")
    assert code == 5, out + err
    assert "epoch 2" in err and "No space left on device" in err  # the original error
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = read_json(run_dir / "run.json")
    assert record["status"] == "failed" and "No space left on device" in record["reason"]
    assert history_epochs(run_dir) == [1]  # written when epoch 1 was checkpointed
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["LATEST",
                                                                           "epoch-0001"]


def test_a_failure_record_that_cannot_be_built_does_not_mask_the_original_error(
        tmp_path, call_main, monkeypatch, npz_workspace):
    from kerapipe.run_folder import RunFolder

    real = RunFolder._record

    def record(self, status, *args, **kwargs):
        if status != "running":
            raise RuntimeError("the record itself fails")
        return real(self, status, *args, **kwargs)

    monkeypatch.setattr(RunFolder, "_record", record)
    _raise_in_epoch_2(monkeypatch, RuntimeError("the first error"))
    code, out, err = call_main("run", npz_workspace(tmp_path / "p", epochs=2), "--output",
                               tmp_path / "runs")
    assert code == 1 and "RuntimeError: the first error" in err, out + err
    assert "the record itself fails" not in err.splitlines()[0]
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = read_json(run_dir / "run.json")
    assert record["status"] == "failed" and record["reason"] == "RuntimeError: the first error"
    assert history_epochs(run_dir) == [1]


# --- 3. top_k is clamped to the classes there are ---------------------------------------

def test_predictions_csv_lists_at_most_as_many_ranks_as_classes():
    from kerapipe.compiler.predictions import predictions_csv

    probabilities = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]], dtype="float32")
    rows = list(csv.reader(predictions_csv(probabilities, true=np.array([1, 2]),
                                           class_names=["a", "b", "c"], top_k=5,
                                           num_classes=3).splitlines()))
    assert rows[0][-3:] == ["top3", "top3_name", "top3_confidence"]
    assert {len(row) for row in rows} == {6 + 2 * 3}
    assert rows[1][1:4] + rows[1][6:] == ["1", "b", "0.500000", "2", "c", "0.300000",
                                          "0", "a", "0.200000"]


def test_a_huge_top_k_costs_only_the_class_count():
    from kerapipe.compiler.predictions import predictions_csv

    probabilities = np.full((3, 4), 0.25, dtype="float32")  # ties: the lowest class first
    rows = list(csv.reader(predictions_csv(probabilities, true=np.array([0, 1, 2]),
                                           top_k=1_000_000_000, num_classes=4).splitlines()))
    assert len(rows[0]) == 6 + 3 * 3 and {len(row) for row in rows} == {len(rows[0])}
    assert [row[1] for row in rows[1:]] == ["0", "0", "0"]


def test_a_run_with_top_k_above_the_class_count_writes_even_rows_and_says_so(
        tmp_path, npz_workspace):
    """The class count can depend on the data (the spec side refuses what it can know):
    a spec changed in Python after validation reaches the clamp the same way."""
    from kerapipe import compile_pipeline
    from kerapipe.report import format_run_summary

    compiled = compile_pipeline(npz_workspace(tmp_path / "p"))
    compiled.spec = dataclasses.replace(
        compiled.spec, output=dataclasses.replace(compiled.spec.output, top_k=1_000_000_000))
    result = compiled.run(output_dir=str(tmp_path / "runs"), verbose=0)
    with open(result.run_dir / "predictions.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][-1] == "top3_confidence" and {len(row) for row in rows} == {13}  # with input
    assert ("note: output.top_k is 1000000000 but the model has 3 classes; predictions.csv "
            "ranks all 3." in format_run_summary(result))


# --- 4. hostile `predict` inputs are data errors -------------------------------------------

def _npy_bytes() -> bytes:
    out = io.BytesIO()
    np.save(out, np.zeros((2, 4), dtype="float32"))
    return out.getvalue()


HOSTILE_INPUTS = {
    "object-array-npz": ("in.npz", npz_bytes(x=np.array([[1.0], [2.0, 3.0]], dtype=object)),
                         "Python objects"),
    "pickle-named-npz": ("in.npz", pickle.dumps({"x": [1, 2]}), "a pickle, which kerapipe "
                         "never loads"),
    "text-named-npz": ("in.npz", b"this is not a zip file", "not a NumPy .npz file"),
    "truncated-npz": ("in.npz", npz_bytes(x=np.zeros((50, 4), dtype="float32"))[:300],
                      "not a NumPy .npz file"),
    "npy-named-npz": ("in.npz", _npy_bytes(), "a single .npy array"),
    "empty-npz": ("in.npz", npz_bytes(), "holds no arrays"),
    "string-features": ("in.npz", npz_bytes(x=np.array([["a"] * 4] * 2)), "must be numbers"),
    "scalar-features": ("in.npz", npz_bytes(x=np.float32(1)), "a single value"),
    "latin-1-csv": ("in.csv", "a,b,c,d\n1,2,3,d\u00e9j\u00e0\n".encode("latin-1"),
                    "line 2: not UTF-8 text (the bytes b'\\xe9' at byte 8 of the line)"),
    "nul-in-csv": ("in.csv", b"a,b,c,d\n1,2\x00,3,4\n", "is not a number"),
}


@pytest.mark.parametrize("name, content, says", HOSTILE_INPUTS.values(),
                         ids=HOSTILE_INPUTS.keys())
def test_predict_on_a_hostile_input_exits_3_naming_the_file(name, content, says, finished,
                                                            tmp_path, call_main):
    root, pipeline, run_dir = finished
    (tmp_path / name).write_bytes(content)
    code, out, err = call_main("predict", run_dir, tmp_path / name)
    assert code == 3, out + err
    assert str(tmp_path / name) in err and says in err
    assert "Traceback" not in out + err and "internal error" not in err


def test_predict_calls_only_a_real_pickle_a_pickle(finished, tmp_path, call_main):
    root, pipeline, run_dir = finished
    (tmp_path / "in.npz").write_bytes(b"this is not a zip file")
    code, out, err = call_main("predict", run_dir, tmp_path / "in.npz")
    assert code == 3 and "not a NumPy .npz file" in err and "pickle" not in err, out + err


def test_predict_refuses_an_npz_beyond_the_memory_bound_before_decompressing(
        finished, tmp_path, call_main, monkeypatch):
    import kerapipe.compiler.sources.npz_file as npz_module

    root, pipeline, run_dir = finished
    monkeypatch.setattr(npz_module, "array_memory_bound", lambda: 1 << 20)
    np.savez_compressed(tmp_path / "in.npz", x=np.zeros((1 << 17, 4), "float32"))  # 2 MiB
    read = []
    real_read = npz_module.np.lib.format.read_array
    monkeypatch.setattr(npz_module.np.lib.format, "read_array",
                        lambda *args, **kwargs: read.append(1) or real_read(*args, **kwargs))
    code, out, err = call_main("predict", run_dir, tmp_path / "in.npz")
    assert code == 3, out + err
    assert f"{tmp_path / 'in.npz'}: array 'x'" in err and "2.0 MiB" in err and "1.0 MiB" in err
    assert read == []  # refused from the header: nothing was decompressed


def test_predict_refuses_a_csv_line_beyond_the_line_bound(finished, tmp_path, call_main,
                                                          monkeypatch):
    import kerapipe.compiler.sources.csv_file as csv_module

    root, pipeline, run_dir = finished
    monkeypatch.setattr(csv_module, "MAX_CSV_LINE_CHARS", 100)
    (tmp_path / "in.csv").write_text("a,b,c,d\n1,2,3,4\n" + "5" * 500 + ",6,7,8\n")
    code, out, err = call_main("predict", run_dir, tmp_path / "in.csv")
    assert code == 3, out + err
    assert f"{tmp_path / 'in.csv'}, line 3: longer than 100 characters" in err


def test_predict_on_a_csv_header_of_more_columns_than_the_bound_exits_3_at_once(
        finished, tmp_path, call_main):
    """The column lookup was quadratic (100,001 columns ran past two minutes)."""
    root, pipeline, run_dir = finished
    (tmp_path / "wide.csv").write_text(",".join(f"c{i}" for i in range(100_001)) + "\n")
    code, out, err = call_main("predict", run_dir, tmp_path / "wide.csv")
    assert code == 3 and "100,001 columns" in err, out + err


@pytest.mark.parametrize("content", ["csv-header-only", "npz-no-rows"])
def test_predict_on_an_input_without_examples_exits_3(content, finished, tmp_path, call_main):
    root, pipeline, run_dir = finished
    if content == "csv-header-only":
        path = tmp_path / "in.csv"
        path.write_text("a,b,c,d\n")
    else:
        path = tmp_path / "in.npz"
        path.write_bytes(npz_bytes(x=np.zeros((0, 4), dtype="float32")))
    code, out, err = call_main("predict", run_dir, path)
    assert code == 3 and "Traceback" not in out + err, out + err
    assert "no rows" in err or "no examples" in err


def test_a_folder_name_too_long_for_the_file_system_exits_5_not_1(
        tmp_path, call_main, npz_workspace):
    code, out, err = call_main("run", npz_workspace(tmp_path / "p"), "--output",
                               tmp_path / ("a" * 300))
    assert code == 5 and "at most 255" in err and "Traceback" not in out + err, out + err


def test_predict_on_an_input_name_too_long_for_the_file_system_exits_3(finished, tmp_path,
                                                                       call_main):
    root, pipeline, run_dir = finished
    code, out, err = call_main("predict", run_dir, tmp_path / ("a" * 300 + ".npz"))
    assert code == 3 and "Traceback" not in out + err, out + err


IMAGE_PIPELINE = PIPELINE.replace("{npz: data.npz}", "{images: {dir: pics, image_size: [8, 8]}}"
                                  ).replace("[{Dense: {units: 3}}]",
                                            "[Flatten, {Dense: {units: 2}}]")


def png(value: int) -> bytes:
    import tensorflow as tf

    return tf.io.encode_png(tf.fill((8, 8, 3), tf.constant(value, tf.uint8))).numpy()


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A finished run trained on a folder of 8x8 PNG images (two classes)."""
    from kerapipe.cli import main

    root = tmp_path_factory.mktemp("image-run")
    for label in ("a", "b"):
        (root / "pics" / label).mkdir(parents=True)
        for i in range(6):
            (root / "pics" / label / f"{i}.png").write_bytes(png(40 * i + 100 * (label == "b")))
    (root / "p.yaml").write_text(IMAGE_PIPELINE)
    try:
        main(["run", str(root / "p.yaml"), "--output", str(root / "runs")])
    except SystemExit as exit_:
        assert exit_.code == 0
    (run_dir,) = (root / "runs").iterdir()
    return run_dir


def test_predict_on_an_undecodable_image_exits_3_naming_it(image_run, tmp_path, call_main):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.png").write_bytes(png(10))
    (tmp_path / "in" / "bad.png").write_bytes(png(20)[:40])
    code, out, err = call_main("predict", image_run, tmp_path / "in")
    assert code == 3, out + err
    assert f"{tmp_path / 'in' / 'bad.png'}: cannot be decoded" in err
    assert "Traceback" not in out + err and "internal error" not in err


def test_predict_reads_only_regular_files_inside_the_input_folder(image_run, tmp_path,
                                                                  call_main):
    import os

    folder, outside = tmp_path / "in", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / "good.png").write_bytes(png(10))
    (outside / "secret.png").write_bytes(png(30))
    os.mkfifo(folder / "fifo.png")  # reading it would wait for a writer forever
    unblock = threading.Timer(30, _end_fifo, [folder / "fifo.png"])  # a failure, not a hang
    unblock.start()
    (folder / "zero.png").symlink_to("/dev/zero")  # endless
    (folder / "root").symlink_to("/")  # the whole file system
    (folder / "linked-folder").symlink_to(outside)
    (folder / "linked.png").symlink_to(outside / "secret.png")
    try:
        code, out, err = call_main("predict", image_run, folder)
    finally:
        unblock.cancel()
    assert code == 0, out + err
    assert [row.split(",")[1] for row in out.splitlines()[1:]] == ["good.png"]


def test_predict_refuses_an_image_file_beyond_the_size_bound(image_run, tmp_path, call_main,
                                                             monkeypatch):
    import kerapipe.compiler.sources.image_folder as images_module

    monkeypatch.setattr(images_module, "MAX_IMAGE_FILE_BYTES", 64)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "big.png").write_bytes(png(10) + b"\0" * 100)
    code, out, err = call_main("predict", image_run, tmp_path / "in")
    assert code == 3, out + err
    assert f"{tmp_path / 'in' / 'big.png'}" in err and "kerapipe reads from one such file" in err


def _end_fifo(path: Path) -> None:
    """Give a reader blocked on the FIFO its end of file (no reader: nothing to do)."""
    import os

    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


# --- 6. run folders written before the run-name rule still open -------------------------

def old_run(finished, tmp_path: Path, name: str, also: tuple[str, str] = ("", "")) -> Path:
    """A copy of the finished run whose spec.yaml holds ``name`` (and one more edit)."""
    import shutil

    root, pipeline, run_dir = finished
    copy = tmp_path / "old-run"
    shutil.copytree(run_dir, copy)
    spec = (copy / "spec.yaml").read_text("utf-8")
    assert "\nname: case\n" in spec
    spec = spec.replace("\nname: case\n", f"\nname: {json.dumps(name)}\n").replace(*also)
    (copy / "spec.yaml").write_text(spec, "utf-8")
    return copy


@pytest.mark.parametrize("name", ["caf\u00e9", "_x", "a/../../escaped", "."],
                         ids=["non-ascii", "leading-underscore", "path", "dot"])
def test_a_run_named_before_the_run_name_rule_still_predicts_and_evaluates(
        name, finished, tmp_path, call_main):
    run_dir = old_run(finished, tmp_path, name)
    (tmp_path / "in.npz").write_bytes(npz_bytes(x=np.zeros((3, 4), "float32")))
    code, out, err = call_main("predict", run_dir, tmp_path / "in.npz")
    assert code == 0, out + err
    assert len(out.splitlines()) == 1 + 3
    code, out, err = call_main("evaluate", run_dir)
    assert code == 0 and "test metrics:" in out, out + err


def test_a_stored_spec_with_a_bad_name_and_another_error_is_still_refused(finished, tmp_path,
                                                                          call_main):
    run_dir = old_run(finished, tmp_path, "_x", ("batch_size: 8", "batch_size: 0"))
    (tmp_path / "in.npz").write_bytes(npz_bytes(x=np.zeros((3, 4), "float32")))
    code, out, err = call_main("predict", run_dir, tmp_path / "in.npz")
    assert code == 2, out + err
    assert "error[bad-name]" in err and "data.batch_size" in err
    assert "Traceback" not in out + err


# --- 5. out of memory while building the model ------------------------------------------
# (the fix is in kerapipe/compiler/build.py; this checks it from the command line)

def test_out_of_memory_while_building_the_model_exits_4_not_shape_error(tmp_path,
                                                                        call_main, npz_workspace):
    pipeline = npz_workspace(tmp_path / "p")
    pipeline.write_text(pipeline.read_text().replace("units: 3", "units: 1000000000000"))
    code, out, err = call_main("plan", pipeline)  # 16 TB of weights: refused at once
    assert code == 4 and "out of memory" in err and "shape-error" not in err, out + err
