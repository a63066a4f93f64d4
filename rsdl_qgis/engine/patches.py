"""Patch extraction into OTBTF's patches-image format, streamed to disk.

A patches image stacks n patches of size x size pixels in rows: width = size, height =
n x size, with the source's bands, data type and spacing. Labels go to a 1 x n raster.
Each source's patch is centred on the pixel of that source containing the sample point
(for even sizes, the centre is index size/2, 0-based), so sources of different
resolutions and extents see the same place.
"""
import os
from typing import Any, Dict, List, Optional

import numpy as np
from osgeo import gdal, osr

from ..errors import CancelledError, GridError, ParameterError, RsdlIOError
from .declare import declaration, names, numbered
from .grid import pixel_index
from .jobs import PatchesJob, PatchSource  # noqa: F401 (the Python API's)
from .model import ProgressLike
from .output import AtomicFile, gdal_checked, io_error, remove_quietly, temp_path
from .progress import Progress
from .raster import (
    GDAL_TYPES,
    NUMPY_TYPES,
    choose_bands,
    compression,
    grid_of,
    open_raster,
    same_crs,
    smallest_int_type,
)
from .vectors import ClassCodes, PointWriter, lookup_path, read_features, vector_driver

gdal.UseExceptions()

#: the parameters errors name (declare.py): the job's, and each source's patches output
N, OUTPUT = names(PatchesJob), declaration(PatchSource, "output")
SETTING = names(PatchSource)           # a source's settings: SOURCEn_PATCH_SIZE...


class _Source:
    """One raster: its grid, and where each sample's patch sits in it."""

    def __init__(self, path, size, nodata, param, ref_wkt, bands=None, log=None):
        self.param = param
        self.path = str(path)
        self.ds = open_raster(path, param, "image")
        # the bands cut, then the alpha band (read for the nodata check only)
        self.band_list, self.alpha = choose_bands(self.ds, bands, f"{param}_{SETTING.bands}", param, log)
        self.read_list = self.band_list + ([self.alpha] if self.alpha else [])
        self.grid = grid_of(self.ds)
        self.grid.check_north_up(param)
        if size < 1:
            raise ParameterError(f"patch size must be at least 1 (got {size})",
                                 f"{param}_{SETTING.patch_size}")
        if size > min(self.grid.width, self.grid.height):
            raise GridError(f"patch size {size} is larger than the raster "
                            f"({self.grid.width} x {self.grid.height})", f"{param}_{SETTING.patch_size}")
        self.size = int(size)
        self.bands = len(self.band_list)
        band = self.ds.GetRasterBand(self.band_list[0])
        self.dtype = np.dtype(NUMPY_TYPES.get(band.DataType, "float64"))
        self.nodata = band.GetNoDataValue() if nodata is None else nodata
        self.ct = None
        wkt = self.grid.crs_wkt
        if ref_wkt and wkt and not same_crs(wkt, ref_wkt):
            src, dst = osr.SpatialReference(), osr.SpatialReference()
            src.ImportFromWkt(ref_wkt)
            dst.ImportFromWkt(wkt)
            for s in (src, dst):
                s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
            self.ct = osr.CoordinateTransformation(src, dst)

    def corners(self, xy):
        """Top-left pixel of each sample's patch, and whether the patch is inside."""
        if self.ct is not None and len(xy):
            xy = np.asarray(self.ct.TransformPoints(xy))[:, :2]
        col, row = pixel_index(self.grid.geotransform, xy)
        x0, y0 = col - self.size // 2, row - self.size // 2
        inside = (x0 >= 0) & (y0 >= 0) & (x0 + self.size <= self.grid.width) & \
            (y0 + self.size <= self.grid.height)
        return x0, y0, inside

    def nodata_in(self, patches):
        """For (n, bands read, size, size) patches: True where any value is nodata, or
        where the alpha band (read last) is 0."""
        bad = np.zeros(len(patches), dtype=bool)
        if self.alpha:
            bad |= (patches[:, -1] == 0).reshape(len(patches), -1).any(axis=1)
        if self.nodata is None:
            return bad
        flat = patches[:, :self.bands].reshape(len(patches), -1)
        if np.isnan(self.nodata):
            return bad | np.isnan(flat).any(axis=1)
        return bad | (flat == self.nodata).any(axis=1)


