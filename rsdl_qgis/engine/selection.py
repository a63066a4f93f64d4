"""Class statistics and sample selection: rasters and vectors in, tables and points out."""
import csv
import io
import os
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from osgeo import gdal, ogr

from ..errors import CancelledError, GridError, ParameterError, check_choice
from .choices import SAMPLERS, STRATEGIES
from .declare import names
from .grid import Grid, pixel_centre
from .jobs import SelectionJob  # noqa: F401 (the Python API's)
from .model import ProgressLike
from .output import fresh_temp, gdal_checked, io_error, write_text
from .progress import Progress
from .raster import SourceReader, grid_of, open_raster, require_same_grid
from .sampling import (
    MaskCounter,
    choose,
    parse_class_counts,
    required_counts,
    select,
    span_counts,
    spans_of,
    split_sets,
)
from .vectors import (
    ClassCodes,
    PointWriter,
    lookup_path,
    output_layer,
    publish_layer,
    read_features,
    remove_vector,
    vector_driver,
)
from .windows import Window

gdal.UseExceptions()

#: the parameters errors name (declare.py)
N = names(SelectionJob)

#: side of the square blocks that stand in for polygons when a label raster is split
LABEL_BLOCK = 64


def _check_cancel(progress):
    if progress.cancelled():
        raise CancelledError()


def _extent_text(grid):
    g = grid.geotransform
    xs = sorted([g[0], g[0] + grid.width * g[1]])
    ys = sorted([g[3], g[3] + grid.height * g[5]])
    return f"x {xs[0]:.2f}..{xs[1]:.2f}, y {ys[0]:.2f}..{ys[1]:.2f}"


class _Mask:
    """An optional mask raster on the grid of the image: non-zero pixels are kept."""

    def __init__(self, path, grid, param=N.mask):
        self.ds = open_raster(path, param)
        require_same_grid(grid_of(self.ds), grid, "the mask", param)
        self.band = self.ds.GetRasterBand(1)
        self.counter = MaskCounter(self.read_rows, grid.width, grid.height)

    def read_rows(self, row0, nrows):
        return self.band.ReadAsArray(0, row0, self.ds.RasterXSize, nrows) != 0


class _Validity:
    """Where the image has data, for images that can have none (SourceReader.masked): a
    pixel is left out when it is nodata as a source of a model reads it (every band equal
    to the nodata value, a NaN or infinite band, alpha 0). Other images are not read."""

    def __init__(self, path):
        self.reader = SourceReader(path, N.image)
        self.needed = self.reader.masked

    def read_rows(self, row0, nrows):
        r = self.reader
        window = Window(0, row0, r.grid.width, nrows)
        bad = r.nodata_mask(r.read(window, np.dtype(r.dtype)))
        alpha = r.mask(window)
        return ~(bad if alpha is None else bad | alpha)


@dataclass
class Candidates:
    """Candidate pixels of training geometries, as spans with their classes."""
    grid: Grid
    feats: Any
    codes: ClassCodes
    spans: Any
    span_class: np.ndarray
    counts: np.ndarray
    mask: Optional[object] = None


def candidates(image: str, vector: str, field: Optional[str], mask: Optional[str] = None,
               step: int = 1, progress: Optional[ProgressLike] = None,
               param: str = N.vector) -> "Candidates":
    """Read the training geometries over `image` and find their candidate pixels."""
    progress = progress or Progress()
    valid = _Validity(image)                  # opens the image (as a model's source)
    ds = valid.reader.ds
    grid = grid_of(ds)
    feats = read_features(vector, field, grid, param, N.field, progress.info)
    _check_cancel(progress)
    spans = spans_of(feats, grid.width, grid.height, step)
    if not len(spans.row) and step > 1 and len(spans_of(feats, grid.width, grid.height, 1).row):
        raise ParameterError(
            f"no pixel on the lattice of {N.grid_step} {step} (rows and columns that are "
            f"multiples of {step}) lies inside the geometries of {N.vector}, though some "
            f"pixels do: lower {N.grid_step}", N.grid_step)
    if not len(spans.row):
        g = grid_of(ds)
        raise GridError(f"no pixel centre of {N.image} ({_extent_text(g)}) lies inside the "
                        f"geometries of {N.vector} ({feats.count} features): they do not overlap "
                        "the raster, or are smaller than its pixels", param)
    codes = ClassCodes.from_values(feats.value, feats.kind)
    feature_code = codes.codes_of(feats.value)
    span_class = feature_code[spans.feature]
    counts = span_counts(spans, step)
    m = None
    if mask or valid.needed:
        user = _Mask(mask, grid) if mask else None
        if user is not None and valid.needed:
            read = (lambda r0, n: user.read_rows(r0, n) & valid.read_rows(r0, n))  # noqa: E731
        else:
            read = user.read_rows if user is not None else valid.read_rows
        m = MaskCounter(read, grid.width, grid.height)
        counts = m.counts(spans, step)
    return Candidates(grid, feats, codes, spans, span_class, counts, m)


