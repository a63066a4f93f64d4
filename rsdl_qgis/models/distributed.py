"""Training on several GPUs or machines, with TensorFlow's distribution strategies.

DISTRIBUTION of rsdl:trainmodel:
- ``none``: one process; Keras's fit (models/training.py).
- ``gpus``: every GPU of this machine, ``tf.distribute.MirroredStrategy``: each batch is
  split between the GPUs and their gradients summed; the same fit loop.
- ``workers``: the workers of a Dask cluster (SCHEDULER, as for serving), one TensorFlow
  process each, ``tf.distribute.MultiWorkerMirroredStrategy`` (synchronous data
  parallelism: every step, each worker computes the gradient of its share of the batch,
  the gradients are summed across workers, and every worker applies the same update).
  Dask only starts the processes and carries the log: the training's own traffic is
  TensorFlow's, between the workers, on a port each worker picks.

Keras 3's fit does not run under MultiWorkerMirroredStrategy (keras-team/keras#20585:
"Attempt to convert a value (PerReplica ...)"), so ``workers`` trains with its own loop:
the same loss (sparse cross-entropy, class weights as sample weights, over the global
batch), the same Adam with the same schedule and weight averaging, validation and early
stopping on the averaged weights, cancel, and a diverged loss refused. Every decision
(stop, cancel, NaN) is taken on all-reduced values, so that all workers take it at the
same step. The first worker writes the model files, the very files of a one-process
training (from a plain copy of the network), and the client writes them at OUTPUT.

No qgis import here.
"""
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from typing import Any, Dict, List, Optional

import numpy as np

from ..engine.declare import defaults, names
from ..engine.model import ProgressLike
from ..engine.progress import Progress
from ..errors import CancelledError, ParameterError, RsdlError
from .jobs import TrainModelJob

#: the parameters errors name (engine/declare.py)
N = names(TrainModelJob)
#: seconds between two progress messages of the first worker
PROGRESS_EVERY = 0.5


def local_strategy(progress: ProgressLike) -> Any:
    """MirroredStrategy over this machine's GPUs, or None (and a note) without one."""
    from ..deps import require_tensorflow
    tf = require_tensorflow()
    gpus = tf.config.list_logical_devices("GPU")
    if not gpus:
        progress.info(f"{N.distribution}: this machine has no GPU TensorFlow can use: "
                      f"training on the CPU, as with {N.distribution} none")
        return None
    progress.info(f"{N.distribution}: {len(gpus)} GPU(s) of this machine "
                  f"({', '.join(g.name for g in gpus)}), MirroredStrategy")
    return tf.distribute.MirroredStrategy([g.name for g in gpus])


# --- the loop each worker runs ---------------------------------------------------------

def _dataset(ds, batch, codes, weights, rng, augment, shard, tf):
    sig_x = {n: tf.TensorSpec((None, s.size, s.size, s.bands), tf.float32)
             for n, s in zip(ds.names, ds.sources)}
    lab = (None, ds.labels.size, ds.labels.size) if ds.dense else (None,)
    sig = (sig_x, tf.TensorSpec(lab, tf.int32), tf.TensorSpec(lab, tf.float32))

    def forever():
        """Full batches only, pass after pass (a partial batch would differ in size
        between workers and retrace the step)."""
        while True:
            full = 0
            for x, y, w in ds.batches(batch, codes, weights, rng, augment, shard):
                if len(y) == batch:
                    full += 1
                    yield x, y, w
            if not full:        # never spin: train_model refuses so small a share first
                raise RuntimeError(f"worker {shard[0]}'s share holds no batch of {batch}")

    data = tf.data.Dataset.from_generator(forever, output_signature=sig).prefetch(2)
    options = tf.data.Options()
    # each worker reads its own share of the patches (Dataset.batches' shard)
    options.experimental_distribute.auto_shard_policy = \
        tf.data.experimental.AutoShardPolicy.OFF
    return data.with_options(options)


