"""Raster readers and writers (GDAL only)."""
import os
import queue
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, osr

from ..errors import GridError, RsdlIOError
from .declare import declaration, names, setting_of
from .grid import Grid
from .jobs import OUTPUT, SELECT, PatchesJob, PatchSource, source_param
from .output import AtomicFile, gdal_checked, io_error
from .windows import Window, crop, intersection

#: the outputs of Patches extraction that the training reads (declare.py)
PATCHES = names(PatchesJob)
PATCH_OUT = setting_of(PATCHES.sources, declaration(PatchSource, "output"))    # OUTPUT_SOURCE

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


def smallest_int_type(values: Any) -> str:
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


def open_raster(path: Any, param: Optional[str] = None, role: Optional[str] = None) -> Any:
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
    kind = ds.GetRasterBand(1).DataType
    if gdal.DataTypeIsComplex(kind):
        raise GridError(f"'{name}' holds complex values ({gdal.GetDataTypeName(kind)}); rsdl "
                        "reads real values and would drop the imaginary part: make a real "
                        "raster first (the amplitude, or real and imaginary as two bands)",
                        param)
    if role in ("image", "classes") and fmt in WRITTEN_BY_EXTRACTION:
        raise GridError(f"'{name}' is {WRITTEN_BY_EXTRACTION[fmt]} written by Patches "
                        "extraction, not an image on a map: give the image itself", param)
    if role == "patches" and fmt in ("labels", "label_patches"):
        raise GridError(f"'{name}' is {WRITTEN_BY_EXTRACTION[fmt]}, not the patches of a "
                        f"source: give the {PATCH_OUT}n image of Patches extraction", param)
    if role == "labels" and fmt == "patches":
        raise GridError(f"'{name}' is a patches image (the pixels of a source), not labels: "
                        f"give the {PATCHES.output_labels} raster of Patches extraction", param)
    if role == "classes" and ds.RasterCount != 1:
        raise GridError(f"'{name}' has {ds.RasterCount} bands; a class map has one band of "
                        "class values (is it the image rather than its class map?)", param)
    return ds


def grid_of(ds: Any) -> Grid:
    return Grid(ds.RasterXSize, ds.RasterYSize, tuple(ds.GetGeoTransform()),
                ds.GetProjectionRef() or "")


def same_crs(wkt_a: str, wkt_b: str) -> bool:
    if not wkt_a or not wkt_b:
        return True
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(wkt_a)
    b.ImportFromWkt(wkt_b)
    return bool(a.IsSame(b))


def require_same_grid(grid: Grid, ref: Grid, what: str, param: Optional[str],
                      ref_name: str = SELECT.image) -> None:
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


def parse_bands(text: Optional[str], param: Optional[str] = None) -> Optional[List[int]]:
    """A band list as OTB writes channel lists: "1,2,3", "1 2 3" or "1-3" (1-based);
    empty: None (every band that is not an alpha band)."""
    text = str(text or "").strip()
    if not text:
        return None
    bands: list = []
    for part in text.replace(",", " ").split():
        lo, _, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise GridError(f"'{text}' is not a band list: give band numbers from 1, e.g. "
                            "1,2,3 or 1-3", param) from None
        if first < 1 or last < first:
            raise GridError(f"'{part}' in the band list '{text}' is not a range of band "
                            "numbers from 1 (e.g. 1,2,3 or 1-3)", param)
        bands += range(first, last + 1)
    return bands


def alpha_band(ds: Any) -> Optional[int]:
    """The 1-based index of the dataset's alpha band (RGBA orthophotos), else None."""
    for b in range(1, ds.RasterCount + 1):
        if ds.GetRasterBand(b).GetColorInterpretation() == gdal.GCI_AlphaBand:
            return b
    return None


def data_bands(ds: Any) -> List[int]:
    """The bands of a dataset that are data (all but an alpha band): what is read by
    default, and how many bands an image counts for models and classifiers."""
    alpha = alpha_band(ds)
    return [b for b in range(1, ds.RasterCount + 1) if b != alpha]


