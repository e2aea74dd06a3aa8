"""Reading back what kerapipe wrote into a run folder, without trusting it.

``--resume``, ``predict`` and ``evaluate`` read a run folder's run.json, spec.yaml,
``checkpoints/LATEST``, a checkpoint's state.json and its saved models. Any of them may
have been edited, truncated, or replaced by a FIFO, a device or a link since kerapipe
wrote them. Every such read goes through here: a regular file only
(``kerapipe.safe_io.open_regular``: ``stat``, an ``O_NONBLOCK`` open, ``fstat``), at most a few MiB, UTF-8, JSON that is an object
whose fields have the types kerapipe writes; a checkpoint is one ``epoch-NNNN`` folder
inside ``checkpoints/``. Anything else is a ``UsageError`` (exit 2) that names the file
and says the run folder is damaged. No TensorFlow is imported here but by
``load_saved_model``.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any, Optional

from kerapipe.errors import UsageError
from kerapipe.safe_io import NotRegularFile, file_kind, open_regular
from kerapipe.spec.issues import safe_repr

MAX_RECORD_BYTES = 4 << 20  # run.json, state.json: a few KiB when kerapipe writes them
MAX_POINTER_BYTES = 64  # checkpoints/LATEST: "epoch-NNNN\n"
CHECKPOINT_NAME = re.compile(r"epoch-\d{4,7}")  # one folder name in checkpoints/


def max_spec_bytes() -> int:
    """spec.yaml: the bound of a pipeline file (``yaml_loader.MAX_FILE_BYTES``)."""
    from kerapipe.spec.yaml_loader import MAX_FILE_BYTES

    return MAX_FILE_BYTES


def damaged(path: str | os.PathLike, problem: str) -> UsageError:
    """The error for a run folder's file that kerapipe did not write as it is now."""
    return UsageError(f"{path}: {problem}. The run folder is damaged (the file was changed "
                      "or replaced since kerapipe wrote it); restore the file, or start a "
                      "new run from the pipeline file.")


