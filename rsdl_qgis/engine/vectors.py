"""Vector reading and writing with OGR only: training polygons and sample points.

Geometries are read once into flat numpy arrays in the pixel coordinates of a raster
grid (reprojected on the fly when the CRSs differ), so the samplers work on arrays and
never on OGR objects.
"""
import csv
import io
import os
import re
import struct
import uuid
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
from osgeo import gdal, ogr, osr

from ..errors import GridError, RsdlIOError
from .grid import map_to_pixel
from .jobs import OUTPUT, SELECT
from .output import (
    _alive,
    describe,
    fresh_temp,
    gdal_checked,
    io_error,
    temp_path,
    write_text,
)
from .output import split_layer as split_source

ogr.UseExceptions()
osr.UseExceptions()

LOOKUP_SUFFIX = ".classes.csv"
#: curves (circular arcs) become straight segments every this many degrees of arc
ARC_STEP_DEGREES = 1.0


def open_layer(source: str, param: Optional[str] = SELECT.vector,
               layer: Union[str, int, None] = None) -> Tuple[Any, Any]:
    """Open a vector layer: (datasource, layer). Errors name the parameter."""
    path, name = split_source(source)
    name = layer if layer is not None else name
    if not path:
        raise RsdlIOError("no vector layer given", param)
    try:
        ds = ogr.Open(path, 0)
    except RuntimeError as exc:
        raise RsdlIOError(f"cannot read vector '{path}': {exc}", param) from exc
    if ds is None or ds.GetLayerCount() == 0:
        raise RsdlIOError(f"'{path}' is not a vector file OGR can read", param)
    lyr = ds.GetLayer(name) if name is not None else ds.GetLayer(0)
    if lyr is None:
        raise RsdlIOError(f"'{path}' has no layer '{name}'", param)
    return ds, lyr


def field_names(lyr: Any) -> List[str]:
    defn = lyr.GetLayerDefn()
    return [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]


def class_field(lyr: Any, field: str, param: Optional[str] = SELECT.field) -> Tuple[int, str]:
    """Index and kind ('int' or 'text') of the class field; lists the fields when missing."""
    names = field_names(lyr)
    if not field:
        raise GridError(f"no class field given; the layer's fields are: {', '.join(names) or 'none'}", param)
    if field not in names and field == lyr.GetFIDColumn():
        # QGIS lists a GeoPackage's feature id as a field (and proposes it first)
        raise GridError(f"'{field}' is the layer's feature id, one value per feature, not a "
                        f"class field: choose one of {', '.join(names) or 'none'}", param)
    if field not in names:
        raise GridError(f"the layer has no field '{field}'; its fields are: "
                        f"{', '.join(names) or 'none'}", param)
    idx = names.index(field)
    ftype = lyr.GetLayerDefn().GetFieldDefn(idx).GetType()
    if ftype in (ogr.OFTInteger, ogr.OFTInteger64):
        return idx, "int"
    if ftype == ogr.OFTString:
        return idx, "text"
    if ftype == ogr.OFTReal:
        return idx, "real"
    raise GridError(f"field '{field}' is of type {ogr.GetFieldTypeName(ftype)}; the class "
                    "field must hold integers or text", param)


def transform_to(lyr: Any, target_wkt: Optional[str]) -> Any:
    """A coordinate transformation from the layer's CRS to `target_wkt` (None when same)."""
    src = lyr.GetSpatialRef()
    if src is None or not target_wkt:
        return None
    dst = osr.SpatialReference()
    dst.ImportFromWkt(target_wkt)
    if src.IsSame(dst):
        return None
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return osr.CoordinateTransformation(src, dst)