def choose_bands(ds: Any, bands: Optional[Sequence[int]], bands_param: Optional[str],
                 param: Optional[str],
                 log: Optional[Callable[[str], None]] = None) -> Tuple[List[int], Optional[int]]:
    """(the 1-based bands to read, the alpha band or None) for a source whose band list
    is `bands` (None: every band but an alpha band); errors name `bands_param`."""
    count = ds.RasterCount
    alpha = alpha_band(ds)
    if bands:
        bad = [b for b in bands if b > count]
        if bad:
            raise GridError(f"the image has {count} band(s): there is no band "
                            f"{', '.join(map(str, bad))}", bands_param)
        if alpha in bands:
            raise GridError(f"band {alpha} is the image's alpha band: it is read as its "
                            "mask (alpha 0 = nodata), never fed to a model; leave it out of "
                            "the band list", bands_param)
        return [int(b) for b in bands], alpha
    chosen = data_bands(ds)
    if not chosen:
        raise GridError("the image has no band besides its alpha band", param)
    if alpha and log:
        log(f"{param}: band {alpha} is an alpha band: read as the mask (alpha 0 = nodata), "
            f"not as data; bands {','.join(map(str, chosen))} are read")
    return chosen, alpha


def reflect(start: int, count: int, size: int) -> np.ndarray:
    """Indices start .. start + count - 1 folded onto 0 .. size - 1 by reflection about
    the edge pixels (numpy's 'reflect'), as often as needed."""
    i = np.arange(start, start + count)
    if size == 1:
        return np.zeros(count, np.int64)
    period = 2 * (size - 1)
    j = np.mod(i, period)
    return np.where(j >= size, period - j, j)


