"""The image-folder source (``ImageFolderSource``): one sub-folder per class, decoded by
tf.data while training.

The first pass lists the files (``index_image_folder``, by ``folders.index_class_folder``:
the one lister of class folders, for training and ``predict``), fingerprints them and
checks each one's signature and end marker from the same read; the images are decoded
later, in tf.data, so the source streams from disk. ``predict`` lists its input folder
with the same indexer and checks each image by the same rule before decoding it. An
example's id is its path relative to the folder (``cat/001.jpg``).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from kerapipe.compiler.files import TAIL_BYTES, resolve, scan_file
from kerapipe.compiler.folders import (ClassFolderIndex, ClassFolderKind, ClassFolderSource,
                                       check_class_folders, check_input_folder,
                                       index_class_folder, read_whole_file)
from kerapipe.compiler.sources.raw import RawData
from kerapipe.errors import DataError
from kerapipe.spec.known_datasets import IMAGE_CHANNELS as CHANNELS
from kerapipe.spec.model import ImagesSource

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
IMAGES = ClassFolderKind(IMAGE_EXTENSIONS, files="images",
                         listed=f"images ({', '.join(IMAGE_EXTENSIONS)})", kind="Image",
                         examples="images", samples=("cat/001.jpg", "dog/001.jpg"))
MAX_IMAGE_FILE_BYTES = 1 << 28  # 256 MiB: tf.data reads each image file whole
# What TensorFlow's image decoders say (decode_image/png/jpeg/gif/bmp); other
# InvalidArgumentErrors (shapes, labels) are not worth a scan of every image file.
_DECODE_MESSAGE = re.compile(r"image|PNG|JPEG|GIF|BMP|Input is empty|decode", re.I)


class ImageFolderSource(ClassFolderSource):
    """``source: {images: {dir: pics}}``: a folder with one sub-folder of images per class."""

    kind = "images"
    examples_are = "images"

    def load(self) -> RawData:
        return load_images(self.options, self.base_dir)

    def read_example(self, path):
        """One image, decoded and resized by tf.data."""
        return decode_image(path, self.options.image_size, self.options.color_mode)

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
        check_input_folder(index, folder, IMAGES)
        return decode_image_files(index.paths, self.options), index.ids


def index_image_folder(folder: str | os.PathLike, where: Optional[str] = None,
                       skip_refused: bool = False,
                       classes_only: bool = False) -> ClassFolderIndex:
    """The image files under ``folder``, by the one class-folder lister
    (``folders.index_class_folder``), for training and ``predict``.

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
    return index_class_folder(folder, IMAGE_EXTENSIONS, where, skip_refused, classes_only,
                              utf8_paths=True)


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
    return read_whole_file(path, path, MAX_IMAGE_FILE_BYTES, "such file")


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
    check_class_folders(index, root, where, IMAGES)
    class_names, paths = index.class_names, index.paths
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