#: side of the blocks (pixels of SOURCE1) that order the reads
CHUNK = 256


def _groups(src, x0, y0):
    """Patches of one CHUNK x CHUNK block lie in one group."""
    key = (y0 // CHUNK) * (1 << 32) + x0 // CHUNK
    order = np.argsort(key, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(key[order])) + 1)


def _read_groups(src, ds, groups, x0, y0, buf):
    """Read the patches of some groups into buf. Patches close together in a group come
    from a single read of their bounding window."""
    s = src.size
    try:
        for group in groups:
            gx, gy = x0[group], y0[group]
            xmin, ymin = int(gx.min()), int(gy.min())
            w, h = int(gx.max()) - xmin + s, int(gy.max()) - ymin + s
            # one read of the bounding window costs about as much as a few reads of a
            # patch (measured: a 272 x 272 x 3 window ~ 2.5 patch reads), so neighbours
            # share a read unless they are very far apart
            n = len(src.read_list)
            if len(group) > 1 and w * h * n <= 100000 * len(group):
                win = ds.ReadAsArray(xmin, ymin, w, h, band_list=src.read_list).reshape(n, h, w)
                for j, x, y in zip(group.tolist(), (gx - xmin).tolist(), (gy - ymin).tolist()):
                    buf[j] = win[:, y:y + s, x:x + s]
            else:
                for j, x, y in zip(group.tolist(), gx.tolist(), gy.tolist()):
                    ds.ReadAsArray(x, y, s, s, buf_obj=buf[j], band_list=src.read_list)
    except RuntimeError as exc:
        raise RsdlIOError(f"cannot read '{src.path}': {exc}", src.param) from exc


class _Spool:
    """Accepted patches appended to a hidden raw file, turned into a GeoTIFF at the end."""

    def __init__(self, output, bands, size, dtype, spacing, nodata, metadata, param):
        self.output, self.bands, self.size = str(output), bands, size
        self.dtype, self.spacing, self.nodata = np.dtype(dtype), spacing, nodata
        self.metadata, self.param = metadata, param
        self.out = AtomicFile(self.output, param, ext=".tif")
        self.raw = temp_path(self.output, ".raw")
        try:
            self.fh = open(self.raw, "wb")
        except OSError as exc:
            raise io_error(self.output, exc, param) from exc
        self.count = 0

    def append(self, patches):
        try:
            self.fh.write(np.ascontiguousarray(patches, dtype=self.dtype).tobytes())
        except OSError as exc:
            raise io_error(self.output, exc, self.param) from exc
        self.count += len(patches)

    def commit(self, order, chunk=1024):
        """Write the patches image to its temporary name; `publish` renames it. Patch i of
        the image is record order[i] of the spool (patches are read in spatial order and
        written in the points' order)."""
        n, s, b = self.count, self.size, self.bands
        try:
            self.fh.close()
            # uncompressed, as OTBTF writes them: training reads them fastest that way
            options = ["BIGTIFF=IF_SAFER", f"BLOCKYSIZE={s * max(1, 64 // s)}"]
            with gdal_checked(self.output, self.param):
                ds = gdal.GetDriverByName("GTiff").Create(self.out.tmp, s, n * s, b,
                                                          GDAL_TYPES[self.dtype.name], options)
                ds.SetGeoTransform((0.0, self.spacing[0], 0.0, 0.0, 0.0, self.spacing[1]))
                if self.metadata:
                    ds.SetMetadata({k: str(v) for k, v in self.metadata.items()}, "")
                for i in range(b):
                    if self.nodata is not None:
                        ds.GetRasterBand(i + 1).SetNoDataValue(float(self.nodata))
                for p0 in range(0, n, chunk):
                    p1 = min(n, p0 + chunk)
                    data = self._records(order[p0:p1])
                    block = np.ascontiguousarray(
                        data.transpose(1, 0, 2, 3).reshape(b, (p1 - p0) * s, s))
                    ds.WriteRaster(0, p0 * s, s, (p1 - p0) * s, block.tobytes(),
                                   buf_type=GDAL_TYPES[self.dtype.name])
                ds.FlushCache()
                ds = None
        except OSError as exc:
            self.abort()
            raise io_error(self.output, exc, self.param) from exc
        except BaseException:
            self.abort()
            raise
        finally:
            remove_quietly(self.raw)

    def _records(self, wanted):
        """Spool records `wanted`, in that order, through a mapping of the spool made for
        this chunk only (the engine's memory does not grow with the spool's size)."""
        import mmap
        s, b = self.size, self.bands
        with open(self.raw, "rb") as fh:
            view = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            if hasattr(mmap, "MADV_RANDOM"):
                view.madvise(mmap.MADV_RANDOM)   # records are picked, not streamed
            records = np.frombuffer(view, dtype=self.dtype).reshape(self.count, b, s, s)
            ids = np.sort(wanted)                               # forward through the file
            out = records[ids][np.searchsorted(ids, wanted)]
            del records
            return out
        finally:
            view.close()

    def publish(self):
        self.out.commit()

    def abort(self):
        if not self.fh.closed:
            self.fh.close()
        remove_quietly(self.raw)
        self.out.abort()


