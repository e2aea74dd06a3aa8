"""Walking a data folder: never left, regular files only.

The policy, for training's image folders and for ``predict`` alike: a symbolic link is
followed only when it resolves inside the data folder (the folder given, itself
resolved once); one that would be followed (a folder, or a file with a wanted
extension) and leads outside is refused, as is a link back to a folder that holds it (a
cycle). Only regular files are read: a wanted-named FIFO, device or socket is refused.
Other files are never opened, links among them never followed; names starting with a
dot are passed over. A folder reached twice through links is walked once.

Training refuses the whole folder at the first entry the policy refuses (the data set
must be the one the user thinks it is); ``predict`` passes over such entries
(``skip_refused``) and predicts the rest.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Sequence

from kerapipe.compiler.files import not_regular
from kerapipe.safe_io import file_kind
from kerapipe.errors import DataError


def visible_entries(folder: str, where: str) -> list[os.DirEntry]:
    """A folder's entries but the hidden ones (``.name``), sorted by name.

    Raises:
        DataError: when the folder cannot be listed.
    """
    return [entry for entry in folder_entries(folder, where) if not entry.name.startswith(".")]


@contextlib.contextmanager
def passing_over_refused(skip_refused: bool) -> Iterator[None]:
    """Where the folder policy refuses an entry (a ``DataError``): pass over it when
    ``skip_refused`` (``predict`` reads what it can), else raise (training)."""
    try:
        yield
    except DataError:
        if not skip_refused:
            raise


def folder_entries(folder: str, where: str) -> list[os.DirEntry]:
    """A folder's entries, sorted by name.

    Raises:
        DataError: when the folder cannot be listed.
    """
    try:
        with os.scandir(folder) as listing:
            return sorted(listing, key=lambda entry: entry.name)
    except OSError as err:
        raise DataError(f"{where}: cannot read the folder {folder} ({err.strerror or err}).") \
            from err


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _wanted(name: str, extensions: Sequence[str]) -> bool:
    return name.lower().endswith(tuple(extensions))


def follows(entry: os.DirEntry, inside: str, current: str, where: str,
            extensions: Sequence[str]) -> bool:
    """Whether ``entry`` is a folder to walk; refuses a link out of the data folder
    ``inside``, or back to ``current`` (the real path of the folder holding it) or above.

    Raises:
        DataError: for a link the policy refuses.
    """
    try:
        is_dir = entry.is_dir()
    except OSError:
        is_dir = False
    if entry.is_symlink() and (is_dir or _wanted(entry.name, extensions)):
        target = os.path.realpath(entry.path)
        if not _inside(target, inside):
            raise DataError(
                f"{where}: {entry.path} is a symbolic link to {target}, outside the data "
                f"folder {inside}. kerapipe follows links only within the data folder, so "
                "that a link cannot make it read the rest of the file system. Copy the files "
                "into the folder, or replace the link with them.")
        if is_dir and _inside(current, target):
            raise DataError(f"{where}: {entry.path} is a symbolic link to {target}, a folder "
                            "that holds the link itself (a cycle). Remove the link.")
    return is_dir


def files_under(top: str, inside: str, where: str, extensions: Sequence[str],
                skip_refused: bool = False, subfolders: bool = True) -> list[str]:
    """Files under ``top`` with a wanted extension: a folder's files (sorted), then each
    sub-folder, in the order ``os.walk`` gave (fingerprints of earlier runs stay the same).

    Args:
        top: the folder to walk.
        inside: the real path of the data folder that links must stay in.
        where: how messages name the data folder.
        extensions: the wanted endings, lower case (``.png``).
        skip_refused: pass over an entry the policy refuses instead of raising. Defaults
            to raising.
        subfolders: walk the sub-folders too. Defaults to walking them; without, only
            ``top``'s own files are listed.

    Raises:
        DataError: for a link out of the folder, a cycle, or a wanted file that is not a
            regular file (unless ``skip_refused``), or a folder that cannot be listed.
    """
    paths: list[str] = []
    walked: set[tuple[int, int]] = set()
    pending = [top]
    while pending:
        folder = pending.pop()
        try:
            info = os.stat(folder)
        except OSError as err:
            raise DataError(f"{where}: cannot read the folder {folder} "
                            f"({err.strerror or err}).") from err
        if (info.st_dev, info.st_ino) in walked:
            continue  # reached again through a link: walked once
        walked.add((info.st_dev, info.st_ino))
        current = os.path.realpath(folder)
        below = []
        for entry in visible_entries(folder, where):
            with passing_over_refused(skip_refused):
                if follows(entry, inside, current, where, extensions):
                    below.append(entry.path)
                elif _wanted(entry.name, extensions):
                    _check_file_entry(entry, where)
                    paths.append(entry.path)
        if subfolders:
            pending.extend(reversed(below))
    return paths


def _check_file_entry(entry: os.DirEntry, where: str) -> None:
    try:
        if entry.is_file():
            return
        mode = entry.stat().st_mode
    except FileNotFoundError as err:
        raise DataError(f"{where}: {entry.path} is a symbolic link to "
                        f"{os.path.realpath(entry.path)}, which does not exist. Remove the "
                        "link.") from err
    except OSError as err:
        raise DataError(f"{where}: cannot read {entry.path} ({err.strerror or err}).") from err
    raise not_regular(where, entry.path, file_kind(mode))
