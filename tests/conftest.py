"""Fixtures shared by the test modules: calling the CLI in this process, the digest of a
folder, the tiny npz workspace most run tests start from, and loading a run's model.keras
with plain Keras in a child process."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

# 30 examples of 4 float features, 3 classes: trains in well under a second.
TINY_NPZ_PIPELINE = textwrap.dedent("""\
    kerapipe: 1
    name: {name}
    seed: {seed}
    data:
      source: {{npz: data.npz}}
      split: {{validation: 0.2, test: 0.2}}
      batch_size: 8
    model:
      layers: [{{Dense: {{units: 3}}}}]
    train: {{epochs: {epochs}}}
    """)


def _exit_code_of_main(*args) -> int:
    from kerapipe.cli import main

    previous = signal.getsignal(signal.SIGTERM)
    try:
        main([str(a) for a in args])
        return 0  # a command that returns normally exits 0
    except SystemExit as exit_:
        return exit_.code
    finally:
        signal.signal(signal.SIGTERM, previous)  # main installs its own handler


@pytest.fixture(scope="session")
def kerapipe_main() -> Callable[..., int]:
    """``kerapipe.cli.main(argv)`` in this process -> its exit code, output not captured:
    for module-scoped fixtures that make a run several tests share (``call_main``
    captures, per test). Restores SIGTERM's handler, which main installs."""
    return _exit_code_of_main


@pytest.fixture
def call_main(capsys):
    """``kerapipe.cli.main(argv)`` in this process (a child process would spend seconds
    importing TensorFlow first), with the real exit-code mapping.

    Returns (exit code, stdout, stderr); restores SIGTERM's handler, which main installs.
    """
    def call(*args) -> tuple[int, str, str]:
        code = _exit_code_of_main(*args)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


def _tree_digest(folder: Path) -> dict[str, str]:
    result = {}
    for path in sorted(Path(folder).rglob("*")):
        mode = path.lstat().st_mode
        name = str(path.relative_to(folder))
        if stat.S_ISREG(mode):
            result[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif stat.S_ISDIR(mode):
            result[name] = "<dir>"
        elif stat.S_ISLNK(mode):
            result[name] = "-> " + os.readlink(path)
        else:  # a FIFO, a socket, a device: never opened
            result[name] = oct(stat.S_IFMT(mode))
    return result


@pytest.fixture(scope="session")
def tree_digest() -> Callable[[Path], dict[str, str]]:
    """A function: folder -> {relative path: sha256 of a regular file, ``<dir>``, ``->
    target`` of a link, or the kind of anything else}; it opens regular files only (a
    FIFO planted by a test never blocks it). Equal digests: nothing changed."""
    return _tree_digest


def npz_bytes(**arrays) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def _write_npz_workspace(folder: Path, epochs: int = 1, extra: str = "", name: str = "case",
                         seed: str = "1", text: str = "") -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(0).normal(size=(30, 4)).astype("float32")
    (folder / "data.npz").write_bytes(npz_bytes(x=x, y=np.arange(30) % 3))
    text = text or TINY_NPZ_PIPELINE.format(name=name, seed=seed, epochs=epochs) + extra
    (folder / "p.yaml").write_text(text)
    return folder / "p.yaml"


@pytest.fixture(scope="session")
def npz_workspace() -> Callable[..., Path]:
    """A function: (folder, epochs=1, extra="", name="case", seed="1", text="") ->
    folder/p.yaml, a 3-class pipeline on a 30-example data.npz (4 float features) written
    beside it; ``extra`` is appended to the pipeline text; ``text``, when given, is the
    pipeline instead."""
    return _write_npz_workspace


def _in_plain_keras(model_path: Path, code: str) -> str:
    """Run ``code`` in a child Python that imported only Keras (and NumPy) and loaded
    ``model_path`` as ``model`` with ``keras.saving.load_model(path, safe_mode=True)``, as
    the README promises a user can; its last line of output. The child fails the test when
    it fails. ``sys`` is imported, so ``code`` can tell whether kerapipe was imported."""
    probe = ("import os, sys\nos.environ['KERAS_BACKEND'] = 'tensorflow'\nimport keras\n"
             "import numpy as np\n"
             f"model = keras.saving.load_model({str(model_path)!r}, safe_mode=True)\n" + code)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def in_plain_keras() -> Callable[[Path, str], str]:
    """A function: (model.keras path, code using ``model``) -> the child's last output line
    (``_in_plain_keras``)."""
    return _in_plain_keras
