"""``kerapipe.safe_io.write_new_file`` and ``link_into_place``: the one way kerapipe writes a
file that must not exist (``init -o``, ``predict -o``, ``export``). A complete file or
none, with the mode the umask asks for, and never over anything: not over a file or link
that is there, nor over one that appears while the file is being written, whether the
file system has hard links or not."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from kerapipe import safe_io
from kerapipe.errors import OutputError
from kerapipe.safe_io import link_into_place, write_new_file

TAKEN = "the name is taken"


@pytest.fixture
def umask(request):
    """The process's umask set to the parameter for the test, then restored."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


# How the finished file reaches its name: a hard link (the rule), renameat2's
# RENAME_NOREPLACE where link(2) says the file system has no hard links, and a reserved
# placeholder renamed over where neither exists.
def _no_hard_links(source, target, **kwargs):
    raise OSError(errno.EPERM, "Operation not permitted", target)


def _by_link(monkeypatch):
    pass


def _by_renameat2(monkeypatch):
    monkeypatch.setattr(os, "link", _no_hard_links)


def _by_reservation(monkeypatch):
    monkeypatch.setattr(os, "link", _no_hard_links)
    monkeypatch.setattr(safe_io, "_rename_noreplace", lambda staged, final: False)


ROUTES = [_by_link, _by_renameat2, _by_reservation]
ROUTE_IDS = ["link", "renameat2", "reservation"]


def _make_rival(path: Path, kind: str) -> None:
    if kind == "file":
        path.write_text("rival\n")
    else:
        os.symlink(path.parent / "nowhere", path)


def _rival_intact(path: Path, kind: str) -> bool:
    if kind == "file":
        return not path.is_symlink() and path.read_text() == "rival\n"
    return path.is_symlink() and not (path.parent / "nowhere").exists()


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("umask", [0o022, 0o077], indirect=True, ids=["022", "077"])
def test_a_new_file_arrives_whole_with_the_mode_the_umask_asks_for(tmp_path, monkeypatch,
                                                                   route, umask):
    route(monkeypatch)
    write_new_file(tmp_path / "a.txt", "text é\n", TAKEN)
    write_new_file(tmp_path / "b.bin", b"\0\1", TAKEN)
    assert (tmp_path / "a.txt").read_bytes() == "text é\n".encode("utf-8")
    assert (tmp_path / "b.bin").read_bytes() == b"\0\1"
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == {
        "a.txt": 0o666 & ~umask, "b.bin": 0o666 & ~umask}  # and no temporary file left


def test_without_hard_links_linux_places_the_file_with_no_placeholder(tmp_path, monkeypatch):
    """renameat2(RENAME_NOREPLACE) is the fallback where the system has it: no moment
    with an empty file at the name."""
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux's")
    monkeypatch.setattr(os, "link", _no_hard_links)
    monkeypatch.setattr(safe_io, "_reserve_then_rename",
                        lambda staged, final: pytest.fail("a placeholder was made"))
    write_new_file(tmp_path / "a.txt", "text\n", TAKEN)
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@pytest.mark.parametrize("kind", ["file", "dangling link"])
def test_an_existing_name_is_refused_and_a_link_is_not_followed(tmp_path, kind):
    out = tmp_path / "out.csv"
    _make_rival(out, kind)
    with pytest.raises(OutputError) as caught:
        write_new_file(out, "new\n", TAKEN)
    assert str(caught.value) == TAKEN
    assert _rival_intact(out, kind)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_link_to_an_existing_file_is_refused_and_its_target_kept(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("mine\n")
    os.symlink(target, tmp_path / "out.txt")
    with pytest.raises(OutputError, match=TAKEN):
        write_new_file(tmp_path / "out.txt", "new\n", TAKEN)
    assert target.read_text() == "mine\n" and (tmp_path / "out.txt").is_symlink()


def test_without_a_message_the_refusal_names_the_path(tmp_path):
    (tmp_path / "x").write_text("")
    with pytest.raises(OutputError) as caught:
        write_new_file(tmp_path / "x", "")
    assert str(caught.value) == (f"{tmp_path / 'x'} already exists; kerapipe never "
                                 "overwrites a file. Choose another name.")


@pytest.mark.parametrize("kind", ["file", "dangling link"])
@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_a_name_taken_between_the_check_and_the_write_is_not_overwritten(
        tmp_path, monkeypatch, route, kind):
    out = tmp_path / "out.csv"
    real_fsync = os.fsync

    def fsync_then_a_rival(fd):  # after the existence check, before the file is placed
        real_fsync(fd)
        if not os.path.lexists(out):
            _make_rival(out, kind)

    route(monkeypatch)
    monkeypatch.setattr(os, "fsync", fsync_then_a_rival)
    with pytest.raises(OutputError) as caught:
        write_new_file(out, "new\n", TAKEN)
    assert str(caught.value) == TAKEN
    assert _rival_intact(out, kind)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temporary file


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_a_write_that_fails_leaves_no_file_at_all(tmp_path, monkeypatch, route):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    route(monkeypatch)
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError) as caught:
        write_new_file(tmp_path / "out.csv", "x" * 100_000, TAKEN)
    assert str(caught.value) == (f"cannot write {tmp_path / 'out.csv'}: No space left on "
                                 "device. Check that the folder exists and is writable.")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_the_name_is_taken_only_once_the_whole_file_is_on_disk(tmp_path, monkeypatch, route):
    """init's fallback used to create the name, then write into it: a write failing there
    (a full disk) left a partial file under the name."""
    out, seen = tmp_path / "out.csv", []
    real_fsync = os.fsync

    def fsync(fd):
        seen.append(os.path.lexists(out))
        real_fsync(fd)

    route(monkeypatch)
    monkeypatch.setattr(os, "fsync", fsync)
    write_new_file(out, "x" * 100_000, TAKEN)
    assert seen and not any(seen)
    assert out.read_text() == "x" * 100_000


