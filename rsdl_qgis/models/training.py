"""Training networks on patches images, and exporting them for serving.

The Python API for model authors:

    from rsdl_qgis.models.training import TrainModelJob, TrainSource, train_model
    res = train_model(TrainModelJob(
        train_sources=[TrainSource("patches.tif", "x1")], train_labels="labels.tif",
        valid_sources=[TrainSource("valid_patches.tif", "x1")], valid_labels="valid_labels.tif",
        output_model="model_dir", architecture="fcn", epochs=10))

Patches are streamed from disk in chunks (training sets larger than memory work);
normalisation statistics computed from the training patches are built into the model;
the exported SavedModel carries ``rsdl_metadata.json`` (input names, receptive and
expression fields, mode, class codes and names), so rsdl:modelserve needs no field sizes.
"""
import contextlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..deps import require_tensorflow
from ..engine.choices import DISTRIBUTIONS, SCHEDULES
from ..engine.declare import defaults, names, numbered, param_name
from ..engine.jobs import PatchesJob
from ..engine.model import ProgressLike
from ..engine.output import AtomicFolder, io_error
from ..engine.progress import Progress
from ..engine.raster import open_raster
from ..engine.vectors import ClassCodes
from ..errors import CancelledError, GridError, ModelError, ParameterError, RsdlIOError, check_choice
from . import zoo
from .jobs import TrainModelJob, TrainSource  # noqa: F401 (the Python API's)
from .metadata import METADATA, model_folder, read_metadata

#: the parameters errors name (engine/declare.py)
N, PATCHES = names(TrainModelJob), names(PatchesJob)
KERAS_FILE = "model.keras"
#: what rsdl:trainmodel writes in a model folder (a SavedModel, the Keras model, metadata)
OWN_FILES = {"saved_model.pb", "variables", "assets", "fingerprint.pb", KERAS_FILE, METADATA}
CHUNK = 1024


class Patches:
    """A patches image (n patches of s x s stacked in rows), read in chunks."""

    def __init__(self, path: str, param: str, role: str = "patches") -> None:
        self.path, self.param = str(path), param
        self.ds = open_raster(path, param, role)
        self.size = self.ds.RasterXSize
        if self.ds.RasterYSize % self.size:
            raise GridError(f"'{path}' is not a patches image: its height "
                            f"({self.ds.RasterYSize}) is not a multiple of its width "
                            f"({self.size})", param)
        self.count = self.ds.RasterYSize // self.size
        self.bands = self.ds.RasterCount
        self.nodata = self.ds.GetRasterBand(1).GetNoDataValue()

    def read(self, i0: int, i1: int, dtype: Any = np.float32) -> np.ndarray:
        s = self.size
        a = self.ds.ReadAsArray(0, i0 * s, s, (i1 - i0) * s)
        a = a.reshape(self.bands, i1 - i0, s, s) if self.bands > 1 or a.ndim == 3 else \
            a.reshape(1, i1 - i0, s, s)
        return np.ascontiguousarray(a.transpose(1, 2, 3, 0), dtype=dtype)

    def stats(self) -> Tuple[np.ndarray, np.ndarray]:
        """Per-band mean and variance over all patches (streamed)."""
        n, total, total2 = 0, np.zeros(self.bands), np.zeros(self.bands)
        for i0 in range(0, self.count, CHUNK):
            a = self.read(i0, min(self.count, i0 + CHUNK), np.float64).reshape(-1, self.bands)
            n += len(a)
            total += a.sum(axis=0)
            total2 += (a ** 2).sum(axis=0)
        mean = total / n
        return mean, np.maximum(total2 / n - mean ** 2, 1e-12)


