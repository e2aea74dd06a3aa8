"""The text-folder source (``TextFolderSource``): one sub-folder of ``.txt`` files per
class, as ``keras.utils.text_dataset_from_directory`` reads it; the texts are read by
tf.data while training.

The class order is Keras's: the sorted sub-folder names (hidden ones passed over); each
class holds the ``.txt`` files below its folder, at any depth. The folder is walked by
the folder policy of ``folders.py`` (links only within the folder, regular files only),
and the first pass reads every file once: its size is bounded
(``MAX_TEXT_FILE_BYTES``), its bytes must be UTF-8, and its hash goes into the
fingerprint. Only the paths stay in memory; tf.data reads the texts again
(``tf.io.read_file``), so the source streams from disk. An example is the file's text,
one string (a UTF-8 byte-order mark dropped), vectorised by a ``TextVectorization``
step; its id is the file's path relative to the folder (``pos/001.txt``).

``predict`` takes a folder of ``.txt`` files (any depth; each file one example, its id
its path in the folder) or one ``.txt`` file with one example a line (its id the line
number; blank lines are passed over), read by the same rules, or an .npz file of
strings.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from kerapipe.compiler.files import resolve
from kerapipe.compiler.folders import (ClassFolderIndex, ClassFolderKind, ClassFolderSource,
                                       check_class_folders, check_input_folder,
                                       index_class_folder, read_whole_file)
from kerapipe.compiler.sources.raw import RawData
from kerapipe.errors import DataError
from kerapipe.spec.sources import TextSource

TEXT_EXTENSIONS = (".txt",)
TEXTS = ClassFolderKind(TEXT_EXTENSIONS, files=".txt files", listed=".txt files", kind="Text",
                        examples="texts", samples=("pos/001.txt", "neg/001.txt"))
MAX_TEXT_FILE_BYTES = 1 << 22  # 4 MiB a file: one example's text (a long novel is ~1 MiB)
MAX_TEXT_FILES = 2_000_000  # files of one text folder (each path is kept in memory)
MAX_LINES_FILE_BYTES = 1 << 30  # 1 GiB: a predict input of one example a line
_BOM = "\ufeff"  # a UTF-8 byte-order mark (Windows editors write one), dropped from a text


class TextFolderSource(ClassFolderSource):
    """``source: {text: {dir: reviews}}``: a folder with one sub-folder of ``.txt`` files
    per class."""

    kind = "text"
    examples_are = "texts"

    def load(self) -> RawData:
        return load_texts(self.options, self.base_dir)

    def read_example(self, path):
        """One file's text, read by tf.data."""
        return read_text(path)

    def read_inputs(self, path: str | os.PathLike, record: Optional[dict] = None
                    ) -> tuple[Any, list[str]]:
        """A folder of ``.txt`` files, a ``.txt`` file of one example a line, or an .npz
        file of strings (``x``); one id per example."""
        source = Path(path)
        try:
            is_folder, is_file = source.is_dir(), source.exists()
        except (OSError, ValueError) as err:  # a name too long for the file system, a NUL
            raise DataError(f"{source}: cannot be read "
                            f"({getattr(err, 'strerror', None) or err}).") from err
        if is_folder:
            return self.read_folder_inputs(source)
        if is_file and source.suffix.lower() == ".txt":
            return read_text_lines(source)
        if is_file and source.suffix != ".npz":
            raise DataError(f"{source}: this run was trained on texts; give a folder of .txt "
                            "files, a .txt file with one example a line, or an .npz file "
                            "with a string array `x`.")
        return super().read_inputs(path, record)

    def prepare_inputs(self, x: np.ndarray, where: str) -> np.ndarray:
        """An .npz file's array of texts, checked as training's npz texts are."""
        from kerapipe.compiler.sources.npz_file import STRING_KINDS, text_inputs

        if x.dtype.kind not in STRING_KINDS:
            raise DataError(f"{where}: this run was trained on texts, but the array holds "
                            f"{x.dtype} values. Save the texts as a string array "
                            "(numpy.savez(path, x=numpy.array(texts, dtype=str))).")
        return text_inputs(x, where)

    def read_folder_inputs(self, folder: Path) -> tuple[np.ndarray, list[str]]:
        """Every ``.txt`` file under ``folder`` (any depth, passing over what the folder
        policy refuses), read by the training rules; each one's id is its path relative
        to ``folder``."""
        index = index_text_folder(folder, str(folder), skip_refused=True)
        check_input_folder(index, folder, TEXTS)
        texts = [read_text_file(p, str(folder))[0] for p in index.paths]
        return np.array(texts, dtype=object), index.ids


