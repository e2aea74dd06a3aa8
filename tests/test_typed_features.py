"""Typed features (``data.features``): FeatureSpace and TextVectorization on a CSV table,
missing-value policies, the saved model taking raw columns, and predict's parity with the
run; adaptable Keras preprocessing layers as steps."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from kerapipe.spec.validate import validate_text

WORDS = {"a": "sunny bright warm", "b": "rain cloud storm"}


def write_table(path: Path, rows: int = 120, seed: int = 0, extra_rows: str = "") -> None:
    """A mixed table: a float, an int code, a string category, a text; the label follows
    the category and the text (learnable), with some `NA` cells."""
    rng = np.random.default_rng(seed)
    lines = ["id,size,code,colour,notes,label"]
    for i in range(rows):
        label = "a" if i % 2 == 0 else "b"
        size = "NA" if i % 17 == 3 else f"{rng.normal(5 if label == 'a' else 7):.3f}"
        colour = ("red" if label == "a" else "blue") if i % 5 else "green"
        colour = "NA" if i % 23 == 7 else colour
        notes = f"{WORDS[label]} {rng.choice(['x', 'y', 'z'])}"
        lines.append(f"r{i},{size},{i % 3},{colour},{notes},{label}")
    path.write_text("\n".join(lines) + "\n" + extra_rows, "utf-8")


PIPELINE = """\
kerapipe: 1
seed: 3
data:
  source: {csv: {path: t.csv, label: label, id_column: id, missing_values: ["", NA]}}
  features:
    size: {float_normalized: {}, missing: mean}
    code: integer_categorical
    colour: {string_categorical: {}, missing: mode}
    notes: {text: {max_tokens: 50, output_mode: multi_hot}}
  crosses:
    - {feature_names: [code, colour], crossing_dim: 8}
  split: {validation: 0.2, test: 0.2}
  batch_size: 16
optimizer: {name: adam, learning_rate: 0.02}
model:
  layers:
    - Dense: {units: 8, activation: relu}
    - Dense: {units: 2}
train: {epochs: %(epochs)d}
"""


@pytest.fixture(scope="module")
def table_run(tmp_path_factory, kerapipe_main):
    folder = tmp_path_factory.mktemp("typed")
    write_table(folder / "t.csv")
    (folder / "p.yaml").write_text(PIPELINE % {"epochs": 8}, "utf-8")
    code = kerapipe_main("run", str(folder / "p.yaml"), "--output", str(folder / "runs"))
    assert code == 0
    (run,) = (folder / "runs").iterdir()
    return folder, run


def test_a_typed_table_trains_and_learns(table_run):
    folder, run = table_run
    record = json.loads((run / "run.json").read_text("utf-8"))
    metrics = json.loads((run / "metrics.json").read_text("utf-8"))
    assert metrics["test"]["accuracy"] >= 0.9
    assert record["data"]["feature_columns"] == ["size", "code", "colour", "notes"]


def test_fills_are_the_training_splits_mean_and_mode(table_run):
    from kerapipe import compile_pipeline

    folder, run = table_run
    record = json.loads((run / "run.json").read_text("utf-8"))
    compiled = compile_pipeline(str(folder / "p.yaml"))  # the same seed: the same splits
    train_ids = set(compiled.data.train.ids.tolist())
    assert len(train_ids) == record["data"]["splits"]["train"]
    rows = list(csv.DictReader((folder / "t.csv").read_text("utf-8").splitlines()))
    sizes = [float(r["size"]) for r in rows if r["id"] in train_ids and r["size"] != "NA"]
    everything = [float(r["size"]) for r in rows if r["size"] != "NA"]
    fills = record["data"]["fill_values"]
    assert fills == compiled.data.source.record()["fill_values"]
    assert fills["size"] == pytest.approx(np.mean(sizes), abs=1e-4)
    assert fills["size"] != pytest.approx(np.mean(everything), abs=1e-6)
    colours = [r["colour"] for r in rows if r["id"] in train_ids and r["colour"] != "NA"]
    assert fills["colour"] == max(sorted(set(colours)), key=colours.count)
    assert record["data"]["dropped_rows"] == 0


def test_predict_on_the_raw_csv_gives_the_runs_own_predictions(table_run, call_main):
    folder, run = table_run
    code, out, err = call_main("predict", str(run), str(folder / "t.csv"))
    assert code == 0, err
    predicted = {row["input"]: row for row in csv.DictReader(out.splitlines())}
    own = list(csv.DictReader((run / "predictions.csv").read_text("utf-8").splitlines()))
    assert own and len(predicted) == 120
    for row in own:
        assert predicted[row["input"]]["predicted_name"] == row["predicted_name"]
        assert float(predicted[row["input"]]["confidence"]) == pytest.approx(
            float(row["confidence"]), abs=1e-5)


def test_the_saved_model_takes_raw_columns_in_plain_keras(table_run, in_plain_keras):
    _, run = table_run
    line = in_plain_keras(run / "model.keras", """
