"""Raster readers and writers (GDAL only)."""
import os
import queue
import threading
from typing import Any

import numpy as np
from osgeo import gdal, osr

from ..errors import GridError, RsdlIOError
from .grid import Grid
from .output import AtomicFile, gdal_checked, io_error
from .windows import Window, crop

gdal.UseExceptions()

GDAL_TYPES = {
    "uint8": gdal.GDT_Byte, "uint16": gdal.GDT_UInt16, "int16": gdal.GDT_Int16,
    "uint32": gdal.GDT_UInt32, "int32": gdal.GDT_Int32, "float32": gdal.GDT_Float32,
    "float64": gdal.GDT_Float64,
}
NUMPY_TYPES = {v: k for k, v in GDAL_TYPES.items()}

#: default nodata value written in outputs of each type
DEFAULT_NODATA = {"uint8": 255, "uint16": 65535, "int16": -32768, "int32": -2147483648,
                  "uint32": 4294967295, "float32": -9999.0, "float64": -9999.0}


def smallest_int_type(values):
    """The smallest integer GDAL type holding all `values` (float64 beyond int32)."""
    lo, hi = (int(values.min()), int(values.max())) if len(values) else (0, 0)
    for t in ("uint8", "uint16", "int16", "int32"):
        info = np.iinfo(t)
        if info.min <= lo and hi <= info.max:
            return t
    return "float64"


#: what Patches extraction writes, by the RSDL_FORMAT metadata item
WRITTEN_BY_EXTRACTION = {"patches": "a patches image", "label_patches": "a label patches image",
                         "labels": "a labels raster (1 x n)"}


def open_raster(path, param=None, role=None):
    """Open a raster for reading; errors name the parameter.

    `role` refuses a raster that cannot play it: "image" (an image on a map: not a
    patches image or labels from Patches extraction), "patches" (not labels), "labels"
    (not a patches image), "classes" (one band of class values)."""
    if not path:
        raise RsdlIOError("no raster given", param)
    try:
        ds = gdal.Open(str(path), gdal.GA_ReadOnly)
    except RuntimeError as exc:
        if not os.path.exists(str(path)) and os.path.isabs(str(path)):
            raise RsdlIOError(f"'{path}' does not exist", param) from exc
        raise RsdlIOError(f"'{path}' is not a raster GDAL can read: choose a raster file "
                          "(GeoTIFF...)", param) from exc
    if ds is None or ds.RasterCount == 0:
        raise RsdlIOError(f"'{path}' is not a raster GDAL can read: choose a raster file "
                          "(GeoTIFF...)", param)
    fmt = ds.GetMetadataItem("RSDL_FORMAT") or ""
    name = os.path.basename(str(path))
    if role in ("image", "classes") and fmt in WRITTEN_BY_EXTRACTION:
        raise GridError(f"'{name}' is {WRITTEN_BY_EXTRACTION[fmt]} written by Patches "
                        "extraction, not an image on a map: give the image itself", param)
    if role == "patches" and fmt in ("labels", "label_patches"):
        raise GridError(f"'{name}' is {WRITTEN_BY_EXTRACTION[fmt]}, not the patches of a "
                        "source: give the OUTPUT_SOURCEn image of Patches extraction", param)
    if role == "labels" and fmt == "patches":
        raise GridError(f"'{name}' is a patches image (the pixels of a source), not labels: "
                        "give the OUTPUT_LABELS raster of Patches extraction", param)
    if role == "classes" and ds.RasterCount != 1:
        raise GridError(f"'{name}' has {ds.RasterCount} bands; a class map has one band of "
                        "class values (is it the image rather than its class map?)", param)
    return ds


def grid_of(ds):
    return Grid(ds.RasterXSize, ds.RasterYSize, tuple(ds.GetGeoTransform()),
                ds.GetProjectionRef() or "")


def same_crs(wkt_a, wkt_b):
    if not wkt_a or not wkt_b:
        return True
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(wkt_a)
    b.ImportFromWkt(wkt_b)
    return bool(a.IsSame(b))


