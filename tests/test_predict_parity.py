"""`kerapipe predict` reads its inputs as training read the data: the same CSV reader (its
feature columns by name), the same image-folder indexer and image check.

Parity: a run trained (a few steps) on a tiny CSV and on a tiny image folder, then
`predict` on the same files (and on the CSV with its columns shuffled and an id column
added) gives, for every row of the run's test split, the class the run's own
predictions.csv gives. Rows are matched by their ids (a CSV's line number, an image's
path in the folder), which predictions.csv names in its `input` column; that column is
also checked against the test split loaded again (same seed, same split).

Then one test per wrong answer `predict` gave before (issue 11, items 1 and 6).
"""

from __future__ import annotations

import csv
import io
import random
import textwrap
from pathlib import Path

import numpy as np
import pytest

CSV_PIPELINE = textwrap.dedent("""\
    kerapipe: 1
    name: parity
    seed: 3
    data:
      source: {csv: {path: data.csv, label: label}}
      split: {validation: 0.2, test: 0.3}
      batch_size: 8
    model:
      layers: [{Dense: {units: 16, activation: relu}}, {Dense: {units: 2}}]
    loss: {name: sparse_categorical_crossentropy, from_logits: true}
    optimizer: {name: adam, learning_rate: 0.05}
    train: {epochs: 4}
    """)

IMAGE_PIPELINE = textwrap.dedent("""\
    kerapipe: 1
    name: parity-images
    seed: 3
    data:
      source: {images: {dir: pics, image_size: [8, 8]}}
      split: {validation: 0.2, test: 0.3}
      batch_size: 4
      preprocess: [{rescale: 1/255}]
    model:
      layers: [Flatten, {Dense: {units: 2}}]
    train: {epochs: 2}
    """)

COLUMNS = ["f1", "f2", "label"]


def csv_rows(n: int = 40) -> list[list[str]]:
    """Rows of f1, f2, label: the class is f1's side of 5; f2 is one constant, so a model
    that reads f2 where f1 belongs predicts one class for every row."""
    rng = random.Random(0)
    rows = []
    for i in range(n):
        label = i % 2
        rows.append([f"{(8 if label else 2) + rng.uniform(-1, 1):.3f}", "0.5", str(label)])
    return rows


def write_csv(path: Path, header: list[str], rows: list[list[str]], bom: bool = False,
              separator: str = ",") -> Path:
    text = separator.join(header) + "\n" + "".join(",".join(row) + "\n" for row in rows)
    path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8")
    return path


def reordered(rows: list[list[str]], order: list[str], extra: dict) -> tuple[list, list]:
    """The rows with their columns in ``order``; ``extra`` maps a new column to its values."""
    header = order
    out = []
    for number, row in enumerate(rows):
        value = dict(zip(COLUMNS, row))
        value.update({name: make(number) for name, make in extra.items()})
        out.append([value[name] for name in header])
    return header, out


def train(call_main, folder: Path, pipeline: str) -> Path:
    (folder / "p.yaml").write_text(pipeline)
    code, out, err = call_main("run", folder / "p.yaml", "--output", folder / "runs")
    assert code == 0, out + err
    (run_dir,) = (folder / "runs").iterdir()
    return run_dir


def predicted(out: str) -> dict[str, int]:
    """`predict`'s output: input id -> predicted class."""
    rows = list(csv.DictReader(io.StringIO(out)))
    return {row["input"]: int(row["predicted"]) for row in rows}