class SourceReader:
    """Reads windows of one source as (rows, cols, bands) arrays.

    Parts of a window outside the image are filled with the source's nodata value (0
    when it has none), or, with `mirror`, with the image reflected about its edge pixels.
    A source in another CRS than the reference is warped on the fly (nearest neighbour)
    into the reference CRS at its own resolution. `bands` (1-based) selects the bands
    read; by default every band but an alpha band. An alpha band is never read as data:
    it is the source's mask (alpha 0 = nodata).
    """

    def __init__(self, path: str, param: Optional[str], nodata: Optional[float] = None,
                 ref_wkt: Optional[str] = None, log: Optional[Callable[[str], None]] = None,
                 mirror: bool = False, bands: Optional[Sequence[int]] = None,
                 bands_param: Optional[str] = None) -> None:
        self.path = str(path)
        self.param = param
        self.ds = open_raster(path, param, "image")
        wkt = self.ds.GetProjectionRef()
        if ref_wkt and wkt and not same_crs(wkt, ref_wkt):
            try:
                self.ds = gdal.AutoCreateWarpedVRT(self.ds, wkt, ref_wkt, gdal.GRA_NearestNeighbour)
            except RuntimeError as exc:
                raise GridError(f"cannot warp '{path}' into the CRS of {source_param(0)}: {exc}",
                                param) from exc
            if log:
                log(f"{param}: its CRS differs from {source_param(0)}'s; warping it on the fly "
                    f"(nearest neighbour) into {source_param(0)}'s CRS")
        self.grid = grid_of(self.ds)
        self.grid.check_north_up(param)
        self.mirror = bool(mirror)
        self.band_list, self.alpha = choose_bands(self.ds, bands, bands_param or
                                                  f"{param}_BANDS", param, log)
        self.bands = len(self.band_list)
        first = self.ds.GetRasterBand(self.band_list[0])
        band_nodata = first.GetNoDataValue()
        self.nodata = band_nodata if nodata is None else nodata
        self.dtype = NUMPY_TYPES.get(first.DataType, "float64")
        #: floating-point pixels: NaN and infinities are nodata too, declared or not
        self.floating = np.dtype(self.dtype).kind == "f"

    @property
    def masked(self) -> bool:
        """Whether some pixels are nodata: a nodata value, an alpha band, or floating-point
        pixels (which may be NaN or infinite)."""
        return self.nodata is not None or self.alpha is not None or self.floating

    def finite(self, array: np.ndarray) -> np.ndarray:
        """`array` (rows, cols, bands) read from this source with its non-finite values
        replaced by the nodata value (0 without one, or when it is not finite), so that
        no NaN reaches a model: the pixels themselves are nodata (nodata_mask)."""
        if not self.floating or array.dtype.kind != "f":
            return array
        bad = ~np.isfinite(array)
        if bad.any():
            fill = self.nodata if self.nodata is not None and np.isfinite(self.nodata) else 0
            array = array.copy()
            array[bad] = fill
        return array

    def block_row_bytes(self, width: float) -> int:
        """Bytes of one row of this source's blocks across `width` of its pixels: what
        GDAL's cache must hold for each block to be decompressed once while tiles move
        along a row (a 256 x 256 block of a 180-band series is 23 MB)."""
        bx, by = self.ds.GetRasterBand(1).GetBlockSize()
        cols = min(self.grid.width, int(width) + bx)
        return cols * min(by, self.grid.height) * self.bands * np.dtype(self.dtype).itemsize

    def read(self, window: Window, dtype: Any = np.float32,
             band_list: Optional[Sequence[int]] = None) -> np.ndarray:
        """The window as a (height, width, bands) array, padded outside the image."""
        dtype = np.dtype(dtype)
        band_list = band_list or self.band_list
        inside = crop(window, self.grid.width, self.grid.height)
        if inside == window:
            return self._read(window, dtype, band_list)
        if self.mirror:
            return self._read_mirrored(window, dtype, band_list)
        fill = 0 if self.nodata is None else self.nodata
        out = np.full((window.height, window.width, len(band_list)), fill, dtype=dtype)
        if not inside.empty:
            out[inside.relative_to(window).slices()] = self._read(inside, dtype, band_list)
        return out

    def mask(self, window: Window) -> Optional[np.ndarray]:
        """Where the alpha band says nodata (alpha 0) in a window, as (rows, cols) bools;
        None for a source without alpha band. Outside the image: nodata (mirrored with
        `mirror`)."""
        if self.alpha is None:
            return None
        inside = crop(window, self.grid.width, self.grid.height)
        if inside == window or self.mirror:
            return self.read(window, np.uint8, [self.alpha])[..., 0] == 0
        out = np.ones((window.height, window.width), bool)
        if not inside.empty:
            out[inside.relative_to(window).slices()] = \
                self._read(inside, np.dtype(np.uint8), [self.alpha])[..., 0] == 0
        return out

    def _read_mirrored(self, window, dtype, band_list):
        """A window reaching past the image: image pixels where it lies on the image, their
        reflection about the edge pixels elsewhere."""
        cols = reflect(window.col_off, window.width, self.grid.width)
        rows = reflect(window.row_off, window.height, self.grid.height)
        c0, c1 = int(cols.min()), int(cols.max()) + 1
        r0, r1 = int(rows.min()), int(rows.max()) + 1
        data = self._read(Window(c0, r0, c1 - c0, r1 - r0), dtype, band_list)
        return data[np.ix_(rows - r0, cols - c0)]

    def _read(self, win, dtype, band_list=None):
        """GDAL writes the pixels straight into a (rows, cols, bands) array of `dtype`:
        one pass, converting as it goes, instead of a band-by-band array moved and cast."""
        band_list = band_list or self.band_list
        native = np.dtype(self.dtype)
        if dtype.name not in GDAL_TYPES:            # a type GDAL does not write (int8...)
            return self._read(win, np.dtype("float64"), band_list).astype(dtype)
        if dtype.kind == "f" and native != dtype and native.name in GDAL_TYPES:
            # integers (or doubles) to float: numpy converts a third faster than GDAL
            return self._read(win, native, band_list).astype(dtype)
        n = len(band_list)
        out = np.empty((win.height, win.width, n), dtype)
        item = dtype.itemsize
        try:
            self.ds.ReadRaster(win.col_off, win.row_off, win.width, win.height,
                               buf_type=GDAL_TYPES[dtype.name], buf_obj=out,
                               band_list=band_list,
                               buf_pixel_space=item * n,
                               buf_line_space=item * n * win.width,
                               buf_band_space=item)
        except RuntimeError as exc:
            raise RsdlIOError(f"cannot read {win} of '{self.path}': {exc}", self.param) from exc
        return out

    def nodata_mask(self, array: np.ndarray) -> np.ndarray:
        """True where every band of a (rows, cols, bands) array equals the nodata value,
        and, for floating-point pixels, where any band is NaN or infinite."""
        bad = None
        if self.floating and array.dtype.kind == "f":
            for b in range(array.shape[-1]):
                off = ~np.isfinite(array[..., b])
                bad = off if bad is None else bad | off
        if self.nodata is None:
            return bad if bad is not None else np.zeros(array.shape[:2], dtype=bool)
        mask = self._equal_nodata(array)
        return mask if bad is None else mask | bad

    def _equal_nodata(self, array):
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

    def close(self) -> None:
        self.ds = None


def compression() -> str:
    """ZSTD where GDAL has it (half DEFLATE's CPU time, smaller files), else DEFLATE."""
    opts = gdal.GetDriverByName("GTiff").GetMetadataItem("DMD_CREATIONOPTIONLIST") or ""
    return "ZSTD" if "ZSTD" in opts else "DEFLATE"


