"""``kerapipe init DATA [-o FILE]``: a pipeline file guessed from the data, which validates
strictly and trains; labels and feature types guessed from a bounded sample; hostile data
refused with exit 3; an existing file never overwritten (exit 5); no TensorFlow."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from kerapipe import scaffold
from kerapipe.errors import DataError, OutputError
from kerapipe.scaffold import inspect_data, render_pipeline, table
from kerapipe.scaffold.facts import WIDE_TABLE
from kerapipe.scaffold.folders import parse_image_header
from kerapipe.scaffold.render import quoted
from kerapipe.spec.validate import validate_file, validate_text

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "pipelines" / "data"


def png(width: int, height: int, value: int, gray: bool = False) -> bytes:
    """A PNG of one colour, written with the standard library."""
    channels, color_type = (1, 0) if gray else (3, 2)
    raw = b"".join(b"\x00" + bytes([value % 256]) * (width * channels) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def image_folder(folder: Path, size=(12, 10), gray: bool = False, per_class: int = 6) -> Path:
    for name, value in (("cat", 30), ("dog", 220)):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            (folder / name / f"{i}.png").write_bytes(png(size[1], size[0], value + i, gray))
    return folder


def text_folder(folder: Path) -> Path:
    for name, words in (("food", ["bread", "soup", "cheese"]),
                        ("space", ["rocket", "orbit", "planet"])):
        (folder / name).mkdir(parents=True)
        for i in range(10):
            (folder / name / f"{i}.txt").write_text(
                f"the {words[i % 3]} is here, and {' '.join(words)} number {i}")
    return folder


def npz_file(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def write_csv(path: Path, header: list[str], rows: list[list], delimiter: str = ",") -> Path:
    lines = [delimiter.join(header)] + [delimiter.join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


RNG = np.random.default_rng(0)


def _data(kind: str, tmp: Path) -> Path:
    """One data set of each kind init reads, shipped or generated."""
    if kind.startswith("shipped-"):
        name = kind.split("-", 1)[1]
        shutil.copy(SHIPPED / f"{name}.csv", tmp / f"{name}.csv")
        return tmp / f"{name}.csv"
    if kind == "images":
        return image_folder(tmp / "pics")
    if kind == "grayscale-images":
        return image_folder(tmp / "gray", size=(9, 9), gray=True)
    if kind == "texts":
        return text_folder(tmp / "texts")
    if kind == "npz-table":
        return npz_file(tmp / "t.npz", x=RNG.normal(size=(40, 5)).astype("float32"),
                        y=np.arange(40) % 3)
    if kind == "npz-images":
        return npz_file(tmp / "i.npz", x=RNG.integers(0, 255, (40, 16, 16)).astype("uint8"),
                        y=np.arange(40) % 2)
    if kind == "npz-texts":
        return npz_file(tmp / "s.npz", x=np.array([f"word{i % 4} thing {i}" for i in range(40)]),
                        y=np.array(["no", "yes"] * 20))
    if kind == "npz-regression":
        return npz_file(tmp / "r.npz", x=RNG.normal(size=(40, 3)), y=RNG.normal(size=40))
    if kind == "npz-own-test-split":
        return npz_file(tmp / "o.npz", x_train=RNG.normal(size=(30, 3)), y_train=np.arange(30) % 2,
                        x_test=RNG.normal(size=(10, 3)), y_test=np.arange(10) % 2)
    raise AssertionError(kind)


KINDS = ["shipped-iris", "shipped-penguins", "shipped-houses", "shipped-movies",
         "shipped-imbalanced", "images", "grayscale-images", "texts", "npz-table",
         "npz-images", "npz-texts", "npz-regression", "npz-own-test-split"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_written_file_validates_strictly(kind, tmp_path, call_main):
    data = _data(kind, tmp_path)
    out = tmp_path / "out" / "p.yaml"
    out.parent.mkdir()
    code, stdout, stderr = call_main("init", data, "-o", out)
    assert code == 0, stderr
    assert f"wrote {out}" in stderr and stdout == ""  # with -o, nothing data-like on stdout
    result = validate_file(out)
    assert [i.format() for i in result.issues] == []  # no error, no warning (--strict)
    assert result.spec is not None
    code, stdout, _ = call_main("validate", "--strict", out)
    assert code == 0, stdout


@pytest.mark.parametrize("kind,expected", [
    ("shipped-iris", ("csv", "classes", 3)), ("shipped-penguins", ("csv", "classes", 3)),
    ("shipped-houses", ("csv", "regression", 1)), ("shipped-movies", ("csv", "multi_label", 5)),
    ("images", ("images", "classes", 2)), ("texts", ("text", "classes", 2)),
    ("npz-table", ("npz", "classes", 3)), ("npz-texts", ("npz", "classes", 2)),
    ("npz-regression", ("npz", "regression", 1))], ids=lambda v: str(v))
def test_the_source_label_kind_and_outputs_fit_the_data(kind, expected, tmp_path):
    found = inspect_data(_data(kind, tmp_path))
    assert (found.kind, found.label.kind, found.label.units) == expected


def _spec_of(text: str):
    result = validate_text(text)
    assert not result.errors, [i.format() for i in result.issues]
    return result.spec


def test_the_penguins_features_are_typed_and_missing_values_filled(tmp_path):
    found = inspect_data(_data("shipped-penguins", tmp_path))
    spec = _spec_of(render_pipeline(found, str(tmp_path)))
    features = {f.name: (f.type, f.missing) for f in spec.data.features}
    assert features == {
        "island": ("string_categorical", "refuse"),
        "bill_length_mm": ("float_normalized", "mean"),
        "bill_depth_mm": ("float_normalized", "mean"),
        "flipper_length_mm": ("float_normalized", "mean"),
        "body_mass_g": ("float_normalized", "mean"),
        "sex": ("string_categorical", "mode"),
        "year": ("integer_categorical", "refuse")}
    assert spec.data.source.csv.missing_values == ["NA"]
    assert spec.data.source.csv.label == "species"


def test_a_column_with_a_label_name_is_the_label_even_when_not_last(tmp_path):
    data = write_csv(tmp_path / "t.csv", ["a", "Target", "b"],
                     [[i, ["x", "y"][i % 2], i * 2] for i in range(30)])
    found = inspect_data(data)
    assert found.label.name == "Target"
    assert "named 'Target'" in found.label.picked
    text = render_pipeline(found, str(tmp_path))
    assert "--label COLUMN" in text  # the comment says how to change it
    assert _spec_of(text).data.source.csv.label == "Target"


def test_without_a_label_name_the_last_column_is_the_label(tmp_path):
    data = write_csv(tmp_path / "t.csv", ["a", "b", "kind"],
                     [[i, i * 2, ["x", "y"][i % 2]] for i in range(30)])
    found = inspect_data(data)
    assert found.label.name == "kind" and "last column" in found.label.picked


def test_label_option_picks_the_column(tmp_path, call_main):
    data = write_csv(tmp_path / "t.csv", ["a", "grade", "label"],
                     [[i, i % 3, ["x", "y"][i % 2]] for i in range(30)])
    code, stdout, stderr = call_main("init", data, "--label", "grade")
    assert code == 0, stderr
    spec = _spec_of(stdout)
    assert spec.data.source.csv.label == "grade"
    assert "label" in spec.data.features.names()


def test_label_option_naming_no_column_is_a_usage_error_with_a_suggestion(tmp_path, call_main):
    data = write_csv(tmp_path / "t.csv", ["a", "grade"], [[i, i % 2] for i in range(10)])
    code, _, stderr = call_main("init", data, "--label", "grad")
    assert code == 2
    assert "no such column" in stderr and "Did you mean 'grade'?" in stderr


@pytest.mark.parametrize("labels,kind,units", [
    ([["cat", "dog"][i % 2] for i in range(40)], "classes", 2),
    ([i % 3 for i in range(40)], "classes", 3),
    ([1 + i % 5 for i in range(40)], "classes", 6),          # indices count up to the largest
    ([[-1, 1][i % 2] for i in range(40)], "binary", 1),
    ([[100, 200][i % 2] for i in range(40)], "binary", 1),
    ([round(i * 1.37, 2) for i in range(40)], "regression", 1),
    ([1000 + 37 * i for i in range(40)], "regression", 1),  # many whole numbers: a target
    ([["a|b", "b", "c|a"][i % 3] for i in range(40)], "multi_label", 3),
], ids=["names", "indices", "indices-from-1", "minus-one-one", "two-values", "floats",
        "many-integers", "pipes"])
def test_the_label_kind_is_guessed_from_the_values(labels, kind, units, tmp_path):
    data = write_csv(tmp_path / "t.csv", ["f", "label"],
                     [[i * 0.5, value] for i, value in enumerate(labels)])
    found = inspect_data(data)
    assert (found.label.kind, found.label.units) == (kind, units)
    _spec_of(render_pipeline(found, str(tmp_path)))


def test_column_types_are_guessed_from_the_cells(tmp_path):
    rows = [[f"r{i}", i * 0.25, i % 3, ["red", "green", "blue"][i % 3],
             "a long sentence about thing number " + str(i), 7, ["x", "y"][i % 2]]
            for i in range(40)]
    rows[3][1] = "NA"
    data = write_csv(tmp_path / "t.csv",
                     ["name", "size", "rooms", "colour", "notes", "constant", "label"], rows)
    found = inspect_data(data)
    types = {c.name: (c.type, c.missing) for c in found.columns}
    assert types == {"name": ("id", None), "size": ("float_normalized", "mean"),
                     "rooms": ("integer_categorical", None),
                     "colour": ("string_categorical", None), "notes": ("text", None),
                     "constant": ("skip", None), "label": ("label", None)}
    spec = _spec_of(render_pipeline(found, str(tmp_path)))
    assert spec.data.source.csv.id_column == "name"
    assert spec.data.source.csv.missing_values == ["NA"]
    assert spec.data.features.names() == ["size", "rooms", "colour", "notes"]


def test_a_wide_table_of_numbers_gets_one_normalization_instead_of_typed_features(tmp_path):
    header = [f"p{i}" for i in range(WIDE_TABLE + 1)] + ["label"]
    data = write_csv(tmp_path / "wide.csv", header,
                     [[(i * j) % 7 for j in range(len(header) - 1)] + [i % 2] for i in range(30)])
    spec = _spec_of(render_pipeline(inspect_data(data), str(tmp_path)))
    assert spec.data.features is None
    assert [s.kind for s in spec.data.preprocess] == ["normalize"]


def test_unbalanced_classes_get_balanced_class_weights(tmp_path):
    spec = _spec_of(render_pipeline(inspect_data(_data("shipped-imbalanced", tmp_path)),
                                    str(tmp_path)))
    assert spec.train.class_weight.rule == "balanced"
    spec = _spec_of(render_pipeline(inspect_data(_data("shipped-iris", tmp_path)),
                                    str(tmp_path)))
    assert spec.train.class_weight is None


def test_a_column_named_like_the_pipeline_does_not_take_its_name(tmp_path):
    data = write_csv(tmp_path / "size.csv", ["size", "label"],
                     [[i * 0.5, i % 2] for i in range(30)])
    spec = _spec_of(render_pipeline(inspect_data(data), str(tmp_path)))
    assert (spec.name, spec.data.features.names()) == ("size-pipeline", ["size"])


def test_rows_of_zeros_and_ones_in_an_npz_are_several_labels(tmp_path):
    y = (RNG.random((40, 4)) > 0.5).astype("int8")
    data = npz_file(tmp_path / "m.npz", x=RNG.normal(size=(40, 3)), y=y)
    found = inspect_data(data)
    assert (found.label.kind, found.label.units) == ("multi_label", 4)
    assert _spec_of(render_pipeline(found, str(tmp_path))).data.labels.kind == "multi_label"


def test_a_binary_label_is_two_classes_in_its_comment(tmp_path):
    data = write_csv(tmp_path / "t.csv", ["f", "label"],
                     [[i * 0.5, ["-1", "+1"][i % 2]] for i in range(30)])
    text = render_pipeline(inspect_data(data), str(tmp_path))
    assert "# 2 classes (two values, -1 is class 0 and 1 class 1): -1 15, 1 15." in text
    assert _spec_of(text).data.labels.kind == "binary"


def test_labels_written_as_whole_floats_are_class_indices(tmp_path):
    data = write_csv(tmp_path / "t.csv", ["f", "label"],
                     [[i * 0.5, f"{i % 3}.0"] for i in range(30)])
    found = inspect_data(data)
    assert (found.label.kind, found.label.units) == ("classes", 3)


def test_a_path_with_a_nul_byte_is_a_data_error(tmp_path):
    with pytest.raises(scaffold.DataError, match="not a path"):
        inspect_data(str(tmp_path / "a\0b.csv"))


def test_a_semicolon_separated_file_gets_its_delimiter(tmp_path):
    data = write_csv(tmp_path / "t.csv", ["a", "b", "label"],
                     [[i, i * 2, i % 2] for i in range(30)], delimiter=";")
    spec = _spec_of(render_pipeline(inspect_data(data), str(tmp_path)))
    assert spec.data.source.csv.delimiter == ";"


@pytest.mark.parametrize("name", ["a: b # c", "true", "1.5", "größe", 'say "hi"', "-x",
                                  "tab\there", "[x]"])
def test_any_column_name_is_written_so_that_it_reads_back(name, tmp_path):
    import csv

    path = tmp_path / "t.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([name, "label"])
        writer.writerows([[i * 0.5, i % 2] for i in range(30)])
    spec = _spec_of(render_pipeline(inspect_data(path), str(tmp_path)))
    assert spec.data.features.names() == [name]


def test_quoted_leaves_simple_names_plain_and_quotes_the_rest():
    assert quoted("sepal_length") == "sepal_length"
    assert quoted("data/iris.csv", path=True) == "data/iris.csv"
    assert quoted("null") == '"null"' and quoted("1e3") == '"1e3"'
    assert quoted("a\u2028b") == '"a\\u2028b"'


def test_the_data_path_is_relative_to_the_written_files_folder(tmp_path, call_main):
    data = _data("shipped-iris", tmp_path)
    out = tmp_path / "deep" / "er" / "p.yaml"
    out.parent.mkdir(parents=True)
    assert call_main("init", data, "-o", out)[0] == 0
    spec = validate_file(out).spec
    assert spec.data.source.csv.path == "../../iris.csv"


def test_without_output_the_file_goes_to_standard_output_relative_to_the_cwd(
        tmp_path, call_main, monkeypatch):
    _data("shipped-iris", tmp_path)
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = call_main("init", "iris.csv")
    assert code == 0
    assert stdout.startswith("# ") and "kerapipe: 1" in stdout
    assert "kerapipe init: csv data" in stderr  # the summary stays out of the file
    (tmp_path / "p.yaml").write_text(stdout)
    assert validate_file(tmp_path / "p.yaml").issues == []


def test_an_existing_file_is_never_overwritten(tmp_path, call_main):
    data = _data("shipped-iris", tmp_path)
    out = tmp_path / "p.yaml"
    out.write_text("mine\n")
    code, _, stderr = call_main("init", data, "-o", out)
    assert code == 5
    assert "already exists" in stderr and "never overwrites" in stderr
    assert out.read_text() == "mine\n"
    os.symlink(tmp_path / "nowhere", tmp_path / "link.yaml")  # a dangling link is taken too
    assert call_main("init", data, "-o", tmp_path / "link.yaml")[0] == 5
    assert not (tmp_path / "nowhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iris.csv", "link.yaml", "p.yaml"]


def test_a_name_taken_while_writing_is_not_overwritten(tmp_path, monkeypatch):
    out = tmp_path / "p.yaml"
    real_link = os.link

    def link_after_a_rival(source, target):
        Path(target).write_text("rival\n")
        return real_link(source, target)

    monkeypatch.setattr(os, "link", link_after_a_rival)
    with pytest.raises(OutputError, match="already exists"):
        scaffold.write_new_file(str(out), "kerapipe: 1\n")
    assert out.read_text() == "rival\n"
    assert [p.name for p in tmp_path.iterdir()] == ["p.yaml"]  # no temporary file left


def test_an_output_folder_that_cannot_be_created_is_exit_5(tmp_path, call_main, monkeypatch):
    """A missing folder is created (as export -o does); one the system refuses is exit 5."""
    data = _data("shipped-iris", tmp_path)

    def refused(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "makedirs", refused)
    code, _, stderr = call_main("init", data, "-o", tmp_path / "missing" / "p.yaml")
    assert code == 5 and f"cannot create the folder {tmp_path / 'missing'}" in stderr
    assert "Permission denied" in stderr and "Traceback" not in stderr


def test_the_schema_modeline_points_at_the_checkouts_schema(tmp_path, call_main):
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "pipeline.schema.json").write_text("{}")
    data = _data("shipped-iris", tmp_path)
    (tmp_path / "pipelines").mkdir()
    assert call_main("init", data, "-o", tmp_path / "pipelines" / "p.yaml")[0] == 0
    first = (tmp_path / "pipelines" / "p.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schema/pipeline.schema.json"


def test_without_a_schema_nearby_the_file_says_how_to_get_one(tmp_path):
    found = inspect_data(_data("shipped-iris", tmp_path))
    text = render_pipeline(found, str(tmp_path))
    assert not text.startswith("# yaml-language-server")
    assert "kerapipe schema -o pipeline.schema.json" in text


def test_only_a_bounded_sample_of_a_large_csv_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(table, "MAX_SAMPLE_ROWS", 100)
    path = write_csv(tmp_path / "big.csv", ["a", "label"],
                     [[i * 0.5, i % 2] for i in range(20_000)])  # ~200 KB
    with open(path, "ab") as handle:  # past the sample: bytes that are not UTF-8
        handle.write(b"\xff\xfe,\xff\n" * 10)
    found = inspect_data(path)
    assert (found.examples, found.complete) == (100, False)
    assert "the first 100 rows read; the file has more" in render_pipeline(found, str(tmp_path))


def test_image_size_and_colour_come_from_the_images_headers(tmp_path):
    found = inspect_data(image_folder(tmp_path / "g", size=(9, 7), gray=True))
    assert (found.image_size, found.color_mode) == ((9, 7), "grayscale")
    big = tmp_path / "big"
    image_folder(big, size=(300, 200))
    (big / "cat" / "odd.png").write_bytes(png(50, 50, 1))
    found = inspect_data(big)
    assert (found.image_size, found.color_mode) == ((128, 85), "rgb")  # longer side 128


def _jpeg(height: int, width: int, components: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 8 + 3 * components, 8, height, width, components)
    return b"\xff\xd8" + app0 + sof + b"\x00" * 3 * components + b"\xff\xd9"


@pytest.mark.parametrize("head,expected", [
    (png(5, 3, 0), (3, 5, 3)), (png(5, 3, 0, gray=True), (3, 5, 1)),
    (_jpeg(480, 640, 3), (480, 640, 3)), (_jpeg(20, 10, 1), (20, 10, 1)),
    (b"GIF89a" + struct.pack("<HH", 11, 7) + b"\x00" * 8, (7, 11, 3)),
    (b"BM" + b"\x00" * 16 + struct.pack("<ii", 13, -17) + b"\x00" * 8, (17, 13, 3)),
    (b"not an image at all", None), (b"\x89PNG\r\n\x1a\n", None), (b"\xff\xd8\xff", None),
], ids=["png", "png-gray", "jpeg", "jpeg-gray", "gif", "bmp", "other", "short-png",
        "short-jpeg"])
def test_image_headers_are_parsed_without_tensorflow(head, expected):
    assert parse_image_header(head) == expected


# --- hostile data: a clear error, exit 3, never a traceback -------------------------------

def _hostile(kind: str, tmp: Path) -> Path:
    if kind == "missing":
        return tmp / "nothing.csv"
    if kind == "fifo":
        os.mkfifo(tmp / "pipe.csv")
        return tmp / "pipe.csv"
    if kind == "device":
        return Path("/dev/zero")
    if kind == "link-loop":
        os.symlink(tmp / "loop", tmp / "loop")
        return tmp / "loop"
    if kind == "not-utf8":
        (tmp / "t.csv").write_bytes(b"a,label\n\xff\xfe,1\n")
    elif kind == "empty":
        (tmp / "t.csv").write_bytes(b"")
    elif kind == "header-only":
        (tmp / "t.csv").write_text("a,label\n")
    elif kind == "one-column":
        (tmp / "t.csv").write_text("label\n" + "".join(f"{i % 2}\n" for i in range(10)))
    elif kind == "numbers-as-header":
        (tmp / "t.csv").write_text("1,2\n3,4\n")
    elif kind == "ragged-row":
        (tmp / "t.csv").write_text("a,label\n1,0\n2,1,3\n")
    elif kind == "line-too-long":
        (tmp / "t.csv").write_text("a,label\n" + "1" * (5 << 20) + ",0\n")
    elif kind == "missing-labels":
        (tmp / "t.csv").write_text("a,label\n" + "".join(
            f"{i},{'NA' if i in (3, 9) else 'xy'[i % 2]}\n" for i in range(30)))
    elif kind == "nul-in-column-name":
        (tmp / "t.csv").write_text("a\0,label\n" + "".join(f"{i},{i % 2}\n" for i in range(30)))
    elif kind == "duplicate-column":
        (tmp / "t.csv").write_text("a,a,label\n1,2,0\n")
    elif kind == "unique-text-label":
        (tmp / "t.csv").write_text("a,label\n" + "".join(f"{i},name{i}\n" for i in range(300)))
    elif kind == "one-class":
        (tmp / "t.csv").write_text("a,label\n" + "".join(f"{i},x\n" for i in range(30)))
    elif kind == "one-value-target":
        (tmp / "t.csv").write_text("a,label\n" + "".join(f"{i},0.5\n" for i in range(30)))
    elif kind == "same-label-sets":
        (tmp / "t.csv").write_text("a,label\n" + "".join(f"{i},x|y\n" for i in range(30)))
    elif kind == "infinite-target":
        (tmp / "t.csv").write_text("a,label\n" + "".join(f"{i},{['inf', '1.5', '2.5'][i % 3]}\n"
                                                           for i in range(30)))
    elif kind == "only-an-id":
        (tmp / "t.csv").write_text("id,label\n" + "".join(f"{i},{i % 2}\n" for i in range(30)))
    elif kind == "too-few-rows":
        (tmp / "t.csv").write_text("a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(9)))
    elif kind == "column-name-too-long":
        (tmp / "t.csv").write_text("a" * 1025 + ",label\n"
                                   + "".join(f"{i},{i % 2}\n" for i in range(30)))
    elif kind == "reserved-column":
        (tmp / "t.csv").write_text("features,label\n" + "".join(f"{i},{i % 2}\n"
                                                                 for i in range(30)))
    elif kind == "no-class-folders":
        (tmp / "d").mkdir()
        (tmp / "d" / "a.png").write_bytes(png(4, 4, 1))
        return tmp / "d"
    elif kind in ("one-class-folder", "one-text-folder"):
        made = image_folder(tmp / "d") if kind == "one-class-folder" else text_folder(tmp / "d")
        shutil.rmtree(made / sorted(os.listdir(made))[1])
        return made
    elif kind == "one-filled-class-folder":
        image_folder(tmp / "d")
        for image in (tmp / "d" / "dog").iterdir():
            image.unlink()
        return tmp / "d"
    elif kind == "folder-of-one-folder-of-classes":
        image_folder(tmp / "d" / "all")
        return tmp / "d"
    elif kind == "empty-texts":
        text_folder(tmp / "d")
        for text in (tmp / "d").glob("*/*.txt"):
            text.write_text(" \n")
        return tmp / "d"
    elif kind == "empty-class-folders":
        (tmp / "d" / "cat").mkdir(parents=True)
        (tmp / "d" / "cat" / "notes.md").write_text("x")
        return tmp / "d"
    elif kind == "folder-link-cycle":
        image_folder(tmp / "d")
        os.symlink(tmp / "d", tmp / "d" / "cat" / "again")
        return tmp / "d"
    elif kind == "link-out-of-folder":
        image_folder(tmp / "d")
        (tmp / "secret.png").write_bytes(png(4, 4, 1))
        os.symlink(tmp / "secret.png", tmp / "d" / "cat" / "s.png")
        return tmp / "d"
    elif kind == "text-not-utf8":
        text_folder(tmp / "d")
        (tmp / "d" / "food" / "bad.txt").write_bytes(b"caf\xe9")
        return tmp / "d"
    elif kind == "npz-without-x":
        return npz_file(tmp / "a.npz", features=np.zeros((3, 2)), y=np.zeros(3))
    elif kind == "npz-pickle":
        np.savez(tmp / "a.npz", x=np.array([[1], [1, 2]], dtype=object), y=np.zeros(2))
        return tmp / "a.npz"
    elif kind == "npz-one-label":
        return npz_file(tmp / "a.npz", x=np.zeros((20, 2)), y=np.ones(20, dtype="int64"))
    elif kind == "npz-one-target":
        return npz_file(tmp / "a.npz", x=np.zeros((20, 2)), y=np.full(20, 0.5))
    elif kind == "npz-one-class-name":
        return npz_file(tmp / "a.npz", x=np.zeros((20, 2)), y=np.array(["cat"] * 20))
    elif kind == "npz-no-label-set":
        return npz_file(tmp / "a.npz", x=np.zeros((20, 2)), y=np.zeros((20, 3), dtype="int8"))
    elif kind == "npz-bytes-labels-not-utf8":
        return npz_file(tmp / "a.npz", x=np.zeros((20, 2)), y=np.array([b"cat", b"\xff"] * 10))
    elif kind == "npz-features-not-finite":
        x = RNG.normal(size=(20, 3))
        x[7, 1] = np.nan
        return npz_file(tmp / "a.npz", x=x, y=np.arange(20) % 2)
    elif kind == "npz-label-lone-surrogate":
        return npz_file(tmp / "a.npz", x=np.zeros((20, 2)), y=np.array(["cat", "d\ud800g"] * 10))
    elif kind == "npz-text-lone-surrogate":
        return npz_file(tmp / "a.npz", x=np.array(["a b", "c\ud800 d"] * 10),
                        y=np.arange(20) % 2)
    elif kind == "npz-empty-texts":
        return npz_file(tmp / "a.npz", x=np.array([""] * 20), y=np.arange(20) % 2)
    elif kind == "npz-x-test-without-y-test":
        return npz_file(tmp / "a.npz", x_train=np.zeros((20, 2)), y_train=np.arange(20) % 2,
                        x_test=np.zeros((5, 2)))
    elif kind == "npz-test-of-another-shape":
        return npz_file(tmp / "a.npz", x_train=np.zeros((20, 2)), y_train=np.arange(20) % 2,
                        x_test=np.zeros((5, 3)), y_test=np.arange(5) % 2)
    elif kind == "npz-damaged":
        (tmp / "a.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
        return tmp / "a.npz"
    elif kind == "npz-rows-differ":
        return npz_file(tmp / "a.npz", x=np.zeros((3, 2)), y=np.zeros(4))
    else:
        raise AssertionError(kind)
    return tmp / "t.csv"


HOSTILE = {
    "missing": "no such file or folder", "fifo": "a FIFO", "device": "a character device",
    "link-loop": "cannot read it", "not-utf8": "UTF-8", "empty": "the file is empty",
    "header-only": "no data rows", "one-column": "no feature column",
    "numbers-as-header": "not column names", "ragged-row": "line 3: 3 fields",
    "duplicate-column": "appears more than once", "line-too-long": "longer than", "unique-text-label": "an id or free text",
    "one-class": "one class only", "reserved-column": "cannot be a feature",
    "one-value-target": "holds one value only (0.5)",
    "same-label-sets": "is the same in every example read (every example has x, y)",
    "one-class-folder": "one class folder only ('cat'); a classifier needs at least two",
    "one-text-folder": "one class folder only ('food'); a classifier needs at least two",
    "one-filled-class-folder": "only the class folder 'cat' holds images (dog holds none)",
    "npz-one-label": "holds one value only (1)", "npz-one-target": "one value only (0.5)",
    "npz-one-class-name": "one class only ('cat')",
    "npz-no-label-set": "is the same in every example read (none has 0, 1, 2)",
    "missing-labels": "2 of the rows read have no label (a missing value in 'label'), and "
                      "the run refuses a row without its label",
    "nul-in-column-name": "the name of column 1 ('a\\x00') holds a NUL byte",
    "infinite-target": "holds numbers that are not finite (inf, 10 in the examples read)",
    "only-an-id": "left out: 'id' (a different number in each row: an id)",
    "too-few-rows": "9 data rows only; kerapipe init needs at least 10",
    "column-name-too-long": "has a name of 1,025 characters; a key of data.features has at "
                            "most 1,024",
    "folder-of-one-folder-of-classes": "if those are the classes, run kerapipe init",
    "npz-bytes-labels-not-utf8": "'y'[1] is not UTF-8 text (the bytes b'\\xff' at byte 1)",
    "empty-texts": "every one of the 20 texts read is empty (no words)",
    "npz-empty-texts": "'x': every one of the 20 texts read is empty",
    "npz-label-lone-surrogate": "'y'[1] holds a lone surrogate character",
    "npz-text-lone-surrogate": "'x'[1] holds a lone surrogate character",
    "npz-x-test-without-y-test": "has 'x_test' but no 'y_test'; a test split needs both",
    "npz-test-of-another-shape": "'x_test' holds examples of shape (3,), but 'x_train' holds "
                                 "(2,)",
    "npz-features-not-finite": "not finite (NaN or infinite) in 1 of its 20 examples, the "
                               "first [7]",
    "no-class-folders": "no class sub-folders", "empty-class-folders": "no images",
    "folder-link-cycle": "a cycle", "link-out-of-folder": "outside the data folder",
    "text-not-utf8": "UTF-8", "npz-without-x": "arrays x (features) and y",
    "npz-pickle": "Python objects", "npz-damaged": "not a NumPy .npz file",
    "npz-rows-differ": "one row per example",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_data_is_a_clear_data_error(kind, tmp_path, call_main):
    data = _hostile(kind, tmp_path)
    out = tmp_path / "p.yaml"
    code, stdout, stderr = call_main("init", data, "-o", out)
    assert code == 3, stderr
    assert stderr.startswith("error: ") and HOSTILE[kind] in stderr
    assert "Traceback" not in stderr and stdout == ""
    assert not out.exists()
    if kind.startswith("npz-"):  # --label is for a CSV file: the hint is another
        assert "--label" not in stderr


@pytest.mark.parametrize("output,expected", [
    ("folder", "-o {}: a folder; -o names the new pipeline file. Give a file in it, e.g. "
               "-o {}/pipeline.yaml."),
    ("new/", "-o {}: a folder name; -o names the new pipeline file"),
    ("", "-o names the new pipeline file, but it is empty")], ids=["folder", "slash", "empty"])
def test_an_output_that_cannot_name_a_file_is_exit_5_before_the_data_is_read(
        output, expected, tmp_path, call_main):
    (tmp_path / "folder").mkdir()
    where = f"{tmp_path}/{output}" if output else ""
    code, stdout, stderr = call_main("init", tmp_path / "no-such-data.csv", "-o", where)
    assert code == 5 and stdout == ""
    assert expected.format(where, where.rstrip("/")) in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


@pytest.mark.parametrize("name", ["yes", "null", "#x", "a: b", "~", "ünï", "- x", "&a", "!t",
                                  "1_000", " lead"])
def test_any_label_column_name_is_written_so_that_it_reads_back(name, tmp_path, call_main):
    import csv

    path = tmp_path / "t.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["f", name])
        writer.writerows([[i * 0.5, i % 2] for i in range(30)])
    out = tmp_path / "p.yaml"
    assert call_main("init", path, "-o", out, "--label", name.strip())[0] == 0
    result = validate_file(out)
    assert [i.format() for i in result.issues] == []
    assert result.spec.data.source.csv.label == name.strip()  # header names are stripped


def test_yaml_special_class_names_stay_in_comments(tmp_path, call_main):
    names = ["yes", "null", "#x", "a: b", "~", "- x", "a\nb", "\u2028x", "\x1b[31mred"]
    for value, name in enumerate(names):
        (tmp_path / "d" / name).mkdir(parents=True)
        for i in range(2):
            (tmp_path / "d" / name / f"{i}.png").write_bytes(png(8, 8, value + i))
    out = tmp_path / "p.yaml"
    assert call_main("init", tmp_path / "d", "-o", out)[0] == 0
    result = validate_file(out)
    assert [i.format() for i in result.issues] == []
    assert result.spec.model.layers[-1].kwargs["units"] == len(names)
    assert "a\\nb 2" in out.read_text()  # escaped: a line break would end the comment


def test_many_whole_number_labels_each_used_often_are_class_indices(tmp_path):
    data = npz_file(tmp_path / "c.npz", x=RNG.normal(size=(2000, 4)), y=np.arange(2000) % 100)
    found = inspect_data(data)
    assert (found.label.kind, found.label.units) == ("classes", 100)
    assert "every one used by 20 examples on average" in found.label.reason
    sparse = npz_file(tmp_path / "s.npz", x=RNG.normal(size=(200, 4)), y=np.arange(200) % 50)
    assert inspect_data(sparse).label.kind == "regression"  # 4 examples a value: a target


def test_a_tsv_file_separated_by_commas_gets_the_comma(tmp_path):
    data = write_csv(tmp_path / "t.tsv", ["a", "b", "label"], [[i, i * 2, i % 2]
                                                                for i in range(30)])
    found = inspect_data(data)
    assert found.delimiter == "," and [c.name for c in found.features] == ["a", "b"]
    tabs = write_csv(tmp_path / "u.tsv", ["a", "b", "label"], [[i, i * 2, i % 2]
                                                               for i in range(30)], "\t")
    assert inspect_data(tabs).delimiter == "\t"


@pytest.mark.parametrize("kind", ["images", "npz-table"])
def test_label_option_for_data_without_columns_is_a_usage_error(kind, tmp_path, call_main):
    code, _, stderr = call_main("init", _data(kind, tmp_path), "--label", "y")
    assert code == 2 and "--label names a CSV column" in stderr


# --- light, and trainable -----------------------------------------------------------------

@pytest.mark.slow
def test_init_imports_neither_tensorflow_nor_keras(tmp_path):
    data = _data("shipped-penguins", tmp_path)
    images = image_folder(tmp_path / "pics")
    code = ("import json, sys\nfrom kerapipe.cli import main\ncodes = []\n"
            f"for argv in {[['init', str(data)], ['init', str(images)]]!r}:\n"
            "    try:\n        main(argv)\n    except SystemExit as exit_:\n"
            "        codes.append(exit_.code)\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'jax', 'torch'))\n"
            "print(json.dumps([codes, heavy]), file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    codes, heavy = json.loads(done.stderr.strip().splitlines()[-1])
    assert codes in ([], [0, 0]) and heavy == []  # main returns normally on success


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["shipped-penguins", "images", "texts", "npz-images"])
def test_kerapipe_run_trains_the_written_file(kind, tmp_path, call_main):
    data = _data(kind, tmp_path)
    out = tmp_path / "p.yaml"
    assert call_main("init", data, "-o", out)[0] == 0
    code, stdout, stderr = call_main("run", out, "--set", "train.epochs=1", "--output",
                                     tmp_path / "runs")
    assert code == 0, stderr
    (run,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1 and "loss" in metrics["test"]
    assert (run / "model.keras").is_file()


def test_the_readme_example_is_real_output():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Starting from data: `kerapipe init`", 1)[1]
    command, example = section.split("```yaml\n", 1)
    assert "kerapipe init pipelines/data/penguins.csv -o pipelines/penguins-init.yaml" in command
    found = inspect_data(SHIPPED / "penguins.csv")
    expected = render_pipeline(found, str(ROOT / "pipelines"), "penguins-init.yaml")
    assert example.split("```", 1)[0] == expected


def test_a_data_file_name_with_a_quote_and_a_hash_reads_back(tmp_path):
    data = tmp_path / 'odd "name" #1: x.csv'
    shutil.copy(SHIPPED / "iris.csv", data)
    text = render_pipeline(inspect_data(data), str(tmp_path))
    assert _spec_of(text).data.source.csv.path == data.name


def test_a_data_path_the_format_refuses_is_a_data_error_naming_the_key(tmp_path, call_main):
    data = tmp_path / "line\nbreak.csv"
    shutil.copy(SHIPPED / "iris.csv", data)
    code, stdout, stderr = call_main("init", data)
    assert code == 3 and stdout == ""
    assert "could not write a valid pipeline" in stderr and "error[bad-path]" in stderr


def test_npz_utf8_byte_labels_are_class_names_as_the_run_reads_them(tmp_path):
    """Bytes are decoded as UTF-8, by the run's own rule (compiler.labels.text_labels)."""
    y = np.array([b"caf\xc3\xa9", b"th\xc3\xa9", b"eau"] * 10)
    found = inspect_data(npz_file(tmp_path / "a.npz", x=RNG.normal(size=(30, 2)), y=y))
    assert (found.label.kind, found.label.classes) == ("classes", ("café", "eau", "thé"))
    assert _spec_of(render_pipeline(found, str(tmp_path))).data.labels.kind == "classes"


