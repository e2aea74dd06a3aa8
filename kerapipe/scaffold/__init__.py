"""``kerapipe init``: a first pipeline file for a data set, from a look at the data.

``inspect_data`` reads a bounded sample of a CSV file, an image folder, a text folder or
an .npz file (the readers and folder policy of the sources themselves: the same bounds,
links, FIFOs and UTF-8 rules) and returns what it found as an ``Inspection``: the source,
the label (its column, kind and classes) and, for a table, each column's type.
``render_pipeline`` writes that as a commented pipeline file whose data path is relative
to the folder the file will be in; ``scaffold`` does both and checks that the text
validates. Nothing here imports TensorFlow or Keras.

The package: ``facts`` (what was found), one inspector per kind of data (``table``,
``folders``, ``arrays``; ``labels`` for the label of any of them) and ``render`` (the
file's text).
"""

from __future__ import annotations

import os
import stat
from typing import Optional

from kerapipe.errors import DataError, UsageError
from kerapipe.scaffold.arrays import inspect_npz
from kerapipe.scaffold.facts import (MIN_EXAMPLES, ColumnGuess, Inspection, LabelGuess, Scaffold,
                                     open_data_file)
from kerapipe.scaffold.folders import inspect_folder
from kerapipe.scaffold.render import render_pipeline
from kerapipe.scaffold.table import inspect_csv

__all__ = ["ColumnGuess", "Inspection", "LabelGuess", "Scaffold", "inspect_data",
           "render_pipeline", "scaffold", "write_new_file"]


def inspect_data(path: str | os.PathLike, label: Optional[str] = None) -> Inspection:
    """Look at a data set and guess its source, label and features.

    Args:
        path: a CSV file, an .npz file, or a folder of one sub-folder per class (images
            or ``.txt`` files).
        label: the CSV label column. Defaults to a column named like a label, else the
            last column.

    Raises:
        DataError: the data is missing, unreadable, empty, or not of a kind init reads.
        UsageError: ``label`` names no column, or is given for data without columns.
    """
    where = os.fsdecode(os.fspath(path))
    try:
        where.encode("utf-8")
    except UnicodeEncodeError as err:
        raise DataError(f"{where!r}: the path is not valid UTF-8, and a pipeline file is "
                        "UTF-8 text. Rename it.") from err
    try:
        mode = os.stat(where).st_mode
    except FileNotFoundError as err:
        raise DataError(f"{where}: no such file or folder.") from err
    except OSError as err:  # a loop of links, a name too long, no permission
        raise DataError(f"{where}: cannot read it ({err.strerror or err}).") from err
    except ValueError as err:  # a NUL byte in the path (the Python API)
        raise DataError(f"{where!r}: not a path ({err}).") from err
    if stat.S_ISDIR(mode):
        if label is not None:
            raise UsageError("--label names a CSV column; a folder's labels are its "
                             "sub-folders (one per class).")
        return inspect_folder(where)
    if not stat.S_ISREG(mode):
        from kerapipe.compiler.files import not_regular
        from kerapipe.safe_io import file_kind

        raise not_regular(where, where, file_kind(mode))
    try:
        with open(open_data_file(where), "rb") as handle:
            head = handle.read(4)
    except OSError as err:
        raise DataError(f"{where}: cannot read the file ({err.strerror or err}).") from err
    if where.lower().endswith(".npz") or head.startswith(b"PK\x03\x04"):
        if label is not None:
            raise UsageError("--label names a CSV column; an .npz file's labels are its "
                             "array y (or y_train).")
        return inspect_npz(where)
    return inspect_csv(where, label)


def scaffold(data: str | os.PathLike, output: Optional[str] = None,
             label: Optional[str] = None) -> Scaffold:
    """Inspect ``data`` and write the pipeline text for a file at ``output`` (or for
    standard output: paths then start from the current directory); the text is checked
    by the validator before it is returned.

    Raises:
        DataError: the data cannot be read or used (``inspect_data``).
        UsageError: ``label`` names no column.
    """
    from kerapipe.spec.issues import render
    from kerapipe.spec.validate import validate_text

    found = inspect_data(data, label)
    if found.examples < MIN_EXAMPLES:
        what = {"csv": "data rows", "images": "images", "text": "texts"}.get(found.kind,
                                                                           "examples")
        raise DataError(f"{data}: {found.examples} {what} only; kerapipe init needs at least "
                        f"{MIN_EXAMPLES} to write a pipeline that trains, validates and tests "
                        "on splits of them. Add examples, or write the pipeline by hand.")
    folder = os.path.dirname(os.path.abspath(output)) if output else os.getcwd()
    file_name = os.path.basename(output) if output else "pipeline.yaml"
    text = render_pipeline(found, folder, file_name)
    result = validate_text(text, output or "<kerapipe init>")
    if result.errors:
        raise DataError("kerapipe init could not write a valid pipeline for this data:\n"
                        + render(result.errors, "text", 1)
                        + "\nWrite those keys by hand, starting from a pipeline in "
                        "the README.")
    return Scaffold(found, text)


def write_new_file(path: str, text: str) -> None:
    """Write ``text`` to ``path``, which must not exist: a complete file or none, never
    over a file (or link) that is there, even one made meanwhile
    (``kerapipe.safe_io.write_new_file``).

    Raises:
        OutputError: ``path`` exists, or its folder cannot be written.
    """
    from kerapipe import safe_io

    safe_io.write_new_file(path, text, taken=(
        f"{path} already exists; kerapipe init never overwrites a file. Choose another "
        "name, or remove it first."))
