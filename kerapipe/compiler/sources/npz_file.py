"""The .npz source (``NpzFileSource``), and the one .npz reader (training and ``predict``):
nothing is read that the file's zip directory and .npy headers have not been checked for
first. An example's id is its position in the file's arrays.

A pickle is never loaded (object arrays are refused from their header), a header must
match its member's size, and the arrays asked for may take at most
``array_memory_bound()`` together, so a 4 MB file that inflates to 4 GiB is refused
before it is decompressed.
"""

from __future__ import annotations

import contextlib
import math
import os
import zipfile
import zlib
from typing import Iterator, NamedTuple, Optional, Sequence

import numpy as np

from kerapipe.compiler.files import (check_regular_file, open_regular_file, physical_memory,
                                     resolve, scan_file, size_text)
from kerapipe.compiler.sources.arrays import ArraySource
from kerapipe.compiler.sources.raw import RawData
from kerapipe.compiler.splits import PART_RULE, part_code
from kerapipe.compiler.values import show
from kerapipe.errors import DataError
from kerapipe.spec.issues import did_you_mean
from kerapipe.spec.model import NpzSource

ARRAY_MEMORY_SHARE = 0.5  # of physical memory: what the arrays read from one .npz may take


def array_memory_bound() -> int:
    """Bytes the arrays read from one .npz may take: ``ARRAY_MEMORY_SHARE`` of physical
    memory (checked from the file's headers, before anything is decompressed)."""
    return int(physical_memory() * ARRAY_MEMORY_SHARE)


class NpyHeader(NamedTuple):
    """What an .npz member's .npy header declares, checked against the member's size."""

    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int  # memory the array takes once read


NPZ_FIX = "Save one with numpy.savez(path, x=features, y=labels)."  # how a damaged file is fixed
_NPZ_READ_ERRORS = (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error,
                    NotImplementedError, RuntimeError)  # RuntimeError: an encrypted member


def npz_headers(path: str | os.PathLike, where: Optional[str] = None,
                fix: str = NPZ_FIX) -> dict[str, NpyHeader]:
    """The arrays of an .npz file, by name, from its zip directory and .npy headers only.

    ``where`` and ``fix`` are as for ``read_npz``.

    Raises:
        DataError: when it is not a regular file, not an .npz file, holds Python objects,
            or a header does not match its member's size.
    """
    path = os.fspath(path)
    where = where or path
    with _open_npz(path, where, fix) as archive:
        return _npy_headers(archive, where, fix)


def read_npz(path: str | os.PathLike, names: Optional[Sequence[str]] = None,
             where: Optional[str] = None, fix: str = NPZ_FIX) -> dict[str, np.ndarray]:
    """Arrays of an .npz file, read without trusting it.

    The file must be a regular file; the zip directory and each .npy header are checked
    first: object arrays (pickles) are refused, a header must match its member's size,
    and the arrays asked for may take at most ``array_memory_bound()`` bytes together, so
    a small file that would inflate to gigabytes is refused before it is decompressed.
    Only the arrays asked for are read. Used for training data and by ``predict``.

    Args:
        path: the .npz file.
        names: the arrays to read. Defaults to every array in the file.
        where: how messages name the file. Defaults to ``path``.
        fix: how messages about a damaged file say to make a good one. Defaults to
            ``NPZ_FIX`` (training data; ``predict`` needs no labels).

    Returns:
        The arrays, by name, in the order asked for.

    Raises:
        DataError: naming the file, the array and what is wrong.
    """
    path = os.fspath(path)
    where = where or path
    with _open_npz(path, where, fix) as archive:
        headers = _npy_headers(archive, where, fix)
        wanted = list(headers) if names is None else list(names)
        for name in wanted:
            if name not in headers:
                listing = ", ".join(f"{n} {h.shape}" for n, h in headers.items()) or "nothing"
                raise DataError(f"{where}: no array '{name}'.{did_you_mean(name, headers)} "
                                f"The file holds: {listing}.")
        bound, total = array_memory_bound(), 0
        for name in wanted:
            total += headers[name].nbytes
            if total > bound:
                header = headers[name]
                raise DataError(
                    f"{where}: array '{name}' {header.shape} of {header.dtype} takes "
                    f"{size_text(header.nbytes)} once decompressed"
                    + (f" ({size_text(total)} with the arrays before it)"
                       if total != header.nbytes else "")
                    + f", more than the {size_text(bound)} kerapipe reads from one .npz file "
                    f"({ARRAY_MEMORY_SHARE:.0%} of this machine's memory). Use a smaller file, "
                    "or a CSV source (data.source.csv), which is streamed in batches.")
        return {name: _read_member(archive, name, headers[name], where, fix)
                for name in wanted}