class Features:
    """Geometries of one layer as flat arrays, in pixel coordinates of a grid.

    - ``fid``, ``value``: per feature (feature id, class value as read);
    - polygons: ``points`` (N, 2) with ``ring_start`` offsets and ``ring_feature`` (the
      feature index of each ring); rings are closed;
    - points: ``point_xy`` (P, 2) with ``point_feature``.
    """

    def __init__(self):
        self.fid: Any = []                # a list while read, an array after
        self.value: List[Any] = []
        self.points = np.zeros((0, 2))
        # 1-D int64 arrays; annotated as plain arrays so that numpy 2's shape-typed stubs
        # accept what np.concatenate and np.asarray give
        self.ring_start: np.ndarray = np.zeros(1, dtype=np.int64)
        self.ring_feature: np.ndarray = np.zeros(0, dtype=np.int64)
        self.point_xy = np.zeros((0, 2))
        self.point_feature: np.ndarray = np.zeros(0, dtype=np.int64)
        self.skipped_null = 0
        self.kind = "int"

    @property
    def count(self) -> int:
        return len(self.fid)

    @property
    def has_polygons(self) -> bool:
        return len(self.ring_feature) > 0


def _parse_wkb(wkb, rings, pts, feature, point_list, point_feature):
    """Append the rings / points of a 2D WKB geometry (little or big endian)."""
    off = 0

    def geom(off):
        order = "<" if wkb[off] == 1 else ">"
        (gtype,) = struct.unpack_from(order + "I", wkb, off + 1)
        off += 5
        if gtype == 1:
            x, y = struct.unpack_from(order + "dd", wkb, off)
            point_list.append((x, y))
            point_feature.append(feature)
            return off + 16
        if gtype == 3:
            (nrings,) = struct.unpack_from(order + "I", wkb, off)
            off += 4
            for _ in range(nrings):
                (n,) = struct.unpack_from(order + "I", wkb, off)
                off += 4
                a = np.frombuffer(wkb, dtype=order + "f8", count=2 * n, offset=off).reshape(n, 2)
                off += 16 * n
                if n >= 3:
                    pts.append(a if (a[0] == a[-1]).all() else np.vstack([a, a[:1]]))
                    rings.append(feature)
            return off
        if gtype in (4, 6, 7):
            (n,) = struct.unpack_from(order + "I", wkb, off)
            off += 4
            for _ in range(n):
                off = geom(off)
            return off
        raise ValueError(gtype)

    geom(off)


def read_features(source: str, field: Optional[str], grid: Any,
                  param: Optional[str] = SELECT.vector,
                  field_param: Optional[str] = SELECT.field,
                  log: Optional[Callable[[str], None]] = None) -> "Features":
    """Read polygons or points and their class values into pixel coordinates of `grid`.

    Lines are refused (buffer them into polygons first). Features with a null class
    value or no geometry are skipped and counted. Geometries in another CRS are
    reprojected vertex by vertex, all at once.
    """
    ds, lyr = open_layer(source, param)
    kind = class_field(lyr, field, field_param)[1] if field is not None else "int"
    ct = transform_to(lyr, grid.crs_wkt)
    if ct is not None and log:
        log(f"{param}: its CRS differs from the raster's; reprojecting the geometries on the fly")
    if not hasattr(lyr, "GetArrowStreamAsNumPy"):
        raise RsdlIOError("reading vectors needs GDAL 3.6 or later (Debian 12's python3-gdal)",
                          param)
    feats = Features()
    feats.kind = kind
    rings: List[int] = []
    pts: List[np.ndarray] = []
    point_list: List[Tuple[float, float]] = []
    point_feature: List[int] = []
    no_geom = _read_arrow(lyr, field, kind, feats, rings, pts, point_list, point_feature, param)
    del lyr, ds                                    # the layer, then the file, closed
    if feats.count == 0:
        why = []
        if no_geom:
            why.append(f"{no_geom} without geometry")
        if feats.skipped_null:
            why.append(f"{feats.skipped_null} with a null '{field}'")
        raise GridError("the layer has no usable feature" + (f" ({', '.join(why)})" if why else
                                                              ": it is empty"), param)
    if (feats.skipped_null or no_geom) and log:
        log(f"{param}: skipped {feats.skipped_null} features with a null class and "
            f"{no_geom} without geometry")
    if kind == "real":
        vals = np.asarray(feats.value)
        if not np.all(vals == np.round(vals)):
            raise GridError(f"field '{field}' holds non-integer numbers; the class field "
                            "must hold integers or text", field_param)
        feats.value = [int(v) for v in vals]
        feats.kind = "int"
    feats.fid = np.asarray(feats.fid, dtype=np.int64)
    if pts:
        lengths = np.array([len(p) for p in pts])
        feats.points = map_to_pixel(grid.geotransform, _transform(ct, np.concatenate(pts)))
        feats.ring_start = np.concatenate([[0], np.cumsum(lengths)])
        feats.ring_feature = np.asarray(rings, dtype=np.int64)
    if point_list:
        xy = _transform(ct, np.asarray(point_list, dtype=np.float64))
        feats.point_xy = map_to_pixel(grid.geotransform, xy)
        feats.point_feature = np.asarray(point_feature, dtype=np.int64)
    return feats