def _read_points(job, ref_wkt, progress):
    """Map coordinates (in SOURCE1's CRS) and class values of the sample points."""
    feats = read_features(job.vector, job.field or None, _MapGrid(ref_wkt), N.vector, N.field,
                          progress.info)
    if feats.has_polygons:
        raise GridError(f"{N.vector} holds polygons; patches are cut around points: run "
                        "Sample selection first to turn polygons into sample points",
                        N.vector)
    return feats


class _MapGrid:
    """A stand-in grid whose 'pixels' are map coordinates (identity geotransform)."""

    def __init__(self, crs_wkt):
        self.crs_wkt = crs_wkt
        self.geotransform = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def extract_patches(job: PatchesJob, progress: Optional[ProgressLike] = None) -> Dict[str, Any]:
    """Cut patches of every source around every point; write OTBTF patches images.

    Returns counts of kept and rejected samples, and the output paths.
    """
    progress = progress or Progress()
    srcs, label_src = _open_sources(job, progress.info)
    feats = _read_points(job, srcs[0].grid.crs_wkt, progress)
    codes, labels_all, value_of_point = _point_labels(job, feats)
    xy = feats.point_xy
    n_all = len(xy)
    progress.info(f"{n_all} sample points")
    readers = srcs + ([label_src] if label_src else [])
    # where each patch sits; samples whose patch leaves any image are rejected up front
    corners = [r.corners(xy) for r in readers]
    inside = np.ones(n_all, dtype=bool)
    outside_by = {}
    for r, (_, _, ins) in zip(readers, corners):
        outside_by[r.param] = int(np.count_nonzero(inside & ~ins))
        inside &= ins
    out = _PatchOutputs(job, readers, label_src, feats)
    old_cache = gdal.GetCacheMax()
    gdal.SetCacheMax(int(job.cache_mb) * 1024 * 1024)
    try:
        out.open()
        read, nodata_by = _cut(job, readers, label_src, corners, inside, out, progress)
        kept_total = len(read)
        reasons = [f"{v} leave {k}" for k, v in outside_by.items() if v] + \
            [f"{v} contain nodata in {k}" for k, v in nodata_by.items() if v]
        progress.info(f"kept {kept_total} of {n_all} samples"
                      + (f"; rejected: {', '.join(reasons)}" if reasons else ""))
        if kept_total == 0:
            raise GridError(f"no sample was kept out of {n_all}: "
                            + (", ".join(reasons) or "no points") +
                            ". Check that the points fall inside every source, far enough from "
                            "their edges for the patch size, and away from nodata", N.vector)
        # patches were read in spatial order; they are written in the points' order, as
        # OTBTF does: patch i and label i belong to the i-th kept point
        order = np.argsort(read, kind="stable")
        kept = read[order]
        labels = labels_all[kept]
        out.commit(labels, order, kept, value_of_point)
    except BaseException:
        out.abort()
        raise
    finally:
        gdal.SetCacheMax(old_cache)
    if codes is not None and codes.kind == "text":
        for p in (job.output_labels, job.output_points):
            if p:
                codes.write(lookup_path(p))
    progress.set(1.0)
    result: Dict[str, Any] = {"KEPT": int(kept_total), "REJECTED": int(n_all - kept_total),
              N.output_labels: job.output_labels, N.output_points: job.output_points,
              N.output_label_patches: job.output_label_patches}
    for i, s in enumerate(job.sources):
        result[numbered(N.sources, i, OUTPUT)] = s.output
    if codes is not None:
        result["CLASSES"] = {codes.name_of(c): int(np.count_nonzero(labels == c))
                             for c in np.unique(labels).tolist()}
    return result