@contextlib.contextmanager
def _open_npz(path: str, where: str, fix: str) -> Iterator[zipfile.ZipFile]:
    with os.fdopen(open_regular_file(path, where), "rb") as handle:
        head = handle.read(6)
        if head == b"\x93NUMPY":
            raise DataError(f"{where}: a single .npy array, not a .npz file of named arrays. "
                            f"{fix}")
        if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
            # pickle protocols 2-5 start so; said plainly rather than as a zip error
            raise DataError(f"{where}: a pickle, which kerapipe never loads, since unpickling "
                            f"can run code; not a NumPy .npz file. {fix}")
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
            raise DataError(f"{where}: not a NumPy .npz file ({err}). {fix}") from err
        with archive:
            yield archive


def _npy_headers(archive: zipfile.ZipFile, where: str, fix: str) -> dict[str, NpyHeader]:
    headers: dict[str, NpyHeader] = {}
    for info in archive.infolist():
        if info.is_dir() or not info.filename.endswith(".npy"):
            continue  # numpy.savez writes only .npy members; anything else is not an array
        name = info.filename[:-4]
        if info.flag_bits & 0x1:
            raise DataError(f"{where}: array '{name}' is encrypted. {fix}")
        try:
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise ValueError(f".npy format version {version[0]}.{version[1]}, which "
                                     "holds no numeric array")
                offset = member.tell()
        except _NPZ_READ_ERRORS as err:
            raise DataError(f"{where}: cannot read array '{name}' ({err}); the file looks "
                            f"damaged. {fix}") from err
        if dtype.hasobject:
            raise DataError(
                f"{where}: array '{name}' holds Python objects (e.g. sequences of different "
                "lengths, or strings in an object array); kerapipe does not unpickle data "
                "files, since that can run code. Save a numeric array instead (pad sequences "
                "with keras.utils.pad_sequences before numpy.savez), or for texts a string "
                "array of dtype 'U' (numpy.array(texts, dtype=str)).")
        nbytes = math.prod(shape) * dtype.itemsize
        if offset + nbytes != info.file_size:
            raise DataError(f"{where}: array '{name}' declares shape {tuple(shape)} of "
                            f"{dtype} ({nbytes:,} bytes), but its member holds "
                            f"{info.file_size - offset:,} bytes of data; the file looks "
                            f"damaged. {fix}")
        headers[name] = NpyHeader(tuple(int(d) for d in shape), dtype, nbytes)
    return headers


def _read_member(archive: zipfile.ZipFile, name: str, header: NpyHeader, where: str,
                 fix: str) -> np.ndarray:
    try:
        with archive.open(name + ".npy") as member:
            array_ = np.lib.format.read_array(member, allow_pickle=False)
    except _NPZ_READ_ERRORS as err:
        raise DataError(f"{where}: cannot read array '{name}' ({err}); the file looks "
                        f"damaged. {fix}") from err
    if array_.shape != header.shape or array_.dtype != header.dtype:  # changed meanwhile
        raise DataError(f"{where}: array '{name}' changed while it was read; read it again.")
    return array_


# The dtype kinds of feature arrays: numbers, and strings ('U': unicode, 'S': bytes) for a
# TextVectorization or StringLookup step.
FEATURE_KINDS = "biufUS"
STRING_KINDS = "US"