def _read_arrow(lyr, field, kind, feats, rings, pts, point_list, point_feature, param):
    """Columnar read (GDAL >= 3.6): WKB and field values in batches, no OGR objects."""
    no_geom = 0
    fid_col = lyr.GetFIDColumn() or "OGC_FID"
    geom_col = lyr.GetGeometryColumn() or "wkb_geometry"
    stream = lyr.GetArrowStreamAsNumPy(options=["USE_MASKED_ARRAYS=YES",
                                                "MAX_FEATURES_IN_BATCH=65536"])
    start = 0
    for batch in stream:
        geoms = batch[geom_col]
        n = len(geoms)
        fids = np.asarray(batch[fid_col]) if fid_col in batch else np.arange(start, start + n)
        start += n
        if field is not None:
            values = batch[field]
            nulls = np.ma.getmaskarray(values)
            values = np.ma.getdata(values)
        else:
            values, nulls = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
        gmask = np.ma.getmaskarray(geoms)
        geoms = np.ma.getdata(geoms)
        if geoms.dtype.kind == "V" and geoms.dtype.itemsize == 21:
            # every geometry is a 2D point: decode them all at once
            raw = geoms.view(np.uint8).reshape(n, 21)
            if (raw[:, 0] == 1).all() and (raw[:, 1:5] == [1, 0, 0, 0]).all():
                xy = np.ascontiguousarray(raw[:, 5:21]).view("<f8").reshape(n, 2)
                ok = ~gmask & ~np.isnan(xy).any(axis=1)
                no_geom += int(np.count_nonzero(~ok))
                feats.skipped_null += int(np.count_nonzero(ok & nulls))
                ok &= ~nulls
                base = len(feats.fid)
                point_list.extend(map(tuple, xy[ok].tolist()))
                point_feature.extend(range(base, base + int(ok.sum())))
                feats.fid.extend(fids[ok].tolist())
                feats.value.extend(_values(values[ok], kind))
                continue
        if geoms.dtype.kind in "VS":
            # every geometry has the same WKB size (four rectangles, all triangles...):
            # GDAL hands a fixed-width array; take each item's bytes whole
            raw = np.ascontiguousarray(geoms).view(np.uint8).reshape(n, geoms.dtype.itemsize)
            geoms = [raw[i].tobytes() for i in range(n)]
        for i in range(n):
            wkb = geoms[i]
            if gmask[i] or wkb is None or len(wkb) < 9:
                no_geom += 1
                continue
            if nulls[i]:
                feats.skipped_null += 1
                continue
            wkb = bytes(wkb)
            order = "<" if wkb[0] == 1 else ">"
            (gtype,) = struct.unpack_from(order + "I", wkb, 1)
            if gtype not in (1, 3, 4, 6, 7):
                if gtype % 1000 in (2, 5) or gtype & 0xFF in (2, 5):
                    raise GridError("line geometries are not supported: buffer them into "
                                    "polygons first (Vector geometry > Buffer)", param)
                g = ogr.CreateGeometryFromWkb(wkb)
                if g.HasCurveGeometry():
                    g = g.GetLinearGeometry(ARC_STEP_DEGREES)
                g.FlattenTo2D()
                wkb = bytes(g.ExportToWkb(ogr.wkbNDR))
            try:
                _parse_wkb(wkb, rings, pts, len(feats.fid), point_list, point_feature)
            except (ValueError, struct.error):
                raise GridError(f"feature {fids[i]} has a geometry that is not supported",
                                param) from None
            feats.fid.append(int(fids[i]))
            feats.value.extend(_values(values[i:i + 1], kind))
    return no_geom