def test_a_final_rename_that_fails_removes_its_placeholder(tmp_path, monkeypatch):
    def broken(source, target):
        raise OSError(errno.EIO, "Input/output error")

    _by_reservation(monkeypatch)
    monkeypatch.setattr(os, "rename", broken)
    with pytest.raises(OutputError, match="Input/output error"):
        write_new_file(tmp_path / "out.csv", "new\n", TAKEN)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="cannot write .*No such file or directory"):
        write_new_file(tmp_path / "missing" / "out.csv", "x", TAKEN)


def _staged_folder(tmp_path: Path) -> Path:
    staged = tmp_path / ".staging" / "saved_model"
    (staged / "variables").mkdir(parents=True)
    (staged / "saved_model.pb").write_bytes(b"pb")
    return staged


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_a_staged_folder_moves_into_place(tmp_path, monkeypatch, route):
    staged = _staged_folder(tmp_path)
    route(monkeypatch)
    link_into_place(staged, tmp_path / "sm", TAKEN)
    assert (tmp_path / "sm" / "saved_model.pb").read_bytes() == b"pb"
    assert (tmp_path / "sm" / "variables").is_dir() and not staged.exists()


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_a_staged_file_moves_into_place_leaving_no_staged_name(tmp_path, monkeypatch, route):
    staged = tmp_path / ".staging" / "model.tflite"
    staged.parent.mkdir()
    staged.write_bytes(b"TFL3")
    route(monkeypatch)
    link_into_place(staged, tmp_path / "model.tflite", TAKEN)
    assert (tmp_path / "model.tflite").read_bytes() == b"TFL3"
    assert list(staged.parent.iterdir()) == []


@pytest.mark.parametrize("kind", ["file", "dangling link", "empty folder"])
@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_staged_file_or_folder_never_replaces_a_name_that_appeared(tmp_path, monkeypatch,
                                                                    route, kind, what):
    """link_into_place has no check of its own to race with: the name made just before it
    is the name made during the work."""
    if what == "file":
        staged = tmp_path / ".staging" / "model.tflite"
        staged.parent.mkdir()
        staged.write_bytes(b"TFL3")
    else:
        staged = _staged_folder(tmp_path)
    final = tmp_path / "final"
    if kind == "empty folder":  # rename(2) would replace an empty folder by a folder
        final.mkdir()
    else:
        _make_rival(final, kind)
    route(monkeypatch)
    with pytest.raises(OutputError) as caught:
        link_into_place(staged, final, TAKEN)
    assert str(caught.value) == TAKEN
    if kind == "empty folder":
        assert final.is_dir() and list(final.iterdir()) == []
    else:
        assert _rival_intact(final, kind)
    assert staged.exists()  # left for the caller's clean-up


def _saved_run(path, monkeypatch):
    from kerapipe.saved_run import write_new_file as saved_run_write

    saved_run_write(path, "id,class\n")


def _init(path, monkeypatch):
    from kerapipe.scaffold import write_new_file as init_write

    init_write(str(path), "kerapipe: 1\n")


def _export(path, monkeypatch):
    from kerapipe.export.destination import move_into_place

    staged = path.parent / ".staging" / "model.tflite"
    staged.parent.mkdir()
    staged.write_bytes(b"TFL3")
    real_link = os.link

    def a_rival_first(source, target, **kwargs):  # after move_into_place's own check
        Path(target).write_text("rival\n")
        return real_link(source, target, **kwargs)

    monkeypatch.setattr(os, "link", a_rival_first)
    move_into_place(staged, path)


@pytest.mark.parametrize("write, message", [
    (_saved_run, "{path} already exists; kerapipe never overwrites a file. Choose another "
                 "name."),
    (_init, "{path} already exists; kerapipe init never overwrites a file. Choose another "
            "name, or remove it first."),
    (_export, "{path} already exists (it appeared during the export); kerapipe export never "
              "overwrites. Nothing was written."),
], ids=["predict -o", "init -o", "export"])
def test_each_writer_keeps_its_message_for_a_name_taken_meanwhile(tmp_path, monkeypatch,
                                                                  write, message):
    path = tmp_path / "out"
    real_fsync = os.fsync

    def fsync_then_a_rival(fd):
        real_fsync(fd)
        if not os.path.lexists(path):
            path.write_text("rival\n")

    monkeypatch.setattr(os, "fsync", fsync_then_a_rival)
    with pytest.raises(OutputError) as caught:
        write(path, monkeypatch)
    assert str(caught.value) == message.format(path=path)
    assert path.read_text() == "rival\n"


def test_predict_output_refuses_a_dangling_link_instead_of_replacing_it(tmp_path):
    """It checked with os.path.exists, which a dangling link passes, then renamed over it."""
    from kerapipe.saved_run import write_new_file as saved_run_write

    os.symlink(tmp_path / "nowhere", tmp_path / "out.csv")
    with pytest.raises(OutputError, match="already exists; kerapipe never overwrites"):
        saved_run_write(tmp_path / "out.csv", "id,class\n")
    assert (tmp_path / "out.csv").is_symlink() and not (tmp_path / "nowhere").exists()


def test_export_refuses_a_destination_that_exists_before_the_work(tmp_path):
    from kerapipe.export.destination import check_destination

    os.symlink(tmp_path / "nowhere", tmp_path / "m.onnx")
    with pytest.raises(OutputError) as caught:
        check_destination(tmp_path / "m.onnx")
    assert str(caught.value) == (f"{tmp_path / 'm.onnx'} already exists; kerapipe export "
                                 "never overwrites. Give another path with -o, or remove it "
                                 "first.")
