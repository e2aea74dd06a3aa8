"""Where an export is written, and how it is written there without overwriting anything
or leaving anything half-written: a hidden staging folder beside the destination, and a
final move that refuses a name that exists, even one made during the export
(``kerapipe.safe_io.link_into_place``)."""

from __future__ import annotations

import os
from pathlib import Path

from kerapipe.errors import OutputError
from kerapipe.safe_io import link_into_place

# Where an export goes without -o: inside the run folder, one name per format.
DEFAULT_PATHS = {"saved_model": "export/saved_model", "tflite": "export/model.tflite",
                 "onnx": "export/model.onnx"}


def default_export_path(run_dir: str | os.PathLike, fmt: str) -> Path:
    """Where ``fmt`` is exported without ``-o``: ``RUN_DIR/export/...``."""
    return Path(run_dir) / DEFAULT_PATHS[fmt]


def check_destination(path: Path) -> None:
    """Refuse a destination that exists: an export never replaces anything.

    Raises:
        OutputError: ``path`` exists (a file, folder or link, even a broken one).
    """
    if os.path.lexists(path):
        raise OutputError(f"{path} already exists; kerapipe export never overwrites. Give "
                          "another path with -o, or remove it first.")


def refuse_a_linked_export_folder(run_dir: str | os.PathLike) -> None:
    """The default destination is inside the run folder: its ``export`` must be a real
    folder there (or absent), never a link that would carry the export elsewhere.

    Raises:
        OutputError: ``RUN_DIR/export`` is a link or not a folder.
    """
    folder = Path(run_dir) / "export"
    if os.path.islink(folder) or (os.path.lexists(folder) and not folder.is_dir()):
        raise OutputError(f"{folder} is {'a link' if os.path.islink(folder) else 'not a folder'}"
                          "; kerapipe export writes into the run folder's own export/ folder "
                          "only. Give the path to write with -o.")


def move_into_place(artifact: Path, destination: Path) -> None:
    """Move the checked artifact (a file or folder in the staging folder) to its
    destination, which must still not exist: ``kerapipe.safe_io.link_into_place``, which
    never replaces a name, even one made while the export ran.

    Raises:
        OutputError: the destination appeared meanwhile, or cannot be written.
    """
    check_destination(destination)
    link_into_place(artifact, destination, taken=(
        f"{destination} already exists (it appeared during the export); kerapipe export "
        "never overwrites. Nothing was written."))


def make_staging(destination: Path) -> Path:
    """A hidden folder beside ``destination`` (the same file system: the final rename is
    atomic) that the export is written and checked in."""
    import tempfile

    parent = destination.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{destination.name}.partial-", dir=parent))
    except OSError as err:
        raise OutputError(f"cannot write into {parent}: {err.strerror or err}. Give a "
                          "writable path with -o.") from err
