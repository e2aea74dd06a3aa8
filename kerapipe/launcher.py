"""``kerapipe run FILE --workers N``: N local worker processes on loopback, for tests and
demos. A launcher, not an engine: it only sets each worker's ``TF_CONFIG`` and watches
them, as Ray Train, Kubeflow or a SLURM script would on real hosts.

The chief's output is streamed as it comes; another worker's standard error is kept and
shown only if that worker fails. When one worker fails, every other one is stopped
(SIGTERM, then SIGKILL after a grace period) and the launcher exits with the failed
worker's code; SIGINT/SIGTERM to the launcher go to every worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Optional, Sequence

from kerapipe.cluster import LAUNCHED_WORKERS, free_local_ports, local_tf_config

# Seconds a worker gets to stop on SIGTERM (it checkpoints nothing new: an epoch in
# progress is given up) before it is killed.
GRACE_SECONDS = 20


def launch_local_workers(workers: int, arguments: Sequence[str],
                         poll_seconds: float = 0.2) -> int:
    """Run ``kerapipe run <arguments>`` as ``workers`` processes of one local cluster.

    Returns the exit code: 0 when every worker succeeded, else the first failure's.
    """
    ports = free_local_ports(workers)
    command = [sys.executable, "-m", "kerapipe", "run", *arguments]
    processes: list[subprocess.Popen] = []
    logs: list[Optional[tempfile._TemporaryFileWrapper]] = []
    for index in range(workers):
        env = {**os.environ, "TF_CONFIG": local_tf_config(ports, index),
               LAUNCHED_WORKERS: str(workers)}
        log = None if index == 0 else tempfile.TemporaryFile("w+b")
        logs.append(log)
        # A session of its own: a Ctrl-C at the terminal reaches the launcher only, which
        # passes it on once; the parent-death signal stops a worker whose launcher was
        # killed outright (SIGKILL), instead of leaving it to train on as an orphan.
        processes.append(subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL,
            stdout=None if index == 0 else subprocess.DEVNULL,
            stderr=None if index == 0 else log, start_new_session=True,
            preexec_fn=_die_with_the_launcher))
    def forward(signum, frame) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        failed = _watch(processes, poll_seconds)
        if failed is not None:
            _stop_all(processes)
            _show_log(failed, processes, logs)
            return processes[failed].returncode if processes[failed].returncode > 0 \
                else 128 - processes[failed].returncode
        return 0
    finally:
        _stop_all(processes)  # (a signal meanwhile is passed on, not raised here)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for log in logs:
            if log is not None:
                log.close()


def _die_with_the_launcher() -> None:
    """In a worker, before it runs: SIGTERM when the launcher dies (Linux's
    ``PR_SET_PDEATHSIG``; elsewhere nothing)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def _watch(processes: list[subprocess.Popen], poll_seconds: float) -> Optional[int]:
    """Wait until every worker has exited; the index of the first that failed, or None."""
    while True:
        codes = [p.poll() for p in processes]
        failed = next((i for i, code in enumerate(codes) if code not in (None, 0)), None)
        if failed is not None or all(code == 0 for code in codes):
            return failed
        time.sleep(poll_seconds)


def _stop_all(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _show_log(failed: int, processes: list, logs: list) -> None:
    """The failed worker's standard error (the chief's was streamed already)."""
    log = logs[failed]
    if log is None:
        return
    log.seek(0)
    text = log.read().decode("utf-8", "replace").strip()
    sys.stderr.write(f"kerapipe: worker {failed} exited with code "
                     f"{processes[failed].returncode}" + (":\n" + "\n".join(
                         f"[worker {failed}] {line}" for line in text.splitlines()[-20:])
                         if text else "") + "\n")
    sys.stderr.flush()