def _values(arr, kind):
    if kind == "text":
        return [v.decode() if isinstance(v, bytes) else str(v) for v in arr.tolist()]
    if kind == "real":   # checked to be whole numbers once all are read
        return [float(v) for v in arr.tolist()]
    return [int(v) for v in arr.tolist()]


def _transform(ct, xy):
    """Map coordinates (N, 2) through a coordinate transformation (None: unchanged)."""
    if ct is None or not len(xy):
        return xy
    return np.asarray(ct.TransformPoints(xy), dtype=np.float64)[:, :2]


class ClassCodes:
    """Class values <-> integer codes. Integer classes are their own codes; text classes
    get codes 1..K in sorted order, saved in a lookup table beside the outputs."""

    def __init__(self, names: Sequence[Any], codes: Sequence[int], kind: str) -> None:
        self.names = list(names)
        self.codes = [int(c) for c in codes]
        self.kind = kind
        self._code = dict(zip(self.names, self.codes))

    @classmethod
    def from_values(cls, values: Sequence[Any], kind: str) -> "ClassCodes":
        uniq = sorted(set(values))
        if kind == "text":
            return cls(uniq, range(1, len(uniq) + 1), kind)
        return cls([str(v) for v in uniq], uniq, kind)

    def code(self, value: Any) -> int:
        return self._code[value] if self.kind == "text" else int(value)

    def codes_of(self, values: Sequence[Any]) -> np.ndarray:
        if self.kind == "text":
            return np.array([self._code[v] for v in values], dtype=np.int64)
        return np.asarray(values, dtype=np.int64)

    def name_of(self, code: int) -> Any:
        return dict(zip(self.codes, self.names)).get(int(code), str(code))

    def write(self, path: str, param: Optional[str] = OUTPUT) -> None:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["code", "name"])
        for c, n in zip(self.codes, self.names):
            w.writerow([c, n])
        write_text(path, buf.getvalue(), param)

    @classmethod
    def read(cls, path: str) -> "ClassCodes":
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        return cls([r["name"] for r in rows], [int(r["code"]) for r in rows], "text")


def lookup_path(vector_path: str) -> str:
    """Where the class lookup table of a vector file lives."""
    path, _ = split_source(vector_path)
    return os.path.splitext(path)[0] + LOOKUP_SUFFIX


def vector_driver(path: str, param: Optional[str] = OUTPUT) -> str:
    ext = os.path.splitext(split_source(path)[0])[1].lower()
    drivers = {".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".sqlite": "SQLite", ".csv": "CSV",
               ".geojson": "GeoJSON", ".json": "GeoJSON", ".fgb": "FlatGeobuf"}
    if ext not in drivers:
        raise RsdlIOError(f"cannot write '{path}': use one of {', '.join(sorted(drivers))}", param)
    return drivers[ext]


def output_layer(path: str) -> Tuple[str, str]:
    """(file, layer name) of a vector output: 'file.gpkg|layername=x', else the file's stem."""
    file, layer = split_source(path)
    return file, (layer if isinstance(layer, str) and layer else
                  os.path.splitext(os.path.basename(file))[0])


