"""File primitives every side shares: atomic writes (a reader, or a crash, never sees a
half-written file, and the file gets the mode the umask asks for) and opening a file that
must be a regular one without blocking."""

from __future__ import annotations

import errno
import os
import stat

from kerapipe.errors import OutputError


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file, fsync and rename.

    Raises:
        OutputError: the folder cannot be written.
    """
    write_bytes_atomic(path, text.encode("utf-8"))


def current_umask() -> int:
    """The process's umask, read without changing it where the system tells it.

    ``os.umask`` can only be read by setting it, and the umask is process-wide: for the
    moment of the round trip another thread would create files with the wrong mode. Linux
    reports it in ``/proc/self/status``; elsewhere the round trip is the only way.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename.

    The file gets mode ``0o666 & ~umask``, as ``open`` would give it (``mkstemp`` makes
    its temporary file 0600 whatever the umask).

    Raises:
        OutputError: the folder cannot be written.
    """
    # Imported here, not at the top: `kerapipe validate` reads files and never writes,
    # and tempfile (with random, shutil, bz2, lzma) is ~10 ms of its start.
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o666 & ~current_umask())
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


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    """What a non-regular file is, for a message: ``a FIFO (named pipe)``, ``a folder``."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


class NotRegularFile(OSError):
    """A path that names a folder, FIFO, device or socket instead of a regular file.

    Args:
        path: the path.
        mode: its ``st_mode``; ``kind`` says what it is.
    """

    def __init__(self, path: str, mode: int) -> None:
        self.kind = file_kind(mode)
        super().__init__(0, f"it is {self.kind}, not a regular file", path)


def open_regular(path: str | os.PathLike) -> int:
    """A read-only descriptor of a regular file, opened without blocking.

    ``stat`` first, so that a device is never opened; then ``O_NONBLOCK`` (a FIFO put in
    its place meanwhile cannot block the open) and ``fstat`` of what was opened. A
    symbolic link is followed.

    Raises:
        NotRegularFile: it is a folder, FIFO, device or socket.
        OSError: it is missing or cannot be opened.
        ValueError: the path holds a NUL byte.
    """
    path = os.fspath(path)
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFile(path, mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):  # swapped for a FIFO between the stat and the open
        os.close(fd)
        raise NotRegularFile(path, mode)
    return fd