def _class_table(cand):
    """{code: (pixels, features with at least one pixel)} and the classes with none."""
    codes = np.array(cand.codes.codes)
    pixels = {c: 0 for c in codes.tolist()}
    feats_with = {c: 0 for c in codes.tolist()}
    per_feature = np.bincount(cand.spans.feature, weights=cand.counts, minlength=cand.feats.count)
    feature_code = cand.codes.codes_of(cand.feats.value)
    for c in codes.tolist():
        sel = feature_code == c
        pixels[c] = int(per_feature[sel].sum())
        feats_with[c] = int(np.count_nonzero(per_feature[sel] > 0))
    empty = [c for c in codes.tolist() if pixels[c] == 0]
    return pixels, feats_with, empty


def _empty_class_error(cand, empty, param=N.vector):
    classes = ", ".join(cand.codes.name_of(c) for c in empty)
    if not any(cand.counts) and len(cand.counts) and cand.mask is not None:
        return GridError("no pixel under the training geometries holds data: the pixels of "
                         f"{N.image} there are all nodata (or masked by {N.mask}). Check the "
                         "image and its nodata value", N.image)
    return GridError(f"classes with no pixel: {classes}. Their polygons hold no pixel centre "
                     f"of {N.image} that holds data (too small, outside the raster, on nodata "
                     f"pixels of {N.image}, or masked by {N.mask}): remove them, or draw "
                     "larger polygons", param)


def write_table(path: str, header: Sequence[str], rows: Sequence[Sequence[Any]],
                param: str = N.output) -> str:
    """A table as CSV (path ending in .csv) or as an attribute-only vector (GPKG...)."""
    path = str(path)
    file, layer = output_layer(path)
    if file.lower().endswith(".csv") or not os.path.splitext(file)[1]:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(header)
        w.writerows(rows)
        return write_text(path, buf.getvalue(), param)
    vector_driver(path, param)
    tmp = fresh_temp(file, param, ".gpkg")
    try:
        with gdal_checked(path, param):
            ds = ogr.GetDriverByName("GPKG").CreateDataSource(tmp)
            lyr = ds.CreateLayer(layer, None, ogr.wkbNone)
            for i, name in enumerate(header):
                kind = ogr.OFTInteger64 if all(isinstance(r[i], (int, np.integer)) for r in rows) \
                    else ogr.OFTString
                lyr.CreateField(ogr.FieldDefn(name, kind))
            for r in rows:
                f = ogr.Feature(lyr.GetLayerDefn())
                for i, v in enumerate(r):
                    f.SetField(i, v if isinstance(v, str) else int(v))
                lyr.CreateFeature(f)
            lyr = None
            ds = None
        publish_layer(tmp, path, param)
    except OSError as exc:
        raise io_error(path, exc, param) from exc
    finally:
        remove_vector(tmp)
    return path


def class_statistics(image: str, vector: str, field: str, output: Optional[str] = None,
                     mask: Optional[str] = None,
                     progress: Optional[ProgressLike] = None) -> Dict[str, Any]:
    """Pixels (centre inside) and polygons of each class, like OTB's PolygonClassStatistics.

    Returns {"CLASSES": [(class, pixels, polygons)], "TOTAL_PIXELS": n, "OUTPUT": path}.
    """
    progress = progress or Progress()
    cand = candidates(image, vector, field, mask, 1, progress)
    pixels, feats_with, empty = _class_table(cand)
    if empty:
        raise _empty_class_error(cand, empty)
    rows = []
    for c in cand.codes.codes:
        name = cand.codes.name_of(c) if cand.codes.kind == "text" else c
        rows.append((name, pixels[c], feats_with[c]))
        progress.info(f"class {name}: {pixels[c]} pixels in {feats_with[c]} polygons")
    total = sum(pixels.values())
    progress.info(f"{len(rows)} classes, {total} pixels")
    progress.set(1.0)
    if output:
        write_table(output, ["class", "pixels", "polygons"], rows)
    return {"CLASSES": rows, "TOTAL_PIXELS": total, N.output: output}