class Dataset:
    """Sources and labels of one set, checked against each other."""

    def __init__(self, sources: Sequence[TrainSource], labels: str, label_param: str,
                 source_params: Sequence[str], label_nodata: Optional[int] = None) -> None:
        self.sources = [Patches(s.path, p) for s, p in zip(sources, source_params)]
        self.names = [s.name for s in sources]
        self.labels = Patches(labels, label_param, "labels")
        if self.labels.bands != 1:
            raise GridError(f"'{os.path.basename(str(labels))}' has {self.labels.bands} bands; "
                            "labels have one band of class values: give the "
                            f"{PATCHES.output_labels} raster of Patches extraction", label_param)
        self.dense = self.labels.size > 1
        self.label_nodata = label_nodata if label_nodata is not None else self.labels.nodata
        counts = [s.count for s in self.sources]
        if len(set(counts + [self.labels.count])) != 1:
            detail = ", ".join(f"{p}: {c}" for p, c in zip(source_params, counts))
            raise GridError(f"the patches images and the labels disagree on the number of "
                            f"samples ({detail}, {label_param}: {self.labels.count}); give "
                            "files written together by one Patches extraction run", label_param)
        self.count = counts[0]

    def label_values(self) -> np.ndarray:
        out = []
        for i0 in range(0, self.count, CHUNK):
            raw = self.labels.read(i0, min(self.count, i0 + CHUNK), np.float64).ravel()
            if not np.all(raw == np.round(raw)):
                raise GridError(f"'{os.path.basename(self.labels.path)}' holds values that are "
                                "not whole numbers: labels are class codes. Give the "
                                f"{PATCHES.output_labels} raster of Patches extraction",
                                self.labels.param)
            v = raw.astype(np.int64)
            if self.label_nodata is not None:
                v = v[v != int(self.label_nodata)]
            out.append(v)
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def batches(self, batch: int, codes: np.ndarray, weights: np.ndarray, rng: Any = None,
                augment: bool = False, shard: Tuple[int, int] = (0, 1)) -> Iterator[Any]:
        """Yield (inputs dict, label indices, sample weights); shuffled when rng is given.
        `shard` (k, n): the k-th of n workers' share, the k-th n-th of every block of
        samples (each worker reads only its share)."""
        k, n = shard
        windows = [(i0 + (i1 - i0) * k // n, i0 + (i1 - i0) * (k + 1) // n)
                   for i0, i1 in ((i, min(self.count, i + CHUNK))
                                  for i in range(0, self.count, CHUNK))]
        windows = [w for w in windows if w[1] > w[0]]
        if rng is not None:
            rng.shuffle(windows)
        carry = None
        for i0, i1 in windows:
            xs = [s.read(i0, i1) for s in self.sources]
            y = self.labels.read(i0, i1, np.int64)[..., 0]
            if not self.dense:
                y = y[:, 0, 0]
            order = rng.permutation(i1 - i0) if rng is not None else np.arange(i1 - i0)
            xs, y = [x[order] for x in xs], y[order]
            if carry is not None:
                xs = [np.concatenate([c, x]) for c, x in zip(carry[0], xs)]
                y = np.concatenate([carry[1], y])
                carry = None
            n_full = len(y) // batch * batch
            for b0 in range(0, n_full, batch):
                yield self._batch([x[b0:b0 + batch] for x in xs], y[b0:b0 + batch], codes,
                                  weights, rng if augment else None)
            if n_full < len(y):
                carry = ([x[n_full:] for x in xs], y[n_full:])
        if carry is not None and len(carry[1]):
            yield self._batch(carry[0], carry[1], codes, weights, rng if augment else None)

    def _batch(self, xs, y, codes, weights, rng):
        valid = np.isin(y, codes)
        idx = np.searchsorted(codes, np.where(valid, y, codes[0]))
        w = np.where(valid, weights[idx], 0.0).astype(np.float32)
        if rng is not None:
            xs, idx, w = augment(xs, idx, w, rng, self.dense)
        return {n: x for n, x in zip(self.names, xs)}, idx.astype(np.int32), w


def augment(xs: List[np.ndarray], y: np.ndarray, w: np.ndarray, rng: Any,
            dense: bool) -> Tuple[List[np.ndarray], np.ndarray, np.ndarray]:
    """Random flips and 90-degree rotations, one of the 8 per sample, on every source
    (and on dense labels) alike."""
    k = rng.integers(0, 8, len(y))
    xs = [x.copy() for x in xs]
    y, w = y.copy(), w.copy()
    for t in range(1, 8):
        sel = np.flatnonzero(k == t)
        if not len(sel):
            continue
        rot, flip = t % 4, t >= 4

        def tf_(a, rot=rot, flip=flip):
            a = np.rot90(a, rot, axes=(1, 2))
            return a[:, :, ::-1] if flip else a
        for x in xs:
            if x.shape[1] > 1:
                x[sel] = tf_(x[sel])
        if dense:
            y[sel] = tf_(y[sel])
            w[sel] = tf_(w[sel])
    return xs, y, w


def class_names(labels_path: str, codes: Any) -> List[str]:
    """Names from the lookup table beside the labels raster, else the codes."""
    lp = os.path.splitext(str(labels_path))[0] + ".classes.csv"
    if os.path.exists(lp):
        table = ClassCodes.read(lp)
        return [table.name_of(c) for c in codes]
    return [str(int(c)) for c in codes]


def load_keras(kfile: str, keras: Any, trusted: bool = False) -> Any:
    """A .keras file of MODEL, its configuration checked first, loaded in safe mode unless
    the user trusts it."""
    from .safety import check_keras_file
    check_keras_file(kfile, N.model, trusted)
    try:
        return keras.saving.load_model(kfile, safe_mode=not trusted, compile=False)
    except Exception as exc:
        raise ModelError(f"cannot load '{kfile}': {str(exc).splitlines()[0]}", N.model) from exc


def core_of(model: Any, meta: Optional[Dict[str, Any]]) -> Any:
    """The network a model serves: the fcn architecture wraps it in a layer 'core' (the
    training model adds the patch-level head)."""
    return model.get_layer("core") if meta and meta.get("architecture") == "fcn" else model


def _load_for_training(job, keras):
    """(train model, core, serving info, metadata) of MODEL for fine-tuning."""
    path = model_folder(job.model)
    meta = read_metadata(path)
    kfile = os.path.join(path, KERAS_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(kfile) or not kfile.endswith(".keras"):
        raise ModelError(f"'{job.model}' cannot be trained further: give a .keras file or a "
                         "model folder written by rsdl:trainmodel (OTBTF's TF1 graphs can "
                         "only be served)", N.model)
    model = load_keras(kfile, keras, job.trust_model)
    if not job.restore:
        model = keras.models.clone_model(model)
    core = core_of(model, meta)
    serving = dict(meta["serving"]) if meta else None
    return model, core, serving, meta


def train_model(job: TrainModelJob, progress: Optional[ProgressLike] = None,
                worker: Optional[Tuple[Any, int, int]] = None) -> Dict[str, Any]:
    """Train a built-in or given model on patches images and export it for serving.
    `worker`: (strategy, rank, size) in a process of a distributed training
    (models/distributed.py); rank 0 writes the model."""
    progress = progress or Progress()
    start = time.monotonic()
    if not job.train_sources:
        first = numbered(N.train_sources, 0)
        raise GridError(f"give at least {first}", first)
    if not job.model:
        check_choice(job.architecture, list(zoo.ARCHITECTURES), N.architecture, "architecture")
    if job.epochs < 1:
        raise ParameterError(f"{N.epochs} must be at least 1", N.epochs)
    if job.batch_size < 1:
        raise ParameterError(f"{N.batch_size} must be at least 1", N.batch_size)
    check_choice(job.schedule, SCHEDULES, N.schedule, "learning-rate schedule")
    if job.patience < 0:
        raise ParameterError(f"{N.patience} must be 0 (off) or more epochs", N.patience)
    check_choice(job.distribution, DISTRIBUTIONS, N.distribution, "distribution")
    # refused now, before any training, when the folder holds files we did not write
    output = AtomicFolder(job.output_model, N.output_model, owned=foreign_files,
                          what="the model")
    try:
        if worker is None and job.distribution == "workers":
            from .distributed import train_on_workers
            return train_on_workers(job, progress, output, start)
        if worker is None and job.distribution == "gpus":
            from .distributed import local_strategy
            strategy = local_strategy(progress)
            worker = (strategy, 0, 1) if strategy is not None else None
        return _train(job, progress, start, output, worker)
    finally:
        output.abort()        # nothing left when the model was not written


def foreign_files(path: str) -> List[str]:
    """What a model folder holds beyond what rsdl:trainmodel writes (everything, when it
    is not a model written by rsdl:trainmodel)."""
    names = sorted(os.listdir(path))
    try:
        with open(os.path.join(path, METADATA), encoding="utf-8") as fh:
            ours = json.load(fh).get("format") == "rsdl-model"
    except (OSError, ValueError, AttributeError):
        ours = False
    return [n for n in names if n not in OWN_FILES] if ours else names


def _train(job, progress, start, output, worker=None):
    """The steps of a training: data, classes, network, fit, validation, export."""
    train, valid = _datasets(job)
    classes = _classes(job, train, progress)
    tf = require_tensorflow()
    import keras
    keras.utils.set_random_seed(job.seed)
    steps = -(-train.count // job.batch_size)
    strategy, rank, size = worker or (None, 0, 1)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model, core, serving, arch, classes = _network(job, keras, train, classes, progress)
        optimizer = _optimizer(job, steps, keras)
        if size == 1:
            _compile(model, optimizer)
        else:                   # its own loop (models/distributed.py): no compile
            optimizer.build(model.trainable_variables)
    plain = None
    if strategy is not None:
        # the same network outside the strategy: it validates, and the files are written
        # from it (no distributed variables in them)
        plain, core, serving, arch, classes = _network(job, keras, train, classes, Progress())
    if size > 1:
        from .distributed import fit_on_workers
        fit = fit_on_workers(job, model, plain, optimizer, train, valid, classes, tf,
                             progress, strategy, rank, size, _Fit.start(valid is not None))
        trained = fit.best["weights"]
    else:
        fit = _fit(job, model, train, valid, classes, tf, keras, progress)
        trained = model.get_weights()
    if strategy is not None:
        if rank:
            return {"RANK": rank}
        if plain is None:
            raise RuntimeError("a strategy's training without its plain model")
        model = plain
        model.set_weights(trained)
        _compile(model, _optimizer(job, steps, keras))
    result = {N.output_model: job.output_model, "EPOCHS": len(fit.history) - 1,
              "BEST_EPOCH": fit.best["epoch"], "CANCELLED": fit.cancelled}
    matrix, metrics = _validate(model, valid, classes, progress)
    tips = advice(fit, job)
    for tip in tips:
        progress.info(f"Advice: {tip}")
    if metrics is not None:
        result.update(OA=metrics["OA"], KAPPA=metrics["KAPPA"], F1_MEAN=metrics["F1_MEAN"])
    meta = {"format": "rsdl-model", "version": 1, "architecture": arch,
            "inputs": [{"name": n, "rfield": int(rf), "bands": s.bands}
                       for n, rf, s in zip(train.names, serving["rfields"], train.sources)],
            "serving": serving, "efield": int(serving["efield"]), "scale": 1.0,
            "fully_conv": bool(serving["fully_conv"]), "outputs": ["class", "probabilities"],
            "default_outputs": ["class"],
            "classes": {"codes": [int(c) for c in classes.codes], "names": list(classes.names)},
            "best_epoch": fit.best["epoch"], "best_" + fit.monitor: fit.best["loss"],
            "history": fit.history, "metrics": metrics,
            "normalisation": "built into the model",
            "trained_on": [os.path.basename(s.path) for s in job.train_sources]}
    export(output, model, core, serving, train.names, train.sources, classes.codes, meta, tf,
           keras)
    if job.output_report:
        _report(job, fit.history, matrix, classes.names, metrics, meta, model,
                (train.count, valid.count if valid is not None else 0), tips)
        result[N.output_report] = job.output_report
    result["SECONDS"] = time.monotonic() - start
    progress.set(1.0)
    return result


def _optimizer(job, steps, keras):
    return keras.optimizers.Adam(_rate(job, steps, keras), use_ema=job.average,
                                 ema_momentum=ema_momentum(steps))


def _compile(model, optimizer):
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  weighted_metrics=["accuracy"])


EMA_MOMENTUM = (0.9, 0.995)   # the weights' moving average spans half an epoch, within
#                               10 to 200 steps: the average of the last steps' weights
#                               (Polyak averaging), not one batch's. Keras starts it from
#                               the initial weights, so it must forget them within an epoch


def ema_momentum(steps_per_epoch: int) -> float:
    """The moving average's momentum for epochs of this many steps."""
    low, high = EMA_MOMENTUM
    return min(high, max(low, 1.0 - 2.0 / max(1, steps_per_epoch)))


def advice(fit: Any, job: TrainModelJob) -> List[str]:
    """What the curves say, in plain words, with what to change (the dialog's labels)."""
    epochs = [h for h in fit.history if h.get("epoch", 0) > 0]
    if not epochs:
        return []
    tips = []
    val = [h["val_accuracy"] for h in epochs if "val_accuracy" in h]
    last = epochs[-1]
    if not val:
        return ["there were no validation patches, so the model of the lowest training loss "
                "was kept and nothing measures how it does on new places: give validation "
                "patches and labels (from other polygons)"]
    swing = max((a - b for a, b in zip(val, val[1:])), default=0.0)
    if swing > 0.10:
        tips.append(f"validation accuracy fell by up to {100 * swing:.0f} points from one "
                    "epoch to the next. The validation patches may come from too few "
                    "polygons (draw them from more), or the steps are too large: lower the "
                    "Learning rate (for instance to a third) or raise the Batch size")
    gap = last.get("accuracy", 0.0) - last.get("val_accuracy", 0.0)
    if gap > 0.15:
        tips.append(f"at the last epoch the network was right on {100 * last['accuracy']:.0f} % "
                    f"of the training patches but {100 * last['val_accuracy']:.0f} % of the "
                    "validation ones: it learns the training polygons more than the classes. "
                    "Add training polygons in more places, keep Augment on, or lower Patience "
                    "so that training stops sooner (the best epoch is kept either way)")
    if fit.stopped:
        tips.append(f"training stopped at epoch {fit.stopped} of {job.epochs}: the validation "
                    f"loss had not improved for {job.patience} epochs, so the model of epoch "
                    f"{fit.best['epoch']} is kept. More epochs would not have helped")
    elif not fit.cancelled and fit.best["epoch"] == len(epochs) and len(epochs) > 1:
        tips.append("the best epoch was the last one: the network was still improving; more "
                    "Epochs may give a better model")
    if max(val) < 0.6:
        tips.append(f"the best validation accuracy is {100 * max(val):.0f} %: check that the "
                    "labels and images match (same place, same classes), that the patch size "
                    "shows enough of each class, and that the classes can be told apart at "
                    "this resolution")
    return tips


def _rate(job, steps, keras):
    """Adam's learning rate: constant, or a cosine decay from LEARNING_RATE to 1 % of it
    over the epochs asked (Loshchilov and Hutter 2017), so that the last epochs take
    small steps and the validation curve settles instead of swinging."""
    if job.schedule == "constant":
        return job.learning_rate
    return keras.optimizers.schedules.CosineDecay(job.learning_rate, max(1, steps * job.epochs),
                                                  alpha=0.01)


@dataclass
class _Classes:
    """The classes a network learns: codes (sorted), names, and the loss weights."""
    codes: np.ndarray
    names: List[str]
    weights: np.ndarray
    values: np.ndarray           # every training label, for weights of a given class list


@dataclass
class _Fit:
    history: list
    best: dict
    cancelled: bool
    monitor: str
    stopped: Optional[int] = None       # the epoch early stopping ended training after
    diverged: Optional[str] = None      # where the loss stopped being a number

    @classmethod
    def start(cls, validated):
        """The record of a fit that has not begun (monitoring val_loss when `validated`)."""
        return cls([], {"loss": np.inf, "weights": None, "epoch": None}, False,
                   "val_loss" if validated else "loss")


def _datasets(job):
    """The training set and the validation set (or None), checked against each other."""
    n_src = len(job.train_sources)
    for i, s in enumerate(job.train_sources):
        s.name = s.name or f"x{i + 1}"
    train = Dataset(job.train_sources, job.train_labels, N.train_labels,
                    [numbered(N.train_sources, i) for i in range(n_src)], job.label_nodata)
    if not (job.valid_labels or job.valid_sources):
        return train, None
    if len(job.valid_sources) != n_src or not job.valid_labels:
        raise GridError(f"give {numbered(N.valid_sources, 0)}.."
                        f"{numbered(N.valid_sources, n_src - 1)} and {N.valid_labels} "
                        "together, like the training set", N.valid_labels)
    vs = [TrainSource(v.path, t.name) for v, t in zip(job.valid_sources, job.train_sources)]
    valid = Dataset(vs, job.valid_labels, N.valid_labels,
                    [numbered(N.valid_sources, i) for i in range(n_src)], job.label_nodata)
    for a, b, i in zip(train.sources, valid.sources, range(n_src)):
        if (a.size, a.bands) != (b.size, b.bands):
            raise GridError(f"{numbered(N.valid_sources, i)} has {b.bands} band(s) of "
                            f"{b.size} px patches; {numbered(N.train_sources, i)} has "
                            f"{a.bands} of {a.size}", numbered(N.valid_sources, i))
    return train, valid


def _classes(job, train, progress):
    """The classes of the training labels, refused when they do not look like classes."""
    values = train.label_values()
    codes, counts = np.unique(values, return_counts=True)
    if len(codes) > 255 or (train.count >= 20 and len(codes) > train.count // 2):
        raise GridError(f"the training labels hold {len(codes)} different values for "
                        f"{train.count} samples: they do not look like class labels. Give the "
                        f"{PATCHES.output_labels} raster of Patches extraction",
                        N.train_labels)
    if len(codes) < 2:
        raise GridError(f"the training labels hold {len(codes)} class(es); at least two are "
                        "needed", N.train_labels)
    names = class_names(job.train_labels, codes)
    weights = (len(values) / (len(codes) * counts)) if job.class_weights else np.ones(len(codes))
    progress.info(f"{train.count} training samples, {len(codes)} classes: "
                  + ", ".join(f"{n} ({c})" for n, c in zip(names, counts.tolist())))
    return _Classes(codes, list(names), weights, values)


def _network(job, keras, train, classes, progress):
    """The network to train: MODEL (fine-tuned or from scratch) or a built-in one.
    Returns (model, core, serving, architecture, classes): a model trained before keeps
    its own class list."""
    if not job.model:
        stats = [s.stats() for s in train.sources]
        inputs = [(n, s.size, s.bands) for n, s in zip(train.names, train.sources)]
        model, core, serving = zoo.build(job.architecture, keras, inputs, len(classes.codes),
                                         stats, job.seed,
                                         [numbered(N.train_sources, i)
                                          for i in range(max(2, len(inputs)))])
        progress.info(f"Built a {job.architecture} network: {model.count_params()} parameters")
        return model, core, serving, job.architecture, classes
    model, core, serving, meta_in = _load_for_training(job, keras)
    model_inputs = [t.name.split(":")[0] for t in model.inputs]
    for n in train.names:
        if n not in model_inputs:
            raise ModelError(f"the model has no input named '{n}'; its inputs are: "
                             f"{', '.join(model_inputs)}",
                             numbered(N.train_sources, 0, param_name(TrainSource, "name")))
    k_out = int(model.outputs[0].shape[-1])
    if k_out < len(classes.codes):
        raise ModelError(f"the labels hold {len(classes.codes)} classes but the model outputs "
                         f"{k_out}; train a new model (no {N.model}) or use fewer classes",
                         N.train_labels)
    if meta_in:
        old = meta_in["classes"]["codes"]
        if not set(classes.codes.tolist()) <= set(old):
            raise ModelError(f"the labels hold classes "
                             f"{sorted(set(classes.codes.tolist()) - set(old))} the model was "
                             f"not trained on (its classes: {old})", N.train_labels)
        codes, values = np.array(old), classes.values
        weights = np.ones(len(codes)) if not job.class_weights else np.array(
            [len(values) / (len(codes) * max(1, int(np.sum(values == c)))) for c in codes])
        classes = _Classes(codes, list(meta_in["classes"]["names"]), weights, values)
    if serving is None:
        serving = {"rfields": [s.size for s in train.sources], "efield": 1, "fully_conv": False}
    progress.info(f"Fine-tuning '{job.model}'" if job.restore else
                  f"Training '{job.model}' from scratch")
    return model, core, serving, meta_in.get("architecture") if meta_in else "custom", classes


def _fit(job, model, train, valid, classes, tf, keras, progress):
    """Train for EPOCHS, keeping the weights of the best epoch (validation loss, else
    training loss); a cancel keeps the best epoch so far."""
    rng = np.random.default_rng(job.seed)
    codes, weights = classes.codes, classes.weights

    def dataset(ds, shuffle):
        sig_x = {n: tf.TensorSpec((None, s.size, s.size, s.bands), tf.float32)
                 for n, s in zip(ds.names, ds.sources)}
        lab = (None, ds.labels.size, ds.labels.size) if ds.dense else (None,)
        sig = (sig_x, tf.TensorSpec(lab, tf.int32), tf.TensorSpec(lab, tf.float32))
        gen = (lambda: ds.batches(job.batch_size, codes, weights, rng, job.augment)) if shuffle \
            else (lambda: ds.batches(job.batch_size, codes, weights))
        return tf.data.Dataset.from_generator(gen, output_signature=sig).prefetch(2)

    steps = -(-train.count // job.batch_size)
    fit = _Fit.start(valid is not None)

    class Feedback(keras.callbacks.Callback):  # type: ignore[name-defined] # keras: imported
        def on_train_batch_end(self, batch, logs=None):
            progress.set(min(0.95, (len(fit.history) - 1 + (batch + 1) / steps)
                             / job.epochs * 0.95))
            loss = (logs or {}).get("loss")
            if loss is not None and not np.isfinite(float(loss)):
                fit.diverged = f"epoch {len(fit.history)}, batch {batch + 1}"
                self.model.stop_training = True
            if progress.cancelled():
                fit.cancelled = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            if fit.cancelled or fit.diverged:
                return
            if not all(np.isfinite(float(v)) for v in logs.values()):
                fit.diverged = f"the validation of epoch {epoch + 1}"
                self.model.stop_training = True
                return
            rec = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
            fit.history.append(rec)
            progress.info(f"epoch {epoch + 1}/{job.epochs}: " + ", ".join(
                f"{k} {v:.4f}" for k, v in rec.items() if k != "epoch"))
            if rec.get(fit.monitor, np.inf) < fit.best["loss"]:
                fit.best.update(loss=rec[fit.monitor], weights=self.model.get_weights(),
                                epoch=epoch + 1)
            elif (valid is not None and job.patience and epoch + 1 < job.epochs
                  and epoch + 1 - (fit.best["epoch"] or 0) >= job.patience):
                fit.stopped = epoch + 1
                self.model.stop_training = True
                progress.info(f"Early stop: no better validation loss in the {job.patience} "
                              f"epochs since epoch {fit.best['epoch']} ({N.patience})")

    began = time.monotonic()
    warnings.filterwarnings("ignore", message=".*ran out of data.*")
    if valid is not None:
        loss0, acc0 = model.evaluate(dataset(valid, False), verbose=0)
        fit.history.append({"epoch": 0, "val_loss": float(loss0), "val_accuracy": float(acc0)})
        progress.info(f"epoch 0 (before training): val_loss {loss0:.4f}, val_accuracy {acc0:.4f}")
    else:
        fit.history.append({"epoch": 0})
    # with averaging, validation and the kept weights are the average's (the swap comes
    # first, so Feedback records the averaged weights)
    swap = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if job.average else []
    model.fit(dataset(train, True).repeat(), steps_per_epoch=steps,
              validation_data=dataset(valid, False).repeat() if valid else None,
              validation_steps=-(-valid.count // job.batch_size) if valid else None,
              epochs=job.epochs, verbose=0, shuffle=False, callbacks=swap + [Feedback()])
    seconds = time.monotonic() - began
    done = (len(fit.history) - 1) * steps * job.batch_size
    progress.info(f"Speed: {done / max(seconds, 1e-9):.0f} samples/s ({len(fit.history) - 1} "
                  f"epoch(s) of {steps} steps of {job.batch_size} samples in {seconds:.1f} s, "
                  "validation included)")
    if fit.diverged:
        raise ParameterError(
            f"the training loss stopped being a number (NaN or infinite) at "
            f"{fit.diverged}: the network diverged and no model was written. Lower "
            f"{N.learning_rate} (it is {job.learning_rate:g}; the default is "
            f"{defaults(TrainModelJob)['learning_rate']:g}), or check the patches for NaN or "
            "huge values", N.learning_rate)
    if fit.cancelled:
        if fit.best["weights"] is None:
            raise CancelledError()
        progress.info(f"Cancelled: keeping the best model so far (epoch {fit.best['epoch']})")
    if fit.best["weights"] is not None:
        model.set_weights(fit.best["weights"])
    return fit


def _validate(model, valid, classes, progress):
    """Confusion matrix and scores of the trained model on the validation set."""
    if valid is None:
        return None, None
    from ..engine.metrics import confusion, scores
    ref, pred = [], []
    for x, y, w in valid.batches(256, classes.codes, classes.weights):
        p = model.predict_on_batch(x).argmax(axis=-1)
        keep = w > 0
        ref.append(y[keep])
        pred.append(p[keep])
    matrix, _ = confusion(np.concatenate(ref), np.concatenate(pred),
                          np.arange(len(classes.codes)))
    metrics = scores(matrix)
    progress.info(f"Validation: OA {100 * metrics['OA']:.2f} %, kappa {metrics['KAPPA']:.4f}, "
                  f"mean F1 {metrics['F1_MEAN']:.4f}")
    return matrix, metrics


def serving_function(core: Any, serving: Dict[str, Any], names: Sequence[str],
                     bands: Sequence[int], codes: Sequence[int], tf: Any) -> Any:
    """What a served model computes, and its input signature: the network's probabilities
    (cropped to the expression field) and the class codes. Shared by the SavedModel and
    the ONNX export."""
    table = tf.constant(np.asarray(codes, dtype=np.int32))
    crop = int(serving.get("crop", 0))
    efield = int(serving["efield"])
    spatial = (None, None) if serving["fully_conv"] else None
    sig = {}
    for n, b, rf in zip(names, bands, serving["rfields"]):
        sig[n] = tf.TensorSpec((None,) + (spatial or (rf, rf)) + (b,), tf.float32, name=n)

    def serve(inputs):
        p = core(inputs, training=False)
        if crop:
            p = p[:, crop:crop + efield, crop:crop + efield, :]
        return {"probabilities": p, "class": tf.gather(table, tf.argmax(p, axis=-1))}
    return serve, sig


def export(output: AtomicFolder, model: Any, core: Any, serving: Dict[str, Any], names: Sequence[str],
           sources: Sequence[Any], codes: Sequence[int], meta: Dict[str, Any], tf: Any,
           keras: Any) -> None:
    """SavedModel (signature inputs = source names; outputs class and probabilities),
    the Keras model for fine-tuning, and the metadata, written to the temporary folder of
    `output` (an AtomicFolder) and swapped in when complete."""
    tmp = output.tmp
    serve, sig = serving_function(core, serving, names, [s.bands for s in sources], codes, tf)
    try:
        archive = keras.export.ExportArchive()
        archive.track(core)
        archive.add_endpoint("serving_default", serve, input_signature=[sig])
        archive.write_out(tmp, verbose=False)
        model.save(os.path.join(tmp, KERAS_FILE))
        with open(os.path.join(tmp, METADATA), "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=1)
    except (RsdlIOError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise io_error(output.path, exc, N.output_model) from exc
    output.commit()


def _settings(job, meta, model, counts):
    """(label, value) rows: what was trained on, the network, every setting."""
    rows = []
    for i, s in enumerate(job.train_sources):
        inp = meta["inputs"][i]
        rows.append((f"Training patches, source {i + 1}",
                     f"{s.path} (input {inp['name']}, {inp['bands']} bands, receptive "
                     f"field {inp['rfield']} px)"))
    rows.append(("Training labels", f"{job.train_labels} ({counts[0]} patches)"))
    for i, s in enumerate(job.valid_sources):
        rows.append((f"Validation patches, source {i + 1}", s.path))
    rows.append(("Validation labels", f"{job.valid_labels} ({counts[1]} patches)"
                 if job.valid_labels else "none"))
    if job.model:
        network = f"{job.model} (" + ("fine-tuned from its weights)" if job.restore else
                                      "its architecture, trained from scratch)")
    else:
        network = f"built-in {meta['architecture']}"
    rows.append(("Network", network))
    layers = _layers(model)
    rows.append(("Layers", f"{len(layers)}: " + ", ".join(layers)))
    rows.append(("Parameters", f"{model.count_params():,}"))
    rows.append(("Classes", ", ".join(f"{c}: {n}" for c, n in zip(
        meta["classes"]["codes"], meta["classes"]["names"]))))
    rows += [("Epochs", f"{job.epochs} asked, {len(meta['history']) - 1} run, best "
              f"{meta['best_epoch']} (the model kept)"),
             ("Batch size", job.batch_size), ("Learning rate (Adam)", job.learning_rate),
             ("Learning-rate schedule", "cosine decay to 1 %" if job.schedule == "cosine"
              else "constant"),
             ("Early stop", f"after {job.patience} epochs without a better validation loss"
              if job.patience else "off"),
             ("Weights averaged", "yes (moving average over about half an epoch)"
              if job.average else "no"),
             ("Balance classes", job.class_weights), ("Augment (flips, rotations)", job.augment),
             ("Random seed", job.seed), ("Label value ignored",
                                      "none" if job.label_nodata is None else job.label_nodata),
             ("Serving", f"{'fully convolutional' if meta['fully_conv'] else 'patch-based'}, "
                         f"expression field {meta['efield']}")]
    return rows


def _layers(model):
    """The network's layers, nested models opened, as 'Conv2D 64 3x3' and the like."""
    out = []
    for layer in model.layers:
        kind = layer.__class__.__name__
        if hasattr(layer, "layers"):
            out += _layers(layer)
        elif kind != "InputLayer":
            conf = layer.get_config()
            if "filters" in conf:
                kind += f" {conf['filters']} {'x'.join(map(str, conf['kernel_size']))}"
            elif "units" in conf:
                kind += f" {conf['units']}"
            out.append(kind)
    return out


def _report(job, history, matrix, names, metrics, meta, model, counts, tips=()):
    from ..engine.report import html_report, settings_html, svg_curves
    curves = svg_curves(history, ["loss", "val_loss"], "Loss", log=True) + \
        svg_curves(history, ["accuracy", "val_accuracy"], "Accuracy")
    head = settings_html(_settings(job, meta, model, counts))
    notes = [f"Advice: {t}" for t in tips]
    if matrix is None:
        matrix = np.zeros((len(names), len(names)), dtype=np.int64)
        metrics = {"OA": 0.0, "KAPPA": 0.0, "F1_MEAN": 0.0, "SAMPLES": 0,
                   "PRECISION": [0.0] * len(names), "RECALL": [0.0] * len(names),
                   "F1": [0.0] * len(names)}
        notes.append("No validation set: no accuracy figures")
    html_report(job.output_report, "Training report", matrix, names, metrics, notes,
                param=N.output_report, extra_html=curves, head_html=head)