import tensorflow as tf
x = {"size": tf.constant([[5.0], [7.0]]), "code": tf.constant([[0], [1]], tf.int32),
     "colour": tf.constant([["red"], ["blue"]]), "notes": tf.constant(["sunny bright warm",
     "rain cloud storm"])}
print(model.predict(x, verbose=0).argmax(axis=1).tolist())
""")
    assert line == "[0, 1]"


def test_a_category_seen_only_outside_training_is_out_of_vocabulary(tmp_path):
    """FeatureSpace adapts on the training split only."""
    from kerapipe import compile_pipeline

    write_table(tmp_path / "t.csv", rows=60)
    (tmp_path / "p.yaml").write_text(PIPELINE % {"epochs": 1}, "utf-8")
    compiled = compile_pipeline(str(tmp_path / "p.yaml"))
    space = compiled.preprocessing.encoding.space
    vocabulary = space.preprocessors["colour"].get_vocabulary()
    assert {"red", "blue", "green"} <= set(vocabulary)
    assert "NA" not in vocabulary  # a missing token is filled, never a category


def test_drop_leaves_rows_out_and_counts_them(tmp_path, call_main):
    write_table(tmp_path / "t.csv", rows=60)
    text = (PIPELINE % {"epochs": 1}).replace("{float_normalized: {}, missing: mean}",
                                              "{float_normalized: {}, missing: drop}")
    (tmp_path / "p.yaml").write_text(text, "utf-8")
    code, out, err = call_main("run", str(tmp_path / "p.yaml"), "--output",
                                str(tmp_path / "runs"))
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    record = json.loads((run / "run.json").read_text("utf-8"))
    missing = sum(1 for i in range(60) if i % 17 == 3)
    assert record["data"]["dropped_rows"] == missing
    assert f"{missing} rows dropped for missing values" in record["data"]["description"]
    # predict drops them too: one id fewer per dropped row
    code, out, err = call_main("predict", str(run), str(tmp_path / "t.csv"))
    assert code == 0, err
    ids = [row["input"] for row in csv.DictReader(out.splitlines())]
    assert len(ids) == 60 - missing and "r3" not in ids


@pytest.mark.parametrize("cell, expected", [
    ("NA", "line 5, column 'code': 'NA', a missing value"),
    ("1.5", "line 5, column 'code': '1.5', but the feature is integer_categorical, which "
            "takes a whole number"),
    ("", "line 5, column 'code': an empty cell, a missing value"),
])
def test_a_bad_or_refused_cell_names_its_line_and_column(tmp_path, call_main, cell, expected):
    write_table(tmp_path / "t.csv", rows=40)
    lines = (tmp_path / "t.csv").read_text("utf-8").splitlines()
    fields = lines[4].split(",")
    fields[2] = cell
    lines[4] = ",".join(fields)
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n", "utf-8")
    (tmp_path / "p.yaml").write_text(PIPELINE % {"epochs": 1}, "utf-8")
    code, out, err = call_main("run", str(tmp_path / "p.yaml"), "--output",
                                str(tmp_path / "runs"))
    assert code == 3
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


NAMED_INPUTS = """\
kerapipe: 1
seed: 2
data:
  source: {csv: {path: t.csv, label: label, missing_values: ["", NA]}}
  features:
    size: {float_normalized: {}, missing: mean}
    colour: {string_categorical: {}, missing: mode}
    notes: {text: {max_tokens: 40, output_sequence_length: 6}}
  split: {validation: 0.2, test: 0.2}
