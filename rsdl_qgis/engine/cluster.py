"""A serving job's chunks computed by the workers of a Dask cluster: the connection, its
checks, the submission of chunks in a bounded window, the watch on the workers.

What a worker runs for a chunk is engine/serve.py's (remote_chunk, given to
run_on_cluster): from plain data (the job as a dict, the chunk, a model recipe) it
builds the model once per worker and keeps it. The sources and the model are read by the
workers from their paths, which must be the same on every worker (a shared folder). Only
the job, the chunk description and the chunk's output pixels travel over the network;
the client writes the one output file (engine/chunks.py's Assembler), so the output is
the same bytes as a run in-process.

The scheduler and the workers need ``PYTHONPATH`` holding the plugin's folder and its
private dependency folder (the scheduler reads each task, so it imports rsdl_qgis too):
``rsdl-scheduler`` and ``rsdl-worker tcp://scheduler:8786`` (rsdl_qgis/cluster_cli.py) set
it. ``connect`` checks all of that before a chunk is sent, and says what is wrong in one
line naming SCHEDULER: an unknown host, a tls:// address without certificates, a
scheduler or workers that cannot import rsdl_qgis.
No qgis import here.
"""
import importlib.util
import socket
import threading
import time
import uuid
from typing import Any, Callable, Sequence, Tuple

from ..errors import CancelledError, ParameterError
from .jobs import RESUME, SCHEDULER

#: seconds a run waits with chunks to compute and no worker in the cluster before it
#: fails (a worker restarted by its nanny is back within seconds)
NO_WORKER_TIMEOUT = 60.0
#: seconds between two looks at the cluster's workers
WORKER_CHECK = 2.0

#: the schemes of a Dask address rsdl_qgis supports
SCHEMES = ("tcp", "tls")
DEFAULT_PORT = 8786


def split_address(address: str) -> Tuple[str, str, int]:
    """(scheme, host, port) of a Dask address such as tcp://host:8786 (tcp and port 8786
    when left out)."""
    scheme, sep, rest = address.strip().rpartition("://")
    host, colon, port = rest.rpartition(":")
    if not colon or not port.isdigit() or host.endswith(":"):
        host, port = rest, str(DEFAULT_PORT)
    return (scheme if sep else "tcp"), host.strip("[]"), int(port)


def tls_configured() -> bool:
    """Whether Dask's configuration holds TLS certificates (distributed.comm.tls): a CA
    and a certificate for at least one role."""
    import dask
    tls = dask.config.get("distributed.comm.tls", {}) or {}
    return bool(tls.get("ca-file")) and any(
        isinstance(tls.get(role), dict) and tls[role].get("cert")
        for role in ("scheduler", "worker", "client"))


_START = ("start it with `rsdl-scheduler` (make install puts it in ~/.local/bin; "
          "docs/cluster.md)")


def _check_address(address, param):
    """Refuse, in one line, an address that cannot work: not tcp:// or tls://, an
    unknown host, tls:// without certificates."""
    scheme, host, port = split_address(address)
    if scheme not in SCHEMES or not host:
        raise ParameterError(
            f"'{address}' is not a Dask scheduler address: give tcp://HOST:8786, or "
            f"tls://HOST:8786 with TLS set up (docs/cluster.md)", param)
    try:
        socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise ParameterError(
            f"unknown host '{host}' in '{address}' ({exc.args[-1]}): check the name of the "
            "scheduler's machine, or give its IP address", param) from exc
    if scheme == "tls" and not tls_configured():
        raise ParameterError(
            f"'{address}' asks for TLS, but Dask's configuration holds no TLS certificate: "
            "write the file docs/cluster.md shows (distributed.comm.tls: a CA and a "
            "certificate and key) on this machine, or give a tcp:// address", param)


def connect(address: str, param: str = SCHEDULER, timeout: float = 30) -> Any:
    """A client of the scheduler at `address`, once it has at least one worker, and the
    scheduler and the workers can import rsdl_qgis."""
    from ..deps import require
    distributed = require("distributed", "distributed (Dask)")
    _check_address(address, param)
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:    # a refused or timed-out connection, a TLS mismatch  # noqa: BLE001
        hint = (" If the scheduler uses TLS, give a tls:// address."
                if split_address(address)[0] == "tcp" else "")
        raise ParameterError(
            f"cannot reach the Dask scheduler at '{address}' ({_describe(exc)}). Start one "
            f"with `rsdl-scheduler` and workers with `rsdl-worker {address}`, or leave "
            f"{param} empty to run in this process.{hint}", param) from exc
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ParameterError(
                f"the Dask scheduler at '{address}' has no worker: start some with "
                f"`rsdl-worker {address}`", param) from exc
        _check_imports(client, address, param)
    except BaseException:
        client.close()
        raise
    return client


def _describe(exc):
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."


def _check_imports(client, address, param):
    """The scheduler reads every task, and the workers run them: both must import
    rsdl_qgis, else the first chunk fails with Dask's "error during deserialization"."""
    try:
        on_scheduler = client.run_on_scheduler(importlib.util.find_spec, "rsdl_qgis")
        on_workers = client.run(importlib.util.find_spec, "rsdl_qgis")
    except Exception:      # a scheduler that refuses to run functions: not checked  # noqa: BLE001
        return
    if on_scheduler is None:
        raise ParameterError(
            f"the Dask scheduler at '{address}' cannot import rsdl_qgis, so it cannot read "
            f"the chunks' tasks: {_START}, or put the plugin's folder and its dependency "
            "folder on the scheduler's PYTHONPATH", param)
    missing = sorted(w for w, spec in on_workers.items() if spec is None)
    if missing:
        raise ParameterError(
            f"{len(missing)} Dask worker(s) of '{address}' cannot import rsdl_qgis "
            f"({', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}): start them "
            f"with `rsdl-worker {address}`, or put the plugin's folder and its dependency "
            "folder on their PYTHONPATH", param)


