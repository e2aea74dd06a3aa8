"""Hostile review of typed features (``data.features``): odd FeatureSpace and
TextVectorization arguments refused by ``validate`` at their line (not by Keras mid-run),
cells that look like numbers, missing-value policies at their edges, Unicode and quoted
cells, predict files that differ from the training file, and the saved model in plain
Keras. Tiny generated tables; each run trains one epoch."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerapipe.errors import DataError
from kerapipe.spec.validate import validate_text

HEADER = "id,size,code,colour,notes,label"


def table_lines(rows: int = 60, seed: int = 0) -> list[str]:
    """A learnable mixed table: the label follows the size, the colour and the words."""
    rng = np.random.default_rng(seed)
    lines = [HEADER]
    for i in range(rows):
        label = "a" if i % 2 == 0 else "b"
        size = f"{rng.normal(5 if label == 'a' else 7):.3f}"
        colour = ("red" if label == "a" else "blue") if i % 5 else "green"
        words = "sunny bright warm" if label == "a" else "rain cloud storm"
        lines.append(f"r{i},{size},{i % 3},{colour},{words} {rng.choice(['x', 'y'])},{label}")
    return lines


def pipeline(features: str, source: str = "", extra: str = "", model: str = "") -> str:
    """A pipeline over t.csv with ``features`` (YAML lines, indented by 4 here)."""
    body = "\n".join("    " + line for line in features.strip().splitlines())
    model = model or "  layers:\n    - Dense: {units: 2}"
    return (f"kerapipe: 1\nseed: 3\ndata:\n  source: {{csv: {{path: t.csv, label: label, "
            f"id_column: id{source}}}}}\n  features:\n{body}\n{extra}"
            f"  split: {{validation: 0.2, test: 0.2}}\n  batch_size: 16\nmodel:\n{model}\n"
            "train: {epochs: 1}\n")


def formatted_errors(text: str) -> list[str]:
    return [issue.format() for issue in validate_text(text, "p.yaml").errors]


# --- arguments Keras would refuse only mid-run: refused by validate, at their line ------

@pytest.mark.parametrize("feature, expected", [
    ("colour: {string_categorical: {max_tokens: 1}}",
     "p.yaml:7:47: error[wrong-type]: data.features.colour.string_categorical.max_tokens: "
     "string_categorical's max_tokens is a whole number from 2"),
    ("code: {integer_categorical: {max_tokens: 0}}",
     "p.yaml:7:46: error[wrong-type]: data.features.code.integer_categorical.max_tokens"),
    ("colour: {string_categorical: {max_tokens: 3, num_oov_indices: 3}}",
     "p.yaml:7:47: error[out-of-range]: data.features.colour.string_categorical.max_tokens: "
     "string_categorical's max_tokens counts its 3 out-of-vocabulary indices too"),
    ("size2: {float_rescaled: {scale: .inf}}",
     "p.yaml:7:37: error[wrong-type]: data.features.size2.float_rescaled.scale: "
     "float_rescaled's scale is a finite number"),
    ("size2: {float_rescaled: {offset: .nan}}",
     "p.yaml:7:38: error[wrong-type]: data.features.size2.float_rescaled.offset"),
    ("colour: {string_categorical: {num_oov_indices: 0}}",
     "p.yaml:7:52: error[out-of-range]: data.features.colour.string_categorical."
     "num_oov_indices: string_categorical needs at least one out-of-vocabulary index"),
    ("size2: {float_discretized: {num_bins: 3, bin_boundaries: [5.0, 6.0]}}",
     "p.yaml:7:46: error[not-applicable]: data.features.size2.float_discretized."
     "bin_boundaries: float_discretized takes `num_bins`"),
    ("size2: {float_discretized: {bin_boundaries: [6.0, 5.0]}}",
     "p.yaml:7:49: error[wrong-type]: data.features.size2.float_discretized.bin_boundaries: "
     "float_discretized's bin_boundaries is a list of increasing finite numbers"),
    ("size2: {float_discretized: {bin_boundaries: [1.0, .inf]}}",
     "p.yaml:7:49: error[wrong-type]: data.features.size2.float_discretized.bin_boundaries"),
    ("notes: {text: {max_tokens: 1, output_mode: multi_hot}}",
     "p.yaml:7:32: error[wrong-type]: data.features.notes.text.max_tokens: text's "
     "max_tokens is a whole number from 2"),
    ("notes: {text: {max_tokens: 2.5, output_mode: multi_hot}}",
     "p.yaml:7:32: error[wrong-type]: data.features.notes.text.max_tokens"),
    ("notes: {text: {max_tokens: 2, output_sequence_length: 4}}",
     "p.yaml:7:32: error[out-of-range]: data.features.notes.text.max_tokens: text's "
     "max_tokens counts the padding id 0 and the out-of-vocabulary id 1"),
    ("notes: {text: {standardize: lower_strip, output_mode: count}}",
     "p.yaml:7:33: error[wrong-type]: data.features.notes.text.standardize: text's "
     "standardize is one of null, lower_and_strip_punctuation"),
    ("notes: {text: {split: null, output_mode: multi_hot}}",
     "p.yaml:7:20: error[not-applicable]: data.features.notes.text.split: a text feature is "
     "one string per example"),
    ("notes: {text: {split: comma, output_mode: count}}",
     "p.yaml:7:27: error[wrong-type]: data.features.notes.text.split"),
    ("notes: {text: {output_mode: one_hot}}",
     "p.yaml:7:33: error[wrong-type]: data.features.notes.text.output_mode: text's "
     "output_mode is one of int, multi_hot, count, tf_idf"),
    ("notes: {text: {ngrams: 0, output_mode: tf_idf}}",
     "p.yaml:7:28: error[wrong-type]: data.features.notes.text.ngrams"),
    ("notes: {text: {ngrams: [2, 2], output_mode: tf_idf}}",
     "p.yaml:7:28: error[wrong-type]: data.features.notes.text.ngrams"),
    ("notes: {text: {sparse: true, output_mode: tf_idf}}",
     "p.yaml:7:20: error[unknown-argument]: data.features.notes.text.sparse: text features "
     "do not take 'sparse'"),
    ("notes: {text: {ragged: true}}",
     "p.yaml:7:20: error[unknown-argument]: data.features.notes.text.ragged"),
    ("notes: {text: {name: words, output_mode: count}}",
     "p.yaml:7:20: error[unknown-argument]: data.features.notes.text.name: text features do "
     "not take 'name'"),
    ("notes: {text: {max_token: 9, output_mode: count}}",
     "p.yaml:7:20: error[unknown-argument]: data.features.notes.text.max_token: unknown "
     "argument 'max_token' of text (TextVectorization). Did you mean 'max_tokens'?"),
    ("notes: {text: {vocabulary: [a, a], output_mode: count}}",
     "p.yaml:7:32: error[wrong-type]: data.features.notes.text.vocabulary: text's "
     "vocabulary is a list of distinct, non-empty tokens"),
    ("notes: {text: {vocabulary: [], output_mode: count}}",
     "p.yaml:7:32: error[wrong-type]: data.features.notes.text.vocabulary"),
    ("notes: {text: {pad_to_max_tokens: true, output_mode: multi_hot}}",
     "p.yaml:7:20: error[not-applicable]: data.features.notes.text.pad_to_max_tokens"),
    ("notes: {text: {output_mode: multi_hot, output_sequence_length: 9}}",
     "p.yaml:7:44: error[not-applicable]: data.features.notes.text.output_sequence_length: "
     "output_sequence_length pads token ids"),
    ("notes: {text: {vocabulary: [a, b], output_mode: tf_idf}}",
     "p.yaml:7:19: error[missing-argument]: data.features.notes.text: a tf_idf text "
     "feature given its vocabulary needs `idf_weights` too"),
    ("notes: {text: {idf_weights: [1.0], output_mode: tf_idf}}",
     "p.yaml:7:20: error[not-applicable]: data.features.notes.text.idf_weights"),
    ("code: {integer_categorical: {}, missing: {fill: 1e10}}",
     "p.yaml:7:53: error[out-of-range]: data.features.code.missing.fill: "
     "integer_categorical holds int32 whole numbers"),
    ("code: {integer_categorical: {}, missing: {fill: 99999999999}}",
     "p.yaml:7:53: error[out-of-range]: data.features.code.missing.fill"),
    ("colour: {string_categorical: {}, missing: {fill: NA}}",
     "p.yaml:7:54: error[not-applicable]: data.features.colour.missing.fill: the fill 'NA' "
     "is itself one of data.source.csv.missing_values"),
    ("colour: {string_categorical: {}, missing: {fill: ' NA '}}",
     "p.yaml:7:54: error[not-applicable]: data.features.colour.missing.fill"),
])
def test_arguments_keras_refuses_late_are_refused_by_validate(feature, expected):
    text = pipeline("size: float\n" + feature, source=', missing_values: ["", NA]')
    errors = formatted_errors(text)
    assert any(error.startswith(expected) for error in errors), errors


@pytest.mark.parametrize("crosses, expected", [
    ("[size2, code, colour]", "p.yaml:12:23: error[out-of-range]: data.crosses[0]."
     "feature_names: takes at most 2 item(s); it has 3."),
    ("[colour, colour]", "p.yaml:12:32: error[not-applicable]: data.crosses[0]."
     "feature_names[1]: the cross names 'colour' twice"),
    ("[notes, colour]", "p.yaml:12:24: error[not-applicable]: data.crosses[0]."
     "feature_names[0]: 'notes' is text; a cross combines categories"),
    ("[size, colour]", "p.yaml:12:24: error[not-applicable]: data.crosses[0]."
     "feature_names[0]: 'size' is float; a cross combines categories"),
])
def test_crosses_take_two_different_categorical_features(crosses, expected):
    text = pipeline("size: float\nsize2: {float_discretized: {num_bins: 3}}\ncode: "
                    "integer_categorical\ncolour: string_categorical\nnotes: {text: "
                    "{output_mode: count}}",
                    extra=f"  crosses:\n    - {{feature_names: {crosses}, crossing_dim: 8}}\n")
    errors = formatted_errors(text)
    assert any(error.startswith(expected) for error in errors), errors


def test_what_keras_takes_is_accepted_and_a_whole_fill_is_an_integer():
    from kerapipe.spec.validate import validate_text as check

    text = pipeline("size: {float_discretized: {bin_boundaries: [5.0, 6.0], output_mode: int}}\n"
                    "code: {integer_categorical: {max_tokens: 2}, missing: {fill: 3.0}}\n"
                    "colour: {string_hashed: {num_bins: 1}}\n"
                    "notes: {text: {max_tokens: null, ngrams: [1, 2], standardize: null, "
                    "output_mode: tf_idf}}")
    result = check(text, "p.yaml")
    assert not result.errors, [i.format() for i in result.errors]
    code = result.spec.data.features.get("code")
    assert code.fill == 3 and isinstance(code.fill, int)  # filled as "3", never "3.0"


def test_validate_of_a_hostile_file_exits_2_without_tensorflow(tmp_path):
    text = pipeline("size: {float_discretized: {num_bins: 3, bin_boundaries: [1, 2]}}\n"
                    "colour: {string_categorical: {num_oov_indices: 0, max_tokens: 1}}\n"
                    "notes: {text: {sparse: true, ngrams: -1, vocabulary: /etc/passwd}}",
                    extra="  crosses:\n    - {feature_names: [colour, colour, size], "
                    "crossing_dim: 0}\n")
    (tmp_path / "p.yaml").write_text(text, "utf-8")
    code = ("import sys; from kerapipe.cli import main\n"
            "try:\n"
            f"    main(['validate', {str(tmp_path / 'p.yaml')!r}])\n"
            "except SystemExit as e:\n"
            "    rc = e.code\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
            "sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    output = done.stdout + done.stderr
    for key in ("bin_boundaries", "num_oov_indices", "max_tokens", "sparse", "ngrams",
                "vocabulary", "feature_names"):
        assert f".{key}" in output, (key, output)


def renamed_table(names: list[str]) -> list[str]:
    """The table with its four feature columns renamed."""
    return [",".join(["id", *names, "label"])] + table_lines()[1:]


@pytest.mark.parametrize("names, features, extra, expected", [
    (["size", "code", "tabular", "notes"], "size: float\ntabular: string_categorical", "",
     "p.yaml:7:5: error[duplicate-name]: data.features.tabular: 'tabular' is the name of "
     "the vector of the features"),
    (["size", "code", "features", "notes"], "size: float\nfeatures: string_categorical", "",
     "p.yaml:7:5: error[duplicate-name]: data.features.features"),
    (["size", "code", "a/b", "notes"], "size: float\na/b: string_categorical", "",
     "p.yaml:7:5: error[bad-name]: data.features.a/b: feature 'a/b' names the saved "
     "model's input of its column, and Keras refuses '/'"),
    (["size", "code", "co lour", "notes"], "code: integer_categorical\nco lour: "
     "string_categorical", "  crosses:\n    - {feature_names: [code, co lour], "
     "crossing_dim: 4}\n", "p.yaml:9:30: error[bad-name]: data.crosses[0].feature_names[1]: "
     "FeatureSpace names a cross's layer after its features ('code_X_co lour')"),
    (["size", "code", "colour", "code_X_colour"], "code: integer_categorical\ncolour: "
     "string_categorical\ncode_X_colour: string_categorical", "  crosses:\n    - "
     "{feature_names: [code, colour], crossing_dim: 4}\n",
     "p.yaml:8:5: error[duplicate-name]: data.features.code_X_colour: 'code_X_colour' is "
     "also the name of the cross of code and colour"),
])
def test_feature_names_the_saved_model_cannot_take_are_refused(names, features, extra,
                                                              expected):
    errors = formatted_errors(pipeline(features, extra=extra))
    assert any(error.startswith(expected) for error in errors), errors


def test_columns_named_as_people_name_them_are_features(tmp_path, call_main, in_plain_keras):
    """Spaces, brackets, non-ASCII, and names of another feature's layers (``X_text``,
    ``X_preprocessor``): the inputs keep the column names, the layers get safe ones."""
    names = ["bill (mm)", "notes_text", "\u00fc colour", "notes"]
    path = write_case(tmp_path, renamed_table(names), pipeline(
        "bill (mm): float_normalized\nnotes_text: integer_categorical\n"
        "\u00fc colour: string_categorical\nnotes: {text: {output_mode: count}}"))
    run = run_once(call_main, path)
    code, out, err = call_main("predict", str(run), str(tmp_path / "t.csv"))
    assert code == 0, err
    assert_parity(run, out)
    line = in_plain_keras(run / "model.keras", "print(sorted(t.name for t in model.inputs))")
    assert line == str(sorted(names))


def test_a_feature_of_the_models_name_is_refused_at_its_line(tmp_path, call_main):
    path = write_case(tmp_path, renamed_table(["size", "code", "p", "notes"]),
                      pipeline("size: float\np: string_categorical"))
    code, out, err = call_main("run", str(path), "--output", str(tmp_path / "runs"))
    assert code == 2 and "Traceback" not in err
    assert "p.yaml:7:5: error[duplicate-name]: data.features.p: 'p' is also the name of " \
           "the model" in err


# --- cells: what passes the first pass is what tf.data parses -------------------------

def typed_columns(feature_yaml: str, missing: list[str] = ("",)):
    from kerapipe.compiler.sources.csv_typed import TypedColumns
    from kerapipe.spec.validate import validate_text as check

    spec = check(pipeline(feature_yaml), "p.yaml").spec
    names = HEADER.split(",")
    return TypedColumns(spec.data.features, {n: i for i, n in enumerate(names)},
                        list(missing), "t.csv")


@pytest.mark.parametrize("holds, cell, value", [
    ("integer", "007", 7), ("integer", "+5", 5), ("integer", "-0", 0),
    ("integer", " 12 ", 12), ("integer", "2147483647", 2147483647),
    ("integer", "-2147483647", -2147483647),
    ("number", ".5", 0.5), ("number", "5.", 5.0), ("number", "+5", 5.0),
    ("number", "1e-50", 0.0), ("number", "3.4e38", 3.4e38), ("number", "-0", -0.0),
])
def test_cells_the_first_pass_accepts_parse_the_same_in_tf_data(holds, cell, value):
    from kerapipe.compiler import backend  # noqa: F401
    import tensorflow as tf

    feature = "code: integer_categorical" if holds == "integer" else "size: float"
    columns = typed_columns(feature)
    (column,) = columns.columns
    checked = columns._value(2, column, cell.strip())
    parsed = tf.strings.to_number(tf.strings.strip(tf.constant([cell])),
                                  tf.int32 if holds == "integer" else tf.float32).numpy()[0]
    as_fed = checked if holds == "integer" else np.float32(checked)  # arrays() casts so
    assert as_fed == value == parsed and isinstance(checked, type(value))


@pytest.mark.parametrize("holds, cell", [
    ("integer", "1e3"), ("integer", "2147483648"), ("integer", "-2147483649"),
    ("integer", "1_000"), ("integer", "\u0663"), ("integer", "0x10"), ("integer", "1.0"),
    ("number", "inf"), ("number", "-inf"), ("number", "nan"), ("number", "Infinity"),
    ("number", "1_000"), ("number", "1e39"), ("number", "0x1p3"), ("number", "\u0661\u0662"),
])
def test_cells_that_are_no_number_of_the_type_are_named(holds, cell):
    feature = "code: integer_categorical" if holds == "integer" else "size: float"
    columns = typed_columns(feature)
    with pytest.raises(DataError) as caught:
        columns.check_row(9, ["r0", cell, cell, "red", "w", "a"], HEADER.split(","))
    name = "code" if holds == "integer" else "size"
    assert str(caught.value).startswith(f"t.csv, line 9, column '{name}': {cell!r}, but the "
                                        "feature is ")


def test_the_first_pass_and_predict_strip_cells_as_tf_data_does():
    """tf.strings.strip strips ASCII whitespace only: a no-break space stays part of a
    category in training, so predict (and the first pass) must keep it too, or predict
    encodes another category than training did for the same row."""
    from kerapipe.compiler import backend  # noqa: F401
    import tensorflow as tf

    columns = typed_columns("size: {float: {}, missing: {fill: 0.5}}\n"
                            "code: integer_categorical\ncolour: string_categorical",
                            missing=["", "NA"])
    rows = [["r", " 2 ", "\t3", "red\u00a0", "w", "a"], ["r", "NA", "4", " blue ", "w", "a"]]
    decoded = columns.decode(tf.constant([",".join(row) for row in rows]), ",")
    for line, row in enumerate(rows):
        assert columns.check_row(line + 2, row, HEADER.split(","))
        size, code, colour = columns.read_row(line + 2, row)
        assert decoded["size"].numpy()[line, 0] == np.float32(size)
        assert decoded["code"].numpy()[line, 0] == code
        assert decoded["colour"].numpy()[line, 0].decode() == colour
    assert columns.read_row(2, rows[0])[2] == "red\u00a0"
    with pytest.raises(DataError, match="column 'size': 'NA\\\\u2003', but the feature is "
                                        "float"):  # not missing: tf.data would not fill it
        columns.check_row(4, ["r", "NA\u2003", "1", "red", "w", "a"], HEADER.split(","))


def test_a_missing_token_with_spaces_and_a_token_that_is_a_category():
    columns = typed_columns("colour: {string_categorical: {}, missing: mode}",
                            missing=[" N A ", "green"])
    header = HEADER.split(",")
    for line, colour in enumerate(["red", "  N A ", "green", "blue", "blue"]):
        assert columns.check_row(line + 2, ["r", "1", "1", colour, "w", "a"], header)
    fills = columns.learn_fills(np.arange(5))
    assert fills == {"colour": "blue"}  # 'N A' and the declared 'green' are missing
    assert set(columns.columns[0].distinct) == {"red", "blue"}


@pytest.mark.parametrize("feature, cells, fill", [
    ("colour: {string_categorical: {}, missing: mode}", ["zz", "aa", "", "zz", "aa"], "aa"),
    ("code: {integer_categorical: {}, missing: mode}", ["7", "-3", "", "7", "-3"], -3),
    ("code: {integer_categorical: {}, missing: mode}", ["10", "9", "", "10", "9"], 9),
    ("size: {float: {}, missing: mode}", ["2.5", "10", "", "2.5", "10"], 2.5),
])
def test_a_mode_tie_goes_to_the_smallest_value(feature, cells, fill):
    columns = typed_columns(feature)
    (column,) = columns.columns
    header = HEADER.split(",")
    for line, cell in enumerate(cells):
        row = ["r", "1", "1", "red", "w", "a"]
        row[column.index] = cell
        assert columns.check_row(line + 2, row, header)
    assert columns.learn_fills(np.arange(len(cells))) == {column.feature.name: fill}


def test_mean_of_a_column_missing_in_every_training_row_is_refused():
    columns = typed_columns("size: {float: {}, missing: mean}")
    header = HEADER.split(",")
    for line, cell in enumerate(["", "", "4.0", ""]):
        columns.check_row(line + 2, ["r", cell, "1", "red", "w", "a"], header)
    with pytest.raises(DataError, match="column 'size' has no value in the training split "
                                        "to take the mean of"):
        columns.learn_fills(np.array([0, 1, 3]))  # the one value is outside training
    assert columns.learn_fills(np.array([0, 2])) == {"size": 4.0}


def write_case(folder: Path, lines: list[str], text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "t.csv").write_text("\n".join(lines) + "\n", "utf-8")
    (folder / "p.yaml").write_text(text, "utf-8")
    return folder / "p.yaml"


def test_drop_that_drops_every_row_exits_3_in_plan(tmp_path, call_main):
    lines = [HEADER] + [",".join(f if j != 1 else "NA" for j, f in enumerate(line.split(",")))
                        for line in table_lines()[1:]]
    path = write_case(tmp_path, lines, pipeline("size: {float: {}, missing: drop}\n"
                                                "colour: string_categorical",
                                                source=', missing_values: ["", NA]'))
    code, out, err = call_main("plan", str(path))
    assert code == 3 and "Traceback" not in err
    assert "every one of its 60 rows has a missing value in a feature whose policy is " \
           "`missing: drop`" in err


def test_minus_one_is_a_category_of_its_own_not_unknown(tmp_path):
    """IntegerLookup's default out-of-vocabulary token is -1: a -1 code in the data would
    be encoded as the values training never saw."""
    from kerapipe import compile_pipeline

    lines = [HEADER] + [",".join(str([-1, 0, 1][i % 3]) if j == 2 else field
                                 for j, field in enumerate(line.split(",")))
                        for i, line in enumerate(table_lines()[1:])]
    path = write_case(tmp_path, lines, pipeline("code: integer_categorical"))
    compiled = compile_pipeline(str(path))
    lookup = compiled.preprocessing.encoding.space.preprocessors["code"]
    codes = lookup(np.array([[-1], [0], [1], [5]], np.int32)).numpy().ravel().tolist()
    assert len(set(codes[:3])) == 3 and codes[3] not in codes[:3]


def test_the_lookups_unseen_token_is_refused_as_a_cell():
    columns = typed_columns("code: integer_categorical")
    with pytest.raises(DataError, match="line 4, column 'code': '-2147483648', but the "
                                        "feature is integer_categorical, which takes a whole "
                                        "number from -2\\*\\*31\\+1"):
        columns.check_row(4, ["r", "1", "-2147483648", "red", "w", "a"], HEADER.split(","))
    hashed = typed_columns("code: {integer_hashed: {num_bins: 4}}")
    assert hashed.check_row(4, ["r", "1", "-2147483648", "red", "w", "a"], HEADER.split(","))


@pytest.mark.parametrize("text", ["{output_mode: tf_idf}", "{output_sequence_length: 4}"])
def test_a_text_column_with_no_token_in_training_exits_3(tmp_path, call_main, text):
    lines = [HEADER] + [",".join("!!! ..." if j == 4 else field
                                 for j, field in enumerate(line.split(",")))
                        for line in table_lines()[1:]]
    model = ("  layers:\n    - Embedding: {input_dim: 10, output_dim: 2}\n"
             "    - GlobalAveragePooling1D: {}\n    - Dense: {units: 2}"
             if "sequence" in text else "")
    path = write_case(tmp_path, lines, pipeline(f"notes: {{text: {text}}}", model=model))
    code, out, err = call_main("run", str(path), "--output", str(tmp_path / "runs"))
    assert code == 3 and "Traceback" not in err
    assert "text feature 'notes': its training split holds no token once standardized" in err


def test_plan_and_deep_validate_of_a_typed_pipeline(tmp_path, call_main):
    """plan adapts the features (counting the dropped rows and showing each fill);
    validate --deep builds the model without the data (tests/test_small_gaps.py)."""
    lines = [HEADER] + [",".join("NA" if (j == 1 and i % 6 == 1) or (j == 3 and i % 5 == 2)
                                 else field for j, field in enumerate(line.split(",")))
                        for i, line in enumerate(table_lines()[1:])]
    path = write_case(tmp_path, lines, pipeline(
        "size: {float_normalized: {}, missing: drop}\n"
        "colour: {string_categorical: {}, missing: mode}\n"
        "notes: {text: {max_tokens: 20, output_mode: tf_idf}}",
        source=', missing_values: ["", NA]'))
    code, out, err = call_main("plan", str(path))
    assert code == 0, err
    assert "(50 examples, 3 features, 10 rows dropped for missing values, streamed)" in out
    assert "mode ('red')" in out or "mode ('blue')" in out, out
    code, out, err = call_main("validate", "--deep", str(path))
    assert code == 0 and "Traceback" not in err
    assert "deep-skipped" not in out + err


# --- runs: train one epoch, then predict on the raw CSV ---------------------------------

def own_predictions(run: Path) -> dict:
    rows = csv.DictReader((run / "predictions.csv").read_text("utf-8").splitlines())
    return {row["input"]: row for row in rows}


def assert_parity(run: Path, out: str) -> None:
    """kerapipe predict's rows equal the run's own predictions.csv rows."""
    predicted = {row["input"]: row for row in csv.DictReader(out.splitlines())}
    own = own_predictions(run)
    assert own
    for name, row in own.items():
        assert predicted[name]["predicted_name"] == row["predicted_name"]
        assert float(predicted[name]["confidence"]) == pytest.approx(
            float(row["confidence"]), abs=1e-5)


def run_once(call_main, path: Path) -> Path:
    code, out, err = call_main("run", str(path), "--output", str(path.parent / "runs"))
    assert code == 0, err
    (run,) = (path.parent / "runs").iterdir()
    return run


@pytest.fixture(scope="module")
def boundaries_run(tmp_path_factory, kerapipe_main):
    """Given bin boundaries (nothing to adapt), n-grams as a list, a whole-number fill of
    an integer column, hashed features and crosses of every crossable type."""
    folder = tmp_path_factory.mktemp("boundaries")
    lines = [HEADER + ",tag"]
    for i, line in enumerate(table_lines()[1:]):
        fields = line.split(",")
        if i % 6 == 1:
            fields[2] = ""
        lines.append(",".join(fields) + f",t{i % 4}")
    text = pipeline(
        "size: {float_discretized: {bin_boundaries: [5.0, 6.0], output_mode: int}}\n"
        "code: {integer_categorical: {}, missing: {fill: 3.0}}\n"
        "colour: {string_categorical: {output_mode: int}}\n"
        "tag: {string_hashed: {num_bins: 3}}\n"
        "notes: {text: {max_tokens: 30, output_mode: tf_idf, ngrams: [1, 2]}}",
        extra="  crosses:\n    - {feature_names: [size, tag], crossing_dim: 8}\n"
              "    - {feature_names: [code, colour], crossing_dim: 4, output_mode: int}\n")
    path = write_case(folder, lines, text)
    assert kerapipe_main("run", str(path), "--output", str(folder / "runs")) == 0
    (run,) = (folder / "runs").iterdir()
    return folder, run


def test_given_bin_boundaries_are_kept_and_ngrams_lists_build(boundaries_run):
    from kerapipe import compile_pipeline

    folder, run = boundaries_run
    compiled = compile_pipeline(str(folder / "p.yaml"))
    space = compiled.preprocessing.encoding.space
    assert list(space.preprocessors["size"].bin_boundaries) == [5.0, 6.0]
    vocabulary = compiled.preprocessing.encoding.texts["notes"].get_vocabulary()
    assert any(" " in token for token in vocabulary)  # bigrams
    assert json.loads((run / "run.json").read_text("utf-8"))["data"]["fill_values"] == \
        {"code": 3}


def test_predict_parity_with_boundaries_crosses_and_fills(boundaries_run, call_main):
    folder, run = boundaries_run
    code, out, err = call_main("predict", str(run), str(folder / "t.csv"))
    assert code == 0, err
    assert_parity(run, out)


def test_the_saved_model_with_crosses_loads_in_safe_mode(boundaries_run, in_plain_keras):
    _, run = boundaries_run
    line = in_plain_keras(run / "model.keras", """