class TiledWriter:
    """A tiled, compressed GeoTIFF written by a background thread.

    Tiles are written into a temporary file beside the target (engine/output.py);
    ``commit`` flushes and closes it (any GDAL error, a full disk included, is raised
    there) and renames it onto the target, ``abort`` removes it. The queue is bounded, so
    memory stays bounded when the disk is slower than the model.

    The file's bytes depend only on its pixels and on the order of the writes, never on
    GDAL's block cache: each block of the file is written once, whole, as soon as the
    writes have covered it, and flushed at once (all bands in one write). Left to the
    cache, a block is encoded when the cache evicts it, which depends on the cache's size
    and on what other threads read meanwhile; a block evicted half-written is encoded
    twice and the file holds both. Pieces of blocks that a write leaves partly covered
    wait here (at most a row of blocks across the output, and those along a write's
    right edge).
    """

    def __init__(self, path: str, width: int, height: int, bands: int, dtype: Any,
                 geotransform: Sequence[float], crs_wkt: Optional[str], nodata: Optional[float],
                 band_names: Optional[Sequence[str]] = None,
                 metadata: Optional[Dict[str, str]] = None, block: int = 256,
                 max_pending: int = 2, param: Optional[str] = OUTPUT,
                 classes: Optional[Sequence[Any]] = None) -> None:
        """`classes`: per band, None or {"codes", "names"} (category names, colours)."""
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
                for b, cls in enumerate(classes or []):     # one entry per band
                    if cls:
                        from .styles import embed_classes
                        embed_classes(self.ds.GetRasterBand(b + 1), self.dtype,
                                      cls["codes"], cls["names"], colours=b == 0)
        except RsdlIOError:
            self._close_quietly()
            self.out.abort()
            raise
        self.width, self.height, self.bands, self.block = width, height, bands, block
        self.partial: dict = {}      # (block column, block row) -> [pixels, count covered]
        self.error: Optional[BaseException] = None
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
                    self._blocks(window, array)
            except Exception as exc:  # reported by write() or commit()
                self.error = exc

    def _block_window(self, bx, by):
        b = self.block
        x, y = bx * b, by * b
        return Window(x, y, min(b, self.width - x), min(b, self.height - y))

    def _blocks(self, window, array):
        """Write the blocks of the file that `window` (with those before it) completes,
        in row-major order; keep the pieces of the others."""
        b = self.block
        for by in range(window.row_off // b, (window.row_end - 1) // b + 1):
            for bx in range(window.col_off // b, (window.col_end - 1) // b + 1):
                blk = self._block_window(bx, by)
                part = intersection(blk, window)
                piece = array[part.relative_to(window).slices()]
                if part == blk:
                    self._put(blk, piece)
                    continue
                held = self.partial.get((bx, by))
                if held is None:
                    held = self.partial[(bx, by)] = [
                        np.zeros((blk.height, blk.width, self.bands), self.dtype), 0]
                held[0][part.relative_to(blk).slices()] = piece
                held[1] += part.size
                if held[1] >= blk.size:
                    del self.partial[(bx, by)]
                    self._put(blk, held[0])

    def _put(self, blk, pixels):
        """One whole block, all bands in one write, flushed to the file at once."""
        data = np.ascontiguousarray(np.moveaxis(pixels, 2, 0))     # band, row, col
        self.ds.WriteRaster(blk.col_off, blk.row_off, blk.width, blk.height, data.tobytes(),
                            blk.width, blk.height, GDAL_TYPES[self.dtype.name])
        self.ds.FlushCache()

    def _check(self):
        if self.error is not None:
            if isinstance(self.error, RsdlIOError):
                raise self.error
            raise io_error(self.path, self.error, self.param)

    def write(self, window: Window, array: np.ndarray) -> None:
        """Queue a (rows, cols, bands) tile for writing at ``window``."""
        self._check()
        self.queue.put((window, np.asarray(array, dtype=self.dtype)))

    def _stop(self):
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()

    def commit(self) -> None:
        self._stop()
        try:
            self._check()
            with gdal_checked(self.path, self.param):
                # blocks never fully covered (not in a serving run: its chunks cover the
                # grid), in the order of the file
                for (bx, by) in sorted(self.partial, key=lambda k: (k[1], k[0])):
                    self._put(self._block_window(bx, by), self.partial.pop((bx, by))[0])
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

    def abort(self) -> None:
        try:
            while True:
                self.queue.get_nowait()
        except queue.Empty:
            pass
        self._stop()
        self._close_quietly()
        self.out.abort()
