"""Accuracy by good practice: a stratified random sample of a map, and its estimators.

Olofsson et al. (2014, Remote Sensing of Environment 148: 42-57) recommend assessing a
map with a probability sample: here a stratified random sample whose strata are the
classes of a map, allocated as the paper does (a minimum per class, the rest in
proportion to the classes' areas). :func:`sampling_design` draws it (reading the map
block by block, so memory does not grow with the map) and writes a point layer that
carries its design: for each point its stratum (the map class it was drawn from), the
stratum's size N_h in pixels and its number of points n_h, the inclusion probability
n_h / N_h, and an empty reference field to fill by photo-interpretation.

:func:`stratified_estimates` then estimates, from such a sample and ANY map of the same
area (the map the strata came from or another one), the error matrix in area
proportions, the overall, user's and producer's accuracies and the area of each class,
with standard errors: Stehman (2014, International Journal of Remote Sensing 35:
4923-4939), the estimators for stratified random sampling when the strata are not the
map's classes, which reduce to Olofsson et al.'s when they are.

No qgis import here.
"""
import json
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..engine.declare import names
from ..engine.model import ProgressLike
from ..engine.progress import Progress
from ..errors import CancelledError, GridError, ParameterError
from .jobs import AccuracyJob, DesignJob

#: the parameters errors name (engine/declare.py)
N, ACCURACY = names(DesignJob), names(AccuracyJob)

#: the fields that make a point layer a sample of this design (rsdl:accuracy reads them)
STRATUM, STRATUM_NAME, STRATUM_PIXELS, STRATUM_SAMPLES = (
    "stratum", "stratum_name", "stratum_pixels", "stratum_samples")
INCLUSION, WEIGHT, REFERENCE = "inclusion_probability", "weight", "reference"
DESIGN_FIELDS = (STRATUM, STRATUM_PIXELS, STRATUM_SAMPLES)


def allocate(counts: Dict[int, int], total: int, minimum: int) -> Dict[int, int]:
    """Points per stratum: `minimum` each, the rest of `total` in proportion to the
    strata's sizes (largest remainders), never more than a stratum's pixels."""
    codes = [c for c in sorted(counts) if counts[c] > 0]
    if not codes:
        raise GridError("the map has no classified pixel: nothing to sample", N.image)
    if total < 1:
        raise ParameterError(f"{N.samples} must be at least 1", N.samples)
    if minimum < 0:
        raise ParameterError(f"{N.minimum} must be 0 or more", N.minimum)
    sizes = np.array([counts[c] for c in codes], dtype=np.float64)
    base = np.minimum(minimum, sizes).astype(np.int64)
    if base.sum() > total:
        raise ParameterError(
            f"{len(codes)} classes x {N.minimum} {minimum} = {int(base.sum())} points, more "
            f"than {N.samples} {total}: raise {N.samples} or lower {N.minimum}", N.samples)
    n = base.copy()
    left = total - int(n.sum())
    while left > 0:
        room = sizes - n
        open_ = room > 0
        if not open_.any():
            break                   # the map has fewer pixels than points asked for
        share = np.where(open_, sizes, 0) / sizes[open_].sum() * left
        add = np.minimum(np.floor(share).astype(np.int64), room.astype(np.int64))
        rest = left - int(add.sum())
        if rest > 0:                # largest remainders get one more each
            frac = np.where(open_ & (add < room), share - np.floor(share), -1.0)
            for i in np.argsort(-frac, kind="stable")[:rest]:
                if frac[i] >= 0:
                    add[i] += 1
        if not add.sum():
            break
        n += add
        left = total - int(n.sum())
    return {c: int(k) for c, k in zip(codes, n)}