def test_init_creates_the_missing_folders_of_its_output_as_export_does(tmp_path, call_main):
    data = _data("shipped-iris", tmp_path)
    out = tmp_path / "new" / "deeper" / "p.yaml"
    code, stdout, stderr = call_main("init", data, "-o", out)
    assert (code, stdout) == (0, ""), stderr
    assert f"wrote {out}" in stderr and "Next: kerapipe validate --strict" in stderr
    assert validate_file(out).spec is not None


def test_an_output_through_a_file_is_exit_5_before_the_data_is_read(tmp_path, call_main):
    (tmp_path / "iris.yaml").write_text("mine")
    where = tmp_path / "iris.yaml" / "sub" / "p.yaml"
    code, stdout, stderr = call_main("init", tmp_path / "no-such-data.csv", "-o", where)
    assert (code, stdout) == (5, ""), stderr
    assert f"{tmp_path / 'iris.yaml'} is a file, not a folder" in stderr
    assert "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iris.yaml"]


@pytest.mark.parametrize("folder, data, named", [
    ("/srv/pipelines", "/srv/data/iris.csv", "../data/iris.csv"),
    ("/srv", "/srv/iris.csv", "iris.csv"),
    ("/tmp/work/a", "/srv/data/iris.csv", "/srv/data/iris.csv"),  # only the root in common
])
def test_the_data_path_is_relative_unless_only_the_root_is_shared(folder, data, named):
    from kerapipe.scaffold.render import data_path_from

    assert data_path_from(folder, data) == named


def test_a_fifo_is_named_once_in_its_refusal(tmp_path):
    os.mkfifo(tmp_path / "pipe.csv")
    with pytest.raises(DataError) as caught:
        inspect_data(tmp_path / "pipe.csv")
    message = str(caught.value)
    assert message.count("pipe.csv") == 1, message
    assert "is a FIFO (named pipe), not a regular file" in message