def index_text_folder(folder: str | os.PathLike, where: Optional[str] = None,
                      skip_refused: bool = False, classes_only: bool = False) -> ClassFolderIndex:
    """The ``.txt`` files under ``folder``, by the one class-folder lister
    (``folders.index_class_folder``), for training and ``predict``, at most
    ``MAX_TEXT_FILES`` of them.

    Args:
        folder: the folder to walk.
        where: how messages name it. Defaults to ``folder``.
        skip_refused: pass over what the policy refuses and names that are not UTF-8
            (``predict``). Defaults to raising.
        classes_only: list only the files inside sub-folders (training). Defaults to
            listing the folder's own files too.

    Raises:
        DataError: for a link out of the folder, a cycle, a file that is not a regular
            file or whose name is not UTF-8 (unless ``skip_refused``), more than
            ``MAX_TEXT_FILES`` files, or a folder that cannot be listed.
    """
    return index_class_folder(folder, TEXT_EXTENSIONS, where, skip_refused, classes_only,
                              most=MAX_TEXT_FILES, too_many=_too_many())


def _too_many() -> str:
    # Built at each call: MAX_TEXT_FILES is read when the folder is listed.
    return (f"holds more than {MAX_TEXT_FILES:,} .txt files, the most kerapipe reads from "
            "one text folder (it keeps every path in memory). Write the texts into TFRecord "
            "files (data.source.tfrecord), which are streamed.")


def read_text_file(path: str, where: str) -> tuple[str, bytes]:
    """The text of one ``.txt`` file, as training reads it, and its bytes: a regular file
    of at most ``MAX_TEXT_FILE_BYTES``, UTF-8, a byte-order mark dropped.

    Raises:
        DataError: naming the file and what is wrong.
    """
    contents = read_whole_file(path, where, MAX_TEXT_FILE_BYTES, "text file",
                               " Split it, or keep the part the model needs.")
    try:
        text = contents.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{where}: {path} is not UTF-8 text (the bytes "
                        f"{err.object[err.start:err.end]!r} at byte {err.start + 1:,}). Save "
                        "it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).") from err
    return text[1:] if text.startswith(_BOM) else text, contents


def has_words(text: str | bytes) -> bool:
    """Whether a text holds more than spaces: a text of none gives TextVectorization no
    token to learn (an empty or blank text)."""
    return bool(text) and not text.isspace()


def no_words(where: str, texts: str, fix: str) -> DataError:
    """The error for training texts of which none ``has_words`` (``texts`` names them):
    TextVectorization would adapt to an empty vocabulary, and every training step fail
    in tf.data ("Table not initialized")."""
    return DataError(f"{where}: every text is empty: no vocabulary can be learned ({texts} "
                     "hold no word, only empty or blank text, so every example would look "
                     f"the same). {fix}")


def read_text(path):
    """Read one text file for tf.data: its bytes as one string, a UTF-8 byte-order mark
    dropped (as ``read_text_file`` does)."""
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import tensorflow as tf

    return tf.strings.regex_replace(tf.io.read_file(path), "^" + _BOM, "")


def read_text_lines(path: Path) -> tuple[np.ndarray, list[str]]:
    """The examples of a ``.txt`` file of one example a line (``predict``): each
    non-blank line, its line ending dropped; each one's id is its line number.

    Raises:
        DataError: the file is not a regular file, too large, not UTF-8, or holds no text.
    """
    where = str(path)
    contents = read_whole_file(path, where, MAX_LINES_FILE_BYTES, "file of inputs", " Split it.")
    texts, ids = [], []
    for number, line in enumerate(contents.split(b"\n"), 1):
        try:
            text = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as err:
            raise DataError(f"{where}, line {number}: not UTF-8 text (the bytes "
                            f"{err.object[err.start:err.end]!r} at byte {err.start + 1} of "
                            "the line). Save the file as UTF-8.") from err
        if number == 1 and text.startswith(_BOM):
            text = text[1:]
        if text.strip():
            texts.append(text)
            ids.append(str(number))
    if not texts:
        raise DataError(f"{where}: holds no text to predict (one example a line; blank "
                        "lines are passed over).")
    return np.array(texts, dtype=object), ids


def load_texts(source: TextSource, base: str) -> RawData:
    """List the files of a class-per-folder text source, check each one (size, UTF-8)
    and fingerprint them; keep their paths and labels."""
    root = resolve(base, source.dir)
    where = source.dir
    if not os.path.isdir(root):
        raise DataError(f"{where}: no such folder (looked for {root}). data.source.text.dir "
                        "is relative to the pipeline file's folder; fix the path.")
    index = index_text_folder(root, where, classes_only=True)
    check_class_folders(index, root, where, TEXTS, every_class_filled=True)
    digest = hashlib.sha256()
    words = False
    for path, relative in zip(index.paths, index.ids):
        digest.update(relative.encode() + b"\0")  # UTF-8: index_text_folder checked
        text, contents = read_text_file(path, where)
        words = words or has_words(text)
        digest.update(hashlib.sha256(contents).digest())
    count = len(index.paths)
    if count and not words:
        raise no_words(where, f"its {count:,} .txt files", "Check that the files were "
                       "saved with their texts.")
    # An object array shares the path strings between the splits (see load_images).
    return RawData(np.array(index.paths, dtype=object), np.array(index.labels, dtype=np.int64),
                   where=where, class_names=index.class_names, regression=False,
                   fingerprint=digest.hexdigest(),
                   description=f"text:{source.dir} ({count:,} texts, "
                               f"{len(index.class_names)} classes)",
                   example_shape=(), ids=np.array(index.ids, dtype=object))