class NpzFileSource(ArraySource):
    """``source: {npz: data.npz}``: named arrays of a NumPy .npz file; a feature array of
    strings (dtype 'U', or 'S' of UTF-8 bytes) holds one text per example."""

    kind = "npz"

    def sample_weights(self, raw: RawData) -> Optional[np.ndarray]:
        """The ``sample_weight`` array: one weight per training example (``None``
        without one); the file's test arrays need none."""
        name = self.options.sample_weight
        if name is None:
            return None
        from kerapipe.compiler.weights import check_sample_weights

        weights = read_npz(resolve(self.base_dir, self.options.path), [name], raw.where)[name]
        if weights.ndim == 0 or len(weights) != len(raw.y):
            raise DataError(f"{raw.where}: sample weights '{name}' hold "
                            f"{weights.size if weights.ndim else 1:,} value(s) of shape "
                            f"{tuple(weights.shape)}, but '{raw.names[1]}' has "
                            f"{len(raw.y):,} labels; give one weight per training example.")
        return check_sample_weights(weights, raw.where, name)

    def prepare_features(self, x, name: str, raw: RawData, pad_steps: list):
        """Strings are checked as texts (``check_texts``); numbers as arrays are."""
        if isinstance(x, np.ndarray) and x.dtype.kind in STRING_KINDS:
            if pad_steps:
                raise DataError(f"{raw.where}: pad_sequences applies to sequences of "
                                f"numbers, not the strings of '{name}'. Remove the "
                                "`pad_sequences` step; a TextVectorization step with "
                                "output_sequence_length pads token ids.")
            x = check_texts(x, raw.where, name)
            if name != raw.names[2]:  # the training texts: the vocabulary is learnt there
                _check_some_words(x, raw.where, name, self.spec)
            return x
        return super().prepare_features(x, name, raw, pad_steps)

    def prepare_inputs(self, x: np.ndarray, where: str) -> np.ndarray:
        """``predict``'s texts as an object array of ``str`` (Keras takes no 'U' array),
        checked as training's are; numbers as arrays are."""
        from kerapipe.spec.steps import takes_strings

        if x.dtype.kind in STRING_KINDS:
            if not takes_strings(self.spec.data.preprocess):
                raise DataError(f"{where}: the array holds strings ({x.dtype}); this run's "
                                "model inputs must be numbers (it was not trained on texts). "
                                "Convert them before saving the file.")
            return text_inputs(x, where)
        return super().prepare_inputs(x, where)

    def load(self) -> RawData:
        from kerapipe.spec.metrics import output_heads

        heads = output_heads(self.spec)
        options = self.options
        if heads and heads[0].label is not None:  # the first output's labels are `y`
            options = NpzSource(options.path, options.x, heads[0].label)
        raw = load_npz(options, self.base_dir, self.spec.model.inputs)
        if heads:
            _read_output_labels(raw, resolve(self.base_dir, options.path), heads[1:])
        if self.spec.data.split.column is not None:
            raw.parts = _split_parts(raw, resolve(self.base_dir, options.path),
                                     self.spec.data.split.column)
        return raw


def _check_some_words(x: np.ndarray, where: str, name: str, spec) -> None:
    """Training texts that an adapted TextVectorization step reads hold a word somewhere
    (``text_folder.has_words``): else it learns no vocabulary, and every step fails."""
    from kerapipe.compiler.sources.text_folder import has_words, no_words

    step = spec.data.first_options("TextVectorization")
    if step is None or "vocabulary" in step.kwargs or not len(x):
        return
    if not any(has_words(text) for text in x.tolist()):
        raise no_words(where, f"the {len(x):,} texts of '{name}'", "Check that the array "
                       "saved is the one of the texts.")