def require_same_grid(grid, ref, what, param, ref_name="INPUT"):
    """Raise a GridError unless `grid` (e.g. a mask's) is the grid of `ref`: same size,
    geotransform and CRS. The message gives both and how to resample."""
    same = (grid.width, grid.height) == (ref.width, ref.height) and np.allclose(
        grid.geotransform, ref.geotransform, atol=1e-6 * abs(ref.geotransform[1])) and \
        same_crs(grid.crs_wkt, ref.crs_wkt)
    if not same:
        raise GridError(f"{what} ({grid.width} x {grid.height}, geotransform "
                        f"{tuple(round(v, 6) for v in grid.geotransform)}) is not on the grid "
                        f"of {ref_name} ({ref.width} x {ref.height}, "
                        f"{tuple(round(v, 6) for v in ref.geotransform)}); resample it with "
                        f"Raster > Projections > Warp, using {ref_name} as the target", param)


class SourceReader:
    """Reads windows of one source as (rows, cols, bands) arrays.

    Parts of a window outside the image are filled with the source's nodata value (0
    when it has none). A source in another CRS than the reference is warped on the fly
    (nearest neighbour) into the reference CRS at its own resolution.
    """

    def __init__(self, path, param, nodata=None, ref_wkt=None, log=None, mirror=0):
        self.path = str(path)
        self.param = param
        self.ds = open_raster(path, param, "image")
        wkt = self.ds.GetProjectionRef()
        if ref_wkt and wkt and not same_crs(wkt, ref_wkt):
            try:
                self.ds = gdal.AutoCreateWarpedVRT(self.ds, wkt, ref_wkt, gdal.GRA_NearestNeighbour)
            except RuntimeError as exc:
                raise GridError(f"cannot warp '{path}' into the CRS of SOURCE1: {exc}", param) from exc
            if log:
                log(f"{param}: its CRS differs from SOURCE1's; warping it on the fly "
                    "(nearest neighbour) into SOURCE1's CRS")
        self.grid = grid_of(self.ds)
        self.grid.check_north_up(param)
        self.bands = self.ds.RasterCount
        band_nodata = self.ds.GetRasterBand(1).GetNoDataValue()
        self.nodata = band_nodata if nodata is None else nodata
        self.dtype = NUMPY_TYPES.get(self.ds.GetRasterBand(1).DataType, "float64")
        self.image = self.grid               # the file's own grid
        self.margin = (mirror // 2, mirror - 1 - mirror // 2) if mirror > 1 else (0, 0)
        if mirror > 1:
            self._mirror_grid(param)

    def _mirror_grid(self, param):
        """`mirror` = a receptive field: the image seen through a grid grown by RF // 2
        pixels before and RF - 1 - RF // 2 after on each axis, whose outer pixels mirror
        the image's (reflection about the edge pixels), so that every pixel of the image
        is the centre of a whole patch."""
        before, after = self.margin
        g = self.grid
        if before >= min(g.width, g.height) or after >= min(g.width, g.height):
            raise GridError(f"the image ({g.width} x {g.height} pixels) is too small to be "
                            f"mirrored by {before} pixels: untick PAD", param)
        gt = list(g.geotransform)
        gt[0] -= before * gt[1]
        gt[3] -= before * gt[5]
        self.grid = Grid(g.width + before + after, g.height + before + after, tuple(gt),
                         g.crs_wkt)

    def block_row_bytes(self, width):
        """Bytes of one row of this source's blocks across `width` of its pixels: what
        GDAL's cache must hold for each block to be decompressed once while tiles move
        along a row (a 256 x 256 block of a 180-band series is 23 MB)."""
        bx, by = self.ds.GetRasterBand(1).GetBlockSize()
        cols = min(self.grid.width, int(width) + bx)
        return cols * min(by, self.grid.height) * self.bands * np.dtype(self.dtype).itemsize

    def read(self, window, dtype=np.float32):
        """The window as a (height, width, bands) array, padded outside the image."""
        dtype = np.dtype(dtype)
        if any(self.margin):
            return self._read_mirrored(window, dtype)
        inside = crop(window, self.grid.width, self.grid.height)
        if inside == window:
            return self._read(window, dtype)
        fill = 0 if self.nodata is None else self.nodata
        out = np.full((window.height, window.width, self.bands), fill, dtype=dtype)
        if not inside.empty:
            out[inside.relative_to(window).slices()] = self._read(inside, dtype)
        return out

    def _read_mirrored(self, window, dtype):
        """A window of the mirrored grid: image pixels where it lies on the image, their
        reflection in the margins, nodata beyond."""
        before = self.margin[0]
        w, h = self.image.width, self.image.height
        orig = Window(window.col_off - before, window.row_off - before, window.width,
                      window.height)
        if crop(orig, w, h) == orig:                      # the common case: no margin
            return self._read(orig, dtype)

        def source(start, n, size, grown):
            i = np.arange(start, start + n)
            ok = (i >= -before) & (i < size + grown - before)
            j = np.where(i < 0, -i, np.where(i >= size, 2 * (size - 1) - i, i))
            return j, ok & (j >= 0) & (j < size)

        cols, cok = source(orig.col_off, orig.width, w, self.grid.width)
        rows, rok = source(orig.row_off, orig.height, h, self.grid.height)
        fill = 0 if self.nodata is None else self.nodata
        out = np.full((window.height, window.width, self.bands), fill, dtype=dtype)
        if cok.any() and rok.any():
            c0, c1 = cols[cok].min(), cols[cok].max() + 1
            r0, r1 = rows[rok].min(), rows[rok].max() + 1
            data = self._read(Window(int(c0), int(r0), int(c1 - c0), int(r1 - r0)), dtype)
            out[np.ix_(np.flatnonzero(rok), np.flatnonzero(cok))] = \
                data[np.ix_(rows[rok] - r0, cols[cok] - c0)]
        return out

    def _read(self, win, dtype):
        """GDAL writes the pixels straight into a (rows, cols, bands) array of `dtype`:
        one pass, converting as it goes, instead of a band-by-band array moved and cast."""
        native = np.dtype(self.dtype)
        if dtype.name not in GDAL_TYPES:            # a type GDAL does not write (int8...)
            return self._read(win, np.dtype("float64")).astype(dtype)
        if dtype.kind == "f" and native != dtype and native.name in GDAL_TYPES:
            # integers (or doubles) to float: numpy converts a third faster than GDAL
            return self._read(win, native).astype(dtype)
        out = np.empty((win.height, win.width, self.bands), dtype)
        item = dtype.itemsize
        try:
            self.ds.ReadRaster(win.col_off, win.row_off, win.width, win.height,
                               buf_type=GDAL_TYPES[dtype.name], buf_obj=out,
                               buf_pixel_space=item * self.bands,
                               buf_line_space=item * self.bands * win.width,
                               buf_band_space=item)
        except RuntimeError as exc:
            raise RsdlIOError(f"cannot read {win} of '{self.path}': {exc}", self.param) from exc
        return out

    def nodata_mask(self, array):
        """True where every band of a (rows, cols, bands) array equals the nodata value."""
        if self.nodata is None:
            return np.zeros(array.shape[:2], dtype=bool)
        nan = isinstance(self.nodata, float) and np.isnan(self.nodata)
        # band by band: six times faster than (array == nodata).all(axis=-1) on pixel-
        # interleaved arrays, and no (rows, cols, bands) temporary
        mask = None
        for b in range(array.shape[-1]):
            band = np.isnan(array[..., b]) if nan else array[..., b] == self.nodata
            if mask is None:
                mask = band
            else:
                mask &= band
        return mask if mask is not None else np.ones(array.shape[:2], dtype=bool)

    def close(self):
        self.ds = None


def compression():
    """ZSTD where GDAL has it (half DEFLATE's CPU time, smaller files), else DEFLATE."""
    opts = gdal.GetDriverByName("GTiff").GetMetadataItem("DMD_CREATIONOPTIONLIST") or ""
    return "ZSTD" if "ZSTD" in opts else "DEFLATE"


class TiledWriter:
    """A tiled, compressed GeoTIFF written by a background thread.

    Tiles are written into a temporary file beside the target (engine/output.py);
    ``commit`` flushes and closes it (any GDAL error, a full disk included, is raised
    there) and renames it onto the target, ``abort`` removes it. The queue is bounded, so
    memory stays bounded when the disk is slower than the model.
    """

    def __init__(self, path, width, height, bands, dtype, geotransform, crs_wkt, nodata,
                 band_names=None, metadata=None, block=256, max_pending=2, param="OUTPUT",
                 classes=None):
        self.path = str(path)
        self.param = param
        self.dtype = np.dtype(dtype)
        self.out = AtomicFile(self.path, param, ext=".tif")
        self.tmp = self.out.tmp
        # ZSTD level 1: half the CPU of GDAL's default level (9) for files about a third
        # larger; on a CPU-bound run that CPU is taken from the model (docs/performance.md)
        options = ["TILED=YES", f"BLOCKXSIZE={block}", f"BLOCKYSIZE={block}",
                   f"COMPRESS={compression()}", "ZSTD_LEVEL=1", "BIGTIFF=IF_SAFER",
                   "NUM_THREADS=1"]
        if self.dtype.kind == "f":
            options.append("PREDICTOR=3")
        elif self.dtype.itemsize > 1:
            options.append("PREDICTOR=2")
        self.ds: Any = None
        try:
            with gdal_checked(self.path, param):
                drv = gdal.GetDriverByName("GTiff")
                self.ds = drv.Create(self.tmp, width, height, bands, GDAL_TYPES[self.dtype.name],
                                     options)
                self.ds.SetGeoTransform(geotransform)
                if crs_wkt:
                    self.ds.SetProjection(crs_wkt)
                for b in range(bands):
                    band = self.ds.GetRasterBand(b + 1)
                    if nodata is not None:
                        band.SetNoDataValue(nodata)
                    if band_names:
                        band.SetDescription(band_names[b])
                if metadata:
                    self.ds.SetMetadata({k: str(v) for k, v in metadata.items()})
                if classes:
                    from .styles import embed_classes
                    embed_classes(self.ds.GetRasterBand(1), self.dtype, classes["codes"],
                                  classes["names"])
        except RsdlIOError:
            self._close_quietly()
            self.out.abort()
            raise
        self.error = None
        self.queue: "queue.Queue[Any]" = queue.Queue(maxsize=max_pending)
        self.thread = threading.Thread(target=self._run, name="rsdl-writer", daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            item = self.queue.get()
            if item is None:
                return
            window, array = item
            if self.error is not None:
                continue
            try:
                with gdal_checked(self.path, self.param):
                    for b in range(array.shape[2]):
                        self.ds.GetRasterBand(b + 1).WriteArray(array[:, :, b], window.col_off,
                                                                window.row_off)
            except Exception as exc:  # reported by write() or commit()
                self.error = exc

    def _check(self):
        if self.error is not None:
            if isinstance(self.error, RsdlIOError):
                raise self.error
            raise io_error(self.path, self.error, self.param)

    def write(self, window, array):
        """Queue a (rows, cols, bands) tile for writing at ``window``."""
        self._check()
        self.queue.put((window, np.asarray(array, dtype=self.dtype)))

    def _stop(self):
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()

    def commit(self):
        self._stop()
        try:
            self._check()
            with gdal_checked(self.path, self.param):
                self.ds.FlushCache()
                self.ds = None
        except RsdlIOError:
            self.abort()
            raise
        self.out.commit()

    def _close_quietly(self):
        try:
            with gdal_checked(self.path, self.param):
                self.ds = None
        except RsdlIOError:
            pass

    def abort(self):
        try:
            while True:
                self.queue.get_nowait()
        except queue.Empty:
            pass
        self._stop()
        self._close_quietly()
        self.out.abort()
