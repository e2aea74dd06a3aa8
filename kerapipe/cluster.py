"""Which worker this process is in a ``train.distribute: {strategy: multi_worker}`` run,
read from ``TF_CONFIG`` the way tf.distribute reads it, without importing TensorFlow.

A launcher (Ray Train, Kubeflow's TFJob, a SLURM script, ``kerapipe run --workers N``)
starts one process per worker with the same pipeline file and sets ``TF_CONFIG``:

    {"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}

(optionally a ``chief`` job of one address, which is then worker 0). The chief (the
``chief`` task, else worker 0) writes the run folder; every other worker keeps only its own
backup beside it, ``<run folder>.worker-<i>`` (``worker_folder``), so that a restart of
all workers resumes exactly even where the hosts share no disk. The run side asks this
module; the TensorFlow side (``kerapipe.compiler.distribute``) makes the strategy.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from kerapipe.errors import UsageError

# Set by `kerapipe run --workers N` in each worker it starts: messages then say how to
# resume the same way.
LAUNCHED_WORKERS = "KERAPIPE_LOCAL_WORKERS"

_HINT = ("Start each worker with TF_CONFIG set (`kerapipe run FILE --workers N` does it on "
         "one machine; README: Several devices and workers).")


@dataclass(frozen=True)
class Cluster:
    """The workers of a multi-worker run and this process's place among them.

    Args:
        addresses: every worker's ``host:port``, the chief first.
        index: this worker's position in ``addresses`` (0: the chief).
    """

    addresses: tuple[str, ...]
    index: int

    @property
    def workers(self) -> int:
        return len(self.addresses)

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    def peers(self) -> list[tuple[int, str]]:
        """``(index, address)`` of every other worker."""
        return [(i, a) for i, a in enumerate(self.addresses) if i != self.index]


def cluster_from_environment(environ: Optional[dict] = None) -> Cluster:
    """The cluster ``TF_CONFIG`` describes.

    Raises:
        UsageError: ``TF_CONFIG`` is unset, not JSON, or does not name this task among
            its workers.
    """
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG")
    if not text:
        raise UsageError("train.distribute.strategy is multi_worker, but TF_CONFIG is not "
                         f"set, so this worker does not know its peers. {_HINT}")
    try:
        config = json.loads(text)
    except ValueError as err:
        raise UsageError(f"TF_CONFIG is not JSON ({err}). {_HINT}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise UsageError("TF_CONFIG must be a JSON object with `cluster` (job name -> list "
                         f"of host:port) and `task` ({{type, index}}). {_HINT}")
    jobs = set(cluster) - {"chief", "worker"}
    if jobs:
        raise UsageError(f"TF_CONFIG lists the job(s) {', '.join(sorted(map(str, jobs)))}; "
                         "multi_worker trains on `chief` and `worker` tasks only "
                         "(MultiWorkerMirroredStrategy: no parameter servers or evaluators).")
    chief, workers = cluster.get("chief", []), cluster.get("worker", [])
    if not (isinstance(chief, list) and isinstance(workers, list)) or len(chief) > 1 or not all(
            isinstance(a, str) and a for a in chief + workers):
        raise UsageError("TF_CONFIG's cluster.chief (at most one) and cluster.worker must be "
                         f"lists of host:port strings. {_HINT}")
    addresses = chief + workers
    bad = next((a for a in addresses if _port(a) is None), None)
    if bad is not None:
        raise UsageError(f"TF_CONFIG's address {bad!r} is not host:port (a port 1-65535; an "
                         f"IPv6 host in brackets, [::1]:2222). {_HINT}")
    seen: dict = {}
    for position, address in enumerate(addresses):
        first = seen.setdefault(_endpoint(address), position)
        if first != position:
            raise UsageError(f"TF_CONFIG lists one address twice ({addresses[first]!r} and "
                             f"{address!r}): every worker needs a host:port of its own.")
    kind, index = task.get("type"), task.get("index", 0)
    size = {"chief": len(chief), "worker": len(workers)}.get(kind) \
        if isinstance(kind, str) else None
    if size is None or not isinstance(index, int) or isinstance(index, bool) \
            or not 0 <= index < size:
        raise UsageError(f"TF_CONFIG's task {json.dumps(task)} is not one of its cluster's "
                         f"tasks (chief: {len(chief)}, worker: {len(workers)}). {_HINT}")
    position = index if kind == "chief" else index + len(chief)
    return Cluster(tuple(addresses), position)


_LOOPBACK = {"localhost", "127.0.0.1", "::1", ""}


def _port(address: str) -> Optional[int]:
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or not 1 <= int(port) <= 65535:
        return None
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        return None  # an IPv6 host without brackets: where does the port start?
    return int(port)


def _host_and_port(address: str) -> tuple[str, str]:
    """``host:port`` -> ``(host, port)``, an IPv6 host without its brackets."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), port


