"""Data folders: the walk (never left, regular files only) and the folder of one
sub-folder per class.

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

A folder of one sub-folder per class (the image and text sources, Keras's
``index_directory`` idea) is listed here by ``index_class_folder``, for training and
``predict`` alike; a training folder's layout is checked (and explained) by
``check_class_folders``, a ``predict`` input folder by ``check_input_folder``; each source
describes its files in a ``ClassFolderKind``. Such a source is a ``ClassFolderSource``: its
examples are the files' paths, read by tf.data (``read_example``), each file at most a
bounded size when kerapipe reads it itself (``read_whole_file``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from kerapipe.compiler.files import not_regular, open_regular_file, size_text
from kerapipe.compiler.sources import Source
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


@dataclass(frozen=True)
class ClassFolderKind:
    """What a one-sub-folder-per-class source holds, as its messages name it."""

    extensions: tuple[str, ...]  # the wanted endings, lower case: (".png", ...)
    files: str  # the files, plural: "images", ".txt files"
    listed: str  # the files with their endings, where predict finds none: "images (.png, ...)"
    kind: str  # what "... files end in ..." calls them: "Image", "Text"
    examples: str  # what the user puts in the class folders: "images", "texts"
    samples: tuple[str, str]  # two files of two classes: ("cat/001.jpg", "dog/001.jpg")


@dataclass
class ClassFolderIndex:
    """The files of a folder, as ``index_class_folder`` lists them."""

    paths: list[str] = field(default_factory=list)  # in the order the folder is walked
    ids: list[str] = field(default_factory=list)  # each path relative to the folder, "/"-separated
    labels: list[int] = field(default_factory=list)  # index into class_names; -1: loose file
    class_names: list[str] = field(default_factory=list)  # the sub-folders, sorted
    counts: list[int] = field(default_factory=list)  # files of each class


def index_class_folder(folder: str | os.PathLike, extensions: Sequence[str],
                       where: Optional[str] = None, skip_refused: bool = False,
                       classes_only: bool = False, most: Optional[int] = None,
                       too_many: str = "", utf8_paths: bool = False) -> ClassFolderIndex:
    """The files under ``folder`` with a wanted extension, by the folder policy with
    ``folder`` as the data folder: the one lister of class folders, for training and
    ``predict``.

    The order is Keras's: the folder's own files (sorted; unless ``classes_only``), then
    each sub-folder's (a class, in sorted order), walked depth first; names starting with
    a dot are passed over.

    Args:
        folder: the folder to walk.
        extensions: the wanted endings, lower case (``.png``).
        where: how messages name it. Defaults to ``folder``.
        skip_refused: pass over what the policy refuses and names that are not UTF-8
            (``predict``). Defaults to raising.
        classes_only: list only the files inside sub-folders (training: the folder's own
            files belong to no class). Defaults to listing them too.
        most: the most files listed. Defaults to no bound.
        too_many: the message, after ``where``, for more than ``most`` files.
        utf8_paths: ask the whole path to be UTF-8, not only the id (the image source:
            ``predict`` then passes over every file of a folder whose own path is not).
            Defaults to the id only.

    Raises:
        DataError: for a link out of the folder, a cycle, a file that is not a regular
            file or whose name is not UTF-8 (unless ``skip_refused``), more than ``most``
            files, or a folder that cannot be listed.
    """
    root = os.fspath(folder)
    where = where or root
    inside = os.path.realpath(root)

    def check_count(count: int) -> None:
        if most is not None and count > most:
            raise DataError(f"{where}: {too_many}")

    subfolders = []
    for entry in visible_entries(root, where):
        with passing_over_refused(skip_refused):
            if follows(entry, inside, inside, where, extensions):
                subfolders.append(entry.name)
    groups = [] if classes_only else [(-1, files_under(root, inside, where, extensions,
                                                       skip_refused, subfolders=False))]
    for label, name in enumerate(subfolders):
        groups.append((label, files_under(os.path.join(root, name), inside, where,
                                          extensions, skip_refused)))
        check_count(sum(len(found) for _, found in groups))
    index = ClassFolderIndex(class_names=subfolders, counts=[0] * len(subfolders))
    for label, found in groups:
        for path in found:
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            if not _utf8_name(path if utf8_paths else relative, path, where, skip_refused):
                continue  # predict: passed over, as the folder policy passes over what it refuses
            index.paths.append(path)
            index.ids.append(relative)
            index.labels.append(label)
            if label >= 0:
                index.counts[label] += 1
    check_count(len(index.paths))
    return index


def _utf8_name(name: str, path: str, where: str, skip_refused: bool) -> bool:
    """Whether ``name``, the id of the file at ``path`` (its path in the folder) or the
    path itself, is UTF-8 text, which an id must be (run.json, the predictions CSV);
    ``False`` for one that is not, when ``skip_refused``.

    Raises:
        DataError: naming the file, unless ``skip_refused``.
    """
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError as err:  # the bytes os.fsdecode could not decode
        if skip_refused:
            return False
        raise DataError(f"{where}: the file name {path!r} is not valid UTF-8; rename "
                        "the file.") from err


def check_class_folders(index: ClassFolderIndex, root: str, where: str,
                        kind: ClassFolderKind, every_class_filled: bool = False) -> None:
    """Refuse a training folder (``index`` by ``index_class_folder``, ``classes_only``)
    without class sub-folders or without files in them, saying how to lay it out.

    Args:
        index: the folder's files.
        root: the folder.
        where: how messages name it.
        kind: the source's files, as messages name them.
        every_class_filled: refuse a class folder without files too. Defaults to
            accepting one, as long as some class has files.

    Raises:
        DataError: for a folder without class sub-folders, without files in them, or (with
            ``every_class_filled``) with a class folder without files.
    """
    first, second = kind.samples
    layout = (f"Put the {kind.examples} in one sub-folder per class, e.g. "
              f"{where}/{first} and {where}/{second}.")
    if not index.class_names:
        loose = [e.name for e in folder_entries(root, where)
                 if e.name.lower().endswith(kind.extensions)]
        found = f" It holds {len(loose)} {kind.files} but no sub-folders." if loose else ""
        raise DataError(f"{where}: no class sub-folders.{found} {layout}")
    if not index.paths:
        raise DataError(f"{where}: no {kind.files} in the class folders "
                        f"({', '.join(index.class_names)}). {kind.kind} files end in "
                        f"{', '.join(kind.extensions)}. {layout}")
    empty = [name for name, count in zip(index.class_names, index.counts) if count == 0]
    if every_class_filled and empty:
        raise DataError(f"{where}: the class folder{'s' if len(empty) > 1 else ''} "
                        f"{', '.join(empty)} hold{'' if len(empty) > 1 else 's'} no "
                        f"{kind.files}; every class needs examples. Add {kind.examples}, or "
                        "remove the folder (each sub-folder is a class).")


def check_input_folder(index: ClassFolderIndex, folder: Path, kind: ClassFolderKind) -> None:
    """Refuse a ``predict`` input folder (``index`` by ``index_class_folder``, passing
    over what the folder policy refuses) without any of the source's files.

    Raises:
        DataError: when the folder holds none of them.
    """
    if not index.paths:
        raise DataError(f"{folder}: no {kind.listed} found (only regular files inside the "
                        "folder are read).")


def read_whole_file(path: str | os.PathLike, where: str, most: int, kind: str,
                    hint: str = "") -> bytes:
    """The bytes of a regular file of at most ``most`` bytes, opened without blocking and
    read once.

    Args:
        path: the file.
        where: how messages name what the file belongs to; the file itself when it is
            ``str(path)``.
        most: the most bytes read.
        kind: what "kerapipe reads from one ..." calls the file: "such file", "text file".
        hint: what to do, after the message about a file that is too large. Defaults to
            nothing.

    Raises:
        DataError: when it is missing, not a regular file, unreadable or too large.
    """
    itself = where == os.fspath(path)  # the messages name the file where they name `where`
    try:
        with os.fdopen(open_regular_file(path, where, most), "rb") as handle:
            contents = handle.read(most + 1)
    except OSError as err:
        raise DataError(f"{where}: cannot read {'the file' if itself else path} "
                        f"({err.strerror or err}).") from err
    if len(contents) > most:  # it grew since it was opened
        raise DataError(f"{where}: {'' if itself else f'{path} '}holds more than the "
                        f"{size_text(most)} kerapipe reads from one {kind}.{hint}")
    return contents


class ClassFolderSource(Source):
    """A source of one sub-folder per class whose examples are files: the split holds
    their paths, and tf.data reads each one (``read_example``)."""

    shuffles_files = True
    path_key = "dir"

    def source_order(self, ids: np.ndarray) -> np.ndarray:
        """A folder's order is its files' sorted paths (relative to the folder)."""
        return np.argsort(np.asarray(ids, dtype=str), kind="stable").astype(np.int64)

    def read_example(self, path):
        """One example from its file's path, as tf.data reads it (a tensor of the path)."""
        raise NotImplementedError

    def features(self, split):
        from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices(split.x).map(
            self.read_example, num_parallel_calls=tf.data.AUTOTUNE)

    def examples(self, split, shuffle_files: bool = False, seed: Optional[int] = None):
        """With ``shuffle_files``, the paths are shuffled (all of them, every epoch) before
        the files are read: a full shuffle that costs 8 bytes per file (``permutation``),
        where a shuffle buffer of read examples would hold ``data.shuffle`` of them."""
        from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
        import tensorflow as tf

        from kerapipe.compiler.datasets import permutation

        if shuffle_files:
            paths, labels = tf.constant(split.x, tf.string), tf.constant(split.y)
            ds = permutation(len(split.y), seed).map(
                lambda i: (tf.gather(paths, i), tf.gather(labels, i)))
        else:
            ds = tf.data.Dataset.from_tensor_slices((split.x, split.y))
        return ds.map(lambda path, y: (self.read_example(path), y),
                      num_parallel_calls=tf.data.AUTOTUNE)