def _open_sources(job, log=None):
    """The sources (and the label raster), each with its output, checked before reading."""
    if not job.sources:
        raise GridError(f"give at least {numbered(N.sources, 0)}", numbered(N.sources, 0))
    srcs: List[_Source] = []
    for i, s in enumerate(job.sources):
        param, out = numbered(N.sources, i), numbered(N.sources, i, OUTPUT)
        if not s.output:
            raise GridError(f"{param} is given: give {out} too", out)
        srcs.append(_Source(s.path, s.patch_size, s.nodata, param,
                            srcs[0].grid.crs_wkt if srcs else None, s.bands, log))
    if job.output_points:
        vector_driver(job.output_points, N.output_points)
    label_src = None
    if job.label_raster:
        if not job.output_label_patches:
            raise GridError(f"{N.label_raster} is given: give {N.output_label_patches} too",
                            N.output_label_patches)
        label_src = _Source(job.label_raster, job.label_patch_size, None, N.label_raster,
                            srcs[0].grid.crs_wkt)
    if job.output_labels and not job.field:
        raise GridError(f"{N.output_labels} needs {N.field}, the class field of the points",
                        N.field)
    return srcs, label_src


def _point_labels(job, feats):
    """(class codes, code of each point, class value of each point). Text classes take
    the codes of the lookup table beside the points when there is one."""
    value_of_point = [feats.value[i] for i in feats.point_feature.tolist()]
    if not job.field:
        return None, np.zeros(len(feats.point_xy), dtype=np.int64), value_of_point
    if feats.kind == "text":
        lp = lookup_path(job.vector)
        codes = ClassCodes.read(lp) if os.path.exists(lp) else \
            ClassCodes.from_values(feats.value, "text")
        unknown = sorted(set(value_of_point) - set(codes.names))
        if unknown:
            raise GridError(f"classes {unknown} are not in the lookup table '{lp}'", N.field)
    else:
        codes = ClassCodes.from_values(feats.value, "int")
    return codes, codes.codes_of(value_of_point), value_of_point


