"""A serving job's chunks computed by the workers of a Dask cluster.

The client (QGIS, qgis_process) sends the workers three pieces of plain data: the job
(engine/serve.py's ServeJob as a dict), the chunk to compute (its window and tiles), and
a *model recipe*: the name of a function that builds the model, and its plain arguments
(a model path and whether it is trusted; a classifier file). A worker builds the model
once and keeps it for every later chunk; each worker thread keeps its own open sources.
The sources and the model are read by the workers from their paths, which must be the
same on every worker (a shared folder). Only the job, the chunk description and the
chunk's output pixels travel over the network; the client writes the one output file
(engine/chunks.py's Assembler), so the output is the same bytes as a run in-process.

A worker needs nothing but ``PYTHONPATH`` holding the plugin's folder and its private
dependency folder: ``dask worker tcp://scheduler:8786``.
No qgis import here.
"""
import importlib
import json
import socket
import threading
import time
import uuid

from ..errors import CancelledError, ParameterError, RsdlError

#: seconds a run waits with chunks to compute and no worker in the cluster before it
#: fails (a worker restarted by its nanny is back within seconds)
NO_WORKER_TIMEOUT = 60.0
#: seconds between two looks at the cluster's workers
WORKER_CHECK = 2.0

_models: dict = {}
_models_lock = threading.Lock()
_local = threading.local()


def build_model(recipe):
    """The model a recipe names: ``{"builder": "module:function", "args": {...}}``."""
    module, _, name = recipe["builder"].partition(":")
    return getattr(importlib.import_module(module), name)(**recipe.get("args", {}))


def _model(recipe):
    """One model per recipe and worker process, built on first use and kept."""
    key = json.dumps(recipe, sort_keys=True)
    with _models_lock:
        if key not in _models:
            _models[key] = build_model(recipe)
        return _models[key]


def _plan(recipe, job_dict):
    """The serving plan of a job in this worker thread (its sources kept open); the plan
    of an earlier job is closed."""
    from .progress import Progress
    from .serve import ServeJob, ServePlan
    key = json.dumps([recipe, job_dict], sort_keys=True)
    cached = getattr(_local, "plan", None)
    if cached and cached[0] == key:
        return cached[1]
    if cached:
        cached[1].close()
        _local.plan = None
    plan = ServePlan(ServeJob.from_dict(job_dict), _model(recipe), Progress())
    _local.plan = (key, plan)
    return plan


def compute_chunk(recipe, job_dict, chunk_dict):
    """Worker side: (chunk index, output pixels (rows, cols, bands), tiles skipped)."""
    from .chunks import Chunk
    from .serve import compute_chunk as compute
    try:
        plan = _plan(recipe, job_dict)
        chunk = Chunk.from_dict(chunk_dict)
        array, skipped = compute(plan, chunk)
    except RsdlError as exc:
        exc.message = f"on the Dask worker {socket.gethostname()}: {exc.message}"
        exc.args = (exc.message,)
        raise
    return chunk.index, array, skipped


def connect(address, param="SCHEDULER", timeout=30):
    """A client of the scheduler at `address`, once it has at least one worker."""
    from ..deps import require
    distributed = require("distributed", "distributed (Dask)")
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ParameterError(
            f"cannot reach the Dask scheduler at '{address}' ({exc}). Start one with "
            f"`dask scheduler` and workers with `dask worker {address}`, or leave "
            f"{param} empty to run in this process", param) from exc
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        client.close()
        raise ParameterError(
            f"the Dask scheduler at '{address}' has no worker: start some with "
            f"`dask worker {address}` (PYTHONPATH holding the plugin's folder and its "
            "dependency folder)", param) from exc
    return client


def run_on_cluster(address, recipe, job_dict, todo, assembler, progress, param="SCHEDULER"):
    """Compute the chunks `todo` on the cluster and hand each to `assembler` as it comes
    back. Runs at most two chunks per worker thread ahead, and never more than that far
    ahead of the chunk the output waits for, so the client's memory stays bounded.
    Returns the number of tiles that were all nodata."""
    client = connect(address, param)
    running: dict = {}
    arrived = threading.Event()
    try:
        info = client.scheduler_info(n_workers=-1)["workers"]
        threads = sum(w.get("nthreads", 1) for w in info.values()) or 1
        progress.info(f"Dask scheduler {address}: {len(info)} worker(s), {threads} thread(s); "
                      f"{len(todo)} chunk(s) to compute")
        ahead = 2 * threads
        queue = list(todo)
        token = uuid.uuid4().hex[:8]
        skipped = 0
        watch = _Workers(client, address, param)
        while queue or running:
            while queue and len(running) < ahead and \
                    queue[0].index < assembler.next + 2 * ahead:
                chunk = queue.pop(0)
                future = client.submit(compute_chunk, recipe, job_dict, chunk.to_dict(),
                                       key=f"rsdl-chunk-{token}-{chunk.index}")
                future.add_done_callback(lambda _f: arrived.set())
                running[future] = chunk
            arrived.wait(0.25)
            arrived.clear()
            if progress.cancelled():
                raise CancelledError()
            for future in [f for f in running if f.done()]:
                running.pop(future)
                index, array, sk = future.result()      # a worker's error comes out here
                future.release()
                skipped += sk
                assembler.add(index, array)
            progress.set(assembler.fraction())
            if queue or running:
                watch.check(len(queue) + len(running))
        return skipped
    finally:
        if running:
            client.cancel(list(running))
        client.close()


class _Workers:
    """Fails a run whose cluster has had no worker for NO_WORKER_TIMEOUT seconds: Dask
    keeps the chunks waiting for a worker that may never come, and the run would wait
    for ever."""

    def __init__(self, client, address, param):
        self.client, self.address, self.param = client, address, param
        self.clock = time.monotonic
        self.last_look = self.clock()
        self.since = None            # when the cluster was first seen without a worker

    def check(self, waiting):
        now = self.clock()
        if now - self.last_look < WORKER_CHECK:
            return
        self.last_look = now
        try:
            workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        except TypeError:                           # distributed before n_workers=
            workers = self.client.scheduler_info().get("workers", {})
        except (OSError, TimeoutError) as exc:
            raise ParameterError(
                f"lost the Dask scheduler at '{self.address}' ({exc}) with {waiting} "
                f"chunk(s) to compute: the finished ones are kept (RESUME); start the "
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
                f"workers (`dask worker {self.address}`) and run again, the finished "
                f"chunks are kept (RESUME); or leave {self.param} empty to run in this "
                "process", self.param)