def _split_parts(raw: RawData, path: str, name: str) -> np.ndarray:
    """Each example's split from the string array ``name`` (``data.split.column``): one
    ``train``, ``validation`` or ``test`` per example (``part_code``)."""
    where = raw.where
    if raw.x_test is not None:
        raise DataError(f"{where}: the file has its own test split ('{raw.names[2]}'), so "
                        f"data.split.column '{name}' cannot name each example's split. Save "
                        "every example in one set of arrays, or remove data.split.column.")
    column = read_npz(path, [name], where)[name]
    if column.ndim != 1 or column.dtype.kind not in "US" or len(column) != len(raw.y):
        raise DataError(f"{where}: array '{name}' (data.split.column) must hold one string "
                        f"per example ({len(raw.y):,}: train, validation or test); it holds "
                        f"{column.dtype} values of shape {tuple(column.shape)}.")
    texts = column.astype(str) if column.dtype.kind == "U" else np.char.decode(column, "utf-8",
                                                                                "replace")
    codes = np.array([part_code(text) for text in texts.tolist()], dtype=object)
    bad = [i for i, code in enumerate(codes) if code is None]
    if bad:
        raise DataError(f"{where}: array '{name}', example {bad[0]}: {show(texts[bad[0]])}; "
                        f"{PART_RULE}.")
    return codes.astype(np.int64)


_INPUTS_FIX = "Save the inputs with numpy.savez(path, x=features)."


def text_inputs(x: np.ndarray, where: str) -> np.ndarray:
    """``predict``'s array of texts (``check_texts``) as an object array of ``str``, the
    form Keras's ``predict`` takes strings in."""
    x = check_texts(x, where, "x")
    if x.dtype.kind == "S":
        return np.array([item.decode("utf-8") for item in x], dtype=object)
    return x.astype(object)


def check_texts(x: np.ndarray, where: str, name: str) -> np.ndarray:
    """A string array as tf.data takes it: one text per example (shape ``(n,)``, or
    ``(n, 1)`` made ``(n,)``), each valid Unicode ('U': no lone surrogate, which UTF-8
    cannot encode) or UTF-8 ('S').

    Raises:
        DataError: naming the array and the first example that is not.
    """
    if x.ndim == 2 and x.shape[1] == 1:
        x = x.reshape(-1)
    if x.ndim != 1:
        raise DataError(f"{where}: '{name}' holds strings of shape {tuple(x.shape)}; a text "
                        "array holds one string per example, shape (examples,). Join or "
                        "select the texts before saving the file.")
    if x.dtype.kind == "U" and x.dtype.itemsize:
        codes = x.view(np.dtype(np.uint32).newbyteorder(x.dtype.byteorder)).reshape(len(x), -1)
        bad = np.flatnonzero(((codes >= 0xD800) & (codes <= 0xDFFF)).any(axis=1))
        if len(bad):
            raise DataError(f"{where}: '{name}'[{bad[0]}] holds a lone surrogate character, "
                            "which is no text UTF-8 can hold. Fix or remove that string.")
    elif x.dtype.kind == "S":
        for index, item in enumerate(x):
            try:
                item.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{where}: '{name}'[{index}] is not UTF-8 text (the bytes "
                                f"{err.object[err.start:err.end]!r} at byte {err.start + 1}). "
                                "Save the texts as a 'U' array (numpy.array(texts, dtype=str))"
                                " or as UTF-8 bytes.") from err
    return x


