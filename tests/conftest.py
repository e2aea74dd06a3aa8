"""Fixtures shared by the command tests."""

from __future__ import annotations

import signal

import pytest


@pytest.fixture
def call_main(capsys):
    """``kerapipe.cli.main(argv)`` in this process (a child process would spend seconds
    importing TensorFlow first), with the real exit-code mapping.

    Returns (exit code, stdout, stderr); restores SIGTERM's handler, which main installs.
    """
    from kerapipe.cli import main

    def call(*args) -> tuple[int, str, str]:
        previous = signal.getsignal(signal.SIGTERM)
        try:
            main([str(a) for a in args])
            code = 0  # a command that returns normally exits 0
        except SystemExit as exit_:
            code = exit_.code
        finally:
            signal.signal(signal.SIGTERM, previous)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call