def run_on_cluster(address: str, task: Callable[..., Any], args: Any, todo: Sequence[Any],
                   assembler: Any, progress: Any, param: str = SCHEDULER) -> int:
    """Compute the chunks `todo` on the cluster, each as ``task(*args, chunk_dict)`` on a
    worker (a module-level function, which Dask sends by name: the workers import its
    module), and hand each result (index, pixels, tiles skipped, seconds) to `assembler`
    as it comes back. Runs at most two chunks per worker thread ahead, and never more
    than that far ahead of the chunk the output waits for, so the client's memory stays
    bounded. Returns the number of tiles that were all nodata."""
    client = connect(address, param)
    running: dict = {}
    arrived = threading.Event()
    try:
        info = client.scheduler_info(n_workers=-1)["workers"]
        threads = sum(w.get("nthreads", 1) for w in info.values()) or 1
        progress.info(f"Dask scheduler {address}: {len(info)} worker(s), {threads} thread(s); "
                      f"{len(todo)} chunk(s) to compute")
        assembler.threads = threads
        ahead = 2 * threads
        queue = list(todo)
        token = uuid.uuid4().hex[:8]
        skipped = 0
        watch = _Workers(client, address, param, progress.info, set(info))
        while queue or running:
            while queue and len(running) < ahead and \
                    queue[0].index < assembler.next + 2 * ahead:
                chunk = queue.pop(0)
                future = client.submit(task, *args, chunk.to_dict(),
                                       key=f"rsdl-chunk-{token}-{chunk.index}")
                future.add_done_callback(lambda _f: arrived.set())
                running[future] = chunk
            arrived.wait(0.25)
            arrived.clear()
            if progress.cancelled():
                raise CancelledError()
            for future in [f for f in running if f.done()]:
                running.pop(future)
                index, array, sk, seconds = future.result()  # a worker's error comes out here
                future.release()
                skipped += sk
                assembler.add(index, array, seconds)
            progress.set(assembler.fraction())
            if queue or running:
                watch.check(len(queue) + len(running),
                            {f.key: c.index for f, c in running.items()})
        return skipped
    finally:
        if running:
            client.cancel(list(running))
        client.close()


class _Workers:
    """Watches the cluster's workers while a run goes on: says in the log when one is
    lost (and which chunks it was computing, which the scheduler gives to another) or
    joins, and fails a run whose cluster has had no worker for NO_WORKER_TIMEOUT
    seconds: Dask keeps the chunks waiting for a worker that may never come, and the run
    would wait for ever."""

    def __init__(self, client, address, param, info=None, workers=()):
        self.client, self.address, self.param = client, address, param
        self.info = info or (lambda _m: None)
        self.clock = time.monotonic
        self.last_look = self.clock()
        self.since = None            # when the cluster was first seen without a worker
        self.known = set(workers)
        self.busy: dict = {}         # worker -> keys of the chunks it was computing

    def check(self, waiting, running=None):
        """`running`: {task key: chunk index} of the chunks not finished."""
        now = self.clock()
        if now - self.last_look < WORKER_CHECK:
            return
        self.last_look = now
        try:
            try:
                workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
            except TypeError:                           # distributed before n_workers=
                workers = self.client.scheduler_info().get("workers", {})
            self._changes(set(workers), running or {})
        except (OSError, TimeoutError) as exc:
            raise ParameterError(
                f"lost the Dask scheduler at '{self.address}' ({exc}) with {waiting} "
                f"chunk(s) to compute: the finished ones are kept ({RESUME}); start the "
                f"scheduler again, or leave {self.param} empty to run in this process",
                self.param) from exc
        if workers:
            self.since = None
            return
        self.since = self.since or now
        if now - self.since >= NO_WORKER_TIMEOUT:
            raise ParameterError(
                f"the Dask cluster at '{self.address}' has had no worker for "
                f"{NO_WORKER_TIMEOUT:.0f} s with {waiting} chunk(s) to compute: start "
                f"workers (`rsdl-worker {self.address}`) and run again, the finished "
                f"chunks are kept ({RESUME}); or leave {self.param} empty to run in this "
                "process", self.param)

    def _changes(self, workers, running):
        """Log the workers lost and joined since the last look."""
        for w in sorted(self.known - workers):
            chunks = sorted(running[k] for k in self.busy.get(w, ()) if k in running)
            what = (f"; the chunk(s) it was computing ({', '.join(map(str, chunks))}) are "
                    "given to another worker" if chunks else "")
            self.info(f"Lost the Dask worker {w} ({len(workers)} left){what}")
        for w in sorted(workers - self.known):
            self.info(f"A Dask worker joined: {w} ({len(workers)} now)")
        self.known = workers
        if running and workers:
            try:
                self.busy = {w: set(keys) for w, keys in self.client.processing().items()}
            except (OSError, TimeoutError, AttributeError):
                self.busy = {}
