"""The streaming serving engine: apply a model to rasters of any size.

A serving job is plain data (:class:`ServeJob`: paths, numbers, names), so that it can be
logged, stored beside its output, or sent to another worker. :func:`serve` runs one job
with any model object that has ``run(feeds, output_names) -> list of arrays`` and
``input_dtype(name)``: the engine never imports TensorFlow.

Pipeline: a reader thread reads the regions of the next tile and cuts its patches while
the model computes the current tile; tiles fill chunks (engine/chunks.py), which a writer
thread compresses and writes in chunk order. Queues between them are bounded, so memory
is bounded by the tile and chunk sizes. Chunks are kept for a resume
(:class:`RunOptions` ``resume``) and can be computed by a Dask cluster instead of here
(``scheduler``, engine/cluster.py); the output's bytes are the same either way.
"""
import json
import os
import queue
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple
from typing import cast as settled

import numpy as np
from osgeo import gdal

from ..errors import (
    CancelledError,
    GridError,
    ModelError,
    ParameterError,
    RsdlError,
    RsdlIOError,
    check_choice,
)
from . import declare
from .choices import OUTPUT_TYPES
from .chunks import (
    Assembler,
    Chunk,
    ChunkStore,
    chunk_side,
    clear_state,
    fingerprint,
    layout,
    state_dir,
)
from .declare import names
from .grid import (
    SourceGeometry,
    aligned,
    cover_geometry,
    output_geometry,
    pixel_index,
    plan_tile,
    reference_pixels,
)
from .jobs import ServeJob, ServeSource, source_param  # noqa: F401 (the Python API's)
from .model import Model, ProgressLike
from .progress import Progress
from .raster import DEFAULT_NODATA, SourceReader, TiledWriter
from .styles import class_metadata
from .windows import Window

#: largest automatic tile side: bigger tiles barely speed models up and cost memory
MAX_AUTO_TILE = 1024


@contextmanager
def gdal_cache(max_bytes: int) -> Iterator[None]:
    """Bound GDAL's block cache during a run, so memory does not grow with image size."""
    old = gdal.GetCacheMax()
    gdal.SetCacheMax(min(old, max_bytes))
    try:
        yield
    finally:
        gdal.SetCacheMax(old)


#: the parameters errors name (declare.py): the job's and each source's settings
N, SETTING = names(ServeJob), names(ServeSource)
#: what to check when a model's outputs do not fit the fields given
CHECK = f"{N.sources}n_{SETTING.rfield}, {N.efield}, {N.scale} and {N.fully_conv}"


param_of = source_param


