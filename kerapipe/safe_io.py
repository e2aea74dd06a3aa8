"""File primitives every side shares: atomic writes (a reader, or a crash, never sees a
half-written file, and the file gets the mode the umask asks for), writing a new file or
moving a staged one into place without ever replacing what is there (``write_new_file``,
``link_into_place``), and opening a file that must be a regular one without blocking."""

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


def write_new_file(path: str | os.PathLike, data: bytes | str,
                   taken: str | None = None) -> None:
    """Write ``data`` to ``path``, which must not exist: a complete file or none, and
    never over anything, even a file (or link) made there while it was being written.

    The data goes to a temporary file beside ``path`` (mode ``0o666 & ~umask``, fsynced),
    which ``link_into_place`` then puts at ``path``. A symbolic link at ``path``, even
    a dangling one, is a taken name: it is never followed.

    Args:
        path: the file to create.
        data: its content; ``str`` is written as UTF-8.
        taken: the message when ``path`` exists. Defaults to a generic one.

    Raises:
        OutputError: ``path`` exists (``taken``), or its folder cannot be written.
    """
    import tempfile  # not at the top: see write_bytes_atomic

    path = os.fspath(path)
    if taken is None:
        taken = (f"{path} already exists; kerapipe never overwrites a file. Choose another "
                 "name.")
    if isinstance(data, str):
        data = data.encode("utf-8")
    if os.path.lexists(path):  # the early, common refusal; link_into_place is the real one
        raise OutputError(taken)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        link_into_place(tmp, path, taken)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}. Check that the folder "
                          "exists and is writable.") from err
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)


# link(2) errors of a file system that has no hard links (FAT, exFAT, some network and
# FUSE file systems): the move falls back to a rename that refuses an existing name.
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS,
                            errno.EMLINK})


def link_into_place(staged: str | os.PathLike, final: str | os.PathLike, taken: str) -> None:
    """Move ``staged`` (a finished file or folder, in ``final``'s folder) to ``final``,
    which must not exist; it is never replaced, even when it appears meanwhile.

    A file moves by a hard link (``link`` refuses a taken name, a dangling symbolic link
    included), then the staged name is removed. Where the file system has no hard links,
    and for a folder: ``renameat2(RENAME_NOREPLACE)`` (Linux), else the name is first
    reserved by an exclusive create (an empty file or folder, which ``rename`` may
    replace) and the staged one renamed over it. Only in that last case can a reader,
    or a crash, see an empty file at ``final`` for a moment.

    Args:
        staged: the finished file or folder, on ``final``'s file system.
        final: where it goes.
        taken: the message when ``final`` exists.

    Raises:
        OutputError: ``final`` exists (``taken``), or the move failed; ``staged`` is
            then left where it was for the caller to remove.
    """
    staged, final = os.fspath(staged), os.fspath(final)
    try:
        if stat.S_ISREG(os.lstat(staged).st_mode):
            try:
                os.link(staged, final)
            except OSError as err:
                if err.errno not in _NO_HARD_LINKS:
                    raise
            else:
                _remove_quietly(staged)
                return
        if not _rename_noreplace(staged, final):
            _reserve_then_rename(staged, final)
    except FileExistsError as err:
        raise OutputError(taken) from err
    except OSError as err:
        raise OutputError(f"cannot write {final}: {err.strerror or err}.") from err


def _rename_noreplace(staged: str, final: str) -> bool:
    """``renameat2(..., RENAME_NOREPLACE)``: True when it moved ``staged``, False where
    the system or the file system does not have it.

    Raises:
        FileExistsError: ``final`` exists.
        OSError: the rename failed otherwise.
    """
    import sys

    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # only on this rare path: hard links are the rule

    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)  # glibc 2.28
    if renameat2 is None:
        return False
    at_fdcwd, rename_noreplace = -100, 1
    if renameat2(at_fdcwd, os.fsencode(staged), at_fdcwd, os.fsencode(final),
                 rename_noreplace) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), final)


def _reserve_then_rename(staged: str, final: str) -> None:
    """Claim ``final`` by an exclusive create (``O_EXCL`` or ``mkdir``: both refuse any
    existing name, a link included, and follow none), then rename ``staged`` over that
    empty placeholder; a failed rename removes the placeholder again."""
    if os.path.isdir(staged):
        os.mkdir(final, 0o700)
    else:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        os.close(os.open(final, flags | getattr(os, "O_CLOEXEC", 0), 0o600))
    placeholder = os.lstat(final)
    try:
        os.rename(staged, final)
    except BaseException:
        try:
            now = os.lstat(final)
            if (now.st_dev, now.st_ino) == (placeholder.st_dev, placeholder.st_ino):
                (os.rmdir if stat.S_ISDIR(now.st_mode) else os.unlink)(final)
        except OSError:
            pass
        raise


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:  # the caller's clean-up removes it with its staging folder
        pass


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


def refuse_a_parent_through_a_file(path: str) -> None:
    """Refuse an ``-o`` path whose missing folders cannot be made: its closest existing
    parent is a file (``-o iris.yaml/p.yaml``), not a folder. Creates nothing; needs no
    more than the path, so a command can refuse before its slow work (init, predict,
    export).

    Raises:
        OutputError: a folder of the path is a file (or a broken link).
    """
    folder = os.path.dirname(path)
    while folder and not os.path.lexists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    if folder and os.path.lexists(folder) and not os.path.isdir(folder):
        kind = "a file, not a folder" if os.path.isfile(folder) else "not a folder"
        raise OutputError(f"cannot write {path}: {folder} is {kind}. Give -o a path whose "
                          "folders are folders (missing ones are created).")


def make_parent_folders(path: str) -> None:
    """Create the missing folders of an ``-o`` path (``init``, ``predict``; ``export`` makes
    its own beside its staging folder).

    Raises:
        OutputError: a folder of the path is a file, or a folder cannot be created.
    """
    refuse_a_parent_through_a_file(path)
    folder = os.path.dirname(path)
    if folder:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create the folder {folder} for {path}: "
                              f"{err.strerror or err}. Give -o a path that can be "
                              "written.") from err
