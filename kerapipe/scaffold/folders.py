"""A folder of one sub-folder per class, listed by the image and text sources' own indexer
(links only within the folder, no cycles, regular files only): images, whose size and
colour come from their headers (PNG, JPEG, GIF, BMP: parsed here, without TensorFlow), or
``.txt`` files, a sample of which sets TextVectorization's length."""

from __future__ import annotations

import os
from collections import Counter
from typing import Optional, Sequence

from kerapipe.errors import DataError
from kerapipe.scaffold.facts import Inspection, LabelGuess, open_data_file, shown

MAX_SAMPLE_FILES = 200  # images (headers only) and texts read from a folder
IMAGE_HEAD_BYTES = 1 << 18  # bytes of an image read for its size (a JPEG's EXIF comes first)
MAX_GUESSED_SIDE = 128  # a larger image size is scaled down to this longer side


def inspect_folder(path: str) -> Inspection:
    from kerapipe.compiler.folders import check_class_folders
    from kerapipe.compiler.sources.image_folder import (IMAGE_EXTENSIONS, IMAGES,
                                                        index_image_folder)
    from kerapipe.compiler.sources.text_folder import TEXTS, index_text_folder

    images = index_image_folder(path, path, classes_only=True)
    texts = index_text_folder(path, path, classes_only=True)
    if not images.class_names:
        check_class_folders(images, path, path, IMAGES)  # raises, explaining the layout
    if not images.paths and not texts.paths:
        folders = ", ".join(shown(n) for n in images.class_names[:10])
        raise DataError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) and no .txt files "
                        f"in the class folders ({folders}). kerapipe init reads a folder of one "
                        "sub-folder per class, each holding images or .txt files.")
    if len(images.paths) >= len(texts.paths):
        check_class_folders(images, path, path, IMAGES)
        _check_two_classes(path, images, IMAGES)
        return _inspect_images(path, images)
    check_class_folders(texts, path, path, TEXTS, every_class_filled=True)
    _check_two_classes(path, texts, TEXTS)
    return _inspect_texts(path, texts)


def _check_two_classes(path: str, index, kind) -> None:
    """Refuse a folder where fewer than two class folders hold files: a classifier of
    one class has nothing to tell apart (and learns to answer it always)."""
    filled = [n for n, c in zip(index.class_names, index.counts) if c]
    if len(filled) >= 2:
        return
    first, second = kind.samples
    layout = (f"Put the {kind.examples} of each class in a sub-folder of its own, e.g. "
              f"{path}/{first} and {path}/{second}.")
    if len(index.class_names) < 2:
        inner = _sub_folders(os.path.join(path, filled[0]))
        deeper = (f" The folder {shown(filled[0])} holds sub-folders itself "
                  f"({', '.join(shown(n) for n in inner[:5])}{', ...' if len(inner) > 5 else ''})"
                  f": if those are the classes, run kerapipe init "
                  f"{os.path.join(path, filled[0])}." if len(inner) > 1 else "")
        raise DataError(f"{path}: one class folder only ('{shown(filled[0])}'); a classifier "
                        f"needs at least two class folders.{deeper} {layout}")
    empty = [n for n in index.class_names if n not in filled]
    others = (", ".join(shown(n) for n in empty[:5]) + (", ..." if len(empty) > 5 else "")
              + (" hold none" if len(empty) > 1 else " holds none"))
    raise DataError(f"{path}: only the class folder '{shown(filled[0])}' holds "
                    f"{kind.files} ({others}); a classifier needs at least two class folders "
                    f"with {kind.files}. {layout}")


def _folder_label(index) -> LabelGuess:
    return LabelGuess("folders", "classes", len(index.class_names), tuple(index.class_names),
                      tuple(index.counts), reason="one per sub-folder, in sorted order")