def run_test_predictions(run_dir: Path, folder: Path) -> dict[str, int]:
    """The run's predictions.csv: the id of each test example (its `input`) -> class."""
    with open(run_dir / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    return {row["input"]: int(row["predicted"]) for row in rows}


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    from kerapipe.cli import main

    folder = tmp_path_factory.mktemp("csv-parity")
    write_csv(folder / "data.csv", COLUMNS, csv_rows())
    (folder / "p.yaml").write_text(CSV_PIPELINE)
    try:
        main(["run", str(folder / "p.yaml"), "--output", str(folder / "runs")])
    except SystemExit as exit_:
        assert exit_.code == 0
    (run_dir,) = (folder / "runs").iterdir()
    return folder, run_dir


def png(value: int) -> bytes:
    import tensorflow as tf

    return tf.io.encode_png(tf.fill((8, 8, 3), tf.constant(value, tf.uint8))).numpy()


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    from kerapipe.cli import main

    folder = tmp_path_factory.mktemp("image-parity")
    for label in ("dark", "light"):
        (folder / "pics" / label).mkdir(parents=True)
        for i in range(6):
            value = 20 + 10 * i if label == "dark" else 180 + 10 * i
            (folder / "pics" / label / f"{i}.png").write_bytes(png(value))
    (folder / "p.yaml").write_text(IMAGE_PIPELINE)
    try:
        main(["run", str(folder / "p.yaml"), "--output", str(folder / "runs")])
    except SystemExit as exit_:
        assert exit_.code == 0
    (run_dir,) = (folder / "runs").iterdir()
    return folder, run_dir


# --- parity ---------------------------------------------------------------------------------

def test_predict_on_the_training_csv_gives_the_runs_own_predictions(csv_run, call_main):
    folder, run_dir = csv_run
    code, out, err = call_main("predict", run_dir, folder / "data.csv")
    assert code == 0, out + err
    mine = predicted(out)
    assert sorted(mine, key=int) == [str(line) for line in range(2, 42)]  # file lines
    expected = run_test_predictions(run_dir, folder)
    assert {line: mine[line] for line in expected} == expected


def test_predict_on_the_csv_with_columns_shuffled_and_an_id_column_gives_the_same(
        csv_run, tmp_path, call_main):
    folder, run_dir = csv_run
    header, rows = reordered(csv_rows(), ["row_id", "f2", "label", "f1"],
                             {"row_id": lambda i: f"r{i}"})
    write_csv(tmp_path / "shuffled.csv", header, rows)
    code, out, err = call_main("predict", run_dir, tmp_path / "shuffled.csv")
    assert code == 0, out + err
    expected = run_test_predictions(run_dir, folder)
    assert {line: predicted(out)[line] for line in expected} == expected


def test_predict_on_the_training_image_folder_gives_the_runs_own_predictions(
        image_run, call_main):
    folder, run_dir = image_run
    code, out, err = call_main("predict", run_dir, folder / "pics")
    assert code == 0, out + err
    mine = predicted(out)
    assert sorted(mine) == sorted(f"{label}/{i}.png" for label in ("dark", "light")
                                  for i in range(6))
    expected = run_test_predictions(run_dir, folder)
    assert {path: mine[path] for path in expected} == expected


@pytest.mark.parametrize("which", ["csv_run", "image_run"])
def test_the_runs_predictions_csv_names_each_rows_source(which, request):
    """`input` is the test example's CSV line or image path, in test-split order."""
    from kerapipe import load_spec
    from kerapipe.compiler.sources.loading import load_data

    folder, run_dir = request.getfixturevalue(which)
    data = load_data(load_spec(run_dir / "spec.yaml"), folder)
    with open(run_dir / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["input"] for row in rows] == [str(i) for i in data.test.ids]
    assert list(rows[0])[:3] == ["index", "input", "predicted"]


# --- one test per wrong answer of issue 11 ----------------------------------------------------

# Was: matched by position, so f2's constant was read as f1 (one class for every row); an
# extra column gave a raw Keras shape error naming no column.
SAME_COLUMNS_OTHERWISE = {
    "columns-in-another-order": (["f2", "f1", "label"], {}),
    "an-extra-column-is-passed-over": (["f1", "f2", "label", "note"],
                                       {"note": lambda i: str(i * 7)}),
}


@pytest.mark.parametrize("order, added", SAME_COLUMNS_OTHERWISE.values(),
                         ids=SAME_COLUMNS_OTHERWISE.keys())
def test_the_training_columns_are_read_by_name_whatever_else_the_file_holds(
        order, added, csv_run, tmp_path, call_main):
    folder, run_dir = csv_run
    header, rows = reordered(csv_rows(), order, added)
    write_csv(tmp_path / "other.csv", header, rows)
    _, same, _ = call_main("predict", run_dir, folder / "data.csv")
    code, out, err = call_main("predict", run_dir, tmp_path / "other.csv")
    assert code == 0, out + err
    assert predicted(out) == predicted(same)


def test_a_renamed_header_is_refused_naming_the_missing_column(csv_run, tmp_path, call_main):
    """Was: accepted silently (any two columns beside the label were taken)."""
    folder, run_dir = csv_run
    write_csv(tmp_path / "renamed.csv", ["g1", "f2", "label"], csv_rows())
    code, out, err = call_main("predict", run_dir, tmp_path / "renamed.csv")
    assert code == 3, out + err
    assert "no column 'f1'" in err and "trained on" in err and "f1, f2" in err


def test_a_file_without_a_header_is_refused_rather_than_losing_its_first_row(
        csv_run, tmp_path, call_main):
    folder, run_dir = csv_run
    (tmp_path / "bare.csv").write_text("".join(",".join(row) + "\n" for row in csv_rows()))
    code, out, err = call_main("predict", run_dir, tmp_path / "bare.csv")
    assert code == 3, out + err
    assert "line 1: the first row looks like data" in err and "f1, f2" in err


def test_a_missing_column_is_refused_by_name(csv_run, tmp_path, call_main):
    folder, run_dir = csv_run
    write_csv(tmp_path / "short.csv", ["f1", "label"], [[r[0], r[2]] for r in csv_rows()])
    code, out, err = call_main("predict", run_dir, tmp_path / "short.csv")
    assert code == 3, out + err
    assert f"{tmp_path / 'short.csv'}: no column 'f2', which the model was trained on" in err


def test_a_bom_and_spaces_after_the_header_commas_read_as_in_training(tmp_path, call_main):
    """Training read such a file (utf-8-sig, names stripped); predict refused it."""
    write_csv(tmp_path / "data.csv", COLUMNS, csv_rows(), bom=True, separator=", ")
    run_dir = train(call_main, tmp_path, CSV_PIPELINE.replace("epochs: 4", "epochs: 1"))
    code, out, err = call_main("predict", run_dir, tmp_path / "data.csv")
    assert code == 0, out + err
    expected = run_test_predictions(run_dir, tmp_path)
    assert {line: predicted(out)[line] for line in expected} == expected


def test_the_run_records_its_feature_columns_for_predict(csv_run):
    """run.json's data.feature_columns (wired by the lead; predict falls back to the
    training file's header without it): here LoadedData carries them."""
    from kerapipe import load_spec
    from kerapipe.compiler.sources.loading import load_data

    folder, run_dir = csv_run
    data = load_data(load_spec(run_dir / "spec.yaml"), folder)
    assert data.feature_names == ["f1", "f2"]


def test_a_damaged_image_is_refused_by_trainings_check_naming_the_file(
        image_run, tmp_path, call_main):
    """Predict checks each image by the rule training uses (`unreadable_image`), so the
    message says what training says of the file: a truncated PNG."""
    folder, run_dir = image_run
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.png").write_bytes(png(30))
    (tmp_path / "in" / "cut.png").write_bytes(png(200)[:50])
    code, out, err = call_main("predict", run_dir, tmp_path / "in")
    assert code == 3, out + err
    assert f"{tmp_path / 'in' / 'cut.png'}: cannot be decoded as an image (a truncated PNG" \
        in err
    assert "Traceback" not in out + err and "internal error" not in err


def test_an_image_folder_is_listed_for_predict_by_trainings_indexer(image_run, tmp_path,
                                                                    call_main):
    """Ids are paths relative to the folder, "/"-separated, in the indexer's order: the
    folder's own images, then each class folder's (before: sorted full paths)."""
    folder, run_dir = image_run
    for name in ("z.png", "a/1.png", "a/0.png", "b/sub/2.png"):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_bytes(png(90))
    code, out, err = call_main("predict", run_dir, tmp_path / "in")
    assert code == 0, out + err
    ids = [row["input"] for row in csv.DictReader(io.StringIO(out))]
    assert ids == ["z.png", "a/0.png", "a/1.png", "b/sub/2.png"]


def test_npz_inputs_keep_their_positions_as_ids(csv_run, tmp_path, call_main):
    folder, run_dir = csv_run
    np.savez(tmp_path / "in.npz", x=np.array([[2.0, 0.5], [8.0, 0.5], [8.5, 0.5]], "float32"))
    code, out, err = call_main("predict", run_dir, tmp_path / "in.npz")
    assert code == 0, out + err
    assert list(predicted(out)) == ["0", "1", "2"]


def test_the_run_records_the_csv_feature_columns_predict_selects_by_name(csv_run):
    import json

    _, run_dir = csv_run
    record = json.loads((run_dir / "run.json").read_text())
    assert record["data"]["feature_columns"] == ["f1", "f2"]


def test_another_table_gets_no_did_you_mean_from_a_chance_name(csv_run, tmp_path, call_main):
    """A file without any of the model's columns is another table: a near name there
    (f1 -> g1) is chance, not a typo, so none is suggested; the columns are listed."""
    folder, run_dir = csv_run
    write_csv(tmp_path / "other_table.csv", ["g1", "g2", "label"], csv_rows())
    code, out, err = call_main("predict", run_dir, tmp_path / "other_table.csv")
    assert code == 3, out + err
    assert "no columns 'f1', 'f2', which the model was trained on." in err
    assert "Did you mean" not in err