def read_npz_inputs(path: str | os.PathLike, named: Sequence[str] = ()) -> np.ndarray:
    """The feature array of an .npz of ``predict`` inputs (``x``, else ``x_test``,
    ``x_train``, else the first), chosen from the headers and read by ``read_npz``.
    ``named``: the model's input name (``model.inputs``), looked for first (with its
    ``_test`` and ``_train`` forms).

    Raises:
        DataError: naming the file when it holds no numeric array of examples.
    """
    path = os.fspath(path)
    headers = npz_headers(path, path, _INPUTS_FIX)
    preferred = [n + suffix for n in named for suffix in ("", "_test", "_train")]
    names = ([n for n in (*preferred, "x", "x_test", "x_train") if n in headers]
             or list(headers))
    if not names:
        raise DataError(f"{path}: holds no arrays. {_INPUTS_FIX}")
    name, header = names[0], headers[names[0]]
    if not header.shape:
        raise DataError(f"{path}: array '{name}' is a single value, not one row per "
                        f"example. {_INPUTS_FIX}")
    if header.dtype.kind not in FEATURE_KINDS:
        raise DataError(f"{path}: array '{name}' holds {header.dtype} values; the model's "
                        "inputs must be numbers (or strings, for a model trained on texts). "
                        "Convert them before saving the file.")
    if header.shape[0] == 0:
        raise DataError(f"{path}: the feature array holds no examples to predict.")
    return read_npz(path, [name], path, _INPUTS_FIX)[name]


def read_npz_named_inputs(path: str | os.PathLike, inputs: Sequence[str]
                          ) -> dict[str, np.ndarray]:
    """The arrays of a model's several inputs from an .npz of ``predict`` inputs: each
    input's array of its name (else ``<name>_test``, ``<name>_train``), numbers, one row
    per example in every one.

    Raises:
        DataError: naming the file and the array that is missing, not numeric, or of
            another length.
    """
    path = os.fspath(path)
    fix = ("Save the inputs with numpy.savez(path, "
           + ", ".join(f"{name}=..." for name in inputs) + ").")
    headers = npz_headers(path, path, fix)
    chosen = []
    for name in inputs:
        found = next((n for n in (name, name + "_test", name + "_train") if n in headers), None)
        if found is None:
            listing = ", ".join(f"{n} {h.shape}" for n, h in headers.items()) or "nothing"
            raise DataError(f"{path}: no array '{name}', which the model takes as an input."
                            f"{did_you_mean(name, list(headers))} The file holds: {listing}. "
                            f"{fix}")
        header = headers[found]
        if not header.shape:
            raise DataError(f"{path}: array '{found}' is a single value, not one row per "
                            f"example. {fix}")
        if header.dtype.kind not in "biuf":
            raise DataError(f"{path}: array '{found}' holds {header.dtype} values; the "
                            "model's inputs must be numbers. Convert them before saving the "
                            "file.")
        chosen.append(found)
    first = chosen[0]
    for found in chosen:
        if headers[found].shape[0] != headers[first].shape[0]:
            raise DataError(f"{path}: '{first}' has {headers[first].shape[0]:,} rows but "
                            f"'{found}' has {headers[found].shape[0]:,}; every input array "
                            "needs one row per example, in the same order.")
    if headers[first].shape[0] == 0:
        raise DataError(f"{path}: the input arrays hold no examples to predict.")
    arrays = read_npz(path, chosen, path, fix)
    return {name: arrays[found] for name, found in zip(inputs, chosen)}