def publish_layer(tmp: str, path: str, param: Optional[str] = OUTPUT) -> None:
    """Move a complete temporary GeoPackage (one layer) to the vector output `path`.

    Into an existing GeoPackage only that layer is written (replacing a layer of the same
    name) and every other layer is kept; the layer is copied under a temporary name first
    and swapped in within one transaction. Other formats are converted next to the target
    and renamed onto it.
    """
    file, layer = output_layer(path)
    driver = vector_driver(file, param)
    if driver == "GPKG" and os.path.exists(file):
        _replace_layer(tmp, file, layer, param)
        remove_vector(tmp)
    elif driver == "GPKG":
        os.replace(tmp, file)
    else:
        conv = temp_path(file)
        try:
            with gdal_checked(file, param):
                out = gdal.VectorTranslate(conv, tmp, format=driver, layerName=layer)
                del out                            # closed here, where errors are caught
            stem, cstem = os.path.splitext(file)[0], os.path.splitext(conv)[0]
            remove_vector(file)
            for p in _siblings(conv):
                if os.path.exists(p):
                    os.replace(p, stem + p[len(cstem):])
        finally:
            remove_vector(conv)
            remove_vector(tmp)


def _replace_layer(tmp, file, layer, param):
    try:
        ds = ogr.Open(file, 1)
    except RuntimeError as exc:
        raise RsdlIOError(f"'{file}' exists and is not a GeoPackage that can be updated "
                          f"({describe(exc)}); choose another file name", param) from exc
    if ds is None or ds.GetDriver().GetName() != "GPKG":
        raise RsdlIOError(f"'{file}' exists and is not a GeoPackage; choose another file "
                          "name", param)
    part = f"rsdl_part_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        with gdal_checked(file, param):
            for i in reversed(range(ds.GetLayerCount())):      # leftovers of killed runs
                m = re.match(r"rsdl_part_(\d+)_", ds.GetLayer(i).GetName())
                if m and not _alive(int(m.group(1))):
                    ds.DeleteLayer(i)
            src = ogr.Open(tmp)
            ds.CopyLayer(src.GetLayer(0), part, ["SPATIAL_INDEX=NO"])
            src = None
            ds.StartTransaction()
            _drop_layer(ds, layer)
            ds.GetLayerByName(part).Rename(layer)
            ds.CommitTransaction()
            ds = None
    except RsdlIOError:
        try:                                   # the temporary layer, if it was made
            ds = ogr.Open(file, 1)
            if ds is not None:
                _drop_layer(ds, part)
            ds = None
        except RuntimeError:
            pass
        raise


def _drop_layer(ds, name):
    """Delete the layer called `name` from an open data source, if it has one."""
    for i in range(ds.GetLayerCount()):
        if ds.GetLayer(i).GetName() == name:
            ds.DeleteLayer(i)
            return


