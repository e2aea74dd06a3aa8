"""Hostile inputs to what issue 11 added to `kerapipe predict` and the predictions CSV:
CSV inputs read by training's reader with the feature columns selected by name (as
run.json records them), the `input` column, and image folders read by the folder policy.

Each test is one wrong answer or crash found by trying: `predict` in a fresh process could
not load any classifier's model.keras; a run.json naming a feature column twice fed one
column to two inputs; inputs of another shape got Keras's multi-line message; an image
whose name is not UTF-8 crashed the CSV output (exit 1); a file separated by another
delimiter got no hint.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

CSV_PIPELINE = textwrap.dedent("""\
    kerapipe: 1
    name: hostile-predict
    seed: 3
    data:
      source: {csv: {path: data.csv, label: label, delimiter: ';', id_column: id}}
      split: {validation: 0.2, test: 0.3}
      batch_size: 8
    model:
      layers: [{Dense: {units: 2}}]
    loss: {name: sparse_categorical_crossentropy, from_logits: true}
    train: {epochs: 1}
    """)

IMAGE_PIPELINE = textwrap.dedent("""\
    kerapipe: 1
    name: hostile-predict-images
    seed: 3
    data:
      source: {images: {dir: pics, image_size: [8, 8]}}
      split: {validation: 0.2, test: 0.3}
      batch_size: 4
    model:
      layers: [Flatten, {Dense: {units: 2}}]
    train: {epochs: 1}
    """)


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory, kerapipe_main):
    """A classifier trained one epoch on 20 rows of `id;f1;f2;label`."""
    folder = tmp_path_factory.mktemp("hostile-predict-csv")
    rows = "".join(f"r{i};{(8 if i % 2 else 2) + 0.1 * i:.2f};0.5;{i % 2}\n" for i in range(20))
    (folder / "data.csv").write_text("id;f1;f2;label\n" + rows)
    (folder / "p.yaml").write_text(CSV_PIPELINE)
    assert kerapipe_main("run", folder / "p.yaml", "--output", folder / "runs") == 0
    (run_dir,) = (folder / "runs").iterdir()
    return folder, run_dir


def png(value: int) -> bytes:
    import tensorflow as tf

    return tf.io.encode_png(tf.fill((8, 8, 3), tf.constant(value, tf.uint8))).numpy()


@pytest.fixture(scope="module")
def image_run(tmp_path_factory, kerapipe_main):
    folder = tmp_path_factory.mktemp("hostile-predict-images")
    for label, base in (("dark", 20), ("light", 180)):
        (folder / "pics" / label).mkdir(parents=True)
        for i in range(4):
            (folder / "pics" / label / f"{i}.png").write_bytes(png(base + 10 * i))
    (folder / "p.yaml").write_text(IMAGE_PIPELINE)
    assert kerapipe_main("run", folder / "p.yaml", "--output", folder / "runs") == 0
    (run_dir,) = (folder / "runs").iterdir()
    return folder, run_dir


def rows_of(out: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(out)))


def test_predict_loads_a_classifier_that_nothing_registered_yet(csv_run, call_main,
                                                                monkeypatch):
    """model.keras held the trained model's compile config, whose metrics are kerapipe's
    MetricInputsAdapter; a fresh `kerapipe predict` process had not imported the module
    that registers it, so every classifier's run folder was 'damaged' (exit 2). The saved
    inference model names no kerapipe class now (build.build_inference_model)."""
    from keras.src.saving import object_registration

    folder, run_dir = csv_run
    registry = object_registration.GLOBAL_CUSTOM_OBJECTS
    for key in [k for k in registry if "MetricInputsAdapter" in k]:
        monkeypatch.delitem(registry, key)  # Keras finds it by name as if never imported
    (folder / "in.csv").write_text("f2;f1\n0.5;9\n")
    code, out, err = call_main("predict", run_dir, folder / "in.csv")
    assert code == 0, out + err
    assert [row["input"] for row in rows_of(out)] == ["2"]


@pytest.mark.slow
def test_predict_in_a_child_process_loads_the_run(csv_run):
    folder, run_dir = csv_run
    (folder / "child.csv").write_text("id;f1;f2\nfirst;9;0.5\n")
    done = subprocess.run([sys.executable, "-m", "kerapipe", "predict", str(run_dir),
                           str(folder / "child.csv")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [row["input"] for row in rows_of(done.stdout)] == ["first"]


@pytest.mark.slow
def test_a_runs_model_keras_loads_with_plain_keras_in_a_child_process(csv_run, in_plain_keras):
    """model.keras loads with keras.saving.load_model(path, safe_mode=True) alone, as the
    README promises: it must name no kerapipe class (the trained model's compiled metrics
    are kerapipe's MetricInputsAdapter, so the saved model is not the compiled one)."""
    _, run_dir = csv_run
    line = in_plain_keras(run_dir / "model.keras", "print(model.output_shape, "
                          "any(m.startswith('kerapipe') for m in sys.modules))")
    assert line.split()[-1] == "False"  # nothing of kerapipe was imported


@pytest.mark.parametrize("columns, expected", [
    (["f1", "f1"], "names the column 'f1' more than once"),
    (["f1", "f2", "id"], "names 3 columns, but the model takes 2 features"),
    (["f1"], "names 1 column, but the model takes 2 features"),
    ([f"c{i}" for i in range(50_000)], "names 50,000 columns, but the model takes 2"),
])
def test_a_tampered_list_of_feature_columns_is_refused_as_damage(csv_run, call_main, columns,
                                                                  expected):
    """A name twice fed one column to two inputs (a wrong answer, exit 0); a count other
    than the model's got Keras's shape message blaming the input file."""
    folder, run_dir = csv_run
    record_path = run_dir / "run.json"
    original = record_path.read_text()
    record = json.loads(original)
    record["data"]["feature_columns"] = columns
    try:
        record_path.write_text(json.dumps(record))
        (folder / "tampered.csv").write_text("f1;f2;id\n1;2;a\n")
        code, out, err = call_main("predict", run_dir, folder / "tampered.csv")
    finally:
        record_path.write_text(original)
    assert code == 2, out + err
    assert "run.json: data.feature_columns " + expected in err, err
    assert "the run folder looks damaged" in err and "Received: feature_columns=" in err
    assert len(err) < 1000, err  # a long list is cut


def test_inputs_of_another_shape_are_refused_naming_both_shapes(csv_run, call_main):
    """Keras's refusal named no file and listed its call's arguments on several lines."""
    folder, run_dir = csv_run
    np.savez(folder / "wide.npz", x=np.zeros((3, 5), np.float32))
    code, out, err = call_main("predict", run_dir, folder / "wide.npz")
    assert code == 3, out + err
    assert "wide.npz: each example has shape (5,), but the model takes (2,)" in err, err
    assert "Received: shape=(5,)" in err and "training=False" not in err, err


def test_a_file_with_another_delimiter_gets_a_hint(csv_run, call_main):
    folder, run_dir = csv_run
    (folder / "commas.csv").write_text("f1,f2\n1,2\n")
    code, out, err = call_main("predict", run_dir, folder / "commas.csv")
    assert code == 3, out + err
    assert "the file looks separated by ',', but the pipeline reads ';'" in err, err


def test_the_input_column_stays_well_formed_csv(csv_run, call_main):
    """Ids with the delimiter, commas, quotes and non-ASCII text come back as written."""
    folder, run_dir = csv_run
    ids = ['a,b', 'say "hi"', "a;b", "ünï", "x" * 5000]
    lines = "".join('"' + i.replace('"', '""') + '";9;0.5\n' for i in ids)
    (folder / "ids.csv").write_text("id;f1;f2\n" + lines, encoding="utf-8")
    code, out, err = call_main("predict", run_dir, folder / "ids.csv")
    assert code == 0, out + err
    rows = list(csv.reader(io.StringIO(out)))
    assert [row[1] for row in rows[1:]] == ids
    assert len({len(row) for row in rows}) == 1


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS refuses names that are not UTF-8")
@pytest.mark.parametrize("to_file", [False, True])
def test_an_image_named_in_bytes_that_are_not_utf8_is_passed_over(image_run, call_main,
                                                                   tmp_path, to_file):
    """Its id could not be written to the predictions CSV: exit 1 (-o) or a CSV that
    standard output cannot encode. The folder policy passes it over, as training refuses it."""
    _, run_dir = image_run
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "ok.png").write_bytes(png(30))
    with open(os.path.join(os.fsencode(inputs), b"bad\xff.png"), "wb") as handle:
        handle.write(png(30))
    out_file = tmp_path / "out.csv"
    args = ["-o", out_file] if to_file else []
    code, out, err = call_main("predict", run_dir, inputs, *args)
    assert code == 0, out + err
    text = out_file.read_text(encoding="utf-8") if to_file else out
    text.encode("utf-8")  # what standard output must write
    assert [row["input"] for row in rows_of(text)] == ["ok.png"]