import tensorflow as tf
x = {"size": tf.constant([[4.0], [8.0]]), "code": tf.constant([[0], [3]], tf.int32),
     "colour": tf.constant([["red"], ["never seen"]]), "tag": tf.constant([["t1"], ["??"]]),
     "notes": tf.constant(["sunny bright", "\u00fcber rain"])}
print(model.predict(x, verbose=0).shape)
""")
    assert line == "(2, 2)"


def test_unicode_quoted_and_long_cells_reordered_predict_and_unseen_values(tmp_path,
                                                                         call_main):
    lines = [HEADER]
    for line in table_lines()[1:]:
        fields = line.split(",")
        fields[3] = {"red": '"r\u00f8d, \u00fcn\u00ef"', "blue": "\U0001f642"}.get(
            fields[3], fields[3])
        fields[4] = '"' + fields[4].replace("sunny", "\u65e5\u672c, sunny") + '"'
        lines.append(",".join(fields))
    lines[7] = lines[7].replace(lines[7].split('"')[-2], "long, " * 4000)  # ~24 KB
    path = write_case(tmp_path, lines, pipeline(
        "size: float_normalized\ncolour: string_categorical\n"
        "notes: {text: {max_tokens: 20, output_mode: multi_hot}}"))
    run = run_once(call_main, path)
    code, out, err = call_main("predict", str(run), str(tmp_path / "t.csv"))
    assert code == 0, err
    assert_parity(run, out)
    # the columns in another order, an extra column, the label left out, a new category
    rows = list(csv.reader((tmp_path / "t.csv").read_text("utf-8").splitlines()))
    with open(tmp_path / "other.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for index, row in enumerate(rows):
            colour = "never seen" if index == 3 else row[3]
            writer.writerow(["extra" if index else "unused", row[4], colour, row[1], row[0]])
    code, again, err = call_main("predict", str(run), str(tmp_path / "other.csv"))
    assert code == 0, err
    first = {row["input"]: row for row in csv.DictReader(out.splitlines())}
    second = {row["input"]: row for row in csv.DictReader(again.splitlines())}
    assert set(first) == set(second)
    assert all(first[k]["confidence"] == second[k]["confidence"] for k in first if k != "r2")
    # a missing column is named, exit 3
    with open(tmp_path / "short.csv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([row[:3] for row in rows])
    code, _, err = call_main("predict", str(run), str(tmp_path / "short.csv"))
    assert code == 3 and "Traceback" not in err
    assert "no columns 'colour', 'notes', which the model was trained on" in err


MISSING_TABLE = (
    "size: {float_normalized: {}, missing: mean}\n"
    "code: {integer_categorical: {}, missing: mode}\n"
    "colour: {string_categorical: {}, missing: {fill: grey}}\n"
    "notes: {text: {max_tokens: 20, output_mode: count}, missing: mode}\n"
    "tag: {string_categorical: {}, missing: drop}")


def test_every_missing_policy_with_one_hot_labels_and_no_cache(tmp_path, call_main):
    """Missing cells of each policy in training and in predict, the labels one-hot (a
    label step beside typed features), no cache: predict gives the run's rows and leaves
    out the `drop` rows."""
    lines = [HEADER + ",tag"]
    for i, line in enumerate(table_lines()[1:]):
        fields = line.split(",")
        if i % 6 == 1:
            fields[1:5] = ["NA", " NA ", "", "NA"]
        lines.append(",".join(fields) + ("," if i == 4 else f",t{i % 2}"))
    path = write_case(tmp_path, lines, pipeline(
        MISSING_TABLE, source=', missing_values: ["", NA]',
        extra="  preprocess:\n    - one_hot: {}\n  cache: false\n",
        model="  layers:\n    - Dense: {units: 2, activation: softmax}\n"
              "loss: categorical_crossentropy"))
    run = run_once(call_main, path)
    record = json.loads((run / "run.json").read_text("utf-8"))
    assert record["data"]["dropped_rows"] == 1
    assert set(record["data"]["fill_values"]) == {"size", "code", "colour", "notes"}
    code, out, err = call_main("predict", str(run), str(tmp_path / "t.csv"))
    assert code == 0, err
    assert_parity(run, out)
    assert "r4" not in {row["input"] for row in csv.DictReader(out.splitlines())}


DAMAGED_FILLS = [
    ({"size": 6.0, "code": "abc", "colour": "grey", "notes": "w"},
     "run.json: data.fill_values.code is 'abc', not a value of an integer_categorical "
     "column"),
    ({"size": 6.0, "colour": "grey", "notes": "w"}, "run.json: data.fill_values.code is "
     "missing: it fills the missing cells of feature 'code' (`missing: mode`)"),
    ({"size": 1e300, "code": 1, "colour": "grey", "notes": "w"},
     "run.json: data.fill_values.size is 1e+300, not a value of a float_normalized column"),
]


def test_a_damaged_fill_in_run_json_is_no_bad_cell(tmp_path, call_main):
    """predict fills missing cells from run.json: a fill of another type is a damaged run
    folder (exit 2), not a cell of the input CSV that is not a number."""
    lines = [HEADER + ",tag"] + [line + ",t" for line in table_lines()[1:]]
    lines[2] = "r1,NA,NA,red,rain,b,t"
    path = write_case(tmp_path, lines, pipeline(MISSING_TABLE, source=', missing_values: '
                                                '["", NA]'))
    run = run_once(call_main, path)
    record = json.loads((run / "run.json").read_text("utf-8"))
    for fills, expected in DAMAGED_FILLS:
        record["data"]["fill_values"] = fills
        (run / "run.json").write_text(json.dumps(record), "utf-8")
        code, out, err = call_main("predict", str(run), str(tmp_path / "t.csv"))
        assert code == 2 and "Traceback" not in err
        assert expected in err, err


def test_a_text_feature_with_its_vocabulary_is_not_adapted(tmp_path, call_main):
    path = write_case(tmp_path, table_lines(), pipeline(
        "size: float\nnotes: {text: {vocabulary: [sunny, rain], output_mode: multi_hot}}"))
    run = run_once(call_main, path)
    code, out, err = call_main("predict", str(run), str(tmp_path / "t.csv"))
    assert code == 0, err
    assert_parity(run, out)


def test_a_keras_refusal_of_a_feature_names_the_feature(tmp_path, call_main):
    path = write_case(tmp_path, table_lines(), pipeline(
        "size: float\nnotes: {text: {vocabulary: [sunny, rain], idf_weights: [1.0], "
        "output_mode: tf_idf}}"))
    code, out, err = call_main("run", str(path), "--output", str(tmp_path / "runs"))
    assert code == 2 and "Traceback" not in err
    assert "p.yaml:7:13: error[layer-arguments]: data.features.notes.text: Keras refused " \
           "text feature 'notes' (TextVectorization): `idf_weights` must be the same " \
           "length as vocabulary" in err


def test_a_categorical_feature_as_a_named_input(tmp_path, call_main):
    path = write_case(tmp_path, table_lines(), pipeline(
        "size: float\ncolour: string_categorical\ncode: integer_categorical",
        model="  inputs: [colour, tabular]\n  layers:\n    - Concatenate: {}\n"
              "      inputs: [colour, tabular]\n    - Dense: {units: 2}"))
    run = run_once(call_main, path)
    code, out, err = call_main("predict", str(run), str(tmp_path / "t.csv"))
    assert code == 0, err
    assert_parity(run, out)


def test_refuse_in_predict_names_the_line_and_column(tmp_path, call_main):
    path = write_case(tmp_path, table_lines(), pipeline(
        "size: float\ncolour: string_categorical"))
    run = run_once(call_main, path)
    lines = table_lines()
    lines[4] = lines[4].replace(",red,", ",,").replace(",blue,", ",,").replace(",green,", ",,")
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n", "utf-8")
    code, out, err = call_main("predict", str(run), str(tmp_path / "in.csv"))
    assert code == 3 and "Traceback" not in err
    assert "in.csv, line 5, column 'colour': an empty cell, a missing value" in err


# --- the Python API's typed columns, long text cells --------------------------------

@pytest.fixture(scope="module")
def compiled_table(tmp_path_factory):
    from kerapipe import compile_pipeline

    folder = tmp_path_factory.mktemp("api")
    path = write_case(folder, table_lines(), pipeline(
        "size: float\ncode: integer_categorical\ncolour: string_categorical\n"
        "notes: {text: {max_tokens: 20, output_mode: multi_hot}}"))
    return compile_pipeline(str(path))


def test_the_python_api_predicts_a_dict_of_arrays_or_lists(compiled_table):
    x = {"size": np.array([5.0, 7.0]), "code": np.array([0, 1]),
         "colour": np.array(["red", "blue"]), "notes": np.array(["sunny", "rain"])}
    assert compiled_table.predict(x).shape == (2,)
    lists = {name: list(values) for name, values in x.items()}
    assert compiled_table.predict(lists).shape == (2,)


def test_the_python_api_takes_the_documented_column_shapes_after_others(compiled_table):
    compiled_table.predict({"size": [5.0], "code": [0], "colour": ["red"],
                            "notes": ["sunny"]})
    x = {"size": np.array([[5.0], [7.0]], np.float32), "code": np.array([[0], [1]], np.int32),
         "colour": np.array([["red"], ["blue"]]), "notes": np.array(["sunny", "rain"])}
    assert compiled_table.predict(x).shape == (2,)


def test_the_python_api_names_a_column_of_the_wrong_kind(compiled_table):
    with pytest.raises(DataError, match="code"):
        compiled_table.predict({"size": np.array([5.0]), "code": np.array(["x"]),
                                "colour": np.array(["red"]), "notes": np.array(["sunny"])})


def test_the_python_api_names_a_missing_column(compiled_table):
    with pytest.raises(DataError, match="code"):
        compiled_table.predict({"size": np.array([5.0]), "colour": np.array(["red"]),
                                "notes": np.array(["sunny"])})


def test_a_long_text_cell_is_read_or_named_by_its_line(tmp_path, call_main):
    lines = table_lines()
    fields = lines[5].split(",")
    fields[4] = "word " * 40_000  # 200 KB of text in one cell
    lines[5] = ",".join(fields)
    path = write_case(tmp_path, lines, pipeline(
        "size: float\nnotes: {text: {max_tokens: 20, output_mode: multi_hot}}"))
    code, out, err = call_main("run", str(path), "--output", str(tmp_path / "runs"))
    assert code == 0 or (code == 3 and "line 6" in err), err