def load_npz(source: NpzSource, base: str, inputs: Optional[Sequence[str]] = None) -> RawData:
    """The arrays an .npz source names (``x``/``y``, or ``x_train``... with a test split).

    ``inputs``: the model's inputs (``model.inputs``), each read from the array of its
    name (or ``<name>_train``, then with ``<name>_test``); with several, ``RawData.x``
    (and ``x_test``) map each input's name to its array.
    """
    path = resolve(base, source.path)
    where = source.path
    check_regular_file(path, where, "npz.path")
    headers = npz_headers(path, where)
    available = list(headers)

    def pick(explicit: Optional[str], defaults: tuple[str, str], what: str, key: str) -> str:
        if explicit is not None:
            name = explicit
        else:
            name = next((d for d in defaults if d in headers), defaults[0])
        if name not in headers:
            listing = ", ".join(f"{n} {headers[n].shape}" for n in available) or "nothing"
            hint = did_you_mean(name, available) if explicit is not None else ""
            names = " or ".join(f"'{d}'" for d in defaults) if explicit is None else f"'{name}'"
            raise DataError(f"{where}: no {what} array {names}.{hint} The file holds: "
                            f"{listing}. Set data.source.npz.{key} to the name of the {what} "
                            "array.")
        return name

    if inputs:
        return _load_inputs(path, where, source, headers, list(inputs), pick)
    x_name = pick(source.x, ("x", "x_train"), "feature", "x")
    y_name = pick(source.y, ("y", "y_train"), "label", "y")
    x_test_name = y_test_name = None
    if x_name.endswith("_train") and y_name.endswith("_train"):
        x_test_name, y_test_name = x_name[:-6] + "_test", y_name[:-6] + "_test"
        has = (x_test_name in headers, y_test_name in headers)
        if has == (False, False):
            x_test_name = y_test_name = None
        elif has != (True, True):
            present, absent = (x_test_name, y_test_name) if has[0] else (y_test_name, x_test_name)
            raise DataError(f"{where}: has '{present}' but no '{absent}'; a test split needs "
                            f"both. Add '{absent}' to the file, or remove '{present}'.")
    for name in filter(None, (x_name, x_test_name)):
        if headers[name].dtype.kind not in FEATURE_KINDS:
            raise DataError(f"{where}: array '{name}' holds {headers[name].dtype} values; "
                            "features must be numbers, or strings (dtype 'U') for a "
                            "TextVectorization step. Convert them before saving the file.")
    arrays = read_npz(path, [n for n in (x_name, y_name, x_test_name, y_test_name) if n],
                      where)
    raw = RawData(arrays[x_name], arrays[y_name], where=where,
                  names=(x_name, y_name, x_test_name or "", y_test_name or ""))
    _check_lengths(where, x_name, raw.x, y_name, raw.y)
    if x_test_name:
        raw.x_test, raw.y_test = arrays[x_test_name], arrays[y_test_name]
        _check_lengths(where, x_test_name, raw.x_test, y_test_name, raw.y_test)
    raw.fingerprint = scan_file(path, where).sha256
    total = len(raw.y) + (len(raw.y_test) if raw.y_test is not None else 0)
    raw.description = f"npz:{source.path} ({total:,} examples)"
    return raw


def _check_lengths(where: str, x_name: str, x: np.ndarray, y_name: str, y: np.ndarray) -> None:
    if x.ndim == 0 or y.ndim == 0:
        scalar = x_name if x.ndim == 0 else y_name
        raise DataError(f"{where}: '{scalar}' is a single value, not one entry per example.")
    if len(x) != len(y):
        raise DataError(f"{where}: '{x_name}' has {len(x):,} examples but '{y_name}' has "
                        f"{len(y):,} labels; they must have the same length (one label per "
                        "example). Check that the arrays belong together.")
    if len(y) == 0:
        raise DataError(f"{where}: '{x_name}' and '{y_name}' hold no examples.")


