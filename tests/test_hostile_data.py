"""Hostile data files (issue 10): every one is a DataError (exit 3) that names the file, the
row, column or item and a fix; never exit 1, a hang, a crash of the process or memory
that one value can make unbounded.

Hangs are caught in this process by ``deadline`` (SIGALRM raises ``Hung``, which derives
from BaseException so that no ``except Exception`` in kerapipe can swallow it); a crash
of the whole process (the zero-feature segfault) and unbounded allocations run in a child
process, with a timeout and a memory limit, so that a failure cannot take pytest down.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import kerapipe.compiler.sources.csv_file as csv_module
import kerapipe.compiler.sources.csv_stream as csv_stream_module
import kerapipe.compiler.sources.image_folder as images_module
import kerapipe.compiler.sources.npz_file as npz_module
from kerapipe import load_spec
from kerapipe.compiler.sources.loading import load_data
from kerapipe.errors import DataError
from kerapipe.spec.steps import MAX_CLASSES
from test_faults import CSV, GOOD_CSV, IMAGES, NPZ, good_x, good_y, image_folder, npz_bytes, png


class Hung(BaseException):
    """A call ran past its deadline."""


@contextmanager
def deadline(seconds: float):
    """Fail a call that hangs (a FIFO, /dev/zero, the whole file system, a quadratic loop)."""
    def fire(signum, frame):
        raise Hung(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def write_files(folder: Path, files: dict) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())


def run_case(call_main, folder: Path, pipeline: str, files: dict, seconds: float = 60):
    """``kerapipe run`` of ``pipeline`` beside ``files``; returns (exit code, output)."""
    write_files(folder, files)
    (folder / "p.yaml").write_text(pipeline)
    with deadline(seconds):
        code, out, err = call_main("run", folder / "p.yaml", "--output", folder / "runs")
    text = out + err
    assert "Traceback" not in text and "internal error" not in text, text
    return code, text


def spec_of(source: dict, **data):
    return load_spec({"kerapipe": 1, "data": {"source": source, **data},
                      "model": {"layers": [{"Flatten": {}}, {"Dense": {"units": 3}}]}})


def with_source(spec, kind: str, **changes):
    """``spec`` with fields of its source replaced: values the spec side may refuse, to
    show that the data side refuses them too."""
    source = spec.data.source
    inner = dataclasses.replace(getattr(source, kind), **changes)
    data = dataclasses.replace(spec.data, source=dataclasses.replace(source, **{kind: inner}))
    return dataclasses.replace(spec, data=data)


def csv_spec(**csv_options):
    return spec_of({"csv": {"path": "data.csv", "label": "label", **csv_options}})


def npz_spec(**npz_options):
    return spec_of({"npz": {"path": "data.npz", **npz_options}})


def data_error(spec, folder: Path, seconds: float = 30) -> str:
    """The message of the DataError that loading ``spec``'s data raises."""
    with deadline(seconds), pytest.raises(DataError) as raised:
        load_data(spec, folder)
    return str(raised.value)


# --- 1. empty feature dimensions --------------------------------------------------------

@pytest.mark.slow
def test_npz_without_features_exits_3_in_a_child_process_and_leaves_no_temp_files(tmp_path):
    """It used to crash the process (exit 139) inside TensorFlow, leaving autograph files."""
    (tmp_path / "data.npz").write_bytes(npz_bytes(np.zeros((30, 0), "float32"), good_y()))
    (tmp_path / "p.yaml").write_text(NPZ)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "kerapipe", "run", "p.yaml", "--output", "runs"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "data.npz" in done.stderr and "'x'" in done.stderr and "(30, 0)" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize("arrays, says", [
    ({"x": np.zeros((30, 4, 0)), "y": good_y()}, "(30, 4, 0)"),
    ({"x_train": good_x(), "y_train": good_y(), "x_test": np.zeros((10, 0)),
      "y_test": good_y(10)}, "'x_test'"),
    ({"x_train": good_x(), "y_train": good_y(), "x_test": good_x(10)[:, :3],
      "y_test": good_y(10)}, "(4,)"),
], ids=["x-zero-dimension", "x-test-zero-features", "x-test-other-feature-shape"])
def test_npz_with_an_empty_or_mismatched_feature_dimension_is_refused(tmp_path, arrays, says):
    np.savez(tmp_path / "data.npz", **arrays)
    message = data_error(npz_spec(), tmp_path)
    assert "data.npz" in message and says in message


