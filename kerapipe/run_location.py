"""Where a run folder may go: checked before any training, proven when it is created.

A run folder lies directly inside the output folder (its name is one plain folder name),
never inside an earlier run, on a file system with room for the run; ``is_run_folder``
tells a run folder from a user's folder. ``kerapipe.run_folder.RunFolder`` creates the
folder through ``make_new_folder`` and writes into it.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Union

from kerapipe.errors import KerapipeError, OutputError, UsageError
from kerapipe.run_files import max_spec_bytes, read_run_bytes, read_run_json

RESOLVED_SPEC_HEADER = ("# The pipeline as it ran: every default filled in "
                        "(kerapipe resolved spec).\n")
_STAMP_LENGTH = len("-20260101-120000-999")  # what make_new_folder appends to the name
_NAME_MAX = 255  # bytes in one folder name (ext4, XFS, APFS, NTFS)

PathLike = Union[str, os.PathLike]


def ensure_writable_dir(folder: PathLike) -> None:
    """Prove that run folders can be created under ``folder``, before any training.

    Creates nothing: checks the folder, or its closest existing parent when it does not
    exist yet.

    Raises:
        UsageError: the folder's name holds a NUL byte (it cannot name a folder at all).
        OutputError: it cannot be created or written, or it lies inside an earlier run.
    """
    existing = _closest_existing(folder)
    problem = ""
    if not existing.is_dir():
        problem = f"'{existing}' is a file, not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"'{existing}' is not writable"
    if problem:
        raise OutputError(f"cannot write run folders into '{folder}': {problem}. Choose "
                          "another folder with --output or output.dir.")
    refuse_inside_a_run(folder)


def is_run_folder(folder: PathLike) -> bool:
    """A folder that ``kerapipe run`` made: its run.json is a kerapipe run record, or its
    spec.yaml the resolved spec of one (a pipeline file of a user's is neither)."""
    folder = Path(folder)
    try:  # regular files only, bounded: a FIFO named run.json must not block this question
        if {"status", "kerapipe"} <= set(read_run_json(folder / "run.json")):
            return True
    except KerapipeError:
        pass
    try:
        head = read_run_bytes(folder / "spec.yaml", max_spec_bytes())[:len(RESOLVED_SPEC_HEADER)]
    except KerapipeError:
        return False
    return head == RESOLVED_SPEC_HEADER.encode()


def refuse_inside_a_run(folder: PathLike) -> None:
    """A run folder holds one run: a new run nested in it (or in its checkpoints) would be
    taken for part of the earlier one, and `--resume` or a clean-up would mix them."""
    resolved = Path(os.path.realpath(_checked_path_text(folder)))
    for candidate in (resolved, *resolved.parents):
        if candidate.is_dir() and is_run_folder(candidate):
            raise OutputError(f"'{folder}' is inside the run folder {candidate} of an earlier "
                              "run; a run folder holds exactly one run. Give the folder that "
                              f"holds the runs instead, e.g. --output {candidate.parent}.")


def _checked_path_text(folder: PathLike) -> str:
    text = os.fspath(folder)
    if "\0" in text:
        shown = repr(text if len(text) <= 80 else text[:77] + "...")
        raise UsageError("the output folder's name holds a NUL byte, which no file system "
                         "accepts in a path. Give a plain folder path with --output or "
                         f"output.dir. Received: output={shown}")
    long = [part for part in Path(text).parts if len(os.fsencode(part)) > _NAME_MAX]
    if long:  # Path.exists() itself would raise ENAMETOOLONG
        raise OutputError(f"the output folder '{text[:80]}...' holds a folder name of "
                          f"{len(os.fsencode(long[0]))} bytes; file systems take at most "
                          f"{_NAME_MAX}. Choose another folder with --output or output.dir.")
    return text


def _closest_existing(folder: PathLike) -> Path:
    existing = Path(_checked_path_text(folder)).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing


def estimated_run_bytes(compiled) -> int:
    """Disk a run needs at its peak: while a checkpoint rotates, two of them (weights and
    optimizer state, up to 3x the weights for Adam) plus the best weights, the final
    model and predictions.csv; 1 MiB for the small files."""
    weights = 4 * compiled.model.count_params()
    test = compiled.data.test
    predictions = 0 if test is None else 120 * len(test.y)
    return 2 * 3 * weights + 2 * weights + predictions + (1 << 20)


def ensure_free_space(folder: PathLike, compiled) -> None:
    """Refuse to start a run that would fill the disk halfway through.

    Raises:
        OutputError: the folder's file system has less free space than the run needs.
    """
    existing = _closest_existing(folder)
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        return  # cannot tell: the writes themselves will report a full disk
    need = estimated_run_bytes(compiled)
    if free < need:
        raise OutputError(f"'{folder}' has {free / 2**20:.1f} MiB free, and this run needs "
                          f"about {need / 2**20:.1f} MiB (checkpoints of "
                          f"{compiled.model.count_params():,} parameters, the final model and "
                          "predictions). Free some space, or choose another folder with "
                          "--output or output.dir.")


def check_run_name(name: str, output_dir: PathLike) -> None:
    """Refuse a run name that is not one plain folder name.

    The run folder is ``<output_dir>/<name>-<timestamp>``; a separator, ``..``, an absolute
    path or a NUL byte in the name would put it elsewhere (or nowhere).

    Raises:
        UsageError: the name is empty, ``.``/``..``, or holds a separator or NUL byte, or
            is too long for a folder name.
    """
    limit = _NAME_MAX - _STAMP_LENGTH
    separators = sorted({"/", "\\", os.sep, os.altsep} - {None})
    if not isinstance(name, str) or name in ("", ".", ".."):
        problem = "it is empty, '.' or '..'"
    elif "\0" in name:
        problem = "it holds a NUL byte"
    elif any(sep in name for sep in separators):
        problem = f"it holds a path separator ({' or '.join(map(repr, separators))})"
    elif len(name.encode("utf-8", "surrogatepass")) > limit:
        problem = f"it is longer than {limit} bytes"
    else:
        return
    shown = repr(name if not isinstance(name, str) or len(name) <= 80 else name[:77] + "...")
    raise UsageError(f"the run name {shown} is not one folder name: {problem}. The run folder "
                     f"<name>-<timestamp> must lie directly inside the output folder "
                     f"'{output_dir}'. Set name to letters, digits, '_', '-' and '.' (at most "
                     f"{limit} bytes). Received: name={shown}")


def make_new_folder(output_dir: PathLike, name: str) -> Path:
    """``<output_dir>/<name>-<timestamp>[-N]``, created empty and proven writable."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(output_dir)
    try:
        base.mkdir(parents=True, exist_ok=True)
        real_base = os.path.realpath(base)
        for attempt in range(1, 1000):
            candidate = base / (f"{name}-{stamp}" + (f"-{attempt}" if attempt > 1 else ""))
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            if os.path.dirname(os.path.realpath(candidate)) != real_base:
                candidate.rmdir()  # cannot happen after check_run_name: the proof, kept
                raise UsageError(f"the run folder {candidate} would not lie directly inside "
                                 f"the output folder '{base}'. Received: name={name!r}")
            probe = candidate / ".write-test"
            probe.write_text("")
            probe.unlink()
            return candidate
    except OSError as err:
        raise OutputError(f"cannot create a run folder in '{base}': {err.strerror or err}. "
                          "Choose another folder with --output or output.dir.") from err
    raise OutputError(f"too many runs named '{name}' started at {stamp} in '{base}'.")