def synchronise_batch_norm(model: Any, keras: Any) -> Any:
    """Batch normalisation over the global batch, not each worker's share: with its
    statistics from a worker's half batch, two workers' networks came out 8 to 10 points
    less accurate than one process's, on every seed tried (and as accurate with this).
    The exported copy is the plain network: the files do not change."""
    layers = list(model.layers)
    while layers:
        layer = layers.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
        layers += list(getattr(layer, "layers", []))


def fit_on_workers(job: TrainModelJob, model: Any, plain: Any, optimizer: Any, train: Any,
                   valid: Any, classes: Any, tf: Any, progress: ProgressLike, strategy: Any,
                   rank: int, size: int, fit: Any) -> Any:
    """Train `model` (built in `strategy`'s scope) for EPOCHS, this worker being `rank`
    of `size`; `plain`, the same network outside the strategy, is what validates (the
    distributed model's weights are only ever read). Fills and returns `fit`
    (models/training.py's _Fit, not begun); the weights to keep are its
    best["weights"]."""
    codes, weights = classes.codes, classes.weights
    local = -(-job.batch_size // size)               # this worker's share of a batch
    global_batch = local * size
    steps = -(-train.count // job.batch_size)
    rng = np.random.default_rng(job.seed + rank)
    if train.count < global_batch * size:
        raise ParameterError(f"{train.count} training samples are too few to share between "
                             f"{size} workers in batches of {job.batch_size}: lower "
                             f"{N.workers} or {N.batch_size}", N.workers)
    # one dataset per worker, its batches this worker's own (no re-batching by TensorFlow,
    # which split a worker's last partial batch into an empty one and made NaN)
    data = strategy.distribute_datasets_from_function(
        lambda _ctx: _dataset(train, local, codes, weights, rng, job.augment, (rank, size), tf))
    import keras
    loss_fn = keras.losses.SparseCategoricalCrossentropy(reduction=None)
    synchronise_batch_norm(model, keras)

    def one_step(x, y, w, stop):
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            per = loss_fn(y, p) * w
            loss = tf.reduce_sum(per) / global_batch
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        good = tf.cast(tf.equal(tf.cast(tf.argmax(p, axis=-1), tf.int32), y), tf.float32)
        return tf.stack([loss, tf.reduce_sum(good * w), tf.reduce_sum(w), stop])

    @tf.function
    def step(iterator, stop):
        x, y, w = next(iterator)
        out = strategy.run(one_step, args=(x, y, w, stop))
        return strategy.reduce("SUM", out, axis=None)

    @tf.function
    def all_sum(values):
        return strategy.reduce("SUM", strategy.run(lambda v: v, args=(values,)), axis=None)

    def averaged():
        """The weights validation and the kept model use: the moving average's trainable
        weights (with averaging), the others as they are."""
        values = model.get_weights()
        if not job.average:
            return values
        ema = {id(v): a for v, a in zip(model.trainable_variables,
                                        optimizer._model_variables_moving_average)}
        return [np.asarray(ema[id(v)]) if id(v) in ema else values[i]
                for i, v in enumerate(model.weights)]

    def validate(values):
        """(val_loss, val_accuracy) of weights `values` on the validation set, each
        worker on its share, all-reduced."""
        plain.set_weights(values)
        sums = np.zeros(4)
        for x, y, w in valid.batches(256, codes, weights, shard=(rank, size)):
            p = plain(x, training=False)
            per = np.asarray(loss_fn(y, p)) * w
            good = (np.argmax(np.asarray(p), axis=-1) == y) * w
            sums += [per.sum(), good.sum(), w.sum(), y.size]
        total = all_sum(tf.constant(sums, tf.float64)).numpy()
        return total[0] / max(total[3], 1), total[1] / max(total[2], 1e-12)

    if valid is not None:
        loss0, acc0 = validate(model.get_weights())
        fit.history.append({"epoch": 0, "val_loss": float(loss0), "val_accuracy": float(acc0)})
        progress.info(f"epoch 0 (before training): val_loss {loss0:.4f}, "
                      f"val_accuracy {acc0:.4f}")
    else:
        fit.history.append({"epoch": 0})
    progress.info(f"Training on {size} workers (MultiWorkerMirroredStrategy): batches of "
                  f"{global_batch}, {local} per worker")
    it = iter(data)
    told = 0.0
    began, stepped = time.monotonic(), 0
    for epoch in range(job.epochs):
        sums = np.zeros(3)
        for b in range(steps):
            stop = 1.0 if progress.cancelled() else 0.0
            out = step(it, tf.constant(stop, tf.float32)).numpy()
            if out[3] > 0:
                fit.cancelled = True
                break
            if not np.isfinite(out[0]):
                fit.diverged = f"epoch {epoch + 1}, batch {b + 1}"
                break
            sums += out[:3]
            stepped += 1
            now = time.monotonic()
            if now - told > PROGRESS_EVERY:
                told = now
                progress.set(min(0.95, (epoch + (b + 1) / steps) / job.epochs * 0.95))
        if fit.cancelled or fit.diverged:
            break
        rec = {"epoch": epoch + 1, "loss": sums[0] / steps,
               "accuracy": sums[1] / max(sums[2], 1e-12)}
        kept = averaged()
        if valid is not None:
            rec["val_loss"], rec["val_accuracy"] = validate(kept)
        rec = {k: float(v) if k != "epoch" else v for k, v in rec.items()}
        if not all(np.isfinite(v) for k, v in rec.items() if k != "epoch"):
            fit.diverged = f"the validation of epoch {epoch + 1}"
            break
        fit.history.append(rec)
        progress.info(f"epoch {epoch + 1}/{job.epochs}: " + ", ".join(
            f"{k} {v:.4f}" for k, v in rec.items() if k != "epoch"))
        if rec.get(fit.monitor, np.inf) < fit.best["loss"]:
            fit.best.update(loss=rec[fit.monitor], weights=kept, epoch=epoch + 1)
        elif (valid is not None and job.patience and epoch + 1 < job.epochs
              and epoch + 1 - (fit.best["epoch"] or 0) >= job.patience):
            fit.stopped = epoch + 1
            progress.info(f"Early stop: no better validation loss in the {job.patience} "
                          f"epochs since epoch {fit.best['epoch']} ({N.patience})")
            break
    seconds = time.monotonic() - began
    progress.info(f"Speed: {stepped * global_batch / max(seconds, 1e-9):.0f} samples/s "
                  f"({stepped} steps of {global_batch} samples in {seconds:.1f} s on {size} "
                  "workers, validation included)")
    if fit.diverged:
        raise ParameterError(
            f"the training loss stopped being a number (NaN or infinite) at "
            f"{fit.diverged}: the network diverged and no model was written. Lower "
            f"{N.learning_rate} (it is {job.learning_rate:g}; the default is "
            f"{defaults(TrainModelJob)['learning_rate']:g})", N.learning_rate)
    if fit.cancelled:
        if fit.best["weights"] is None:
            raise CancelledError()
        progress.info(f"Cancelled: keeping the best model so far (epoch {fit.best['epoch']})")
    if fit.best["weights"] is None:             # no epoch finished (cannot happen)
        fit.best["weights"] = averaged()
    return fit


# --- one worker's process --------------------------------------------------------------

class WorkerLines(Progress):
    """The progress of a worker's training process: JSON lines on stdout (the first
    worker's reach the client); "cancel" on stdin cancels."""

    def __init__(self, rank: int) -> None:
        self.rank = rank
        self.flag = threading.Event()
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self):
        for line in sys.stdin:
            if line.strip() == "cancel":
                self.flag.set()
        # stdin closed: the Dask task that started this process is gone (its worker was
        # killed, the cluster stopped). Its peers fail at the next all-reduce; this
        # process must not train on, or spin, for ever
        os._exit(3)

    def _say(self, **msg):
        if self.rank == 0:
            print(json.dumps(msg), flush=True)

    def info(self, message: str) -> None:
        self._say(info=message)

    def set(self, fraction: float) -> None:
        self._say(progress=fraction)

    def cancelled(self) -> bool:
        return self.flag.is_set()


def free_port() -> int:
    """A free TCP port of this machine (for a worker's TensorFlow server)."""
    import socket
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def run_task(job_dict: Dict[str, Any], cluster: List[str], rank: int,
             token: str) -> Dict[str, Any]:
    """Dask task: worker `rank` of the training `token`, in a fresh process (TensorFlow's
    distribution is set once per process, before anything else). The first worker's
    lines go to the client through a Dask queue, its model files come back as bytes."""
    import subprocess

    from distributed import Event, Queue
    tmp = tempfile.mkdtemp(prefix="rsdl-train-")
    proc = None
    try:
        job = dict(job_dict, output_model=os.path.join(tmp, "model"),
                   output_report=os.path.join(tmp, "report.html")
                   if job_dict.get("output_report") else None,
                   distribution="workers", scheduler="")
        with open(os.path.join(tmp, "job.json"), "w", encoding="utf-8") as fh:
            json.dump(job, fh)
        # this worker's path, absolute (the process runs in `tmp`), the plugin first
        plugin = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        path = [plugin] + [os.path.abspath(p) for p in
                           os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path), TF_CONFIG=json.dumps(
            {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": rank}}))
        with open(os.path.join(tmp, "stderr.log"), "w", encoding="utf-8") as err:
            proc = subprocess.Popen([sys.executable, "-m", "rsdl_qgis.models.train_worker",
                                     os.path.join(tmp, "job.json")], env=env, cwd=tmp,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, text=True)
            queue = Queue(token) if rank == 0 else None
            cancel = Event(f"{token}-cancel")
            last = None
            assert proc.stdout is not None and proc.stdin is not None
            for line in proc.stdout:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if "result" in msg or "error" in msg:
                    last = msg
                elif queue is not None:
                    queue.put(msg)
                if rank == 0 and cancel.is_set() and not proc.stdin.closed:
                    proc.stdin.write("cancel\n")
                    proc.stdin.flush()
            proc.wait()
        if last is None or "error" in last:
            error = (last or {}).get("error")
            if error:
                kinds = {c.__name__: c for c in _error_kinds()}
                raise kinds.get(error["kind"], RsdlError)(error["message"], error["param"])
            with open(os.path.join(tmp, "stderr.log"), encoding="utf-8") as fh:
                tail = fh.read()[-1500:]
            raise RuntimeError(f"the training process of worker {rank} ended with code "
                               f"{proc.returncode}: {tail}")
        if rank:
            return {"result": last["result"]}
        files: Dict[str, Optional[bytes]] = {}
        model = os.path.join(tmp, "model")
        for root, dirs, names in os.walk(model):
            for d in dirs:                  # a SavedModel's assets/ may be empty
                files[os.path.relpath(os.path.join(root, d), model)] = None
            for n in names:
                p = os.path.join(root, n)
                with open(p, "rb") as fh:
                    files[os.path.relpath(p, model)] = fh.read()
        report = None
        if job["output_report"] and os.path.exists(job["output_report"]):
            with open(job["output_report"], "rb") as fh:
                report = fh.read()
        return {"result": last["result"], "files": files, "report": report}
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def _error_kinds():
    from .. import errors
    return [v for v in vars(errors).values()
            if isinstance(v, type) and issubclass(v, RsdlError)]


# --- the client --------------------------------------------------------------------------

def _absolute(job):
    d = job.to_dict()
    for key in ("train_sources", "valid_sources"):
        d[key] = [dict(s, path=os.path.abspath(s["path"])) for s in d[key]]
    for key in ("train_labels", "valid_labels", "model"):
        if d.get(key) and os.path.exists(d[key]):
            d[key] = os.path.abspath(d[key])
    return d


def train_on_workers(job: TrainModelJob, progress: ProgressLike, output: Any,
                     start: float) -> Dict[str, Any]:
    """DISTRIBUTION workers: one training process per Dask worker of SCHEDULER; the first
    worker's model files written at OUTPUT (an AtomicFolder) and its report at
    OUTPUT_REPORT."""
    if not job.scheduler:
        raise ParameterError(f"{N.distribution} workers trains on the workers of a Dask "
                             f"cluster: give its address as {N.scheduler} (docs/cluster.md)",
                             N.scheduler)
    from distributed import Event, Queue

    from ..engine.cluster import connect, split_address
    from ..engine.output import io_error
    client = connect(job.scheduler, N.scheduler)
    try:
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        n = job.workers or len(workers)
        if n > len(workers):
            raise ParameterError(f"{N.workers} is {n} but the Dask cluster at "
                                 f"'{job.scheduler}' has {len(workers)} worker(s): lower "
                                 f"{N.workers} (0: all)", N.workers)
        chosen = workers[:n]
        ports = client.run(free_port, workers=chosen)
        cluster = [f"{split_address(w)[1]}:{ports[w]}" for w in chosen]
        progress.info(f"{N.distribution}: {n} worker(s) of the Dask cluster at "
                      f"'{job.scheduler}', MultiWorkerMirroredStrategy: "
                      f"{', '.join(cluster)}")
        # TensorFlow's gRPC server binds every interface and has no authentication,
        # whatever the address in TF_CONFIG: say so, each time
        progress.info("Warning: for the training's duration, TensorFlow's server on each "
                      "worker listens on the port above on every interface of its machine, "
                      "unauthenticated (TensorFlow has no setting for it): train on workers "
                      "only where the machines' network is trusted (docs/training.md)")
        token = f"rsdl-train-{uuid.uuid4().hex[:8]}"
        queue, cancel = Queue(token, client=client), Event(f"{token}-cancel", client=client)
        job_dict = _absolute(job)
        futures = [client.submit(run_task, job_dict, cluster, rank, token, workers=[w],
                                 allow_other_workers=False, pure=False,
                                 key=f"{token}-{rank}")
                   for rank, w in enumerate(chosen)]
        while not all(f.done() for f in futures):
            for msg in _drain(queue):
                if "info" in msg:
                    progress.info(msg["info"])
                elif "progress" in msg:
                    progress.set(msg["progress"])
            if progress.cancelled():
                cancel.set()
            failed = [f for f in futures if f.status == "error"]
            if failed:
                failed[0].result()          # the worker's error, one line when ours
        for msg in _drain(queue):
            if "info" in msg:
                progress.info(msg["info"])
        results = [f.result() for f in futures]
    finally:
        client.close()
    chief = results[0]
    try:
        write_files(chief["files"], output.tmp)
        output.commit()
        if job.output_report and chief.get("report"):
            from ..engine.output import AtomicFile
            with AtomicFile(job.output_report, N.output_report) as out:
                with open(out.tmp, "wb") as fh:
                    fh.write(chief["report"])
    except OSError as exc:
        raise io_error(job.output_model, exc, N.output_model) from exc
    result = dict(chief["result"], SECONDS=time.monotonic() - start)
    result.update({N.output_model: job.output_model, N.workers: n})
    if job.output_report:
        result[N.output_report] = job.output_report
    progress.set(1.0)
    return result


def write_files(files: Dict[str, Optional[bytes]], folder: str) -> None:
    """Write the first worker's model files ({relative path: bytes, or None for a
    folder}) under `folder`, refusing any name that would land outside it."""
    top = os.path.realpath(folder)
    for rel, data in sorted(files.items()):
        path = os.path.realpath(os.path.join(top, rel))
        if os.path.commonpath([path, top]) != top or path == top:
            raise RsdlError(f"the first worker sent a model file named '{rel}', outside "
                            "the model folder: the model was not written", N.output_model)
        if data is None:
            os.makedirs(path, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)


def _drain(queue):
    """The messages waiting in a Dask queue (waits up to half a second for the first)."""
    out = []
    try:
        out.append(queue.get(timeout=0.5))
        while True:
            out.append(queue.get(timeout=0.01))
    except Exception:            # the queue's timeout: nothing more now  # noqa: BLE001
        pass
    return out

