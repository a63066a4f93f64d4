"""OTB 8.1's command-line applications as the reference for sampling and classification.

Live where OTB is installed (Debian 12's otb-bin); elsewhere (Debian 13 packages no OTB)
each call is replayed from OTB's outputs recorded on Debian 12, kept in
tests/data/otb-recorded/. A call is keyed by the application and its arguments, each input
file by the digest of its content (pixels and grid of a raster, features of a vector, bytes
of anything else), so a replay answers exactly the call that was recorded and nothing
else. Live runs check every output against its recording: where both exist, a stale
recording fails the test.

RSDL_OTB=live|replay|record chooses; by default live where `otbcli_*` is on PATH, else
replay. `make record-otb` records again (on a host with OTB).
"""
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
from types import SimpleNamespace

import pytest
from osgeo import gdal, ogr, osr

RECORDINGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "otb-recorded")
#: the arguments that name an output file
OUTPUT_FLAGS = ("-out", "-io.out")
VECTOR_EXTS = (".gpkg", ".shp", ".sqlite", ".geojson", ".json", ".gml", ".kml", ".fgb",
               ".tab", ".csv_vector")
RASTER_EXTS = (".tif", ".tiff", ".vrt", ".img")


def mode():
    m = os.environ.get("RSDL_OTB")
    if m:
        if m not in ("live", "replay", "record"):
            raise ValueError(f"RSDL_OTB={m!r}: live, replay or record")
        return m
    return "live" if shutil.which("otbcli_PolygonClassStatistics") else "replay"


