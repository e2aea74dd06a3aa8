"""Atomic file writes: a reader (or a crash) never sees a half-written file."""

from __future__ import annotations

import errno
import os
import tempfile

from kerapipe.errors import OutputError


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file, fsync and rename.

    Raises:
        OutputError: the folder cannot be written.
    """
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename.

    Raises:
        OutputError: the folder cannot be written.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}. Check that the folder "
                          "exists and is writable.") from err


def rewrite_when_full(path: str | os.PathLike, text: str) -> None:
    """``write_text_atomic``; on a full disk, overwrite the existing file in place instead.

    An atomic write needs room for a second copy; a full disk has none, yet the blocks
    the file already holds can take the new text when it fits in them. Used for the
    small records that say how a run ended (run.json): a torn record after a crash in
    the middle of that fallback is better than one that says "running" forever.

    Raises:
        OutputError: neither write worked.
    """
    data = text.encode("utf-8")
    try:
        write_bytes_atomic(path, data)
        return
    except OutputError as err:
        full = getattr(err.__cause__, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
        try:
            allocated = os.stat(path).st_blocks * 512 if full else 0
        except OSError:
            allocated = 0
        if len(data) > allocated:
            raise
        original = err
    try:
        with open(path, "r+b") as handle:
            handle.write(data)
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        raise OutputError(f"{original} Rewriting it in place failed too: "
                          f"{err.strerror or err}.") from err