def _beside(output, what, key, fraction):
    """Where a split set goes when a job asks for it without naming its file: beside
    OUTPUT, as the dialog proposes it (train.gpkg -> train_valid.gpkg). A file there is
    not ours to overwrite: an error names the parameter that takes a name."""
    stem, ext = os.path.splitext(output.split("|")[0])
    path = f"{stem}_{what}{ext or '.gpkg'}"
    if os.path.exists(path):
        raise ParameterError(f"{fraction} is above 0 and {key} was not given; '{path}' "
                             f"exists already: give {key}", key)
    return path


def sample_selection(job: SelectionJob, progress: Optional[ProgressLike] = None) -> Dict[str, Any]:
    """Select samples with OTB's strategies and split them into train/valid/test sets.

    Outputs point layers at pixel centres carrying the class field (same name; 'class'
    for a label raster) and 'originfid' (the polygon they come from, -1 for a label
    raster). Text classes get integer codes saved in '<output>.classes.csv'.
    """
    progress = progress or Progress()
    check_choice(job.strategy, STRATEGIES, N.strategy, "strategy")
    check_choice(job.sampler, SAMPLERS, N.sampler, "sampler")
    step = max(1, int(job.grid_step or 1))
    split = job.valid_fraction > 0 or job.test_fraction > 0
    if job.valid_fraction > 0 and not job.output_valid:
        job = replace(job, output_valid=_beside(job.output, "valid", N.output_valid,
                                                N.valid_fraction))
        progress.info(f"{N.output_valid} was not given: the validation set goes to "
                      f"{job.output_valid}")
    if job.test_fraction > 0 and not job.output_test:
        raise ParameterError(f"{N.test_fraction} is above 0: give {N.output_test} too",
                             N.output_test)
    if bool(job.vector) == bool(job.labels):
        raise GridError(f"give either {N.vector} (training polygons or points) or "
                        f"{N.labels} (a label raster), not both" if job.vector else
                        f"give {N.vector} (training polygons or points) or {N.labels} (a label "
                        "raster)", N.vector)
    for p, key in ((job.output, N.output), (job.output_valid, N.output_valid),
                   (job.output_test, N.output_test)):
        if p:
            vector_driver(p, key)
    if job.vector:
        sel = _select_in_vector(job, step, progress)
    else:
        sel = _select_in_labels(job, step, progress)
    _check_cancel(progress)
    notes: list = []
    sets = split_sets(sel.code, sel.group, job.valid_fraction if split else 0,
                      job.test_fraction if split else 0, job.split_by_polygon, job.seed,
                      notes, _namer(sel.codes))
    _log_classes(sel, sets, split, progress)
    for note in notes:
        progress.info(f"Warning: {note}")
    result = _write_sets(job, sel, sets, progress)
    if sel.codes.kind == "text":
        for path in (job.output, job.output_valid, job.output_test):
            if path:
                sel.codes.write(lookup_path(path))
    result["SAMPLES"] = int(len(sel.rows))
    result["CLASSES"] = {(sel.codes.name_of(c) if sel.codes.kind == "text" else c):
                         int(sel.required[c]) for c in sorted(sel.required)}
    progress.set(1.0)
    return result


def _log_classes(sel, sets, split, progress):
    """One log line per class: pixels selected of the class's, and the split."""
    for c in sorted(sel.totals):
        name = sel.codes.name_of(c) if sel.codes.kind == "text" else c
        mine = sel.code == c
        line = f"class {name}: {int(np.count_nonzero(mine))} of {sel.totals[c]} pixels selected"
        if split:
            line += (f" (train {np.count_nonzero(mine & (sets == 0))}, valid "
                     f"{np.count_nonzero(mine & (sets == 1))}, test "
                     f"{np.count_nonzero(mine & (sets == 2))})")
        progress.info(line)