def _endpoint(address: str) -> tuple:
    """``(host, port)`` with the names of this machine's loopback made one."""
    host, port = _host_and_port(address)
    host = host.lower()
    return ("localhost" if host in _LOOPBACK else host, int(port))


def worker_folder(run_dir: os.PathLike, index: int) -> Path:
    """Where worker ``index`` (not the chief) keeps its backup: ``<run folder>.worker-<i>``."""
    run_dir = Path(os.path.abspath(run_dir))  # `.`, `runs/..`: the folder's own name
    return run_dir.with_name(f"{run_dir.name}.worker-{index}")


def chief_folder(folder: os.PathLike) -> Path:
    """The chief's run folder of a folder that may be a worker's backup (``worker_folder``)."""
    folder = Path(folder)
    base, dot, index = folder.name.rpartition(".worker-")
    return folder.with_name(base) if dot and base and index.isdigit() else folder


def accepts_connections(address: str, timeout: float = 1.0) -> bool:
    """Whether something listens at ``host:port`` (a started worker's server does)."""
    host, port = _host_and_port(address)
    try:
        with socket.create_connection((host or "localhost", int(port)), timeout):
            return True
    except (OSError, ValueError):
        return False


def wait_for_peers(cluster: Cluster, timeout: float, poll: float = 0.25) -> list[str]:
    """Meet the other workers before TensorFlow does; the peers that never started.

    TensorFlow's start-up (``MultiWorkerMirroredStrategy()``) waits for every peer inside
    C++, holding the GIL and ignoring SIGTERM, with no timeout of its own that a lonely
    worker reaches: so the workers meet here first, in Python. Each one listens on its
    own ``host:port`` (the one TensorFlow binds next) and connects to every peer's until
    each has accepted once, either this listener or, later, that peer's TensorFlow
    server. A worker that never accepts within ``timeout`` seconds is missing.

    Returns:
        ``worker <i> (<host:port>)`` of each missing peer (empty: all started).

    Raises:
        UsageError: this worker's port is taken (or its host is not this machine).
    """
    import threading
    import time

    address = cluster.addresses[cluster.index]
    host, port = _host_and_port(address)
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", int(port)))
    except (OSError, ValueError) as err:
        listener.close()
        raise UsageError(f"this worker cannot listen at {address} (its TF_CONFIG task): "
                         f"{getattr(err, 'strerror', None) or err}. The port is taken, or "
                         "the host is not this machine's: give every worker a free "
                         "host:port of its own host.") from None
    listener.listen(64)
    listener.settimeout(poll)
    done = threading.Event()

    def answer() -> None:  # accept each probe; the prober closes first (no TIME_WAIT here)
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(poll)
                try:
                    connection.recv(1)
                except OSError:
                    pass

    thread = threading.Thread(target=answer, name="kerapipe-peers", daemon=True)
    thread.start()
    pending = dict(cluster.peers())
    deadline = time.monotonic() + timeout
    try:
        while pending and time.monotonic() < deadline:
            for index, peer in list(pending.items()):
                if accepts_connections(peer, timeout=poll):
                    del pending[index]
            if pending:
                time.sleep(poll)
    finally:
        done.set()
        thread.join()
        listener.close()
    return [f"worker {i} ({peer})" for i, peer in sorted(pending.items())]


def free_local_ports(count: int) -> list[int]:
    """``count`` TCP ports free on this machine now (the kernel picks them)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("localhost", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def local_tf_config(ports: list[int], index: int) -> str:
    """``TF_CONFIG`` of worker ``index`` in a cluster of local workers on ``ports``."""
    return json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})