model:
  inputs: [notes, tabular]
  layers:
    - Embedding: {input_dim: 40, output_dim: 8}
      inputs: notes
    - GlobalAveragePooling1D: {name: pooled}
    - Concatenate: {}
      inputs: [pooled, tabular]
    - Dense: {units: 2}
train: {epochs: 3}
"""


def test_a_text_feature_and_the_table_as_two_named_inputs(tmp_path, call_main,
                                                          in_plain_keras):
    write_table(tmp_path / "t.csv", rows=80)
    (tmp_path / "p.yaml").write_text(NAMED_INPUTS, "utf-8")
    code, out, err = call_main("run", str(tmp_path / "p.yaml"), "--output",
                                str(tmp_path / "runs"))
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    line = in_plain_keras(run / "model.keras", """
print(sorted(t.name for t in model.inputs))
""")
    assert line == "['colour', 'notes', 'size']"
    code, out, err = call_main("predict", str(run), str(tmp_path / "t.csv"))
    assert code == 0, err
    assert len(out.splitlines()) == 81


@pytest.mark.parametrize("change, expected", [
    ("notes: {text: {max_tokens: 40, output_sequence_length: 6}}",
     "p.yaml:8:5: error[not-applicable]: data.features.notes: text feature 'notes' gives a "
     "sequence of token ids"),
    ("inputs: [notes, tabular]", "p.yaml:11:3: error[unknown-feature]: model.inputs: model "
     "input 'tabulr' is neither a feature"),
])
def test_named_input_errors_point_at_their_line(change, expected):
    text = NAMED_INPUTS
    if change.startswith("notes"):
        text = text.replace("  inputs: [notes, tabular]\n", "")
    else:
        text = text.replace(change, "inputs: [notes, tabulr]")
    result = validate_text(text, "p.yaml")
    assert any(issue.format().startswith(expected) for issue in result.errors), \
        [i.format() for i in result.errors]


@pytest.mark.parametrize("entry, expected", [
    ("size: {float_discretized: {}}", "p.yaml:6:31: error[missing-argument]: "
     "data.features.size.float_discretized: float_discretized needs `num_bins`"),
    ("size: {float_normalized: {bins: 3}}", "p.yaml:6:31: error[unknown-argument]: "
     "data.features.size.float_normalized.bins: unknown argument 'bins' of float_normalized."),
    ("size: {float: {}, missing: mode, extra: 1}", "p.yaml:6:38: error[unknown-key]: "
     "data.features.size.extra: unknown key 'extra' of feature 'size'."),
    ("size: {string_categorical: {}, missing: mean}", "p.yaml:6:45: error[not-applicable]: "
     "data.features.size.missing: `missing: mean` fills a column of numbers"),
    ("size: {float: {}, missing: {fill: red}}", "p.yaml:6:39: error[wrong-type]: "
     "data.features.size.missing.fill: a float column's missing values are filled with a "
     "number."),
    ("size: {text: {vocabulary: /etc/passwd, output_mode: count}}", "p.yaml:6:31: "
     "error[wrong-type]: data.features.size.text.vocabulary: TextVectorization's vocabulary "
     "is a list of tokens here"),
    ("label: float", "p.yaml:6:5: error[not-applicable]: data.features.label: 'label' is "
     "the label (data.source.csv), so it cannot also be a feature."),
])
def test_feature_errors_point_at_their_line(entry, expected):
    text = (PIPELINE % {"epochs": 1}).replace("size: {float_normalized: {}, missing: mean}",
                                              entry)
    result = validate_text(text, "p.yaml")
    assert any(issue.format().startswith(expected) for issue in result.errors), \
        [i.format() for i in result.errors]


def test_features_need_a_csv_and_are_listed_once():
    text = (PIPELINE % {"epochs": 1}).replace(
        "id_column: id,", "id_column: id, features: [size],")
    messages = [i.format() for i in validate_text(text, "p.yaml").errors]
    assert any("data.source.csv.features: the features are listed once" in m
               for m in messages), messages
    text = (PIPELINE % {"epochs": 1}).replace(
        "{csv: {path: t.csv, label: label, id_column: id, missing_values: [\"\", NA]}}",
        "{npz: d.npz}")
    messages = [i.format() for i in validate_text(text, "p.yaml").errors]
    assert any("data.features: typed features are the columns of a table" in m
               for m in messages), messages


def test_validate_reads_typed_features_without_tensorflow(tmp_path):
    import subprocess
    import sys

    (tmp_path / "p.yaml").write_text(PIPELINE % {"epochs": 1}, "utf-8")
    code = ("import sys; from kerapipe.cli import main\n"
            f"rc = main(['validate', {str(tmp_path / 'p.yaml')!r}])\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
            "sys.exit(rc)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


ADAPTED_STEPS = """\
kerapipe: 1
seed: 1
data:
  source: {npz: d.npz}
  preprocess:
    - Discretization: {num_bins: 4}
    - Normalization: {}