class PointWriter:
    """Writes points to a hidden temporary GeoPackage, moved onto the target on commit.

    Rows go straight into the GeoPackage's SQLite table in batches (geometry blobs built
    with numpy), many times faster than one OGR feature at a time. Other formats are
    converted from it by OGR.
    """

    def __init__(self, path: str, crs_wkt: Optional[str], fields: Sequence[Tuple[str, str]],
                 param: Optional[str] = OUTPUT, layer_name: Optional[str] = None) -> None:
        import sqlite3
        self.path = str(path)
        self.param = param
        self.driver = vector_driver(self.path, param)
        file, layer = output_layer(self.path)
        self.tmp = fresh_temp(file, param, ".gpkg")
        self.layer = layer_name or layer
        self.names = [f for f, _ in fields]
        self.count = 0
        self.extent = [np.inf, np.inf, -np.inf, -np.inf]
        self.db: Any = None                 # the temporary GeoPackage, as SQLite
        try:
            with gdal_checked(self.path, param):
                ds = ogr.GetDriverByName("GPKG").CreateDataSource(self.tmp)
                srs = None
                if crs_wkt:
                    srs = osr.SpatialReference()
                    srs.ImportFromWkt(crs_wkt)
                lyr = ds.CreateLayer(self.layer, srs, ogr.wkbPoint,
                                     ["SPATIAL_INDEX=NO", "GEOMETRY_NAME=geom", "FID=fid"])
                for fname, ftype in fields:
                    kind = {"int": ogr.OFTInteger64, "int32": ogr.OFTInteger,
                            "text": ogr.OFTString, "real": ogr.OFTReal}[ftype]
                    lyr.CreateField(ogr.FieldDefn(fname, kind))
                lyr = None
                ds = None
            self.db = sqlite3.connect(self.tmp)
            self.db.execute("PRAGMA synchronous = OFF")
            (self.srs_id,) = self.db.execute(
                "SELECT srs_id FROM gpkg_geometry_columns WHERE table_name = ?",
                (self.layer,)).fetchone()
            # OGR's per-row feature-count triggers cost more than the inserts: drop them
            # while writing, set the count once, and put them back on commit
            self.triggers = self.db.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND "
                "tbl_name = ? AND name LIKE 'trigger_%_feature_count_%'", (self.layer,)).fetchall()
            for name, _ in self.triggers:
                self.db.execute(f'DROP TRIGGER "{name}"')
        except RsdlIOError:
            self.abort()
            raise
        except (RuntimeError, OSError, sqlite3.Error) as exc:
            self.abort()
            raise io_error(self.path, exc, param) from exc
        cols = ", ".join(['"geom"'] + [f'"{n}"' for n in self.names])
        marks = ", ".join(["?"] * (len(self.names) + 1))
        self.sql = f'INSERT INTO "{self.layer}" ({cols}) VALUES ({marks})'

    def _blobs(self, x, y):
        rec = np.zeros(len(x), dtype=[("magic", "S2"), ("version", "u1"), ("flags", "u1"),
                                      ("srs", "<i4"), ("order", "u1"), ("type", "<u4"),
                                      ("x", "<f8"), ("y", "<f8")])
        rec["magic"], rec["flags"], rec["srs"] = b"GP", 1, self.srs_id
        rec["order"], rec["type"], rec["x"], rec["y"] = 1, 1, x, y
        raw = rec.tobytes()
        size = rec.dtype.itemsize
        return [raw[i:i + size] for i in range(0, len(raw), size)]

    def write(self, x: Any, y: Any, columns: Sequence[Any]) -> None:
        """Write points (arrays x, y) with per-field value sequences in `columns`."""
        import sqlite3
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if not len(x):
            return
        cols = [c.tolist() if isinstance(c, np.ndarray) else list(c) for c in columns]
        try:
            self.db.executemany(self.sql, zip(self._blobs(x, y), *cols))
        except sqlite3.Error as exc:
            raise io_error(self.path, exc, self.param) from exc
        self.count += len(x)
        self.extent = [min(self.extent[0], x.min()), min(self.extent[1], y.min()),
                       max(self.extent[2], x.max()), max(self.extent[3], y.max())]

    def commit(self) -> None:
        import sqlite3
        try:
            if self.count:
                self.db.execute("UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, "
                                "max_y = ? WHERE table_name = ?", (*map(float, self.extent),
                                                                   self.layer))
            if self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'gpkg_ogr_contents'").fetchone():
                self.db.execute("UPDATE gpkg_ogr_contents SET feature_count = ? WHERE "
                                "table_name = ?", (self.count, self.layer))
            for _, sql in self.triggers:
                self.db.execute(sql)
            self.db.commit()
            self.db.close()
            self.db = None
            # no spatial index: samples are read in sequence by the next steps, and
            # building one costs more than writing the points (QGIS: Create spatial index)
            publish_layer(self.tmp, self.path, self.param)
        except (RuntimeError, OSError, sqlite3.Error) as exc:
            self.abort()
            raise io_error(self.path, exc, self.param) from exc
        except RsdlIOError:
            self.abort()
            raise

    def abort(self) -> None:
        if getattr(self, "db", None) is not None:
            self.db.close()
            self.db = None
        self._cleanup()

    def _cleanup(self):
        remove_vector(self.tmp)
        for ext in ("-journal", "-wal", "-shm"):
            if os.path.exists(self.tmp + ext):
                os.remove(self.tmp + ext)


def _siblings(path):
    stem = os.path.splitext(path)[0]
    if path.lower().endswith(".shp"):
        return [stem + e for e in (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix")]
    return [path]


def remove_vector(path: str) -> None:
    for p in _siblings(path):
        if os.path.exists(p):
            os.remove(p)