def test_csv_without_feature_columns_is_refused(tmp_path):
    (tmp_path / "data.csv").write_text("label\n" + "".join(f"{i % 3}\n" for i in range(30)))
    message = data_error(csv_spec(), tmp_path)
    assert "data.csv" in message and "no feature columns" in message


def test_images_of_size_zero_are_refused_by_the_data_side_too(tmp_path):
    write_files(tmp_path, image_folder())
    spec = with_source(spec_of({"images": {"dir": "pics", "image_size": [8, 8]}}), "images",
                       image_size=[0, 8])
    message = data_error(spec, tmp_path)
    assert "pics" in message and "image_size" in message and "[0, 8]" in message


# --- 2. one value must not decide how much memory kerapipe takes -------------------------

HUGE_LABELS = textwrap.dedent("""\
    import json, resource, sys
    import numpy as np
    from kerapipe.compiler import backend  # TensorFlow first, then the memory limit
    from kerapipe import load_spec
    from kerapipe.compiler.sources.loading import load_data
    from kerapipe.errors import DataError

    folder = sys.argv[1]
    with open("/proc/self/statm") as handle:
        used = int(handle.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + (1 << 30),) * 2)  # 1 GiB more, at most
    results = {}
    for source in ({"npz": "big.npz"}, {"csv": {"path": "big.csv", "label": "label"}}):
        spec = load_spec({"kerapipe": 1, "data": {"source": source},
                          "model": {"layers": [{"Dense": {"units": 3}}]}})
        try:
            load_data(spec, folder)
            results[str(source)] = "loaded"
        except DataError as err:
            results[str(source)] = "DataError: " + str(err)
        except MemoryError:
            results[str(source)] = "MemoryError"
    print(json.dumps(results))
    """)