model:
  layers:
    - Dense: {units: 2}
train: {epochs: 1}
"""


def test_adaptable_keras_layers_adapt_on_the_training_split(tmp_path):
    from kerapipe import compile_pipeline

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype("float32")
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] > 0).astype("int64"))
    (tmp_path / "p.yaml").write_text(ADAPTED_STEPS, "utf-8")
    compiled = compile_pipeline(str(tmp_path / "p.yaml"))
    discretize, normalize = compiled.preprocessing.layers
    boundaries = np.array(discretize.bin_boundaries)
    train = compiled.data.train.x
    assert len(boundaries) == 3
    assert np.allclose(boundaries, np.quantile(train, [0.25, 0.5, 0.75]), atol=0.15)
    bins = np.digitize(train, boundaries).astype("float32")
    assert np.allclose(np.array(normalize.mean).ravel(), bins.mean(axis=0), atol=1e-4)


def test_a_given_vocabulary_is_not_adapted_and_strings_need_a_string_step(tmp_path):
    from kerapipe.spec.steps import takes_strings
    from kerapipe.spec.validate import validate_text as check

    text = ADAPTED_STEPS.replace("- Discretization: {num_bins: 4}\n    - Normalization: {}",
                                 "- StringLookup: {vocabulary: [a, b]}")
    spec = check(text, "p.yaml").spec
    assert takes_strings(spec.data.preprocess)
    from kerapipe.compiler.preprocess import _learns_from_data

    assert not _learns_from_data(spec.data.preprocess[0])
    assert _learns_from_data(check(ADAPTED_STEPS, "p.yaml").spec.data.preprocess[0])


def test_a_text_source_without_a_string_step_is_refused_by_validate():
    text = ("kerapipe: 1\ndata:\n  source: {text: reviews}\n  preprocess:\n"
            "    - Normalization: {}\nmodel:\n  layers:\n    - Dense: {units: 2}\n")
    (issue,) = validate_text(text, "p.yaml").errors
    assert issue.format().startswith("p.yaml:3:12: error[not-applicable]: data.source.text: "
                                     "the examples are text (strings)")
    fixed = text.replace("Normalization: {}", "TextVectorization: {output_sequence_length: 8}")
    assert not validate_text(fixed, "p.yaml").errors


def test_plan_lists_each_feature_its_width_and_its_fill(tmp_path, call_main):
    write_table(tmp_path / "t.csv", rows=60)
    (tmp_path / "p.yaml").write_text(PIPELINE % {"epochs": 1}, "utf-8")
    code, out, err = call_main("plan", str(tmp_path / "p.yaml"))
    assert code == 0, err
    table = out.split("features:\n", 1)[1].split("stages", 1)[0].splitlines()
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["size"][:4] == ["size", "float_normalized", "1", "mean"]
    assert rows["code"] == ["code", "integer_categorical", "4", "refuse"]  # 3 codes + OOV
    assert rows["colour"] == ["colour", "string_categorical", "4", "mode", "('red')"]
    # multi_hot over the training texts' 9 words + OOV: fewer than max_tokens (50)
    assert rows["notes"] == ["notes", "text", "10", "refuse"]
    assert rows["code_X_colour"] == ["code_X_colour", "cross", "8", "-"]


LABEL_COLUMNS = """\
kerapipe: 1
seed: 4
data:
  source: {csv: {path: m.csv, label: [action, comedy, drama]}}
  labels: multi_label
  split: {validation: 0.2, test: 0.2}
