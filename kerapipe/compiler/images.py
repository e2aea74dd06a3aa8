"""The image-folder source: one sub-folder per class, decoded by tf.data while training.

The first pass lists the files (by the folder policy of ``folders.py``), fingerprints
them and checks each one's signature and end marker from the same read; the images are
decoded later, in tf.data, so the source streams from disk. ``predict`` lists and
decodes its input folder with the same functions.
"""

from __future__ import annotations

import hashlib
import os
from typing import Optional, Sequence

import numpy as np

from kerapipe.compiler.files import open_regular_file, resolve, scan_file, size_text
from kerapipe.compiler.folders import files_under, folder_entries, follows
from kerapipe.compiler.raw import RawData
from kerapipe.errors import DataError
from kerapipe.spec.model import ImagesSource

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
MAX_IMAGE_FILE_BYTES = 1 << 28  # 256 MiB: tf.data reads each image file whole


def image_files(folder: str | os.PathLike, where: Optional[str] = None,
                skip_refused: bool = False) -> list[str]:
    """Every image file under ``folder`` (sub-folders too, in sorted order), by the folder
    policy (``kerapipe.compiler.folders``) with ``folder`` as the data folder.

    Args:
        folder: the folder to walk.
        where: how messages name it. Defaults to ``folder``.
        skip_refused: pass over what the policy refuses (``predict``). Defaults to
            raising.

    Raises:
        DataError: for a link out of the folder, a cycle, or an image that is not a
            regular file (unless ``skip_refused``).
    """
    folder = os.fspath(folder)
    return files_under(folder, os.path.realpath(folder), where or folder, IMAGE_EXTENSIONS,
                       skip_refused)


def decode_image(path, image_size: Sequence[int], color_mode: str):
    """Read one image file for tf.data: decode, resize; float32 0..255, shape (h, w, c)."""
    import tensorflow as tf

    return decode_image_bytes(tf.io.read_file(path), image_size, color_mode)


def decode_image_bytes(contents, image_size: Sequence[int], color_mode: str):
    """Decode and resize the bytes of one image file; float32 0..255, shape (h, w, c)."""
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
    inside = os.path.realpath(root)
    entries = folder_entries(root, where)
    class_names = []
    for entry in entries:
        if not entry.name.startswith(".") and follows(entry, inside, inside, where,
                                                      IMAGE_EXTENSIONS):
            class_names.append(entry.name)
    layout = ("Put the images in one sub-folder per class, e.g. "
              f"{where}/cat/001.jpg and {where}/dog/001.jpg.")
    if not class_names:
        loose = [e.name for e in entries if e.name.lower().endswith(IMAGE_EXTENSIONS)]
        found = f" It holds {len(loose)} images but no sub-folders." if loose else ""
        raise DataError(f"{where}: no class sub-folders.{found} {layout}")
    paths: list[str] = []
    labels: list[int] = []
    for index, name in enumerate(class_names):
        found = files_under(os.path.join(root, name), inside, where, IMAGE_EXTENSIONS)
        paths.extend(found)
        labels.extend([index] * len(found))
    if not paths:
        raise DataError(f"{where}: no images in the class folders ({', '.join(class_names)}). "
                        f"Image files end in {', '.join(IMAGE_EXTENSIONS)}. {layout}")
    digest = hashlib.sha256()
    for path in paths:
        try:
            relative = os.path.relpath(path, root).replace(os.sep, "/").encode()
        except UnicodeEncodeError as err:
            raise DataError(f"{where}: the file name {path!r} is not valid UTF-8; rename "
                            "the file.") from err
        digest.update(relative + b"\0")
        scan = scan_file(path, where, max_bytes=MAX_IMAGE_FILE_BYTES)
        problem = image_file_problem(scan.head, scan.tail, scan.size)
        if problem and find_undecodable_image([path], CHANNELS[source.color_mode]) is None:
            problem = None  # e.g. data appended after the end marker: TensorFlow reads it
        if problem:
            raise DataError(f"{where}: {path} is not a readable image: {problem}. Replace "
                            "or delete the file (a training run would stop at it).")
        digest.update(bytes.fromhex(scan.sha256))
    height, width = (int(d) for d in source.image_size)
    # An object array shares the path strings between the splits; a fixed-width str array
    # would take 4 bytes a character in every split's copy (tens of MiB at 100k files).
    return RawData(np.array(paths, dtype=object), np.array(labels, dtype=np.int64),
                   where=where, class_names=class_names, regression=False,
                   fingerprint=digest.hexdigest(),
                   description=f"images:{source.dir} ({len(paths):,} images, "
                               f"{len(class_names)} classes)", is_images=True,
                   example_shape=(height, width, CHANNELS[source.color_mode]))


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
    import tensorflow as tf

    for path in paths:
        try:
            tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as err:
            return str(path), err.message.strip().splitlines()[0]
    return None
