"""Synthetic training polygons over a real image: rotated shapes off the pixel grid."""
import math

import numpy as np
from osgeo import gdal, ogr, osr

gdal.UseExceptions()
ogr.UseExceptions()


def rotated_polygons(raster, path, count, classes=4, seed=0, size_px=(3.0, 14.0),
                     layer="polygons", with_holes=True, margin_px=2, epsg=None):
    """Write `count` non-overlapping rotated polygons over `raster` to a GeoPackage.

    Fields: `code` (integer class 1..classes), `name` (text), `block` (an id shared by
    neighbouring polygons). Shapes are rotated rectangles, pentagons and, every seventh,
    a square with a hole; none follows the pixel grid. Polygons sit in distinct cells of
    a jittered grid, so they never overlap. `epsg` writes them in another CRS.
    """
    rng = np.random.default_rng(seed)
    ds = gdal.Open(str(raster))
    gt = ds.GetGeoTransform()
    w, h = ds.RasterXSize, ds.RasterYSize
    cell = max(size_px[1] * 1.5, 0.93 * math.sqrt((w - 2 * margin_px) * (h - 2 * margin_px) / count))
    nx, ny = int((w - 2 * margin_px) // cell), int((h - 2 * margin_px) // cell)
    while nx * ny < count and cell > size_px[1] * 1.5:
        cell *= 0.95
        nx, ny = int((w - 2 * margin_px) // cell), int((h - 2 * margin_px) // cell)
    cells = rng.permutation(nx * ny)[:count]
    if len(cells) < count:
        raise ValueError(f"only room for {nx * ny} polygons")
    src = osr.SpatialReference()
    src.ImportFromWkt(ds.GetProjectionRef())
    dst = src
    ct = None
    if epsg:
        dst = osr.SpatialReference()
        dst.ImportFromEPSG(epsg)
        for s in (src, dst):
            s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        ct = osr.CoordinateTransformation(src, dst)
    out = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    lyr = out.CreateLayer(layer, dst, ogr.wkbPolygon)
    for name, kind in (("code", ogr.OFTInteger), ("name", ogr.OFTString), ("block", ogr.OFTInteger)):
        lyr.CreateField(ogr.FieldDefn(name, kind))
    names = ["water", "crop", "tree", "developed", "bare", "wetland", "shrub", "snow"]
    lyr.StartTransaction()
    for i, c in enumerate(cells):
        cx = margin_px + (c % nx + 0.5) * cell
        cy = margin_px + (c // nx + 0.5) * cell
        r = rng.uniform(*size_px) / 2
        cx += rng.uniform(-1, 1) * (cell / 2 - r * 1.5) * 0.5
        cy += rng.uniform(-1, 1) * (cell / 2 - r * 1.5) * 0.5
        a = rng.uniform(0, math.pi)
        kind = i % 7
        if kind == 6 and with_holes:
            rings = [_square(cx, cy, r, a), _square(cx, cy, r * 0.45, a + 0.3)]
        elif kind % 2:
            k = np.arange(5) * 2 * math.pi / 5 + a
            rings = [list(zip(cx + r * np.cos(k), cy + r * np.sin(k)))]
        else:
            rings = [_rect(cx, cy, r, r * rng.uniform(0.4, 1.0), a)]
        poly = ogr.Geometry(ogr.wkbPolygon)
        for ring_px in rings:
            ring = ogr.Geometry(ogr.wkbLinearRing)
            for px, py in ring_px + [ring_px[0]]:
                ring.AddPoint_2D(gt[0] + px * gt[1] + py * gt[2], gt[3] + px * gt[4] + py * gt[5])
            poly.AddGeometry(ring)
        if ct is not None:
            poly.Transform(ct)
        code = int(rng.integers(1, classes + 1))
        f = ogr.Feature(lyr.GetLayerDefn())
        f.SetField("code", code)
        f.SetField("name", names[code - 1])
        f.SetField("block", int(c // nx // 4 * 1000 + c % nx // 4))
        f.SetGeometry(poly)
        lyr.CreateFeature(f)
    lyr.CommitTransaction()
    out = None
    return str(path)


def _rect(cx, cy, a, b, t):
    pts = [(-a, -b), (a, -b), (a, b), (-a, b)]
    return [(cx + x * math.cos(t) - y * math.sin(t), cy + x * math.sin(t) + y * math.cos(t)) for x, y in pts]


def _square(cx, cy, r, t):
    return _rect(cx, cy, r, r, t)


def spectral_classes(raster, path, classes=4, layer="polygons"):
    """Re-label polygons by the brightness of the image at their centroid (quantiles).

    Gives classes that pixel values can separate, for classifier tests on real imagery.
    """
    ds = gdal.Open(str(raster))
    inv = gdal.InvGeoTransform(ds.GetGeoTransform())
    img = ds.ReadAsArray().astype(np.float64).sum(axis=0)
    vds = ogr.Open(str(path), 1)
    lyr = vds.GetLayer(layer)
    fids, values = [], []
    for f in lyr:
        c = f.GetGeometryRef().Centroid()
        col, row = gdal.ApplyGeoTransform(inv, c.GetX(), c.GetY())
        fids.append(f.GetFID())
        values.append(img[int(row), int(col)])
    values = np.array(values)
    valid = values > 0
    edges = np.quantile(values[valid], np.linspace(0, 1, classes + 1)[1:-1])
    names = ["water", "tree", "crop", "developed", "bare", "snow"]
    lyr.StartTransaction()
    for fid, v, ok in zip(fids, values, valid):
        f = lyr.GetFeature(fid)
        if not ok:
            lyr.DeleteFeature(fid)
            continue
        code = int(np.searchsorted(edges, v)) + 1
        f.SetField("code", code)
        f.SetField("name", names[code - 1])
        lyr.SetFeature(f)
    lyr.CommitTransaction()
    vds = None
    return str(path)


def classes_on_crop(image, folder, window, count, seed):
    """A crop (`window` = [col, row, width, height]) of `image` in `folder`, and `count`
    rotated polygons over it whose classes follow its spectra. Returns (crop, polygons)."""
    crop = str(folder / "crop.tif")
    gdal.Translate(crop, image, srcWin=window)
    return crop, spectral_classes(crop, rotated_polygons(crop, folder / "polygons.gpkg", count,
                                                         seed=seed))
