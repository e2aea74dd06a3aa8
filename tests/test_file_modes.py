"""Issue 11, fix 7: every file kerapipe writes gets the mode the umask asks for
(``0o666 & ~umask``), as ``model.keras`` always did: the text artifacts were 0600
(``tempfile.mkstemp``'s mode) whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kerapipe.safe_io import (current_umask, rewrite_when_full, write_bytes_atomic,
                              write_text_atomic)


@pytest.fixture
def umask(request):
    """The process's umask set to the parameter for the test, then restored."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077], indirect=True, ids=["022", "077"])
def test_atomic_writes_give_the_mode_the_umask_asks_for(tmp_path, umask):
    write_text_atomic(tmp_path / "a.txt", "text\n")
    write_bytes_atomic(tmp_path / "b.bin", b"\0")
    rewrite_when_full(tmp_path / "c.json", "{}\n")
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == {
        name: 0o666 & ~umask for name in ("a.txt", "b.bin", "c.json")}


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002], indirect=True)
def test_the_umask_is_read_without_changing_it(umask):
    assert current_umask() == umask
    assert os.umask(umask) == umask  # still what it was


@pytest.mark.parametrize("umask", [0o022, 0o077], indirect=True, ids=["022", "077"])
def test_every_file_of_a_run_and_of_predict_and_schema_honours_the_umask(tmp_path, umask,
                                                                        call_main,
                                                                        npz_workspace):
    npz_workspace(tmp_path, name="modes")
    code, out_text, err = call_main("run", tmp_path / "p.yaml", "--output", tmp_path / "runs")
    assert code == 0, out_text + err
    (run_dir,) = (tmp_path / "runs").iterdir()
    code, out_text, err = call_main("predict", run_dir, tmp_path / "data.npz", "-o",
                                    tmp_path / "predicted.csv")
    assert code == 0, out_text + err
    code, out_text, err = call_main("schema", "-o", tmp_path / "schema.json")
    assert code == 0, out_text + err
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    names = {str(p.relative_to(run_dir)) for p in files}
    assert {"spec.yaml", "run.json", "history.csv", "metrics.json", "predictions.csv",
            "model.keras", "checkpoints/LATEST"} <= names, names
    files += [tmp_path / "predicted.csv", tmp_path / "schema.json"]
    wrong = {str(p): oct(mode(p)) for p in files if mode(p) != 0o666 & ~umask}
    assert not wrong, f"expected {oct(0o666 & ~umask)}"