class ServePlan:
    """Everything known about a job before any pixel is computed."""

    def __init__(self, job: ServeJob, model: Model, progress: ProgressLike) -> None:
        # what the Python API may leave unset (api.resolve_job fills it from the model)
        job = replace(job, scale=1.0 if job.scale is None else job.scale,
                      efield=1 if job.efield is None else job.efield,
                      pad=bool(job.pad), fully_conv=bool(job.fully_conv),
                      output_type="float32" if job.output_type == "automatic"
                      else job.output_type)
        self.job, self.model, self.progress = job, model, progress
        if not job.sources:
            raise GridError("at least one source is needed", param_of(0))
        check_choice(job.output_type, OUTPUT_TYPES, N.output_type, "output type")
        if job.batch_size < 1:
            raise ParameterError("the batch size must be at least 1", N.batch_size)
        self.readers: List[SourceReader] = []
        try:
            for i, s in enumerate(job.sources):
                ref_wkt = self.readers[0].grid.crs_wkt if self.readers else None
                self.readers.append(SourceReader(s.path, self.param(i), s.nodata, ref_wkt,
                                                 progress.info, mirror=bool(job.pad),
                                                 bands=s.bands,
                                                 bands_param=param_of(i, "bands")))
            ref = self.readers[0].grid
            # the receptive fields, EFIELD and SCALE are set by now (None was replaced above,
            # or by api.resolve_job)
            self.sgeoms = [SourceGeometry.of(r.grid, ref, settled(int, s.rfield))
                           for r, s in zip(self.readers, job.sources)]
            geometry = cover_geometry if job.pad else output_geometry
            self.geom = geometry(self.sgeoms, settled(int, job.efield), settled(float, job.scale),
                                 [self.param(i) for i in range(len(job.sources))])
            self._check_fields()
            self.input_names = [s.name for s in job.sources]
            self._check_bands(model)
            self.input_dtypes = [np.dtype(model.input_dtype(n)) for n in self.input_names]
            self.output_names = list(job.output_names)
            self.bands = self._probe_bands()
        except BaseException:
            self.close()
            raise
        out_type = "float32" if job.output_type == "automatic" else job.output_type
        self.out_dtype = np.dtype(out_type)
        self.out_nodata = (job.output_nodata if job.output_nodata is not None
                           else DEFAULT_NODATA[out_type])
        check_nodata_fits(self.out_nodata, self.out_dtype)
        self.tile = self._tile_size()

    def _check_fields(self):
        e = settled(int, self.job.efield)
        for i, s in enumerate(self.sgeoms):
            ratio = self.geom.scale / s.kx
            # input pixels an EF block spans: its pixels' centres, or, for a finer output,
            # the pixels it covers (a 64-pixel patch gives 128 pixels at SCALE 0.5)
            need = e * ratio if ratio < 1 else 1 + (e - 1) * ratio
            if need > s.rfield + 1e-9:
                raise GridError(
                    f"the receptive field {s.rfield} cannot hold an expression field of {e} "
                    f"output pixels ({need:g} pixels of this source at {N.scale} "
                    f"{self.geom.scale:g}): raise the receptive field or lower "
                    f"{N.efield}/{N.scale}", self.param(i, "rfield"))

    def param(self, i: int, setting: str = "") -> str:
        """The parameter an error about source i names: SOURCEn (SOURCEn_RFIELD...), or
        the source's own (INPUT, MASK) when the job gives one."""
        if setting or not self.job.sources[i].param:
            return param_of(i, setting)
        return self.job.sources[i].param

    def _check_bands(self, model):
        """A source whose band count differs from the model's input, said before running."""
        for i, (name, reader) in enumerate(zip(self.input_names, self.readers)):
            shape = (getattr(model, "inputs", {}) or {}).get(name, (None, None))[0]
            if shape and len(shape) == 4 and shape[-1] is not None and shape[-1] != reader.bands:
                raise band_mismatch(i, name, shape[-1], reader.band_list,
                                    bool(self.job.sources[i].bands), reader.alpha)

    def output_pixels(self, xy: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(col, row, inside) of map points xy (N, 2), in SOURCE1's CRS, on the output grid."""
        col, row = pixel_index(self.geom.geotransform(self.readers[0].grid), xy)
        inside = (col >= 0) & (row >= 0) & (col < self.geom.width) & (row < self.geom.height)
        return col, row, inside

    def feeds_at(self, col: Any, row: Any) -> Any:
        """The model's feeds for the one output pixel (col, row): a list of feed dicts, or
        None where an input is nodata. What deep features evaluate at sample points."""
        _, feeds, valid = self.prepare(Window(int(col), int(row), 1, 1))
        if feeds is None or (valid is not None and not valid.all()):
            return None
        return list(feeds)

    def _zeros_feeds(self, tile):
        plans = plan_tile(self.geom, self.sgeoms, aligned(tile, self.geom.efield))
        arrays = [np.zeros((p.window.height, p.window.width, r.bands), dt)
                  for p, r, dt in zip(plans, self.readers, self.input_dtypes)]
        return self._feeds(tile, plans, arrays)

    def _probe_bands(self):
        """Run the model once on zeros to learn how many bands each output has, and how
        many pixels of margin it returns around what is kept (`crops`): a model that
        returns its whole input tile (512 x 512 for 512 x 512) served with an expression
        field of 448 keeps the central 448 x 448 of each output, so tiles overlap."""
        e = self.geom.efield
        fc = bool(self.job.fully_conv)
        tile = Window(0, 0, e * 2 if fc else e, e * 2 if fc else e)
        feeds = next(iter(self._zeros_feeds(tile)))
        results = self.model.run(feeds, self.output_names)
        bands, self.crops = [], []
        for name, res in zip(self.output_names, results):
            arr = np.asarray(res)
            n = arr.size
            per_pixel = tile.size if fc else e * e
            side = tile.width if fc else e
            crop = 0
            if arr.ndim in (3, 4) and arr.shape[0] == 1 and arr.shape[1] == arr.shape[2] \
                    and arr.shape[1] != side and (fc or arr.shape[1] > 1):
                extra = arr.shape[1] - side
                if extra > 0 and extra % 2 == 0:
                    crop = extra // 2
                    per_pixel = arr.shape[1] * arr.shape[2]
                elif not fc:
                    raise ModelError(
                        f"output '{name}' has {arr.shape[1]} x {arr.shape[2]} pixels per "
                        f"patch, but the expression field is {e}: set {N.efield} to "
                        f"{arr.shape[1]}, or serve the model fully convolutionally "
                        f"({N.fully_conv})", N.efield)
            if n == 0 or n % per_pixel:
                raise ModelError(
                    f"output '{name}' gave {n} values for {tile.width} x {tile.height} "
                    f"output pixels: not a whole number of bands. Check {CHECK}",
                    N.output_names)
            bands.append(n // per_pixel)
            self.crops.append(crop)
            if crop:
                self.progress.info(
                    f"Output '{name}': the model returns {arr.shape[1]} x {arr.shape[2]} "
                    f"pixels for {side} x {side} kept; the {crop} pixel(s) at each side are "
                    "dropped (tiles overlap, no seam)")
        return bands

    def _tile_size(self):
        e = self.geom.efield
        if self.job.tile_size:
            t = max(e, (self.job.tile_size // e) * e)
            return t
        budget = self.job.memory_mb * 2 ** 20
        step = e * max(1, 16 // e)          # the largest multiple of EF up to 16
        best = step
        for t in range(step, MAX_AUTO_TILE + 1, step):
            if self.estimate_bytes(t) > budget:
                break
            best = t
            if t >= max(self.geom.width, self.geom.height):
                break
        return best

    def cache_bytes(self, width: int) -> int:
        """GDAL's block cache for a run whose chunks are `width` output pixels wide: rows
        of every source's blocks across a chunk, so that tiles going along the chunk
        decompress each block once; at least 32 MB, at most half the memory budget."""
        # two rows: a tile whose rows straddle two rows of blocks needs both
        need = 2 * sum(r.block_row_bytes(width * self.geom.scale / s.kx + s.rfield)
                       for r, s in zip(self.readers, self.sgeoms))
        return int(min(max(need, 32 * 2 ** 20), self.job.memory_mb * 2 ** 20 // 2))

    def estimate_bytes(self, t: int) -> float:
        """Rough peak memory of the pipeline for square tiles of ``t`` output pixels."""
        total = 0.0
        for s, r in zip(self.sgeoms, self.readers):
            side = t * self.geom.scale / s.kx + s.rfield
            total += 3 * side * side * r.bands * 4          # read, cast, prefetched tile
            if self.job.fully_conv:
                total += 64 * side * side * 4                # model activations (guess)
            else:       # every patch of the tile, cut before the model runs
                total += 2 * (t // self.geom.efield) ** 2 * s.rfield ** 2 * r.bands * 4
        total += 6 * t * t * sum(self.bands) * 8             # model output, cast, writer queue
        return total

    def _feeds(self, tile, plans, arrays):
        """Model feeds for a tile: one dict (fully-convolutional) or one per batch."""
        if self.job.fully_conv:
            yield {n: a[None] for n, a in zip(self.input_names, arrays)}
            return
        views = [patch_view(a, s.rfield) for a, s in zip(arrays, self.sgeoms)]
        steps = [_step(p.col_starts) for p in plans]
        nbx = len(plans[0].col_starts)
        nblocks = nbx * len(plans[0].row_starts)
        for k in range(0, nblocks, self.job.batch_size):
            n = min(self.job.batch_size, nblocks - k)
            feeds = {}
            for name, v, p, step in zip(self.input_names, views, plans, steps):
                if step is None:     # uneven columns (a coarser source): one gather
                    idx = np.arange(k, k + n)
                    feeds[name] = v[p.row_starts[idx // nbx], p.col_starts[idx % nbx]]
                    continue
                # evenly spaced columns: the patches along a row of blocks are a strided
                # slice of the view, copied into the batch without an index array
                out = np.empty((n,) + v.shape[2:], v.dtype)
                done = 0
                while done < n:
                    iy, ix = divmod(k + done, nbx)
                    m = min(nbx - ix, n - done)
                    c0 = p.col_starts[ix]
                    out[done:done + m] = v[p.row_starts[iy], c0:c0 + (m - 1) * step + 1:step]
                    done += m
                feeds[name] = out
            yield feeds

    def prepare(self, tile: Window) -> Any:
        """Reader side: read the tile's regions; None feeds when it is all nodata. A tile
        on the grid's last, partial blocks is computed whole (`aligned`)."""
        full = aligned(tile, self.geom.efield)
        plans = plan_tile(self.geom, self.sgeoms, full)
        arrays = [r.read(p.window, dt) for r, p, dt in zip(self.readers, plans, self.input_dtypes)]
        ref, win = self.readers[0], plans[0].window
        valid = None
        if ref.masked:
            cols, rows = reference_pixels(self.geom, self.sgeoms[0], full)
            rows, cols = rows - win.row_off, cols - win.col_off
            if rows.min() < 0 or cols.min() < 0 or rows.max() >= win.height or cols.max() >= win.width:
                raise GridError(f"reference pixels of tile {full} fall outside its region {win}")
            ri, ci = _index(rows), _index(cols)
            invalid = ref.nodata_mask(arrays[0][ri, :][:, ci])
            alpha = ref.mask(win)
            if alpha is not None:
                invalid |= alpha[ri, :][:, ci]
            valid = ~invalid
            if not valid.any():
                return tile, None, valid
            arrays = self._finite(arrays)
            # SOURCE1 has valid pixels here, so not every source is all nodata
            return tile, list(self._feeds(full, plans, arrays)), valid
        with_nodata = [(r, a) for r, a in zip(self.readers, arrays) if r.nodata is not None]
        if with_nodata and len(with_nodata) == len(arrays) and all(
                r.nodata_mask(a).all() for r, a in with_nodata):
            return tile, None, np.zeros((full.height, full.width), bool)
        arrays = self._finite(arrays)
        return tile, list(self._feeds(full, plans, arrays)), valid

    def _finite(self, arrays):
        """No NaN or infinity reaches a network (one NaN spreads over its receptive
        field); a model that leaves them out itself (the neighbourhood statistics) sees
        them as they are."""
        if getattr(self.model, "masks_nan", False):
            return arrays
        return [r.finite(a) for r, a in zip(self.readers, arrays)]

    def compute(self, tile: Window, feeds: Any, valid: Any,
                on_batch: Optional[Callable[[float], None]] = None,
                out: Optional[np.ndarray] = None) -> np.ndarray:
        """Model side: run the model and assemble the output tile (rows, cols, bands),
        into `out` when given (a view of a chunk). ``on_batch(fraction)`` is told how much
        of the tile is done after each batch."""
        if out is None:
            out = np.empty((tile.height, tile.width, sum(self.bands)), self.out_dtype)
        if feeds is None:
            out[...] = self.out_nodata
            return out
        e = self.geom.efield
        full = aligned(tile, e)
        parts: List[List[np.ndarray]] = [[] for _ in self.output_names]
        for k, f in enumerate(feeds):
            if self.progress.cancelled():
                raise CancelledError()
            results = self.model.run(f, self.output_names)
            for acc, res, crop in zip(parts, results, self.crops):
                acc.append(_cropped(np.asarray(res), crop))
            if on_batch is not None and len(feeds) > 1:
                on_batch((k + 1) / len(feeds))
        dest = out if full == tile else np.empty(
            (full.height, full.width, sum(self.bands)), self.out_dtype)
        band = 0
        for name, acc, nb in zip(self.output_names, parts, self.bands):
            flat = acc[0] if len(acc) == 1 else np.concatenate(acc)
            if flat.size != full.size * nb:
                raise ModelError(
                    f"output '{name}' gave {flat.size} values for a {full.width} x "
                    f"{full.height} pixel tile of {nb} band(s) ({full.size * nb} expected). "
                    f"Check {CHECK} against the model", N.output_names)
            if self.job.fully_conv:
                block = flat.reshape(full.height, full.width, nb)
            else:
                block = (flat.reshape(full.height // e, full.width // e, e, e, nb)
                         .transpose(0, 2, 1, 3, 4).reshape(full.height, full.width, nb))
            dest[:, :, band:band + nb] = cast(block, self.out_dtype)
            band += nb
        if valid is not None and not valid.all():
            dest[~valid] = self.out_nodata
        if dest is not out:
            out[...] = dest[:tile.height, :tile.width]
        return out

    def close(self) -> None:
        for r in self.readers:
            r.close()


def runs_fully_conv(job: ServeJob, model: Model, blocks: int = 4) -> bool:
    """Whether a patch-based job gives the same values in fully-convolutional mode,
    checked on `blocks` x `blocks` expression fields in the middle of the output. False
    for a model whose inputs have a fixed size, or that fails or differs on the probe."""
    if job.fully_conv:
        return False
    inputs = getattr(model, "inputs", {}) or {}
    for s in job.sources:
        shape = (inputs.get(s.name) or (None,))[0]
        if not shape or len(shape) != 4 or shape[1] is not None or shape[2] is not None:
            return False
    plans: List[ServePlan] = []
    try:
        plans.append(ServePlan(job, model, Progress()))
        plans.append(ServePlan(replace(job, fully_conv=True), model, Progress()))
        e, (w, h) = plans[0].geom.efield, (plans[0].geom.width, plans[0].geom.height)
        k = blocks * e
        if w < k or h < k:
            return False
        tile = Window((w - k) // 2 // e * e, (h - k) // 2 // e * e, k, k)
        outs = []
        for plan in plans:
            _, feeds, valid = plan.prepare(tile)
            if feeds is None:
                return False
            outs.append(plan.compute(tile, feeds, valid))
        return bool(np.allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6))
    except Exception:      # noqa: BLE001 (a model that cannot take regions: not offered)
        return False
    finally:
        for plan in plans:
            plan.close()


def band_mismatch(i: int, name: str, takes: int, band_list: Sequence[int], chosen: bool,
                  alpha: Optional[int]) -> GridError:
    """The error of source i, whose bands `band_list` (chosen by the user or not) are not
    the `takes` bands of the model's input `name`. It names SOURCEn_BANDS where a band list
    can fix it (one was given, or the image has more bands than the model takes), else
    the source: an image with fewer bands than the model takes is the wrong image."""
    if not chosen and len(band_list) < takes:
        return GridError(f"the image has {len(band_list)} band(s)"
                         + (" besides its alpha band" if alpha else "")
                         + f" but the model's input '{name}' takes {takes}: give an image with "
                         "the bands the model was trained on", param_of(i))
    read = (f"bands {','.join(map(str, band_list))} of it are read" if chosen else
            f"it has {len(band_list)} band(s)" + (" besides its alpha band" if alpha else ""))
    return GridError(f"the model's input '{name}' takes {takes} band(s), but {read}: give "
                     f"the bands the model was trained on in {param_of(i, 'bands')} (e.g. "
                     f"{','.join(str(b) for b in range(1, takes + 1))})", param_of(i, "bands"))


def _band_classes(classes, bands):
    """The classes of each output band: one class map, or one per band (a model with
    several segmentation outputs); None where a band has none."""
    if not classes:
        return None
    if classes.get("bands"):
        return list(classes["bands"])[:bands]
    return [classes] if bands == 1 else None


def _cropped(arr, crop):
    """A model output's values in row-major order, without its `crop` pixels of margin
    at each side of each (batch, rows, cols[, bands]) block."""
    if crop:
        arr = arr[:, crop:arr.shape[1] - crop, crop:arr.shape[2] - crop]
    return arr.reshape(-1)


def _step(starts):
    """The common step of evenly spaced, increasing indices, else None."""
    if len(starts) < 2:
        return 1
    d = np.diff(starts)
    return int(d[0]) if d[0] > 0 and bool((d == d[0]).all()) else None


def _index(idx):
    """A slice for consecutive indices (a view, no copy), else the indices themselves."""
    if len(idx) and _step(idx) == 1:
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def patch_view(array: np.ndarray, r: int) -> np.ndarray:
    """Every r x r patch of a (rows, cols, bands) array, without a copy: a read-only view
    of shape (rows - r + 1, cols - r + 1, r, r, bands) whose [i, j] is the patch whose
    top-left pixel is (i, j)."""
    rows, cols, bands = array.shape
    s0, s1, s2 = array.strides
    return np.lib.stride_tricks.as_strided(
        array, (rows - r + 1, cols - r + 1, r, r, bands), (s0, s1, s0, s1, s2),
        writeable=False)


def check_nodata_fits(nodata: float, dtype: Any, param: str = N.output_nodata) -> None:
    """The output's nodata value must be a value of its type: 1e300 in a byte map would
    be tagged in the file and match no pixel."""
    v = float(nodata)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        ok = np.isfinite(v) and v == int(v) and info.min <= v <= info.max
        span = f"a whole number from {info.min} to {info.max}"
    else:
        big = float(np.finfo(dtype).max)
        ok = np.isnan(v) or -big <= v <= big
        span = f"a number from {-big:g} to {big:g}, or nan"
    if not ok:
        raise ParameterError(f"{v:g} is not a value of the output type {dtype.name}: "
                             f"give {span}", param)


def cast(array: np.ndarray, dtype: Any) -> np.ndarray:
    """Cast model values to the output type, clipping to the range of integer types."""
    if dtype.kind in "iu" and array.dtype != dtype:
        info = np.iinfo(dtype)
        array = np.clip(array, info.min, info.max)
    return array.astype(dtype, copy=False)


@dataclass
class RunOptions:
    """How a job runs, beside what it computes (none of this changes the output's bytes).

    resume: keep finished chunks beside the output and take them from an earlier run of
    the same job; scheduler: the address of a Dask scheduler whose workers compute the
    chunks ("" runs here); recipe: how a worker builds the model (engine/cluster.py);
    model_path: the model whose checksum the resume state records; state_for: the output
    the resume state belongs to (default: the job's output); params: the parameter name
    of each source, for messages."""
    resume: bool = declare.resume()
    scheduler: str = declare.chunk_scheduler()
    recipe: Optional[dict] = None
    model_path: str = ""
    state_for: str = ""
    params: Optional[List[str]] = None


RUN = names(RunOptions)


def serve(job: ServeJob, model: Model, progress: Optional[ProgressLike] = None,
          run: Optional["RunOptions"] = None) -> Dict[str, Any]:
    """Run a serving job; returns a dict describing the output."""
    progress = progress or Progress()
    run = run or RunOptions()
    start = time.monotonic()
    plan = ServePlan(job, model, progress)
    store = None
    try:
        bands = sum(plan.bands)
        side = chunk_side(plan.tile, bands, plan.out_dtype.itemsize, job.memory_mb,
                          job.chunk_size)
        chunks = layout(plan.geom.width, plan.geom.height, plan.tile, side)
        check_space(plan, run, progress)
        store, reused = _open_state(plan, run, chunks, progress)
        try:
            _log_cost(plan, run, chunks, side, reused, progress)
            skipped = _write(plan, run, chunks, store, reused, progress)
        except BaseException:
            if store is not None:
                store.stopped()
            raise
    finally:
        plan.close()
    if store is not None:
        store.clear()
    elapsed = time.monotonic() - start
    ntiles = sum(len(c.tiles) for c in chunks)
    progress.info(f"Done in {elapsed:.1f} s; {skipped} of {ntiles} tile(s) computed were all "
                  "nodata and skipped" + (f"; {len(reused)} chunk(s) reused" if reused else ""))
    return {N.output: job.output, "WIDTH": plan.geom.width, "HEIGHT": plan.geom.height,
            "BANDS": bands, "TILES": ntiles, "SKIPPED_TILES": skipped,
            "CHUNKS": len(chunks), "REUSED_CHUNKS": len(reused), "SECONDS": elapsed}


def size_text(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} bytes"


def check_space(plan: ServePlan, run: "RunOptions", progress: ProgressLike,
                free_space: Optional[Callable[[str], int]] = None) -> None:
    """The disk a run needs, from its plan, against the free space, before anything is
    written: the kept chunks (RESUME) are the output's pixels uncompressed, which must
    fit; the compressed output is usually far smaller than its pixels (a warning when
    even those would not fit). `free_space(folder)` for the tests."""
    job = plan.job
    raw = plan.geom.width * plan.geom.height * sum(plan.bands) * plan.out_dtype.itemsize
    folder = os.path.dirname(os.path.abspath(job.output))
    kept_dir = state_dir(run.state_for or job.output)
    state = os.path.dirname(kept_dir)
    try:
        free = (free_space or (lambda f: shutil.disk_usage(f).free))(folder)
    except OSError:
        return                                   # not a local folder: GDAL will tell
    kept = 0
    if run.resume and os.path.isdir(kept_dir):   # chunks an earlier run already keeps
        kept = sum(e.stat().st_size for e in os.scandir(kept_dir) if e.is_file())
    chunks_need = max(0, raw - kept) if run.resume else 0
    text = (f"the output is {plan.geom.width} x {plan.geom.height} pixels x "
            f"{sum(plan.bands)} band(s) of {plan.out_dtype.name}: {size_text(raw)} of pixels")
    if chunks_need and chunks_need > free:
        raise RsdlIOError(
            f"not enough disk space: {text}, which {RUN.resume} keeps uncompressed beside it "
            f"while the run goes on ({size_text(chunks_need)} more), but '{state}' has "
            f"{size_text(free)} free. Free some space, choose a folder on a larger disk, or "
            f"untick {RUN.resume} (the compressed map alone is usually far smaller)",
            N.output)
    progress.info(f"Disk: {text}" + (", kept uncompressed while the run goes on "
                                     f"({RUN.resume})" if run.resume else "")
                  + f"; {size_text(free)} free in '{folder}'")
    if raw + chunks_need > free:
        progress.info("Warning: the output may not fit on this disk if it compresses little "
                      f"({size_text(raw)} of pixels, {size_text(free)} free)")


def _open_state(plan, run, chunks, progress):
    """The resume state (None when RESUME is off) and the chunks it already holds."""
    job = plan.job
    state_for = run.state_for or job.output
    if not run.resume:
        clear_state(state_for)
        return None, set()
    params = run.params or [plan.param(i) for i in range(len(job.sources))]
    model_path = run.model_path or (job.model if os.path.exists(job.model) else "")
    store = ChunkStore(state_for, fingerprint(job.to_dict(), params, model_path, gdal_files),
                       chunks, sum(plan.bands), N.output, progress.info)
    return store, store.open()


def gdal_files(path: str) -> List[str]:
    """The files GDAL reads for a raster: a VRT's sources, a .aux.xml, overviews."""
    try:
        ds = gdal.OpenEx(path, gdal.OF_RASTER | gdal.OF_READONLY)
        return (ds.GetFileList() or []) if ds is not None else []
    except RuntimeError:
        return []


def _log_cost(plan, run, chunks, side, reused, progress):
    """What the run will be, before it starts: grid, tiles, chunks, memory."""
    job, geom = plan.job, plan.geom
    bands = sum(plan.bands)
    per_worker = plan.estimate_bytes(plan.tile) + side * side * bands * plan.out_dtype.itemsize
    progress.info(
        f"Output: {geom.width} x {geom.height} pixels, {bands} band(s) {job.output_type}, "
        f"spacing {plan.readers[0].grid.sx * geom.scale:g}; "
        f"{sum(len(c.tiles) for c in chunks)} tile(s) of {plan.tile} x {plan.tile} "
        f"in {len(chunks)} chunk(s) of up to {side} x {side}, "
        f"{'fully-convolutional' if job.fully_conv else 'patch-based'}; about "
        f"{per_worker / 2 ** 20:.0f} MB per {'worker' if run.scheduler else 'run'} "
        "besides the model")
    if reused:
        progress.info(f"Resuming: {len(reused)} of {len(chunks)} chunk(s) reused from an "
                      "earlier run of this job")


def _write(plan, run, chunks, store, reused, progress):
    """Compute the chunks not reused (here or on the cluster) and write the output."""
    job, geom = plan.job, plan.geom
    ref = plan.readers[0].grid
    band_names = [n if nb == 1 else f"{n}_{b + 1}"
                  for n, nb in zip(job.output_names, plan.bands) for b in range(nb)]
    meta = {"RSDL_MODEL": job.model, "RSDL_JOB": json.dumps(job.to_dict()), **job.metadata,
            **(class_metadata(job.classes["codes"], job.classes["names"]) if job.classes
               else {})}
    todo = [c for c in chunks if c.index not in reused]
    with gdal_cache(plan.cache_bytes(chunks[0].window.width)):
        writer = TiledWriter(job.output, geom.width, geom.height, sum(plan.bands),
                             plan.out_dtype, geom.geotransform(ref), ref.crs_wkt,
                             plan.out_nodata, band_names, meta, max_pending=1,
                             classes=_band_classes(job.classes, len(band_names)))
        try:
            assembler = Assembler(chunks, writer, plan.out_dtype, store, reused, progress.info)
            if run.scheduler:
                from .cluster import run_on_cluster
                if not run.recipe:
                    raise ParameterError("this model cannot be sent to a Dask cluster",
                                         RUN.scheduler)
                skipped = run_on_cluster(run.scheduler, remote_chunk,
                                         (run.recipe, _absolute(job.to_dict())), todo,
                                         assembler, progress)
            else:
                skipped = run_local(plan, todo, assembler, progress)
            if not assembler.complete:
                raise GridError(f"chunk {assembler.next} of the output was never computed")
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    return skipped


def run_local(plan: ServePlan, todo: Sequence[Any], assembler: Any,
              progress: ProgressLike) -> int:
    """Compute the chunks `todo` here, in order, handing each to the assembler."""
    skipped = 0
    for chunk in todo:
        start = time.perf_counter()
        array, sk = compute_chunk(plan, chunk, lambda px: progress.set(assembler.fraction(px)),
                                  progress)
        skipped += sk
        # the first chunk's time holds the model's first call (tracing): not its cost
        assembler.add(chunk.index, array,
                      time.perf_counter() - start if chunk is not todo[0] else None)
        progress.set(assembler.fraction())
    return skipped


# --- on a Dask worker (engine/cluster.py sends remote_chunk) ----------------------------

_models: dict = {}
_models_lock = threading.Lock()
_local = threading.local()


def _absolute(job_dict):
    """The job with its sources' paths absolute: a worker runs in another folder."""
    job = dict(job_dict)
    job["sources"] = [dict(s, path=os.path.abspath(s["path"]))
                      if os.path.exists(s["path"]) else s for s in job_dict["sources"]]
    return job


def _recipe_key(recipe):
    builder = recipe["builder"]
    return json.dumps([f"{builder.__module__}.{builder.__qualname__}",
                       recipe.get("args", {})], sort_keys=True)


def _worker_model(recipe):
    """The model of a recipe (``{"builder": function, "args": {...}}``: a module-level
    function, sent by name, and its plain arguments), built once per worker process on
    first use and kept."""
    key = _recipe_key(recipe)
    with _models_lock:
        if key not in _models:
            _models[key] = recipe["builder"](**recipe.get("args", {}))
        return _models[key]


def _worker_plan(recipe, job_dict):
    """The serving plan of a job in this worker thread (its sources kept open); the plan
    of an earlier job is closed."""
    key = json.dumps([_recipe_key(recipe), job_dict], sort_keys=True)
    cached = getattr(_local, "plan", None)
    if cached and cached[0] == key:
        return cached[1]
    if cached:
        cached[1].close()
        _local.plan = None
    plan = ServePlan(ServeJob.from_dict(job_dict), _worker_model(recipe), Progress())
    _local.plan = (key, plan)
    return plan


def remote_chunk(recipe: Dict[str, Any], job_dict: Dict[str, Any],
                 chunk_dict: Dict[str, Any]) -> Any:
    """A chunk computed on a Dask worker: (chunk index, output pixels (rows, cols,
    bands), tiles skipped, seconds the chunk took: None for the worker's first chunk of
    the job, whose time holds the model's first call)."""
    import socket
    try:
        plan = _worker_plan(recipe, job_dict)
        chunk = Chunk.from_dict(chunk_dict)
        start = time.perf_counter()
        array, skipped = compute_chunk(plan, chunk)
    except RsdlError as exc:
        exc.message = f"on the Dask worker {socket.gethostname()}: {exc.message}"
        exc.args = (exc.message,)
        raise
    # a worker's first chunk holds TensorFlow's first call (tracing): not its real cost
    seconds = time.perf_counter() - start if getattr(plan, "warm", False) else None
    plan.warm = True
    return chunk.index, array, skipped, seconds


def compute_chunk(plan: ServePlan, chunk: Any, report: Optional[Callable[..., None]] = None,
                  progress: Optional[ProgressLike] = None) -> Any:
    """The output pixels (rows, cols, bands) of one chunk, and how many of its tiles were
    all nodata. `report(pixels)` is told how many of its pixels are done."""
    win = chunk.window
    out = np.empty((win.height, win.width, sum(plan.bands)), plan.out_dtype)
    views = {t: out[t.relative_to(win).slices()] for t in chunk.tiles}
    skipped = run_pipeline(plan, list(chunk.tiles), views, progress or plan.progress, report)
    return out, skipped


def run_pipeline(plan: ServePlan, tiles: Sequence[Window], views: Dict[Window, np.ndarray],
                 progress: ProgressLike,
                 report: Optional[Callable[..., None]] = None) -> int:
    """Read ahead in a thread while the model computes here; each tile's output goes
    into its view `views[tile]`. Returns the number of tiles that were all nodata."""
    q: "queue.Queue[Any]" = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item):
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def reader():
        try:
            for tile in tiles:
                if stop.is_set():
                    return
                put(("tile", plan.prepare(tile)))
        except BaseException as exc:  # handed to the main thread
            put(("error", exc))

    thread = threading.Thread(target=reader, name="rsdl-reader", daemon=True)
    thread.start()
    skipped = 0
    done = 0
    try:
        for _ in tiles:
            if progress.cancelled():
                raise CancelledError()
            kind, item = q.get()
            if kind == "error":
                raise item
            tile, feeds, valid = item
            skipped += feeds is None
            # progress moves batch by batch too: one tile can be a whole small image
            on_batch = None if report is None else (
                lambda f, done=done, size=tile.size: report(done + f * size))
            plan.compute(tile, feeds, valid, on_batch, out=views[tile])
            done += tile.size
            if report is not None:
                report(done)
    finally:
        stop.set()
        try:
            while True:
                q.get_nowait()
        except queue.Empty:
            pass
        thread.join()
    return skipped
