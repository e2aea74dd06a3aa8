"""The image-folder source (``ImageFolderSource``): one sub-folder per class, decoded by
tf.data while training.

The first pass lists the files (``index_image_folder``, by the folder policy of
``folders.py``: the one lister, for training and ``predict``), fingerprints them and
checks each one's signature and end marker from the same read; the images are decoded
later, in tf.data, so the source streams from disk. ``predict`` lists its input folder
with the same indexer and checks each image by the same rule before decoding it. An
example's id is its path relative to the folder (``cat/001.jpg``).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from kerapipe.compiler.files import TAIL_BYTES, open_regular_file, resolve, scan_file, size_text
from kerapipe.compiler.folders import (files_under, folder_entries, follows,
                                       passing_over_refused, visible_entries)
from kerapipe.compiler.sources import Source
from kerapipe.compiler.sources.raw import RawData
from kerapipe.errors import DataError
from kerapipe.spec.known_datasets import IMAGE_CHANNELS as CHANNELS
from kerapipe.spec.model import ImagesSource

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
MAX_IMAGE_FILE_BYTES = 1 << 28  # 256 MiB: tf.data reads each image file whole
# What TensorFlow's image decoders say (decode_image/png/jpeg/gif/bmp); other
# InvalidArgumentErrors (shapes, labels) are not worth a scan of every image file.
_DECODE_MESSAGE = re.compile(r"image|PNG|JPEG|GIF|BMP|Input is empty|decode", re.I)


class ImageFolderSource(Source):
    """``source: {images: {dir: pics}}``: a folder with one sub-folder of images per class."""

    kind = "images"
    examples_are = "images"
    shuffles_files = True

    def load(self) -> RawData:
        return load_images(self.options, self.base_dir)

    def features(self, split):
        from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
        import tensorflow as tf

        images = self.options
        return tf.data.Dataset.from_tensor_slices(split.x).map(
            lambda path: decode_image(path, images.image_size, images.color_mode),
            num_parallel_calls=tf.data.AUTOTUNE)

    def examples(self, split, shuffle_files: bool = False, seed: Optional[int] = None):
        """With ``shuffle_files``, image paths are shuffled (all of them, every epoch)
        before decoding: a full shuffle that costs 8 bytes per file (``permutation``),
        where a shuffle buffer of decoded images would hold ``data.shuffle`` images."""
        from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
        import tensorflow as tf

        from kerapipe.compiler.datasets import permutation

        if shuffle_files:
            paths, labels = tf.constant(split.x, tf.string), tf.constant(split.y)
            ds = permutation(len(split.y), seed).map(
                lambda i: (tf.gather(paths, i), tf.gather(labels, i)))
        else:
            ds = tf.data.Dataset.from_tensor_slices((split.x, split.y))
        images = self.options
        return ds.map(lambda path, y: (decode_image(path, images.image_size, images.color_mode),
                                       y), num_parallel_calls=tf.data.AUTOTUNE)

    def explain_decode_failure(self, data, message: str, stage: str) -> Optional[DataError]:
        """The image file of the splits that TensorFlow cannot decode, named."""
        if not _DECODE_MESSAGE.search(message or ""):
            return None
        paths = [p for split in (data.train, data.validation, data.test) if split is not None
                 for p in split.x]
        bad = find_undecodable_image(paths, CHANNELS[self.options.color_mode])
        if bad is None:
            return None
        path, reason = bad
        return DataError(f"{self.options.dir}: {path} cannot be decoded ({reason}); {stage} "
                         "stopped at it. Replace or delete the file.")

    def read_folder_inputs(self, folder: Path) -> tuple[np.ndarray, list[str]]:
        """Every image under ``folder`` (by ``index_image_folder``, passing over what the
        folder policy refuses), checked and decoded as training reads them; each one's id
        is its path relative to ``folder``."""
        index = index_image_folder(folder, str(folder), skip_refused=True)
        if not index.paths:
            raise DataError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) found "
                            "(only regular files inside the folder are read).")
        return decode_image_files(index.paths, self.options), index.ids


@dataclass
class ImageIndex:
    """The image files of a folder, as ``index_image_folder`` lists them."""

    paths: list[str] = field(default_factory=list)  # in the order the folder is walked
    ids: list[str] = field(default_factory=list)  # each path relative to the folder, "/"-separated
    labels: list[int] = field(default_factory=list)  # index into class_names; -1: loose file
    class_names: list[str] = field(default_factory=list)  # the sub-folders, sorted


def index_image_folder(folder: str | os.PathLike, where: Optional[str] = None,
                       skip_refused: bool = False, classes_only: bool = False) -> ImageIndex:
    """The image files under ``folder``, by the folder policy
    (``kerapipe.compiler.folders``) with ``folder`` as the data folder: the one lister of
    image folders (Keras's ``index_directory`` idea), for training and ``predict``.

    The order: the folder's own images (sorted), then each sub-folder's (a class, in
    sorted order), walked depth first; names starting with a dot are passed over.

    Args:
        folder: the folder to walk.
        where: how messages name it. Defaults to ``folder``.
        skip_refused: pass over what the policy refuses (``predict``). Defaults to
            raising.
        classes_only: list only the images inside sub-folders (training: the folder's
            own images belong to no class). Defaults to listing them too.

    Raises:
        DataError: for a link out of the folder, a cycle, or an image that is not a
            regular file (unless ``skip_refused``); a folder that cannot be listed.
    """
    root = os.fspath(folder)
    where = where or root
    inside = os.path.realpath(root)
    index = ImageIndex()
    subfolders = []
    for entry in visible_entries(root, where):
        with passing_over_refused(skip_refused):
            if follows(entry, inside, inside, where, IMAGE_EXTENSIONS):
                subfolders.append(entry.name)
    if not classes_only:
        loose = files_under(root, inside, where, IMAGE_EXTENSIONS, skip_refused,
                            subfolders=False)
        index.paths.extend(loose)
        index.labels.extend([-1] * len(loose))
    for label, name in enumerate(subfolders):
        found = files_under(os.path.join(root, name), inside, where, IMAGE_EXTENSIONS,
                            skip_refused)
        index.paths.extend(found)
        index.labels.extend([label] * len(found))
    index.class_names = subfolders
    index.ids = [os.path.relpath(path, root).replace(os.sep, "/") for path in index.paths]
    named = [_utf8_name(path, where, skip_refused) for path in index.paths]
    if not all(named):  # predict: passed over, as the folder policy passes over what it refuses
        keep = [i for i, ok in enumerate(named) if ok]
        index.paths = [index.paths[i] for i in keep]
        index.ids = [index.ids[i] for i in keep]
        index.labels = [index.labels[i] for i in keep]
    return index


def _utf8_name(path: str, where: str, skip_refused: bool) -> bool:
    """Whether an image's path is UTF-8 text, which its id must be (run.json, the
    predictions CSV); ``False`` for a name that is not, when ``skip_refused``.

    Raises:
        DataError: naming the file, unless ``skip_refused``.
    """
    try:
        path.encode("utf-8")
        return True
    except UnicodeEncodeError as err:  # the bytes os.fsdecode could not decode
        if skip_refused:
            return False
        raise DataError(f"{where}: the file name {path!r} is not valid UTF-8; rename "
                        "the file.") from err


def decode_image(path, image_size: Sequence[int], color_mode: str):
    """Read one image file for tf.data: decode, resize; float32 0..255, shape (h, w, c)."""
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import tensorflow as tf

    return decode_image_bytes(tf.io.read_file(path), image_size, color_mode)


def decode_image_bytes(contents, image_size: Sequence[int], color_mode: str):
    """Decode and resize the bytes of one image file; float32 0..255, shape (h, w, c)."""
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import tensorflow as tf

    channels = CHANNELS[color_mode]
    height, width = int(image_size[0]), int(image_size[1])
    image = tf.io.decode_image(contents, channels=channels, expand_animations=False)
    image = tf.image.resize(image, (height, width))
    image.set_shape((height, width, channels))
    return tf.cast(image, tf.float32)


def read_image_file(path: str) -> bytes:
    """The bytes of one image file: a regular file, opened without blocking, of at most
    ``MAX_IMAGE_FILE_BYTES`` (what ``predict`` decodes; tf.data reads training's files).

    Raises:
        DataError: naming the file and what is wrong.
    """
    try:
        with os.fdopen(open_regular_file(path, path, MAX_IMAGE_FILE_BYTES), "rb") as handle:
            contents = handle.read(MAX_IMAGE_FILE_BYTES + 1)
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err.strerror or err}).") from err
    if len(contents) > MAX_IMAGE_FILE_BYTES:  # it grew since it was opened
        raise DataError(f"{path}: holds more than the {size_text(MAX_IMAGE_FILE_BYTES)} "
                        "kerapipe reads from one such file.")
    return contents


def load_images(source: ImagesSource, base: str) -> RawData:
    """List, fingerprint and check the images of a class-per-folder image source."""
    root = resolve(base, source.dir)
    where = source.dir
    if any(int(d) < 1 for d in source.image_size):
        raise DataError(f"{where}: data.source.images.image_size {list(source.image_size)} "
                        "holds a size below 1; images are resized to [height, width], each "
                        "at least 1 pixel. Fix data.source.images.image_size.")
    if not os.path.isdir(root):
        raise DataError(f"{where}: no such folder (looked for {root}). data.source.images.dir "
                        "is relative to the pipeline file's folder; fix the path.")
    index = index_image_folder(root, where, classes_only=True)
    class_names, paths = index.class_names, index.paths
    layout = ("Put the images in one sub-folder per class, e.g. "
              f"{where}/cat/001.jpg and {where}/dog/001.jpg.")
    if not class_names:
        loose = [e.name for e in folder_entries(root, where)
                 if e.name.lower().endswith(IMAGE_EXTENSIONS)]
        found = f" It holds {len(loose)} images but no sub-folders." if loose else ""
        raise DataError(f"{where}: no class sub-folders.{found} {layout}")
    if not paths:
        raise DataError(f"{where}: no images in the class folders ({', '.join(class_names)}). "
                        f"Image files end in {', '.join(IMAGE_EXTENSIONS)}. {layout}")
    digest = hashlib.sha256()
    channels = CHANNELS[source.color_mode]
    for path, relative in zip(paths, index.ids):
        digest.update(relative.encode() + b"\0")  # UTF-8: index_image_folder checked
        scan = scan_file(path, where, max_bytes=MAX_IMAGE_FILE_BYTES)
        problem = unreadable_image(scan.head, scan.tail, scan.size,
                                   lambda: find_undecodable_image([path], channels))
        if problem:
            raise DataError(f"{where}: {path} is not a readable image: {problem}. Replace "
                            "or delete the file (a training run would stop at it).")
        digest.update(bytes.fromhex(scan.sha256))
    height, width = (int(d) for d in source.image_size)
    # An object array shares the path strings between the splits; a fixed-width str array
    # would take 4 bytes a character in every split's copy (tens of MiB at 100k files).
    return RawData(np.array(paths, dtype=object), np.array(index.labels, dtype=np.int64),
                   where=where, class_names=class_names, regression=False,
                   fingerprint=digest.hexdigest(),
                   description=f"images:{source.dir} ({len(paths):,} images, "
                               f"{len(class_names)} classes)",
                   example_shape=(height, width, channels),
                   ids=np.array(index.ids, dtype=object))


def unreadable_image(head: bytes, tail: bytes, size: int,
                     undecodable: Callable[[], Optional[tuple[str, str]]]) -> Optional[str]:
    """Why an image file cannot be read, or ``None``: the rule training and ``predict``
    share. A file whose signature or end marker is wrong (``image_file_problem``) is
    decoded once (``undecodable``: the file and TensorFlow's reason, or ``None``) to be
    sure, since some writers append data after the end marker and TensorFlow reads it."""
    problem = image_file_problem(head, tail, size)
    if problem is None:
        return None
    bad = undecodable()
    return None if bad is None else problem


def decode_image_files(paths: Sequence[str], images: ImagesSource) -> np.ndarray:
    """The images of ``paths`` decoded and resized as training decodes them (``predict``):
    each file read once, a regular file of bounded size, checked by the training rule
    (``unreadable_image``).

    Raises:
        DataError: naming the first file that is no readable image.
    """
    from kerapipe.compiler import backend  # noqa: F401  (the quiet first TensorFlow import)
    import tensorflow as tf

    decoded = []
    for path in paths:
        contents = read_image_file(path)  # a regular file of bounded size, read once
        image, reason = None, ""
        try:
            image = decode_image_bytes(contents, images.image_size, images.color_mode).numpy()
        except tf.errors.OpError as err:
            reason = _first_line(err.message)
        problem = unreadable_image(contents[:32], contents[-TAIL_BYTES:], len(contents),
                                   lambda: None if image is not None else (path, reason))
        if image is None:
            raise DataError(f"{path}: cannot be decoded as an image ({problem or reason}). "
                            "Replace or delete the file.")
        decoded.append(image)
    return np.stack(decoded)


def _first_line(message: str, most: int = 200) -> str:
    text = " ".join((message or "").strip().splitlines()[:1]) or "no reason given"
    return text if len(text) <= most else text[:most - 3] + "..."


def image_file_problem(head: bytes, tail: bytes, size: int) -> Optional[str]:
    """Why a file cannot be a whole PNG, JPEG, GIF or BMP image, or ``None``.

    A check of the signature and the end marker, made while the files are read for the
    fingerprint anyway: it finds empty, truncated and non-image files before training
    without decoding every image. A file it suspects is then decoded once, to be sure
    (some writers append data after the end marker). Damage inside a file is found when
    tf.data decodes it; see ``find_undecodable_image``.
    """
    if size == 0:
        return "the file is empty"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return None if tail.endswith(b"IEND\xaeB`\x82") else "a truncated PNG (no IEND chunk)"
    if head.startswith(b"\xff\xd8\xff"):
        return None if b"\xff\xd9" in tail else "a truncated JPEG (no end-of-image marker)"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return None if b";" in tail[-16:] else "a truncated GIF (no trailer byte)"
    if head.startswith(b"BM") and len(head) >= 6:
        declared = int.from_bytes(head[2:6], "little")
        return None if declared <= size else (f"a truncated BMP ({size} of {declared} "
                                              "bytes)")
    return (f"not a PNG, JPEG, GIF or BMP file (it starts with {head[:8]!r})")


def find_undecodable_image(paths: Sequence[str], channels: int) -> Optional[tuple[str, str]]:
    """The first image file that TensorFlow cannot decode, with its error, or ``None``.

    Run only after tf.data failed on a decode: one eager decode per file.
    """
    from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
    import tensorflow as tf

    for path in paths:
        try:
            tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as err:
            return str(path), err.message.strip().splitlines()[0]
    return None