@pytest.mark.slow
def test_a_huge_class_index_is_refused_before_anything_is_allocated(tmp_path):
    """A label of 2**40 (npz) or 4,000,000,000 (CSV) once built a class-name list that
    size (9.5 GB in 30 s); here the child process may take only 1 GiB more."""
    np.savez(tmp_path / "big.npz", x=good_x(), y=np.where(np.arange(30) == 7, 2 ** 40, good_y()))
    (tmp_path / "big.csv").write_text(GOOD_CSV.replace(",x\n", ",1\n").replace(",y\n", ",2\n")
                                      .replace(",z\n", ",0\n").replace(",1\n", ",4000000000\n", 1))
    (tmp_path / "check.py").write_text(HUGE_LABELS)
    done = subprocess.run([sys.executable, str(tmp_path / "check.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    npz, csv_ = results.values()
    assert npz.startswith("DataError") and "'y[7]'" in npz and "1099511627776" in npz, npz
    assert csv_.startswith("DataError") and "line 2" in csv_ and "4000000000" in csv_, csv_
    for message in (npz, csv_):
        assert f"{MAX_CLASSES:,}" in message


@pytest.mark.parametrize("labels, says", [
    (np.where(np.arange(30) == 4, 1e30, good_y()).astype("float64"), "1e+30"),
    (np.where(np.arange(30) == 4, 2 ** 63 + 5, good_y()).astype("uint64"),
     "9223372036854775813"),
    (np.where(np.arange(30) == 4, -3, good_y()), "-3"),
], ids=["float-1e30", "uint64-above-int64", "negative"])
def test_a_label_is_shown_as_it_is_in_the_file(tmp_path, labels, says):
    np.savez(tmp_path / "data.npz", x=good_x(), y=labels)
    message = data_error(npz_spec(), tmp_path)
    assert "'y[4]'" in message and says in message
    assert "-9223372036854775808" not in message


@pytest.mark.parametrize("label", ["1e30", "9" * 30, "-" + "9" * 30],
                         ids=["1e30", "30-digit-integer", "30-digit-negative"])
def test_a_csv_label_beyond_the_class_bound_is_shown_as_written(tmp_path, label):
    rows = GOOD_CSV.replace(",x\n", ",1\n").replace(",y\n", ",2\n").replace(",z\n", ",0\n")
    (tmp_path / "data.csv").write_text(rows.replace(",1\n", f",{label}\n", 1))
    message = data_error(csv_spec(), tmp_path)
    assert "line 2, column 'label'" in message and label in message


def test_more_distinct_string_labels_than_the_class_bound_are_refused(tmp_path, monkeypatch):
    from kerapipe.compiler import labels as labels_module  # CSV labels are read there

    monkeypatch.setattr(labels_module, "MAX_CLASSES", 10)
    (tmp_path / "data.csv").write_text("a,label\n" + "".join(f"{i},id{i}\n" for i in range(30)))
    message = data_error(csv_spec(), tmp_path)
    assert "30 different labels" in message and "label" in message


def test_a_regression_target_beyond_float32_is_shown_as_written(tmp_path):
    np.savez(tmp_path / "data.npz", x=good_x(), y=np.where(np.arange(30) == 5, 1e300, 1.0))
    spec = load_spec({"kerapipe": 1, "data": {"source": {"npz": "data.npz"}}, "loss": "mse",
                      "model": {"layers": [{"Dense": {"units": 1}}]}})
    message = data_error(spec, tmp_path)
    assert "'y[5]'" in message and "1e+300" in message and "float32" in message


def test_npz_features_beyond_float32_are_refused(tmp_path):
    x = good_x().astype("float64")
    x[6, 2] = -1e300
    np.savez(tmp_path / "data.npz", x=x, y=good_y())
    message = data_error(npz_spec(), tmp_path)
    assert "'x[6]'" in message and "-1e+300" in message and "float32" in message


# --- 3. npz files are checked from their directory and headers before reading -------------

def npy_member(header: dict, payload: bytes) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue() + payload


def zip_of(members: dict, compression=zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def npz_member_y() -> bytes:
    out = io.BytesIO()
    np.save(out, good_y())
    return out.getvalue()


@pytest.fixture
def decompressed(monkeypatch):
    """Counts the bytes read out of zip members."""
    counted = [0]
    real = zipfile.ZipExtFile.read

    def read(self, n=-1):
        data = real(self, n)
        counted[0] += len(data)
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", read)
    return counted


def test_npz_that_inflates_beyond_the_memory_bound_is_refused_before_decompressing(
        tmp_path, monkeypatch, decompressed):
    monkeypatch.setattr(npz_module, "array_memory_bound", lambda: 16 << 20)
    np.savez_compressed(tmp_path / "data.npz", x=np.zeros((30, 1 << 19), "float32"),
                        y=good_y())
    assert (tmp_path / "data.npz").stat().st_size < (1 << 20)  # 60 MiB inflated
    message = data_error(npz_spec(), tmp_path)
    assert "'x'" in message and "60.0 MiB" in message and "16.0 MiB" in message
    assert decompressed[0] < (1 << 20)


def test_npz_header_that_claims_more_data_than_the_member_holds_is_refused(tmp_path):
    lying = npy_member({"descr": "<f8", "fortran_order": False, "shape": (1 << 40, 1)},
                       b"\0" * 240)
    (tmp_path / "data.npz").write_bytes(zip_of({"x.npy": lying, "y.npy": npz_member_y()}))
    message = data_error(npz_spec(), tmp_path)
    assert "'x'" in message and "(1099511627776, 1)" in message and "damaged" in message


def test_read_npz_refuses_object_arrays_from_the_header_without_unpickling(tmp_path,
                                                                           decompressed):
    np.savez(tmp_path / "inputs.npz", x=np.array([[1], [2, 3]], dtype=object))
    with pytest.raises(DataError, match="holds Python objects") as raised:
        npz_module.read_npz(tmp_path / "inputs.npz", ["x"])
    assert "inputs.npz" in str(raised.value) and decompressed[0] < 4096


@pytest.mark.parametrize("content, says", [
    (b"not a zip at all", "not a NumPy .npz file"),
    (pickle.dumps({"x": [1, 2]}), "a pickle, which kerapipe never loads"),
    (zip_of({"x.npy": b"\x93NUMPY garbage"}), "'x'"),
    (zip_of({"x.npy": npy_member({"descr": "<f4", "fortran_order": False, "shape": (2, 2)},
                                 b"\0" * 15)}), "'x'"),
], ids=["not-a-zip", "pickle", "bad-npy-header", "one-byte-short"])
def test_read_npz_turns_every_damaged_file_into_a_data_error(tmp_path, content, says):
    (tmp_path / "inputs.npz").write_bytes(content)
    with pytest.raises(DataError, match="inputs.npz") as raised:
        npz_module.read_npz(tmp_path / "inputs.npz")
    assert says in str(raised.value)


def test_read_npz_reads_only_the_arrays_asked_for(tmp_path, decompressed):
    np.savez(tmp_path / "inputs.npz", x=good_x(4), other=np.zeros(1 << 20))
    arrays = npz_module.read_npz(tmp_path / "inputs.npz", ["x"])
    assert list(arrays) == ["x"] and np.array_equal(arrays["x"], good_x(4))
    assert decompressed[0] < (1 << 16)


# --- 4. the first-pass reader and tf.data read a CSV alike --------------------------------

def test_csv_header_with_a_quoted_newline_is_refused(tmp_path, call_main):
    text = 'a,"b\nc",label\n' + "".join(f"{i % 7}.5,{i % 3},{'xyz'[i % 3]}\n" for i in range(30))
    code, out = run_case(call_main, tmp_path, CSV, {"data.csv": text})
    assert code == 3 and "data.csv" in out and "header" in out and "spans" in out, out


@pytest.mark.parametrize("delimiter", ["§", ";;", "", '"', "\n", "\r"],
                         ids=["non-ascii", "two-characters", "empty", "quote", "newline",
                              "carriage-return"])
def test_csv_delimiter_that_tf_data_cannot_parse_is_refused_by_the_data_side(tmp_path,
                                                                            delimiter):
    (tmp_path / "data.csv").write_text(GOOD_CSV.replace(",", delimiter or ","))
    message = data_error(with_source(csv_spec(), "csv", delimiter=delimiter), tmp_path)
    assert "data.csv" in message and "delimiter" in message and repr(delimiter) in message


@pytest.mark.parametrize("quoted", [True, False], ids=["quoted-labels", "no-quotes"])
def test_python_and_tf_data_read_a_csv_alike_for_every_delimiter_the_data_side_accepts(
        tmp_path, monkeypatch, quoted):
    """Each ASCII character as the delimiter: what the first pass accepts, tf.data reads to
    the same numbers (through decode_csv when a row holds a quote, else the split that wide
    files get), and the labels, quoted ones holding the delimiter, to the same classes."""
    import tensorflow as tf

    monkeypatch.setattr(csv_stream_module, "_SPLIT_MIN_COLUMNS", 0)  # 2 columns count as wide
    accepted = []
    for code in range(128):
        delimiter = chr(code)
        digits = [d for d in "0123456789" if d != delimiter]
        label = "".join(c for c in "LMN" if c != delimiter)
        inner = delimiter if quoted and delimiter not in '"\r\n' else ""
        rows = [[digits[i % len(digits)] + digits[(i + 3) % len(digits)],
                 digits[(i * 7) % len(digits)],
                 f'"{label}{i % 2}{inner}"' if quoted else f"{label}{i % 2}"]
                for i in range(12)]
        text = delimiter.join(["a", "b", "label"]) + "\n" + "".join(
            delimiter.join(row) + "\n" for row in rows)
        folder = tmp_path / f"d{code}"
        folder.mkdir()
        (folder / "data.csv").write_bytes(text.encode())
        spec = with_source(spec_of({"csv": {"path": "data.csv", "label": "label"}},
                                   split={"validation": 0, "test": 0}), "csv",
                           delimiter=delimiter)
        try:
            data = load_data(spec, folder)
        except DataError:
            continue  # refused: fine, as long as what is accepted is read alike
        accepted.append(delimiter)
        assert data.source.stream.quoted == quoted
        with open(folder / "data.csv", newline="") as handle:
            expected = list(csv.reader(handle, delimiter=delimiter))[1:]
        lines = text.encode().splitlines()[1:]
        if delimiter in ",; |":  # the whole tf.data path, for a few (a pipeline costs 0.3 s)
            features = np.concatenate([batch.numpy() for batch in
                                       data.source.stream.features(np.sort(data.train.x)).batch(64)])
        else:  # the same parsing, eagerly
            features = data.source.stream.decode(tf.constant(lines)).numpy()
        assert features.tolist() == [[float(a), float(b)] for a, b, _ in expected], \
            repr(delimiter)
        assert data.class_names == sorted({row[2].strip() for row in expected}), repr(delimiter)
    assert {",", ";", "\t", " ", "|"} <= set(accepted)
    assert not {'"', "\n", "\r"} & set(accepted)


@pytest.mark.parametrize("row, column", [
    ('3.5,0,ab"c\n', "label"), ('3.5,0,"ab"c\n', "label"), ('3.5,0, "ab"\n', "label"),
    ('3.5,"0\n', "b"),
], ids=["quote-inside-unquoted", "text-after-closing-quote", "space-before-quote",
        "unclosed-quote"])
def test_csv_quoting_that_tf_data_cannot_parse_is_refused_at_its_line(tmp_path, call_main, row,
                                                                      column):
    text = GOOD_CSV.replace("3.5,0,x\n", row, 1)
    code, out = run_case(call_main, tmp_path, CSV, {"data.csv": text})
    assert code == 3 and "data.csv" in out and "line 5" in out and "quote" in out, out


def test_csv_feature_beyond_float32_is_refused_at_its_line(tmp_path, call_main):
    text = GOOD_CSV.replace("2.5,2,z\n", "1e300,2,z\n", 1)
    code, out = run_case(call_main, tmp_path, CSV, {"data.csv": text})
    assert code == 3 and "line 4, column 'a'" in out and "'1e300'" in out and "float32" in out


def test_csv_that_is_not_utf8_names_the_line(tmp_path, call_main):
    text = GOOD_CSV.encode().replace(b"2.5,2,z\n", b"2.5,2,caf\xe9\n", 1)
    code, out = run_case(call_main, tmp_path, CSV, {"data.csv": text})
    assert code == 3 and "data.csv" in out and "line 4" in out and "UTF-8" in out, out


# --- 5. no hangs: bounded, linear, regular files inside the data folder only --------------

def wide_csv(columns: int, duplicate: bool) -> str:
    names = [f"c{i}" for i in range(columns - 1)] + ["label"]
    if duplicate:
        names[-2] = "c0"
    return ",".join(names) + "\n" + ",".join(["1"] * (columns - 1) + ["0"]) + "\n"


def test_duplicate_columns_of_a_wide_header_are_found_in_linear_time(tmp_path):
    """The check was quadratic: 40,000 columns took 11.8 s."""
    (tmp_path / "data.csv").write_text(wide_csv(csv_module.MAX_CSV_COLUMNS, duplicate=True))
    message = data_error(csv_spec(), tmp_path, seconds=20)
    assert "'c0' more than once" in message


def test_csv_with_more_columns_than_the_bound_is_refused(tmp_path):
    (tmp_path / "data.csv").write_text(wide_csv(csv_module.MAX_CSV_COLUMNS + 1, duplicate=False))
    message = data_error(csv_spec(), tmp_path, seconds=20)
    assert f"{csv_module.MAX_CSV_COLUMNS:,}" in message and "columns" in message


def test_a_wide_csv_streams_without_a_graph_per_column(tmp_path):
    """decode_csv's graph took 1.7 ms a column to build: 34 s at 20,000 columns, for each
    split's dataset; a quote-free file is split instead."""
    columns = 20_000
    header = ",".join([f"c{i}" for i in range(columns)] + ["label"])
    rows = "".join(",".join([str(r)] * columns + [str(r % 2)]) + "\n" for r in range(6))
    (tmp_path / "data.csv").write_text(header + "\n" + rows)
    data = load_data(spec_of({"csv": {"path": "data.csv", "label": "label"}},
                             split={"validation": 0, "test": 0}), tmp_path)
    with deadline(15):
        first = next(iter(data.source.stream.features(np.sort(data.train.x)).batch(6)))
    assert first.shape == (6, columns) and first.numpy()[:, 0].tolist() == list(range(6))


def test_csv_line_longer_than_the_bound_is_refused_before_it_is_read_whole(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(csv_module, "MAX_CSV_LINE_CHARS", 1000)
    (tmp_path / "data.csv").write_text(GOOD_CSV.replace("2.5,2,z\n", "2.5" + "0" * 5000
                                                        + ",2,z\n", 1))
    message = data_error(csv_spec(), tmp_path)
    assert "line 4" in message and "1,000 characters" in message


def test_image_that_is_a_fifo_is_refused_without_blocking(tmp_path, call_main):
    write_files(tmp_path, image_folder())
    os.mkfifo(tmp_path / "pics" / "a" / "x.png")
    code, out = run_case(call_main, tmp_path, IMAGES, {}, seconds=30)
    assert code == 3 and "a/x.png" in out and "not a regular file" in out and "FIFO" in out, out


@pytest.mark.parametrize("target", ["/dev/zero", "/", "outside"],
                         ids=["image-to-dev-zero", "class-folder-to-root",
                              "class-folder-outside"])
def test_a_link_out_of_the_data_folder_is_refused_without_reading_it(tmp_path, call_main,
                                                                     target):
    write_files(tmp_path, image_folder())
    write_files(tmp_path / "outside", {"c/0.png": png(5), "c/1.png": png(9)})
    link = tmp_path / "pics" / ("a/zero.png" if target == "/dev/zero" else "c")
    link.symlink_to(tmp_path / "outside" / "c" if target == "outside" else target)
    code, out = run_case(call_main, tmp_path, IMAGES, {}, seconds=30)
    assert code == 3 and "link" in out and "outside" in out, out
    assert ("a/zero.png" if target == "/dev/zero" else "pics/c") in out


def images_spec():
    return spec_of({"images": {"dir": "pics", "image_size": [8, 8]}},
                   split={"validation": 0, "test": 0})


def test_links_inside_the_data_folder_are_followed(tmp_path):
    write_files(tmp_path, image_folder())
    (tmp_path / "pics" / "c").symlink_to("a")  # a class folder linked inside
    (tmp_path / "pics" / "b" / "again.png").symlink_to("../a/0.png")
    (tmp_path / "pics" / "b" / "more").symlink_to("../a")  # a sub-folder linked inside
    (tmp_path / "pics" / "a" / "notes.txt").symlink_to("/etc/hostname")  # never opened
    with deadline(30):
        data = load_data(images_spec(), tmp_path)
    assert data.class_names == ["a", "b", "c"]
    assert np.bincount(data.train.y).tolist() == [6, 13, 6]


def test_a_link_back_to_a_folder_that_holds_it_is_refused_as_a_cycle(tmp_path):
    write_files(tmp_path, image_folder())
    (tmp_path / "pics" / "a" / "loop").symlink_to("..")
    message = data_error(images_spec(), tmp_path)
    assert "a/loop" in message and "cycle" in message


def test_the_image_indexer_applies_the_folder_policy_and_predict_skips_what_it_refuses(
        tmp_path):
    write_files(tmp_path, {"in/1.png": png(1), "in/sub/2.png": png(2), "in/x.txt": "x"})
    good = [str(tmp_path / "in" / "1.png"), str(tmp_path / "in" / "sub" / "2.png")]
    assert images_module.index_image_folder(tmp_path / "in").paths == good
    (tmp_path / "in" / "zero.png").symlink_to("/dev/zero")
    (tmp_path / "in" / "root").symlink_to("/")
    os.mkfifo(tmp_path / "in" / "sub" / "fifo.png")
    with deadline(20), pytest.raises(DataError, match="outside the data folder"):
        images_module.index_image_folder(tmp_path / "in")
    with deadline(20):
        assert images_module.index_image_folder(tmp_path / "in",
                                                skip_refused=True).paths == good


@pytest.mark.parametrize("name, make", [
    ("data.npz", lambda path: os.mkfifo(path)),
    ("data.csv", lambda path: os.mkfifo(path)),
    ("data.csv", lambda path: path.symlink_to("/dev/zero")),
    ("data.npz", lambda path: path.mkdir()),
], ids=["npz-fifo", "csv-fifo", "csv-dev-zero", "npz-folder"])
def test_an_npz_or_csv_path_that_is_not_a_regular_file_is_refused(tmp_path, name, make):
    make(tmp_path / name)
    spec = npz_spec() if name.endswith(".npz") else csv_spec()
    message = data_error(spec, tmp_path, seconds=20)
    assert name in message and "not a regular file" in message


# --- splits stay linear in the number of classes -----------------------------------------

def test_stratified_split_draws_are_unchanged_so_earlier_runs_split_alike():
    from kerapipe.compiler.splits import stratified_split

    y = np.random.default_rng(0).integers(0, 40, size=1000)
    parts = stratified_split(y, [0.1, 0.2], seed=5, stratify=True)
    assert [len(p) for p in parts] == [700, 100, 200]
    # the first indices of each part as the per-class loop before it made them
    assert [p[:8].tolist() for p in parts] == [[943, 331, 971, 260, 750, 93, 58, 52],
                                               [610, 127, 817, 936, 618, 468, 197, 400],
                                               [123, 908, 366, 713, 327, 655, 195, 14]]


def test_stratified_split_of_100000_classes_does_not_hang():
    """It compared every label with every class: 3,000,000 labels of 100,000 classes took
    minutes."""
    from kerapipe.compiler.splits import stratified_split

    many = np.repeat(np.arange(100_000), 30)
    with deadline(20):
        parts = stratified_split(many, [0.2, 0.2], seed=1, stratify=True)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(many)))