def otbcli(app, *args):
    args = [str(a) for a in args]
    key, described, outputs = call_key(app, args)
    m = mode()
    if m == "replay":
        return replay(app, key, described, outputs)
    exe = shutil.which(f"otbcli_{app}")
    if exe is None:
        pytest.fail(f"otbcli_{app} is missing: install the Debian package otb-bin "
                    "(make test-system does where Debian packages it)")
    env = dict(os.environ, OTB_LOGGER_LEVEL="WARNING")
    res = subprocess.run([exe, *args], capture_output=True, text=True, env=env)
    if res.returncode:
        raise AssertionError(f"otbcli_{app} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    got = [digest(path) for _, path in outputs]
    if m == "record":
        record(key, app, described, outputs, got)
        return res
    manifest = load(key)
    if manifest is None:
        pytest.fail(f"OTB's {app} call {described} has no recording in {RECORDINGS}: "
                    "record it with `make record-otb` (on a host with otb-bin)")
    want = [o["digest"] for o in manifest["outputs"]]
    assert got == want, (f"OTB's {app} no longer gives what was recorded ({described}): "
                         "record again with `make record-otb`")
    return res


def call_key(app, args):
    """(key, the call as text with inputs as digests, [(flag, output path)])."""
    described, outputs = [app], []
    for i, a in enumerate(args):
        if i and args[i - 1] in OUTPUT_FLAGS:
            outputs.append((args[i - 1], a))
            described.append(f"<output {os.path.splitext(a)[1]}>")
        elif a.startswith("-") or not os.path.exists(a):
            described.append(a)
        else:
            described.append(f"<input {digest(a)[:16]}>")
    key = hashlib.sha256(json.dumps(described).encode()).hexdigest()[:20]
    return key, " ".join(described), outputs


def digest(path):
    """The content of a file as OTB reads it: a vector's layers, fields and features
    (geometries to 10 significant digits), a raster's grid, CRS and pixels, or else its
    bytes."""
    path = str(path)
    ext = os.path.splitext(path)[1].lower()
    h = hashlib.sha256()
    if ext in VECTOR_EXTS:
        ds = ogr.Open(path)
        if ds is not None:
            for i in range(ds.GetLayerCount()):
                lyr = ds.GetLayer(i)
                defn = lyr.GetLayerDefn()
                h.update(lyr.GetName().encode())
                h.update(_srs_text(lyr.GetSpatialRef()).encode())
                h.update(repr([defn.GetFieldDefn(j).GetName()
                               for j in range(defn.GetFieldCount())]).encode())
                rows = []
                for f in lyr:
                    g = f.GetGeometryRef()
                    rows.append((f.GetFID(), _rounded_wkt(g) if g else "",
                                 [f.GetField(j) for j in range(defn.GetFieldCount())]))
                h.update(repr(sorted(rows, key=repr)).encode())
            return "vector:" + h.hexdigest()
    if ext in RASTER_EXTS:
        ds = gdal.Open(path)
        if ds is not None:
            h.update(repr([round(v, 9) for v in ds.GetGeoTransform()]).encode())
            srs = ds.GetSpatialRef()
            h.update(_srs_text(srs).encode())
            for b in range(1, ds.RasterCount + 1):
                band = ds.GetRasterBand(b)
                h.update(repr((gdal.GetDataTypeName(band.DataType), band.GetNoDataValue())).encode())
                h.update(band.ReadRaster())
            return "raster:" + h.hexdigest()
    with open(path, "rb") as f:
        h.update(f.read())
    return "bytes:" + h.hexdigest()


_NUMBER = re.compile(r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


def _rounded_wkt(geom):
    """A geometry to 10 significant digits: a polygon reprojected by the test itself
    differs in its last bits between PROJ versions (Debian 12 and testing), which must not
    make it another input (1e-8 degree is a millimetre)."""
    return _NUMBER.sub(lambda m: f"{float(m.group()):.10g}", geom.ExportToIsoWkt())


def _srs_text(srs):
    if srs is None:
        return ""
    srs = srs.Clone()
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs.ExportToProj4()


def load(key):
    try:
        with open(os.path.join(RECORDINGS, key + ".json"), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def record(key, app, described, outputs, digests):
    os.makedirs(RECORDINGS, exist_ok=True)
    entries = []
    for i, ((flag, path), d) in enumerate(zip(outputs, digests)):
        name = f"{key}-{i}{os.path.splitext(path)[1]}.xz"
        with open(path, "rb") as src, lzma.open(os.path.join(RECORDINGS, name), "wb",
                                                preset=9 | lzma.PRESET_EXTREME) as dst:
            shutil.copyfileobj(src, dst)
        entries.append({"flag": flag, "file": name, "digest": d})
    with open(os.path.join(RECORDINGS, key + ".json"), "w", encoding="utf-8") as f:
        json.dump({"app": app, "call": described, "outputs": entries}, f, indent=1)
        f.write("\n")


def replay(app, key, described, outputs):
    manifest = load(key)
    if manifest is None:
        pytest.fail(f"OTB is not installed here and its {app} call {described} was never "
                    f"recorded (tests/data/otb-recorded): record it with `make record-otb` "
                    "on a host with otb-bin")
    for (_, path), entry in zip(outputs, manifest["outputs"]):
        with lzma.open(os.path.join(RECORDINGS, entry["file"]), "rb") as src, \
                open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        assert digest(path) == entry["digest"], f"recording {entry['file']} is damaged"
    return SimpleNamespace(returncode=0, stdout="(replayed from tests/data/otb-recorded)",
                           stderr="")


def read_stats_xml(path):
    """OTB's PolygonClassStatistics XML -> ({class: pixels}, {fid: pixels})."""
    text = open(path).read()
    per_class, per_vector = text.split('name="samplesPerVector"')
    pat = re.compile(r'key="([^"]*)" value="(\d+)"')
    return ({k: int(v) for k, v in pat.findall(per_class)},
            {int(k): int(v) for k, v in pat.findall(per_vector)})


def class_counts(vector, field):
    ds = ogr.Open(str(vector))
    lyr = ds.GetLayer(0)
    out = {}
    for f in lyr:
        out[str(f.GetField(field))] = out.get(str(f.GetField(field)), 0) + 1
    return out