class _PatchOutputs:
    """Every output of an extraction: one spool per patches image, the kept points, the
    labels. Written to temporary names; renamed together once all are complete."""

    def __init__(self, job, readers, label_src, feats):
        self.job, self.readers, self.label_src, self.feats = job, readers, label_src, feats
        self.spools, self.writer, self.labels = [], None, None

    def open(self):
        job = self.job
        outputs = [s.output for s in job.sources] + \
            ([job.output_label_patches] if self.label_src else [])
        for i, (r, path) in enumerate(zip(self.readers, outputs)):
            label = r is self.label_src
            meta = {"RSDL_PATCH_SIZE": r.size, "RSDL_SOURCE": os.path.basename(r.path),
                    "RSDL_FORMAT": "label_patches" if label else "patches"}
            self.spools.append(_Spool(path, r.bands, r.size, r.dtype,
                                      (r.grid.geotransform[1], r.grid.geotransform[5]),
                                      r.nodata, meta,
                                      N.output_label_patches if label else
                                      numbered(N.sources, i, OUTPUT)))
        if job.output_points:
            kind = "text" if self.feats.kind == "text" else "int"
            fields = ([(job.field, kind)] if job.field else []) + \
                [("patch", "int32"), ("originfid", "int32")]
            self.writer = PointWriter(job.output_points, self.readers[0].grid.crs_wkt, fields,
                                      N.output_points)

    def commit(self, labels, order, kept, value_of_point):
        """Write everything in the points' order: spool record order[i] is patch i, of the
        point kept[i]."""
        if self.job.output_labels:
            self.labels = _write_labels(self.job.output_labels, labels)
        for sp in self.spools:
            sp.commit(order)
        if self.writer is not None:
            feats, xy = self.feats, self.feats.point_xy
            cols = ([np.asarray(value_of_point, dtype=object)[kept]] if self.job.field
                    else []) + [np.arange(len(kept)), feats.fid[feats.point_feature[kept]]]
            self.writer.write(xy[kept, 0], xy[kept, 1], cols)
            self.writer.commit()
            self.writer = None
        # every output is complete: only renames are left
        for sp in self.spools:
            sp.publish()
        if self.labels is not None:
            self.labels.commit()

    def abort(self):
        for sp in self.spools:
            sp.abort()
        if self.writer is not None:
            self.writer.abort()
        if self.labels is not None:
            self.labels.abort()


def _cut(job, readers, label_src, corners, inside, out, progress):
    """Read the patches of the samples inside every source batch by batch, in spatial
    order (blocks of SOURCE1, so every image block is decoded once and neighbours come
    from one read), reject those with nodata, and append the rest to the spools. Returns
    (the point index of each spool record, rejections per source)."""
    bufs = [np.empty((job.batch, len(r.read_list), r.size, r.size), dtype=r.dtype)
            for r in readers]
    candidates = np.flatnonzero(inside)
    x0s, y0s = corners[0][0][candidates], corners[0][1][candidates]
    candidates = candidates[np.lexsort((x0s, y0s, x0s // CHUNK, y0s // CHUNK))]
    nodata_by = {r.param: 0 for r in readers if r is not label_src}
    read = []
    for b0 in range(0, len(candidates), job.batch):
        if progress.cancelled():
            raise CancelledError()
        idx = candidates[b0:b0 + job.batch]
        ok = np.ones(len(idx), dtype=bool)
        for k, (r, (x0, y0, _)) in enumerate(zip(readers, corners)):
            _read_groups(r, r.ds, _groups(r, x0[idx], y0[idx]), x0[idx], y0[idx], bufs[k])
            if r is not label_src:
                bad = r.nodata_in(bufs[k][:len(idx)]) & ok
                nodata_by[r.param] += int(np.count_nonzero(bad))
                ok &= ~bad
        keep = np.flatnonzero(ok)
        for k, sp in enumerate(out.spools):
            sp.append(bufs[k][keep][:, :readers[k].bands])
        read.append(idx[keep])
        progress.set(0.9 * min(1.0, (b0 + len(idx)) / max(1, len(candidates))))
    return (np.concatenate(read) if read else np.zeros(0, np.int64)), nodata_by


def _write_labels(path, labels):
    """The 1 x n labels raster, written to a temporary name: the caller commits it."""
    dtype = smallest_int_type(labels)
    out = AtomicFile(path, N.output_labels, ext=".tif")
    try:
        with gdal_checked(path, N.output_labels):
            ds = gdal.GetDriverByName("GTiff").Create(out.tmp, 1, len(labels), 1, GDAL_TYPES[dtype],
                                                      [f"COMPRESS={compression()}", "BIGTIFF=IF_SAFER"])
            ds.SetMetadata({"RSDL_FORMAT": "labels", "RSDL_PATCH_SIZE": "1"}, "")
            ds.GetRasterBand(1).WriteArray(labels.reshape(-1, 1).astype(dtype))
            ds.FlushCache()
            ds = None
    except BaseException:
        out.abort()
        raise
    return out