def read_run_bytes(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of a run folder's file: a regular file of at most ``max_bytes``.

    Raises:
        UsageError: it is missing, not a regular file, unreadable or too large.
    """
    path = os.fspath(path)
    if "\0" in path:
        raise damaged(safe_repr(path, 80), "the path holds a NUL byte")
    try:
        fd = open_regular(path)
    except NotRegularFile as err:
        raise damaged(path, str(err.strerror)) from err
    except (FileNotFoundError, NotADirectoryError) as err:
        raise damaged(path, "the file is missing") from err
    except OSError as err:  # no permission, a link loop, a name too long
        raise damaged(path, f"cannot read it ({err.strerror or err})") from err
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            raise damaged(path, f"it holds {size:,} bytes; kerapipe writes at most "
                                f"{max_bytes:,} there")
        try:
            data = handle.read(max_bytes + 1)
        except OSError as err:
            raise damaged(path, f"cannot read it ({err.strerror or err})") from err
    if len(data) > max_bytes:  # grew while it was read
        raise damaged(path, f"it holds more than {max_bytes:,} bytes; kerapipe writes at "
                            "most that there")
    return data


def read_run_text(path: str | os.PathLike, max_bytes: int) -> str:
    """``read_run_bytes`` decoded as UTF-8 (which is what kerapipe writes)."""
    data = read_run_bytes(path, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise damaged(path, f"it is not UTF-8 text (byte {err.start})") from err


def read_run_json(path: str | os.PathLike, max_bytes: int = MAX_RECORD_BYTES) -> dict:
    """A run folder's JSON file (run.json, state.json): a JSON object.

    Raises:
        UsageError: not a bounded regular file, not UTF-8, not JSON or not an object.
    """
    text = read_run_text(path, max_bytes)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise damaged(path, f"it is not JSON ({str(err)[:120]})") from err
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null",
                int: "a number", float: "a number"}[type(value)]
        raise damaged(path, f"it holds {kind}, not a JSON object. "
                            f"Received: {safe_repr(value, 80)}")
    return value


# --- the fields kerapipe reads back -----------------------------------------------------

def _wrong(path, key: str, expected: str, value: Any) -> UsageError:
    return damaged(path, f"{key} should be {expected}. Received: {key}={safe_repr(value, 80)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _optional_text(path, record: dict, key: str, shown: Optional[str] = None) -> None:
    value = record.get(key)
    if value is not None and (not isinstance(value, str) or "\0" in value):
        raise _wrong(path, shown or key, "a string without NUL bytes", value)


def read_run_record(path: str | os.PathLike) -> dict:
    """run.json, with the fields resume, predict and evaluate use of the right types.

    Raises:
        UsageError: the file is damaged.
    """
    record = read_run_json(path)
    if not isinstance(record.get("status"), str):
        raise _wrong(path, "status", "a string such as \"finished\"", record.get("status"))
    for key in ("pipeline_file", "base_dir"):
        _optional_text(path, record, key)
    overrides = record.get("overrides")
    if overrides is not None and (not isinstance(overrides, list) or not all(
            isinstance(o, str) and "\0" not in o for o in overrides)):
        raise _wrong(path, "overrides", "a list of KEY=VALUE strings", overrides)
    imports = record.get("imports")
    if imports is not None and (not isinstance(imports, dict) or not all(
            isinstance(v, str) for v in imports.values())):
        raise _wrong(path, "imports", "an object of file hashes", imports)
    if "data" not in record:
        return record
    data = record["data"]
    if not isinstance(data, dict):  # read as record.get("data", {}).get(...)
        raise _wrong(path, "data", "an object", data)
    _optional_text(path, data, "fingerprint", "data.fingerprint")
    names = data.get("class_names")
    if names is not None and (not isinstance(names, list) or not all(
            isinstance(n, (str, int, float)) and not isinstance(n, bool) for n in names)):
        raise _wrong(path, "data.class_names", "a list of class names", names)
    if data.get("num_classes") is not None and not _is_int(data["num_classes"]):
        raise _wrong(path, "data.num_classes", "an integer", data["num_classes"])
    return record


def yaml_seed(spec_text: str, where: str = "spec.yaml") -> int:
    """The seed a run drew, from its resolved spec.yaml.

    Raises:
        UsageError: the text is not a pipeline mapping with an integer seed in range.
    """
    from kerapipe.spec.model import MAX_SEED
    from kerapipe.spec.yaml_loader import LoadProblem, load_document

    try:
        data = load_document(spec_text, where).data
    except LoadProblem as problem:
        raise damaged(where, f"it is not a pipeline file ({problem.issue.message})") from problem
    seed = data.get("seed") if isinstance(data, dict) else None
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise damaged(where, f"its seed should be an integer from 0 to {MAX_SEED}. "
                             f"Received: seed={str(seed)[:40]}")
    return seed


def read_checkpoint_state(path: str | os.PathLike) -> dict:
    """A checkpoint's state.json: epochs done, history, early-stopping counters.

    Raises:
        UsageError: the file is damaged.
    """
    from kerapipe.spec.model import MAX_EPOCHS

    state = read_run_json(path)
    done = state.get("epochs_done")
    if not _is_int(done) or not 1 <= done <= MAX_EPOCHS:
        raise _wrong(path, "epochs_done", f"an integer from 1 to {MAX_EPOCHS:,}", done)
    history = state.get("history", {})
    if not isinstance(history, dict) or not all(
            isinstance(v, list) and all(_is_number(x) for x in v) for v in history.values()):
        raise _wrong(path, "history", "an object of lists of numbers", history)
    if len({len(v) for v in history.values()}) > 1:
        raise _wrong(path, "history", "lists of one length (one entry per epoch)",
                     {k: len(v) for k, v in history.items()})
    early = state.get("early_stopping")
    if early is not None:
        if not isinstance(early, dict) or not _is_int(early.get("wait")) \
                or not _is_int(early.get("best_epoch")) or early["wait"] < 0 \
                or not (early.get("best") is None or _is_number(early.get("best"))):
            raise _wrong(path, "early_stopping", "an object with integers wait and "
                         "best_epoch and a number (or null) best", early)
    return state


def read_checkpoint_pointer(checkpoints: Path) -> Optional[Path]:
    """The folder ``checkpoints/LATEST`` names, or ``None`` when there is no LATEST.

    The name must be one ``epoch-NNNN`` folder of ``checkpoints`` (not a link): never a
    path that leads elsewhere (an absolute folder, ``..``). kerapipe writes LATEST only
    once the folder it names is complete, so a name without its folder is damage too.

    Raises:
        UsageError: LATEST is damaged, or names something that is not such a folder.
    """
    pointer = Path(checkpoints) / "LATEST"
    if not os.path.lexists(pointer):
        return None
    name = read_run_text(pointer, MAX_POINTER_BYTES).strip()
    if not CHECKPOINT_NAME.fullmatch(name):
        raise damaged(pointer, "it should name one checkpoint folder of "
                               f"{checkpoints}, such as epoch-0003. Received: {safe_repr(name, 80)}")
    folder = pointer.parent / name
    try:
        mode = os.lstat(folder).st_mode
    except OSError as err:
        raise damaged(pointer, f"it names {name}, but {folder} is missing") from err
    if not stat.S_ISDIR(mode):
        kind = ("a symbolic link" if stat.S_ISLNK(mode) else "a file" if stat.S_ISREG(mode)
                else file_kind(mode))
        raise damaged(folder, f"it is {kind}, not a checkpoint folder")
    return folder


def load_saved_model(path: Path, custom_objects: Optional[dict] = None):
    """``keras.saving.load_model`` in safe mode, a refusal being a ``UsageError``.

    A ``.keras`` file that is not a zip, lacks its config, holds a Python lambda (which
    safe mode refuses) or does not rebuild is reported naming the file, not as a Keras
    traceback.

    Raises:
        UsageError: the file is missing, not a regular file, or Keras cannot load it.
    """
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import keras

    from kerapipe.compiler.imports import saving_scope

    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise damaged(path, "the saved model is missing" if isinstance(
            err, FileNotFoundError) else f"cannot read it ({err.strerror or err})") from err
    if not stat.S_ISREG(mode):
        raise damaged(path, f"it is {file_kind(mode)}, not a .keras file")
    try:
        with saving_scope(custom_objects or {}):
            return keras.saving.load_model(path, safe_mode=True)
    except Exception as err:  # what Keras raises on a damaged file varies by the damage
        import zipfile

        from kerapipe.errors import KerapipeError

        if isinstance(err, (KerapipeError, MemoryError)):  # the imported code said why; OOM
            raise
        if isinstance(err, zipfile.BadZipFile) or "zip" in str(err):
            problem = "it is not a .keras zip file"
        else:
            text = str(err).strip("'\"")
            text = text if len(text) <= 200 else text[:197] + "..."
            problem = f"Keras cannot load it in safe mode ({text})"
        raise damaged(path, problem) from err