def draw(band: Any, width: int, height: int, nodata: Optional[float], allocation: Dict[int, int],
         counts: Dict[int, int], seed: int, progress: Optional[ProgressLike] = None) -> Any:
    """(cols, rows, codes) of a stratified random sample without replacement of pixels:
    `allocation[c]` pixels of class c, each pixel of the class as likely. The pixels are
    chosen by rank among their class's pixels in row-major order, then found in one pass
    over the map, 256 rows at a time."""
    progress = progress or Progress()
    rng = np.random.default_rng(seed)
    ranks = {c: np.sort(rng.choice(counts[c], size=k, replace=False))
             for c, k in sorted(allocation.items()) if k > 0}
    seen = {c: 0 for c in ranks}
    cols: List[np.ndarray] = []
    rows: List[np.ndarray] = []
    codes: List[np.ndarray] = []
    for r0 in range(0, height, 256):
        if progress.cancelled():
            raise CancelledError()
        h = min(256, height - r0)
        block = band.ReadAsArray(0, r0, width, h)
        valid = np.ones(block.shape, bool)
        if nodata is not None:
            valid = ~np.isnan(block) if np.isnan(nodata) else block != nodata
        flat = np.where(valid, block, 0).astype(np.int64).ravel()
        vflat = valid.ravel()
        for c, want in ranks.items():
            idx = np.flatnonzero((flat == c) & vflat)
            lo, hi = seen[c], seen[c] + len(idx)
            a, b = np.searchsorted(want, [lo, hi])
            if b > a:
                pick = idx[want[a:b] - lo]
                cols.append(pick % width)
                rows.append(r0 + pick // width)
                codes.append(np.full(len(pick), c, np.int64))
            seen[c] = hi
        progress.set(0.9 * (r0 + h) / height)
    if not cols:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(cols), np.concatenate(rows), np.concatenate(codes)


def sampling_design(job: DesignJob, progress: Optional[ProgressLike] = None) -> dict:
    """Draw the sample of `job` and write it (engine/vectors.PointWriter)."""
    from ..engine.grid import pixel_centre
    from ..engine.raster import grid_of, open_raster
    from ..engine.vectors import PointWriter
    progress = progress or Progress()
    ds = open_raster(job.image, N.image, "classes")
    grid = grid_of(ds)
    band = ds.GetRasterBand(1)
    nodata = band.GetNoDataValue()
    counts = map_class_pixels(band, grid, nodata, progress)
    allocation = allocate(counts, job.samples, job.minimum)
    names = map_names(ds)
    cols, rows, codes = draw(band, grid.width, grid.height, nodata, allocation, counts,
                             job.seed, progress)
    x, y = pixel_centre(grid.geotransform, cols, rows)
    # points in a random order: the interpreter does not see the strata one after another
    order = np.random.default_rng(job.seed + 1).permutation(len(x))
    x, y, codes = x[order], y[order], codes[order]
    size = np.array([counts[int(c)] for c in codes], np.int64)
    taken = np.array([allocation[int(c)] for c in codes], np.int64)
    fields = [("sample_id", "int32"), (STRATUM, "int"), (STRATUM_NAME, "text"),
              (STRATUM_PIXELS, "int"), (STRATUM_SAMPLES, "int"), (INCLUSION, "real"),
              (WEIGHT, "real"), (REFERENCE, "text")]
    writer = PointWriter(job.output, grid.crs_wkt, fields, N.output)
    try:
        writer.write(x, y, [np.arange(1, len(x) + 1), codes,
                            [names.get(int(c), str(int(c))) for c in codes], size, taken,
                            taken / size, size / taken, [None] * len(x)])
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    unit, pixel_area = area_unit(grid)
    lines = [f"{names.get(c, str(c))}: {allocation[c]} of {counts[c]:,} pixels"
             for c in sorted(allocation)]
    progress.info(f"Stratified random sample of {len(x)} points (seed {job.seed}): "
                  + "; ".join(lines))
    progress.info(f"Fill the '{REFERENCE}' field of each point by photo-interpretation "
                  "(the class you see, by name or code), then run Accuracy assessment with "
                  f"this layer as reference and {ACCURACY.field} '{REFERENCE}'")
    progress.set(1.0)
    return {N.output: job.output, "SAMPLES": int(len(x)),
            "ALLOCATION": {names.get(c, str(c)): allocation[c] for c in sorted(allocation)},
            "MAP_AREA": float(sum(counts.values()) * pixel_area), "UNIT": unit}


def map_names(ds: Any) -> Dict[int, str]:
    """{code: name} of a class map (its RSDL_CLASSES), {} when it names none."""
    try:
        return {int(k): v for k, v in json.loads(ds.GetMetadataItem("RSDL_CLASSES") or "{}").items()}
    except ValueError:
        return {}


def map_class_pixels(band: Any, grid: Any, nodata: Optional[float],
                     progress: ProgressLike) -> Dict[int, int]:
    """Pixels of each class code in the whole map (nodata left out)."""
    counts: dict = {}
    for r0 in range(0, grid.height, 256):
        block = band.ReadAsArray(0, r0, grid.width, min(256, grid.height - r0)).ravel()
        if nodata is not None:
            block = block[~np.isnan(block)] if np.isnan(nodata) else block[block != nodata]
        values, n = np.unique(block.astype(np.int64), return_counts=True)
        for v, k in zip(values.tolist(), n.tolist()):
            counts[v] = counts.get(v, 0) + k
        if progress.cancelled():
            raise CancelledError()
    return counts


def area_unit(grid: Any) -> Tuple[str, float]:
    """('ha', hectares per pixel) on a projected grid in metres, else ('pixels', 1)."""
    from osgeo import osr
    srs = osr.SpatialReference()
    if grid.crs_wkt and srs.ImportFromWkt(grid.crs_wkt) == 0 and srs.IsProjected():
        return "ha", abs(grid.sx * grid.sy) * srs.GetLinearUnits() ** 2 / 10000.0
    return "pixels", 1.0


def _stratum_stats(y, x, strata, sizes):
    """Per stratum h: N_h, n_h, means of y and x, variances and covariance (ddof 1)."""
    out = []
    for h in np.unique(strata):
        m = strata == h
        n_h = int(m.sum())
        yh, xh = y[m], x[m]
        vy = yh.var(ddof=1) if n_h > 1 else np.nan
        vx = xh.var(ddof=1) if n_h > 1 else np.nan
        cxy = np.cov(yh, xh, ddof=1)[0, 1] if n_h > 1 else np.nan
        out.append((float(sizes[h]), n_h, yh.mean(), xh.mean(), vy, vx, cxy))
    return out


def _total(stats, fpc=True):
    """Estimated total of y and its variance (stratified random sampling)."""
    t = sum(big * my for big, _, my, _, _, _, _ in stats)
    v = sum(big ** 2 * ((1 - n / big) if fpc else 1.0) * vy / n
            for big, n, _, _, vy, _, _ in stats if n)
    return t, v


def _ratio(stats, fpc=True):
    """Ratio estimator R = Y / X and its variance (Stehman 2014, eq. 27-28)."""
    ty = sum(big * my for big, _, my, _, _, _, _ in stats)
    tx = sum(big * mx for big, _, _, mx, _, _, _ in stats)
    if tx <= 0:
        return np.nan, np.nan
    r = ty / tx
    v = sum(big ** 2 * ((1 - n / big) if fpc else 1.0) * (vy + r * r * vx - 2 * r * cxy) / n
            for big, n, _, _, vy, vx, cxy in stats if n) / tx ** 2
    return r, max(v, 0.0) if v == v else v      # 0 less rounding (y = x in a stratum)


def stratified_estimates(map_codes: Any, ref_codes: Any, strata: Any,
                         stratum_sizes: Dict[int, int], labels: Any, z: float = 1.96,
                         fpc: bool = True) -> Dict[str, Any]:
    """Accuracy and area estimates from a stratified random sample (Stehman 2014).

    `map_codes`, `ref_codes`, `strata`: per sample point, the class the assessed map gives,
    the reference class, and the stratum it was drawn in; `stratum_sizes`: {stratum: N_h
    pixels}; `labels`: the classes, in the order of the results. Returns the keys of
    metrics.area_adjusted (area proportions, user's, producer's and overall accuracy, each
    with the half width of its `z` interval) plus ``matrix`` (the error matrix in
    estimated area proportions, rows = reference, columns = map) and ``se`` (the standard
    errors). Where a stratum holds one point, its variance is unknown: NaN.
    """
    mp, rf, st = (np.asarray(a) for a in (map_codes, ref_codes, strata))
    labels = list(labels)
    total = float(sum(stratum_sizes[h] for h in np.unique(st)))
    one = np.ones(len(mp))

    def share(y):
        t, v = _total(_stratum_stats(y.astype(float), one, st, stratum_sizes), fpc)
        return t / total, np.sqrt(v) / total

    k = len(labels)
    matrix = np.zeros((k, k))
    for i, r in enumerate(labels):
        for j, m in enumerate(labels):
            matrix[i, j] = share((rf == r) & (mp == m))[0]
    oa, oa_se = share(rf == mp)
    area, area_se, user, user_se, prod, prod_se, map_share = (np.zeros(k) for _ in range(7))
    for i, c in enumerate(labels):
        area[i], area_se[i] = share(rf == c)
        map_share[i] = share(mp == c)[0]
        hit = ((rf == c) & (mp == c)).astype(float)
        u, uv = _ratio(_stratum_stats(hit, (mp == c).astype(float), st, stratum_sizes), fpc)
        p, pv = _ratio(_stratum_stats(hit, (rf == c).astype(float), st, stratum_sizes), fpc)
        user[i], user_se[i] = u, np.sqrt(uv) if uv == uv else np.nan
        prod[i], prod_se[i] = p, np.sqrt(pv) if pv == pv else np.nan
    return {"area": area, "area_ci": z * area_se, "user": user, "user_ci": z * user_se,
            "producer": prod, "producer_ci": z * prod_se, "oa": float(oa),
            "oa_ci": float(z * oa_se), "map_share": map_share, "matrix": matrix,
            "se": {"oa": float(oa_se), "area": area_se, "user": user_se, "producer": prod_se}}
