"""Reading data files without trusting them: regular files only, opened without blocking.

Every source (and ``predict``) opens its files here, so a FIFO, a device or a folder put
where a data file should be is a ``DataError`` naming it, never a hang or an endless
read. Also here: one pass over a file's bytes (the fingerprint, and what the image and
CSV checks need from it), and the machine's memory, which bounds what one file may cost.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from typing import NamedTuple, Optional

from kerapipe.errors import DataError
from kerapipe.safe_io import NotRegularFile, file_kind, open_regular
from kerapipe.spec.data_paths import resolve_data_path

# A path from the spec, relative to the pipeline file's folder: the one rule, which
# `validate` follows to warn of missing data (spec/data_paths.py).
resolve = resolve_data_path


def missing_file(key: str, path: str, resolved: str) -> DataError:
    """The error for a ``data.source.<key>`` file that does not exist."""
    return DataError(f"{path}: no such file (looked for {resolved}). data.source.{key} is "
                     "relative to the pipeline file's folder; fix the path.")


def not_regular(where: str, path: str, kind: str) -> DataError:
    """The error for a path that is ``kind`` (``kerapipe.safe_io.file_kind``): a FIFO, a device,
    a socket or a folder."""
    named = path if where == path else f"{where}: {path}"  # the file named once
    return DataError(f"{named} is {kind}, not a regular file. kerapipe reads "
                     "data only from regular files (a FIFO or a device can block or never "
                     "end); replace it with a file, or remove it.")


def check_regular_file(path: str, where: str, key: str = "") -> None:
    """Refuse a path that is missing or is not a regular file (a FIFO, a device, a folder).

    Args:
        path: the path to check; a symbolic link is followed.
        where: how messages name the file.
        key: the spec key that holds the path (``npz.path``), for the missing-file message.
            Defaults to none.

    Raises:
        DataError: naming the path and what it is.
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError) as err:
        if key:
            raise missing_file(key, where, path) from err
        raise DataError(f"{where}: no such file (looked for {path}).") from err
    except OSError as err:  # a link loop, no permission, a name too long
        raise DataError(f"{where}: cannot read {path} ({err.strerror or err}).") from err
    if not stat.S_ISREG(mode):
        raise not_regular(where, path, file_kind(mode))


def open_regular_file(path: str | os.PathLike, where: str,
                      max_bytes: Optional[int] = None) -> int:
    """A read-only descriptor of a regular file, opened without blocking.

    ``kerapipe.safe_io.open_regular`` (``stat``, an ``O_NONBLOCK`` open, ``fstat``), with the
    data side's messages.

    Args:
        path: the file; a symbolic link is followed.
        where: how messages name the file.
        max_bytes: the largest size accepted. Defaults to any size.

    Raises:
        DataError: when it is missing, not a regular file, unreadable or too large.
    """
    path = os.fspath(path)
    try:
        fd = open_regular(path)
    except NotRegularFile as err:
        raise not_regular(where, path, err.kind) from err
    except (FileNotFoundError, NotADirectoryError) as err:
        raise DataError(f"{where}: no such file (looked for {path}).") from err
    except OSError as err:  # a link loop, no permission, a name too long
        raise DataError(f"{where}: cannot read {path} ({err.strerror or err}).") from err
    size = os.fstat(fd).st_size
    if max_bytes is not None and size > max_bytes:
        os.close(fd)
        raise DataError(f"{where}: {path} holds {size_text(size)}, more than the "
                        f"{size_text(max_bytes)} kerapipe reads from one such file. Use a "
                        "smaller file.")
    return fd


def size_text(count: int) -> str:
    """Bytes as a message shows them: ``1.5 GiB``, ``60.0 MiB``."""
    if count >= 1 << 30:
        return f"{count / (1 << 30):,.1f} GiB"
    return f"{count / (1 << 20):,.1f} MiB"


def physical_memory() -> int:
    """Bytes of physical memory (8 GiB when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


# --- one pass over a file's bytes -----------------------------------------------------

TAIL_BYTES = 4096  # bytes kept from a file's end, where image formats put their end marker
_LONE_CR = re.compile(rb"\r(?!\n)")  # a line end that tf.data's TextLineDataset does not see


class FileScan(NamedTuple):
    """What one pass over a file's bytes found (``scan_file``)."""

    sha256: str
    head: bytes  # the first 32 bytes
    tail: bytes  # the last TAIL_BYTES bytes
    size: int
    lone_cr: bool  # a \r not followed by \n (only when asked for)


def scan_file(path: str, where: str, find_lone_cr: bool = False,
              max_bytes: Optional[int] = None) -> FileScan:
    """Hash a regular file in one pass, keeping its head and tail (image checks) and, if
    asked, whether it has a lone carriage return (CSV checks), so no check reads it again.

    Raises:
        DataError: when it is not a regular file, cannot be read or exceeds ``max_bytes``.
    """
    digest = hashlib.sha256()
    head, tail, size, lone_cr, pending = b"", b"", 0, False, b""
    try:
        with os.fdopen(open_regular_file(path, where, max_bytes), "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
                head = head or chunk[:32]
                tail = (tail + chunk[-TAIL_BYTES:])[-TAIL_BYTES:]
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:  # it grew while read
                    raise DataError(f"{where}: {path} holds more than the "
                                    f"{size_text(max_bytes)} kerapipe reads from one such "
                                    "file.")
                if find_lone_cr and not lone_cr:
                    block = pending + chunk
                    # a \r at the very end may be followed by \n in the next chunk: decide then
                    searched, pending = ((block[:-1], block[-1:]) if block.endswith(b"\r")
                                         else (block, b""))
                    lone_cr = bool(_LONE_CR.search(searched))
    except OSError as err:
        raise DataError(f"{where}: cannot read {path} ({err.strerror or err}).") from err
    return FileScan(digest.hexdigest(), head, tail, size, lone_cr or pending == b"\r")