def _write_sets(job, sel, sets, progress):
    """The points of each set to OUTPUT, OUTPUT_VALID and OUTPUT_TEST, all or none."""
    x, y = pixel_centre(sel.grid.geotransform, sel.cols, sel.rows)
    kind = "text" if sel.codes.kind == "text" else "int"
    fields = [(sel.field, kind), ("originfid", "int32")]
    values = np.asarray(sel.values, dtype=object if kind == "text" else None)
    result = {N.output: job.output, N.output_valid: job.output_valid,
              N.output_test: job.output_test}
    writers = []
    try:
        for path, key, s in ((job.output, N.output, 0), (job.output_valid, N.output_valid, 1),
                             (job.output_test, N.output_test, 2)):
            if not path:
                continue
            keep = sets == s
            w = PointWriter(path, sel.grid.crs_wkt, fields, key)
            writers.append(w)
            w.write(x[keep], y[keep], [values[keep], sel.fids[keep]])
            result[{0: "TRAIN", 1: "VALID", 2: "TEST"}[s]] = int(np.count_nonzero(keep))
            _check_cancel(progress)
        for w in writers:
            w.commit()
    except BaseException:
        for w in writers:
            w.abort()
        raise
    return result


@dataclass
class Selected:
    """The samples a selection chose, before the split: pixels, classes and where from."""
    codes: ClassCodes            # class values <-> codes
    grid: Grid                   # the image's grid
    rows: np.ndarray             # pixel of each sample
    cols: np.ndarray
    code: np.ndarray             # class code of each sample
    group: np.ndarray            # what a split by polygon keeps together (feature, block)
    field: str                   # the class field written with the points
    values: Any                  # class value of each sample, as written
    fids: np.ndarray             # feature id of each sample's polygon (-1: from labels)
    totals: Dict[int, int]       # pixels of each class
    required: Dict[int, int]     # samples asked of each class


def _select_in_vector(job, step, progress):
    cand = candidates(job.image, job.vector, job.field, job.mask, step, progress)
    pixels, _, empty = _class_table(cand)
    if empty and step > 1:
        names = ", ".join(cand.codes.name_of(c) for c in empty)
        raise GridError(f"no pixel of the {N.grid_step} {step} lattice falls in the polygons "
                        f"of {names}: lower {N.grid_step} (1 keeps every pixel) or draw larger "
                        "polygons", N.grid_step)
    if empty:
        raise _empty_class_error(cand, empty, N.mask if job.mask else N.vector)
    by_class = parse_class_counts(job.class_counts, cand.codes.code if cand.codes.kind == "text"
                                  else None) if job.strategy == "byclass" else None
    req = required_counts(pixels, job.strategy, job.samples, job.percent, by_class)
    progress.set(0.3)
    span_idx, rows, cols = select(cand.spans, cand.span_class, cand.counts, req,
                                  job.sampler, job.seed, cand.mask, step)
    feature = cand.spans.feature[span_idx]
    sample_code = cand.span_class[span_idx]
    values = [cand.feats.value[i] for i in feature.tolist()] if cand.codes.kind == "text" \
        else sample_code
    return Selected(cand.codes, cand.grid, rows, cols, sample_code, feature, job.field, values,
                    cand.feats.fid[feature], pixels, req)


