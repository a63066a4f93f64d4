"""Features for classical classifiers: raw pixel values or a deep model's outputs.

Both go through the serving engine, so the features a classifier is trained on are
exactly those it sees when it classifies an image: at training time the engine computes
them on one-pixel tiles at the samples only (never over the whole image); at
classification time it streams the whole image through the same model.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..engine.declare import param_name
from ..engine.jobs import SERVE, SERVE_SOURCE, source_param
from ..engine.model import ProgressLike
from ..engine.progress import Progress
from ..engine.serve import ServeJob, ServePlan, ServeSource
from ..errors import CancelledError, GridError, ModelError
from .jobs import ClassifyJob

#: the parameters errors name (engine/declare.py): the image features are computed on
#: (SOURCE1 of a deep model), the mask of a classification, a model's first input name
IMAGE, MASK = param_name(ClassifyJob, "image"), param_name(ClassifyJob, "mask")
FIRST_NAME = source_param(0, "name")

MASK_INPUT = "__mask__"


class IdentityModel:
    """The 'model' of raw-pixel features: returns its input (receptive field 1)."""
    kind = "raw pixels"
    extra_outputs = False

    def __init__(self, bands: int) -> None:
        self.inputs = {"x": ((None, None, None, bands), "float32")}
        self.outputs = {"x": ((None, None, None, bands), "float32")}
        self.path = "(raw pixel values)"

    def resolve_input(self, name: str, param: str = FIRST_NAME) -> str:
        return "x"

    def resolve_output(self, name: str, param: str = SERVE.output_names) -> str:
        return "x"

    def input_dtype(self, name: str) -> str:
        return "float32"

    def describe(self) -> str:
        return "raw pixel values"

    def run(self, feeds: Dict[str, np.ndarray], names: Sequence[str]) -> List[np.ndarray]:
        return [feeds["x"]]


class ContextModel(IdentityModel):
    """Raw pixel values and their neighbourhood: per band, the mean and standard deviation
    over square windows of each size in `windows` (odd, in pixels), centred on the pixel.

    A pixel alone cannot tell a mixed pixel (a shore, a field edge, a town's roof and
    tree) from a pure one; its neighbourhood can. A random forest on raw values maps the
    land-water mix along shores as urban, the one heterogeneous class; with the windows'
    statistics it sees texture and surroundings (docs/classification.md). Like OTB's
    LocalStatisticExtraction, for any classifier.

    Fully convolutional with a receptive field of the largest window: the engine reads
    each block with its margin, mirrored past the image's edges. Nodata pixels (every
    band equal to `nodata`) are left out of the windows. Every output pixel is summed in
    the same order whatever the block, so a map does not depend on how it was cut.
    """
    kind = "raw pixels and neighbourhood statistics"
    #: NaN and infinite pixels are left out of the windows here (see ServePlan._finite)
    masks_nan = True

    def __init__(self, bands: int, windows: Sequence[int],
                 nodata: Optional[float] = None) -> None:
        super().__init__(bands)
        self.windows = [int(w) for w in windows]
        self.nodata = nodata
        n = bands * (1 + 2 * len(self.windows))
        self.outputs = {"x": ((None, None, None, n), "float32")}

    def describe(self) -> str:
        return ("raw pixel values with the mean and standard deviation of windows of "
                + ", ".join(f"{w} x {w}" for w in self.windows) + " pixels")

    def run(self, feeds: Dict[str, np.ndarray], names: Sequence[str]) -> List[np.ndarray]:
        x = np.asarray(feeds["x"], dtype=np.float64)
        m = max(self.windows) // 2
        h, w = x.shape[1] - 2 * m, x.shape[2] - 2 * m
        valid = None                      # nodata pixels are zeroed and not counted
        off = ~np.all(np.isfinite(x), axis=-1, keepdims=True)    # NaN: nodata, declared or not
        if self.nodata is not None:
            nan = isinstance(self.nodata, float) and np.isnan(self.nodata)
            off |= np.all(np.isnan(x) if nan else x == self.nodata, axis=-1, keepdims=True)
        if self.nodata is not None or off.any():
            valid = (~off).astype(np.float64)
            x = np.where(off, 0.0, x)
        squares = x * x
        parts = [x[:, m:m + h, m:m + w, :]]
        for size in self.windows:
            o = m - size // 2
            s1, s2 = _box(x, o, size, h, w), _box(squares, o, size, h, w)
            n = float(size * size) if valid is None else \
                np.maximum(_box(valid, o, size, h, w), 1.0)
            mean = s1 / n
            parts += [mean, np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))]
        return [np.concatenate(parts, axis=-1).astype(np.float32)]


def _box(a, o, size, h, w):
    """Sums of `a` (N, rows, cols, bands) over size x size windows whose top-left corners
    start at (o, o): rows first, then columns, each output pixel added in the same order."""
    rows = a[:, o:o + h, :, :].copy()
    for k in range(1, size):
        rows += a[:, o + k:o + k + h, :, :]
    out = rows[:, :, o:o + w, :].copy()
    for k in range(1, size):
        out += rows[:, :, o + k:o + k + w, :]
    return out


class FeatureModel:
    """A model's outputs as one (pixels, features) array; optionally a classifier on top.

    With a classifier, ``run`` returns [class code, confidence] per pixel; pixels where
    the mask input is 0 get `nodata` in both.
    """

    def __init__(self, inner: Any, inner_names: Sequence[str], bands: Sequence[int],
                 classifier: Any = None, nodata: float = 0, mask: bool = False) -> None:
        self.inner, self.inner_names, self.bands = inner, list(inner_names), list(bands)
        self.classifier, self.nodata, self.mask = classifier, nodata, mask
        self.pool: Any = None                 # a thread pool for large forests
        self.loaded: Any = None                 # the classifier file it comes from, if any
        self.recipe: Any = None                 # and its feature recipe (ml/pipeline.py)
        if classifier is not None:
            self._deterministic()
        self.inputs = dict(inner.inputs)
        if mask:
            self.inputs[MASK_INPUT] = ((None, None, None, 1), "float32")
        self.outputs: Dict[str, Any] = {"class": None, "confidence": None} \
            if classifier is not None else \
            {"features": None}
        self.extra_outputs = False
        self.kind, self.path = "features", getattr(inner, "path", "")
        self.masks_nan = getattr(inner, "masks_nan", False)

    def resolve_input(self, name: str, param: str = FIRST_NAME) -> str:
        return name if name == MASK_INPUT else self.inner.resolve_input(name, param)

    def resolve_output(self, name: str, param: str = SERVE.output_names) -> str:
        return name

    def input_dtype(self, name: str) -> str:
        return "float32" if name == MASK_INPUT else self.inner.input_dtype(name)

    def describe(self) -> str:
        return self.inner.describe()

    def _deterministic(self):
        """A forest adds its trees' votes in whatever order its threads finish, so the
        same pixel could get another last bit of confidence from one run to the next (a
        resumed run, a cluster's) than the next. The trees are summed in order (n_jobs=1)
        and the pixels split between threads instead: the same bytes, as fast."""
        import os
        from concurrent.futures import ThreadPoolExecutor
        steps = getattr(self.classifier, "steps", None)
        last = steps[-1][1] if steps else self.classifier
        if getattr(last, "n_jobs", None) not in (None, 1) and hasattr(last, "estimators_"):
            last.n_jobs = 1
            self.threads = os.cpu_count() or 1
            if self.threads > 1:
                self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="rsdl-predict")

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.pool is None or len(x) < 4096:
            return self.classifier.predict_proba(x)
        parts = np.array_split(x, self.threads)
        return np.concatenate(list(self.pool.map(self.classifier.predict_proba, parts)))

    def features(self, feeds: Dict[str, np.ndarray]) -> np.ndarray:
        inner = {k: v for k, v in feeds.items() if k != MASK_INPUT}
        outs = self.inner.run(inner, self.inner_names)
        return np.concatenate([np.asarray(o).reshape(-1, nb).astype(np.float32)
                               for o, nb in zip(outs, self.bands)], axis=1)

    def run(self, feeds: Dict[str, np.ndarray], names: Sequence[str]) -> List[np.ndarray]:
        x = self.features(feeds)
        if self.classifier is None:
            return [x]
        x = np.nan_to_num(x, copy=False, posinf=0.0, neginf=0.0)
        proba = self.predict_proba(x)
        best = proba.argmax(axis=1)
        codes = np.asarray(self.classifier.classes_)[best].astype(np.float32)
        conf = proba[np.arange(len(best)), best].astype(np.float32)
        if self.mask:
            off = np.asarray(feeds[MASK_INPUT]).reshape(-1) == 0
            codes[off] = self.nodata
            conf[off] = self.nodata
        return [codes, conf]


@dataclass
class FeatureRecipe:
    """How features are made: raw pixels of SOURCE1, or a deep model's outputs."""
    kind: str = "raw"                       # "raw" or "deep"
    bands: int = 0                          # raw: SOURCE1's band count
    rfields: List[int] = field(default_factory=lambda: [1])
    names: List[str] = field(default_factory=lambda: [""])
    nodata: List[Optional[float]] = field(default_factory=lambda: [None])
    output_names: List[str] = field(default_factory=list)
    output_bands: List[int] = field(default_factory=list)
    fully_conv: Optional[bool] = False     # None until a deep model's metadata says
    band_lists: List[Optional[List[int]]] = field(default_factory=lambda: [None])
    #                                        the bands of each source; None: all but alpha
    context: List[int] = field(default_factory=list)  # raw: window sizes of the
    #                                        neighbourhood statistics (ContextModel); none
    #                                        in files written before they existed

    @property
    def raw_bands(self) -> int:
        """Features per pixel of a raw recipe: the bands, and per window their mean and
        standard deviation."""
        return self.bands * (1 + 2 * len(self.context))

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "FeatureRecipe":
        return cls(**d)


def feature_model(recipe: "FeatureRecipe", model_path: Optional[str] = None,
                  trusted: bool = False, param: str = SERVE.model,
                  paths: Optional[Sequence[str]] = None) -> Any:
    """The inner model of a recipe: the identity for raw pixels, else the deep model
    (scanned before it is loaded unless `trusted`)."""
    if recipe.kind == "raw":
        if recipe.context:
            return ContextModel(recipe.bands, recipe.context, recipe.nodata[0])
        return IdentityModel(recipe.bands)
    from ..models import load_model
    from ..models.metadata import feature_outputs, fully_conv, model_settings, source_settings
    model = load_model(model_path or "", param, trusted=trusted)
    meta, recipe.names = model_settings(model, recipe.names, recipe.output_names,
                                        recipe.rfields, paths or [], None,
                                        band_lists=_lists(recipe, len(recipe.names)))
    recipe.rfields, recipe.names = source_settings(meta, recipe.rfields, recipe.names)
    recipe.fully_conv = fully_conv(meta, recipe.fully_conv)
    if not [n for n in recipe.output_names if n.strip()]:
        recipe.output_names = feature_outputs(meta)
    recipe.names = [model.resolve_input(n, source_param(i, "name"))
                    for i, n in enumerate(recipe.names)]
    names = [n.strip() for n in recipe.output_names if n.strip()] or [""]
    recipe.output_names = [model.resolve_output(n, SERVE.output_names) for n in names]
    return model


def _lists(recipe, n):
    """The band list of each of n sources (None: every band but an alpha band)."""
    return (list(recipe.band_lists or []) + [None] * n)[:n]


def serve_job(recipe: "FeatureRecipe", paths: Sequence[str], output: str = "",
              mask: Optional[str] = None) -> ServeJob:
    """The serving job that computes a recipe's features over `paths` (one per source)."""
    if len(paths) != len(recipe.rfields):
        raise GridError(f"the features need {len(recipe.rfields)} source(s); "
                        f"{len(paths)} given", IMAGE)
    sources = [ServeSource(p, rf, n, nd, IMAGE if i == 0 else "", bands=b)
               for i, (p, rf, n, nd, b) in enumerate(zip(
                   paths, recipe.rfields, recipe.names, recipe.nodata,
                   _lists(recipe, len(paths))))]
    if mask:
        sources.append(ServeSource(mask, 1, MASK_INPUT, None, MASK))
    fully = True if recipe.kind == "raw" else recipe.fully_conv
    # neighbourhood statistics cover the whole image, mirrored past its edges, as a
    # pixel alone does; a deep model keeps OTBTF's extent
    pad = True if recipe.kind == "raw" and recipe.context else None
    return ServeJob(model=str(recipe.kind), sources=sources, output=output,
                    output_names=["features"], efield=1, scale=1.0, fully_conv=fully,
                    pad=pad)


def probe_bands(recipe: "FeatureRecipe", inner: Any, paths: Sequence[str]) -> List[int]:
    """Bands of each model output, found by running the model once on zeros."""
    if recipe.kind == "raw":
        return [recipe.raw_bands]
    job = serve_job(recipe, paths)
    job.output_names = list(recipe.output_names)
    plan = ServePlan(job, inner, Progress())
    try:
        return list(plan.bands)
    finally:
        plan.close()


def features_at(recipe: "FeatureRecipe", inner: Any, paths: Sequence[str], xy: Any,
                progress: Optional[ProgressLike] = None,
                batch: int = 256) -> Tuple[np.ndarray, np.ndarray]:
    """Features at map points `xy` (N, 2) in SOURCE1's CRS.

    Returns (features (M, F), kept indices into xy): points outside the output grid of the
    features (too close to the edge for the receptive field) or on nodata are dropped.
    """
    progress = progress or Progress()
    model = FeatureModel(inner, recipe.output_names, recipe.output_bands)
    job = serve_job(recipe, paths)
    plan = ServePlan(job, model, progress)
    try:
        col, row, inside = plan.output_pixels(xy)
        feats: list = []
        kept: list = []
        pending: list = []
        pending_idx: list = []

        def flush():
            if not pending:
                return
            merged = {k: np.concatenate([p[k] for p in pending]) for k in pending[0]}
            feats.append(model.features(merged))
            kept.extend(pending_idx)
            pending.clear()
            pending_idx.clear()

        idx = np.flatnonzero(inside)
        for n, i in enumerate(int(j) for j in idx):
            if n % 512 == 0:
                if progress.cancelled():
                    raise CancelledError()
                progress.set(0.9 * n / max(1, len(idx)))
            fl = plan.feeds_at(col[i], row[i])
            if fl is None:
                continue
            for f in fl:
                pending.append(f)
            pending_idx.append(i)
            if len(pending) >= batch:
                flush()
        flush()
    finally:
        plan.close()
    if not kept:
        return np.zeros((0, sum(recipe.output_bands)), np.float32), np.zeros(0, np.int64)
    out = np.concatenate(feats)
    if len(out) != len(kept):
        raise ModelError(f"the model gave {len(out)} feature vectors for {len(kept)} samples: "
                         f"check {SERVE.sources}n_{SERVE_SOURCE.rfield}, {SERVE.output_names} "
                         f"and {SERVE.fully_conv}", SERVE.output_names)
    return out, np.asarray(kept, dtype=np.int64)
