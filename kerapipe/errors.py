"""Exception types and exit codes, one per failure class (Click style).

Every command maps what went wrong to one documented exit code. The code lives on
the exception so that the CLI never needs a lookup table of its own.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug in kerapipe: never on user input
EXIT_SPEC = 2  # invalid pipeline file or command-line usage
EXIT_DATA = 3
EXIT_TRAINING = 4
EXIT_OUTPUT = 5
EXIT_PEERS_MISSING = 6  # train.distribute: a worker's peers never all started
EXIT_PEER_LOST = 7  # train.distribute: a worker was lost mid-run
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_INTERNAL: "internal error (a bug in kerapipe; never caused by user input)",
    EXIT_SPEC: "invalid pipeline file or command-line usage",
    EXIT_DATA: "data error (missing, unreadable or invalid data)",
    EXIT_TRAINING: "training or export failure (e.g. NaN loss, out of memory, an export "
                   "whose predictions differ from its model's)",
    EXIT_OUTPUT: "output or I/O error (e.g. an unwritable output folder, an MLflow tracking store that cannot be reached)",
    EXIT_PEERS_MISSING: "a multi_worker worker did not see all its peers start within "
                        "train.distribute.startup_timeout (the message names the missing ones)",
    EXIT_PEER_LOST: "a multi_worker peer was lost mid-run: rerun all workers to resume",
    EXIT_SIGINT: "interrupted by SIGINT (Ctrl-C)",
    EXIT_SIGTERM: "terminated by SIGTERM",
}


class KerapipeError(Exception):
    """Base class of every error kerapipe reports to a user.

    The error renders itself (Click's ``ClickException.format_message``/``show``): the CLI
    prints ``show()`` and exits with ``exit_code``, and needs no table of its own.
    """

    exit_code = EXIT_INTERNAL

    def format_message(self) -> str:
        """``error: <message>``, then each note the run side added on the way out (what a
        run folder kept, how to continue it)."""
        return f"error: {self}{self._notes()}"

    def show(self, file=None) -> None:
        """Write ``format_message()`` to ``file`` (standard error by default)."""
        import sys

        stream = file if file is not None else sys.stderr
        stream.write(self.format_message() + "\n")
        stream.flush()

    def _notes(self) -> str:
        return "".join(f"\n{note}" for note in getattr(self, "__notes__", ()))


class SpecError(KerapipeError):
    """A pipeline file (or an override of it) is invalid.

    Args:
        issues: every problem found, not just the first.
    """

    exit_code = EXIT_SPEC

    def __init__(self, issues: list) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(issue.format() for issue in self.issues))

    def format_message(self) -> str:
        """One ``FILE:LINE:COL: severity[code]: key: message`` line per issue (each says
        its own severity: no ``error:`` prefix), as ``kerapipe validate`` prints them."""
        return f"{self}{self._notes()}"


class UsageError(KerapipeError):
    """The command line asks for something impossible."""

    exit_code = EXIT_SPEC


class DataError(KerapipeError):
    """The data a pipeline names is missing, unreadable or invalid."""

    exit_code = EXIT_DATA


class TrainingError(KerapipeError):
    """Training failed (non-finite loss, out of memory, ...)."""

    exit_code = EXIT_TRAINING


class OutputError(KerapipeError):
    """The run folder or another output cannot be written."""

    exit_code = EXIT_OUTPUT


class PeersMissing(KerapipeError):
    """A ``multi_worker`` worker waited ``startup_timeout`` for peers that never came."""

    exit_code = EXIT_PEERS_MISSING


class PeerLost(KerapipeError):
    """A ``multi_worker`` run lost a worker: the survivors stop; a rerun of all resumes."""

    exit_code = EXIT_PEER_LOST


class TrainingStopped(Exception):
    """Raised from a batch callback to leave ``fit`` at once (not a user-facing error).

    Setting ``model.stop_training`` would let Keras finish the epoch's bookkeeping
    (validation, ``on_epoch_end``) on a partial epoch; leaving by an exception keeps a
    partial epoch out of the history, the checkpoints and the early-stopping state. It
    lives here, at the bottom, because the run side raises it (``kerapipe.callbacks``) and
    the compiler's fault translation (``kerapipe.compiler.faults``) must let it pass.
    """


class Interrupted(KerapipeError):
    """A run stopped on SIGINT or SIGTERM after saving what it had."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        import signal

        self.exit_code = EXIT_SIGTERM if signum == signal.SIGTERM else EXIT_SIGINT
