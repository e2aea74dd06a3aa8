"""A pipeline path that is not a regular file, or an API argument of the wrong kind, is an
issue (exit 2), never a hang or a raw Python error (issue 10, second audit)."""

from __future__ import annotations

import os
import signal

import pytest

from kerapipe.errors import SpecError
from kerapipe.spec.validate import validate_file


@pytest.fixture
def deadline():
    """Fail instead of hanging: a blocked read of a FIFO never returns."""
    def expire(signum, frame):
        raise TimeoutError("the read blocked")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero-link", "folder"])
def test_a_pipeline_path_that_is_not_a_regular_file_is_unreadable(kind, tmp_path, deadline):
    path = tmp_path / "p.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero-link":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    result = validate_file(path)
    assert [i.code for i in result.issues] == ["unreadable-file"]
    assert "not a regular file" in result.issues[0].message


def test_validate_of_a_fifo_exits_2_from_the_command_line(tmp_path, call_main, deadline):
    os.mkfifo(tmp_path / "p.yaml")
    code, out, err = call_main("validate", tmp_path / "p.yaml")
    assert code == 2 and "error[unreadable-file]" in out


def test_a_file_over_the_size_bound_is_too_large_even_when_cut_inside_a_character(tmp_path):
    from kerapipe.spec.yaml_loader import MAX_FILE_BYTES

    path = tmp_path / "p.yaml"
    path.write_text("kerapipe: 1\n# " + "é" * MAX_FILE_BYTES, encoding="utf-8")
    assert [i.code for i in validate_file(path).issues] == ["too-large"]


@pytest.mark.parametrize("value", [[1, 2], None, 5, b"p.yaml", "/tmp/a\0.yaml"],
                         ids=["list", "none", "int", "bytes", "nul-in-path"])
def test_load_spec_of_a_value_of_the_wrong_kind_is_a_spec_error(value):
    from kerapipe import load_spec

    with pytest.raises(SpecError):
        load_spec(value)