model:
  layers:
    - Dense: {units: 16, activation: relu}
    - Dense: {units: 3}
loss: binary_crossentropy
optimizer: {name: adam, learning_rate: 0.02}
train: {epochs: 12}
"""


def write_label_columns(path: Path, rows: int = 200, bad: str = "") -> None:
    rng = np.random.default_rng(1)
    lines = ["x1,x2,action,comedy,drama"]
    for _ in range(rows):
        x = rng.normal(size=2)
        lines.append(f"{x[0]:.3f},{x[1]:.3f},{int(x[0] > 0)},{int(x[1] > 0)},"
                     f"{int(x[0] + x[1] > 0)}")
    if bad:
        lines[3] = bad
    path.write_text("\n".join(lines) + "\n", "utf-8")


def test_several_0_1_label_columns_are_a_multi_label_set(tmp_path, call_main):
    write_label_columns(tmp_path / "m.csv")
    (tmp_path / "p.yaml").write_text(LABEL_COLUMNS, "utf-8")
    code, out, err = call_main("run", str(tmp_path / "p.yaml"), "--output",
                               str(tmp_path / "runs"))
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    record = json.loads((run / "run.json").read_text("utf-8"))
    assert record["data"]["class_names"] == ["action", "comedy", "drama"]
    assert record["data"]["feature_columns"] == ["x1", "x2"]  # the label columns are not
    metrics = json.loads((run / "metrics.json").read_text("utf-8"))
    assert metrics["test"]["accuracy"] >= 0.85  # per-label accuracy; chance is about 0.5
    own = list(csv.DictReader((run / "predictions.csv").read_text("utf-8").splitlines()))
    rows = list(csv.DictReader((tmp_path / "m.csv").read_text("utf-8").splitlines()))
    for row in own:  # `true` is the set of the columns holding 1, on the row's line
        cells = rows[int(row["input"]) - 2]
        assert row["true"] == "|".join(n for n in ("action", "comedy", "drama")
                                       if cells[n] == "1")


def test_label_columns_hold_0_or_1_and_need_the_multi_label_kind(tmp_path, call_main):
    write_label_columns(tmp_path / "m.csv", bad="0.1,0.2,1,yes,0")
    (tmp_path / "p.yaml").write_text(LABEL_COLUMNS, "utf-8")
    code, out, err = call_main("run", str(tmp_path / "p.yaml"), "--output",
                               str(tmp_path / "runs"))
    assert code == 3 and "m.csv, line 4, column 'comedy': 'yes'; with several label " \
                         "columns (a multi-label set), each holds 0 or 1" in err
    (issue,) = validate_text(LABEL_COLUMNS.replace("  labels: multi_label\n", ""),
                             "p.yaml").errors
    assert issue.format().startswith("p.yaml:4:31: error[not-applicable]: "
                                     "data.source.csv.label: several label columns")
    (issue,) = validate_text(LABEL_COLUMNS.replace("[action, comedy, drama]", "[action]"),
                             "p.yaml").errors
    assert issue.format().startswith("p.yaml:4:38: error[wrong-type]: "
                                     "data.source.csv.label: a list of label columns")


def test_a_missing_token_in_the_label_column_is_refused_not_a_class(tmp_path, call_main):
    write_table(tmp_path / "t.csv", rows=40, extra_rows="r99,5.0,1,red,sunny,NA\n")
    (tmp_path / "p.yaml").write_text(PIPELINE % {"epochs": 1}, "utf-8")
    code, out, err = call_main("run", str(tmp_path / "p.yaml"), "--output",
                               str(tmp_path / "runs"))
    assert code == 3
    assert "t.csv, line 42, column 'label': 'NA', a missing value" in err