def _sub_folders(path: str) -> list[str]:
    """The names of the folders in ``path`` that would be classes (sorted; none when it
    cannot be listed)."""
    try:
        with os.scandir(path) as entries:
            return sorted(e.name for e in entries
                          if not e.name.startswith(".") and e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def _sample(paths: list[str]) -> list[str]:
    step = max(1, len(paths) // MAX_SAMPLE_FILES)
    return paths[::step][:MAX_SAMPLE_FILES]


def _inspect_images(path: str, index) -> Inspection:
    sizes: Counter = Counter()
    gray = True
    unread = 0
    for image in _sample(index.paths):
        found = image_header(image)
        if found is None:
            unread += 1
            continue
        height, width, channels = found
        sizes[(height, width)] += 1
        gray = gray and channels == 1
    notes = []
    if sizes:
        (height, width), seen = sizes.most_common(1)[0]
        longest = max(height, width)
        if longest > MAX_GUESSED_SIDE:
            scale = MAX_GUESSED_SIDE / longest
            height, width = max(1, round(height * scale)), max(1, round(width * scale))
        listed = ", ".join(f"{h}x{w} ({n})" for (h, w), n in sizes.most_common(3))
        notes.append(f"image sizes read (height x width): {listed}"
                     + (", ..." if len(sizes) > 3 else ""))
    else:
        height, width, gray = MAX_GUESSED_SIDE, MAX_GUESSED_SIDE, False
        notes.append("no image's size could be read from its header: a fixed size")
    if unread and sizes:
        notes.append(f"{unread} image(s) of the sample had a header init could not read")
    empty = [n for n, c in zip(index.class_names, index.counts) if not c]
    if empty:
        notes.append(f"class folder(s) without images: {', '.join(shown(n) for n in empty)}")
    return Inspection("images", os.path.abspath(path), len(index.paths), True,
                      _folder_label(index), image_size=(height, width),
                      color_mode="grayscale" if gray else "rgb", notes=tuple(notes))


def image_header(path: str) -> Optional[tuple[int, int, int]]:
    """``(height, width, channels)`` of a PNG, JPEG, GIF or BMP file from its first
    bytes (``None`` when unreadable); channels 1 for grayscale, else 3."""
    try:
        with open(open_data_file(path), "rb") as handle:
            head = handle.read(IMAGE_HEAD_BYTES)
    except (OSError, DataError):
        return None
    return parse_image_header(head)


def parse_image_header(head: bytes) -> Optional[tuple[int, int, int]]:
    """``(height, width, channels)`` from an image file's first bytes, or ``None``."""
    def be(at: int, size: int) -> int:
        return int.from_bytes(head[at:at + size], "big")

    def le(at: int, size: int) -> int:
        return int.from_bytes(head[at:at + size], "little", signed=True)

    found = None
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 26 and head[12:16] == b"IHDR":
        found = (be(20, 4), be(16, 4), 1 if head[25] in (0, 4) else 3)
    elif head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        found = (le(8, 2) & 0xFFFF, le(6, 2) & 0xFFFF, 3)
    elif head.startswith(b"BM") and len(head) >= 26:
        found = (abs(le(22, 4)), abs(le(18, 4)), 3)
    elif head.startswith(b"\xff\xd8"):
        at = 2
        while at + 9 < len(head):
            if head[at] != 0xFF:
                return None
            marker = head[at + 1]
            if marker == 0xFF:
                at += 1
                continue
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                at += 2
                continue
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                          0xCE, 0xCF):
                found = (be(at + 5, 2), be(at + 7, 2), 1 if head[at + 9] == 1 else 3)
                break
            at += 2 + be(at + 2, 2)
    if found is None or not (0 < found[0] <= 1 << 16 and 0 < found[1] <= 1 << 16):
        return None
    return found


def text_settings(texts: Sequence[str], examples: int, where: str) -> tuple[int, int]:
    """TextVectorization's ``output_sequence_length`` (most texts' words, in 8s) and
    ``max_tokens`` (a vocabulary that grows with the data).

    Raises:
        DataError: every text read is empty (``where`` names them): no vocabulary.
    """
    if texts and not any(t.split() for t in texts):
        raise DataError(f"{where}: every one of the {len(texts):,} texts read is empty (no "
                        "words), so TextVectorization would learn no vocabulary. Check that "
                        "the texts were saved.")
    lengths = sorted(len(t.split()) for t in texts) or [1]
    longest = lengths[min(len(lengths) - 1, int(len(lengths) * 0.9))]
    length = min(512, max(16, -(-longest // 8) * 8))
    return length, (2000 if examples < 5000 else 20000)


def _inspect_texts(path: str, index) -> Inspection:
    from kerapipe.compiler.sources.text_folder import read_text_file

    texts = [read_text_file(p, path)[0] for p in _sample(index.paths)]
    length, tokens = text_settings(texts, len(index.paths), path)
    return Inspection("text", os.path.abspath(path), len(index.paths), True,
                      _folder_label(index), sequence_length=length, max_tokens=tokens)