def _load_inputs(path: str, where: str, source: NpzSource, headers: dict[str, NpyHeader],
                 inputs: list[str], pick) -> RawData:
    """The arrays of the model's named inputs and the labels (``load_npz``). Every input
    array has one row per label; the test split's arrays are ``<input>_test`` beside
    ``y_test`` when the label array is ``y_train`` (all of them, or none)."""
    listing = ", ".join(f"{n} {h.shape}" for n, h in headers.items()) or "nothing"
    x_names = []
    for index, name in enumerate(inputs):
        found = next((n for n in (name, name + "_train") if n in headers), None)
        if found is None:
            raise DataError(f"{where}: no array '{name}' for model.inputs[{index}]."
                            f"{did_you_mean(name, list(headers))} The file holds: {listing}. "
                            "Name each model input after the array that feeds it.")
        if headers[found].dtype.kind not in "biuf":
            raise DataError(f"{where}: array '{found}' holds {headers[found].dtype} values; "
                            "features must be numbers. Convert them before saving the file.")
        x_names.append(found)
    y_name = pick(source.y, ("y", "y_train"), "label", "y")
    test_names: list[str] = []
    y_test_name = None
    if y_name.endswith("_train"):
        wanted = [name + "_test" for name in inputs]
        y_test_name = y_name[:-6] + "_test"
        present = [n for n in wanted + [y_test_name] if n in headers]
        if present and len(present) != len(wanted) + 1:
            absent = [n for n in wanted + [y_test_name] if n not in headers]
            raise DataError(f"{where}: has '{present[0]}' but no '{absent[0]}'; a test split "
                            f"needs an array of each input and the labels "
                            f"({', '.join(wanted + [y_test_name])}). Add "
                            f"'{absent[0]}' to the file, or remove the test arrays.")
        test_names = wanted if present else []
        y_test_name = y_test_name if present else None
    arrays = read_npz(path, x_names + [y_name] + test_names + ([y_test_name] if y_test_name
                                                                 else []), where)

    def features(names: list[str]):
        if len(names) == 1:
            return arrays[names[0]]
        return {name: arrays[array] for name, array in zip(inputs, names)}

    raw = RawData(features(x_names), arrays[y_name], where=where,
                  names=(x_names[0], y_name, test_names[0] if test_names else "",
                         y_test_name or ""))
    _check_input_lengths(where, x_names, arrays, y_name)
    if test_names:
        raw.x_test, raw.y_test = features(test_names), arrays[y_test_name]
        _check_input_lengths(where, test_names, arrays, y_test_name)
    raw.fingerprint = scan_file(path, where).sha256
    total = len(raw.y) + (len(raw.y_test) if raw.y_test is not None else 0)
    raw.description = f"npz:{source.path} ({total:,} examples, inputs {', '.join(inputs)})"
    return raw


def _check_input_lengths(where: str, x_names: list[str], arrays: dict, y_name: str) -> None:
    """Every input array holds one row per example, as many as the labels."""
    first = x_names[0]
    for name in x_names:
        if arrays[name].ndim == 0:
            raise DataError(f"{where}: '{name}' is a single value, not one entry per example.")
        if len(arrays[name]) != len(arrays[first]):
            raise DataError(f"{where}: '{first}' has {len(arrays[first]):,} examples but "
                            f"'{name}' has {len(arrays[name]):,}; every input array needs one "
                            "row per example, in the same order. Check that the arrays belong "
                            "together.")
    _check_lengths(where, first, arrays[first], y_name, arrays[y_name])


def _read_output_labels(raw: RawData, path: str, heads: list) -> None:
    """The label arrays of a model's outputs after the first (``OutputHead.label``), each
    one row per example: ``<label>``, or with the file's own test split ``<label>_train``
    (or ``<label>``) and ``<label>_test``."""
    where = raw.where
    headers = npz_headers(path, where)
    listing = ", ".join(f"{n} {h.shape}" for n, h in headers.items()) or "nothing"
    names: dict[str, tuple[str, Optional[str]]] = {}
    for head in heads:
        label = head.label
        train = next((n for n in (label, label + "_train") if n in headers), None)
        if train is None:
            raise DataError(f"{where}: no array '{label}', the labels of output "
                            f"'{head.name}'.{did_you_mean(label, list(headers))} The file "
                            f"holds: {listing}. Set the output's `label:` to its array.")
        test = None
        if raw.y_test is not None:
            test = label + "_test"
            if test not in headers:
                raise DataError(f"{where}: has a test split ('{raw.names[3]}') but no "
                                f"'{test}' for output '{head.name}'. Add it to the file.")
        names[head.name] = (train, test)
    arrays = read_npz(path, [n for pair in names.values() for n in pair if n], where)
    raw.output_arrays = names
    raw.output_y = {name: arrays[train] for name, (train, _) in names.items()}
    for name, (train, _) in names.items():
        _check_lengths(where, raw.names[1], raw.y, train, arrays[train])
    if raw.y_test is not None:
        raw.output_y_test = {name: arrays[test] for name, (_, test) in names.items()}
        for name, (_, test) in names.items():
            _check_lengths(where, raw.names[3], raw.y_test, test, arrays[test])