def _select_in_labels(job, step, progress):
    ds = open_raster(job.image, N.image, "image")
    grid = grid_of(ds)
    lds = open_raster(job.labels, N.labels, "image")
    require_same_grid(grid_of(lds), grid, "the label raster", N.labels)
    band = lds.GetRasterBand(1)
    if band.DataType in (gdal.GDT_Float32, gdal.GDT_Float64):
        raise GridError("the label raster holds floating-point values; convert it to an "
                        "integer type (Raster > Conversion > Translate)", N.labels)
    nodata = job.labels_nodata if job.labels_nodata is not None else band.GetNoDataValue()
    mask = _Mask(job.mask, grid) if job.mask else None
    strip = 256

    def strips():
        for r0 in range(0, grid.height, strip):
            n = min(strip, grid.height - r0)
            lab = band.ReadAsArray(0, r0, grid.width, n).astype(np.int64)
            ok = np.ones(lab.shape, dtype=bool) if nodata is None else lab != int(nodata)
            if mask is not None:
                ok &= mask.read_rows(r0, n)
            if step > 1:
                rr = (np.arange(r0, r0 + n) % step == 0)[:, None]
                cc = (np.arange(grid.width) % step == 0)[None, :]
                ok &= rr & cc
            yield r0, n, lab, ok

    totals: Dict[int, int] = {}
    for r0, n, lab, ok in strips():
        _check_cancel(progress)
        v, n_of = np.unique(lab[ok], return_counts=True)
        for a, b in zip(v.tolist(), n_of.tolist()):
            totals[a] = totals.get(a, 0) + b
        progress.set(0.3 * (r0 + n) / grid.height)
    if not totals:
        raise GridError("the label raster has no labelled pixel (all nodata or masked)",
                        N.labels)
    by_class = parse_class_counts(job.class_counts) if job.strategy == "byclass" else None
    req = required_counts(totals, job.strategy, job.samples, job.percent, by_class)
    rng = np.random.default_rng(job.seed)
    chosen = {c: choose(totals[c], req[c], job.sampler, rng) for c in sorted(req)}
    seen = {c: 0 for c in totals}
    out_r, out_c, out_code = [], [], []
    for r0, n, lab, ok in strips():
        _check_cancel(progress)
        for c in sorted(req):
            pos = np.flatnonzero(ok & (lab == c))
            if not len(pos):
                continue
            lo, hi = np.searchsorted(chosen[c], [seen[c], seen[c] + len(pos)])
            pick = pos[chosen[c][lo:hi] - seen[c]]
            seen[c] += len(pos)
            out_r.append(r0 + pick // grid.width)
            out_c.append(pick % grid.width)
            out_code.append(np.full(len(pick), c, dtype=np.int64))
        progress.set(0.3 + 0.4 * (r0 + n) / grid.height)
    rows, cols = np.concatenate(out_r), np.concatenate(out_c)
    code = np.concatenate(out_code)
    order = np.lexsort((cols, rows))
    rows, cols, code = rows[order], cols[order], code[order]
    blocks_per_row = -(-grid.width // LABEL_BLOCK)
    group = (rows // LABEL_BLOCK) * blocks_per_row + cols // LABEL_BLOCK
    codes = ClassCodes([str(c) for c in sorted(totals)], sorted(totals), "int")
    return Selected(codes, grid, rows, cols, code, group, job.field or "class", code,
                    np.full(len(rows), -1, dtype=np.int64), totals, req)


def _namer(codes):
    """A class's name from its code (text classes), else the code itself."""
    return (lambda c: codes.name_of(c)) if codes.kind == "text" else str


def training_samples(image: str, vector: str, field: str, samples: int, valid_fraction: float,
                     seed: int, progress: Optional[ProgressLike] = None,
                     notes: Optional[List[str]] = None) -> Any:
    """Up to `samples` random pixels per class of polygons or points, split by polygon.

    Returns (xy (N, 2) pixel centres in the image's CRS, class codes (N,), set (N,): 0
    train / 1 validation, ClassCodes). Text classes use the lookup table beside the
    vector when there is one (written by rsdl:sampleselection). What the split left
    small classes (kept whole, no validation sample) is appended to `notes`.
    """
    progress = progress or Progress()
    job = SelectionJob(image, "", vector=vector, field=field, strategy="constant",
                       samples=max(1, int(samples)), sampler="random", seed=seed)
    sel = _select_in_vector(job, 1, progress)
    codes, grid, rows, cols, code, values = (sel.codes, sel.grid, sel.rows, sel.cols, sel.code,
                                             sel.values)
    lp = lookup_path(vector)
    if codes.kind == "text" and os.path.exists(lp):
        table = ClassCodes.read(lp)
        missing = sorted(set(codes.names) - set(table.names))
        if missing:
            raise GridError(f"classes {missing} are not in the lookup table '{lp}'", N.field)
        code = table.codes_of(values)
        codes = ClassCodes([n for n in table.names if n in set(codes.names)],
                           [table.code(n) for n in table.names if n in set(codes.names)], "text")
    sets = split_sets(code, sel.group, valid_fraction, 0.0, True, seed, notes, _namer(codes))
    x, y = pixel_centre(grid.geotransform, cols, rows)
    return np.column_stack([x, y]), np.asarray(code, dtype=np.int64), sets, codes
