"""An .npz file of arrays x and y (or x_train, y_train): read by the npz source's own reader
(headers checked first, never a pickle); the feature array's shape and dtype say table,
images or texts, the labels their kind."""

from __future__ import annotations

import os

from kerapipe.errors import DataError
from kerapipe.scaffold.facts import Inspection
from kerapipe.scaffold.folders import text_settings
from kerapipe.scaffold.labels import label_from_array

MAX_INSPECTED_ARRAY_BYTES = 1 << 28  # an npz feature array read whole for its values


def inspect_npz(path: str) -> Inspection:
    import numpy as np

    from kerapipe.compiler.labels import text_labels
    from kerapipe.compiler.sources.npz_file import check_texts, npz_headers, read_npz

    headers = npz_headers(path)
    listing = ", ".join(f"{n} {h.shape}" for n, h in headers.items()) or "nothing"
    x_name = next((n for n in ("x", "x_train") if n in headers), None)
    y_name = next((n for n in ("y", "y_train") if n in headers), None)
    if x_name is None or y_name is None:
        raise DataError(f"{path}: kerapipe init reads an .npz file of arrays x (features) and "
                        f"y (labels), or x_train and y_train; this one holds: {listing}. Save "
                        "it with numpy.savez(path, x=features, y=labels); several input "
                        "arrays need a pipeline written by hand (README: Several inputs).")
    x_head, y_head = headers[x_name], headers[y_name]
    if not x_head.shape or not y_head.shape or x_head.shape[0] != y_head.shape[0]:
        raise DataError(f"{path}: '{x_name}' {x_head.shape} and '{y_name}' {y_head.shape} must "
                        "hold one row per example, the same number of rows.")
    if x_head.shape[0] == 0:
        raise DataError(f"{path}: '{x_name}' holds no examples.")
    own_test = _own_test_split(path, headers, x_name, y_name)
    y = read_npz(path, [y_name])[y_name]
    y = text_labels(y, path, y_name)  # as the run reads string labels: UTF-8, no surrogate
    label = label_from_array(y_name, y, path)
    x_kind, example, notes = _npz_feature_kind(path, x_name, x_head)
    x = None
    if (x_kind in ("image", "text") or x_head.dtype.kind == "f") \
            and x_head.nbytes <= MAX_INSPECTED_ARRAY_BYTES:
        x = read_npz(path, [x_name])[x_name]
        if x_kind == "text":
            check_texts(x, path, x_name)
    if x is not None and x.dtype.kind == "f":
        bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if bad.any():
            raise DataError(f"{path}: '{x_name}' holds values that are not finite (NaN or "
                            f"infinite) in {int(bad.sum()):,} of its {len(x):,} examples, the "
                            f"first [{int(np.flatnonzero(bad)[0])}]; training would give a NaN "
                            "loss. Remove or fill those examples.")
    pixels = ""
    if x_kind == "image":
        largest = float(np.max(x)) if x is not None and x.size else None
        pixels = ("rescale" if x_head.dtype == np.uint8 or largest is not None
                  and 1.5 < largest <= 255.0 else "none" if largest is not None
                  and float(np.min(x)) >= 0.0 and largest <= 1.0 else "normalize")
    length = tokens = 0
    if x_kind == "text":
        sample = [] if x is None else [str(t) for t in x[::max(1, len(x) // 1000)]]
        length, tokens = text_settings(sample, x_head.shape[0], f"{path}: '{x_name}'")
    image_size = tuple(example[:2]) if x_kind == "image" else None
    return Inspection("npz", os.path.abspath(path), x_head.shape[0], True, label,
                      image_size=image_size, x_shape=example, x_kind=x_kind,
                      pixels=pixels, sequence_length=length, max_tokens=tokens,
                      own_test_split=own_test, notes=tuple(notes))


def _own_test_split(path: str, headers: dict, x_name: str, y_name: str) -> bool:
    """Whether the file has its own test split (``x_test`` and ``y_test`` beside
    ``x_train`` and ``y_train``), refused as the npz source refuses it: half of one, or
    test examples of another shape."""
    if not (x_name.endswith("_train") and y_name.endswith("_train")):
        return False
    x_test, y_test = x_name[:-6] + "_test", y_name[:-6] + "_test"
    has = (x_test in headers, y_test in headers)
    if has == (False, False):
        return False
    if has != (True, True):
        present, absent = (x_test, y_test) if has[0] else (y_test, x_test)
        raise DataError(f"{path}: has '{present}' but no '{absent}'; a test split needs "
                        f"both. Add '{absent}' to the file, or remove '{present}'.")
    if headers[x_test].shape[1:] != headers[x_name].shape[1:]:
        raise DataError(f"{path}: '{x_test}' holds examples of shape "
                        f"{headers[x_test].shape[1:]}, but '{x_name}' holds "
                        f"{headers[x_name].shape[1:]}; test examples must have the shape the "
                        "model is trained on.")
    if not headers[x_test].shape or not headers[y_test].shape \
            or headers[x_test].shape[0] != headers[y_test].shape[0]:
        raise DataError(f"{path}: '{x_test}' {headers[x_test].shape} and '{y_test}' "
                        f"{headers[y_test].shape} must hold one row per example, the same "
                        "number of rows.")
    return True


def _npz_feature_kind(path: str, name: str, header) -> tuple[str, tuple[int, ...], list[str]]:
    example = tuple(header.shape[1:])
    kind = header.dtype.kind
    if kind in "US":
        if example:
            raise DataError(f"{path}: '{name}' holds strings of shape {header.shape}; a text "
                            "array holds one string per example (shape (n,)).")
        return "text", example, ["strings: one text per example"]
    if kind not in "biuf":
        raise DataError(f"{path}: '{name}' holds {header.dtype} values; features must be "
                        "numbers, or strings for text.")
    if len(example) == 3 and example[2] in (1, 3) or len(example) == 2 and min(example) >= 8 \
            and kind in "u" or len(example) == 2 and min(example) >= 16:
        return "image", example, [f"arrays of {'x'.join(map(str, example))}: images"]
    if len(example) <= 1:
        notes = ([f"{example[0]} numbers an example: a table"] if example else
                 ["one number an example"])
        if kind in "iu" and example:
            notes.append("if these are token ids, an Embedding layer fits them better")
        return "table", example, notes
    return "table", example, [f"arrays of {'x'.join(map(str, example))}: flattened"]
